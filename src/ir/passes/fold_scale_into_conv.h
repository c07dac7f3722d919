// Graph pass fold_scale_into_conv.
//
// Folds Mul(y, c) / Mul(c, y) and Add(y, c) / Add(c, y), where y is the output of a Conv or Gemm
// read only by that Mul/Add (and not a graph output), into the producer's weights and bias, when c
// is a non-overridable f32 initializer that is a scalar or per output channel (Conv: shape
// [M,1,...,1] or with fewer leading dims, Gemm: [M] or [1,M]) and does not broadcast y to a larger
// shape. Mul: W' = W * c, b' = b * c; Add: b' = b + c (a bias is created when absent). This is
// exact in real arithmetic ((W x + b) c = (W c) x + b c); in floating point the products are
// rounded at a different point, so results may differ by a few ulps, as for any refactoring of a
// dot product. Gemm's alpha and beta are folded into W' and b' (double math, one f32 rounding).
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the Mul/Adds folded.
bool fold_scale_into_conv(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
