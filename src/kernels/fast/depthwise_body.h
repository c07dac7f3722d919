// Internal: the portable body of the depthwise direct convolution of one plane, written so the
// compiler vectorizes it along the output row: 16 outputs per chunk accumulated over all taps in
// registers (fixed trip counts; 3x3 and 5x5 fully unrolled). Each ISA file instantiates it inside
// a function carrying its target attribute (an always_inline callee takes the caller's ISA).
//
// Precondition: every row of the input plane is readable up to column
// (round_up(ow, 16) - 1) * stride_w + (s - 1) * dil_w + stride_w - 1 (depthwise_row_width), so the
// last chunk of a row reads whole vectors; lanes past ow are computed and dropped.
#pragma once

#include <cstdint>

#include "kernels/fast/isa.h"

namespace kiln::kernels::fast {

inline constexpr int64_t kDepthwiseChunk = 16;

/// Row width of the padded input plane the depthwise body needs.
inline int64_t depthwise_row_width(int64_t w_padded, int64_t ow, int64_t s, int64_t stride_w,
                                   int64_t dil_w) {
  const int64_t need =
      ((ow + kDepthwiseChunk - 1) / kDepthwiseChunk * kDepthwiseChunk - 1) * stride_w +
      (s - 1) * dil_w + stride_w;  // + stride_w - 1: strided kernels load whole vector pairs
  return need > w_padded ? need : w_padded;
}

template <int64_t KR, int64_t KS, int64_t SW>
[[gnu::always_inline]] inline void depthwise_chunk(const DepthwisePlane& p, const float* x0,
                                                   float* acc) {
  const int64_t kr = KR > 0 ? KR : p.r, ks = KS > 0 ? KS : p.s;
  const int64_t sw = SW > 0 ? SW : p.stride_w;
#pragma GCC unroll 8
  for (int64_t r = 0; r < kr; ++r) {
    const float* x_r = x0 + r * p.dil_h * p.wp;
#pragma GCC unroll 8
    for (int64_t s = 0; s < ks; ++s) {
      const float wv = p.w[r * ks + s];
      const float* src = x_r + s * p.dil_w;
#pragma GCC unroll 16
      for (int64_t t = 0; t < kDepthwiseChunk; ++t) acc[t] += wv * src[t * sw];
    }
  }
}

template <int64_t KR, int64_t KS, int64_t SW>
[[gnu::always_inline]] inline void depthwise_plane_fixed(const DepthwisePlane& p) {
  const int64_t sw = SW > 0 ? SW : p.stride_w;
  for (int64_t oh = 0; oh < p.oh; ++oh) {
    float* y_row = p.y + oh * p.ow;
    const float* x_row0 = p.xp + oh * p.stride_h * p.wp;
    for (int64_t ow0 = 0; ow0 < p.ow; ow0 += kDepthwiseChunk) {
      float acc[kDepthwiseChunk] = {};
      depthwise_chunk<KR, KS, SW>(p, x_row0 + ow0 * sw, acc);
      if (ow0 + kDepthwiseChunk <= p.ow) {
#pragma GCC unroll 16
        for (int64_t t = 0; t < kDepthwiseChunk; ++t) y_row[ow0 + t] = acc[t];
      } else {
        for (int64_t t = 0; t < p.ow - ow0; ++t) y_row[ow0 + t] = acc[t];
      }
    }
  }
}

[[gnu::always_inline]] inline void depthwise_plane_body(const DepthwisePlane& p) {
  if (p.r == 3 && p.s == 3 && p.stride_w == 1) return depthwise_plane_fixed<3, 3, 1>(p);
  if (p.r == 3 && p.s == 3 && p.stride_w == 2) return depthwise_plane_fixed<3, 3, 2>(p);
  if (p.r == 5 && p.s == 5 && p.stride_w == 1) return depthwise_plane_fixed<5, 5, 1>(p);
  if (p.r == 5 && p.s == 5 && p.stride_w == 2) return depthwise_plane_fixed<5, 5, 2>(p);
  if (p.stride_w == 1) return depthwise_plane_fixed<0, 0, 1>(p);
  return depthwise_plane_fixed<0, 0, 0>(p);
}

}  // namespace kiln::kernels::fast
