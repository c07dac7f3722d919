// Tiled GEMM kernels for the CUDA backend: MatMul, Gemm and 2-D convolutions (as implicit GEMMs)
// printed as CUDA C for one specialized shape. Pure text generation, like cuda_c.h.
//
// Each block computes a BM x BN tile of Y from BK-deep slices of A and B staged in shared memory;
// each of its (BM/TM) * (BN/TN) threads keeps a TM x TN tile of accumulators in registers. The
// thread's rows are ty + i * (BM/TM) and its columns tx + j * (BN/TN), so a warp reads
// consecutive shared-memory words and writes consecutive columns of Y. An operand whose K stride
// is 1 is loaded K-fastest (coalesced) into a tile padded by one column (no bank conflicts).
//
// grid.x covers N, grid.y covers M, grid.z the batch (the product of `batch`'s extents) times the
// splits of K. When K is split, a first function zeroes Y and each split adds its partial sums
// with atomicAdd (the bias comes from split 0); the order of those additions is not fixed, so a
// split GEMM's low bits may differ from run to run (as cuBLAS's split-K does).
//
// With `tf32`, the block's warps compute its tile on tensor cores instead: the A and B tiles are
// rounded to TF32 (10-bit mantissa, round to nearest, ties away) as they are staged, each warp
// multiplies 16 x 16 fragments over steps of 8 along K (the 16x16x8 TF32 WMMA shape, through
// NVRTC's built-in WMMA functions: no header needed), accumulates in f32, and stores its
// fragments to a shared C tile that the whole block then runs the epilogue over. The fragments'
// element layout belongs to the hardware; the kernel only loads, multiplies and stores them.
//
// A convolution reads B(k, n) from its input image without forming the patch matrix: k runs over
// (channel, kernel row, kernel column) and n over (output row, output column); a tap outside the
// image reads 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jit/cuda_c.h"

namespace kiln::jit {

/// Y[b](m, n) = act(alpha * sum_k A[b](m, k) * B[b](k, n) + beta * Bias[b](m, n)), all f32.
struct CudaGemm {
  int64_t m = 0, n = 0, k = 0;
  /// Batch dims, outermost first: the element offset one step of each adds to A, B, Y and Bias.
  struct Batch {
    int64_t extent = 1, a = 0, b = 0, y = 0, bias = 0;
  };
  std::vector<Batch> batch;
  int64_t a_m = 0, a_k = 1;  ///< A(m, k) = a[offset + m * a_m + k * a_k]
  int64_t b_k = 0, b_n = 1;  ///< B(k, n) = b[offset + k * b_k + n * b_n] (when !conv)
  int64_t y_m = 0, y_n = 1;  ///< Y(m, n) = y[y_offset + offset + m * y_m + n * y_n]
  int64_t y_offset = 0;      ///< where Y starts in its buffer (a part of a Concat's output)
  float alpha = 1, beta = 1;
  bool has_bias = false;
  int64_t bias_m = 0, bias_n = 0;  ///< Bias(m, n) = bias[offset + m * bias_m + n * bias_n]

  /// Implicit-GEMM convolution: B(k, n) = x[offset + c * h * w + ih * w + iw] with k = (c, r, s)
  /// over c x kr x ks and n = (oh, ow) over (n / ow) x ow, ih = oh * stride_h - pad_t + r * dil_h,
  /// iw = ow * stride_w - pad_l + s * dil_w; 0 outside the image.
  bool conv = false;
  int64_t h = 0, w = 0, kr = 1, ks = 1, ow = 1;
  int64_t stride_h = 1, stride_w = 1, pad_t = 0, pad_l = 0, dil_h = 1, dil_w = 1;

  /// Added after the bias: a tensor of Y's layout (a residual connection), read at Y's offsets.
  bool has_residual = false;
  int residual_buf = -1;

  /// Applied last (after bias and residual). A clip bounds by [lo, hi]; GELU is exact (erf) or
  /// the tanh approximation.
  enum class Act { kNone, kRelu, kClip, kGelu, kGeluTanh } act = Act::kNone;
  float lo = 0, hi = 0;

  /// The kernel's pointer arguments, all f32 (unused ones may be null at launch), and which
  /// argument each operand is.
  int num_buffers = 0;
  int a_buf = -1, b_buf = -1, bias_buf = -1, y_buf = -1;

  /// Tiling (choose_cuda_gemm_tiling): block tile BM x BN x BK, TM x TN per thread, K cut into
  /// `splits` chunks of k_chunk (a multiple of BK).
  int bm = 64, bn = 64, bk = 16, tm = 4, tn = 4;
  int splits = 1;
  int64_t k_chunk = 0;
  /// Tensor cores (TF32 WMMA, sm_80 and newer): bm and bn multiples of 16; tm and tn unused.
  bool tf32 = false;

  /// SIMT: a thread per TM x TN tile. TF32: a warp per one or more 16 x 16 fragments, at most 8.
  int threads() const;
  /// Whether Y's elements are exactly y[0, y_elements()) (a permutation of them), as the split
  /// GEMM's zeroing assumes; false for a part of a larger tensor.
  bool y_covers_prefix() const;
  int64_t batch_count() const;
  int64_t y_elements() const { return batch_count() * m * n; }
};

/// Picks the tile shape, the split of K and (with `tf32`, for tiles whose sides are multiples of
/// 16) tensor cores for a GPU with `multiprocessors` SMs, by the least estimated time: per SM,
/// its share of the blocks, each bound by its FMAs or by its tile loads (a thin tile rereads the
/// other operand once per block), plus the cost of a split. K is split only when no activation
/// needs the whole sum and Y covers its buffer's first y_elements() elements.
void choose_cuda_gemm_tiling(CudaGemm* g, int multiprocessors, bool tf32 = false);

/// Whether g's tile can run on TF32 tensor cores (16 x 16 fragments).
bool cuda_gemm_tf32_fits(const CudaGemm& g);

/// `v` rounded to TF32 as the kernels stage it (cvt.rna.tf32.f32): the low 13 mantissa bits
/// cleared, rounding to nearest with ties away from zero; NaN and infinities unchanged.
float round_to_tf32(float v);

/// Cuts K into at most `splits` chunks of whole BK slices (k_chunk, and splits as many as that
/// needs); g->bk must be set.
void split_cuda_gemm_k(CudaGemm* g, int64_t splits);

/// The tilings choose_cuda_gemm_tiling picks from, as {bm, bn, tm, tn} (tests cover each).
const std::vector<std::vector<int>>& cuda_gemm_tiles();

/// The kernel as CUDA C: the prelude, then (when K is split) `name`_zero, a grid loop over Y's
/// elements, then `name`, launched with its fixed grid. kiln::Error(kInternal) when the shape
/// does not fit a launch (grid.y or grid.z over 65535) or the tiling is inconsistent.
CudaSource print_cuda_gemm(const CudaGemm& g, const std::string& name);

/// Every field, as text: two GEMMs print the same kernel iff their keys are equal.
std::string cuda_gemm_key(const CudaGemm& g);
/// "gemm" + a 64-bit hash of the key, in hex: the kernel's name stem and cache key.
std::string cuda_gemm_hash(const CudaGemm& g);

}  // namespace kiln::jit
