// Unary math and logic: Abs, Neg, Sign, Floor, Ceil, Round, Sqrt, Reciprocal, Exp, Log, the
// trigonometric and hyperbolic functions, Erf, IsNaN, IsInf, Not, BitwiseNot.
//
// Float results are computed in Compute<T> with the C library functions (Round is half to even,
// as nearbyint in the default rounding mode). Integer Abs/Neg wrap on the most negative value.
#include <cmath>

#include "kernels/ref/elementwise.h"

namespace kiln::kernels {
namespace {

template <class T>
T abs_of(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::fabs(v);
  } else if constexpr (std::is_signed_v<T>) {
    return v < 0 ? ew::wrap_neg(v) : v;
  } else {
    return v;
  }
}

template <class T>
T neg_of(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return -v;
  } else {
    return ew::wrap_neg(v);
  }
}

template <class T>
T sign_of(T v) {
  if (v > T(0)) return T(1);
  if constexpr (std::is_signed_v<T>) {
    if (v < T(0)) return T(-1);
  }
  return v;  // 0 (or NaN)
}

void run_abs(KernelContext& ctx) {
  ew::numeric_unary(ctx, [](auto v) { return abs_of(v); });
}
void run_neg(KernelContext& ctx) {
  ew::numeric_unary(ctx, [](auto v) { return neg_of(v); });
}
void run_sign(KernelContext& ctx) {
  ew::numeric_unary(ctx, [](auto v) { return sign_of(v); });
}
void run_floor(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::floor(v); });
}
void run_ceil(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::ceil(v); });
}
void run_round(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::nearbyint(v); });
}
void run_sqrt(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::sqrt(v); });
}
void run_reciprocal(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return decltype(v)(1) / v; });
}
void run_exp(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::exp(v); });
}
void run_log(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::log(v); });
}
void run_sin(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::sin(v); });
}
void run_cos(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::cos(v); });
}
void run_tan(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::tan(v); });
}
void run_asin(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::asin(v); });
}
void run_acos(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::acos(v); });
}
void run_atan(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::atan(v); });
}
void run_sinh(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::sinh(v); });
}
void run_cosh(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::cosh(v); });
}
void run_asinh(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::asinh(v); });
}
void run_acosh(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::acosh(v); });
}
void run_atanh(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::atanh(v); });
}
void run_erf(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::erf(v); });
}

// Neg of a small int shape tensor stays symbolic: 0 - d.
void infer_neg(InferContext& ctx) {
  infer_same_as_input0(ctx);
  ew::propagate_dims_value(ctx, {0}, [](const std::vector<ir::Dim>& a) {
    return ir::dim_sub(ir::Dim::constant(0), a[0]);
  });
}

// Float predicates: bool output of the input's shape.
void infer_float_predicate(InferContext& ctx) {
  ctx.set_output(0, DType::kBool, ctx.input_shape(0));
}

template <class F>
void float_predicate(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.output(0, DType::kBool, x.dims());
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_unary<T, bool>(x, y, [&](T v) { return f(to_compute(v)); });
  });
}

void run_isnan(KernelContext& ctx) {
  float_predicate(ctx, [](auto v) { return std::isnan(v); });
}

void run_isinf(KernelContext& ctx) {
  const bool neg = ctx.attr_int("detect_negative", 1) != 0;
  const bool pos = ctx.attr_int("detect_positive", 1) != 0;
  float_predicate(ctx, [&](auto v) { return std::isinf(v) && (v > 0 ? pos : neg); });
}

void infer_not(InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kBool && ctx.input_dtype(0) != DType::kUndefined)
    ctx.unsupported(std::string("Not takes bool, not ") + dtype_name(ctx.input_dtype(0)));
  infer_same_as_input0(ctx);
}

void run_not(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::kBool) ctx.unsupported("Not takes bool");
  ew::map_unary<bool, bool>(x, ctx.output(0, DType::kBool, x.dims()), [](bool v) { return !v; });
}

void run_bitwise_not(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_int(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_unary<T, T>(x, y, [](T v) { return T(~v); });
  });
}

}  // namespace

void register_elementwise_unary_ops(Registry& r) {
  constexpr auto kEw = PatternKind::kElementwise;
  const auto same = infer_same_as_input0;
  r.add({"", "Abs", 1, kEw, same, run_abs});
  r.add({"", "Neg", 1, kEw, infer_neg, run_neg});
  r.add({"", "Sign", 9, kEw, same, run_sign});
  r.add({"", "Floor", 1, kEw, same, run_floor});
  r.add({"", "Ceil", 1, kEw, same, run_ceil});
  r.add({"", "Round", 11, kEw, same, run_round});
  r.add({"", "Sqrt", 1, kEw, same, run_sqrt});
  r.add({"", "Reciprocal", 1, kEw, same, run_reciprocal});
  r.add({"", "Exp", 1, kEw, same, run_exp});
  r.add({"", "Log", 1, kEw, same, run_log});
  r.add({"", "Sin", 7, kEw, same, run_sin});
  r.add({"", "Cos", 7, kEw, same, run_cos});
  r.add({"", "Tan", 7, kEw, same, run_tan});
  r.add({"", "Asin", 7, kEw, same, run_asin});
  r.add({"", "Acos", 7, kEw, same, run_acos});
  r.add({"", "Atan", 7, kEw, same, run_atan});
  r.add({"", "Sinh", 9, kEw, same, run_sinh});
  r.add({"", "Cosh", 9, kEw, same, run_cosh});
  r.add({"", "Asinh", 9, kEw, same, run_asinh});
  r.add({"", "Acosh", 9, kEw, same, run_acosh});
  r.add({"", "Atanh", 9, kEw, same, run_atanh});
  r.add({"", "Erf", 9, kEw, same, run_erf});
  r.add({"", "IsNaN", 9, kEw, infer_float_predicate, run_isnan});
  r.add({"", "IsInf", 10, kEw, infer_float_predicate, run_isinf});
  r.add({"", "Not", 1, kEw, infer_not, run_not});
  r.add({"", "BitwiseNot", 18, kEw, same, run_bitwise_not});
}

}  // namespace kiln::kernels
