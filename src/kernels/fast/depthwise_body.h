// Internal: the portable body of the depthwise direct convolution of one plane, written so the
// compiler vectorizes it along the output row. Each ISA file instantiates it inside a function
// carrying its target attribute (an always_inline callee takes the caller's ISA).
#pragma once

#include "kernels/fast/isa.h"

namespace kiln::kernels::fast {

[[gnu::always_inline]] inline void depthwise_plane_body(const DepthwisePlane& p) {
  constexpr int64_t kBlock = 64;  // output columns accumulated in one pass over the taps
  for (int64_t oh = 0; oh < p.oh; ++oh) {
    float* y_row = p.y + oh * p.ow;
    const float* x_row0 = p.xp + oh * p.stride_h * p.wp;
    for (int64_t ow0 = 0; ow0 < p.ow; ow0 += kBlock) {
      const int64_t len = p.ow - ow0 < kBlock ? p.ow - ow0 : kBlock;
      float acc[kBlock] = {};
      for (int64_t r = 0; r < p.r; ++r) {
        const float* x_r = x_row0 + r * p.dil_h * p.wp + ow0 * p.stride_w;
        for (int64_t s = 0; s < p.s; ++s) {
          const float wv = p.w[r * p.s + s];
          const float* __restrict src = x_r + s * p.dil_w;
          if (p.stride_w == 1) {
            for (int64_t t = 0; t < len; ++t) acc[t] += wv * src[t];
          } else if (p.stride_w == 2) {
            for (int64_t t = 0; t < len; ++t) acc[t] += wv * src[2 * t];
          } else {
            for (int64_t t = 0; t < len; ++t) acc[t] += wv * src[t * p.stride_w];
          }
        }
      }
      for (int64_t t = 0; t < len; ++t) y_row[ow0 + t] = acc[t];
    }
  }
}

}  // namespace kiln::kernels::fast
