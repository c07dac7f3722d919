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
//
// Elementwise JIT steps whose output is 4-D f32 run blocked too when every input of the output's
// dims is blocked (inputs that broadcast, such as per-channel constants, are read in their own
// layout): the plan builder lowers them again for the blocked layout. The pass runs before the
// plan's kernels are compiled, so a step it makes native is never compiled.
#pragma once

#include <functional>
#include <optional>
#include <set>

#include "engine/plan.h"

namespace kiln::engine {

/// An elementwise step lowered for the blocked layout, and its inputs (NCHW-side value ids) in
/// the kernel's buffer order.
struct BlockedKernel {
  jit::Kernel kernel;
  std::vector<int> inputs;
};
/// Lowers elementwise step `s` with the inputs in `blocked` (NCHW-side value ids) read blocked
/// and its output written blocked; nullopt when it cannot.
using BlockedElementwise =
    std::function<std::optional<BlockedKernel>(const PlanStep& s, const std::set<int>& blocked)>;

/// Rewrites `plan.steps` (whose graph is `g`) to the blocked layout where it pays. Steps whose
/// epilogue names a Conv, single-node pool/concat steps, and elementwise steps that `relower`
/// lowers blocked are the candidates.
void apply_nchwc_layout(Plan& plan, ir::Graph& g, kernels::WeightCache* weights,
                        const BlockedElementwise& relower, bool winograd);

}  // namespace kiln::engine
