// The CUDA device: primary context, caching memory pool, stream pool, loaded kernels, launches.
//
// One CudaDevice per GPU ordinal, created on first use and kept for the life of the process (the
// primary context is retained once and never released: releasing it from a static destructor
// races the driver's own teardown). Everything here is thread-safe.
// - Memory: alloc() hands out blocks from a caching pool (sizes rounded up to a power of two
//   from 256 B, or to 1 MiB multiples above 1 MiB); free() returns them to the pool. A block is
//   given back only when no stream can still use it: run-local reuse goes through RunMemory,
//   which returns its blocks after the run's stream has synchronized. On out-of-memory the pool
//   releases its cached blocks and retries once.
// - Streams: acquire_stream() gives each concurrent run its own non-blocking stream, returned to
//   the pool afterwards.
// - Kernels: kernel() prints, compiles (NVRTC, PTX disk cache) and loads a jit::Kernel once per
//   structural key and keeps the module in a bounded map (oldest dropped first; a module is
//   unloaded when no plan holds it any more).
#pragma once

#include <cuda.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devices/cuda/nvrtc_compile.h"
#include "jit/cuda_c.h"
#include "jit/cuda_gemm.h"
#include "jit/kir.h"

namespace kiln::devices::cuda {

/// A loaded kernel: its module and functions (launched in order).
struct LoadedKernel {
  CUmodule module = nullptr;
  CUcontext context = nullptr;  // made current to unload the module on any thread
  std::vector<CUfunction> functions;
  std::vector<jit::CudaFunction> launches;  // per function: its grid extent or fixed launch
  int num_buffers = 0;
  int num_params = 0;
  std::string key;
  double compile_ms = 0;
  bool from_disk = false;
  ~LoadedKernel();
};

class CudaDevice {
 public:
  /// The device for GPU `ordinal` (created on first use); kiln::Error when CUDA cannot run.
  static CudaDevice& get(int ordinal = 0);

  /// Makes the primary context current on the calling thread (cheap; call before any API use).
  void make_current() const;
  /// The same without throwing (for destructors); false when it failed.
  bool try_make_current() const noexcept;
  /// Streaming multiprocessors (tiled kernels size their grids by them).
  int multiprocessors() const { return multiprocessors_; }
  /// "sm_90" for compute capability 9.0.
  const std::string& arch() const { return arch_; }
  const std::string& name() const { return name_; }

  CUdeviceptr alloc(size_t bytes);
  void free(CUdeviceptr ptr, size_t bytes);
  /// Drops every cached free block (cuMemFree).
  void trim();

  CUstream acquire_stream();
  void release_stream(CUstream s);

  /// The loaded code of `k` (cache_dir: PTX disk cache, "" for none).
  std::shared_ptr<const LoadedKernel> kernel(const jit::Kernel& k, const std::string& cache_dir);
  /// The loaded code of a tiled GEMM (no params).
  std::shared_ptr<const LoadedKernel> gemm(const jit::CudaGemm& g, const std::string& cache_dir);
  /// Launches every function of `k` on `stream`: buffers[i] is the device address of buffer i,
  /// params the kernel's i64 parameters.
  void launch(const LoadedKernel& k, const std::vector<CUdeviceptr>& buffers,
              const std::vector<int64_t>& params, CUstream stream) const;

  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

 private:
  explicit CudaDevice(int ordinal);
  static size_t round_size(size_t bytes);
  std::shared_ptr<const LoadedKernel> load(const KernelPtx& ptx, int num_buffers, int num_params,
                                           const std::string& label);

  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  std::string arch_, name_;
  int multiprocessors_ = 1;

  std::mutex mem_mu_;
  std::multimap<size_t, CUdeviceptr> free_blocks_;

  std::mutex stream_mu_;
  std::vector<CUstream> free_streams_;

  std::mutex kernel_mu_;
  std::map<std::string, std::shared_ptr<const LoadedKernel>> kernels_;
  std::vector<std::string> kernel_order_;  // insertion order, for the bound
};

/// Device memory of one run: blocks freed during the run are reused by the same run only (the
/// stream orders those uses); everything goes back to the device pool after the stream is done.
class RunMemory {
 public:
  RunMemory(CudaDevice& dev, CUstream stream) : dev_(dev), stream_(stream) {}
  ~RunMemory();
  /// A block of at least `bytes` (0 gives address 0).
  CUdeviceptr alloc(size_t bytes);
  void release(CUdeviceptr ptr, size_t bytes);

 private:
  CudaDevice& dev_;
  CUstream stream_;
  std::multimap<size_t, CUdeviceptr> free_;
  std::vector<std::pair<CUdeviceptr, size_t>> all_;
};

/// A stream from the device's pool for the life of the object.
class StreamLease {
 public:
  explicit StreamLease(CudaDevice& dev) : dev_(dev), stream_(dev.acquire_stream()) {}
  ~StreamLease() { dev_.release_stream(stream_); }
  CUstream get() const { return stream_; }
  StreamLease(const StreamLease&) = delete;
  StreamLease& operator=(const StreamLease&) = delete;

 private:
  CudaDevice& dev_;
  CUstream stream_;
};

/// GPU memory (first GPU) for an owning kiln::Tensor: the device address, returned to the pool
/// when the last owner goes.
std::shared_ptr<void> allocate_tensor_memory(size_t bytes);
/// A copy of `bytes` between host and GPU memory (either side may be either) queued on `stream`
/// (host to host: done at once).
void copy_async(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes,
                CUstream stream);
/// A synchronous copy of `bytes` between host and GPU memory (either side may be either).
void copy_memory(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);

}  // namespace kiln::devices::cuda
