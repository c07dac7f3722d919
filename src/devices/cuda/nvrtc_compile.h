// CUDA C -> PTX with NVRTC, and the PTX disk cache.
//
// compile_ptx() compiles one translation unit for a virtual architecture (sm_90 -> compute_90;
// PTX is JIT-compiled to the exact GPU by the driver at cuModuleLoadData), and reports NVRTC's
// log in the error when compilation fails. kernel_ptx() (and gemm_ptx() for tiled GEMMs) prints a
// jit::Kernel with the CUDA C printer and compiles it, through the disk cache: the file
// <dir>/<key>.ptx, where the key joins the kernel's structural hash, the architecture, the NVRTC
// version, the printer's version and Kiln's version, is written atomically (as CPU objects are)
// with a header holding the key, the size and a checksum; a file that does not check out is ignored
// and rewritten.
#pragma once

#include <string>

#include "jit/cuda_c.h"
#include "jit/cuda_gemm.h"
#include "jit/kir.h"

namespace kiln::devices::cuda {

/// "sm_90" or "compute_90" -> "compute_90"; kiln::Error(kInvalidArgument) for anything else.
std::string virtual_arch(const std::string& arch);

/// PTX of `source`; kiln::Error with NVRTC's log on a compile error, kUnsupported without NVRTC.
std::string compile_ptx(const std::string& source, const std::string& program_name,
                        const std::string& arch);

struct KernelPtx {
  std::string key;  // the cache key (also the file stem and the function name suffix)
  jit::CudaSource source;
  std::string ptx;
  bool from_disk = false;
  double compile_ms = 0;
};

/// The PTX of a printed kernel whose text is determined by `hash`, through the disk cache.
KernelPtx source_ptx(jit::CudaSource source, const std::string& hash, const std::string& arch,
                     const std::string& cache_dir);
/// The printed CUDA C and PTX of `k` for `arch`; `cache_dir` empty means no disk cache.
KernelPtx kernel_ptx(const jit::Kernel& k, const std::string& arch, const std::string& cache_dir);
/// The CUDA C and PTX of a tiled GEMM (jit/cuda_gemm.h) for `arch`.
KernelPtx gemm_ptx(const jit::CudaGemm& g, const std::string& arch, const std::string& cache_dir);

}  // namespace kiln::devices::cuda
