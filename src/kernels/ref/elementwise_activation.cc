// Activations and Clip: Relu, LeakyRelu, PRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Elu,
// Selu, Celu, Softplus, Softsign, ThresholdedRelu, Gelu, Mish, Shrink, Swish, Clip.
//
// Formulas follow the ONNX operator docs; Sigmoid and Softplus use the overflow-free forms
// (exp of a non-positive argument only). Float attributes are applied in Compute<T>. NaN inputs
// stay NaN in Relu and Clip (as numpy's maximum/minimum).
#include <cmath>
#include <limits>
#include <string>

#include "kernels/ref/elementwise.h"

namespace kiln::kernels {
namespace {

template <class C>
C sigmoid(C x) {
  if (x >= C(0)) return C(1) / (C(1) + std::exp(-x));
  C e = std::exp(x);
  return e / (C(1) + e);
}

template <class C>
C softplus(C x) {
  return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

void run_relu(KernelContext& ctx) {
  ew::numeric_unary(ctx, [](auto v) {
    using C = decltype(v);
    if constexpr (std::is_unsigned_v<C>) {
      return v;
    } else {
      return v < C(0) ? C(0) : v;
    }
  });
}

void run_leaky_relu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 0.01f);
  ew::float_unary(ctx, [&](auto v) { return v < 0 ? decltype(v)(alpha) * v : v; });
}

void run_sigmoid(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return sigmoid(v); });
}

void run_hard_sigmoid(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 0.2f), beta = ctx.attr_float("beta", 0.5f);
  ew::float_unary(ctx, [&](auto v) {
    using C = decltype(v);
    return std::max(C(0), std::min(C(1), C(alpha) * v + C(beta)));
  });
}

void run_hard_swish(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) {
    using C = decltype(v);
    return v * std::max(C(0), std::min(C(1), v / C(6) + C(0.5)));
  });
}

void run_tanh(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return std::tanh(v); });
}

void run_elu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  ew::float_unary(ctx, [&](auto v) { return v < 0 ? decltype(v)(alpha) * std::expm1(v) : v; });
}

void run_selu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.67326319217681884765625f);
  const float gamma = ctx.attr_float("gamma", 1.05070102214813232421875f);
  ew::float_unary(ctx, [&](auto v) {
    using C = decltype(v);
    return v <= 0 ? C(gamma) * (C(alpha) * std::exp(v) - C(alpha)) : C(gamma) * v;
  });
}

void run_celu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  if (alpha == 0) ctx.fail("alpha must not be 0");
  ew::float_unary(ctx, [&](auto v) {
    using C = decltype(v);
    return std::max(C(0), v) + std::min(C(0), C(alpha) * std::expm1(v / C(alpha)));
  });
}

void run_softplus(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return softplus(v); });
}

void run_softsign(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return v / (decltype(v)(1) + std::fabs(v)); });
}

void run_thresholded_relu(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  ew::float_unary(ctx, [&](auto v) { return v > decltype(v)(alpha) ? v : decltype(v)(0); });
}

// Gelu: approximate="none" uses erf, "tanh" the tanh approximation.
bool gelu_uses_tanh(const NodeAttrs& ctx) {
  std::string a = ctx.attr_string("approximate", "none");
  if (a != "none" && a != "tanh")
    ctx.fail("approximate must be \"none\" or \"tanh\", got \"" + a + "\"");
  return a == "tanh";
}
void infer_gelu(InferContext& ctx) {
  gelu_uses_tanh(ctx);
  infer_same_as_input0(ctx);
}
void run_gelu(KernelContext& ctx) {
  const bool use_tanh = gelu_uses_tanh(ctx);
  ew::float_unary(ctx, [&](auto v) {
    using C = decltype(v);
    if (use_tanh) {
      const C k = C(0.7978845608028654);  // sqrt(2/pi)
      return C(0.5) * v * (C(1) + std::tanh(k * (v + C(0.044715) * v * v * v)));
    }
    return C(0.5) * v * (C(1) + std::erf(v * C(0.7071067811865476)));
  });
}

void run_mish(KernelContext& ctx) {
  ew::float_unary(ctx, [](auto v) { return v * std::tanh(softplus(v)); });
}

void run_swish(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  ew::float_unary(ctx, [&](auto v) { return v * sigmoid(decltype(v)(alpha) * v); });
}

// Shrink also takes integers: computed in double, converted back.
void run_shrink(KernelContext& ctx) {
  const double bias = ctx.attr_float("bias", 0.0f), lambd = ctx.attr_float("lambd", 0.5f);
  ew::numeric_unary(ctx, [&](auto v) {
    using C = decltype(v);
    double d = double(v);
    double r = d < -lambd ? d + bias : d > lambd ? d - bias : 0.0;
    if constexpr (std::is_integral_v<C>) {
      return ew::float_to_int<C>(r);
    } else {
      return C(r);
    }
  });
}

