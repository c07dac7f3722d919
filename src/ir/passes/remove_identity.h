// Graph pass remove_identity.
//
// Removes nodes that copy their input: Identity, Dropout in inference mode (no training_mode
// input, or a constant false one, and its mask output unused), Cast to the input's own type, and,
// when the symbolic shapes prove it, Reshape/Expand to the input's own shape, Transpose with the
// identity permutation, Slice with unit steps to the input's own shape, and Pad with all-zero
// constant pads. Readers of the output read the input instead. When the output is a graph output
// its name is kept: the producer of the input is made to write the output value directly when the
// input is an ordinary node output; otherwise (a graph input or an initializer) the node stays.
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the number of
/// rewrites made.
bool remove_identity(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
