// kiln::Device — where a session runs and where a tensor's elements live.
#pragma once

namespace kiln {

/// kCpu: host memory and the CPU backend; kCuda: the first CUDA GPU; kAuto (sessions only):
/// CUDA when cuda_available(), else the CPU.
enum class Device { kCpu, kCuda, kAuto };

/// "cpu", "cuda", "auto"
inline const char* device_name(Device d) {
  return d == Device::kCpu ? "cpu" : d == Device::kCuda ? "cuda" : "auto";
}

}  // namespace kiln
