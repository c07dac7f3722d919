// Device selection and the backend-independent entry points of the CUDA backend.
//
// Always compiled: without the CUDA backend (KILN_WITH_CUDA off) these functions say so in
// their results and errors instead of failing to link, so the public API is the same in every
// build.
#pragma once

#include <string>
#include <vector>

#include "engine/plan.h"
#include "kiln/devices.h"
#include "kiln/session.h"

namespace kiln::engine {

/// The device a session asking for `requested` runs on: kCuda throws kiln::Error(kUnsupported)
/// saying why CUDA cannot run here; kAuto falls back to kCpu with an info log line.
Device resolve_device(Device requested, LogLevel log_level);

/// The lowering schedule of CUDA plans: a parallel grain of 1 so that every loop nest a lowering
/// may parallelize becomes a parallel loop, i.e. the GPU's grid; every dim of such a nest fused
/// into that loop (one thread per element) and no vector loops.
kernels::Schedule cuda_schedule();

/// CUDA C (and PTX for `arch` when with_ptx) of lowered kernels, in order.
std::vector<CudaKernelCode> cuda_kernel_code(const std::vector<LoweredKernel>& kernels,
                                             const std::string& arch, bool with_ptx,
                                             const std::string& cache_dir);

}  // namespace kiln::engine
