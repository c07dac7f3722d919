// Activations fused into the fast kernels' epilogues: the public Activation descriptor and its
// scalar definition. The scalar form is the generic path's implementation and the semantics the
// SIMD paths (kernels_avx512.cc, kernels_avx2.cc) approximate
// (their exp is range reduction + a degree-7 polynomial, erf is Abramowitz-Stegun 7.1.26: about
// 2e-7 absolute error in sigmoid/tanh/erf, no inf/NaN for finite inputs).
//
// Semantics (ONNX): LeakyRelu y = x < 0 ? alpha*x : x; Clip y = min(max(x, alpha), beta);
// HardSigmoid y = max(0, min(1, alpha*x + beta)); HardSwish y = x * max(0, min(1, x/6 + 1/2));
// Silu y = x * sigmoid(x); GeluErf y = x/2 * (1 + erf(x/sqrt 2)); GeluTanh uses the tanh form.
#pragma once

#include <algorithm>
#include <cmath>

namespace kiln::kernels::fast {

/// Applied last in every epilogue: y = act(acc + bias + residual).
struct Activation {
  enum class Kind {
    kNone,
    kRelu,
    kLeakyRelu,
    kClip,
    kSigmoid,
    kTanh,
    kHardSigmoid,
    kHardSwish,
    kSilu,
    kGeluErf,
    kGeluTanh
  };
  Kind kind = Kind::kNone;
  float alpha = 0, beta = 0;  ///< LeakyRelu alpha; Clip min/max; HardSigmoid alpha/beta
};

inline constexpr float kSqrtHalf = 0.70710678118654752f;
inline constexpr float kSqrt2OverPi = 0.79788456080286536f;

/// The scalar definition (generic path).
inline float apply_activation(float x, const Activation& a) {
  using K = Activation::Kind;
  switch (a.kind) {
    case K::kNone:
      return x;
    case K::kRelu:
      return x > 0 ? x : 0.0f;
    case K::kLeakyRelu:
      return x < 0 ? a.alpha * x : x;
    case K::kClip:
      return std::min(std::max(x, a.alpha), a.beta);
    case K::kSigmoid:
      return 1.0f / (1.0f + std::exp(-x));
    case K::kTanh:
      return std::tanh(x);
    case K::kHardSigmoid:
      return std::max(0.0f, std::min(1.0f, a.alpha * x + a.beta));
    case K::kHardSwish:
      return x * std::max(0.0f, std::min(1.0f, x * (1.0f / 6) + 0.5f));
    case K::kSilu:
      return x / (1.0f + std::exp(-x));
    case K::kGeluErf:
      return 0.5f * x * (1.0f + std::erf(x * kSqrtHalf));
    case K::kGeluTanh:
      return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
  }
  return x;
}

}  // namespace kiln::kernels::fast
