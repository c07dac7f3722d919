// Shared by fold_batchnorm and fold_scale_into_conv: a Conv or Gemm's weights and bias seen as
// per-output-channel data, rescaled and rebiased in double, and written back as new initializers.
#pragma once

#include <optional>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir::passes {

/// y = W x + b per output channel m, with W's elements grouped by m.
struct AffineWeights {
  int node = -1;
  int channels = 0;             // M
  std::vector<double> weight;   // W as read (alpha folded in for Gemm)
  std::vector<int64_t> dims;    // W's dims
  std::vector<int> channel_of;  // output channel of each element of W
  std::vector<double> bias;     // b per channel (zeros when absent; beta folded in for Gemm)
};

/// Reads the weights of node `ni` (Conv; Gemm with 2-D constant B; MatMul with 2-D A and 2-D
/// constant B when `allow_matmul`) when they and the bias are non-overridable f32 initializers
/// and the output is per channel along axis 1 (Conv) or the last axis (Gemm/MatMul).
std::optional<AffineWeights> read_affine(const Graph& g, int ni, bool allow_matmul);

/// Writes W' = W * scale[m] and b' = bias as new initializers into node `w.node` (a MatMul becomes
/// Gemm; Gemm gets alpha = beta = 1).
void write_affine(Graph& g, const AffineWeights& w, const std::vector<double>& scale,
                  const std::vector<double>& bias);

/// The per-channel values of constant `id` for a producer output of rank `rank` whose channel
/// axis is `axis` with M channels: a scalar, or a tensor whose only non-1 dim is at `axis` (once
/// aligned to the right) of size M, of rank <= `rank`. nullopt otherwise.
std::optional<std::vector<double>> per_channel(const Graph& g, int id, int rank, int axis, int m);

}  // namespace kiln::ir::passes
