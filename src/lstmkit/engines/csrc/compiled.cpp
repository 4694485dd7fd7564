// lstmkit's compiled CPU engine: whole sequences of an LSTM, GRU or SimpleRNN layer, forward
// and backward, with no Python per time step.
//
// The equations are lstmkit.functional's (the specification); this file is an optimisation of
// them. Symbols: i, f, g, o (LSTM gates), c (cell), h (hidden / projected output), r, z, n (GRU
// gates). Shapes use one legend: T steps, B batch, H hidden units, P = size of h (H unless the
// LSTM has a projection), G gate blocks (LSTM 4, CIFG 3, GRU 3, RNN 1), GH = G·H.
//
// How it is fast:
//   * The input projection W_ih x of every step is computed by the caller in one GEMM (xw,
//     time-major (T, B, GH)); per step this file does only the recurrent GEMM W_hh h_{t-1} and one
//     fused elementwise pass over the gates, which also adds the biases b_ih and b_hh (so their
//     gradients are sums this file accumulates while the rows are in cache).
//   * The batch rows are independent sequences, so the batch is split into one chunk per thread
//     and every thread runs the whole sequence for its rows: no synchronisation per step, the
//     recurrent weights stay in each core's cache.
//   * Backward computes only the recurrence per step (dh_{t-1} = dz_t W_hh); the weight
//     gradients are one large GEMM over all T·B rows after the loop.
//   * All buffers are time-major, so every step reads and writes contiguous (B, ·) blocks and the
//     after-the-loop GEMMs see (T·B, ·) matrices.
//   * The forward keeps the gate activations (backward needs them); they are what the engine
//     returns as the recording, so recording costs nothing extra.
//
// State buffers have T+1 slots indexed by input time: forward processing reads slot t and writes
// slot t+1; reverse processing reads slot t+1 and writes slot t. Slot "prev" holds h_{t-1} (in
// processing order), slot "next" the state after step t (carried over where the mask is false).

// Per-operator ATen headers instead of <ATen/ATen.h>: a quarter less to compile.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "checks.h"
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

// The BLAS that torch itself uses (MKL in the official x86 wheels exports the Fortran symbols).
// Declared weak: where a torch build does not export them, the GEMMs go through ATen instead.
extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc) __attribute__((weak));
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b,
            const int* ldb, const double* beta, double* c, const int* ldc) __attribute__((weak));
}

namespace lstmkit {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

constexpr double kLayerNormEps = 1e-5;  // lstmkit.functional.LAYER_NORM_EPS
constexpr int64_t kMinRowsPerThread = 4;

// ------------------------------------------------------------------------------------------
// GEMM on row-major matrices with explicit leading dimensions.
//   C (M, N) = A (M, K) · B^T + beta·C   with B stored (N, K)   if b_transposed
//   C (M, N) = A (M, K) · B   + beta·C   with B stored (K, N)   otherwise
// A row-major matrix is the column-major transpose, so C^T = op(B) · A^T in BLAS terms.
// ------------------------------------------------------------------------------------------

// C (M, N) = beta·C: the product when K = 0 (BLAS rejects a leading dimension of 0).
template <typename T>
void scale_only(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

template <typename T>
void gemm_aten(bool b_transposed, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
               const T* Bm, int64_t ldb, T beta, T* C, int64_t ldc) {
  auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opt);
  Tensor b = b_transposed ? at::from_blob(const_cast<T*>(Bm), {N, K}, {ldb, 1}, opt).t()
                          : at::from_blob(const_cast<T*>(Bm), {K, N}, {ldb, 1}, opt);
  Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opt);
  if (beta == T(0)) {
    at::mm_out(c, a, b);
  } else {
    c.addmm_(a, b, beta, 1);
  }
}

inline void gemm(bool bt, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, C, ldc);
  if (sgemm_ == nullptr) return gemm_aten<float>(bt, M, N, K, A, lda, B, ldb, beta, C, ldc);
  const int m = int(N), n = int(M), k = int(K), la = int(ldb), lb = int(lda), lc = int(ldc);
  const float one = 1.0f;
  sgemm_(bt ? "T" : "N", "N", &m, &n, &k, &one, B, &la, A, &lb, &beta, C, &lc);
}

inline void gemm(bool bt, int64_t M, int64_t N, int64_t K, const double* A, int64_t lda,
                 const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, C, ldc);
  if (dgemm_ == nullptr) return gemm_aten<double>(bt, M, N, K, A, lda, B, ldb, beta, C, ldc);
  const int m = int(N), n = int(M), k = int(K), la = int(ldb), lb = int(lda), lc = int(ldc);
  const double one = 1.0;
  dgemm_(bt ? "T" : "N", "N", &m, &n, &k, &one, B, &la, A, &lb, &beta, C, &lc);
}

// The per-step product with a fixed weight, C (M, N) = A (M, K) · op(W) + beta·C, for the M rows
// of one chunk. (MKL's packed GEMM, packing W once per sequence, was measured: 2× slower at
// M = 32 rows, H = 128; +6% at H = 256 forward only. So W is not packed.)
template <typename T>
class FixedGemm {
 public:
  FixedGemm(bool w_transposed, int64_t M, int64_t N, int64_t K, const T* W, int64_t ldw)
      : wt_(w_transposed), M_(M), N_(N), K_(K), W_(W), ldw_(ldw) {}
  void operator()(const T* A, int64_t lda, T beta, T* C, int64_t ldc) const {
    gemm(wt_, M_, N_, K_, A, lda, W_, ldw_, beta, C, ldc);
  }

 private:
  bool wt_;
  int64_t M_, N_, K_;
  const T* W_;
  int64_t ldw_;
};

// ------------------------------------------------------------------------------------------
// Activations. float: branch-free versions that the compiler vectorises (Cephes' expf
// polynomial, ≤ 2 ulp; tanh via a small-argument polynomial). double: the C library (exact to
// the last bit or so, used for gradcheck and the 1e-10 comparisons).
// ------------------------------------------------------------------------------------------

// Written so that GCC vectorises the loops that call it: no std::min/max (they return
// references), no std::floor (not vectorised under trapping math), a bit cast for 2^n.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  constexpr float kRound = 12582912.0f;  // 1.5·2^23: adding and subtracting rounds to an integer
  const float n = (x * 1.44269504088896341f + kRound) - kRound;  // x = n·ln2 + r, |r| ≤ ln2/2
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;  // 2^n
  return p * __builtin_bit_cast(float, bits);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

inline float tanh_(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float e = exp_approx(2.0f * ax);
  const float big = 1.0f - 2.0f / (e + 1.0f);
  const float s = x * x;  // |x| < 0.625: x + x^3 P(x^2) (Cephes tanhf)
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  const float small = x + x * s * p;
  return ax < 0.625f ? small : (x < 0.0f ? -big : big);
}

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

// ------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------

template <typename T>
const T* ptr(const OptTensor& t) {
  return t.has_value() && t->defined() && t->numel() > 0 ? t->data_ptr<T>() : nullptr;
}

template <typename T>
T* mptr(const Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}

bool has(const OptTensor& t) { return t.has_value() && t->defined() && t->numel() > 0; }

// Row-wise layer norm statistics: writes x̂ = (x - μ)·rstd into xhat and returns rstd. The sums
// accumulate in double, as torch's CPU layer norm does; `omp simd reduction` lets the compiler
// vectorise them (it may not reorder a plain floating-point sum).
template <typename T>
T layer_norm_row(const T* x, T* xhat, int64_t n) {
  double mean = 0;
#pragma omp simd reduction(+ : mean)
  for (int64_t k = 0; k < n; ++k) mean += double(x[k]);
  mean /= double(n);
  double var = 0;
#pragma omp simd reduction(+ : var)
  for (int64_t k = 0; k < n; ++k) var += (double(x[k]) - mean) * (double(x[k]) - mean);
  var /= double(n);
  const T rstd = T(1.0 / std::sqrt(var + kLayerNormEps));
  const T mu = T(mean);
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) xhat[k] = (x[k] - mu) * rstd;
  return rstd;
}

// Layer norm backward for one row: y = γ x̂ + β, dy given; dx = rstd (γdy - mean(γdy)
// - x̂ mean(γdy x̂)). dx may alias dy.
template <typename T>
void layer_norm_row_backward(const T* dy, const T* gamma, const T* xhat, T rstd, T* dx,
                             int64_t n) {
  double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t k = 0; k < n; ++k) {
    const double gd = double(dy[k]) * double(gamma[k]);
    s1 += gd;
    s2 += gd * double(xhat[k]);
  }
  const T m1 = T(s1 / double(n)), m2 = T(s2 / double(n));
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) dx[k] = rstd * (dy[k] * gamma[k] - m1 - xhat[k] * m2);
}

// Denormal numbers flushed to zero while a loop runs (restored after): vanishing gradients of a
// long sequence otherwise reach 1e-38 and every operation on them is ~100× slower. Values below
// 1.2e-38 (float) are far under the engines' tolerances.
class FlushDenormals {
 public:
#if defined(__SSE__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }  // FTZ | DAZ
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#endif
};

// Run f(chunk, b0, b1) on `chunks` equal chunks of the batch rows, one per thread; a single
// chunk runs on the calling thread (where the BLAS may use the threads for its GEMMs instead).
template <typename F>
void for_row_chunks(int64_t B, int64_t chunks, const F& f) {
  auto bounds = [&](int64_t c) { return std::make_pair(c * B / chunks, (c + 1) * B / chunks); };
  if (chunks <= 1) {
    FlushDenormals ftz;
    f(0, 0, B);
    return;
  }
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    FlushDenormals ftz;
    for (int64_t c = c0; c < c1; ++c) {
      auto [b0, b1] = bounds(c);
      f(c, b0, b1);
    }
  });
}

// One chunk of rows per thread, at least kMinRowsPerThread rows each.
int64_t chunks_for(int64_t B) {
  if (at::in_parallel_region()) return 1;
  const int64_t threads = at::get_num_threads();
  return std::max<int64_t>(1, std::min<int64_t>(threads, B / kMinRowsPerThread));
}

// Where step s (in processing order) of T reads and writes.
struct Step {
  int64_t t, prev, next;
  Step(int64_t s, int64_t T, bool reverse) {
    t = reverse ? T - 1 - s : s;
    prev = reverse ? t + 1 : t;
    next = reverse ? t : t + 1;
  }
};

// The recurrent product of one step for rows [b0, b0 + R):
//   out (R, N) = (h ⊙ m_k) W_k^T per gate block k of `rows_per_block` rows of w (N = blocks·HB)
// with recurrent dropout masks m (Gm, B, P): Gm = 0 none, 1 shared, else one per block.
// `whole` is the product with the whole weight (used without per-block masks).
template <typename T>
void recurrent_product(const T* h, int64_t R, int64_t P, const T* w, int64_t blocks,
                       int64_t rows_per_block, const T* masks, int64_t Gm, int64_t B, int64_t b0,
                       int64_t mask_block0, T* scratch, T* out, int64_t ldo,
                       const FixedGemm<T>* whole) {
  if (Gm == 0) {
    (*whole)(h, P, T(0), out, ldo);
    return;
  }
  if (Gm == 1) {
    const T* m = masks + b0 * P;
    for (int64_t k = 0; k < R * P; ++k) scratch[k] = h[k] * m[k];
    (*whole)(scratch, P, T(0), out, ldo);
    return;
  }
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const T* m = masks + ((mask_block0 + blk) * B + b0) * P;
    for (int64_t k = 0; k < R * P; ++k) scratch[k] = h[k] * m[k];
    gemm(true, R, rows_per_block, P, scratch, P, w + blk * rows_per_block * P, P, T(0),
         out + blk * rows_per_block, ldo);
  }
}

