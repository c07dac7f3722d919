// Portable C++ kernels of the fast GEMM/conv: a 4x16 register tile the compiler vectorizes
// with the baseline ISA, scalar libm activations (the definition in activation.h), and the
// depthwise plane kernel. Used on CPUs without AVX2+FMA and tested on every machine.
#include <cstdint>

#include "kernels/fast/depthwise_body.h"
#include "kernels/fast/isa.h"
#include "kernels/fast/nchwc_body.h"
#include "kernels/fast/pack.h"
#include "kernels/fast/winograd_body.h"

namespace kiln::kernels::fast {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 16;

void tile(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int m, int n,
          bool accumulate, const TileEpilogue* ep) {
  float acc[kMr][kNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* a = pa + p * kMr;
    const float* b = pb + p * kNr;
    for (int i = 0; i < kMr; ++i) {
      for (int j = 0; j < kNr; ++j) acc[i][j] += a[i] * b[j];
    }
  }
  for (int i = 0; i < m; ++i) {
    float* cr = c + i * ldc;
    for (int j = 0; j < n; ++j) {
      float v = acc[i][j];
      if (accumulate) v += cr[j];
      if (ep != nullptr) {
        if (ep->bias_m != nullptr) v += ep->bias_m[i];
        if (ep->bias_n != nullptr) v += ep->bias_n[j];
        if (ep->residual != nullptr) v += ep->residual[i * ep->ld_residual + j];
        v = apply_activation(v, *ep->act);
      }
      cr[j] = v;
    }
  }
}

void epilogue_row(float* y, int64_t len, float bias, const float* residual, const Activation& act) {
  for (int64_t i = 0; i < len; ++i) {
    float v = y[i] + bias;
    if (residual != nullptr) v += residual[i];
    y[i] = apply_activation(v, act);
  }
}

void depthwise_plane(const DepthwisePlane& p) { depthwise_plane_body(p); }

// Blocked convolution tiles on plain arrays of 8 floats (the compiler vectorizes what it can).
struct GenericVec {
  struct V {
    float v[8];
  };
  static constexpr int64_t kWidth = 8;
  static V zero() { return V{}; }
  static V load(const float* p) {
    V r;
    for (int i = 0; i < 8; ++i) r.v[i] = p[i];
    return r;
  }
  static void store(float* p, const V& a) {
    for (int i = 0; i < 8; ++i) p[i] = a.v[i];
  }
  static V bcast(const float* p) {
    V r;
    for (float& x : r.v) x = *p;
    return r;
  }
  static V fma(const V& a, const V& b, V c) {
    for (int i = 0; i < 8; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static V add(V a, const V& b) {
    for (int i = 0; i < 8; ++i) a.v[i] += b.v[i];
    return a;
  }
  static V sub(V a, const V& b) {
    for (int i = 0; i < 8; ++i) a.v[i] -= b.v[i];
    return a;
  }
  static V mul(V a, const V& b) {
    for (int i = 0; i < 8; ++i) a.v[i] *= b.v[i];
    return a;
  }
  static V max(V a, const V& b) {
    for (int i = 0; i < 8; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return a;
  }
  static V min(V a, const V& b) {
    for (int i = 0; i < 8; ++i) a.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
    return a;
  }
};

void nchwc_conv_tile(const NchwcConvTile& a) { nchwc_body::conv_dispatch<GenericVec, 2, 8>(a); }
void nchwc_depthwise_row(const NchwcDepthwiseRow& a) {
  nchwc_body::depthwise_row<GenericVec, 4>(a);
}
void winograd_input(const WinogradInTile& t) { winograd_body::input<GenericVec>(t); }
void winograd_output(const WinogradOutTile& t) {
  winograd_body::output<GenericVec>(t, [](GenericVec::V v, const Activation& a) {
    for (float& x : v.v) x = apply_activation(x, a);
    return v;
  });
}

}  // namespace

const IsaKernels kGenericKernels = {0,
                                    kMr,
                                    kNr,
                                    &tile,
                                    &epilogue_row,
                                    &depthwise_plane,
                                    &pack_b_im2col,
                                    nullptr,
                                    nullptr,
                                    8,
                                    2,
                                    8,
                                    8,
                                    &nchwc_conv_tile,
                                    &nchwc_depthwise_row,
                                    &winograd_input,
                                    &winograd_output};

}  // namespace kiln::kernels::fast
