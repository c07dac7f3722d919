// Binary and variadic elementwise ops with numpy broadcasting: Add, Sub, Mul, Div, Pow, Mod,
// Max, Min, Sum, Mean, the comparisons, And/Or/Xor, BitShift and the Bitwise* ops.
//
// Integer semantics: Add/Sub/Mul wrap; Div truncates toward zero like C (INT_MIN / -1 wraps);
// Mod with fmod=0 takes the divisor's sign (Python), with fmod=1 the dividend's (C fmod); a zero
// integer divisor is an error (kInvalidArgument). Max/Min propagate NaN (numpy's maximum).
// Add/Sub/Mul/Div/Max/Min on small int tensors also compute their symbolic dims value.
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/ref/elementwise.h"

namespace kiln::kernels {
namespace {

// The broadcast output of inputs 0 and 1, which must have the same type (as output 0's).
const Tensor& same_type_broadcast_output(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype())
    ctx.fail(std::string("inputs have different types ") + dtype_name(a.dtype()) + " and " +
             dtype_name(b.dtype()));
  return ctx.output(0, a.dtype(), broadcast_dims(ctx, a.dims(), b.dims()));
}

// out = op(a, b) for same-typed numeric a and b; op takes Compute<T> pairs.
template <class Op>
void numeric_binary(KernelContext& ctx, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor& out = same_type_broadcast_output(ctx);
  dispatch_numeric(a.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_binary<T, T, T>(
        a, b, out, [&](T x, T y) { return from_compute<T>(op(to_compute(x), to_compute(y))); });
  });
}

template <class T>
T add_of(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return ew::wrap_add(x, y);
  else
    return x + y;
}
template <class T>
T sub_of(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return ew::wrap_sub(x, y);
  else
    return x - y;
}
template <class T>
T mul_of(T x, T y) {
  if constexpr (std::is_integral_v<T>)
    return ew::wrap_mul(x, y);
  else
    return x * y;
}

template <class T>
void check_divisor(const NodeAttrs& ctx, T y) {
  if constexpr (std::is_integral_v<T>) {
    if (y == 0) ctx.fail("integer division by zero", ErrorCode::kInvalidArgument);
  }
}

template <class T>
T div_of(const NodeAttrs& ctx, T x, T y) {
  if constexpr (std::is_integral_v<T>) {
    check_divisor(ctx, y);
    if constexpr (std::is_signed_v<T>) {
      if (y == T(-1)) return ew::wrap_neg(x);  // INT_MIN / -1 overflows
    }
    return T(x / y);
  } else {
    return x / y;
  }
}

