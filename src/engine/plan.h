// Plans: a graph specialized for one set of input shapes, ready to launch.
//
// build_plan() copies the session's symbolic graph, binds the input shapes, re-runs every node's
// shape function on concrete shapes and folds what is then known: shape arithmetic (Shape,
// Gather, Concat, Range, ConstantOfShape, Expand targets...) and any deterministic node whose
// inputs are all constants, evaluated once with the reference kernels. Nodes nobody needs are
// dropped. Each remaining node becomes a step: a view (Reshape, Flatten, Squeeze, Unsqueeze,
// Identity share their input's memory), a JIT kernel (the node's lowering compiled through the
// KernelCache), or the reference kernel when there is no lowering for this case.
//
// Which dims a kernel sees as constants and which as parameters is the DimPolicy's decision
// (SessionOptions::specialization): a dim stays a kernel parameter when its symbol is dynamic, so
// a later plan with other values of that symbol reuses the same compiled kernels.
//
// Graphs whose shapes depend on data (NonZero, Unique, ...) or that hold control flow cannot be
// specialized ahead of the run: their plan is "interpreted" and runs on the reference executor,
// which infers shapes node by node.
//
// A Plan is immutable once built; run_plan() keeps all per-run state on its own stack, so any
// number of threads may run one plan at once.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "engine/memory_plan.h"
#include "ir/graph.h"
#include "jit/cuda_gemm.h"
#include "jit/kernel_cache.h"
#include "kernels/lower/lower.h"
#include "kernels/native_ops.h"
#include "kiln/session.h"

namespace kiln::engine {

/// Which symbolic dims are compiled as kernel parameters.
struct DimPolicy {
  Specialization mode = Specialization::kAuto;
  /// kAuto: base symbols (names of input dims) seen with several values.
  std::set<std::string> dynamic_symbols;
  /// Whether a dim of the symbolic graph stays a parameter (never for constants).
  bool is_dynamic(const ir::Dim& symbolic) const;
};

struct PlanStep {
  enum class Kind { kKernel, kNative, kReference, kView };
  Kind kind = Kind::kReference;
  int node = -1;           // in the plan's graph (the group's anchor node for fused steps)
  std::vector<int> fused;  // every node this step computes (one for unfused steps)
  /// The nodes this step computes: `fused`, or {node} where that is empty.
  std::vector<int> nodes() const { return fused.empty() ? std::vector<int>{node} : fused; }
  std::vector<int> inputs;                            // value ids (-1: omitted)
  std::vector<int> outputs;                           // value ids
  std::shared_ptr<const jit::CompiledKernel> kernel;  // null when !PlanOptions::compile_kernels
  std::shared_ptr<const jit::Kernel> ir;              // the lowered kernel (other backends)
  std::shared_ptr<const kernels::NativeOp> native;    // kNative: a hand-written kernel
  kernels::EpilogueSpec epilogue;  // a native epilogue group's nodes (anchor -1 otherwise)
  int in_place_input = -1;         // output 0 may overwrite this input slot (memory planner)
  bool elementwise = false;        // a JIT elementwise map (a chain or one node)
  bool blocked_io = false;         // reads or writes NCHWc values (engine/layout.h)
  std::string kernel_key;
  std::string kernel_label;
  std::vector<int64_t> params;
  /// Gather-like kernels clamp indices to stay in bounds; the run checks them first so a bad
  /// index is an error (as on the reference kernel), never a silently clamped read.
  int check_indices = -1;   // input slot holding run-time indices, or -1
  int64_t index_bound = 0;  // valid indices are in [-bound, bound)
};

struct PlanOptions {
  bool use_jit = true;
  /// SessionOptions::optimization_level: 0 one step per node; 2 fused groups (elementwise
  /// chains, Conv/MatMul/Gemm epilogues, attention); 3 also hand-written kernels on packed
  /// weights (fast GEMM/convolution).
  int opt_level = 3;
  std::string cache_dir;  // disk kernel cache ("" = none)
  DimPolicy policy;
  jit::KernelCache* cache = nullptr;        // default: the global cache
  kernels::WeightCache* weights = nullptr;  // packed weights shared by the session's plans
  kernels::Schedule schedule = kernels::Schedule::for_host();
  LogLevel log_level = LogLevel::kWarning;
  /// false: lower kernels (PlanStep::ir) without compiling them for the CPU (CUDA plans, `kiln
  /// ptx`); such a plan runs only on a backend that compiles the IR itself.
  bool compile_kernels = true;
  /// Level 3: convolution chains in the blocked NCHWc layout (engine/layout.h).
  bool blocked_layout = true;
  /// The producers of a blocked channel Concat of one image write into its output in place.
  bool concat_in_place = true;
  /// Blocked 3x3 stride-1 layers with enough channels use Winograd F(2x2, 3x3) (fast/winograd.h).
  bool winograd = true;
};

struct RunState;

struct Plan {
  Plan();
  ~Plan();
  std::string key;
  std::shared_ptr<const ir::Graph> graph;  // concrete shapes; folded values are constants
  bool interpreted = false;
  std::string interpreted_reason;
  std::vector<PlanStep> steps;
  std::vector<int> constants;  // values bound from constants at the start of a run
  /// Values their steps write straight into part of another's bytes (a blocked Concat's inputs,
  /// the Concat step then gone): value, the value it is part of, byte offset in it.
  struct Slice {
    int value, of;
    int64_t offset;
  };
  std::vector<Slice> slices;
  int folded_nodes = 0;
  bool has_params = false;  // some kernel takes dims as run-time parameters
  /// Runs of this plan (for the auto policy's hot-shape promotion).
  mutable std::atomic<uint64_t> runs{0};
  int dropped_nodes = 0;
  // How the kernels were obtained.
  int kernels = 0;  // kernel steps
  int kernels_compiled = 0, kernels_from_memory = 0, kernels_from_disk = 0;
  double compile_ms = 0;          // LLVM time
  double build_ms = 0;            // the whole specialization
  int native_steps = 0;           // hand-written kernels
  MemoryPlan memory;              // where each value lives in a run
  std::vector<Dims> output_dims;  // per graph output (checked against caller tensors)
  int64_t scratch_bytes = 0;      // native kernels' scratch, one block per run
  /// Kernel launches of one run: JIT kernels, native kernels and reference kernels.
  int launches() const;
  /// One line per step: "node (Op): jit <key> [params]" / "reference" / "view" / "folded".
  std::vector<std::string> describe() const;

