// A compact, stable text form of a graph for pass tests and the KILN_DUMP_PASSES dump.
//
// One line per graph input ("in x: f32[batch,3]"), per initializer that is read ("const w:
// f32[4,3] = 1, 2, ..." with at most 4 values), per node ("y = Conv(x, w, _) {pads=[1,1,1,1]}",
// attributes sorted by name, "_" for an omitted input, the opset after '@' when it differs from
// the graph's) and one "out a, b" line. Value ids never appear, so two graphs that differ only in
// numbering print the same.
#pragma once

#include <string>

#include "ir/graph.h"

namespace kiln::ir::passes {

std::string to_text(const Graph& g);

}  // namespace kiln::ir::passes
