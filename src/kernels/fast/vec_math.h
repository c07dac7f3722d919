// Internal: vectorized exp, sigmoid, tanh, erf and the fused activations, written once over a
// vector "traits" type T (as nchwc_body.h) and instantiated by each ISA file inside
// `#pragma GCC target`. T provides V, set1, zero, add, sub, mul, div, fma (a*b + c),
// fnma (c - a*b), min, max, and_, or_, abs, round (to nearest), pow2n (p * 2^n for integral n)
// and leaky (v < 0 ? v * alpha : v).
//
// exp: range reduction x = n ln2 + r (ln2 split in two for accuracy) and a degree-7 polynomial
// in r; erf: Abramowitz-Stegun 7.1.26. |error| < 2e-7 in sigmoid/tanh/erf, and no inf/NaN for
// finite inputs (exp's argument is clamped to [-87.3, 88.3]).
#pragma once

#include "kernels/fast/activation.h"

namespace kiln::kernels::fast::vec_math {

template <class T>
[[gnu::always_inline]] inline typename T::V exp(typename T::V x) {
  using V = typename T::V;
  x = T::min(T::max(x, T::set1(-87.3f)), T::set1(88.3f));
  const V n = T::round(T::mul(x, T::set1(1.44269504088896341f)));
  V r = T::fnma(n, T::set1(0.693359375f), x);
  r = T::fnma(n, T::set1(-2.12194440e-4f), r);
  V p = T::set1(1.0f / 5040);
  p = T::fma(p, r, T::set1(1.0f / 720));
  p = T::fma(p, r, T::set1(1.0f / 120));
  p = T::fma(p, r, T::set1(1.0f / 24));
  p = T::fma(p, r, T::set1(1.0f / 6));
  p = T::fma(p, r, T::set1(0.5f));
  p = T::fma(p, r, T::set1(1.0f));
  p = T::fma(p, r, T::set1(1.0f));
  return T::pow2n(p, n);
}

template <class T>
[[gnu::always_inline]] inline typename T::V sigmoid(typename T::V x) {
  const typename T::V one = T::set1(1.0f);
  return T::div(one, T::add(one, exp<T>(T::sub(T::zero(), x))));
}

template <class T>
[[gnu::always_inline]] inline typename T::V tanh(typename T::V x) {
  const typename T::V one = T::set1(1.0f);
  const typename T::V e = exp<T>(T::add(x, x));
  return T::sub(one, T::div(T::set1(2.0f), T::add(one, e)));
}

template <class T>
[[gnu::always_inline]] inline typename T::V erf(typename T::V x) {
  using V = typename T::V;
  const V sign = T::and_(x, T::set1(-0.0f));
  const V ax = T::abs(x);
  const V one = T::set1(1.0f);
  const V t = T::div(one, T::fma(T::set1(0.3275911f), ax, one));
  V p = T::set1(1.061405429f);
  p = T::fma(p, t, T::set1(-1.453152027f));
  p = T::fma(p, t, T::set1(1.421413741f));
  p = T::fma(p, t, T::set1(-0.284496736f));
  p = T::fma(p, t, T::set1(0.254829592f));
  p = T::mul(p, t);
  const V e = exp<T>(T::sub(T::zero(), T::mul(ax, ax)));
  return T::or_(T::fnma(p, e, one), sign);
}

/// act(v) for every Activation kind (activation.h gives the definitions).
template <class T>
[[gnu::always_inline]] inline typename T::V activate(typename T::V v, const Activation& a) {
  using V = typename T::V;
  using K = Activation::Kind;
  const V zero = T::zero();
  const V one = T::set1(1.0f);
  const V half = T::set1(0.5f);
  switch (a.kind) {
    case K::kNone:
      return v;
    case K::kRelu:
      return T::max(v, zero);
    case K::kLeakyRelu:
      return T::leaky(v, T::set1(a.alpha));
    case K::kClip:
      return T::min(T::max(v, T::set1(a.alpha)), T::set1(a.beta));
    case K::kSigmoid:
      return sigmoid<T>(v);
    case K::kTanh:
      return tanh<T>(v);
    case K::kHardSigmoid:
      return T::min(T::max(T::fma(v, T::set1(a.alpha), T::set1(a.beta)), zero), one);
    case K::kHardSwish:
      return T::mul(v, T::min(T::max(T::fma(v, T::set1(1.0f / 6), half), zero), one));
    case K::kSilu:
      return T::mul(v, sigmoid<T>(v));
    case K::kGeluErf:
      return T::mul(T::mul(half, v), T::add(one, erf<T>(T::mul(v, T::set1(kSqrtHalf)))));
    case K::kGeluTanh: {
      const V v3 = T::mul(T::mul(v, v), v);
      const V inner = T::mul(T::set1(kSqrt2OverPi), T::fma(v3, T::set1(0.044715f), v));
      return T::mul(T::mul(half, v), T::add(one, tanh<T>(inner)));
    }
  }
  return v;
}

}  // namespace kiln::kernels::fast::vec_math
