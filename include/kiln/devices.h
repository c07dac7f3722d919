// The backends Kiln was built with and what each finds on this machine; CUDA code generation.
//
// list_devices() never throws for a missing GPU, driver or compiler: it says why in the report
// (`kiln devices` prints it). The CUDA backend opens libcuda and NVRTC at run time, so the same
// binary runs on machines with and without GPUs; cuda_available() tells whether sessions with
// Device::kCuda can run here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/export.h"

namespace kiln {

/// The host CPU as the JIT targets it.
struct CpuDeviceInfo {
  std::string name;      ///< LLVM's CPU name ("znver4", "neoverse-v2")
  std::string features;  ///< the ISA extensions the JIT uses ("+avx2,+fma,...")
  int cores = 0;         ///< hardware threads
  int vector_lanes_f32 = 0;
};

/// One GPU the CUDA driver reports.
struct GpuInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  uint64_t memory_bytes = 0;
  int multiprocessors = 0;
};

struct CudaDeviceInfo {
  bool compiled_in = false;   ///< built with the CUDA backend (headers found at configure time)
  bool usable = false;        ///< a driver, at least one GPU and NVRTC: Device::kCuda runs
  std::string status;         ///< one line: why CUDA cannot run here, or "ok"
  int driver_version = 0;     ///< 1000 * major + 10 * minor; 0 without a driver
  std::string nvrtc_version;  ///< "13.0"; empty when NVRTC was not found
  std::string nvrtc_library;  ///< the NVRTC library file that was opened
  std::vector<GpuInfo> gpus;
};

struct DeviceReport {
  CpuDeviceInfo cpu;
  CudaDeviceInfo cuda;
};

/// What every backend finds on this machine.
KILN_API DeviceReport list_devices();
/// Whether Device::kCuda sessions can run here (driver, GPU and NVRTC present).
KILN_API bool cuda_available();

/// One generated CUDA kernel (see Session::generate_cuda).
struct CudaKernelCode {
  std::string name;   ///< the first __global__ function ("kiln_<hash>")
  std::string label;  ///< what it computes ("Conv+Relu")
  std::string node;   ///< the graph node it runs
  std::string cuda_c;
  std::string ptx;  ///< empty when PTX was not requested
};

}  // namespace kiln