  /// Per-step profile (KILN_PROFILE=1 or set_profiling(true)): nanoseconds spent in each step
  /// over `profiled_runs` runs, aligned with `steps`; empty until a profiled run.
  struct StepTimes {
    explicit StepTimes(size_t n) : ns(new std::atomic<int64_t>[n]()) {}
    std::unique_ptr<std::atomic<int64_t>[]> ns;
    std::atomic<uint64_t> runs{0};
  };
  mutable std::once_flag profile_once;
  mutable std::unique_ptr<StepTimes> profile;

  // Per-run state (arena, pointer tables) pooled across runs: one per concurrent run.
  std::unique_ptr<RunState> acquire_state() const;
  void release_state(std::unique_ptr<RunState> s) const;

 private:
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<RunState>> pool_;
};

/// The memory planner's view of a plan's values (sizes; constants, inputs and outputs; views and
/// slices of its steps), which plan_memory() lays out over the plan's steps, or over another
/// launch list of the same values (the CUDA backend's).
std::vector<MemoryValue> plan_memory_values(const Plan& plan);

/// Specializes `symbolic` for `inputs` (aligned with symbolic.inputs; undefined = the input's
/// initializer default). Throws kiln::Error when the shapes do not fit the model (naming the node).
std::shared_ptr<const Plan> build_plan(const ir::Graph& symbolic, const std::vector<Tensor>& inputs,
                                       const PlanOptions& options, const std::string& key);

/// Runs a plan (the session's reference executor serves interpreted plans). `inputs` is aligned
/// with the graph inputs (null: the initializer default); `preset`, when given, is aligned with
/// the graph outputs and holds caller tensors to write into (null entries: allocate). The graph
/// outputs go to `result` (aligned with the graph outputs) when it is given; an output written
/// into its preset tensor is that tensor. With every output preset and every step a compiled or
/// native kernel or a view, a run allocates nothing.
void run_plan(const Plan& plan, const Executor& reference, const std::vector<const Tensor*>& inputs,
              const std::vector<const Tensor*>* preset, std::vector<Tensor>* result);

/// Whether runs time their steps into Plan::profile (default: env KILN_PROFILE set and not "0").
bool profiling();
void set_profiling(bool on);

namespace detail {
/// Runs one node's reference kernel on the values in env; outputs land in `outs`.
void run_reference(const ir::Graph& g, const ir::Node& n, const std::vector<Tensor>& env,
                   std::vector<Tensor>& outs);
/// Throws when a run-time index tensor holds an index outside [-bound, bound).
void check_index_range(const ir::Node& n, const Tensor& idx, int64_t bound);
}  // namespace detail

/// Convenience for tests: inputs by value, outputs returned.
std::vector<Tensor> run_plan(const Plan& plan, const Executor& reference,
                             const std::vector<Tensor>& inputs,
                             const std::vector<Tensor>* preset = nullptr);

struct LoweredKernel {
  std::string node;  // the graph node's name
  std::shared_ptr<const jit::Kernel> kernel;
  /// The tiled GEMM the CUDA backend runs for this step instead (cuda_gemm_select.h), when
  /// lower_plan_kernels was given a multiprocessor count and the step is one.
  std::optional<jit::CudaGemm> gemm;
  std::string label;  // the GEMM's, with the chain its epilogue computes ("Conv+Relu")
};
/// The lowered kernel of every kernel step of the plan for `inputs`, in step order, without
/// compiling any (build_plan with compile_kernels off). Empty for an interpreted plan. With
/// `gpu_multiprocessors` > 0, steps the CUDA backend runs as tiled GEMMs carry them (on TF32
/// tensor cores where `gpu_tf32` and the tile allow), and the steps their epilogues absorb are
/// left out (cuda_gemm_select.h).
std::vector<LoweredKernel> lower_plan_kernels(const ir::Graph& symbolic,
                                              const std::vector<Tensor>& inputs,
                                              const PlanOptions& options,
                                              int gpu_multiprocessors = 0, bool gpu_tf32 = false);

/// One node on its reference kernel, as run_plan does for reference steps: inputs from `env`
/// (indexed by value id), outputs into `outs` (pre-allocated where the shape is known).
void run_reference_node(const ir::Graph& g, const ir::Node& n, const std::vector<Tensor>& env,
                        std::vector<Tensor>& outs);
/// Throws kiln::Error naming the node when `idx` holds an index outside [-bound, bound).
void check_step_indices(const ir::Node& n, const Tensor& idx, int64_t bound);

}  // namespace kiln::engine
