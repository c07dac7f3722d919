// Running plans on a CUDA GPU.
//
// A CudaExecutor belongs to one session. The first run of a plan prepares it: every kernel step's
// jit::Kernel is printed as CUDA C (MatMul, Gemm and Conv steps as tiled GEMMs instead, see
// cuda_gemm_select.h), compiled by NVRTC (PTX disk cache) and loaded, and the plan's
// constants are uploaded once (shared by all plans of the session). A run then uses its own
// stream and its own value table: host inputs are copied in on the stream, kernel steps launch
// their CUDA functions, steps without a lowering copy their inputs to the host, run the
// reference kernel and copy the outputs back (correct but slow; logged once per plan), views
// alias their input, values are released after their last use (their memory reused within the
// run), and the outputs are copied out. Interpreted plans and plans with string values run on
// the reference executor on the host, and a kernel that fails to compile or load runs its node
// on the host reference kernel (with a warning). run() may be called from many threads at once.
#pragma once

#include <cuda.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devices/cuda/cuda_device.h"
#include "engine/executor.h"
#include "engine/plan.h"

namespace kiln::engine {

class CudaExecutor {
 public:
  /// Opens GPU 0; kiln::Error when CUDA cannot run here.
  CudaExecutor(std::string cache_dir, LogLevel log_level);
  ~CudaExecutor();

  /// Runs `plan` (built with compile_kernels off) on the GPU; `preset` as run_plan's.
  std::vector<Tensor> run(const std::shared_ptr<const Plan>& plan, const Executor& reference,
                          const std::vector<Tensor>& inputs, const std::vector<Tensor>* preset);

 private:
  struct Prepared {
    std::weak_ptr<const Plan> plan;
    bool host_only = false;  // string values: the reference executor runs it
    // Per step: the loaded kernel, or null for steps that run on the host reference kernel.
    std::vector<std::shared_ptr<const devices::cuda::LoadedKernel>> kernels;
    // Per step: the values whose last reader it is (graph outputs never), freed after it.
    std::vector<std::vector<int>> release;
  };
  std::shared_ptr<const Prepared> prepare(const std::shared_ptr<const Plan>& plan);
  /// The device copy of a constant tensor (uploaded on first use).
  CUdeviceptr constant(const Tensor& t, CUstream stream);

  devices::cuda::CudaDevice& dev_;
  std::string cache_dir_;
  LogLevel log_level_;
  bool tiled_gemms_;  // MatMul/Gemm/Conv steps as tiled GEMMs (env KILN_CUDA_GEMM=0: loop nests)

  std::mutex mu_;
  std::map<const Plan*, std::shared_ptr<const Prepared>> prepared_;
  struct Constant {
    Tensor host;  // keeps the host data (and so its address) alive
    CUdeviceptr ptr = 0;
  };
  std::map<std::pair<const void*, size_t>, Constant> constants_;  // by host data and size
};

}  // namespace kiln::engine
