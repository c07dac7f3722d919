// AVX2+FMA kernels of the fast GEMM/conv: the 6x16 register-tile microkernel (12 ymm
// accumulators), its fused epilogue with vectorized activations (same polynomials as the
// AVX-512 path, |error| < 2e-7), ragged columns through vmaskmov, and the depthwise plane
// kernel. Only called when the CPU reports avx2 and fma.
#if defined(__x86_64__)

#include <immintrin.h>

#include <utility>

#include "kernels/fast/depthwise_body.h"
#include "kernels/fast/isa.h"
#include "kernels/fast/pack.h"

#define KILN_AVX2 __attribute__((target("avx2,fma")))

// This ISA's vector traits and the bodies written over them (vec_math.h, nchwc_body.h), all
// compiled for its target.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "kernels/fast/nchwc_body.h"
#include "kernels/fast/vec_math.h"
#include "kernels/fast/winograd_body.h"

namespace kiln::kernels::fast {
namespace {

struct Avx2Vec {
  using V = __m256;
  static constexpr int64_t kWidth = 8;
  static inline V zero() { return _mm256_setzero_ps(); }
  static inline V set1(float x) { return _mm256_set1_ps(x); }
  static inline V load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static inline V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static inline V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
  static inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static inline V div(V a, V b) { return _mm256_div_ps(a, b); }
  static inline V max(V a, V b) { return _mm256_max_ps(a, b); }
  static inline V min(V a, V b) { return _mm256_min_ps(a, b); }
  static inline V and_(V a, V b) { return _mm256_and_ps(a, b); }
  static inline V or_(V a, V b) { return _mm256_or_ps(a, b); }
  static inline V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static inline V round(V a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // p * 2^n through the exponent bits (n integral and within the float range after exp's clamp).
  static inline V pow2n(V p, V n) {
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }
  static inline V leaky(V v, V alpha) {
    return _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha),
                            _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
  }
};

void nchwc_conv_tile(const NchwcConvTile& a) { nchwc_body::conv_dispatch<Avx2Vec, 2, 12>(a); }
void nchwc_depthwise_row(const NchwcDepthwiseRow& a) { nchwc_body::depthwise_row<Avx2Vec, 8>(a); }
void winograd_input(const WinogradInTile& t) { winograd_body::input<Avx2Vec>(t); }
struct VecActivation {
  Avx2Vec::V operator()(Avx2Vec::V v, const Activation& a) const {
    return vec_math::activate<Avx2Vec>(v, a);
  }
};
void winograd_output(const WinogradOutTile& t) {
  winograd_body::output<Avx2Vec>(t, VecActivation{});
}

}  // namespace
}  // namespace kiln::kernels::fast
#pragma GCC pop_options

