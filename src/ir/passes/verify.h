// The graph verifier run between passes (debug builds, or when asked).
//
// Checks the invariants every pass must keep: node inputs defined before use (graph inputs,
// initializers, captures or outputs of earlier nodes), each value produced by at most one node
// with a matching producer field, graph inputs and outputs unchanged from `before` (same names in
// the same order), and symbolic shape inference still succeeding on a copy of the graph. A
// failure is a Kiln bug: it throws kiln::Error(kInternal) naming the pass.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir::passes {

/// The names of a graph's inputs then outputs, as the verifier compares them.
std::vector<std::string> interface_names(const Graph& g);

/// Throws kiln::Error(kInternal, "after <pass>: ...") on the first broken invariant.
void verify(const Graph& g, const std::vector<std::string>& interface, const std::string& pass);

}  // namespace kiln::ir::passes
