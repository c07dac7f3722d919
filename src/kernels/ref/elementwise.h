// Building blocks of the elementwise reference kernels (elementwise*.cc): per-element loops over
// one input, over numpy-broadcast inputs, shape functions for those patterns, and the symbolic
// "dims value" arithmetic that keeps shape computations (Shape -> Gather -> Mul -> Concat ->
// Reshape) symbolic at load time.
//
// Integer arithmetic wraps (two's complement) instead of being undefined on overflow; 16-bit
// floats are computed in float (Compute<T>) and rounded back once per element.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/ref/common.h"

namespace kiln::kernels {

// The sub-families, called by register_elementwise_ops (elementwise.cc).
void register_elementwise_unary_ops(Registry& r);       // elementwise_unary.cc
void register_elementwise_binary_ops(Registry& r);      // elementwise_binary.cc
void register_elementwise_activation_ops(Registry& r);  // elementwise_activation.cc
void register_elementwise_cast_ops(Registry& r);        // elementwise_cast.cc: Cast, Where

namespace ew {

/// out[i] = f(x[i]) over same-shaped tensors of element types In and Out.
template <class In, class Out, class F>
void map_unary(const Tensor& x, const Tensor& out, F&& f) {
  const In* px = x.data<In>();
  Out* po = out.data<Out>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) po[i] = f(px[i]);
}

/// out[i] = f(a[..], b[..]) with a and b broadcast to out's dims (which must be their broadcast).
/// `a` may alias `out` when it has out's dims (each element is read before it is written).
template <class A, class B, class Out, class F>
void map_binary(const Tensor& a, const Tensor& b, const Tensor& out, F&& f) {
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  Out* po = out.data<Out>();
  const int64_t n = out.numel();
  const bool a_full = a.dims() == out.dims(), b_full = b.dims() == out.dims();
  if (a_full && b_full) {
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
  } else if (a_full && b.numel() == 1) {
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[0]);
  } else if (a.numel() == 1 && b_full) {
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[0], pb[i]);
  } else if (n > 0) {
    // Row by row over the last dim (a bias add on NCHW walks N*C*H rows, not every element).
    // The walker sees every last dim as 1, so its offsets are in units of each input's last dim.
    auto outer = [](Dims d) {
      if (!d.empty()) d.back() = 1;
      return d;
    };
    auto last = [](const Dims& d) { return d.empty() ? int64_t(1) : d.back(); };
    const int64_t inner = last(out.dims());
    const int64_t la = last(a.dims()), lb = last(b.dims());
    const int64_t sa = la == 1 ? 0 : 1, sb = lb == 1 ? 0 : 1;
    BroadcastWalker w(outer(out.dims()), {outer(a.dims()), outer(b.dims())});
    for (int64_t row = 0; row < n / inner; ++row, w.next()) {
      const A* ra = pa + w.offset(0) * la;
      const B* rb = pb + w.offset(1) * lb;
      Out* ro = po + row * inner;
      for (int64_t j = 0; j < inner; ++j) ro[j] = f(ra[j * sa], rb[j * sb]);
    }
  }
}

/// y = f(x) for the float types; f takes and returns Compute<T>.
template <class F>
void float_unary(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_unary<T, T>(x, y, [&](T v) { return from_compute<T>(f(to_compute(v))); });
  });
}

/// y = f(x) for the float and integer types; f takes and returns Compute<T> and is instantiated
// for each (so it may use `if constexpr` on the type).
template <class F>
void numeric_unary(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_unary<T, T>(x, y, [&](T v) { return from_compute<T>(f(to_compute(v))); });
  });
}

/// Wrapping integer arithmetic: computed on uint64 (modulo 2^64) and narrowed (modulo 2^bits).
template <class T>
T wrap_add(T a, T b) {
  return T(uint64_t(a) + uint64_t(b));
}
template <class T>
T wrap_sub(T a, T b) {
  return T(uint64_t(a) - uint64_t(b));
}
template <class T>
T wrap_mul(T a, T b) {
  return T(uint64_t(a) * uint64_t(b));
}
template <class T>
T wrap_neg(T a) {
  return T(uint64_t(0) - uint64_t(a));
}

/// double -> integer T, truncating toward zero. C++ leaves out-of-range conversions undefined, so
/// this defines them: NaN gives 0, values beyond int64 (uint64 for uint64) saturate, and the
/// result narrows modulo 2^bits to T (what numpy does on common platforms).
template <class T>
T float_to_int(double v) {
  if (std::isnan(v)) return T(0);
  if constexpr (std::is_same_v<T, uint64_t>) {
    if (v >= 9223372036854775808.0) return v >= 18446744073709551616.0 ? UINT64_MAX : uint64_t(v);
  }
  if (v >= 9223372036854775808.0) return T(INT64_MAX);
  if (v < -9223372036854775808.0) return T(INT64_MIN);
  return T(int64_t(v));
}

/// Fails unless every present input has the same dtype as input 0 (when known).
void check_same_dtypes(const InferContext& ctx, int first, int last);

/// Output 0: input 0's dtype (or `dtype` when given), the broadcast of all present inputs.
void infer_broadcast(InferContext& ctx, DType dtype = DType::kUndefined);

/// Sets output 0's dims value from the inputs' dims values, element by element with broadcast,
/// when every input is a small (0-d/1-d) integer tensor whose dims value is known.
void propagate_dims_value(InferContext& ctx, const std::vector<int>& inputs,
                          ir::Dim (*f)(const std::vector<ir::Dim>&));

/// The broadcast of all present inputs' dims (for the kernels).
Dims broadcast_inputs(const KernelContext& ctx, int first, int last);

}  // namespace ew
}  // namespace kiln::kernels
