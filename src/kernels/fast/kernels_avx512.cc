// AVX-512F kernels of the fast GEMM/conv: the 12x32 register-tile microkernel (24 zmm
// accumulators, B panel rows loaded as two zmm, A broadcast from the packed panel), its fused
// epilogue with vectorized activations (exp by range reduction + degree-7 polynomial, erf by
// Abramowitz-Stegun 7.1.26, |error| < 2e-7), and the depthwise plane kernel. Only called when
// the CPU reports avx512f/vl/dq and fma; the project is compiled without -march flags.
#if defined(__x86_64__)

// GCC 12's AVX-512 intrinsic headers build results from _mm512_undefined_ps(), which
// -Wmaybe-uninitialized reports at every use (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "kernels/fast/depthwise_body.h"
#include "kernels/fast/isa.h"
#include "kernels/fast/pack.h"

#define KILN_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,fma")))

// This ISA's vector traits and the bodies written over them (vec_math.h, nchwc_body.h), all
// compiled for its target.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,fma")
#include "kernels/fast/nchwc_body.h"
#include "kernels/fast/vec_math.h"
#include "kernels/fast/winograd_body.h"

namespace kiln::kernels::fast {
namespace {

struct Avx512Vec {
  using V = __m512;
  static constexpr int64_t kWidth = 16;
  static inline V zero() { return _mm512_setzero_ps(); }
  static inline V set1(float x) { return _mm512_set1_ps(x); }
  static inline V load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static inline V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static inline V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
  static inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static inline V div(V a, V b) { return _mm512_div_ps(a, b); }
  static inline V max(V a, V b) { return _mm512_max_ps(a, b); }
  static inline V min(V a, V b) { return _mm512_min_ps(a, b); }
  static inline V and_(V a, V b) { return _mm512_and_ps(a, b); }
  static inline V or_(V a, V b) { return _mm512_or_ps(a, b); }
  static inline V abs(V a) { return _mm512_abs_ps(a); }
  static inline V round(V a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static inline V pow2n(V p, V n) { return _mm512_scalef_ps(p, n); }
  static inline V leaky(V v, V alpha) {
    return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v, alpha);
  }
};

void nchwc_conv_tile(const NchwcConvTile& a) { nchwc_body::conv_dispatch<Avx512Vec, 4, 28>(a); }
void nchwc_depthwise_row(const NchwcDepthwiseRow& a) {
  nchwc_body::depthwise_row<Avx512Vec, 14>(a);
}
void winograd_input(const WinogradInTile& t) { winograd_body::input<Avx512Vec>(t); }
struct VecActivation {
  Avx512Vec::V operator()(Avx512Vec::V v, const Activation& a) const {
    return vec_math::activate<Avx512Vec>(v, a);
  }
};
void winograd_output(const WinogradOutTile& t) {
  winograd_body::output<Avx512Vec>(t, VecActivation{});
}

}  // namespace
}  // namespace kiln::kernels::fast
#pragma GCC pop_options

namespace kiln::kernels::fast {
namespace {

constexpr int kMr = 12;
constexpr int kNr = 32;

KILN_AVX512 inline __mmask16 lane_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF)
                 : (n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1));
}

// R rows of the tile; small R keep two accumulator sets (even/odd k) to cover FMA latency.
template <int R>
KILN_AVX512 void tile_rows(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc,
                           int n, bool accumulate, const TileEpilogue* ep) {
  constexpr int U = R <= 2 ? 2 : 1;
  __m512 acc0[U][R], acc1[U][R];
#pragma GCC unroll 16
  for (int u = 0; u < U; ++u) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc0[u][r] = acc1[u][r] = _mm512_setzero_ps();
  }
  int64_t p = 0;
  if constexpr (U == 2) {
    for (; p + 2 <= kc; p += 2) {
#pragma GCC unroll 2
      for (int u = 0; u < 2; ++u) {
        const __m512 b0 = _mm512_load_ps(pb + (p + u) * kNr);
        const __m512 b1 = _mm512_load_ps(pb + (p + u) * kNr + 16);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const __m512 av = _mm512_set1_ps(pa[(p + u) * kMr + r]);
          acc0[u][r] = _mm512_fmadd_ps(av, b0, acc0[u][r]);
          acc1[u][r] = _mm512_fmadd_ps(av, b1, acc1[u][r]);
        }
      }
    }
  }
