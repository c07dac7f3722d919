// Graph pass eliminate_common_subexpressions.
//
// Merges pure nodes (see is_pure; never Random*/Dropout) with the same op, domain, opset,
// attributes and inputs into the first of them, and merges identical small initializers (dtype,
// dims and bytes equal; at most kMaxMergeElements elements). A duplicate whose output is a graph
// output keeps its node, so output names never change.
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the number of
/// rewrites made.
bool eliminate_common_subexpressions(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