// Remainder: C fmod (sign of x) when c_style, else Python (sign of y).
template <class T>
T mod_of(const NodeAttrs& ctx, T x, T y, bool c_style) {
  if constexpr (std::is_integral_v<T>) {
    check_divisor(ctx, y);
    if constexpr (std::is_signed_v<T>) {
      if (y == T(-1)) return T(0);  // INT_MIN % -1 overflows
    }
    T r = T(x % y);
    if constexpr (std::is_signed_v<T>) {
      if (!c_style && r != 0 && ((r < 0) != (y < 0))) r = T(r + y);
    }
    return r;
  } else {
    T r = std::fmod(x, y);
    if (!c_style && r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
  }
}

void run_add(KernelContext& ctx) {
  numeric_binary(ctx, [](auto x, auto y) { return add_of(x, y); });
}
void run_sub(KernelContext& ctx) {
  numeric_binary(ctx, [](auto x, auto y) { return sub_of(x, y); });
}
void run_mul(KernelContext& ctx) {
  numeric_binary(ctx, [](auto x, auto y) { return mul_of(x, y); });
}
void run_div(KernelContext& ctx) {
  numeric_binary(ctx, [&](auto x, auto y) { return div_of(ctx, x, y); });
}

// Mod: fmod=0 (integer, Python sign) is undefined for floats per the spec.
bool mod_is_c_style(const InferContext& ctx) { return ctx.attr_int("fmod", 0) != 0; }
void infer_mod(InferContext& ctx) {
  ew::check_same_dtypes(ctx, 0, 1);
  if (!mod_is_c_style(ctx) && dtype_is_float(ctx.input_dtype(0)))
    ctx.fail("fmod must be 1 for floating-point inputs");
  ew::infer_broadcast(ctx);
}
void run_mod(KernelContext& ctx) {
  const bool c_style = ctx.attr_int("fmod", 0) != 0;
  if (!c_style && dtype_is_float(ctx.input(0).dtype()))
    ctx.fail("fmod must be 1 for floating-point inputs");
  numeric_binary(ctx, [&](auto x, auto y) { return mod_of(ctx, x, y, c_style); });
}

// Integer power by squaring (wrapping); negative exponents truncate 1/x^n toward zero.
template <class T>
T int_pow(T base, int64_t e) {
  if (e < 0) {
    if (base == T(1)) return T(1);
    if constexpr (std::is_signed_v<T>) {
      if (base == T(-1)) return (e % 2) ? T(-1) : T(1);
    }
    return T(0);  // |base| >= 2, or 0 (division by zero: C's pow gives inf, we give 0)
  }
  T r = T(1);
  while (e > 0) {
    if (e & 1) r = ew::wrap_mul(r, base);
    base = ew::wrap_mul(base, base);
    e >>= 1;
  }
  return r;
}

// Pow: base and exponent types differ freely (opset 12+); the output has the base's type.
void infer_pow(InferContext& ctx) { ew::infer_broadcast(ctx); }
void run_pow(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor& out = ctx.output(0, a.dtype(), broadcast_dims(ctx, a.dims(), b.dims()));
  dispatch_numeric(a.dtype(), ctx, [&](auto base_tag) {
    using T = typename decltype(base_tag)::type;
    dispatch_numeric(b.dtype(), ctx, [&](auto exp_tag) {
      using E = typename decltype(exp_tag)::type;
      ew::map_binary<T, E, T>(a, b, out, [](T x, E y) {
        if constexpr (kIsFloat<T>) {
          return from_compute<T>(std::pow(double(to_compute(x)), double(to_compute(y))));
        } else if constexpr (kIsFloat<E>) {
          return ew::float_to_int<T>(std::pow(double(x), double(to_compute(y))));
        } else if constexpr (std::is_unsigned_v<E>) {
          // Exponents beyond int64 only matter for |base| <= 1; parity is what counts there.
          int64_t e = y > uint64_t(INT64_MAX) ? int64_t(INT64_MAX - 1 + (y & 1)) : int64_t(y);
          return int_pow(x, e);
        } else {
          return int_pow(x, int64_t(y));
        }
      });
    });
  });
}

// ---- variadic Sum, Mean, Max, Min ------------------------------------------------------------

template <class T>
T max_of(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) ? x : y;
  }
  return std::max(x, y);
}
template <class T>
T min_of(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) ? x : y;
  }
  return std::min(x, y);
}

// Folds op over all inputs (broadcast); Mean divides the sum by the input count at the end.
template <class Op>
void variadic(KernelContext& ctx, bool floats_only, bool mean, Op op) {
  const int n = ctx.num_inputs();
  const Tensor& x0 = ctx.input(0);
  for (int i = 1; i < n; ++i)
    if (ctx.input(i).dtype() != x0.dtype())
      ctx.fail("input " + std::to_string(i) + " has type " + dtype_name(ctx.input(i).dtype()) +
               ", input 0 has " + dtype_name(x0.dtype()));
  if (floats_only && !dtype_is_float(x0.dtype()))
    ctx.unsupported(std::string("element type ") + dtype_name(x0.dtype()) + " is not supported");
  const Tensor& out = ctx.output(0, x0.dtype(), ew::broadcast_inputs(ctx, 0, n - 1));
  dispatch_numeric(x0.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p0 = x0.data<T>();
    T* po = out.data<T>();
    BroadcastWalker w(out.dims(), {x0.dims()});
    for (int64_t i = 0; i < out.numel(); ++i, w.next()) po[i] = p0[w.offset(0)];
    for (int k = 1; k < n; ++k) {
      ew::map_binary<T, T, T>(out, ctx.input(k), out, [&](T x, T y) {
        return from_compute<T>(op(to_compute(x), to_compute(y)));
      });
    }
    if constexpr (kIsFloat<T>) {
      if (mean)
        for (int64_t i = 0; i < out.numel(); ++i)
          po[i] = from_compute<T>(to_compute(po[i]) / Compute<T>(n));
    }
  });
}

void run_sum(KernelContext& ctx) {
  variadic(ctx, true, false, [](auto x, auto y) { return add_of(x, y); });
}
void run_mean(KernelContext& ctx) {
  variadic(ctx, true, true, [](auto x, auto y) { return add_of(x, y); });
}
void run_max(KernelContext& ctx) {
  variadic(ctx, false, false, [](auto x, auto y) { return max_of(x, y); });
}
void run_min(KernelContext& ctx) {
  variadic(ctx, false, false, [](auto x, auto y) { return min_of(x, y); });
}

