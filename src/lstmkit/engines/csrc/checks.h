// Argument checks of the compiled engine's ops (torch.ops.lstmkit_compiled.*).
//
// The kernels in compiled.cpp index raw buffers with sizes read from a few of their arguments;
// a caller that passes any other argument with fewer elements would make them read or write
// past its end. So every op first checks every tensor argument, in O(1): defined, on the CPU,
// the op's floating dtype (bool for the padding mask), its rank, and sizes consistent with the
// others. Strides need no check: the ops make every input contiguous (free when it already is).
//
// A failed check raises (TORCH_CHECK: RuntimeError in Python) a message that names the op, the
// argument, what was expected and what came, and where each expected size was read, e.g.
//   lstmkit_compiled.lstm_forward: 'w_hh' must have shape (G·H, P) = (16, 4), got (15, 4)
//   [G·H = 16: H = 4 from 'c0'.size(1), G = 4 gate blocks; P = 4 from 'h0'.size(1)]

#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace lstmkit {
namespace checks {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

// Whether an optional argument is given (an empty tensor counts as absent, as in the kernels).
inline bool present(const OptTensor& t) { return t.has_value() && t->defined() && t->numel() > 0; }

// An expected size: its symbol, its value, and where it was read: factor·arg.size(d) + offset
// (arg null for a constant). Only pointers to string literals, so that a check that passes
// allocates nothing; the words are made only for a message.
struct Dim {
  const char* sym;
  int64_t value;
  const char* arg = nullptr;
  int64_t d = 0, factor = 1, offset = 0;
  const char* note = "";
};

inline Dim constant(int64_t v) {
  static const char* const digits[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  TORCH_INTERNAL_ASSERT(v >= 0 && v <= 9);
  return {digits[v], v};
}

// "4·H = 16 from 4·'c0'.size(1) (gate blocks)", "T+1 = 4 from 'xw'.size(0) + 1", "" (constant)
inline std::string describe(const Dim& d) {
  std::ostringstream s;
  if (d.arg == nullptr && !*d.note) return "";
  s << d.sym << " = " << d.value;
  if (d.arg != nullptr) {
    s << " from ";
    if (d.factor != 1) s << d.factor << "·";
    s << "'" << d.arg << "'.size(" << d.d << ")";
    if (d.offset) s << " + " << d.offset;
  }
  if (*d.note) s << " (" << d.note << ")";
  return s.str();
}

inline std::string sizes_str(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << "(";
  for (size_t k = 0; k < sizes.size(); ++k) s << (k ? ", " : "") << sizes[k];
  s << (sizes.size() == 1 ? ",)" : ")");
  return s.str();
}

template <typename Items, typename F>
std::string tuple_str(const Items& items, F f) {
  std::string s = "(";
  size_t k = 0;
  for (const auto& item : items) s += (k++ ? ", " : "") + std::string(f(item));
  return s + (k == 1 ? ",)" : ")");
}

class Signature {
 public:
  explicit Signature(const char* op) : op_(op) {}

  // The first floating argument: it must be float32 or float64; every other one must match.
  void floating(const Tensor& t, const char* arg) {
    defined_on_cpu(t, arg);
    TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, prefix(arg),
                " must be float32 or float64, got ", t.scalar_type());
    dtype_ = t.scalar_type();
    dtype_arg_ = arg;
  }

  // Defined, on the CPU, of `dtype` (default: the op's floating dtype) and of `legend`'s rank.
  void rank(const Tensor& t, const char* arg, std::initializer_list<const char*> legend,
            std::optional<at::ScalarType> dtype = std::nullopt) const {
    rank(t, arg, legend.begin(), legend.size(), dtype);
  }

  // A size read from an argument already checked by rank(); it must fit the BLAS's int.
  Dim dim(const char* sym, const Tensor& t, const char* arg, int64_t d) const {
    const int64_t v = t.size(d);
    TORCH_CHECK(v <= INT_MAX, prefix(arg), " has size ", v, " in dimension ", d,
                ", more than the kernel's limit ", INT_MAX);
    return {sym, v, arg, d};
  }

  // rank() and then every size.
  void shape(const Tensor& t, const char* arg, std::initializer_list<Dim> dims,
             std::optional<at::ScalarType> dtype = std::nullopt, const char* note = "") const {
    const char* syms[4];
    TORCH_INTERNAL_ASSERT(dims.size() <= 4);
    size_t n = 0;
    for (const Dim& d : dims) syms[n++] = d.sym;
    rank(t, arg, syms, n, dtype);
    bool same = true;
    n = 0;
    for (const Dim& d : dims) same = same && t.size(int64_t(n++)) == d.value;
    if (same) return;
    std::string sources;
    for (const Dim& d : dims) {
      const std::string from = describe(d);
      if (!from.empty() && sources.find(from) == std::string::npos)
        sources += (sources.empty() ? "" : "; ") + from;
    }
    TORCH_CHECK(false, prefix(arg), " must have shape ",
                tuple_str(dims, [](const Dim& d) { return d.sym; }), " = ",
                tuple_str(dims, [](const Dim& d) { return std::to_string(d.value); }), note,
                ", got ", sizes_str(t.sizes()), sources.empty() ? "" : " [" + sources + "]");
  }

  // shape() where the optional argument is given.
  void optional(const OptTensor& t, const char* arg, std::initializer_list<Dim> dims,
                std::optional<at::ScalarType> dtype = std::nullopt) const {
    if (present(t)) shape(*t, arg, dims, dtype);
  }

  // A list argument (the saved tensors of a backward op) of a fixed length.
  void list(at::TensorList saved, const char* arg, size_t n, const char* what) const {
    TORCH_CHECK(saved.size() == n, prefix(arg), " must hold the ", n, " tensors ", what,
                ", got ", saved.size());
  }

  // Arguments that go together (the layer-norm gains): all given or none.
  void together(std::initializer_list<std::pair<const char*, const OptTensor*>> group) const {
    bool any = false, all = true;
    for (const auto& [name, t] : group) {
      any = any || present(*t);
      all = all && present(*t);
    }
    if (any == all) return;
    std::string given, missing;
    for (const auto& [name, t] : group) {
      std::string& s = present(*t) ? given : missing;
      s += (s.empty() ? "'" : ", '") + std::string(name) + "'";
    }
    TORCH_CHECK(false, op_, ": ", missing, " must be given with ", given,
                " (all of them or none), got None or an empty tensor");
  }

  const char* op() const { return op_; }
  std::string prefix(const char* arg) const { return std::string(op_) + ": '" + arg + "'"; }

 private:
  void rank(const Tensor& t, const char* arg, const char* const* legend, size_t n,
            std::optional<at::ScalarType> dtype) const {
    defined_on_cpu(t, arg);
    if (dtype.has_value()) {
      TORCH_CHECK(t.scalar_type() == *dtype, prefix(arg), " must have dtype ", *dtype, ", got ",
                  t.scalar_type());
    } else {
      TORCH_CHECK(t.scalar_type() == dtype_, prefix(arg), " must have dtype ", dtype_,
                  " (the dtype of '", dtype_arg_, "'), got ", t.scalar_type());
    }
    TORCH_CHECK(t.dim() == int64_t(n), prefix(arg), " must have ", n, " dimensions ",
                tuple_str(std::vector<const char*>(legend, legend + n),
                          [](const char* x) { return x; }),
                ", got ", t.dim(), ": ", sizes_str(t.sizes()));
  }

  void defined_on_cpu(const Tensor& t, const char* arg) const {
    TORCH_CHECK(t.defined(), prefix(arg), " must be a tensor, got an undefined tensor");
    TORCH_CHECK(t.device().is_cpu(), prefix(arg),
                " must be a CPU tensor (the compiled engine runs on the CPU), got a tensor on ",
                t.device());
  }

  const char* op_;
  at::ScalarType dtype_ = at::kFloat;
  const char* dtype_arg_ = "";
};

}  // namespace checks
}  // namespace lstmkit