// Backward of recurrent_product: dh (R, P) (+)= Σ_k (dy_k W_k) ⊙ m_k.
template <typename T>
void recurrent_product_backward(const T* dy, int64_t ldy, int64_t R, int64_t P, const T* w,
                                int64_t blocks, int64_t rows_per_block, const T* masks,
                                int64_t Gm, int64_t B, int64_t b0, int64_t mask_block0,
                                T* scratch, T* dh, bool accumulate, const FixedGemm<T>* whole) {
  if (Gm == 0) {
    (*whole)(dy, ldy, accumulate ? T(1) : T(0), dh, P);
    return;
  }
  if (Gm == 1) {
    const T* m = masks + b0 * P;
    (*whole)(dy, ldy, T(0), scratch, P);
    for (int64_t k = 0; k < R * P; ++k) dh[k] = (accumulate ? dh[k] : T(0)) + scratch[k] * m[k];
    return;
  }
  if (!accumulate) std::fill(dh, dh + R * P, T(0));
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const T* m = masks + ((mask_block0 + blk) * B + b0) * P;
    gemm(false, R, P, rows_per_block, dy + blk * rows_per_block, ldy,
         w + blk * rows_per_block * P, P, T(0), scratch, P);
    for (int64_t k = 0; k < R * P; ++k) dh[k] += scratch[k] * m[k];
  }
}

// Masked outputs (Keras): out_t = h_t where the step is valid, else the previous step's output
// (zero before the first valid step) or zero with zero_output_for_mask.
template <typename T>
void write_masked_output(T* out, const T* h_next, const bool* mask, const Step& st, int64_t s,
                         bool reverse, int64_t T_, int64_t B, int64_t P, int64_t b0, int64_t R,
                         bool zero_out) {
  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = b0 + r;
    T* o = out + (st.t * B + b) * P;
    if (mask[b * T_ + st.t]) {
      std::copy(h_next + r * P, h_next + (r + 1) * P, o);
    } else if (zero_out || s == 0) {
      std::fill(o, o + P, T(0));
    } else {
      const int64_t tp = reverse ? st.t + 1 : st.t - 1;
      const T* po = out + (tp * B + b) * P;
      std::copy(po, po + P, o);
    }
  }
}

// Where the mask is false the state is carried over: next slot := prev slot.
template <typename T>
void carry_masked_state(T* next, const T* prev, const bool* mask, int64_t t, int64_t T_,
                        int64_t b0, int64_t R, int64_t n) {
  for (int64_t r = 0; r < R; ++r) {
    if (!mask[(b0 + r) * T_ + t]) std::copy(prev + r * n, prev + (r + 1) * n, next + r * n);
  }
}

// Incoming gradient of the state h after step t, for rows [b0, b0+R): the gradient of the
// state record / final state (d_hbuf), and of the output (d_out, through the carried outputs).
// Returns nothing; updates dh (R, P) and carry (R, P) and writes dh_step (R, P): dh where the
// step is valid, else zero (the step's own h_t was discarded).
template <typename T>
void incoming_h_grad(T* dh, T* carry, T* dh_step, const T* d_hbuf, const T* d_out,
                     const bool* mask, const Step& st, int64_t T_, int64_t B, int64_t P,
                     int64_t b0, int64_t R, bool zero_out) {
  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = b0 + r;
    T* d = dh + r * P;
    if (d_hbuf) {
      const T* g = d_hbuf + (st.next * B + b) * P;
      for (int64_t j = 0; j < P; ++j) d[j] += g[j];
    }
    const bool valid = mask == nullptr || mask[b * T_ + st.t];
    if (mask != nullptr) {
      // Output grads: out_t is h_t (valid), the carried previous output, or zero.
      T* cr = carry + r * P;
      const T* go = d_out ? d_out + (st.t * B + b) * P : nullptr;
      if (valid) {
        for (int64_t j = 0; j < P; ++j) d[j] += cr[j] + (go ? go[j] : T(0));
        std::fill(cr, cr + P, T(0));
      } else if (!zero_out) {
        if (go)
          for (int64_t j = 0; j < P; ++j) cr[j] += go[j];
      }
    }
    T* ds = dh_step + r * P;
    if (valid) {
      std::copy(d, d + P, ds);
    } else {
      std::fill(ds, ds + P, T(0));
    }
  }
}

// ==========================================================================================
// LSTM
// ==========================================================================================

template <typename T>
struct LSTMData {
  int64_t T_, B, H, P, G, GH, Gm;
  bool coupled, reverse, zero_out;
  bool keep;         // keep every step's gates for backward / recording (else: per-chunk scratch)
  const T* xw;       // (T, B, GH)  W_ih x + b_ih  (LN(W_ih x) + b_ih with layer norm)
  const T* w_hh;     // (GH, P)
  const T* b_hh;     // (GH,) or null
  const T* peep;     // (3, H): p_i, p_f, p_o, or null
  const T* ln_hh_w;  // (GH,) or null (layer norm of W_hh h)
  const T* ln_hh_b;
  const T* ln_c_w;  // (H,) or null (layer norm of c before tanh)
  const T* ln_c_b;
  const T* w_hr;   // (P, H) or null (projection)
  const T* rmask;  // (Gm, B, P) recurrent dropout masks or null
  const bool* mask;  // (B, T) or null
  T* hbuf;           // (T+1, B, P) states h
  T* cbuf;           // (T+1, B, H) states c
  T* gates;          // (T, B, 4H) i, f, g, o
  T* tc;             // (T, B, H) tanh(c) (tanh(LN(c)) with layer norm), as computed
  T* out;            // (T, B, P) outputs, only with a mask
  T* hh_xhat;        // (T, B, GH) normalised W_hh h (layer norm)
  T* hh_rstd;        // (T, B)
  T* c_xhat;         // (T, B, H) normalised c (layer norm)
  T* c_rstd;         // (T, B)
};

template <typename T>
void lstm_forward_rows(const LSTMData<T>& a, int64_t b0, int64_t b1) {
  const int64_t R = b1 - b0, H = a.H, P = a.P, GH = a.GH, B = a.B, T_ = a.T_;
  std::vector<T> hw(R * GH), scratch(a.Gm ? R * P : 0), mrow(a.w_hr ? R * H : 0);
  std::vector<T> zeros(3 * H + GH, T(0));
  const T* b_hh = a.b_hh ? a.b_hh : zeros.data();
  const T* p_i = a.peep ? a.peep : zeros.data();
  const T* p_f = a.peep ? a.peep + H : zeros.data();
  const T* p_o = a.peep ? a.peep + 2 * H : zeros.data();
  // Gate blocks in the pre-activations: i, f, g, o (coupled: i, g, o).
  const int64_t off_g = a.coupled ? H : 2 * H, off_o = a.coupled ? 2 * H : 3 * H;
  std::optional<FixedGemm<T>> whole, proj;  // W_hh h (all gate blocks at once), W_hr m
  if (a.Gm <= 1) whole.emplace(true, R, GH, P, a.w_hh, P);
  if (a.w_hr) proj.emplace(true, R, P, H, a.w_hr, H);
  // Without backward or recording, one step's gates live in a small scratch that stays in cache.
  std::vector<T> local(a.keep ? 0 : R * (4 * H + H + GH + H + 2));
  auto row = [&](T* buf, int64_t width, int64_t offset, int64_t tb, int64_t r) {
    return a.keep ? buf + tb * width : local.data() + R * offset + r * width;
  };

  for (int64_t s = 0; s < T_; ++s) {
    const Step st(s, T_, a.reverse);
    const T* h_prev = a.hbuf + (st.prev * B + b0) * P;
    T* h_next = a.hbuf + (st.next * B + b0) * P;
    const T* c_prev_all = a.cbuf + (st.prev * B + b0) * H;
    T* c_next_all = a.cbuf + (st.next * B + b0) * H;

    // W_hh h_{t-1} (h_{t-1} ⊙ m with recurrent dropout): (R, GH)
    recurrent_product(h_prev, R, P, a.w_hh, a.G, H, a.rmask, a.Gm, B, b0, 0, scratch.data(),
                      hw.data(), GH, whole ? &*whole : nullptr);

    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = b0 + r, tb = st.t * B + b;
      const T* x = a.xw + tb * GH;
      T* z = hw.data() + r * GH;  // pre-activations z = xw + [LN](W_hh h) + b_hh, in place
      if (a.ln_hh_w) {
        T* xh = row(a.hh_xhat, GH, 5 * H, tb, r);
        *row(a.hh_rstd, 1, 5 * H + GH + H, tb, r) = layer_norm_row(z, xh, GH);
        const T *gw = a.ln_hh_w, *gb = a.ln_hh_b;
#pragma omp simd
        for (int64_t k = 0; k < GH; ++k) z[k] = x[k] + (gw[k] * xh[k] + gb[k] + b_hh[k]);
      } else {
#pragma omp simd
        for (int64_t k = 0; k < GH; ++k) z[k] = x[k] + (z[k] + b_hh[k]);
      }
      const T* c_prev = c_prev_all + r * H;
      T* c = c_next_all + r * H;
      T* gi = row(a.gates, 4 * H, 0, tb, r);
      T* gf = gi + H;
      T* gg = gi + 2 * H;
      T* go = gi + 3 * H;
      const T* zi = z;
      const T* zf = z + H;
      const T* zg = z + off_g;
      const T* zo = z + off_o;
      if (a.coupled) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T i = sigmoid(zi[j] + p_i[j] * c_prev[j]);  // i_t = σ(z_i + p_i ⊙ c_{t-1})
          const T f = T(1) - i;                             // f_t = 1 - i_t (CIFG)
          const T g = tanh_(zg[j]);                         // g_t = tanh(z_g)
          c[j] = f * c_prev[j] + i * g;                     // c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
          gi[j] = i;
          gf[j] = f;
          gg[j] = g;
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T i = sigmoid(zi[j] + p_i[j] * c_prev[j]);  // i_t = σ(z_i + p_i ⊙ c_{t-1})
          const T f = sigmoid(zf[j] + p_f[j] * c_prev[j]);  // f_t = σ(z_f + p_f ⊙ c_{t-1})
          const T g = tanh_(zg[j]);                         // g_t = tanh(z_g)
          c[j] = f * c_prev[j] + i * g;                     // c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
          gi[j] = i;
          gf[j] = f;
          gg[j] = g;
        }
      }
      T* tcv = row(a.tc, H, 4 * H, tb, r);
      T* m = a.w_hr ? mrow.data() + r * H : h_next + r * P;  // o_t ⊙ tanh(c_t)
      if (a.ln_c_w) {
        T* xh = row(a.c_xhat, H, 5 * H + GH, tb, r);
        *row(a.c_rstd, 1, 5 * H + GH + H + 1, tb, r) = layer_norm_row(c, xh, H);
        const T *gw = a.ln_c_w, *gb = a.ln_c_b;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T o = sigmoid(zo[j] + p_o[j] * c[j]);  // o_t = σ(z_o + p_o ⊙ c_t)
          const T tv = tanh_(gw[j] * xh[j] + gb[j]);   // tanh(LN(c_t))
          go[j] = o;
          tcv[j] = tv;
          m[j] = o * tv;  // h_t = o_t ⊙ tanh(LN(c_t))
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T o = sigmoid(zo[j] + p_o[j] * c[j]);  // o_t = σ(z_o + p_o ⊙ c_t)
          const T tv = tanh_(c[j]);
          go[j] = o;
          tcv[j] = tv;
          m[j] = o * tv;  // h_t = o_t ⊙ tanh(c_t)
        }
      }
    }
    if (a.w_hr) (*proj)(mrow.data(), H, T(0), h_next, P);  // h_t = W_hr m_t
    if (a.mask) {
      carry_masked_state(h_next, h_prev, a.mask, st.t, T_, b0, R, P);
      carry_masked_state(c_next_all, c_prev_all, a.mask, st.t, T_, b0, R, H);
      write_masked_output(a.out, h_next, a.mask, st, s, a.reverse, T_, B, P, b0, R, a.zero_out);
    }
  }
}

