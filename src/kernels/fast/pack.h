// Internal: blocking parameters and the packing routines shared by the fast GEMM and conv
// drivers. Panels are k-major: an A panel stores mr rows per k step, a B panel nr columns per k
// step; rows/columns past the matrix edge are zero so the microkernel never reads garbage.
#pragma once

#include <cstdint>

#include "kernels/fast/conv.h"

namespace kiln::kernels::fast {

inline constexpr int64_t kKc = 256;  ///< K-block target (AVX-512: A panel 12 KB, B panel 32 KB)
inline constexpr int64_t kMc = 128;  ///< rows per A block (A block ~128 KB: L2)

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

/// K-blocks of balanced size <= kKc: block size for K (at least 1 so K == 0 has one block).
inline int64_t kc_size(int64_t k) {
  int64_t blocks = k <= 0 ? 1 : ceil_div(k, kKc);
  return k <= 0 ? 0 : ceil_div(k, blocks);
}

/// A rows [i0, i0+rows) x k [k0, k0+kc) into ceil(rows/mr) panels of kc x mr at dst.
/// A(i, k) = trans_a ? a[k*lda + i] : a[i*lda + k].
void pack_a(const float* a, int64_t lda, bool trans_a, int64_t i0, int64_t rows, int64_t k0,
            int64_t kc, int mr, float* dst);

/// One B panel: k [k0, k0+kc) x columns [j0, j0+cols) (cols <= nr) into kc x nr at dst.
/// B(k, j) = trans_b ? b[j*ldb + k] : b[k*ldb + j].
void pack_b_panel(const float* b, int64_t ldb, bool trans_b, int64_t k0, int64_t kc, int64_t j0,
                  int64_t cols, int nr, float* dst);

/// Whole B in the PackedB layout: for each K-block (k0, kc), ceil(n/nr) panels of kc x nr, the
/// block starting at float offset k0 * round_up(n, nr).
void pack_b_all(const float* b, int64_t ldb, bool trans_b, int64_t k, int64_t n, int nr,
                float* dst);

/// One im2col B panel of a conv for one image and group: rows kidx in [k0, k0+kc) with
/// kidx = (c*R + r)*S + s, columns = output positions [p0, p0+cols) (cols <= nr) of oh x ow.
/// x points to the group's first input channel plane.
void pack_b_im2col(const float* x, const ConvShape& sh, int64_t k0, int64_t kc, int64_t p0,
                   int64_t cols, int nr, float* dst);

}  // namespace kiln::kernels::fast
