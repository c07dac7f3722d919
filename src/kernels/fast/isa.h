// Internal: the per-ISA kernel table the fast GEMM/conv drivers call through, and the runtime
// dispatch that picks it (AVX-512F, AVX2+FMA or generic C++). Each ISA lives in its own file,
// compiled without -march flags; its functions carry target attributes and are only called
// when __builtin_cpu_supports says the CPU has the features.
#pragma once

#include <cstdint>

#include "kernels/fast/activation.h"
#include "kernels/fast/conv.h"

namespace kiln::kernels::fast {

/// Epilogue of one register tile, pointers already offset to the tile's (row 0, col 0).
struct TileEpilogue {
  const float* bias_m = nullptr;  ///< per tile row
  const float* bias_n = nullptr;  ///< per tile column
  const float* residual = nullptr;
  int64_t ld_residual = 0;
  const Activation* act = nullptr;
};

/// Depthwise work for one (image, output channel) plane on a zero-padded input plane.
struct DepthwisePlane {
  const float* xp;  ///< padded input plane, row stride wp
  int64_t wp;
  const float* w;  ///< r*s weights
  int64_t r, s, stride_h, stride_w, dil_h, dil_w, oh, ow;
  float* y;  ///< oh x ow output, contiguous
};

/// Depthwise work for one plane read straight from the unpadded NCHW input (no copy): padding
/// taps are masked off, and bias, residual and activation are applied in registers.
struct DepthwiseDirect {
  const float* x;  ///< h x w input plane, contiguous
  int64_t h, w;
  const float* wt;  ///< r*s weights
  int64_t r, s, stride_h, stride_w, dil_h, dil_w, pad_t, pad_l, oh, ow;
  float bias;
  const float* residual;  ///< oh x ow, or null
  const Activation* act;
  float* y;  ///< oh x ow output, contiguous
};

/// One register tile of the blocked (NCHWc) convolution: `ob` output-channel blocks x `p`
/// positions of one output row, over all input blocks. Strides are in floats. x points at
/// (input block 0, kernel row 0, kernel column 0) of the tile's first position and every tap is
/// readable (the driver pads). Weights: [out block][in block][r][s][in lane][out lane].
struct NchwcConvTile {
  const float* x;
  int64_t x_block, x_row, x_col, x_pos;  ///< per input block, kernel row, kernel column, position
  int64_t x_lane;                        ///< per input lane: 1 blocked, a row or plane when NCHW
  /// When set: the input's ntaps (lane, kernel row, kernel column) offsets from x, walked in one
  /// loop with weights packed flat, w[tap][lane] (a stem's 3 channels: one loop of C*R*S).
  const int64_t* taps;
  int64_t ntaps;
  int64_t in_blocks, last_lanes;  ///< input blocks; lanes used in the last one
  int64_t r, s;
  const float* w;         ///< the first output block's weights
  int64_t w_block;        ///< between output blocks' weights
  const float* bias;      ///< ob * block floats
  const float* residual;  ///< blocked like y, or null
  int64_t residual_block;
  float* y;  ///< blocked output at the tile's first position
  int64_t y_block;
  const Activation* act;  ///< relu / clip / leaky relu applied in registers, or null
  int ob, p;
};

/// One output row of one channel block of the blocked depthwise convolution (multiplier 1).
struct NchwcDepthwiseRow {
  const float* x;  ///< padded input at (kernel row 0, column 0) of position 0
  int64_t x_row, x_col, x_pos;
  int64_t r, s, ow;
  const float* w;         ///< r * s weight vectors of the block
  const float* bias;      ///< one vector
  const float* residual;  ///< blocked row or null
  const Activation* act;  ///< simple activations only, or null
  float* y;               ///< blocked output row
};

/// Winograd F(2x2, 3x3) input transform of one 4x4 input patch of one channel block:
/// V = B^T d B, each of the 16 results (one vector of channels) stored at out + xi * out_stride.
/// in[i * 4 + j] is patch row i, column j (a zero vector where the patch leaves the input).
struct WinogradInTile {
  const float* in[16];
  float* out;
  int64_t out_stride;
};
/// Winograd F(2x2, 3x3) output transform of one tile of one output-channel block:
/// Y = A^T M A from the 16 vectors at m + xi * m_stride, then + bias (+ residual), activation;
/// y[i * 2 + j] (and residual[...]) is output row i, column j of the tile, null when outside.
struct WinogradOutTile {
  const float* m;
  int64_t m_stride;
  const float* bias;
  const float* residual[4];
  float* y[4];
  const Activation* act;
};

struct IsaKernels {
  int level;  ///< 0 generic, 2 avx2, 3 avx512
  int mr, nr;
  /// C[m x n] (n <= nr, m <= mr, row stride ldc) = (accumulate ? C : 0) + pa * pb over kc,
  /// then, when ep is set, C = act(C + bias_m + bias_n + residual). pa: kc x mr (k-major
  /// panel), pb: kc x nr; both 64-byte aligned.
  void (*tile)(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int m, int n,
               bool accumulate, const TileEpilogue* ep);
  /// y[i] = act(y[i] + bias + residual[i]) for i < len (residual nullable).
  void (*epilogue_row)(float* y, int64_t len, float bias, const float* residual,
                       const Activation& act);
  /// The depthwise direct convolution of one plane (no bias/activation).
  void (*depthwise_plane)(const DepthwisePlane& p);
  /// One im2col B panel of a conv (contract of pack_b_im2col in pack.h).
  void (*im2col_panel)(const float* x, const ConvShape& sh, int64_t k0, int64_t kc, int64_t p0,
                       int64_t cols, int nr, float* dst);
  /// The whole depthwise step of one plane without a padded copy, or null when this ISA has
  /// none; `depthwise_direct_ok` says which shapes it takes.
  void (*depthwise_direct)(const DepthwiseDirect& p);
  bool (*depthwise_direct_ok)(const ConvShape& sh);
  /// Blocked layout: the channel block (floats per vector), the widest output-block count of a
  /// conv tile, the accumulator budget that keeps every operand in registers (ob * p <=
  /// nchwc_acc), and the most the tile takes (nchwc_acc_max, >= nchwc_acc: one more position
  /// per output block, at the cost of a spilled register), used only when one such tile covers
  /// a whole output row.
  int nchwc_block, nchwc_max_ob, nchwc_acc, nchwc_acc_max;
  void (*nchwc_conv_tile)(const NchwcConvTile& t);
  void (*nchwc_depthwise_row)(const NchwcDepthwiseRow& r);
  void (*winograd_input)(const WinogradInTile& t);
  void (*winograd_output)(const WinogradOutTile& t);
};

/// The table for the CPU (or the level forced for testing).
const IsaKernels& isa();
/// The table for a level that the CPU supports (0, 2 or 3).
const IsaKernels& isa_for_level(int level);

extern const IsaKernels kGenericKernels;
#if defined(__x86_64__)
extern const IsaKernels kAvx2Kernels;
extern const IsaKernels kAvx512Kernels;
#endif

}  // namespace kiln::kernels::fast
