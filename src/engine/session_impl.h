// Session internals shared by session.cc and its helpers: the imported graph, its public
// descriptions, the reference executor, the plan cache and the CPU device.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <tbb/task_group.h>

#include "devices/cpu.h"
#include "engine/executor.h"
#include "engine/plan_cache.h"
#include "ir/graph.h"
#include "kiln/session.h"

namespace kiln {

namespace engine {
class CudaExecutor;  // engine/cuda_executor.h, only in builds with the CUDA backend
}

struct Session::Impl {
  SessionOptions options;
  std::string cache_dir;  // resolved disk kernel cache ("" = none)
  std::unique_ptr<ir::Graph> graph;
  std::unique_ptr<engine::Executor> executor;
  std::unique_ptr<engine::PlanCache> plans;
  std::unique_ptr<devices::Cpu> cpu;
  Device device = Device::kCpu;                // options.device resolved (never kAuto)
  std::shared_ptr<engine::CudaExecutor> cuda;  // set when device is kCuda
  /// CPU plans lowered as CUDA plans are (level <= 2, engine::cuda_schedule()) and compiled by
  /// LLVM: runs the GPU's kernel IR on a machine without a GPU (env KILN_GPU_LOWERING_ON_CPU=1
  /// at session creation; tests and `kiln check` use it).
  bool gpu_lowering_on_cpu = false;
  std::vector<ValueInfo> inputs, outputs;
  std::set<const void*> constant_data;  // data of weights and constants, to spot aliasing outputs
  std::map<std::string, int64_t> pass_stats;      // graph pass -> rewrites at load
  std::unique_ptr<kernels::WeightCache> weights;  // packed weights shared by the plans

  std::atomic<uint64_t> runs{0}, failed_runs{0};
  mutable std::mutex shapes_mu;
  std::set<std::string> shape_keys;

  // Specialization policy state and kernel counters (under policy_mu).
  mutable std::mutex policy_mu;
  std::map<std::string, std::set<int64_t>> symbol_values;  // input dim symbol -> values seen
  uint64_t kernels_compiled = 0, kernel_cache_hits = 0, kernel_disk_hits = 0;
  double compile_ms = 0, specialize_ms = 0;
  std::atomic<uint64_t> hot_promotions{0};

  // Background work (hot-shape recompiles); waited for before the session goes away.
  tbb::task_group background;
  ~Impl() { background.wait(); }
};

}  // namespace kiln
