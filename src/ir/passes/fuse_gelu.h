// Graph pass fuse_gelu.
//
// Rewrites the exported forms of GELU into one Gelu node (opset 20, or the graph's when newer; its
// reference kernel and lowering the registry has): the exact form x * 0.5 * (1 + Erf(x / sqrt(2)))
// (Div by ~1.41421 or Mul by ~0.70711) and the tanh approximation 0.5 * x * (1 + Tanh(0.79788 * (x
// + 0.044715 * x^3))) (x^3 as Pow(x, 3) or Mul(x, Mul(x, x))) with approximate="tanh", in each of
// the three ways the final products associate ((x*a)*0.5, (x*0.5)*a, x*(a*0.5)) and with either
// operand order. Constants must be non-overridable initializers within 1e-4 relative of the exact
// ones; every intermediate value must be read by the pattern alone. The final product's value is
// kept.
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the Gelus made.
bool fuse_gelu(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