namespace kiln::kernels::fast {
namespace {

constexpr int kMr = 6;
constexpr int kNr = 16;

/// All-ones lanes for lane index < n (n clamped to [0, 8]).
KILN_AVX2 inline __m256i lane_mask(int64_t n) {
  const int32_t k = n < 0 ? 0 : (n > 8 ? 8 : static_cast<int32_t>(n));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

KILN_AVX2 inline __m256 load_part(const float* ptr, bool full, __m256i mask) {
  return full ? _mm256_loadu_ps(ptr) : _mm256_maskload_ps(ptr, mask);
}

template <int R>
KILN_AVX2 void tile_rows(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int n,
                         bool accumulate, const TileEpilogue* ep) {
  constexpr int U = R <= 2 ? 2 : 1;
  __m256 acc0[U][R], acc1[U][R];
#pragma GCC unroll 16
  for (int u = 0; u < U; ++u) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc0[u][r] = acc1[u][r] = _mm256_setzero_ps();
  }
  int64_t p = 0;
  if constexpr (U == 2) {
    for (; p + 2 <= kc; p += 2) {
#pragma GCC unroll 2
      for (int u = 0; u < 2; ++u) {
        const __m256 b0 = _mm256_load_ps(pb + (p + u) * kNr);
        const __m256 b1 = _mm256_load_ps(pb + (p + u) * kNr + 8);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const __m256 av = _mm256_broadcast_ss(pa + (p + u) * kMr + r);
          acc0[u][r] = _mm256_fmadd_ps(av, b0, acc0[u][r]);
          acc1[u][r] = _mm256_fmadd_ps(av, b1, acc1[u][r]);
        }
      }
    }
  }
#pragma GCC unroll 2
  for (; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(pb + p * kNr);
    const __m256 b1 = _mm256_load_ps(pb + p * kNr + 8);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(pa + p * kMr + r);
      acc0[0][r] = _mm256_fmadd_ps(av, b0, acc0[0][r]);
      acc1[0][r] = _mm256_fmadd_ps(av, b1, acc1[0][r]);
    }
  }
  const bool full = n == kNr;
  const __m256i m0 = lane_mask(n), m1 = lane_mask(n - 8);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    __m256 v0 = acc0[0][r], v1 = acc1[0][r];
    if constexpr (U == 2) {
      v0 = _mm256_add_ps(v0, acc0[1][r]);
      v1 = _mm256_add_ps(v1, acc1[1][r]);
    }
    float* cr = c + r * ldc;
    if (accumulate) {
      v0 = _mm256_add_ps(v0, load_part(cr, full, m0));
      v1 = _mm256_add_ps(v1, load_part(cr + 8, full, m1));
    }
    if (ep != nullptr) {
      if (ep->bias_m != nullptr) {
        const __m256 b = _mm256_set1_ps(ep->bias_m[r]);
        v0 = _mm256_add_ps(v0, b);
        v1 = _mm256_add_ps(v1, b);
      }
      if (ep->bias_n != nullptr) {
        v0 = _mm256_add_ps(v0, load_part(ep->bias_n, full, m0));
        v1 = _mm256_add_ps(v1, load_part(ep->bias_n + 8, full, m1));
      }
      if (ep->residual != nullptr) {
        const float* rr = ep->residual + r * ep->ld_residual;
        v0 = _mm256_add_ps(v0, load_part(rr, full, m0));
        v1 = _mm256_add_ps(v1, load_part(rr + 8, full, m1));
      }
      if (ep->act->kind != Activation::Kind::kNone) {
        v0 = vec_math::activate<Avx2Vec>(v0, *ep->act);
        v1 = vec_math::activate<Avx2Vec>(v1, *ep->act);
      }
    }
    if (full) {
      _mm256_storeu_ps(cr, v0);
      _mm256_storeu_ps(cr + 8, v1);
    } else {
      _mm256_maskstore_ps(cr, m0, v0);
      _mm256_maskstore_ps(cr + 8, m1, v1);
    }
  }
}

KILN_AVX2 void tile(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int m,
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
    default:
      return tile_rows<6>(kc, pa, pb, c, ldc, n, accumulate, ep);
  }
}

KILN_AVX2 void epilogue_row(float* y, int64_t len, float bias, const float* residual,
                            const Activation& act) {
  const __m256 b = _mm256_set1_ps(bias);
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    __m256 v = _mm256_add_ps(_mm256_loadu_ps(y + i), b);
    if (residual != nullptr) v = _mm256_add_ps(v, _mm256_loadu_ps(residual + i));
    _mm256_storeu_ps(y + i, vec_math::activate<Avx2Vec>(v, act));
  }
  if (i < len) {
    const __m256i m = lane_mask(len - i);
    __m256 v = _mm256_add_ps(_mm256_maskload_ps(y + i, m), b);
    if (residual != nullptr) v = _mm256_add_ps(v, _mm256_maskload_ps(residual + i, m));
    _mm256_maskstore_ps(y + i, m, vec_math::activate<Avx2Vec>(v, act));
  }
}

KILN_AVX2 void depthwise_plane(const DepthwisePlane& p) { depthwise_plane_body(p); }

}  // namespace

const IsaKernels kAvx2Kernels = {2,
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
                                 12,
                                 12,
                                 &nchwc_conv_tile,
                                 &nchwc_depthwise_row,
                                 &winograd_input,
                                 &winograd_output};

}  // namespace kiln::kernels::fast

#endif  // __x86_64__