#pragma GCC unroll 2
  for (; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(pb + p * kNr);
    const __m512 b1 = _mm512_load_ps(pb + p * kNr + 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(pa[p * kMr + r]);
      acc0[0][r] = _mm512_fmadd_ps(av, b0, acc0[0][r]);
      acc1[0][r] = _mm512_fmadd_ps(av, b1, acc1[0][r]);
    }
  }
  const __mmask16 m0 = lane_mask(n), m1 = lane_mask(n - 16);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    __m512 v0 = acc0[0][r], v1 = acc1[0][r];
    if constexpr (U == 2) {
      v0 = _mm512_add_ps(v0, acc0[1][r]);
      v1 = _mm512_add_ps(v1, acc1[1][r]);
    }
    float* cr = c + r * ldc;
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
    }
    if (ep != nullptr) {
      if (ep->bias_m != nullptr) {
        const __m512 b = _mm512_set1_ps(ep->bias_m[r]);
        v0 = _mm512_add_ps(v0, b);
        v1 = _mm512_add_ps(v1, b);
      }
      if (ep->bias_n != nullptr) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ep->bias_n));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ep->bias_n + 16));
      }
      if (ep->residual != nullptr) {
        const float* rr = ep->residual + r * ep->ld_residual;
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, rr));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, rr + 16));
      }
      if (ep->act->kind != Activation::Kind::kNone) {
        v0 = vec_math::activate<Avx512Vec>(v0, *ep->act);
        v1 = vec_math::activate<Avx512Vec>(v1, *ep->act);
      }
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    _mm512_mask_storeu_ps(cr + 16, m1, v1);
  }
}

KILN_AVX512 void tile(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int m,
                      int n, bool accumulate, const TileEpilogue* ep) {
  switch (m) {
    case 1:
      return tile_rows<1>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 2:
      return tile_rows<2>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 3:
      return tile_rows<3>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 4:
      return tile_rows<4>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 5:
      return tile_rows<5>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 6:
      return tile_rows<6>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 7:
      return tile_rows<7>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 8:
      return tile_rows<8>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 9:
      return tile_rows<9>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 10:
      return tile_rows<10>(kc, pa, pb, c, ldc, n, accumulate, ep);
    case 11:
      return tile_rows<11>(kc, pa, pb, c, ldc, n, accumulate, ep);
    default:
      return tile_rows<12>(kc, pa, pb, c, ldc, n, accumulate, ep);
  }
}

KILN_AVX512 void epilogue_row(float* y, int64_t len, float bias, const float* residual,
                              const Activation& act) {
  const __m512 b = _mm512_set1_ps(bias);
  for (int64_t i = 0; i < len; i += 16) {
    const __mmask16 m = lane_mask(len - i);
    __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), b);
    if (residual != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, residual + i));
    _mm512_mask_storeu_ps(y + i, m, vec_math::activate<Avx512Vec>(v, act));
  }
}

/// Lanes [lo, hi) of 16.
KILN_AVX512 inline __mmask16 lane_range(int64_t lo, int64_t hi) {
  return static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
}

