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

// An expected size: its symbol ("B", "G·H"), its value, and where it was read ("" for constants).
struct Dim {
  std::string sym;
  int64_t value;
  std::string from;
};

inline Dim constant(int64_t v) { return {std::to_string(v), v, ""}; }

inline std::string sizes_str(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << "(";
  for (size_t k = 0; k < sizes.size(); ++k) s << (k ? ", " : "") << sizes[k];
  s << (sizes.size() == 1 ? ",)" : ")");
  return s.str();
}

class Signature {
 public:
  explicit Signature(const char* op) : op_(op) {}

  // The first floating argument: it must be float32 or float64; every other one must match.
  void floating(const Tensor& t, const std::string& arg) {
    defined_on_cpu(t, arg);
    TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, prefix(arg),
                " must be float32 or float64, got ", t.scalar_type());
    dtype_ = t.scalar_type();
    dtype_arg_ = arg;
  }

  // Defined, on the CPU, of `dtype` (default: the op's floating dtype) and of `legend`'s rank.
  void rank(const Tensor& t, const std::string& arg, const std::vector<std::string>& legend,
            std::optional<at::ScalarType> dtype = std::nullopt) {
    defined_on_cpu(t, arg);
    if (dtype.has_value()) {
      TORCH_CHECK(t.scalar_type() == *dtype, prefix(arg), " must have dtype ", *dtype, ", got ",
                  t.scalar_type());
    } else {
      TORCH_CHECK(t.scalar_type() == dtype_, prefix(arg), " must have dtype ", dtype_,
                  " (the dtype of '", dtype_arg_, "'), got ", t.scalar_type());
    }
    TORCH_CHECK(t.dim() == int64_t(legend.size()), prefix(arg), " must have ", legend.size(),
                " dimensions ", legend_str(legend), ", got ", t.dim(), ": ",
                sizes_str(t.sizes()));
  }

  // A size read from an argument already checked by rank(); it must fit the BLAS's int.
  Dim dim(const std::string& sym, const Tensor& t, const std::string& arg, int64_t d) {
    const int64_t v = t.size(d);
    TORCH_CHECK(v <= INT_MAX, prefix(arg), " has size ", v, " in dimension ", d,
                ", more than the kernel's limit ", INT_MAX);
    return {sym, v, sym + " = " + std::to_string(v) + " from '" + arg + "'.size(" +
                        std::to_string(d) + ")"};
  }

  // rank() and then every size.
  void shape(const Tensor& t, const std::string& arg, const std::vector<Dim>& dims,
             std::optional<at::ScalarType> dtype = std::nullopt, const char* note = "") {
    std::vector<std::string> legend;
    for (const Dim& d : dims) legend.push_back(d.sym);
    rank(t, arg, legend, dtype);
    bool same = true;
    for (size_t k = 0; k < dims.size(); ++k) same = same && t.size(int64_t(k)) == dims[k].value;
    if (same) return;
    std::vector<int64_t> want;
    std::string sources;
    for (const Dim& d : dims) {
      want.push_back(d.value);
      if (!d.from.empty() && sources.find(d.from) == std::string::npos)
        sources += (sources.empty() ? "" : "; ") + d.from;
    }
    TORCH_CHECK(false, prefix(arg), " must have shape ", legend_str(legend), " = ",
                sizes_str(want), note, ", got ", sizes_str(t.sizes()),
                sources.empty() ? "" : " [" + sources + "]");
  }

  // shape() where the optional argument is given.
  void optional(const OptTensor& t, const std::string& arg, const std::vector<Dim>& dims,
                std::optional<at::ScalarType> dtype = std::nullopt) {
    if (present(t)) shape(*t, arg, dims, dtype);
  }

  // A list argument (the saved tensors of a backward op) of a fixed length.
  void list(at::TensorList saved, const std::string& arg, size_t n, const char* what) {
    TORCH_CHECK(saved.size() == n, prefix(arg), " must hold the ", n, " tensors ", what,
                ", got ", saved.size());
  }

  // Arguments that go together (the layer-norm gains): all given or none.
  void together(const std::vector<std::pair<std::string, const OptTensor*>>& group) {
    bool any = false, all = true;
    for (const auto& [name, t] : group) {
      any = any || present(*t);
      all = all && present(*t);
    }
    if (any == all) return;
    std::string given, missing;
    for (const auto& [name, t] : group) {
      std::string& s = present(*t) ? given : missing;
      s += (s.empty() ? "'" : ", '") + name + "'";
    }
    TORCH_CHECK(false, op_, ": ", missing, " must be given with ", given,
                " (all of them or none), got None or an empty tensor");
  }

  const char* op() const { return op_; }
  std::string prefix(const std::string& arg) const { return std::string(op_) + ": '" + arg + "'"; }

 private:
  void defined_on_cpu(const Tensor& t, const std::string& arg) const {
    TORCH_CHECK(t.defined(), prefix(arg), " must be a tensor, got an undefined tensor");
    TORCH_CHECK(t.device().is_cpu(), prefix(arg),
                " must be a CPU tensor (the compiled engine runs on the CPU), got a tensor on ",
                t.device());
  }

  static std::string legend_str(const std::vector<std::string>& legend) {
    std::string s = "(";
    for (size_t k = 0; k < legend.size(); ++k) s += (k ? ", " : "") + legend[k];
    return s + (legend.size() == 1 ? ",)" : ")");
  }

  const char* op_;
  at::ScalarType dtype_ = at::kFloat;
  std::string dtype_arg_;
};

}  // namespace checks
}  // namespace lstmkit