// ---- shape functions, with dims values for shape arithmetic ---------------------------------

std::vector<int> all_inputs(const InferContext& ctx) {
  std::vector<int> v;
  for (int i = 0; i < ctx.num_inputs(); ++i) v.push_back(i);
  return v;
}

void infer_arith(InferContext& ctx, ir::Dim (*f)(const std::vector<ir::Dim>&)) {
  ew::check_same_dtypes(ctx, 0, ctx.num_inputs() - 1);
  ew::infer_broadcast(ctx);
  if (f) ew::propagate_dims_value(ctx, all_inputs(ctx), f);
}

void infer_add(InferContext& ctx) {
  infer_arith(ctx, [](const std::vector<ir::Dim>& a) { return ir::dim_add(a[0], a[1]); });
}
void infer_sub(InferContext& ctx) {
  infer_arith(ctx, [](const std::vector<ir::Dim>& a) { return ir::dim_sub(a[0], a[1]); });
}
void infer_mul(InferContext& ctx) {
  infer_arith(ctx, [](const std::vector<ir::Dim>& a) { return ir::dim_mul(a[0], a[1]); });
}
void infer_div(InferContext& ctx) {
  infer_arith(ctx, [](const std::vector<ir::Dim>& a) {
    if (a[1].is_const() && a[1].value == 0) return ir::Dim::unknown();  // fails at run time
    return ir::dim_div(a[0], a[1]);
  });
}

// Max/Min of dims: exact on constants, the common value when all are the same, else unknown.
template <bool kMax>
ir::Dim extreme_dim(const std::vector<ir::Dim>& a) {
  bool all_const = true, all_same = true;
  for (const auto& d : a) {
    all_const &= d.is_const();
    all_same &= d.known_equal(a[0]);
  }
  if (all_same) return a[0];
  if (!all_const) return ir::Dim::unknown();
  int64_t v = a[0].value;
  for (const auto& d : a) v = kMax ? std::max(v, d.value) : std::min(v, d.value);
  return ir::Dim::constant(v);
}
void infer_max(InferContext& ctx) { infer_arith(ctx, extreme_dim<true>); }
void infer_min(InferContext& ctx) { infer_arith(ctx, extreme_dim<false>); }
void infer_variadic(InferContext& ctx) { infer_arith(ctx, nullptr); }

// ---- comparisons, logic, bits ----------------------------------------------------------------

void infer_compare(InferContext& ctx) {
  ew::check_same_dtypes(ctx, 0, 1);
  ew::infer_broadcast(ctx, DType::kBool);
}

// out (bool) = op(a, b); Equal also takes bool and string, the others numbers only.
template <class Op>
void compare(KernelContext& ctx, bool any_type, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype())
    ctx.fail(std::string("inputs have different types ") + dtype_name(a.dtype()) + " and " +
             dtype_name(b.dtype()));
  const Tensor& out = ctx.output(0, DType::kBool, broadcast_dims(ctx, a.dims(), b.dims()));
  auto body = [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, std::string>) {
      ew::map_binary<T, T, bool>(a, b, out, [&](const T& x, const T& y) { return op(x, y); });
    } else {
      ew::map_binary<T, T, bool>(a, b, out,
                                 [&](T x, T y) { return op(to_compute(x), to_compute(y)); });
    }
  };
  if (any_type) {
    dispatch_all(a.dtype(), ctx, body);
  } else {
    dispatch_numeric(a.dtype(), ctx, body);
  }
}

void run_equal(KernelContext& ctx) {
  compare(ctx, true, [](const auto& x, const auto& y) { return x == y; });
}
void run_less(KernelContext& ctx) {
  compare(ctx, false, [](auto x, auto y) { return x < y; });
}
void run_greater(KernelContext& ctx) {
  compare(ctx, false, [](auto x, auto y) { return x > y; });
}
void run_less_equal(KernelContext& ctx) {
  compare(ctx, false, [](auto x, auto y) { return x <= y; });
}
void run_greater_equal(KernelContext& ctx) {
  compare(ctx, false, [](auto x, auto y) { return x >= y; });
}

void infer_logic(InferContext& ctx) {
  for (int i = 0; i < 2; ++i)
    if (ctx.input_dtype(i) != DType::kBool && ctx.input_dtype(i) != DType::kUndefined)
      ctx.fail("input " + std::to_string(i) + " must be bool, not " +
               dtype_name(ctx.input_dtype(i)));
  ew::infer_broadcast(ctx, DType::kBool);
}