template <typename T>
struct LSTMGrad {
  const T* d_hbuf;   // (T+1, B, P) or null: gradient of the state records / final h
  const T* d_cbuf;   // (T+1, B, H) or null
  const T* d_gates;  // (T, B, 4H) or null: gradient of the recorded gates
  const T* d_out;    // (T, B, P) or null (only with a mask)
  T* dxw;            // (T, B, GH) gradient of the pre-activations z (= of xw)
  T* dhw;            // (T, B, GH) gradient of W_hh h (layer norm only; else == dxw)
  T* dhs;            // (T, B, P) gradient of h_t from this step (projection only)
  // Per-chunk partial sums (double), accumulated while the rows are in cache, of
  //   Σ dz (b_hh, LN β_hh) | Σ dz ⊙ x̂_hh (LN γ_hh) | Σ dĉ ⊙ x̂_c (γ_c) | Σ dĉ (β_c) |
  //   Σ dz_i c_{t-1}, Σ dz_f c_{t-1}, Σ dz_o c_t (peepholes):  (chunks, 2GH + 5H)
  double* sums;
  T* dh0;            // (B, P)
  T* dc0;            // (B, H)
};

template <typename T>
void lstm_backward_rows(const LSTMData<T>& a, const LSTMGrad<T>& d, int64_t chunk, int64_t b0,
                        int64_t b1) {
  const int64_t R = b1 - b0, H = a.H, P = a.P, GH = a.GH, B = a.B, T_ = a.T_;
  std::vector<T> dh(R * P, T(0)), dc(R * H, T(0)), carry(a.mask ? R * P : 0, T(0));
  std::vector<T> dh_step(R * P), dm(a.w_hr ? R * H : 0), scratch(a.Gm ? R * P : 0);
  std::vector<T> zeros(3 * H + 4 * H, T(0)), dc_hat(H), dc_ln(H);
  const T* p_i = a.peep ? a.peep : zeros.data();
  const T* p_f = a.peep ? a.peep + H : zeros.data();
  const T* p_o = a.peep ? a.peep + 2 * H : zeros.data();
  double* s_dz = d.sums + chunk * (2 * GH + 5 * H);
  double* s_ghh = s_dz + GH;
  double* s_gc = s_ghh + GH;
  double* s_bc = s_gc + H;
  double* s_p = s_bc + H;
  const int64_t off_g = a.coupled ? H : 2 * H, off_o = a.coupled ? 2 * H : 3 * H;
  std::optional<FixedGemm<T>> whole, proj;  // dz W_hh, dh W_hr
  if (a.Gm <= 1) whole.emplace(false, R, P, GH, a.w_hh, P);
  if (a.w_hr) proj.emplace(false, R, H, P, a.w_hr, H);

  for (int64_t s = T_ - 1; s >= 0; --s) {
    const Step st(s, T_, a.reverse);
    incoming_h_grad(dh.data(), carry.data(), dh_step.data(), d.d_hbuf, d.d_out, a.mask, st, T_,
                    B, P, b0, R, a.zero_out);
    if (d.d_cbuf) {
      for (int64_t r = 0; r < R; ++r) {
        const T* g = d.d_cbuf + (st.next * B + b0 + r) * H;
        for (int64_t j = 0; j < H; ++j) dc[r * H + j] += g[j];
      }
    }
    // h_t = W_hr m_t: dm = dh W_hr (projection), and keep dh for dW_hr.
    const T* dmv = dh_step.data();
    if (a.w_hr) {
      std::copy(dh_step.begin(), dh_step.end(), d.dhs + (st.t * B + b0) * P);
      (*proj)(dh_step.data(), P, T(0), dm.data(), H);
      dmv = dm.data();
    }
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = b0 + r, tb = st.t * B + b;
      const bool valid = a.mask == nullptr || a.mask[b * T_ + st.t];
      const T* gi = a.gates + tb * 4 * H;
      const T* gf = gi + H;
      const T* gg = gi + 2 * H;
      const T* go = gi + 3 * H;
      const T* dgi = d.d_gates ? d.d_gates + tb * 4 * H : zeros.data() + 3 * H;
      const T* dgf = dgi + H;
      const T* dgg = dgi + 2 * H;
      const T* dgo = dgi + 3 * H;
      if (!d.d_gates) dgf = dgg = dgo = dgi;
      const T* tcv = a.tc + tb * H;
      const T* c_prev = a.cbuf + (st.prev * B + b) * H;
      const T* dmr = dmv + r * (a.w_hr ? H : P);
      T* dz = d.dxw + tb * GH;
      T* dzi = dz;
      T* dzf = dz + H;
      T* dzg = dz + off_g;
      T* dzo = dz + off_o;
      T* dcr = dc.data() + r * H;
      const T valid_t = valid ? T(1) : T(0);
      // dĉ: gradient of the cell's normalised value before tanh; dct: of c_t itself.
      T* dct = dc_hat.data();
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const T o = go[j], tv = tcv[j];
        const T dov = dmr[j] * tv + dgo[j];      // ∂/∂o_t of h = o ⊙ tanh(c)
        dzo[j] = dov * o * (T(1) - o);           // σ' = o (1 - o)
        dct[j] = dmr[j] * o * (T(1) - tv * tv);  // ∂/∂ĉ through tanh
      }
      if (a.ln_c_w) {  // ĉ = LN(c_t): dc_t = LN'(dĉ); the gains' gradients Σ dĉ x̂, Σ dĉ
        const T* xh = a.c_xhat + tb * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          s_gc[j] += double(dct[j]) * double(xh[j]);
          s_bc[j] += double(dct[j]);
        }
        layer_norm_row_backward(dct, a.ln_c_w, xh, a.c_rstd[tb], dc_ln.data(), H);
        dct = dc_ln.data();
      }
      if (a.coupled) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T i = gi[j], f = gf[j], g = gg[j], cp = c_prev[j], dcin = dcr[j];
          const T dcv = dct[j] + valid_t * dcin + dzo[j] * p_o[j];
          // c = (1 - i) c_{t-1} + i g: ∂c/∂i = g - c_{t-1}; the recorded f = 1 - i.
          const T di = dcv * (g - cp) + dgi[j] - dgf[j];
          const T dg = dcv * i + dgg[j];
          const T zi_ = di * i * (T(1) - i);
          dzi[j] = zi_;
          dzg[j] = dg * (T(1) - g * g);
          dcr[j] = dcv * f + zi_ * p_i[j] + (T(1) - valid_t) * dcin;  // ∂/∂c_{t-1}
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T i = gi[j], f = gf[j], g = gg[j], cp = c_prev[j], dcin = dcr[j];
          const T dcv = dct[j] + valid_t * dcin + dzo[j] * p_o[j];
          const T di = dcv * g + dgi[j];
          const T df = dcv * cp + dgf[j];
          const T dg = dcv * i + dgg[j];
          const T zi_ = di * i * (T(1) - i), zf_ = df * f * (T(1) - f);
          dzi[j] = zi_;
          dzf[j] = zf_;
          dzg[j] = dg * (T(1) - g * g);
          dcr[j] = dcv * f + zi_ * p_i[j] + zf_ * p_f[j] + (T(1) - valid_t) * dcin;
        }
      }
      if (a.peep) {  // peephole gradients: Σ dz_i c_{t-1}, Σ dz_f c_{t-1}, Σ dz_o c_t
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T c_new = gf[j] * c_prev[j] + gi[j] * gg[j];  // c_t as the forward computed it
          s_p[j] += double(dzi[j]) * double(c_prev[j]);
          if (!a.coupled) s_p[H + j] += double(dzf[j]) * double(c_prev[j]);
          s_p[2 * H + j] += double(dzo[j]) * double(c_new);
        }
      }
#pragma omp simd
      for (int64_t k = 0; k < GH; ++k) s_dz[k] += double(dz[k]);  // b_hh (and LN β_hh)
      if (a.ln_hh_w) {  // z = … + LN(W_hh h): gradient of W_hh h, and Σ dz x̂ for γ_hh
        const T* xh = a.hh_xhat + tb * GH;
#pragma omp simd
        for (int64_t k = 0; k < GH; ++k) s_ghh[k] += double(dz[k]) * double(xh[k]);
        layer_norm_row_backward(dz, a.ln_hh_w, xh, a.hh_rstd[tb], d.dhw + tb * GH, GH);
      }
    }
    // dh_{t-1} = (dz W_hh) ⊙ m, plus the carried gradient where the step was masked.
    const T* src = (a.ln_hh_w ? d.dhw : d.dxw) + (st.t * B + b0) * GH;
    std::vector<T>& dh_prev = dh_step;  // reuse: dh_step is no longer needed
    recurrent_product_backward(src, GH, R, P, a.w_hh, a.G, H, a.rmask, a.Gm, B, b0, 0,
                               scratch.data(), dh_prev.data(), false, whole ? &*whole : nullptr);
    for (int64_t r = 0; r < R; ++r) {
      const bool valid = a.mask == nullptr || a.mask[(b0 + r) * T_ + st.t];
      T* dr = dh.data() + r * P;
      const T* dp = dh_prev.data() + r * P;
      if (valid) {
        std::copy(dp, dp + P, dr);
      } else {
        for (int64_t j = 0; j < P; ++j) dr[j] += dp[j];
      }
    }
  }
  std::copy(dh.begin(), dh.end(), d.dh0 + b0 * P);
  std::copy(dc.begin(), dc.end(), d.dc0 + b0 * H);
}

// dW (blocks·HB, P) = Σ_k dy_k^T (h ⊙ m_k), one GEMM per mask over all T·B rows.
Tensor weight_grad(const Tensor& dy, const Tensor& h_prev, const OptTensor& rmask, int64_t blocks,
                   int64_t mask_block0 = 0) {
  // dy (T, B, N), h_prev (T, B, P)
  const int64_t TB = dy.size(0) * dy.size(1), N = dy.size(2), P = h_prev.size(2);
  Tensor dy2 = dy.reshape({TB, N});
  if (!has(rmask)) return at::mm(dy2.t(), h_prev.reshape({TB, P}));
  const Tensor& m = *rmask;
  if (m.size(0) == 1) return at::mm(dy2.t(), h_prev.mul(m[0]).reshape({TB, P}));
  std::vector<Tensor> parts;
  const int64_t HB = N / blocks;
  for (int64_t k = 0; k < blocks; ++k) {
    parts.push_back(at::mm(dy2.narrow(1, k * HB, HB).t(),
                           h_prev.mul(m[mask_block0 + k]).reshape({TB, P})));
  }
  return at::cat(parts, 0);
}

