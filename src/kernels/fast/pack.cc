// Packing of GEMM operands into microkernel panels (see pack.h). Portable C++: packing is
// O(M*K + K*N) against O(M*N*K) compute, and the copies are contiguous runs where the source
// allows it (non-transposed B rows, transposed A columns, stride-1 im2col rows).
#include "kernels/fast/pack.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace kiln::kernels::fast {
namespace {

// d[kk * stride + i] = src[i * ld + kk] for `rows` rows of `kc` floats: rows contiguous in k
// laid out k-major. Groups of 4 rows go 4 k at a time through a 4x4 transpose in SSE registers
// (4 loads and 4 stores of 4 floats instead of 16 scalar ones each); the rest element by element.
void transpose_rows(const float* src, int64_t ld, int64_t rows, int64_t kc, float* d,
                    int64_t stride) {
  int64_t i = 0;
#if defined(__SSE2__)
  for (; i + 4 <= rows; i += 4) {
    const float* r0 = src + i * ld;
    const float *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
    int64_t kk = 0;
    for (; kk + 4 <= kc; kk += 4) {
      __m128 x0 = _mm_loadu_ps(r0 + kk), x1 = _mm_loadu_ps(r1 + kk);
      __m128 x2 = _mm_loadu_ps(r2 + kk), x3 = _mm_loadu_ps(r3 + kk);
      _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
      _mm_storeu_ps(d + kk * stride + i, x0);
      _mm_storeu_ps(d + (kk + 1) * stride + i, x1);
      _mm_storeu_ps(d + (kk + 2) * stride + i, x2);
      _mm_storeu_ps(d + (kk + 3) * stride + i, x3);
    }
    for (; kk < kc; ++kk)
      for (int64_t t = 0; t < 4; ++t) d[kk * stride + i + t] = src[(i + t) * ld + kk];
  }
#endif
  for (; i < rows; ++i)
    for (int64_t kk = 0; kk < kc; ++kk) d[kk * stride + i] = src[i * ld + kk];
}

}  // namespace

void pack_a(const float* a, int64_t lda, bool trans_a, int64_t i0, int64_t rows, int64_t k0,
            int64_t kc, int mr, float* dst) {
  for (int64_t ip = 0; ip < rows; ip += mr) {
    const int64_t mrows = std::min<int64_t>(mr, rows - ip);
    float* d = dst + ip * kc;
    if (trans_a) {
      for (int64_t kk = 0; kk < kc; ++kk) {
        const float* src = a + (k0 + kk) * lda + i0 + ip;
        float* dk = d + kk * mr;
        int64_t i = 0;
        for (; i < mrows; ++i) dk[i] = src[i];
        for (; i < mr; ++i) dk[i] = 0.0f;
      }
      continue;
    }
    transpose_rows(a + (i0 + ip) * lda + k0, lda, mrows, kc, d, mr);
    for (int64_t i = mrows; i < mr; ++i) {
      for (int64_t kk = 0; kk < kc; ++kk) d[kk * mr + i] = 0.0f;
    }
  }
}

void pack_b_panel(const float* b, int64_t ldb, bool trans_b, int64_t k0, int64_t kc, int64_t j0,
                  int64_t cols, int nr, float* dst) {
  if (!trans_b) {
    for (int64_t kk = 0; kk < kc; ++kk) {
      const float* src = b + (k0 + kk) * ldb + j0;
      float* d = dst + kk * nr;
      std::memcpy(d, src, static_cast<size_t>(cols) * sizeof(float));
      for (int64_t j = cols; j < nr; ++j) d[j] = 0.0f;
    }
    return;
  }
  transpose_rows(b + j0 * ldb + k0, ldb, cols, kc, dst, nr);
  if (cols < nr) {
    for (int64_t kk = 0; kk < kc; ++kk) {
      for (int64_t j = cols; j < nr; ++j) dst[kk * nr + j] = 0.0f;
    }
  }
}

void pack_b_all(const float* b, int64_t ldb, bool trans_b, int64_t k, int64_t n, int nr,
                float* dst) {
  const int64_t n_pad = round_up(n, nr);
  const int64_t kc = kc_size(k);
  for (int64_t k0 = 0; k0 < k; k0 += kc) {
    const int64_t kcb = std::min(kc, k - k0);
    for (int64_t j0 = 0; j0 < n; j0 += nr) {
      pack_b_panel(b, ldb, trans_b, k0, kcb, j0, std::min<int64_t>(nr, n - j0), nr,
                   dst + k0 * n_pad + (j0 / nr) * kcb * nr);
    }
  }
}

void pack_b_im2col(const float* x, const ConvShape& sh, int64_t k0, int64_t kc, int64_t p0,
                   int64_t cols, int nr, float* dst) {
  const int64_t ow_n = sh.out_w();
  const int64_t rs = sh.r * sh.s;
  int64_t ci = k0 / rs, r = (k0 % rs) / sh.s, s = k0 % sh.s;
  const int64_t oh_start = p0 / ow_n, ow_start = p0 % ow_n;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* d = dst + kk * nr;
    const float* plane = x + ci * sh.h * sh.w;
    int64_t oh = oh_start, ow = ow_start, t = 0;
    while (t < cols) {
      const int64_t len = std::min(cols - t, ow_n - ow);
      const int64_t ih = oh * sh.stride_h - sh.pad_t + r * sh.dil_h;
      float* dd = d + t;
      if (ih < 0 || ih >= sh.h) {
        std::memset(dd, 0, static_cast<size_t>(len) * sizeof(float));
      } else {
        const float* row = plane + ih * sh.w;
        const int64_t iw0 = ow * sh.stride_w - sh.pad_l + s * sh.dil_w;
        if (sh.stride_w == 1) {
          // Valid u: 0 <= iw0 + u < w.
          const int64_t lo = std::clamp<int64_t>(-iw0, 0, len);
          const int64_t hi = std::clamp<int64_t>(sh.w - iw0, lo, len);
          for (int64_t u = 0; u < lo; ++u) dd[u] = 0.0f;
          if (hi > lo) {
            std::memcpy(dd + lo, row + iw0 + lo, static_cast<size_t>(hi - lo) * sizeof(float));
          }
          for (int64_t u = hi; u < len; ++u) dd[u] = 0.0f;
        } else {
          for (int64_t u = 0; u < len; ++u) {
            const int64_t iw = iw0 + u * sh.stride_w;
            dd[u] = (iw >= 0 && iw < sh.w) ? row[iw] : 0.0f;
          }
        }
      }
      t += len;
      ow = 0;
      ++oh;
    }
    for (int64_t j = cols; j < nr; ++j) d[j] = 0.0f;
    if (++s == sh.s) {
      s = 0;
      if (++r == sh.r) {
        r = 0;
        ++ci;
      }
    }
  }
}

}  // namespace kiln::kernels::fast
