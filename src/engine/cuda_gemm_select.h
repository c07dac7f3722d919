// Which plan steps the CUDA backend runs as tiled GEMM kernels (jit/cuda_gemm.h) instead of
// their lowered loop nests: one MatMul, Gemm or 2-D Conv node on f32 with concrete shapes
// (grouped and depthwise convolutions too: a GEMM per image and group, one row for depthwise).
//
// Epilogues: when the GEMM's output is read by one elementwise step only (not a graph output),
// and that step's nodes are a chain over it of Add of a constant bias (MatMul/Gemm: [N]; Conv:
// [C, 1, 1]), Add of a tensor of the same shape (a residual, computed before the GEMM), and a
// last Relu, Clip or Gelu, the GEMM computes the chain as it stores: that step is absorbed and
// the GEMM writes the chain's output. A MatMul also reads operands made by a Transpose that only
// it reads through that transpose (its input with permuted strides), and writes a result that
// only a Transpose reads (and that needs no residual) straight into the transposed layout: those
// Transposes have no launch either. A Concat (channels) of Conv outputs, each alone or through a
// Relu, that nothing else reads: each Conv writes its channels of the Concat's output (and its
// Relu), and the Concat has no launch.
#pragma once

#include <optional>

#include "engine/plan.h"
#include "jit/cuda_gemm.h"

namespace kiln::engine {

/// SMs assumed where no GPU says (`kiln ptx`): an H100 SXM's 132.
constexpr int kDefaultMultiprocessors = 132;

/// Whether a GPU architecture ("sm_90") has TF32 tensor cores (sm_80 and newer).
bool cuda_arch_has_tf32(const std::string& arch);

/// The GEMM of step `s` of a plan over graph `g` (buffers: the step's inputs, then its outputs),
/// tiled for a GPU with `multiprocessors` SMs (`tf32`: on tensor cores where the tile allows);
/// nullopt when the step is not one it covers.
std::optional<jit::CudaGemm> cuda_gemm_for_step(const ir::Graph& g, const PlanStep& s,
                                                int multiprocessors, bool tf32 = false);

/// A plan step as the CUDA backend launches it when it is a tiled GEMM.
struct CudaGemmLaunch {
  jit::CudaGemm gemm;
  /// Value ids of the GEMM's buffers in order (-1: none); `output` is its last.
  std::vector<int> buffers;
  int output = -1;  ///< the value the GEMM writes (the last absorbed step's output when fused)
  /// The steps this launch computes besides its own, which then have no launch: Transposes of
  /// its operands (read through), the elementwise chain of its epilogue, a Transpose of its
  /// result (written through).
  std::vector<int> absorbed;
  /// A part of a Concat's output (concat_step >= 0, that step absorbed): the GEMM writes its
  /// channels of the Concat's output (with the part's Relu). Every part's GEMM runs or none
  /// does. `output_defined_before`: an earlier part's GEMM wrote the output first, so this
  /// launch lists it among its inputs (it adds to a value that already exists).
  int concat_step = -1;
  bool output_defined_before = false;
  std::string label;  ///< "Conv+Add+Relu"
};

/// Per step of `plan`: its GEMM launch, or nullopt (absorbed steps are nullopt too; see
/// CudaGemmLaunch::absorbed). `fuse_epilogues` false keeps every chain a step of its own;
/// `tf32` runs GEMMs on TF32 tensor cores where their tile allows (SessionOptions::allow_tf32).
std::vector<std::optional<CudaGemmLaunch>> plan_cuda_gemms(const Plan& plan, int multiprocessors,
                                                           bool fuse_epilogues = true,
                                                           bool tf32 = false);

}  // namespace kiln::engine