// State slots as (T, B, ·) views: the state before each step, and after it.
Tensor prev_states(const Tensor& buf, bool reverse) {
  const int64_t T_ = buf.size(0) - 1;
  return reverse ? buf.narrow(0, 1, T_) : buf.narrow(0, 0, T_);
}
Tensor next_states(const Tensor& buf, bool reverse) {
  const int64_t T_ = buf.size(0) - 1;
  return reverse ? buf.narrow(0, 0, T_) : buf.narrow(0, 1, T_);
}

// ------------------------------------------------------------------------------------------
// Argument checks (checks.h): every tensor of every op, before any buffer is touched.
// ------------------------------------------------------------------------------------------

using checks::constant;
using checks::Dim;
using checks::present;
using checks::Signature;

// G·H, the width of the gate pre-activations, from H and the number of gate blocks (3 or 4).
Dim gate_dim(const Signature& s, int64_t G, const Dim& H, const char* what) {
  const Dim d{G == 3 ? "3·H" : "4·H", G * H.value, H.arg, H.d, G, 0, what};
  TORCH_CHECK(d.value <= INT_MAX, s.op(), ": ", checks::describe(d),
              " exceeds the kernel's limit ", INT_MAX);
  return d;
}

Dim plus_one(const Dim& T) { return {"T+1", T.value + 1, T.arg, T.d, 1, 1}; }

// rec_mask (G, B, P): one mask per gate block, or (1, B, P): one shared by all blocks.
void check_rec_mask(const Signature& s, const OptTensor& m, int64_t G, const Dim& B,
                    const Dim& P) {
  if (!present(m)) return;
  s.rank(*m, "rec_mask", {"G", B.sym, P.sym});
  const bool shared = G == 1 || m->size(0) == 1;
  const Dim blocks = shared ? constant(1) : Dim{"G", G, nullptr, 0, 1, 0, "gate blocks"};
  s.shape(*m, "rec_mask", {blocks, B, P}, std::nullopt,
          G > 1 ? " (or (1, B, P): one mask shared by the gate blocks)" : "");
}

// The arguments both LSTM ops take, against the sizes read from the op's other arguments.
void check_lstm_params(const Signature& s, const Dim& T, const Dim& B, const Dim& H,
                       const Dim& P, const Dim& GH, int64_t G, const Tensor& w_hh,
                       const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& peep,
                       const OptTensor& ln_hh_w, const OptTensor& ln_hh_b,
                       const OptTensor& ln_c_w, const OptTensor& ln_c_b, const OptTensor& w_hr,
                       const OptTensor& rmask, const OptTensor& mask) {
  s.shape(w_hh, "w_hh", {GH, P});
  s.optional(b_ih, "b_ih", {GH});
  s.optional(b_hh, "b_hh", {GH});
  s.optional(peep, "peephole", {constant(3), H});
  s.together({{"ln_hh_w", &ln_hh_w}, {"ln_hh_b", &ln_hh_b}, {"ln_c_w", &ln_c_w},
              {"ln_c_b", &ln_c_b}});
  s.optional(ln_hh_w, "ln_hh_w", {GH});
  s.optional(ln_hh_b, "ln_hh_b", {GH});
  s.optional(ln_c_w, "ln_c_w", {H});
  s.optional(ln_c_b, "ln_c_b", {H});
  if (present(w_hr)) {
    s.shape(*w_hr, "w_hr", {P, H});
  } else {
    TORCH_CHECK(P.value == H.value, s.prefix("w_hr"),
                " is absent (no projection), so P must equal H, got ", checks::describe(P),
                " and ", checks::describe(H));
  }
  check_rec_mask(s, rmask, G, B, P);
  s.optional(mask, "mask", {B, T}, at::kBool);
}

void check_lstm_forward(const Tensor& xw, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                        const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& peep,
                        const OptTensor& ln_hh_w, const OptTensor& ln_hh_b,
                        const OptTensor& ln_c_w, const OptTensor& ln_c_b, const OptTensor& w_hr,
                        const OptTensor& rmask, const OptTensor& mask, bool coupled) {
  Signature s("lstmkit_compiled.lstm_forward");
  s.floating(xw, "xw");
  s.rank(xw, "xw", {"T", "B", "G·H"});
  s.rank(c0, "c0", {"B", "H"});
  s.rank(h0, "h0", {"B", "P"});
  const Dim T = s.dim("T", xw, "xw", 0), B = s.dim("B", xw, "xw", 1);
  const Dim H = s.dim("H", c0, "c0", 1), P = s.dim("P", h0, "h0", 1);
  const int64_t G = coupled ? 3 : 4;
  const Dim GH = gate_dim(s, G, H, coupled ? "gate blocks (coupled=true)" : "gate blocks");
  s.shape(xw, "xw", {T, B, GH});
  s.shape(h0, "h0", {B, P});
  s.shape(c0, "c0", {B, H});
  check_lstm_params(s, T, B, H, P, GH, G, w_hh, b_ih, b_hh, peep, ln_hh_w, ln_hh_b, ln_c_w,
                    ln_c_b, w_hr, rmask, mask);
}

// saved = lstm_forward's result [hbuf, cbuf, gates, tc, out, hh_xhat, hh_rstd, c_xhat, c_rstd];
// out is not read (the gradient d_out is).
void check_lstm_backward(const Tensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                         const OptTensor& peep, const OptTensor& ln_hh_w,
                         const OptTensor& ln_hh_b, const OptTensor& ln_c_w,
                         const OptTensor& ln_c_b, const OptTensor& w_hr, const OptTensor& rmask,
                         const OptTensor& mask, bool coupled, at::TensorList saved,
                         const OptTensor& d_hbuf, const OptTensor& d_cbuf,
                         const OptTensor& d_gates, const OptTensor& d_out) {
  Signature s("lstmkit_compiled.lstm_backward");
  s.list(saved, "saved", 9, "that lstm_forward returned with keep=true");
  s.floating(saved[2], "saved[2]");
  s.rank(saved[2], "saved[2]", {"T", "B", "4·H"});  // gates
  s.rank(saved[1], "saved[1]", {"T+1", "B", "H"});  // cbuf
  s.rank(saved[0], "saved[0]", {"T+1", "B", "P"});  // hbuf
  const Dim T = s.dim("T", saved[2], "saved[2]", 0), B = s.dim("B", saved[2], "saved[2]", 1);
  const Dim H = s.dim("H", saved[1], "saved[1]", 2), P = s.dim("P", saved[0], "saved[0]", 2);
  const Dim T1 = plus_one(T), H4 = gate_dim(s, 4, H, "recorded gates i, f, g, o");
  s.shape(saved[2], "saved[2]", {T, B, H4});
  s.shape(saved[0], "saved[0]", {T1, B, P});
  s.shape(saved[1], "saved[1]", {T1, B, H});
  s.shape(saved[3], "saved[3]", {T, B, H});  // tanh(c)
  const int64_t G = coupled ? 3 : 4;
  const Dim GH = gate_dim(s, G, H, coupled ? "gate blocks (coupled=true)" : "gate blocks");
  check_lstm_params(s, T, B, H, P, GH, G, w_hh, b_ih, b_hh, peep, ln_hh_w, ln_hh_b, ln_c_w,
                    ln_c_b, w_hr, rmask, mask);
  if (present(ln_hh_w)) {  // the layer norms' statistics
    s.shape(saved[5], "saved[5]", {T, B, GH});
    s.shape(saved[6], "saved[6]", {T, B});
    s.shape(saved[7], "saved[7]", {T, B, H});
    s.shape(saved[8], "saved[8]", {T, B});
  }
  s.optional(d_hbuf, "d_hbuf", {T1, B, P});
  s.optional(d_cbuf, "d_cbuf", {T1, B, H});
  s.optional(d_gates, "d_gates", {T, B, H4});
  s.optional(d_out, "d_out", {T, B, P});
}

void check_gru_params(const Signature& s, const Dim& T, const Dim& B, const Dim& H,
                      const Dim& H3, const Tensor& w_hh, const OptTensor& b_ih,
                      const OptTensor& b_hh, const OptTensor& rmask, const OptTensor& mask) {
  s.shape(w_hh, "w_hh", {H3, H});
  s.optional(b_ih, "b_ih", {H3});
  s.optional(b_hh, "b_hh", {H3});
  check_rec_mask(s, rmask, 3, B, H);
  s.optional(mask, "mask", {B, T}, at::kBool);
}

void check_gru_forward(const Tensor& xw, const Tensor& h0, const Tensor& w_hh,
                       const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& rmask,
                       const OptTensor& mask) {
  Signature s("lstmkit_compiled.gru_forward");
  s.floating(xw, "xw");
  s.rank(xw, "xw", {"T", "B", "3·H"});
  s.rank(h0, "h0", {"B", "H"});
  const Dim T = s.dim("T", xw, "xw", 0), B = s.dim("B", xw, "xw", 1);
  const Dim H = s.dim("H", h0, "h0", 1), H3 = gate_dim(s, 3, H, "gate blocks r, z, n");
  s.shape(xw, "xw", {T, B, H3});
  s.shape(h0, "h0", {B, H});
  check_gru_params(s, T, B, H, H3, w_hh, b_ih, b_hh, rmask, mask);
}

// saved = gru_forward's [hbuf, gates, hn].
void check_gru_backward(const Tensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                        const OptTensor& rmask, const OptTensor& mask, at::TensorList saved,
                        const OptTensor& d_hbuf, const OptTensor& d_gates,
                        const OptTensor& d_out) {
  Signature s("lstmkit_compiled.gru_backward");
  s.list(saved, "saved", 3, "hbuf, gates, hn that gru_forward returned with keep=true");
  s.floating(saved[1], "saved[1]");
  s.rank(saved[1], "saved[1]", {"T", "B", "3·H"});  // gates
  s.rank(saved[0], "saved[0]", {"T+1", "B", "H"});  // hbuf
  const Dim T = s.dim("T", saved[1], "saved[1]", 0), B = s.dim("B", saved[1], "saved[1]", 1);
  const Dim H = s.dim("H", saved[0], "saved[0]", 2), T1 = plus_one(T);
  const Dim H3 = gate_dim(s, 3, H, "gate blocks r, z, n");
  s.shape(saved[1], "saved[1]", {T, B, H3});
  s.shape(saved[0], "saved[0]", {T1, B, H});
  s.shape(saved[2], "saved[2]", {T, B, H});  // hn
  check_gru_params(s, T, B, H, H3, w_hh, b_ih, b_hh, rmask, mask);
  s.optional(d_hbuf, "d_hbuf", {T1, B, H});
  s.optional(d_gates, "d_gates", {T, B, H3});
  s.optional(d_out, "d_out", {T, B, H});
}

void check_rnn_params(const Signature& s, const Dim& T, const Dim& B, const Dim& H,
                      const Tensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                      const OptTensor& rmask, const OptTensor& mask) {
  s.shape(w_hh, "w_hh", {H, H});
  s.optional(b_ih, "b_ih", {H});
  s.optional(b_hh, "b_hh", {H});
  check_rec_mask(s, rmask, 1, B, H);
  s.optional(mask, "mask", {B, T}, at::kBool);
}

