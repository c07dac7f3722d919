// Sliding-window geometry for the pooling and convolution lowerings, as index expressions, and
// the few statement helpers the pool, MatMul/Gemm and Conv lowerings share.
//
// A window over one spatial dim of input size `in` (an Expr: immediate or kernel parameter) has
// `k` taps with dilation `d`; output position o starts at o * s - pad_begin. The pads are Exprs
// because SAME_UPPER/SAME_LOWER derive them from the (possibly dynamic) input size. The ranges
// below let the lowerings run every tap loop over exactly its in-bounds part instead of clamping
// and selecting per element: every access they produce is in bounds for any parameter values,
// and inner loops keep a uniform body the code generator can widen.
//
// All divisions here have non-negative operands (arguments are clamped first), so the IR's
// truncating division is floor division.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jit/kir.h"
#include "kernels/lower/lower.h"
#include "kernels/registry.h"

namespace kiln::kernels::window {

/// Window attributes of Conv and the pools for `nsp` spatial dims.
struct Attrs {
  std::vector<int64_t> kernel, strides, dilations, pad_begin,
      pad_end;  // explicit pads
  std::string auto_pad = "NOTSET";
};

/// Reads kernel_shape (or takes `kernel`, which kernel_shape must then equal),
/// strides, dilations, pads and auto_pad; nullopt when anything is missing or
/// malformed (the reference kernel then reports it).
std::optional<Attrs> read_attrs(const NodeAttrs& n, int nsp,
                                const std::vector<int64_t>* kernel = nullptr);

/// Pad before / after spatial dim `i` for input size `in` and kernel size `k`
/// (by default the attribute's).
jit::Expr pad_begin(const Attrs& a, int i, const jit::Expr& in, jit::Expr k = nullptr);
jit::Expr pad_end(const Attrs& a, int i, const jit::Expr& in, jit::Expr k = nullptr);

/// A range [lo, lo + ext) with ext >= 0.
struct Range {
  jit::Expr lo, ext;
};

/// Taps j in [0, k) of the window at output `o` (start o * s - pb) that land in
/// [0, in). The kernel size is an Expr: Conv takes it from W, whose dims may be
/// kernel parameters.
Range taps(const jit::Expr& o, int64_t s, int64_t d, const jit::Expr& k, const jit::Expr& pb,
           const jit::Expr& in);
/// Outputs o in [0, out) for which input position o * s + off lies in [0, in).
Range outputs_for_offset(const jit::Expr& out, int64_t s, const jit::Expr& off,
                         const jit::Expr& in);
/// Outputs o in [0, out) whose whole window (k taps, dilation d) lies in [0,
/// in).
Range interior(const jit::Expr& out, int64_t s, int64_t d, const jit::Expr& k, const jit::Expr& pb,
               const jit::Expr& in);

/// Scalars bound around a statement, the first outermost.
using Lets = std::vector<std::pair<std::string, jit::Expr>>;
jit::Stmt wrap(const Lets& lets, jit::Stmt body);
/// Binds r.lo and r.ext to fresh variables (appended to `lets`) and returns them as a range: each
/// bound is computed once per loop and the printed kernel stays readable.
Range bind(LowerContext& ctx, const Range& r, const std::string& hint, Lets& lets);
/// A vectorized loop with the lanes loop_nest uses.
jit::Stmt vector_loop(LowerContext& ctx, const std::string& var, const jit::Expr& extent,
                      jit::Stmt body);

/// A serial loop, or nothing when the extent is the immediate 0, or its body with var = 0 when
/// the extent is the immediate 1.
jit::Stmt serial_loop(const std::string& var, const jit::Expr& extent, jit::Stmt body);

/// a when a and b are the same expression, else min(a, b): an extent valid for
/// both (two dims that shape inference says are equal may still be separate
/// kernel parameters).
jit::Expr common(const jit::Expr& a, const jit::Expr& b);

}  // namespace kiln::kernels::window
