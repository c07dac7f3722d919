// Graph pass collapse_reshape_chains (specialization time: meant for the plan builder's concrete
// graph, though it is correct on any graph).
//
// A view op (Reshape, Flatten, Squeeze, Unsqueeze) whose input comes from another view op read by
// it alone, and whose output shape is fully constant, becomes one Reshape of the chain's source to
// a constant shape (allowzero=1 when the shape holds a 0). Transpose(Transpose(x, p1), p2) with the
// inner one read by the outer alone becomes Transpose(x, p1[p2[i]]); when that permutation is the
// identity the node is removed (its readers read x), unless its output is a graph output. Nodes
// left unread are swept by the next eliminate_dead_code.
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the collapses made.
bool collapse_reshape_chains(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
