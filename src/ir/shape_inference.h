// Symbolic shape inference over a whole graph (and its subgraphs).
//
// Runs each node's registered shape function in topological order on the values' element types
// and symbolic shapes, filling in every node output's dtype, shape, known data (Constant) and
// symbolic int elements (Shape→Gather→Concat chains). A shape error in the model is reported as
// kiln::Error naming the node. Declared output shapes that are more specific are kept.
#pragma once

#include "ir/graph.h"

namespace kiln::ir {

/// Infers every value of `g` in place; subgraphs are inferred when their node is reached.
void infer_shapes(Graph& g);

}  // namespace kiln::ir
