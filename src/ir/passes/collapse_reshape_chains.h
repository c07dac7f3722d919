// Graph pass collapse_reshape_chains (specialization time: meant for the plan builder's concrete
// graph, though it is correct on any graph).
//
// A view op (Reshape, Flatten, Squeeze, Unsqueeze) whose input comes from another view op read by
// it alone, and whose output shape is fully constant, becomes one Reshape of the chain's source to
// a constant shape (allowzero=1 when the shape holds a 0). Transpose(Transpose(x, p1), p2) with the
// inner one read by the outer alone becomes Transpose(x, p1[p2[i]]); when that permutation is the
// identity the node is removed (its readers read x), unless its output is a graph output.
//
// The plan builder runs it on each specialized graph (where every shape is concrete), through
// collapse_view_chains, which leaves the absorbed nodes in place for the plan's liveness to drop,
// so node ids stay valid.
#pragma once

#include <vector>

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the collapses made.
bool collapse_reshape_chains(Graph& g, int* rewrites = nullptr);

/// The rewrites without the sweep: returns their count and flags in `dead` (resized to the node
/// count) the nodes left unread by them; no node or value is removed.
int collapse_view_chains(Graph& g, std::vector<char>& dead);

}  // namespace kiln::ir::passes
