// Graph pass fold_constants.
//
// Evaluates, once at load with the registry's reference kernels, every pure node (default
// domain, deterministic, no subgraph; see is_pure) whose inputs are all non-overridable
// initializers, and turns its outputs into initializers. Initializers that are also graph inputs
// (overridable defaults) are never treated as constants. A node is left alone when an output
// would exceed kMaxFoldElements elements, is not a tensor, or its kernel fails (the run reports
// that error as before). The folded values keep their names, dtypes and shapes.
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the number of
/// rewrites made.
bool fold_constants(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
