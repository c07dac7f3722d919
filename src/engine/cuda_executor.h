// Running plans on a CUDA GPU.
//
// A CudaExecutor belongs to one session. The first run of a plan prepares it: every kernel step's
// jit::Kernel is printed as CUDA C (MatMul, Gemm and Conv steps as tiled GEMMs instead, with the
// elementwise step after them in their epilogue: see cuda_gemm_select.h), compiled by NVRTC (PTX
// disk cache) and loaded, and the plan's
// constants are uploaded once (shared by all plans of the session). A run then uses its own
// stream and its own value table: host inputs are copied in on the stream, kernel steps launch
// their CUDA functions, steps without a lowering copy their inputs to the host, run the
// reference kernel and copy the outputs back (correct but slow; logged once per plan), views
// alias their input, values are released after their last use (their memory reused within the
// run), and the outputs are copied out (or stay on the GPU: see outputs_on_device). Inputs and
// caller outputs already in GPU memory are used there: no host copy. From a plan's second run on,
// when every step is a GPU kernel or a view, the run replays a CUDA graph instead: the plan's
// launches captured once over memory of their own (a graph slot: one arena in the plan's memory
// layout, one buffer per input and output), so a run is input copies, one graph launch and output
// copies. A slot serves one run at a time; concurrent runs get slots of their own (up to
// kMaxGraphSlots per plan, then they run step by step), and slots go with the plan. Interpreted
// plans and plans with string values run on the reference executor on the host, and a kernel that
// fails to compile or load runs its node on the host reference kernel (with a warning). run() may
// be called from many threads at once.
#pragma once

#include <cuda.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "devices/cuda/cuda_device.h"
#include "engine/executor.h"
#include "engine/memory_plan.h"
#include "engine/plan.h"

namespace kiln::engine {

class CudaExecutor {
 public:
  /// Opens GPU 0; kiln::Error when CUDA cannot run here. `outputs_on_device`: outputs that are
  /// not written into caller tensors stay on the GPU (SessionOptions::outputs_on_device);
  /// `allow_tf32`: GEMMs on TF32 tensor cores when the GPU has them (SessionOptions::allow_tf32).
  CudaExecutor(std::string cache_dir, LogLevel log_level, bool outputs_on_device = false,
               bool allow_tf32 = false);
  ~CudaExecutor();

  /// Runs `plan` (built with compile_kernels off) on the GPU; `preset` as run_plan's. Inputs and
  /// preset outputs may be host or GPU tensors: GPU ones are read and written in place. With
  /// `after` (a caller's stream), the run's work waits for the work queued there so far.
  std::vector<Tensor> run(const std::shared_ptr<const Plan>& plan, const Executor& reference,
                          const std::vector<Tensor>& inputs, const std::vector<Tensor>* preset,
                          CUstream after = nullptr);
  /// The CUDA kernels one run of `plan` launches (its prepared launches' functions; a step on
  /// the host counts as one), preparing it if needed.
  int kernel_launches(const std::shared_ptr<const Plan>& plan);

 private:
  struct GraphSlot;
  /// A constant's GPU copy, held by the prepared plans that use it and freed with the last one
  /// (weights shared by every plan stay; a plan's folded constants go with it).
  struct DeviceConstant {
    devices::cuda::CudaDevice* dev = nullptr;
    Tensor host;  // keeps the host data (and so the map key's address) alive
    CUdeviceptr ptr = 0;
    ~DeviceConstant();
  };
  /// One launch of a run: a plan step's kernel (a tiled GEMM may also compute the elementwise
  /// step after it, which then has no launch), a view, or a step on the host reference kernel.
  struct Launch {
    enum class Kind { kKernel, kView, kHost } kind = Kind::kHost;
    int step = -1;  // the plan step (its node, params, index checks)
    std::shared_ptr<const devices::cuda::LoadedKernel> kernel;
    std::vector<int> inputs, outputs;  // value ids of the kernel's buffers (-1: none)
    int in_place_input = -1;           // as PlanStep's (loop-nest kernels only)
    std::vector<int> release;          // values whose last reader this is, freed after it
    std::string label;                 // "Conv+Add+Relu" for a fused GEMM
  };
  struct Prepared {
    ~Prepared();
    std::weak_ptr<const Plan> plan;
    bool host_only = false;        // string values: the reference executor runs it
    std::vector<Launch> launches;  // in run order
    MemoryPlan memory;             // over the launches (graph slots' layout)
    // CUDA graphs: whether the plan can be captured, its runs so far, and its slots.
    bool graphable = false;
    mutable std::atomic<uint64_t> runs{0};
    mutable std::mutex slots_mu;
    mutable std::vector<std::unique_ptr<GraphSlot>> slots;
    mutable bool graph_failed = false;  // a capture failed: step by step from then on
    // The GPU copies of the plan's constants, by host data and size (filled by its runs).
    mutable std::mutex constants_mu;
    mutable std::map<std::pair<const void*, size_t>, std::shared_ptr<DeviceConstant>> constants;
  };
  static constexpr size_t kMaxGraphSlots = 4;
  std::shared_ptr<const Prepared> prepare(const std::shared_ptr<const Plan>& plan);
  /// Loads the plan's kernels (tiled GEMMs with their epilogues first) and lists its launches.
  void build_launches(const Plan& plan, Prepared& p);
  /// Interpreted and host-only plans: the reference executor on host copies of GPU inputs, with
  /// the outputs delivered where the caller wants them.
  std::vector<Tensor> run_on_host(const Executor& reference, const std::vector<Tensor>& inputs,
                                  const std::vector<Tensor>* preset) const;
  /// The device copy of a constant tensor (uploaded on first use), held by `prep`.
  CUdeviceptr constant(const Prepared& prep, const Tensor& t, CUstream stream);
  /// The run as a CUDA graph replay (capturing it into a free slot first when needed); nullopt
  /// when no slot is free or capture failed (the caller runs step by step).
  std::optional<std::vector<Tensor>> run_graph(const Plan& plan, const Prepared& prep,
                                               const std::vector<Tensor>& inputs,
                                               const std::vector<Tensor>* preset, CUstream stream);
  /// Allocates the slot's memory and captures the plan's launches over it.
  void capture(const Plan& plan, const Prepared& prep, GraphSlot& slot, CUstream stream);

  devices::cuda::CudaDevice& dev_;
  std::string cache_dir_;
  LogLevel log_level_;
  bool tiled_gemms_;     // MatMul/Gemm/Conv steps as tiled GEMMs (env KILN_CUDA_GEMM=0: loop nests)
  bool fuse_epilogues_;  // GEMMs absorb epilogues, Transposes, Concats (KILN_CUDA_EPILOGUES)
  bool graphs_;          // replay CUDA graphs (env KILN_CUDA_GRAPHS=0: launch step by step)
  bool outputs_on_device_;
  bool tf32_;  // allow_tf32 and a GPU with TF32 tensor cores (sm_80 and newer)

  std::mutex mu_;
  std::map<const Plan*, std::shared_ptr<const Prepared>> prepared_;
  // By host data and size: the live GPU copies of constants, shared by the plans using them.
  std::map<std::pair<const void*, size_t>, std::weak_ptr<DeviceConstant>> constants_;
};

}  // namespace kiln::engine
