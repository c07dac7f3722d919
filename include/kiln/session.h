// kiln::Session — load an ONNX model once, run it at any input shape the model allows.
//
// A Session owns the imported graph and its weights. run() is safe to call from many threads at
// once: each call works on its own buffers. Every failure is reported as kiln::Error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/device.h"
#include "kiln/devices.h"
#include "kiln/tensor.h"

namespace kiln {

/// How input shapes turn into compiled kernels. Every distinct input shape gets its own plan
/// (folded shapes, launch list); the policy decides which dims the plan's kernels see as
/// compile-time constants and which as run-time parameters, i.e. how often kernels are reused.
/// Under every policy a dim whose value is 0 or 1 is compiled as a constant (as torch.compile
/// specializes 0 and 1), since broadcasting and empty tensors depend on it.
enum class Specialization {
  /// A symbolic input dim is a constant until it has been seen with two distinct values; from
  /// then on it (and every dim computed from it) is a kernel parameter, so later shapes reuse
  /// the parameter kernels (torch.compile's "automatic dynamic").
  kAuto,
  /// Every distinct shape gets kernels with all dims constant (fastest code, most compiles).
  kExact,
  /// Symbolic input dims are parameters from the first run: a new shape needs a new plan but no
  /// new kernels (except for the 0/1 specializations).
  kDynamic,
};

enum class LogLevel { kError, kWarning, kInfo, kDebug };

struct SessionOptions {
  /// Threads for one run's parallel loops (a oneTBB arena of this size); 0 = all cores.
  int intra_op_threads = 0;
  /// Graph passes at load: 0 none; 1 dead code, constant folding, common subexpressions,
  /// identity removal; 2 also BatchNorm/scale folding into Conv/Gemm and LayerNorm/Gelu fusion;
  /// 3 as 2 plus what the plan builder does at its top level.
  int optimization_level = 3;
  /// Specialization policy of the plan cache.
  Specialization specialization = Specialization::kAuto;
  /// Plans kept per session, least recently used evicted first.
  size_t max_specializations = 64;
  /// On-disk kernel cache shared by processes; empty = $KILN_CACHE_DIR, or none when unset.
  std::string cache_dir;
  /// kAuto: a shape that has run this many times on a plan with parameter kernels is recompiled
  /// with all dims constant, in the background, and its plan swapped in (0 = never).
  uint32_t hot_shape_runs = 64;
  /// Compile nodes that have a lowering to JIT kernels; false runs every node on its reference
  /// kernel (for debugging and comparisons).
  bool use_jit = true;
  /// Input shapes to compile plans for while the session is created, so a service compiles at
  /// load and not on its first request (see also Session::specialize_for). Each entry maps input
  /// names to dims; inputs left out take their default (initializer) or must be fixed-shape.
  std::vector<std::map<std::string, Dims>> warmup_shapes;
  /// Device to run on. kCuda runs plans on the first GPU (kernels compiled with NVRTC, nodes
  /// without a lowering on the host); it fails at session creation when CUDA cannot run here.
  /// kAuto picks CUDA when cuda_available(), else the CPU (with a log line).
  Device device = Device::kCpu;
  /// CUDA sessions: run(inputs) returns its outputs in GPU memory (Tensor::device() kCuda), so a
  /// service can keep data on the GPU; false copies them to the host. Inputs and caller-provided
  /// outputs are used where they live either way (see Session::run).
  bool outputs_on_device = false;
  /// CUDA sessions on GPUs with TF32 tensor cores (sm_80 and newer): MatMul, Gemm and Conv run
  /// on them, their operands rounded to TF32 (10-bit mantissa) and summed in f32, as PyTorch's
  /// allow_tf32 does. Faster for large GEMMs; results differ from f32 by about 1e-3 relative.
  bool allow_tf32 = false;
  /// Messages below this level are not printed (to stderr).
  LogLevel log_level = LogLevel::kWarning;
};

/// Options of one run (the Session::run overloads that take them).
struct RunOptions {
  /// CUDA sessions: a stream of the caller's (a CUstream of the device's primary context, the
  /// one the CUDA runtime uses, as void*). The run's GPU work starts after the work queued on it
  /// so far, so GPU inputs written there are complete, without blocking the host on it. Null:
  /// the caller synchronizes such work before run(). Outputs are complete when run() returns
  /// either way. The stream must not be capturing a CUDA graph (run() synchronizes its own
  /// stream, which the wait would pull into that capture). CPU sessions ignore it.
  void* cuda_stream = nullptr;
};

/// One dimension of a model input or output: a constant, a named symbol ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  ///< >= 0 when the dim is a constant
  std::string symbol;  ///< the symbol's name, when not a constant
  bool is_constant() const { return value >= 0; }
};