void check_rnn_forward(const Tensor& xw, const Tensor& h0, const Tensor& w_hh,
                       const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& rmask,
                       const OptTensor& mask) {
  Signature s("lstmkit_compiled.rnn_forward");
  s.floating(xw, "xw");
  s.rank(xw, "xw", {"T", "B", "H"});
  s.rank(h0, "h0", {"B", "H"});
  const Dim T = s.dim("T", xw, "xw", 0), B = s.dim("B", xw, "xw", 1), H = s.dim("H", h0, "h0", 1);
  s.shape(xw, "xw", {T, B, H});
  s.shape(h0, "h0", {B, H});
  check_rnn_params(s, T, B, H, w_hh, b_ih, b_hh, rmask, mask);
}

// saved = rnn_forward's [hbuf, hcomp].
void check_rnn_backward(const Tensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                        const OptTensor& rmask, const OptTensor& mask, at::TensorList saved,
                        const OptTensor& d_hbuf, const OptTensor& d_out) {
  Signature s("lstmkit_compiled.rnn_backward");
  s.list(saved, "saved", 2, "hbuf, hcomp that rnn_forward returned with keep=true");
  s.floating(saved[1], "saved[1]");
  s.rank(saved[1], "saved[1]", {"T", "B", "H"});    // hcomp
  s.rank(saved[0], "saved[0]", {"T+1", "B", "H"});  // hbuf
  const Dim T = s.dim("T", saved[1], "saved[1]", 0), B = s.dim("B", saved[1], "saved[1]", 1);
  const Dim H = s.dim("H", saved[0], "saved[0]", 2), T1 = plus_one(T);
  s.shape(saved[1], "saved[1]", {T, B, H});
  s.shape(saved[0], "saved[0]", {T1, B, H});
  check_rnn_params(s, T, B, H, w_hh, b_ih, b_hh, rmask, mask);
  s.optional(d_hbuf, "d_hbuf", {T1, B, H});
  s.optional(d_out, "d_out", {T, B, H});
}

Tensor contig(const OptTensor& t) {
  return has(t) ? t->contiguous() : Tensor();
}
OptTensor opt(const Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }

template <typename T>
LSTMData<T> lstm_data(const Tensor& xw, const Tensor& w_hh, const Tensor& b_hh,
                      const Tensor& peep, const Tensor& ln_hh_w, const Tensor& ln_hh_b,
                      const Tensor& ln_c_w, const Tensor& ln_c_b, const Tensor& w_hr,
                      const Tensor& rmask, const Tensor& mask, bool coupled, bool reverse,
                      bool zero_out, int64_t H) {
  LSTMData<T> a{};
  a.T_ = xw.size(0);
  a.B = xw.size(1);
  a.GH = xw.size(2);
  a.H = H;
  a.G = coupled ? 3 : 4;  // (not GH / H: H may be 0)
  a.P = w_hh.size(1);
  a.Gm = rmask.defined() ? rmask.size(0) : 0;
  a.coupled = coupled;
  a.reverse = reverse;
  a.zero_out = zero_out;
  a.keep = true;
  a.xw = xw.data_ptr<T>();
  a.w_hh = w_hh.data_ptr<T>();
  a.b_hh = b_hh.defined() ? b_hh.data_ptr<T>() : nullptr;
  a.peep = peep.defined() ? peep.data_ptr<T>() : nullptr;
  a.ln_hh_w = ln_hh_w.defined() ? ln_hh_w.data_ptr<T>() : nullptr;
  a.ln_hh_b = ln_hh_b.defined() ? ln_hh_b.data_ptr<T>() : nullptr;
  a.ln_c_w = ln_c_w.defined() ? ln_c_w.data_ptr<T>() : nullptr;
  a.ln_c_b = ln_c_b.defined() ? ln_c_b.data_ptr<T>() : nullptr;
  a.w_hr = w_hr.defined() ? w_hr.data_ptr<T>() : nullptr;
  a.rmask = rmask.defined() ? rmask.data_ptr<T>() : nullptr;
  a.mask = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  return a;
}

// Forward of a whole LSTM sequence. Returns
//   [hbuf (T+1,B,P), cbuf (T+1,B,H), gates (T,B,4H), tc (T,B,H), out (T,B,P) or empty,
//    hh_xhat, hh_rstd, c_xhat, c_rstd (layer norm, else empty)].
std::vector<Tensor> lstm_forward(const Tensor& xw_in, const Tensor& h0, const Tensor& c0,
                                 const Tensor& w_hh_in, const OptTensor& b_ih_in,
                                 const OptTensor& b_hh_in,
                                 const OptTensor& peep_in, const OptTensor& ln_hh_w_in,
                                 const OptTensor& ln_hh_b_in, const OptTensor& ln_c_w_in,
                                 const OptTensor& ln_c_b_in, const OptTensor& w_hr_in,
                                 const OptTensor& rmask_in, const OptTensor& mask_in,
                                 bool coupled, bool reverse, bool zero_out, bool keep) {
  check_lstm_forward(xw_in, h0, c0, w_hh_in, b_ih_in, b_hh_in, peep_in, ln_hh_w_in, ln_hh_b_in,
                     ln_c_w_in, ln_c_b_in, w_hr_in, rmask_in, mask_in, coupled);
  const Tensor xw = xw_in.contiguous(), w_hh = w_hh_in.contiguous();
  // Both biases add to the pre-activations z: one vector b_ih + b_hh.
  const Tensor b_hh = has(b_ih_in) && has(b_hh_in) ? b_ih_in->add(*b_hh_in)
                      : has(b_ih_in)                ? b_ih_in->contiguous()
                                                    : contig(b_hh_in);
  const Tensor peep = contig(peep_in), ln_hh_w = contig(ln_hh_w_in),
               ln_hh_b = contig(ln_hh_b_in), ln_c_w = contig(ln_c_w_in),
               ln_c_b = contig(ln_c_b_in), w_hr = contig(w_hr_in), rmask = contig(rmask_in),
               mask = contig(mask_in);
  const int64_t T_ = xw.size(0), B = xw.size(1), H = c0.size(1), P = h0.size(1);
  auto o = xw.options();
  Tensor hbuf = at::empty({T_ + 1, B, P}, o), cbuf = at::empty({T_ + 1, B, H}, o);
  hbuf[reverse ? T_ : 0].copy_(h0);
  cbuf[reverse ? T_ : 0].copy_(c0);
  const int64_t Tk = keep ? T_ : 0;  // without backward or recording nothing per step is kept
  Tensor gates = at::empty({Tk, B, 4 * H}, o), tc = at::empty({Tk, B, H}, o);
  Tensor out = mask.defined() ? at::empty({T_, B, P}, o) : at::empty({0}, o);
  const bool ln = ln_hh_w.defined() && keep;
  Tensor hh_xhat = ln ? at::empty({T_, B, xw.size(2)}, o) : at::empty({0}, o);
  Tensor hh_rstd = ln ? at::empty({T_, B}, o) : at::empty({0}, o);
  Tensor c_xhat = ln ? at::empty({T_, B, H}, o) : at::empty({0}, o);
  Tensor c_rstd = ln ? at::empty({T_, B}, o) : at::empty({0}, o);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "lstm_forward", [&] {
    auto a = lstm_data<scalar_t>(xw, w_hh, b_hh, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, w_hr,
                                 rmask, mask, coupled, reverse, zero_out, H);
    a.keep = keep;
    a.hbuf = hbuf.data_ptr<scalar_t>();
    a.cbuf = cbuf.data_ptr<scalar_t>();
    a.gates = mptr<scalar_t>(gates);
    a.tc = mptr<scalar_t>(tc);
    a.out = mptr<scalar_t>(out);
    a.hh_xhat = mptr<scalar_t>(hh_xhat);
    a.hh_rstd = mptr<scalar_t>(hh_rstd);
    a.c_xhat = mptr<scalar_t>(c_xhat);
    a.c_rstd = mptr<scalar_t>(c_rstd);
    for_row_chunks(B, chunks_for(B),
                   [&](int64_t, int64_t b0, int64_t b1) { lstm_forward_rows(a, b0, b1); });
  });
  return {hbuf, cbuf, gates, tc, out, hh_xhat, hh_rstd, c_xhat, c_rstd};
}

