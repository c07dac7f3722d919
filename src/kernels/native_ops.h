// Native kernels for plan steps: which graph patterns they serve and how they are built.
//
// An epilogue group (engine/fuse.h) is a Conv, MatMul or Gemm with constant weights followed by
// an optional bias Add, residual Add and activation. make_native_epilogue builds one NativeOp
// for it, packing the weights once; the step's buffers are {x, residual (may be null), y}.
// native_anchor and native_activation tell the fusion pass which nodes qualify, so a group is
// only formed where a kernel exists.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kernels/fast/nchwc.h"
#include "kernels/native.h"

namespace kiln::kernels {

/// Packed weights shared by every plan of a session (a MatMul's packed B serves every sequence
/// length; a convolution's packed filters every image size). Thread-safe; entries live as long
/// as the session (or a plan still holding them).
class WeightCache {
 public:
  /// The entry for `key`, made by `make` on first use.
  std::shared_ptr<const void> get(const std::string& key,
                                  const std::function<std::shared_ptr<const void>()>& make);
  size_t size() const;
  /// Only the session's own constants are shared: data a plan folded lives as long as the plan,
  /// and its address could later name other data.
  void set_shareable(std::set<const void*> data) { shareable_ = std::move(data); }
  bool shareable(const void* p) const { return shareable_.count(p) != 0; }

 private:
  std::set<const void*> shareable_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const void>> entries_;
};

/// The 2-D convolution of a Conv node on f32 with constant weights (and bias), pads resolved
/// from auto_pad, its output dims checked; nullopt for any other Conv.
std::optional<fast::ConvShape> conv_shape(const ir::Graph& g, const ir::Node& n);

struct EpilogueSpec {
  int anchor = -1;        // node: Conv / MatMul / Gemm
  int bias_add = -1;      // node: Add of a constant [N] bias (MatMul/Gemm), or -1
  int residual_add = -1;  // node: Add of a tensor of the output's shape, or -1
  int residual = -1;      // value added by residual_add
  int activation = -1;    // node: the activation applied last, or -1
};

/// A tensor read through strides (elements) from another value's memory: `value`'s elements
/// starting at `offset`.
struct StridedView {
  int value = -1;
  int64_t offset = 0;
  std::vector<int64_t> dims, strides;
};

/// softmax(scale * Q·Kᵀ (+ mask)) · V over [batch, heads] with an optional mask broadcast to the
/// scores. Buffers: {Q's value, Kᵀ's value, V's value, mask (or null), output}.
struct AttentionSpec {
  StridedView q, kt, v;  // [B, H, Sq, D], [B, H, D, Sk], [B, H, Sk, Dv]
  float scale = 1;
  enum MaskKind { kNone, kAdd, kWhere } mask_kind = kNone;
  int mask = -1;                      // f32 added to the scores, or the bool Where condition
  std::vector<int64_t> mask_strides;  // 4 strides over the scores' dims (0 = broadcast)
  bool keep_when_true = true;         // Where(cond, scores, fill) vs Where(cond, fill, scores)
  float fill = 0;
  std::vector<int64_t> out_strides;  // the output [B, H, Sq, Dv] in memory
};
std::shared_ptr<const NativeOp> make_native_attention(const AttentionSpec& spec);

/// A 2-D pooling node's window (explicit pads only: auto_pad NOTSET), checked positive.
std::optional<fast::PoolWindow> pool_window(const ir::Node& n);

/// A native kernel for one node on its own (MaxPool, 2-D f32), or null when none applies.
/// Buffers: the node's input 0, then its output.
std::shared_ptr<const NativeOp> make_native_single(const ir::Graph& g, const ir::Node& n);

/// Whether node `n` can anchor a native kernel: f32, constant weights, supported attributes.
bool native_anchor(const ir::Graph& g, const ir::Node& n);
/// Whether node `n` is an activation a native epilogue applies (f32, constant parameters).
bool native_activation(const ir::Graph& g, const ir::Node& n);
/// The native kernel for an epilogue group, or null when none applies.
/// `weights` (may be null) shares packed weights with other plans of the session.
std::shared_ptr<const NativeOp> make_native_epilogue(const ir::Graph& g, const EpilogueSpec& spec,
                                                     WeightCache* weights = nullptr);

// ---- The blocked NCHWc layout (fast/nchwc.h); engine/layout.cc decides where it runs ----

/// Whether an epilogue group's convolution has a blocked kernel (group 1 or depthwise, f32).
bool nchwc_conv_eligible(const ir::Graph& g, const EpilogueSpec& spec);
/// The blocked convolution of an epilogue group reading its input blocked or NCHW and writing
/// its output (and reading its residual) blocked or NCHW; null when not eligible. Buffers as
/// make_native_epilogue's.
/// `winograd`: a 3x3 stride-1 layer with enough channels, blocked on both sides, runs as
/// Winograd F(2x2, 3x3) (fast/winograd.h) instead.
/// `y_image_floats` > 0: a blocked output whose images are that many floats apart (the
/// conv fills one slice per image of a channel Concat's output).
std::shared_ptr<const NativeOp> make_nchwc_conv(const ir::Graph& g, const EpilogueSpec& spec,
                                                bool x_blocked, bool y_blocked,
                                                WeightCache* weights = nullptr,
                                                bool winograd = true, int64_t y_image_floats = 0);
/// A blocked convolution (group 1, no residual; input blocked or NCHW) fused with the blocked
/// MaxPool / AveragePool node `pool` that alone reads its output (fast::ConvPoolNchwc), or null
/// when not eligible. Buffers: x, an unused residual slot, the pool's output.
std::shared_ptr<const NativeOp> make_nchwc_conv_pool(const ir::Graph& g, const EpilogueSpec& spec,
                                                     bool x_blocked, const ir::Node& pool,
                                                     WeightCache* weights = nullptr);
/// A blocked convolution (group 1, no residual) fused with the blocked depthwise convolution
/// (epilogue group `dw_spec`, no residual) that alone reads its output (fast::ConvDwNchwc), or
/// null when not eligible. Buffers: x, an unused residual slot, the depthwise output.
std::shared_ptr<const NativeOp> make_nchwc_conv_depthwise(const ir::Graph& g,
                                                          const EpilogueSpec& spec, bool x_blocked,
                                                          const EpilogueSpec& dw_spec,
                                                          WeightCache* weights = nullptr);
/// A single node's kernel on blocked data with `cb` lanes per block, or null when it has none:
/// MaxPool / AveragePool (2-D, explicit pads; blocked in and out), GlobalAveragePool (blocked
/// in, NCHW [N, C, 1, 1] out) and Concat along channels (blocked in and out; every input but the
/// last a whole number of blocks). Buffers: the node's inputs, then its output.
std::shared_ptr<const NativeOp> make_nchwc_single(const ir::Graph& g, const ir::Node& n,
                                                  int64_t cb);
/// Converts a [N, C, H, W] f32 tensor to blocked (to_blocked) or back.
std::shared_ptr<const NativeOp> make_nchwc_reorder(const Dims& nchw, bool to_blocked, int64_t cb);

}  // namespace kiln::kernels
