// Winograd F(2x2, 3x3) convolution on blocked (NCHWc) data (Lavin and Gray, "Fast Algorithms
// for Convolutional Neural Networks", 2016): each 2x2 output tile of a 3x3, stride-1 layer
// costs 16 multiplies per input/output channel pair instead of 36.
//
// Per block of tiles: the input transform writes V[xi][tile][c] (16 matrices), 16 GEMMs on the
// fast GEMM multiply them by the filters transformed and packed once per session,
// U[xi][c][k] = (G g G^T)[xi], into M[xi][tile][k], and the output transform adds the bias (and
// residual), applies the activation and writes the blocked output. The transforms add and
// subtract only (|error| a few ulp of the sums, as a direct convolution's reordering does).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/fast/activation.h"
#include "kernels/fast/buffer.h"
#include "kernels/fast/conv.h"
#include "kernels/fast/gemm.h"

namespace kiln::kernels::fast {

/// Whether WinogradConv computes `s`: a 3x3, stride 1, dilation 1, group 1 convolution.
bool winograd_supported(const ConvShape& s);
/// Whether it beats the direct blocked convolution on `s` (measured with kiln_microbench's
/// conv/.../winograd: 1.4-1.8x on resnet18's layers; in squeezenet, 1.3x on the 32- to
/// 64-channel fire layers but 0.9x on the 16-channel ones at 1 thread and 0.75x at 2, where
/// the transforms outweigh a GEMM of K = 16; so at least 32 input channels and a block of
/// outputs). And at least 24 tiles in the batch: resnet18's 512-channel 7x7 layers (16 tiles)
/// stream 16 MB of transformed filters (9.4 MB direct) for too few tiles to be worth it, and
/// cannot split them over two threads: 1.33 ms Winograd vs 1.53 ms direct at 1 thread, but
/// 1.23 ms vs 0.77 ms at 2, in the model.
bool winograd_preferred(const ConvShape& s);

/// The transformed filters U[xi] (C x K, output channels padded to whole blocks with zeros),
/// packed for the GEMM of the dispatch level current at pack() time.
class WinogradWeights {
 public:
  static std::shared_ptr<const WinogradWeights> pack(const ConvShape& s, const float* weights);
  bool fits(const ConvShape& s) const;
  const PackedB& u(int xi) const { return u_[size_t(xi)]; }

 private:
  FilterDims dims_;
  int level_ = 0;
  std::array<PackedB, 16> u_;
};

class WinogradConv {
 public:
  /// y = act(conv(x) + bias + residual) with x, y (and the residual) blocked. Throws
  /// kInvalidArgument when the shape is not supported, a side is not blocked, or `packed` does
  /// not fit `s`.
  WinogradConv(const ConvShape& s, std::shared_ptr<const WinogradWeights> packed, const float* bias,
               Activation act, bool x_blocked, bool y_blocked);
  void run(const float* x, float* y, const float* residual, void* scratch) const;
  size_t scratch_bytes() const;
  const ConvShape& shape() const { return s_; }
  std::string algorithm() const { return "nchwc-winograd-f2x2"; }
  /// y's images `floats` apart (a slice of a Concat's output per image); the residual packed.
  void set_y_image_floats(int64_t floats) { y_image_ = floats; }

 private:
  // Tiles [t0, t0 + count) (count <= tile_block_).
  void run_block(int64_t t0, int64_t count, const float* x, float* y, const float* residual,
                 float* buf, bool serial_gemm) const;

  ConvShape s_;
  std::shared_ptr<const WinogradWeights> w_;
  AlignedBuffer bias_;  // K rounded up to blocks
  AlignedBuffer zero_;  // one zero vector: taps outside the input
  Activation act_;
  int level_;
  int64_t cb_, cpad_, kpad_, tiles_h_, tiles_w_, tiles_, tile_block_, blocks_;
  int64_t y_image_;  // floats between y's images
};

}  // namespace kiln::kernels::fast