// Backward of lstm_forward. `saved` is lstm_forward's result; grads of hbuf, cbuf, gates and out
// may be absent. Returns [d_xw, d_h0, d_c0, d_w_hh, d_b_ih, d_b_hh, d_peep (3,H), d_ln_hh_w,
// d_ln_hh_b, d_ln_c_w, d_ln_c_b, d_w_hr] (empty where the input is absent).
std::vector<Tensor> lstm_backward(
    const Tensor& w_hh_in, const OptTensor& b_ih_in, const OptTensor& b_hh_in,
    const OptTensor& peep_in, const OptTensor& ln_hh_w_in, const OptTensor& ln_hh_b_in,
    const OptTensor& ln_c_w_in, const OptTensor& ln_c_b_in, const OptTensor& w_hr_in,
    const OptTensor& rmask_in, const OptTensor& mask_in, bool coupled, bool reverse,
    bool zero_out, at::TensorList saved, const OptTensor& d_hbuf_in, const OptTensor& d_cbuf_in,
    const OptTensor& d_gates_in, const OptTensor& d_out_in) {
  check_lstm_backward(w_hh_in, b_ih_in, b_hh_in, peep_in, ln_hh_w_in, ln_hh_b_in, ln_c_w_in,
                      ln_c_b_in, w_hr_in, rmask_in, mask_in, coupled, saved, d_hbuf_in, d_cbuf_in,
                      d_gates_in, d_out_in);
  const Tensor hbuf = saved[0].contiguous(), cbuf = saved[1].contiguous(),
               gates = saved[2].contiguous(), tc = saved[3].contiguous();
  const Tensor w_hh = w_hh_in.contiguous();
  const Tensor b_hh = contig(b_hh_in), peep = contig(peep_in), ln_hh_w = contig(ln_hh_w_in),
               ln_hh_b = contig(ln_hh_b_in), ln_c_w = contig(ln_c_w_in),
               ln_c_b = contig(ln_c_b_in), w_hr = contig(w_hr_in), rmask = contig(rmask_in),
               mask = contig(mask_in);
  // The layer norms' statistics (read, and checked, only with layer norm); saved[4] is not read.
  const bool ln = ln_hh_w.defined(), proj = w_hr.defined();
  const Tensor hh_xhat = ln ? saved[5].contiguous() : Tensor(),
               hh_rstd = ln ? saved[6].contiguous() : Tensor(),
               c_xhat = ln ? saved[7].contiguous() : Tensor(),
               c_rstd = ln ? saved[8].contiguous() : Tensor();
  const Tensor d_hbuf = contig(d_hbuf_in), d_cbuf = contig(d_cbuf_in),
               d_gates = contig(d_gates_in), d_out = contig(d_out_in);
  const int64_t T_ = gates.size(0), B = gates.size(1), GH = w_hh.size(0), H = cbuf.size(2),
                P = hbuf.size(2);
  auto o = gates.options();
  Tensor dxw = at::empty({T_, B, GH}, o);
  Tensor dhw = ln ? at::empty({T_, B, GH}, o) : dxw;
  Tensor dhs = proj ? at::empty({T_, B, P}, o) : Tensor();
  const int64_t chunks = chunks_for(B);
  Tensor sums = at::zeros({chunks, 2 * GH + 5 * H}, o.dtype(at::kDouble));
  Tensor dh0 = at::empty({B, P}, o), dc0 = at::empty({B, H}, o);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
    auto a = lstm_data<scalar_t>(dxw, w_hh, b_hh, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, w_hr,
                                 rmask, mask, coupled, reverse, zero_out, H);
    a.hbuf = hbuf.data_ptr<scalar_t>();
    a.cbuf = cbuf.data_ptr<scalar_t>();
    a.gates = gates.data_ptr<scalar_t>();
    a.tc = tc.data_ptr<scalar_t>();
    a.hh_xhat = mptr<scalar_t>(hh_xhat);
    a.hh_rstd = mptr<scalar_t>(hh_rstd);
    a.c_xhat = mptr<scalar_t>(c_xhat);
    a.c_rstd = mptr<scalar_t>(c_rstd);
    LSTMGrad<scalar_t> d{};
    d.d_hbuf = mptr<scalar_t>(d_hbuf);
    d.d_cbuf = mptr<scalar_t>(d_cbuf);
    d.d_gates = mptr<scalar_t>(d_gates);
    d.d_out = mask.defined() ? mptr<scalar_t>(d_out) : nullptr;
    d.dxw = dxw.data_ptr<scalar_t>();
    d.dhw = dhw.data_ptr<scalar_t>();
    d.dhs = mptr<scalar_t>(dhs);
    d.sums = sums.data_ptr<double>();
    d.dh0 = dh0.data_ptr<scalar_t>();
    d.dc0 = dc0.data_ptr<scalar_t>();
    for_row_chunks(B, chunks, [&](int64_t c, int64_t b0, int64_t b1) {
      lstm_backward_rows(a, d, c, b0, b1);
    });
  });
  // Parameter gradients: one GEMM / reduction over all T·B rows.
  const Tensor h_prev = prev_states(hbuf, reverse);
  Tensor d_w_hh = weight_grad(dhw, h_prev, opt(rmask), rmask.defined() ? (coupled ? 3 : 4) : 1);
  const Tensor total = sums.sum(0).to(o.dtype());
  auto part = [&](int64_t offset, int64_t n) { return total.narrow(0, offset, n); };
  // b_ih and b_hh add to z (after the layer norms): both gradients are Σ dz.
  Tensor d_b_hh = b_hh.defined() ? part(0, GH) : Tensor();
  Tensor d_b_ih = has(b_ih_in) ? part(0, GH).clone() : Tensor();
  Tensor d_peep = peep.defined() ? part(2 * GH + 2 * H, 3 * H).view({3, H}) : Tensor();
  Tensor d_ln_hh_w, d_ln_hh_b, d_ln_c_w, d_ln_c_b, d_w_hr;
  if (ln) {
    d_ln_hh_w = part(GH, GH);
    d_ln_hh_b = part(0, GH).clone();
    d_ln_c_w = part(2 * GH, H);
    d_ln_c_b = part(2 * GH + H, H);
  }
  if (proj) {  // h = W_hr (o ⊙ tanh(c)): dW_hr = Σ dh^T m
    Tensor m = gates.narrow(2, 3 * H, H).mul(tc);
    d_w_hr = at::mm(dhs.reshape({T_ * B, P}).t(), m.reshape({T_ * B, H}));
  }
  return {dxw,       dh0,       dc0,      d_w_hh,   d_b_ih, d_b_hh,
          d_peep,    d_ln_hh_w, d_ln_hh_b, d_ln_c_w, d_ln_c_b, d_w_hr};
}

// ==========================================================================================
// GRU
// ==========================================================================================

template <typename T>
struct GRUData {
  int64_t T_, B, H, Gm;
  bool reset_after, reverse, zero_out;
  bool keep;       // keep every step's gates (else: per-chunk scratch)
  const T* xw;     // (T, B, 3H) W_ih x + b_ih, blocks r, z, n
  const T* w_hh;   // (3H, H)
  const T* b_ih;   // (3H,) or null: b_ir, b_iz, b_in
  const T* b_hh;   // (3H,) or null: b_hr, b_hz, b_hn
  const T* rmask;  // (Gm, B, H) or null
  const bool* mask;
  T* hbuf;   // (T+1, B, H)
  T* gates;  // (T, B, 3H): r, z, n
  T* hn;     // (T, B, H): W_hn h + b_hn (reset_after) or r ⊙ h (reset before)
  T* out;    // (T, B, H) with a mask
};

template <typename T>
void gru_forward_rows(const GRUData<T>& a, int64_t b0, int64_t b1) {
  const int64_t R = b1 - b0, H = a.H, B = a.B, T_ = a.T_, G3 = 3 * H;
  std::vector<T> hw(R * G3), scratch(R * H), zeros(G3, T(0));
  const T* b_hh = a.b_hh ? a.b_hh : zeros.data();
  const T* b_ih = a.b_ih ? a.b_ih : zeros.data();
  const T* w_hn = a.w_hh + 2 * H * H;
  // W_hh h for the blocks that see h (r, z, and n with reset_after), and W_hn (r ⊙ h)
  const int64_t blocks = a.reset_after ? 3 : 2;
  std::optional<FixedGemm<T>> whole, prod_n;
  if (a.Gm <= 1) whole.emplace(true, R, blocks * H, H, a.w_hh, H);
  if (!a.reset_after) prod_n.emplace(true, R, H, H, w_hn, H);
  std::vector<T> local(a.keep ? 0 : R * 4 * H);
  auto row = [&](T* buf, int64_t width, int64_t offset, int64_t tb, int64_t r) {
    return a.keep ? buf + tb * width : local.data() + R * offset + r * width;
  };
  for (int64_t s = 0; s < T_; ++s) {
    const Step st(s, T_, a.reverse);
    const T* h_prev = a.hbuf + (st.prev * B + b0) * H;
    T* h_next = a.hbuf + (st.next * B + b0) * H;
    if (a.reset_after) {
      // W_hh h_{t-1} for all three blocks: (R, 3H)
      recurrent_product(h_prev, R, H, a.w_hh, 3, H, a.rmask, a.Gm, B, b0, 0, scratch.data(),
                        hw.data(), G3, whole ? &*whole : nullptr);
      for (int64_t r = 0; r < R; ++r) {
        const int64_t tb = st.t * B + b0 + r;
        const T* x = a.xw + tb * G3;
        const T* u = hw.data() + r * G3;
        const T* hp = h_prev + r * H;
        T* gr = row(a.gates, G3, 0, tb, r);
        T* gz = gr + H;
        T* gn = gr + 2 * H;
        T* hnv = row(a.hn, H, G3, tb, r);
        T* h = h_next + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T rv = sigmoid(x[j] + b_ih[j] + (u[j] + b_hh[j]));              // r_t
          const T zv = sigmoid(x[H + j] + b_ih[H + j] + (u[H + j] + b_hh[H + j]));  // z_t
          const T un = u[2 * H + j] + b_hh[2 * H + j];  // W_hn h + b_hn
          const T nv = tanh_(x[2 * H + j] + b_ih[2 * H + j] + rv * un);  // n_t = tanh(… + r ⊙ (…))
          h[j] = (T(1) - zv) * nv + zv * hp[j];                       // h_t
          gr[j] = rv;
          gz[j] = zv;
          gn[j] = nv;
          hnv[j] = un;
        }
      }
    } else {
      // W_h{r,z} h_{t-1}: (R, 2H); then n needs r ⊙ h first.
      recurrent_product(h_prev, R, H, a.w_hh, 2, H, a.rmask, a.Gm, B, b0, 0, scratch.data(),
                        hw.data(), G3, whole ? &*whole : nullptr);
      const T* m_n = a.Gm == 0 ? nullptr
                               : a.rmask + ((a.Gm > 1 ? 2 : 0) * B + b0) * H;  // mask of n
      for (int64_t r = 0; r < R; ++r) {
        const int64_t tb = st.t * B + b0 + r;
        const T* x = a.xw + tb * G3;
        const T* u = hw.data() + r * G3;
        const T* hp = h_prev + r * H;
        T* gr = row(a.gates, G3, 0, tb, r);
        T* gz = gr + H;
        T* rh = row(a.hn, H, G3, tb, r);
        const T* mn = m_n ? m_n + r * H : nullptr;
        for (int64_t j = 0; j < H; ++j) {
          const T rv = sigmoid(x[j] + b_ih[j] + (u[j] + b_hh[j]));
          gr[j] = rv;
          gz[j] = sigmoid(x[H + j] + b_ih[H + j] + (u[H + j] + b_hh[H + j]));
          rh[j] = rv * (mn ? hp[j] * mn[j] : hp[j]);  // r_t ⊙ (h_{t-1} ⊙ m_n)
        }
      }
      // W_hn (r ⊙ h): (R, H), rows of this chunk are contiguous in hn[t].
      (*prod_n)(row(a.hn, H, G3, st.t * B + b0, 0), H, T(0), scratch.data(), H);
      for (int64_t r = 0; r < R; ++r) {
        const int64_t tb = st.t * B + b0 + r;
        const T* x = a.xw + tb * G3;
        const T* un = scratch.data() + r * H;
        const T* hp = h_prev + r * H;
        const T* gz = row(a.gates, G3, 0, tb, r) + H;
        T* gn = row(a.gates, G3, 0, tb, r) + 2 * H;
        T* h = h_next + r * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T nv = tanh_(x[2 * H + j] + b_ih[2 * H + j] + (un[j] + b_hh[2 * H + j]));  // n_t
          gn[j] = nv;
          h[j] = (T(1) - gz[j]) * nv + gz[j] * hp[j];  // h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
        }
      }
    }
    if (a.mask) {
      carry_masked_state(h_next, h_prev, a.mask, st.t, T_, b0, R, H);
      write_masked_output(a.out, h_next, a.mask, st, s, a.reverse, T_, B, H, b0, R, a.zero_out);
    }
  }
}

template <typename T>
struct GRUGrad {
  const T* d_hbuf;
  const T* d_gates;  // (T, B, 3H) or null
  const T* d_out;
  T* dxw;  // (T, B, 3H)
  T* dhw;  // (T, B, 3H) gradient of W_hh h + b_hh (reset_after; else == dxw)
  T* dh0;
};

