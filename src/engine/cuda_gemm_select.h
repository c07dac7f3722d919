// Which plan steps the CUDA backend runs as tiled GEMM kernels (jit/cuda_gemm.h) instead of
// their lowered loop nests: one MatMul, Gemm or 2-D Conv node on f32 with concrete shapes.
// Depthwise-like convolutions (fewer than 8 output channels per group) keep their loop nests.
#pragma once

#include <optional>

#include "engine/plan.h"
#include "jit/cuda_gemm.h"

namespace kiln::engine {

/// SMs assumed where no GPU says (`kiln ptx`): an H100 SXM's 132.
constexpr int kDefaultMultiprocessors = 132;

/// The GEMM of step `s` of a plan over graph `g` (buffers: the step's inputs, then its outputs),
/// tiled for a GPU with `multiprocessors` SMs; nullopt when the step is not one it covers.
std::optional<jit::CudaGemm> cuda_gemm_for_step(const ir::Graph& g, const PlanStep& s,
                                                int multiprocessors);

}  // namespace kiln::engine