// 3x3 depthwise straight from the unpadded plane: per output row, the in-image kernel rows only;
// per 16 outputs and kernel column, the load masks drop the lanes whose tap falls in the padding
// (masked lanes are never read), so no padded copy is made. Bias, residual and activation are
// applied before the one store.
template <int SW>
KILN_AVX512 void depthwise_3x3_direct(const DepthwiseDirect& p) {
  __m512 w[9];
#pragma GCC unroll 9
  for (int i = 0; i < 9; ++i) w[i] = _mm512_set1_ps(p.wt[i]);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512 bias = _mm512_set1_ps(p.bias);
  const Activation activation = p.act != nullptr ? *p.act : Activation{};
  const bool act = activation.kind != Activation::Kind::kNone;
  // Locals: the stores through y could alias p's fields, which would then be reloaded per step.
  const float* const x = p.x;
  const float* const residual = p.residual;
  float* const y = p.y;
  const int64_t h = p.h, w_in = p.w, oh_n = p.oh, ow_n = p.ow, stride_h = p.stride_h;
  const int64_t pad_t = p.pad_t, pad_l = p.pad_l, dil_h = p.dil_h, dil_w = p.dil_w;
  // Rows outer (the input and output planes stream in memory order), 16 outputs inner.
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    const int64_t ih0 = oh * stride_h - pad_t;
    for (int64_t ow0 = 0; ow0 < ow_n; ow0 += 16) {
      __m512 acc[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
#pragma GCC unroll 3
      for (int s = 0; s < 3; ++s) {
        // First input column of lane 0; the masks keep the in-image lanes only.
        const int64_t col = ow0 * SW - pad_l + s * dil_w;
        const __mmask16 m0 = lane_range(-col, w_in - col);
        const __mmask16 m1 = SW == 2 ? lane_range(-col - 16, w_in - col - 16) : 0;
#pragma GCC unroll 3
        for (int r = 0; r < 3; ++r) {
          const int64_t ih = ih0 + r * dil_h;
          if (ih < 0 || ih >= h) continue;
          const float* src = x + ih * w_in + col;
          __m512 v;
          if constexpr (SW == 1) {
            v = _mm512_maskz_loadu_ps(m0, src);
          } else {
            v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0, src), even,
                                       _mm512_maskz_loadu_ps(m1, src + 16));
          }
          acc[r] = _mm512_fmadd_ps(w[r * 3 + s], v, acc[r]);
        }
      }
      const __mmask16 out_m = lane_mask(ow_n - ow0);
      __m512 out = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], bias));
      if (residual != nullptr)
        out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(out_m, residual + oh * ow_n + ow0));
      if (act) out = vec_math::activate<Avx512Vec>(out, activation);
      _mm512_mask_storeu_ps(y + oh * ow_n + ow0, out_m, out);
    }
  }
}

KILN_AVX512 void depthwise_direct(const DepthwiseDirect& p) {
  if (p.stride_w == 1) return depthwise_3x3_direct<1>(p);
  depthwise_3x3_direct<2>(p);
}

bool depthwise_direct_ok(const ConvShape& sh) {
  return sh.r == 3 && sh.s == 3 && (sh.stride_w == 1 || sh.stride_w == 2);
}

// 3x3 depthwise with all nine taps in registers, one zmm of outputs per step and one
// accumulator per kernel row; stride 2 deinterleaves two loads with one permute.
template <int SW>
KILN_AVX512 void depthwise_3x3(const DepthwisePlane& p) {
  __m512 w[9];
#pragma GCC unroll 9
  for (int i = 0; i < 9; ++i) w[i] = _mm512_set1_ps(p.w[i]);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t oh = 0; oh < p.oh; ++oh) {
    const float* x0 = p.xp + oh * p.stride_h * p.wp;
    float* y_row = p.y + oh * p.ow;
    for (int64_t ow0 = 0; ow0 < p.ow; ow0 += 16) {
      __m512 acc[3];
#pragma GCC unroll 3
      for (int r = 0; r < 3; ++r) {
        const float* src = x0 + r * p.dil_h * p.wp + ow0 * SW;
        acc[r] = _mm512_setzero_ps();
#pragma GCC unroll 3
        for (int s = 0; s < 3; ++s) {
          const float* q = src + s * p.dil_w;
          __m512 v;
          if constexpr (SW == 1) {
            v = _mm512_loadu_ps(q);
          } else {
            v = _mm512_permutex2var_ps(_mm512_loadu_ps(q), even, _mm512_loadu_ps(q + 16));
          }
          acc[r] = _mm512_fmadd_ps(w[r * 3 + s], v, acc[r]);
        }
      }
      const __m512 out = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), acc[2]);
      _mm512_mask_storeu_ps(y_row + ow0, lane_mask(p.ow - ow0), out);
    }
  }
}

