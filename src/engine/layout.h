// The blocked-layout pass of a specialized plan (optimization level 3).
//
// Convolution chains run in the NCHWc layout of fast/nchwc.h: every convolution with a blocked
// kernel writes its output blocked when some consumer can read blocked data (another
// convolution, a max/average pool, a global average pool or a channel concat whose inputs are
// all blocked); pools and concats whose inputs are all blocked run blocked too. A blocked value
// gets a new plan value of dims [N, C/cb, H, W, cb]. Where a step that needs NCHW (or a graph
// output) reads a blocked value, one reorder step right after its producer writes the NCHW
// value; a convolution reads either layout itself, so a chain's first convolution needs no
// reorder and a global average pool ends a chain in NCHW for free.
#pragma once

#include "engine/plan.h"

namespace kiln::engine {

/// Rewrites `plan.steps` (whose graph is `g`) to the blocked layout where it pays. Steps whose
/// epilogue names a Conv, and single-node pool/concat steps, are the candidates.
void apply_nchwc_layout(Plan& plan, ir::Graph& g, kernels::WeightCache* weights);

}  // namespace kiln::engine
