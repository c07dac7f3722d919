// The CUDA driver API and NVRTC, opened with dlopen at run time.
//
// Kiln has no link-time dependency on CUDA: one binary runs on machines with and without GPUs.
// driver() opens libcuda.so.1, resolves every entry point Kiln uses with dlsym (the versioned
// `_v2` names the CUDA headers map the API to) and calls cuInit once; nvrtc() opens NVRTC
// (libnvrtc.so.13, .12, libnvrtc.so, then the same names under /usr/local/cuda/lib64 and the
// toolkit found at configure time). Both are loaded once per process and never unloaded; a
// failure is remembered and reported the same way each time.
//
// check() converts a CUresult into kiln::Error carrying the CUDA error name (cuGetErrorName) and
// what Kiln was doing; check_nvrtc() does the same for nvrtcResult. This file is only compiled
// when the CUDA headers were found at configure time (KILN_WITH_CUDA).
#pragma once

#include <cuda.h>
#include <nvrtc.h>

#include <string>

namespace kiln::devices::cuda {

// The members are named like the API functions; cuda.h's macros rename both the declaration and
// every call to the versioned entry point (cuMemAlloc -> cuMemAlloc_v2), so the pointer types
// always match the symbols loaded.
#define KILN_CUDA_DRIVER_FUNCTIONS(X) \
  X(cuGetErrorName)                   \
  X(cuGetErrorString)                 \
  X(cuInit)                           \
  X(cuDriverGetVersion)               \
  X(cuDeviceGetCount)                 \
  X(cuDeviceGet)                      \
  X(cuDeviceGetName)                  \
  X(cuDeviceTotalMem)                 \
  X(cuDeviceGetAttribute)             \
  X(cuDevicePrimaryCtxRetain)         \
  X(cuDevicePrimaryCtxRelease)        \
  X(cuCtxSetCurrent)                  \
  X(cuCtxGetCurrent)                  \
  X(cuMemAlloc)                       \
  X(cuMemFree)                        \
  X(cuMemcpyHtoDAsync)                \
  X(cuMemcpyDtoHAsync)                \
  X(cuMemcpyDtoDAsync)                \
  X(cuStreamCreate)                   \
  X(cuStreamDestroy)                  \
  X(cuStreamSynchronize)              \
  X(cuStreamWaitEvent)                \
  X(cuLaunchHostFunc)                 \
  X(cuMemAllocHost)                   \
  X(cuMemFreeHost)                    \
  X(cuModuleLoadDataEx)               \
  X(cuModuleGetFunction)              \
  X(cuModuleUnload)                   \
  X(cuLaunchKernel)                   \
  X(cuEventCreate)                    \
  X(cuEventRecord)                    \
  X(cuEventSynchronize)               \
  X(cuEventElapsedTime)               \
  X(cuEventDestroy)                   \
  X(cuStreamBeginCapture)             \
  X(cuStreamEndCapture)               \
  X(cuGraphInstantiate)               \
  X(cuGraphLaunch)                    \
  X(cuGraphExecDestroy)               \
  X(cuGraphDestroy)

struct Driver {
#define KILN_CUDA_MEMBER(fn) decltype(&::fn) fn = nullptr;
  KILN_CUDA_DRIVER_FUNCTIONS(KILN_CUDA_MEMBER)
#undef KILN_CUDA_MEMBER
  int version = 0;  // cuDriverGetVersion: 1000 * major + 10 * minor
  int device_count = 0;
};

struct Nvrtc {
  decltype(&::nvrtcVersion) nvrtcVersion = nullptr;
  decltype(&::nvrtcGetErrorString) nvrtcGetErrorString = nullptr;
  decltype(&::nvrtcCreateProgram) nvrtcCreateProgram = nullptr;
  decltype(&::nvrtcDestroyProgram) nvrtcDestroyProgram = nullptr;
  decltype(&::nvrtcCompileProgram) nvrtcCompileProgram = nullptr;
  decltype(&::nvrtcGetPTXSize) nvrtcGetPTXSize = nullptr;
  decltype(&::nvrtcGetPTX) nvrtcGetPTX = nullptr;
  decltype(&::nvrtcGetProgramLogSize) nvrtcGetProgramLogSize = nullptr;
  decltype(&::nvrtcGetProgramLog) nvrtcGetProgramLog = nullptr;
  int major = 0, minor = 0;
  std::string library;  // the file that was opened
  std::string version_string() const { return std::to_string(major) + "." + std::to_string(minor); }
};

/// The driver, or null with `why` set ("libcuda.so.1 not found: ...", "cuInit: ...").
const Driver* try_driver(std::string* why);
/// The driver; kiln::Error(kUnsupported) naming the reason when there is none or no GPU.
const Driver& driver();
/// NVRTC, or null with `why` set.
const Nvrtc* try_nvrtc(std::string* why);
/// NVRTC; kiln::Error(kUnsupported) when it cannot be loaded.
const Nvrtc& nvrtc();

/// Throws kiln::Error(kInternal, or kInvalidArgument for out-of-memory) "CUDA error NAME
/// (description) while `what`" unless r is CUDA_SUCCESS.
void check(CUresult r, const std::string& what);
/// The same for NVRTC results.
void check_nvrtc(nvrtcResult r, const std::string& what);

}  // namespace kiln::devices::cuda
