// Native kernels: hand-written C++ kernels bound to one step of a specialized plan.
//
// Where the JIT's generic loop nests are far from the machine's peak (GEMM, convolution,
// attention), a plan step runs a NativeOp instead: an object built once at specialization time
// for exact shapes, holding whatever it prepared (packed weights, tile choices), whose run() is
// const and safe to call from many threads at once. Buffers are passed as for JIT kernels: the
// step's inputs in order, then its outputs; `scratch` is scratch_bytes() bytes (64-byte aligned)
// owned by the run, so concurrent runs never share it.
//
// A NativeOp computes exactly what the graph nodes it replaces compute (within float rounding of
// another summation order); tests compare each against the reference kernels.
#pragma once

#include <cstddef>
#include <string>

namespace kiln::kernels {

/// What a plan pass may rely on about a native step (engine/layout.cc fuses blocked steps,
/// engine/plan.cc writes Concat inputs in place).
enum class NativeKind {
  kOther,
  kBlockedConv,       ///< one blocked convolution (group 1, direct or Winograd), nothing fused
  kBlockedDepthwise,  ///< one blocked depthwise convolution
  kBlockedPool,       ///< MaxPool / AveragePool on blocked data
  kBlockedConcat,     ///< a channel Concat of blocked data
};

class NativeOp {
 public:
  virtual ~NativeOp() = default;
  virtual NativeKind kind() const { return NativeKind::kOther; }
  virtual void run(void* const* buffers, void* scratch) const = 0;
  virtual size_t scratch_bytes() const { return 0; }
  /// "conv im2col-gemm 64x3x7x7/2 +bias+relu" for `kiln info --plan`.
  virtual std::string describe() const = 0;
};

}  // namespace kiln::kernels
