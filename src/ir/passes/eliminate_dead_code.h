// Graph pass eliminate_dead_code.
//
// Drops nodes none of whose outputs reach a graph output (through node inputs or the implicit
// inputs of subgraph-holding nodes), whatever the op: an unused Random* or Dropout goes too. Then
// drops initializers and values that nothing reads. Graph inputs and outputs are never removed.
// Preconditions: none beyond the Graph invariants. After: every node contributes to an output.
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the number of
/// rewrites made.
bool eliminate_dead_code(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
