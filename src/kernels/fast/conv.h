// Fast float32 2-D convolution (NCHW, the ONNX layout) for the CPU engine. Weights are packed
// once at construction for the microkernel of the dispatch level current then; run() is const
// and thread-safe. Algorithms: "gemm1x1" (1x1, stride 1, no pad: X read directly as the GEMM B
// operand), "im2col-gemm" (B panels gathered from X on the fly, never materialized),
// "depthwise" (group == C, K a multiple of C: direct kernel vectorized along the output row).
// Bias, residual and activation are fused: y = act(conv(x) + bias + residual).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/fast/activation.h"
#include "kernels/fast/buffer.h"

namespace kiln::kernels::fast {

/// 2-D convolution, NCHW input/output, weights K x C/group x R x S.
struct ConvShape {
  int64_t n, c, h, w, k, r, s;
  int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  int64_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  int64_t group = 1;
  int64_t out_h() const { return (h + pad_t + pad_b - dil_h * (r - 1) - 1) / stride_h + 1; }
  int64_t out_w() const { return (w + pad_l + pad_r - dil_w * (s - 1) - 1) / stride_w + 1; }
  /// Multiply-adds of the direct convolution (what task_budget weighs).
  double fma() const {
    return double(n) * double(k) * double(out_h() * out_w()) * double(c / group) * double(r * s);
  }
};

/// What a packed filter layout depends on: the filter dims and the group count (never N, H, W,
/// strides, pads or dilations), so one packing serves every image size of a layer.
struct FilterDims {
  int64_t k = 0, c = 0, r = 0, s = 0, group = 1;
  static FilterDims of(const ConvShape& sh) { return {sh.k, sh.c, sh.r, sh.s, sh.group}; }
  bool operator==(const FilterDims&) const = default;
};

/// A convolution's filters in the layout its kernels read: packed GEMM A panels per group, or the
/// raw depthwise weights. The layout depends on K, C, R, S, the group count and the dispatch
/// level only, never on N/H/W, strides, pads or dilations: one ConvWeights serves every image
/// size of a layer (Conv2d objects for several plans share it).
class ConvWeights {
 public:
  /// Packs `weights` (K x C/group x R x S) for `shape`'s filters at the current dispatch level.
  static std::shared_ptr<const ConvWeights> pack(const ConvShape& shape, const float* weights);
  /// Whether a Conv2d of `shape` can use these filters (same K, C, R, S, group and level).
  bool fits(const ConvShape& shape) const;
  int level() const { return level_; }
  const float* data() const { return data_.data(); }

 private:
  FilterDims dims_;
  int level_ = 0;
  AlignedBuffer data_;
};

class Conv2d {
 public:
  Conv2d(const ConvShape& shape, const float* weights, const float* bias, Activation act);
  /// Filters packed before (ConvWeights::pack, possibly for another image size); throws
  /// kInvalidArgument when they do not fit `shape`.
  Conv2d(const ConvShape& shape, std::shared_ptr<const ConvWeights> packed, const float* bias,
         Activation act);
  /// y = act(conv(x) + bias + residual); residual nullable, NCHW like y. scratch:
  /// scratch_bytes() bytes (64-byte aligned) or null; used by the serial path only.
  void run(const float* x, float* y, const float* residual = nullptr,
           void* scratch = nullptr) const;
  size_t scratch_bytes() const;
  const ConvShape& shape() const { return shape_; }
  std::string algorithm() const;

 private:
  enum class Algo { kGemm1x1, kIm2col, kDepthwise };
  void run_gemm(const float* x, float* y, const float* residual, void* scratch) const;
  void run_depthwise(const float* x, float* y, const float* residual, void* scratch) const;

  ConvShape shape_;
  Activation act_;
  Algo algo_;
  int level_;
  int64_t kg_, kdim_, kc_, m_pad_;  // rows per group, GEMM K, K-block, rows rounded to mr
  std::shared_ptr<const ConvWeights> weights_;  // packed A panels, or raw depthwise weights
  AlignedBuffer bias_;                          // k floats (zeros when no bias)
};

}  // namespace kiln::kernels::fast
