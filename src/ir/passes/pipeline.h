// The session-time optimization pipeline: the graph passes in order, to a fixed point.
//
// Level 0 changes nothing. Level 1 runs eliminate_dead_code, fold_constants,
// eliminate_common_subexpressions and remove_identity until none changes the graph (at most
// kMaxRounds rounds). Level 2 adds fold_batchnorm, fold_scale_into_conv, fuse_layernorm and
// fuse_gelu to the same loop; level 3 is level 2 here (layout and packing happen in the plan
// builder). The graph's inputs and outputs keep their names, order, dtypes and shapes.
//
// With `verify` (tests), or in builds without NDEBUG, the verifier (verify.h) runs after every
// pass that changed the graph. With KILN_DUMP_PASSES=1 in the environment the graph is printed
// (to_text) to stderr before the first pass and after every pass that changed it.
#pragma once

#include <map>
#include <string>

#include "ir/graph.h"

namespace kiln::ir::passes {

struct PassStats {
  /// Pass name -> rewrites it made (nodes removed, folded, merged or fused).
  std::map<std::string, int> applied;
  /// Rounds of the fixed-point loop that were run.
  int rounds = 0;
};

PassStats optimize_graph(Graph& g, int level, bool verify = false);

}  // namespace kiln::ir::passes
