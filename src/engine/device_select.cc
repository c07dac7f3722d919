// list_devices(), cuda_available(), device selection and CUDA code generation entry points.
#include "engine/device_select.h"

#include <limits>
#include <map>

#include "devices/cpu.h"
#include "engine/log.h"
#include "jit/cuda_c.h"
#include "jit/host_target.h"
#include "kiln/error.h"

#ifdef KILN_WITH_CUDA
#include "devices/cuda/cuda_api.h"
#include "devices/cuda/nvrtc_compile.h"
#endif

namespace kiln {

DeviceReport list_devices() {
  DeviceReport r;
  r.cpu.name = jit::host_cpu_name();
  for (const std::string& f : jit::host_cpu_features())
    r.cpu.features += (r.cpu.features.empty() ? "" : ",") + f;
  r.cpu.cores = devices::Cpu::hardware_threads();
  r.cpu.vector_lanes_f32 = jit::host_vector_lanes_f32();
  CudaDeviceInfo& c = r.cuda;
#ifdef KILN_WITH_CUDA
  c.compiled_in = true;
  std::string nvrtc_why, driver_why;
  if (const auto* n = devices::cuda::try_nvrtc(&nvrtc_why)) {
    c.nvrtc_version = n->version_string();
    c.nvrtc_library = n->library;
  }
  const auto* d = devices::cuda::try_driver(&driver_why);
  if (d) {
    c.driver_version = d->version;
    for (int i = 0; i < d->device_count; ++i) {
      GpuInfo g;
      g.index = i;
      CUdevice dev = 0;
      if (d->cuDeviceGet(&dev, i) != CUDA_SUCCESS) continue;
      char name[256] = {0};
      if (d->cuDeviceGetName(name, int(sizeof(name)) - 1, dev) == CUDA_SUCCESS) g.name = name;
      size_t bytes = 0;
      if (d->cuDeviceTotalMem(&bytes, dev) == CUDA_SUCCESS) g.memory_bytes = bytes;
      d->cuDeviceGetAttribute(&g.compute_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
      d->cuDeviceGetAttribute(&g.compute_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
      d->cuDeviceGetAttribute(&g.multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
      c.gpus.push_back(g);
    }
  }
  c.usable = d && !c.gpus.empty() && !c.nvrtc_version.empty();
  if (c.usable)
    c.status = "ok";
  else if (!d)
    c.status = driver_why;
  else
    c.status = nvrtc_why;
#else
  c.status = "not compiled in (the CUDA headers were not found when Kiln was built)";
#endif
  return r;
}

bool cuda_available() { return list_devices().cuda.usable; }

namespace engine {

kernels::Schedule cuda_schedule() {
  kernels::Schedule s = kernels::Schedule::for_host();
  s.parallel_grain = 1;
  s.min_parallel_iterations = std::numeric_limits<int64_t>::max();  // one thread per element
  s.vectorize = false;
  return s;
}

Device resolve_device(Device requested, LogLevel log_level) {
  if (requested == Device::kCpu) return Device::kCpu;
  CudaDeviceInfo c = list_devices().cuda;
  if (c.usable) return Device::kCuda;
  if (requested == Device::kCuda)
    throw Error(ErrorCode::kUnsupported, "device cuda requested but CUDA cannot run: " + c.status);
  log(log_level, LogLevel::kInfo, "device auto: using the CPU (CUDA: " + c.status + ")");
  return Device::kCpu;
}

std::vector<CudaKernelCode> cuda_kernel_code(const std::vector<LoweredKernel>& kernels,
                                             const std::string& arch, bool with_ptx,
                                             const std::string& cache_dir) {
  std::vector<CudaKernelCode> out;
  std::map<std::string, size_t> seen;  // kernel hash -> first entry with that kernel
  for (const LoweredKernel& lk : kernels) {
    const std::string label = lk.gemm ? lk.label + " (tiled GEMM)" : lk.kernel->label;
    std::string hash = lk.gemm ? jit::cuda_gemm_hash(*lk.gemm) : jit::structural_hash(*lk.kernel);
    if (auto it = seen.find(hash); it != seen.end()) {  // the same kernel: compile it once
      CudaKernelCode code = out[it->second];
      code.node = lk.node;
      code.label = label;
      out.push_back(std::move(code));
      continue;
    }
    seen[hash] = out.size();
    CudaKernelCode code;
    code.node = lk.node;
    code.label = label;
    // Named as the device path names them (kernel_ptx, gemm_ptx): the same text, the same PTX.
    jit::CudaSource src = lk.gemm ? jit::print_cuda_gemm(*lk.gemm, "kiln_" + hash)
                                  : jit::print_cuda(*lk.kernel, "kiln_" + hash.substr(0, 16));
    code.name = (lk.gemm ? src.functions.back() : src.functions.front()).name;  // the main one
#ifdef KILN_WITH_CUDA
    if (with_ptx) code.ptx = devices::cuda::source_ptx(src, hash, arch, cache_dir).ptx;
#else
    if (with_ptx)
      throw Error(ErrorCode::kUnsupported,
                  "PTX needs the CUDA backend, which is not compiled into this build");
#endif
    code.cuda_c = std::move(src.code);
    out.push_back(std::move(code));
  }
  return out;
}

}  // namespace engine
}  // namespace kiln