/// Name, element type and (symbolic) shape of a model input or output.
struct KILN_API ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  bool has_shape = false;  ///< false when the model does not say the rank
  std::vector<Dim> shape;
  bool has_default = false;  ///< an input with an initializer: may be left out of run()
  /// "f32[batch,3,224,224]"
  std::string to_string() const;
};

/// Named tensors, as run() takes and returns them.
using TensorMap = std::map<std::string, Tensor>;

/// Counters of one session since it was created.
struct SessionStats {
  uint64_t runs = 0;               ///< completed run() calls
  uint64_t failed_runs = 0;        ///< run() calls that threw
  uint64_t distinct_shapes = 0;    ///< distinct input shape keys seen
  uint64_t plan_hits = 0;          ///< runs (and specialize_for calls) that found their plan
  uint64_t plan_misses = 0;        ///< ... that had to specialize
  uint64_t specializations = 0;    ///< plans built
  uint64_t plan_evictions = 0;     ///< plans dropped by the max_specializations bound
  uint64_t plans_cached = 0;       ///< plans held now
  uint64_t packed_weights = 0;     ///< weight sets packed for native kernels, shared by plans
  uint64_t kernels_compiled = 0;   ///< kernels this session had LLVM compile
  uint64_t kernel_cache_hits = 0;  ///< kernels found compiled (in process or on disk)
  uint64_t kernel_disk_hits = 0;   ///< ... of which loaded from the disk cache
  double compile_ms = 0;           ///< time spent compiling kernels (LLVM)
  double specialize_ms = 0;        ///< time spent building plans (includes compile_ms)
  uint64_t hot_promotions = 0;     ///< hot shapes recompiled with constant dims (kAuto)
};

/// What one specialized plan does per run (Session::plan_info).
struct PlanInfo {
  /// Kernels run per run() (JIT, native and reference; for a CUDA session the CUDA kernels it
  /// launches, after the tiled GEMMs absorb the steps around them).
  int launches = 0;
  int jit_kernels = 0;             ///< of which compiled loop nests
  int native_kernels = 0;          ///< of which hand-written kernels (GEMM, convolution)
  int reference_kernels = 0;       ///< of which reference kernels (no lowering)
  int fused_nodes = 0;             ///< graph nodes computed inside another node's kernel
  int64_t arena_bytes = 0;         ///< one run's intermediate memory
  int64_t intermediate_bytes = 0;  ///< the sum of every intermediate's size (no sharing)
  bool interpreted = false;        ///< shapes depend on data: runs on the reference executor
};

/// Time spent in each step of one plan over its profiled runs (Session::profile_plan).
struct StepProfile {
  std::string step;     ///< the step's line of describe_plan
  double total_ms = 0;  ///< summed over `PlanProfile::runs`
};
struct PlanProfile {
  uint64_t runs = 0;  ///< profiled runs of the plan
  std::vector<StepProfile> steps;
};

/// Turns per-step timing of runs on or off for the process (default: env KILN_PROFILE=1).
/// Profiled runs read the clock around every step; unprofiled runs pay one branch.
KILN_API void set_profiling(bool on);

