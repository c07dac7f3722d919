// Graph pass fuse_layernorm.
//
// Rewrites the exported form of layer normalization over trailing axes,
//   m = ReduceMean(x, axes); d = x - m; v = ReduceMean(d^2, axes)   (d^2 as Pow(d, 2) or Mul(d, d))
//   y = d / Sqrt(v + eps) [* gamma] [+ beta]
// into LayerNormalization(x, gamma, beta) {axis, epsilon} (opset 17 or the graph's), when the axes
// are the last k axes of x (keepdims 1; as attribute or constant input), x is f32 of known rank,
// eps is a scalar constant, gamma and beta are non-overridable f32 initializers that broadcast over
// the normalized dims only, and every intermediate value is read by the pattern alone (d by the
// square and the Div). A missing gamma becomes ones. The last node's output value is kept.
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the fusions made.
bool fuse_layernorm(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