// PRelu: slope broadcasts to X's shape (unidirectionally); the output has X's shape.
void infer_prelu(InferContext& ctx) {
  ew::check_same_dtypes(ctx, 0, 1);
  const ir::Shape& x = ctx.input_shape(0);
  const ir::Shape& s = ctx.input_shape(1);
  if (x.has_rank && s.has_rank) {
    if (s.rank() > x.rank())
      ctx.fail("slope " + s.to_string() + " does not broadcast to X " + x.to_string());
    for (int i = 0; i < s.rank(); ++i) {
      const ir::Dim& sd = s.dims[size_t(i)];
      const ir::Dim& xd = x.dims[size_t(x.rank() - s.rank() + i)];
      if (!(sd.is_const() && sd.value == 1) && sd.known_different(xd))
        ctx.fail("slope " + s.to_string() + " does not broadcast to X " + x.to_string());
    }
  }
  ctx.set_output(0, ctx.input_dtype(0), x);
}

void run_prelu(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& slope = ctx.input(1);
  if (x.dtype() != slope.dtype()) ctx.fail("X and slope have different types");
  if (broadcast_dims(ctx, x.dims(), slope.dims()) != x.dims())
    ctx.fail("slope " + dims_to_string(slope.dims()) + " does not broadcast to X " +
                 dims_to_string(x.dims()),
             ErrorCode::kInvalidArgument);
  const Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_binary<T, T, T>(x, slope, y, [](T v, T a) {
      auto c = to_compute(v);
      return c < decltype(c)(0) ? from_compute<T>(to_compute(a) * c) : v;
    });
  });
}

// Clip: bounds are attributes before opset 11, optional scalar inputs from 11 on.
void check_bound(InferContext& ctx, int i) {
  if (!ctx.has_input(i)) return;
  auto n = ctx.input_shape(i).num_elements();
  if (n && *n != 1)
    ctx.fail(std::string(i == 1 ? "min" : "max") + " must be a scalar, got shape " +
             ctx.input_shape(i).to_string());
}
void infer_clip(InferContext& ctx) {
  if (ctx.opset() >= 11) {
    check_bound(ctx, 1);
    check_bound(ctx, 2);
    ew::check_same_dtypes(ctx, 0, 2);
  }
  infer_same_as_input0(ctx);
}

void run_clip(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
    if (ctx.opset() < 11) {
      lo = C(ctx.attr_float("min", std::numeric_limits<float>::lowest()));
      hi = C(ctx.attr_float("max", std::numeric_limits<float>::max()));
    } else {
      for (int i = 1; i <= 2; ++i) {
        if (!ctx.has_input(i)) continue;
        const Tensor& b = ctx.input(i);
        if (b.dtype() != x.dtype()) ctx.fail("min/max must have the input's type");
        if (b.numel() != 1)
          ctx.fail(std::string(i == 1 ? "min" : "max") + " must be a scalar, got shape " +
                       dims_to_string(b.dims()),
                   ErrorCode::kInvalidArgument);
        (i == 1 ? lo : hi) = to_compute(b.data<T>()[0]);
      }
    }
    // When min > max every element becomes max, as the spec says.
    ew::map_unary<T, T>(x, y, [&](T v) {
      C c = to_compute(v);
      return from_compute<T>(std::min(std::max(c, lo), hi));
    });
  });
}

}  // namespace

void register_elementwise_activation_ops(Registry& r) {
  constexpr auto kEw = PatternKind::kElementwise;
  const auto same = infer_same_as_input0;
  r.add({"", "Relu", 1, kEw, same, run_relu});
  r.add({"", "LeakyRelu", 1, kEw, same, run_leaky_relu});
  r.add({"", "PRelu", 1, PatternKind::kBroadcast, infer_prelu, run_prelu});
  r.add({"", "Sigmoid", 1, kEw, same, run_sigmoid});
  r.add({"", "HardSigmoid", 1, kEw, same, run_hard_sigmoid});
  r.add({"", "HardSwish", 14, kEw, same, run_hard_swish});
  r.add({"", "Tanh", 1, kEw, same, run_tanh});
  r.add({"", "Elu", 1, kEw, same, run_elu});
  r.add({"", "Selu", 1, kEw, same, run_selu});
  r.add({"", "Celu", 12, kEw, same, run_celu});
  r.add({"", "Softplus", 1, kEw, same, run_softplus});
  r.add({"", "Softsign", 1, kEw, same, run_softsign});
  r.add({"", "ThresholdedRelu", 10, kEw, same, run_thresholded_relu});
  r.add({"", "Gelu", 20, kEw, infer_gelu, run_gelu});
  r.add({"", "Mish", 18, kEw, same, run_mish});
  r.add({"", "Swish", 24, kEw, same, run_swish});
  r.add({"", "Shrink", 9, kEw, same, run_shrink});
  r.add({"", "Clip", 1, PatternKind::kBroadcast, infer_clip, run_clip});
}

}  // namespace kiln::kernels