KILN_AVX512 void depthwise_plane(const DepthwisePlane& p) {
  if (p.r == 3 && p.s == 3 && p.stride_w == 1) return depthwise_3x3<1>(p);
  if (p.r == 3 && p.s == 3 && p.stride_w == 2) return depthwise_3x3<2>(p);
  depthwise_plane_body(p);
}

// pack_b_im2col for strides 1 and 2 with kernel width <= 16. The panel's columns split into
// runs within one output row; for each 16-column chunk of a run the load masks of every kernel
// column s are computed once (padding lanes masked off, so out-of-image addresses are never
// touched), then the loop over the panel's rows (c, r, s) is one masked load (two and a
// deinterleaving permute for stride 2) and one masked store per row.
KILN_AVX512 void im2col_panel(const float* x, const ConvShape& sh, int64_t k0, int64_t kc,
                              int64_t p0, int64_t cols, int nr, float* dst) {
  const int64_t sw = sh.stride_w;
  if ((sw != 1 && sw != 2) || sh.s > 16) return pack_b_im2col(x, sh, k0, kc, p0, cols, nr, dst);
  const int64_t ow_n = sh.out_w();
  const int64_t rs = sh.r * sh.s;
  const int64_t plane_size = sh.h * sh.w;
  const __m512 zero = _mm512_setzero_ps();
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t kk = 0; kk < kc; ++kk) {
    for (int64_t j = cols; j < nr; j += 16) {
      _mm512_mask_storeu_ps(dst + kk * nr + j, lane_mask(nr - j), zero);
    }
  }
  int64_t oh = p0 / ow_n, ow = p0 % ow_n, t = 0;
  while (t < cols) {
    const int64_t len = std::min(cols - t, ow_n - ow);
    const int64_t ih0 = oh * sh.stride_h - sh.pad_t;
    for (int64_t u = 0; u < len; u += 16) {
      const int64_t n = std::min<int64_t>(16, len - u);
      const int64_t base0 = (ow + u) * sw - sh.pad_l;
      const __mmask16 store = lane_mask(n);
      __mmask16 m0[16], m1[16];
      for (int64_t s = 0; s < sh.s; ++s) {
        const int64_t base = base0 + s * sh.dil_w;
        const int64_t span = sw * n;
        const int64_t lo = std::clamp<int64_t>(-base, 0, span);
        const int64_t hi = std::clamp<int64_t>(sh.w - base, lo, span);
        m0[s] = lane_range(lo, hi);
        m1[s] = lane_range(lo - 16, hi - 16);
      }
      int64_t ci = k0 / rs, r = (k0 % rs) / sh.s, s = k0 % sh.s;
      const float* plane = x + ci * plane_size;
      float* d = dst + t + u;
      for (int64_t kk = 0; kk < kc; ++kk) {
        const int64_t ih = ih0 + r * sh.dil_h;
        __m512 v = zero;
        if (ih >= 0 && ih < sh.h) {
          const float* src = plane + ih * sh.w + base0 + s * sh.dil_w;
          if (sw == 1) {
            v = _mm512_maskz_loadu_ps(m0[s], src);
          } else {
            v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0[s], src), even,
                                       _mm512_maskz_loadu_ps(m1[s], src + 16));
          }
        }
        _mm512_mask_storeu_ps(d + kk * nr, store, v);
        if (++s == sh.s) {
          s = 0;
          if (++r == sh.r) {
            r = 0;
            plane += plane_size;
          }
        }
      }
    }
    t += len;
    ow = 0;
    ++oh;
  }
}

}  // namespace

const IsaKernels kAvx512Kernels = {3,
                                   kMr,
                                   kNr,
                                   &tile,
                                   &epilogue_row,
                                   &depthwise_plane,
                                   &im2col_panel,
                                   &depthwise_direct,
                                   &depthwise_direct_ok,
                                   16,
                                   4,
                                   24,
                                   28,
                                   &nchwc_conv_tile,
                                   &nchwc_depthwise_row,
                                   &winograd_input,
                                   &winograd_output};

}  // namespace kiln::kernels::fast

#endif  // __x86_64__