template <typename T>
void gru_backward_rows(const GRUData<T>& a, const GRUGrad<T>& d, int64_t b0, int64_t b1) {
  const int64_t R = b1 - b0, H = a.H, B = a.B, T_ = a.T_, G3 = 3 * H;
  std::vector<T> dh(R * H, T(0)), carry(a.mask ? R * H : 0, T(0)), dh_step(R * H),
      direct(R * H), drh(R * H), scratch(R * H), zeros(G3, T(0));
  const T* w_hn = a.w_hh + 2 * H * H;
  const int64_t blocks = a.reset_after ? 3 : 2;
  std::optional<FixedGemm<T>> whole, prod_n;  // dz W_hh (blocks that see h), dz_n W_hn
  if (a.Gm <= 1) whole.emplace(false, R, H, blocks * H, a.w_hh, H);
  if (!a.reset_after) prod_n.emplace(false, R, H, H, w_hn, H);
  for (int64_t s = T_ - 1; s >= 0; --s) {
    const Step st(s, T_, a.reverse);
    incoming_h_grad(dh.data(), carry.data(), dh_step.data(), d.d_hbuf, d.d_out, a.mask, st, T_,
                    B, H, b0, R, a.zero_out);
    const T* h_prev_all = a.hbuf + (st.prev * B + b0) * H;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t tb = st.t * B + b0 + r;
      const T* gr = a.gates + tb * G3;
      const T* gz = gr + H;
      const T* gn = gr + 2 * H;
      const T* dg = d.d_gates ? d.d_gates + tb * G3 : zeros.data();
      const T* hp = h_prev_all + r * H;
      const T* dhr = dh_step.data() + r * H;
      const T* hnv = a.hn + tb * H;
      T* dx = d.dxw + tb * G3;
      T* dw = d.dhw + tb * G3;
      T* dd = direct.data() + r * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const T rv = gr[j], zv = gz[j], nv = gn[j];
        const T dn = dhr[j] * (T(1) - zv) + dg[2 * H + j];      // ∂h/∂n = 1 - z
        const T dzv = dhr[j] * (hp[j] - nv) + dg[H + j];        // ∂h/∂z = h_{t-1} - n
        dd[j] = dhr[j] * zv;                                    // ∂h/∂h_{t-1} (direct)
        const T dzn = dn * (T(1) - nv * nv);                    // tanh'
        dx[2 * H + j] = dzn;
        dx[H + j] = dzv * zv * (T(1) - zv);
        dw[2 * H + j] = a.reset_after ? dzn * rv : dzn;
        // reset_after: ∂/∂r = dzn ⊙ (W_hn h + b_hn); the other case is finished below.
        dx[j] = a.reset_after ? (dzn * hnv[j] + dg[j]) * rv * (T(1) - rv) : T(0);
        dw[j] = dx[j];
        dw[H + j] = dx[H + j];
      }
    }
    if (!a.reset_after) {
      // n = tanh(x_n + W_hn (r ⊙ h̃) + b_hn), h̃ = h ⊙ m_n: ∂/∂(r ⊙ h̃) = dzn W_hn
      (*prod_n)(d.dxw + (st.t * B + b0) * G3 + 2 * H, G3, T(0), drh.data(), H);
      const T* m_n = a.Gm == 0 ? nullptr : a.rmask + ((a.Gm > 1 ? 2 : 0) * B + b0) * H;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t tb = st.t * B + b0 + r;
        const T* gr = a.gates + tb * G3;
        const T* dg = d.d_gates ? d.d_gates + tb * G3 : zeros.data();
        const T* hp = h_prev_all + r * H;
        const T* mn = m_n ? m_n + r * H : nullptr;
        const T* dq = drh.data() + r * H;
        T* dx = d.dxw + tb * G3;
        T* dd = direct.data() + r * H;
        for (int64_t j = 0; j < H; ++j) {
          const T m = mn ? mn[j] : T(1);
          const T rv = gr[j];
          const T dr = dq[j] * hp[j] * m + dg[j];
          dd[j] += dq[j] * rv * m;
          dx[j] = dr * rv * (T(1) - rv);
        }
      }
    }
    // dh_{t-1} = direct + Σ_k (dz_k W_hk) ⊙ m_k (k over r, z, n with reset_after; r, z else)
    const T* src = (a.reset_after ? d.dhw : d.dxw) + (st.t * B + b0) * G3;
    recurrent_product_backward(src, G3, R, H, a.w_hh, blocks, H, a.rmask, a.Gm, B, b0, 0,
                               scratch.data(), direct.data(), true, whole ? &*whole : nullptr);
    for (int64_t r = 0; r < R; ++r) {
      const bool valid = a.mask == nullptr || a.mask[(b0 + r) * T_ + st.t];
      T* dr = dh.data() + r * H;
      const T* dp = direct.data() + r * H;
      if (valid) {
        std::copy(dp, dp + H, dr);
      } else {
        for (int64_t j = 0; j < H; ++j) dr[j] += dp[j];
      }
    }
  }
  std::copy(dh.begin(), dh.end(), d.dh0 + b0 * H);
}

// Returns [hbuf (T+1,B,H), gates (T,B,3H), hn (T,B,H), out (T,B,H) or empty].
std::vector<Tensor> gru_forward(const Tensor& xw_in, const Tensor& h0, const Tensor& w_hh_in,
                                const OptTensor& b_ih_in, const OptTensor& b_hh_in,
                                const OptTensor& rmask_in,
                                const OptTensor& mask_in, bool reset_after, bool reverse,
                                bool zero_out, bool keep) {
  check_gru_forward(xw_in, h0, w_hh_in, b_ih_in, b_hh_in, rmask_in, mask_in);
  const Tensor xw = xw_in.contiguous(), w_hh = w_hh_in.contiguous(), b_hh = contig(b_hh_in),
               b_ih = contig(b_ih_in), rmask = contig(rmask_in), mask = contig(mask_in);
  const int64_t T_ = xw.size(0), B = xw.size(1), H = h0.size(1);
  auto o = xw.options();
  Tensor hbuf = at::empty({T_ + 1, B, H}, o);
  hbuf[reverse ? T_ : 0].copy_(h0);
  const int64_t Tk = keep ? T_ : 0;
  Tensor gates = at::empty({Tk, B, 3 * H}, o), hn = at::empty({Tk, B, H}, o);
  Tensor out = mask.defined() ? at::empty({T_, B, H}, o) : at::empty({0}, o);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "gru_forward", [&] {
    GRUData<scalar_t> a{T_, B, H, rmask.defined() ? rmask.size(0) : 0, reset_after, reverse,
                        zero_out, keep};
    a.xw = xw.data_ptr<scalar_t>();
    a.w_hh = w_hh.data_ptr<scalar_t>();
    a.b_ih = b_ih.defined() ? b_ih.data_ptr<scalar_t>() : nullptr;
    a.b_hh = b_hh.defined() ? b_hh.data_ptr<scalar_t>() : nullptr;
    a.rmask = rmask.defined() ? rmask.data_ptr<scalar_t>() : nullptr;
    a.mask = mask.defined() ? mask.data_ptr<bool>() : nullptr;
    a.hbuf = hbuf.data_ptr<scalar_t>();
    a.gates = mptr<scalar_t>(gates);
    a.hn = mptr<scalar_t>(hn);
    a.out = mptr<scalar_t>(out);
    for_row_chunks(B, chunks_for(B),
                   [&](int64_t, int64_t b0, int64_t b1) { gru_forward_rows(a, b0, b1); });
  });
  return {hbuf, gates, hn, out};
}

// Returns [d_xw, d_h0, d_w_hh, d_b_ih, d_b_hh].
std::vector<Tensor> gru_backward(const Tensor& w_hh_in, const OptTensor& b_ih_in,
                                 const OptTensor& b_hh_in, const OptTensor& rmask_in,
                                 const OptTensor& mask_in, bool reset_after, bool reverse,
                                 bool zero_out, at::TensorList saved,
                                 const OptTensor& d_hbuf_in, const OptTensor& d_gates_in,
                                 const OptTensor& d_out_in) {
  check_gru_backward(w_hh_in, b_ih_in, b_hh_in, rmask_in, mask_in, saved, d_hbuf_in, d_gates_in,
                     d_out_in);
  const Tensor hbuf = saved[0].contiguous(), gates = saved[1].contiguous(),
               hn = saved[2].contiguous();
  const Tensor w_hh = w_hh_in.contiguous(), b_hh = contig(b_hh_in), rmask = contig(rmask_in),
               mask = contig(mask_in);
  const Tensor d_hbuf = contig(d_hbuf_in), d_gates = contig(d_gates_in),
               d_out = contig(d_out_in);
  const int64_t T_ = gates.size(0), B = gates.size(1), H = hbuf.size(2);
  auto o = gates.options();
  Tensor dxw = at::empty({T_, B, 3 * H}, o);
  Tensor dhw = reset_after ? at::empty({T_, B, 3 * H}, o) : dxw;
  Tensor dh0 = at::empty({B, H}, o);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_backward", [&] {
    GRUData<scalar_t> a{T_, B, H, rmask.defined() ? rmask.size(0) : 0, reset_after, reverse,
                        zero_out, true};
    a.w_hh = w_hh.data_ptr<scalar_t>();
    a.b_hh = b_hh.defined() ? b_hh.data_ptr<scalar_t>() : nullptr;
    a.rmask = rmask.defined() ? rmask.data_ptr<scalar_t>() : nullptr;
    a.mask = mask.defined() ? mask.data_ptr<bool>() : nullptr;
    a.hbuf = hbuf.data_ptr<scalar_t>();
    a.gates = gates.data_ptr<scalar_t>();
    a.hn = hn.data_ptr<scalar_t>();
    GRUGrad<scalar_t> d{};
    d.d_hbuf = mptr<scalar_t>(d_hbuf);
    d.d_gates = mptr<scalar_t>(d_gates);
    d.d_out = mask.defined() ? mptr<scalar_t>(d_out) : nullptr;
    d.dxw = dxw.data_ptr<scalar_t>();
    d.dhw = dhw.data_ptr<scalar_t>();
    d.dh0 = dh0.data_ptr<scalar_t>();
    for_row_chunks(B, chunks_for(B),
                   [&](int64_t, int64_t b0, int64_t b1) { gru_backward_rows(a, d, b0, b1); });
  });
  const Tensor h_prev = prev_states(hbuf, reverse);
  Tensor d_w_hh;
  if (reset_after) {
    d_w_hh = weight_grad(dhw, h_prev, opt(rmask), rmask.defined() ? 3 : 1);
  } else {
    // r, z blocks see h ⊙ m_{r,z}; the n block sees r ⊙ (h ⊙ m_n), kept in hn.
    Tensor d_rz = weight_grad(dxw.narrow(2, 0, 2 * H), h_prev, opt(rmask),
                              rmask.defined() ? 2 : 1);
    Tensor d_n = at::mm(dxw.narrow(2, 2 * H, H).reshape({T_ * B, H}).t(),
                        hn.reshape({T_ * B, H}));
    d_w_hh = at::cat({d_rz, d_n}, 0);
  }
  Tensor d_b_hh = b_hh.defined() ? dhw.sum({0, 1}) : Tensor();
  Tensor d_b_ih = has(b_ih_in) ? dxw.sum({0, 1}) : Tensor();  // b_ih adds to xw
  return {dxw, dh0, d_w_hh, d_b_ih, d_b_hh};
}

// ==========================================================================================
// SimpleRNN: h_t = act(xw_t + W_hh (h_{t-1} ⊙ m) + b_hh), act = tanh or relu
// ==========================================================================================

template <typename T>
struct RNNData {
  int64_t T_, B, H, Gm;
  bool relu, reverse, zero_out;
  bool keep;  // keep h_t as computed (for backward)
  const T* xw;
  const T* w_hh;
  const T* b_hh;
  const T* rmask;
  const bool* mask;
  T* hbuf;
  T* hcomp;  // (T, B, H) h_t as computed (before the mask carries the state)
  T* out;
};

