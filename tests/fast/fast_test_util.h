// Shared helpers of the fast-kernel tests: a double-precision activation reference, random
// data, and a guard that runs a body once per dispatch level this CPU supports (generic, AVX2,
// AVX-512), restoring detection afterwards.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/fast/activation.h"
#include "kernels/fast/conv.h"
#include "kernels/fast/gemm.h"

namespace kiln::kernels::fast::testing {

inline double activation_ref(double x, const Activation& a) {
  using K = Activation::Kind;
  switch (a.kind) {
    case K::kNone:
      return x;
    case K::kRelu:
      return x > 0 ? x : 0;
    case K::kLeakyRelu:
      return x < 0 ? a.alpha * x : x;
    case K::kClip:
      return std::min<double>(std::max<double>(x, a.alpha), a.beta);
    case K::kSigmoid:
      return 1 / (1 + std::exp(-x));
    case K::kTanh:
      return std::tanh(x);
    case K::kHardSigmoid:
      return std::max(0.0, std::min(1.0, a.alpha * x + a.beta));
    case K::kHardSwish:
      return x * std::max(0.0, std::min(1.0, x / 6 + 0.5));
    case K::kSilu:
      return x / (1 + std::exp(-x));
    case K::kGeluErf:
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case K::kGeluTanh:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  }
  return x;
}

/// Every activation kind with parameters that exercise it.
inline std::vector<Activation> all_activations() {
  using K = Activation::Kind;
  return {{K::kNone},
          {K::kRelu},
          {K::kLeakyRelu, 0.1f},
          {K::kClip, -0.5f, 0.75f},
          {K::kSigmoid},
          {K::kTanh},
          {K::kHardSigmoid, 0.2f, 0.5f},
          {K::kHardSwish},
          {K::kSilu},
          {K::kGeluErf},
          {K::kGeluTanh}};
}

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

/// The levels this CPU can run: 0 always, 2 with AVX2+FMA, 3 with AVX-512.
inline std::vector<int> supported_levels() {
  std::vector<int> levels = {0};
  set_simd_level_for_testing(-1);
  const int cpu = simd_level();
  if (cpu >= 2) levels.push_back(2);
  if (cpu >= 3) levels.push_back(3);
  return levels;
}

/// Runs body() once per supported level with the level forced.
template <class F>
void for_each_level(const F& body) {
  for (int level : supported_levels()) {
    set_simd_level_for_testing(level);
    SCOPED_TRACE("simd level " + std::to_string(level));
    body(level);
  }
  set_simd_level_for_testing(-1);
}

/// A 2-D convolution shape: square stride and dilation, pads top/left/bottom/right.
inline ConvShape conv_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r,
                            int64_t s, int64_t stride, int64_t dil, int64_t pt, int64_t pl,
                            int64_t pb, int64_t pr, int64_t group) {
  ConvShape sh{n, c, h, w, k, r, s};
  sh.stride_h = sh.stride_w = stride;
  sh.dil_h = sh.dil_w = dil;
  sh.pad_t = pt, sh.pad_l = pl, sh.pad_b = pb, sh.pad_r = pr;
  sh.group = group;
  return sh;
}

/// Naive NCHW convolution of x with K x C/group x R x S filters w at output (img, oc, i, j), in
/// double without bias or activation; *scale gets the sum of |terms| (for the tolerance).
inline double conv_ref_at(const ConvShape& sh, const std::vector<float>& x,
                          const std::vector<float>& w, int64_t img, int64_t oc, int64_t i,
                          int64_t j, double* scale) {
  const int64_t cg = sh.c / sh.group, g = oc / (sh.k / sh.group);
  double sum = 0;
  *scale = 0;
  for (int64_t ci = 0; ci < cg; ++ci) {
    for (int64_t r = 0; r < sh.r; ++r) {
      const int64_t ih = i * sh.stride_h - sh.pad_t + r * sh.dil_h;
      if (ih < 0 || ih >= sh.h) continue;
      for (int64_t q = 0; q < sh.s; ++q) {
        const int64_t iw = j * sh.stride_w - sh.pad_l + q * sh.dil_w;
        if (iw < 0 || iw >= sh.w) continue;
        const double term =
            double(x[size_t(((img * sh.c + g * cg + ci) * sh.h + ih) * sh.w + iw)]) *
            w[size_t(((oc * cg + ci) * sh.r + r) * sh.s + q)];
        sum += term;
        *scale += std::abs(term);
      }
    }
  }
  return sum;
}

/// |got - want| within float accumulation error, relative to the sum of |terms|.
inline bool close(double got, double want, double scale) {
  return std::abs(got - want) <= 3e-5 * scale + 1e-5;
}

}  // namespace kiln::kernels::fast::testing