template <class Op>
void logic(KernelContext& ctx, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != DType::kBool || b.dtype() != DType::kBool) ctx.fail("inputs must be bool");
  const Tensor& out = ctx.output(0, DType::kBool, broadcast_dims(ctx, a.dims(), b.dims()));
  ew::map_binary<bool, bool, bool>(a, b, out, op);
}

void run_and(KernelContext& ctx) {
  logic(ctx, [](bool x, bool y) { return x && y; });
}
void run_or(KernelContext& ctx) {
  logic(ctx, [](bool x, bool y) { return x || y; });
}
void run_xor(KernelContext& ctx) {
  logic(ctx, [](bool x, bool y) { return x != y; });
}

// out = op(a, b) on integers of the same type, as their unsigned bit patterns.
template <class Op>
void bitwise(KernelContext& ctx, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor& out = same_type_broadcast_output(ctx);
  dispatch_int(a.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using U = std::make_unsigned_t<T>;
    ew::map_binary<T, T, T>(a, b, out, [&](T x, T y) { return T(op(U(x), U(y))); });
  });
}

void run_bitwise_and(KernelContext& ctx) {
  bitwise(ctx, [](auto x, auto y) { return x & y; });
}
void run_bitwise_or(KernelContext& ctx) {
  bitwise(ctx, [](auto x, auto y) { return x | y; });
}
void run_bitwise_xor(KernelContext& ctx) {
  bitwise(ctx, [](auto x, auto y) { return x ^ y; });
}

// BitShift: shifts by the type's width or more give 0 (C++ leaves them undefined).
bool shift_left(const NodeAttrs& ctx) {
  std::string dir = ctx.attr_string("direction", "");
  if (dir != "LEFT" && dir != "RIGHT")
    ctx.fail("direction must be \"LEFT\" or \"RIGHT\", got \"" + dir + "\"");
  return dir == "LEFT";
}
void infer_bitshift(InferContext& ctx) {
  shift_left(ctx);
  ew::check_same_dtypes(ctx, 0, 1);
  ew::infer_broadcast(ctx);
}
void run_bitshift(KernelContext& ctx) {
  const bool left = shift_left(ctx);
  bitwise(ctx, [left](auto x, auto y) {
    using U = decltype(x);
    if (y >= sizeof(U) * 8) return U(0);
    return left ? U(x << y) : U(x >> y);
  });
}

}  // namespace

void register_elementwise_binary_ops(Registry& r) {
  constexpr auto kBc = PatternKind::kBroadcast;
  r.add({"", "Add", 1, kBc, infer_add, run_add});
  r.add({"", "Sub", 1, kBc, infer_sub, run_sub});
  r.add({"", "Mul", 1, kBc, infer_mul, run_mul});
  r.add({"", "Div", 1, kBc, infer_div, run_div});
  r.add({"", "Pow", 1, kBc, infer_pow, run_pow});
  r.add({"", "Mod", 10, kBc, infer_mod, run_mod});
  r.add({"", "Max", 1, kBc, infer_max, run_max});
  r.add({"", "Min", 1, kBc, infer_min, run_min});
  r.add({"", "Sum", 1, kBc, infer_variadic, run_sum});
  r.add({"", "Mean", 1, kBc, infer_variadic, run_mean});
  r.add({"", "Equal", 1, kBc, infer_compare, run_equal});
  r.add({"", "Less", 1, kBc, infer_compare, run_less});
  r.add({"", "Greater", 1, kBc, infer_compare, run_greater});
  r.add({"", "LessOrEqual", 12, kBc, infer_compare, run_less_equal});
  r.add({"", "GreaterOrEqual", 12, kBc, infer_compare, run_greater_equal});
  r.add({"", "And", 1, kBc, infer_logic, run_and});
  r.add({"", "Or", 1, kBc, infer_logic, run_or});
  r.add({"", "Xor", 1, kBc, infer_logic, run_xor});
  r.add({"", "BitShift", 11, kBc, infer_bitshift, run_bitshift});
  r.add({"", "BitwiseAnd", 18, kBc, infer_variadic, run_bitwise_and});
  r.add({"", "BitwiseOr", 18, kBc, infer_variadic, run_bitwise_or});
  r.add({"", "BitwiseXor", 18, kBc, infer_variadic, run_bitwise_xor});
}

}  // namespace kiln::kernels