template <typename T>
void rnn_forward_rows(const RNNData<T>& a, int64_t b0, int64_t b1) {
  const int64_t R = b1 - b0, H = a.H, B = a.B, T_ = a.T_;
  std::vector<T> hw(R * H), scratch(a.Gm ? R * H : 0), zeros(H, T(0));
  const T* b_hh = a.b_hh ? a.b_hh : zeros.data();
  const FixedGemm<T> whole(true, R, H, H, a.w_hh, H);
  for (int64_t s = 0; s < T_; ++s) {
    const Step st(s, T_, a.reverse);
    const T* h_prev = a.hbuf + (st.prev * B + b0) * H;
    T* h_next = a.hbuf + (st.next * B + b0) * H;
    recurrent_product(h_prev, R, H, a.w_hh, 1, H, a.rmask, a.Gm > 0 ? 1 : 0, B, b0, 0,
                      scratch.data(), hw.data(), H, &whole);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t tb = st.t * B + b0 + r;
      const T* x = a.xw + tb * H;
      const T* u = hw.data() + r * H;
      T* h = h_next + r * H;
      if (a.relu) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const T v = x[j] + (u[j] + b_hh[j]);
          h[j] = v > T(0) ? v : T(0);
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) h[j] = tanh_(x[j] + (u[j] + b_hh[j]));
      }
      if (a.keep) std::copy(h, h + H, a.hcomp + tb * H);
    }
    if (a.mask) {
      carry_masked_state(h_next, h_prev, a.mask, st.t, T_, b0, R, H);
      write_masked_output(a.out, h_next, a.mask, st, s, a.reverse, T_, B, H, b0, R, a.zero_out);
    }
  }
}

template <typename T>
void rnn_backward_rows(const RNNData<T>& a, const T* d_hbuf, const T* d_out, T* dxw, T* dh0,
                       int64_t b0, int64_t b1) {
  const int64_t R = b1 - b0, H = a.H, B = a.B, T_ = a.T_;
  std::vector<T> dh(R * H, T(0)), carry(a.mask ? R * H : 0, T(0)), dh_step(R * H),
      dh_prev(R * H), scratch(a.Gm ? R * H : 0);
  const FixedGemm<T> whole(false, R, H, H, a.w_hh, H);
  for (int64_t s = T_ - 1; s >= 0; --s) {
    const Step st(s, T_, a.reverse);
    incoming_h_grad(dh.data(), carry.data(), dh_step.data(), d_hbuf, d_out, a.mask, st, T_, B,
                    H, b0, R, a.zero_out);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t tb = st.t * B + b0 + r;
      const T* hc = a.hcomp + tb * H;
      const T* g = dh_step.data() + r * H;
      T* dz = dxw + tb * H;
      if (a.relu) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dz[j] = hc[j] > T(0) ? g[j] : T(0);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dz[j] = g[j] * (T(1) - hc[j] * hc[j]);
      }
    }
    recurrent_product_backward(dxw + (st.t * B + b0) * H, H, R, H, a.w_hh, 1, H, a.rmask,
                               a.Gm > 0 ? 1 : 0, B, b0, 0, scratch.data(), dh_prev.data(), false,
                               &whole);
    for (int64_t r = 0; r < R; ++r) {
      const bool valid = a.mask == nullptr || a.mask[(b0 + r) * T_ + st.t];
      T* dr = dh.data() + r * H;
      const T* dp = dh_prev.data() + r * H;
      if (valid) {
        std::copy(dp, dp + H, dr);
      } else {
        for (int64_t j = 0; j < H; ++j) dr[j] += dp[j];
      }
    }
  }
  std::copy(dh.begin(), dh.end(), dh0 + b0 * H);
}

template <typename T>
RNNData<T> rnn_data(const Tensor& xw, const Tensor& w_hh, const Tensor& b_hh,
                    const Tensor& rmask, const Tensor& mask, bool relu, bool reverse,
                    bool zero_out, int64_t H) {
  RNNData<T> a{xw.size(0), xw.size(1), H, rmask.defined() ? rmask.size(0) : 0, relu, reverse,
               zero_out, true};
  a.xw = xw.data_ptr<T>();
  a.w_hh = w_hh.data_ptr<T>();
  a.b_hh = b_hh.defined() ? b_hh.data_ptr<T>() : nullptr;
  a.rmask = rmask.defined() ? rmask.data_ptr<T>() : nullptr;
  a.mask = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  return a;
}

// Returns [hbuf (T+1,B,H), hcomp (T,B,H), out (T,B,H) or empty].
std::vector<Tensor> rnn_forward(const Tensor& xw_in, const Tensor& h0, const Tensor& w_hh_in,
                                const OptTensor& b_ih_in, const OptTensor& b_hh_in,
                                const OptTensor& rmask_in, const OptTensor& mask_in, bool relu,
                                bool reverse, bool zero_out, bool keep) {
  check_rnn_forward(xw_in, h0, w_hh_in, b_ih_in, b_hh_in, rmask_in, mask_in);
  const Tensor xw = xw_in.contiguous(), w_hh = w_hh_in.contiguous(),
               rmask = contig(rmask_in), mask = contig(mask_in);
  // Both biases add to the pre-activation: one vector b_ih + b_hh.
  const Tensor b_hh = has(b_ih_in) && has(b_hh_in) ? b_ih_in->add(*b_hh_in)
                      : has(b_ih_in)                ? b_ih_in->contiguous()
                                                    : contig(b_hh_in);
  const int64_t T_ = xw.size(0), B = xw.size(1), H = h0.size(1);
  auto o = xw.options();
  Tensor hbuf = at::empty({T_ + 1, B, H}, o);
  hbuf[reverse ? T_ : 0].copy_(h0);
  Tensor hcomp = at::empty({keep ? T_ : 0, B, H}, o);
  Tensor out = mask.defined() ? at::empty({T_, B, H}, o) : at::empty({0}, o);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "rnn_forward", [&] {
    auto a = rnn_data<scalar_t>(xw, w_hh, b_hh, rmask, mask, relu, reverse, zero_out, H);
    a.keep = keep;
    a.hbuf = hbuf.data_ptr<scalar_t>();
    a.hcomp = mptr<scalar_t>(hcomp);
    a.out = mptr<scalar_t>(out);
    for_row_chunks(B, chunks_for(B),
                   [&](int64_t, int64_t b0, int64_t b1) { rnn_forward_rows(a, b0, b1); });
  });
  return {hbuf, hcomp, out};
}

// Returns [d_xw, d_h0, d_w_hh, d_b_ih, d_b_hh].
std::vector<Tensor> rnn_backward(const Tensor& w_hh_in, const OptTensor& b_ih_in,
                                 const OptTensor& b_hh_in, const OptTensor& rmask_in,
                                 const OptTensor& mask_in, bool relu, bool reverse,
                                 bool zero_out, at::TensorList saved,
                                 const OptTensor& d_hbuf_in, const OptTensor& d_out_in) {
  check_rnn_backward(w_hh_in, b_ih_in, b_hh_in, rmask_in, mask_in, saved, d_hbuf_in, d_out_in);
  const Tensor hbuf = saved[0].contiguous(), hcomp = saved[1].contiguous();
  const Tensor w_hh = w_hh_in.contiguous(), b_hh = contig(b_hh_in), rmask = contig(rmask_in),
               mask = contig(mask_in);
  const Tensor d_hbuf = contig(d_hbuf_in), d_out = contig(d_out_in);
  const int64_t T_ = hcomp.size(0), B = hcomp.size(1), H = hbuf.size(2);
  auto o = hcomp.options();
  Tensor dxw = at::empty({T_, B, H}, o), dh0 = at::empty({B, H}, o);
  AT_DISPATCH_FLOATING_TYPES(hcomp.scalar_type(), "rnn_backward", [&] {
    auto a = rnn_data<scalar_t>(dxw, w_hh, b_hh, rmask, mask, relu, reverse, zero_out, H);
    a.hbuf = hbuf.data_ptr<scalar_t>();
    a.hcomp = hcomp.data_ptr<scalar_t>();
    const scalar_t* dhb = mptr<scalar_t>(d_hbuf);
    const scalar_t* dout = mask.defined() ? mptr<scalar_t>(d_out) : nullptr;
    scalar_t* dx = dxw.data_ptr<scalar_t>();
    scalar_t* dh = dh0.data_ptr<scalar_t>();
    for_row_chunks(B, chunks_for(B), [&](int64_t, int64_t b0, int64_t b1) {
      rnn_backward_rows(a, dhb, dout, dx, dh, b0, b1);
    });
  });
  Tensor d_w_hh = weight_grad(dxw, prev_states(hbuf, reverse), opt(rmask), 1);
  const bool any_bias = b_hh.defined() || has(b_ih_in);
  Tensor d_bias = any_bias ? dxw.sum({0, 1}) : Tensor();  // both biases add to the pre-activation
  Tensor d_b_ih = has(b_ih_in) ? d_bias : Tensor();
  Tensor d_b_hh = b_hh.defined() ? d_bias.clone() : Tensor();
  return {dxw, dh0, d_w_hh, d_b_ih, d_b_hh};
}

bool blas_direct() { return sgemm_ != nullptr && dgemm_ != nullptr; }

}  // namespace
}  // namespace lstmkit

TORCH_LIBRARY(lstmkit_compiled, m) {
  m.def(
      "lstm_forward(Tensor xw, Tensor h0, Tensor c0, Tensor w_hh, Tensor? b_ih, Tensor? b_hh,"
      " Tensor? peephole,"
      " Tensor? ln_hh_w, Tensor? ln_hh_b, Tensor? ln_c_w, Tensor? ln_c_b, Tensor? w_hr,"
      " Tensor? rec_mask, Tensor? mask, bool coupled, bool reverse, bool zero_output,"
      " bool keep) -> Tensor[]",
      &lstmkit::lstm_forward);
  m.def(
      "lstm_backward(Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? peephole, Tensor? ln_hh_w,"
      " Tensor? ln_hh_b, Tensor? ln_c_w, Tensor? ln_c_b, Tensor? w_hr, Tensor? rec_mask,"
      " Tensor? mask, bool coupled, bool reverse, bool zero_output, Tensor[] saved,"
      " Tensor? d_hbuf, Tensor? d_cbuf, Tensor? d_gates, Tensor? d_out) -> Tensor[]",
      &lstmkit::lstm_backward);
  m.def(
      "gru_forward(Tensor xw, Tensor h0, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? rec_mask,"
      " Tensor? mask, bool reset_after, bool reverse, bool zero_output, bool keep) -> Tensor[]",
      &lstmkit::gru_forward);
  m.def(
      "gru_backward(Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? rec_mask, Tensor? mask,"
      " bool reset_after, bool reverse, bool zero_output, Tensor[] saved, Tensor? d_hbuf,"
      " Tensor? d_gates, Tensor? d_out) -> Tensor[]",
      &lstmkit::gru_backward);
  m.def(
      "rnn_forward(Tensor xw, Tensor h0, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? rec_mask,"
      " Tensor? mask, bool relu, bool reverse, bool zero_output, bool keep) -> Tensor[]",
      &lstmkit::rnn_forward);
  m.def(
      "rnn_backward(Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? rec_mask, Tensor? mask,"
      " bool relu, bool reverse, bool zero_output, Tensor[] saved, Tensor? d_hbuf,"
      " Tensor? d_out) -> Tensor[]",
      &lstmkit::rnn_backward);
  m.def("blas_direct() -> bool", &lstmkit::blas_direct);
}