class KILN_API Session {
 public:
  /// Loads, validates and prepares the model at `path`. External data files are resolved inside
  /// the model's directory only.
  explicit Session(const std::string& path, const SessionOptions& options = {});
  /// Loads a model from serialized bytes. External data is resolved inside `base_dir`; with an
  /// empty base_dir a model that uses external data is rejected.
  static Session from_bytes(std::span<const uint8_t> bytes, const SessionOptions& options = {},
                            const std::string& base_dir = "");

  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  /// The model's inputs (initializer-backed ones have has_default set) and outputs.
  const std::vector<ValueInfo>& input_info() const;
  const std::vector<ValueInfo>& output_info() const;
  const std::vector<ValueInfo>& inputs() const { return input_info(); }
  const std::vector<ValueInfo>& outputs() const { return output_info(); }

  /// Runs the model; returns every model output as an owning tensor (on the host, or on the GPU
  /// for a CUDA session with outputs_on_device). A CUDA session reads GPU-resident inputs
  /// (Tensor::device() kCuda) in place and copies host inputs in; a CPU session rejects GPU
  /// tensors. GPU inputs must be complete when run() is called: work that writes them on
  /// another stream must have been synchronized, or that stream given as
  /// RunOptions::cuda_stream. Outputs are complete when run() returns.
  TensorMap run(const TensorMap& inputs) const;
  TensorMap run(const TensorMap& inputs, const RunOptions& options) const;
  /// Runs the model writing into caller-provided tensors (views or owning, on the host or, for a
  /// CUDA session, on the GPU: ONNX Runtime's I/O binding); each named output must already have
  /// the right dtype and dims, and must not overlap an input's memory. Outputs not named are
  /// computed and dropped.
  void run(const TensorMap& inputs, const TensorMap& outputs) const;
  void run(const TensorMap& inputs, const TensorMap& outputs, const RunOptions& options) const;

  SessionStats stats() const;
  /// Builds the plan for these input shapes now (as a run would on its first call with them).
  void specialize_for(const std::map<std::string, Dims>& shapes) const;
  /// The plan for these input shapes, one line per step: which nodes run as JIT kernels (with
  /// their kernel parameters), which on reference kernels, which are views, how many folded.
  std::vector<std::string> describe_plan(const std::map<std::string, Dims>& shapes) const;
  /// Launch and memory figures of the plan for these input shapes (specialized if needed).
  PlanInfo plan_info(const std::map<std::string, Dims>& shapes) const;
  /// Per-step times of the plan for these input shapes, summed over its profiled runs
  /// (set_profiling / KILN_PROFILE=1), in step order.
  PlanProfile profile_plan(const std::map<std::string, Dims>& shapes) const;
  const SessionOptions& options() const;
  /// ONNX opset imports, domain ("" = ai.onnx) to version.
  std::map<std::string, int64_t> opsets() const;
  /// Op histogram: "domain::op" (or "op" for ai.onnx) to node count.
  std::map<std::string, int64_t> op_histogram() const;
  /// Rewrites made by each graph pass at load (pass name to count; empty at level 0).
  std::map<std::string, int64_t> pass_stats() const;
  /// One line per value in graph order: "name: f32[batch,seq,256]  (producer op)".
  std::vector<std::string> describe_values() const;
  /// The CUDA C of every kernel of the plan for these input shapes, in launch order, and its PTX
  /// for `arch` (sm_NN) when `with_ptx`. Needs no GPU; PTX needs NVRTC (kiln::Error otherwise).
  std::vector<CudaKernelCode> generate_cuda(const std::map<std::string, Dims>& shapes,
                                            const std::string& arch = "sm_90",
                                            bool with_ptx = true) const;
  /// The device this session runs on (kCpu or kCuda; kAuto resolved at creation).
  Device device() const;

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  void run(const TensorMap& inputs, const TensorMap& outputs, TensorMap* result,
           const RunOptions& options) const;
  std::unique_ptr<Impl> impl_;
};

/// Every operator Kiln runs, one entry per registration: "Conv (ai.onnx, opset 1+)".
KILN_API std::vector<std::string> supported_operators();

/// "0.1.0"
KILN_API const char* version();
/// Versions of Kiln, its LLVM and the host CPU with the features the JIT will target.
KILN_API std::string build_info();

}  // namespace kiln
