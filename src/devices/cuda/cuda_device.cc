// The CUDA device: context, memory and stream pools, kernel loading and launching.
#include "devices/cuda/cuda_device.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "devices/cuda/cuda_api.h"
#include "devices/cuda/nvrtc_compile.h"
#include "jit/kir_interp.h"
#include "kiln/error.h"

namespace kiln::devices::cuda {

namespace {

constexpr size_t kMaxLoadedKernels = 4096;
constexpr int64_t kMaxBlocks = int64_t(1) << 20;  // grid-stride loops cover larger extents

// The value of a grid extent (i64 over immediates and params); nullopt when it has other terms.
std::optional<int64_t> eval_extent(const jit::Expr& e, const std::vector<int64_t>& params) {
  switch (e->kind) {
    case jit::ExprKind::kIntImm:
      return e->ival;
    case jit::ExprKind::kParam:
      if (e->ival < 0 || size_t(e->ival) >= params.size()) return std::nullopt;
      return params[size_t(e->ival)];
    case jit::ExprKind::kCast: {
      auto a = eval_extent(e->args[0], params);
      if (!a || !jit::is_int(e->args[0]->type) || !jit::is_int(e->type)) return std::nullopt;
      return jit::wrap_int(*a, e->type);
    }
    case jit::ExprKind::kBinary: {
      auto a = eval_extent(e->args[0], params), b = eval_extent(e->args[1], params);
      if (!a || !b || !jit::is_int(e->args[0]->type)) return std::nullopt;
      return jit::eval_int_binary(jit::BinaryOp(e->op), e->args[0]->type, *a, *b);
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

LoadedKernel::~LoadedKernel() {
  std::string why;
  const Driver* d = try_driver(&why);
  if (d && module && d->cuCtxSetCurrent(context) == CUDA_SUCCESS)
    d->cuModuleUnload(module);  // nothing to report from a destructor
}

CudaDevice& CudaDevice::get(int ordinal) {
  static std::mutex mu;
  static std::map<int, CudaDevice*> devices;  // never deleted: see the header
  std::lock_guard<std::mutex> lock(mu);
  auto it = devices.find(ordinal);
  if (it != devices.end()) return *it->second;
  auto* dev = new CudaDevice(ordinal);
  devices[ordinal] = dev;
  return *dev;
}

CudaDevice::CudaDevice(int ordinal) {
  const Driver& d = driver();
  if (ordinal < 0 || ordinal >= d.device_count)
    throw Error(ErrorCode::kInvalidArgument, "CUDA device " + std::to_string(ordinal) +
                                                 " does not exist (" +
                                                 std::to_string(d.device_count) + " found)");
  check(d.cuDeviceGet(&device_, ordinal), "getting CUDA device " + std::to_string(ordinal));
  int major = 0, minor = 0;
  check(d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device_),
        "reading the compute capability");
  check(d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device_),
        "reading the compute capability");
  check(
      d.cuDeviceGetAttribute(&multiprocessors_, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device_),
      "reading the multiprocessor count");
  arch_ = "sm_" + std::to_string(major) + std::to_string(minor);
  char name[256] = {0};
  check(d.cuDeviceGetName(name, int(sizeof(name)) - 1, device_), "reading the device name");
  name_ = name;
  check(d.cuDevicePrimaryCtxRetain(&context_, device_),
        "retaining the primary context of device " + std::to_string(ordinal));
}

void CudaDevice::make_current() const {
  check(driver().cuCtxSetCurrent(context_), "making the CUDA context current");
}

bool CudaDevice::try_make_current() const noexcept {
  std::string why;
  const Driver* d = try_driver(&why);
  return d && d->cuCtxSetCurrent(context_) == CUDA_SUCCESS;
}

size_t CudaDevice::round_size(size_t bytes) {
  constexpr size_t kMiB = size_t(1) << 20;
  if (bytes >= kMiB) return (bytes + kMiB - 1) / kMiB * kMiB;
  size_t s = 256;
  while (s < bytes) s <<= 1;
  return s;
}

CUdeviceptr CudaDevice::alloc(size_t bytes) {
  if (bytes == 0) return 0;
  const size_t size = round_size(bytes);
  {
    std::lock_guard<std::mutex> lock(mem_mu_);
    auto it = free_blocks_.find(size);
    if (it != free_blocks_.end()) {
      CUdeviceptr p = it->second;
      free_blocks_.erase(it);
      return p;
    }
  }
  const Driver& d = driver();
  make_current();
  CUdeviceptr p = 0;
  CUresult r = d.cuMemAlloc(&p, size);
  if (r == CUDA_ERROR_OUT_OF_MEMORY) {
    trim();
    r = d.cuMemAlloc(&p, size);
  }
  check(r, "allocating " + std::to_string(size) + " bytes of GPU memory");
  return p;
}

void CudaDevice::free(CUdeviceptr ptr, size_t bytes) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mem_mu_);
  free_blocks_.emplace(round_size(bytes), ptr);
}

void CudaDevice::trim() {
  std::multimap<size_t, CUdeviceptr> blocks;
  {
    std::lock_guard<std::mutex> lock(mem_mu_);
    blocks.swap(free_blocks_);
  }
  const Driver& d = driver();
  make_current();
  for (const auto& [size, p] : blocks) check(d.cuMemFree(p), "freeing GPU memory");
}

CUstream CudaDevice::acquire_stream() {
  {
    std::lock_guard<std::mutex> lock(stream_mu_);
    if (!free_streams_.empty()) {
      CUstream s = free_streams_.back();
      free_streams_.pop_back();
      return s;
    }
  }
  make_current();
  CUstream s = nullptr;
  check(driver().cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "creating a CUDA stream");
  return s;
}

void CudaDevice::release_stream(CUstream s) {
  std::lock_guard<std::mutex> lock(stream_mu_);
  free_streams_.push_back(s);
}

std::shared_ptr<const LoadedKernel> CudaDevice::kernel(const jit::Kernel& k,
                                                       const std::string& cache_dir) {
  return load(kernel_ptx(k, arch_, cache_dir), int(k.buffers.size()), k.num_params, k.label);
}

std::shared_ptr<const LoadedKernel> CudaDevice::gemm(const jit::CudaGemm& g,
                                                     const std::string& cache_dir) {
  return load(gemm_ptx(g, arch_, cache_dir), g.num_buffers, 0, "tiled GEMM");
}

std::shared_ptr<const LoadedKernel> CudaDevice::load(const KernelPtx& ptx, int num_buffers,
                                                     int num_params, const std::string& label) {
  {
    std::lock_guard<std::mutex> lock(kernel_mu_);
    auto it = kernels_.find(ptx.key);
    if (it != kernels_.end()) return it->second;
  }
  const Driver& d = driver();
  make_current();
  auto lk = std::make_shared<LoadedKernel>();
  lk->key = ptx.key;
  lk->context = context_;
  lk->compile_ms = ptx.compile_ms;
  lk->from_disk = ptx.from_disk;
  lk->num_buffers = num_buffers;
  lk->num_params = num_params;
  check(d.cuModuleLoadDataEx(&lk->module, ptx.ptx.c_str(), 0, nullptr, nullptr),
        "loading the PTX of kernel " + ptx.source.functions.at(0).name + " (" + label + ")");
  for (const jit::CudaFunction& f : ptx.source.functions) {
    CUfunction fn = nullptr;
    check(d.cuModuleGetFunction(&fn, lk->module, f.name.c_str()),
          "finding function " + f.name + " in its module");
    lk->functions.push_back(fn);
    lk->launches.push_back(f);
  }
  std::lock_guard<std::mutex> lock(kernel_mu_);
  auto [it, fresh] = kernels_.emplace(ptx.key, lk);
  if (fresh) {
    kernel_order_.push_back(ptx.key);
    while (kernels_.size() > kMaxLoadedKernels && !kernel_order_.empty()) {
      kernels_.erase(kernel_order_.front());
      kernel_order_.erase(kernel_order_.begin());
    }
  }
  return it->second;  // another thread's equal module wins; ours is unloaded
}

void CudaDevice::launch(const LoadedKernel& k, const std::vector<CUdeviceptr>& buffers,
                        const std::vector<int64_t>& params, CUstream stream) const {
  if (int(buffers.size()) != k.num_buffers || int(params.size()) < k.num_params)
    throw Error(ErrorCode::kInternal, "CUDA kernel " + k.key + " launched with " +
                                          std::to_string(buffers.size()) + " buffers and " +
                                          std::to_string(params.size()) + " params");
  std::vector<CUdeviceptr> bufs = buffers;
  std::vector<long long> ps(params.begin(), params.begin() + k.num_params);
  std::vector<void*> args;
  for (auto& b : bufs) args.push_back(&b);
  for (auto& p : ps) args.push_back(&p);
  const Driver& d = driver();
  for (size_t f = 0; f < k.functions.size(); ++f) {
    const jit::CudaFunction& l = k.launches[f];
    unsigned grid[3] = {1, 1, 1}, block = 1;
    if (l.block > 0) {  // a tiled kernel's fixed launch
      block = unsigned(l.block);
      std::copy(l.grid, l.grid + 3, grid);
    } else if (l.grid_extent) {
      block = unsigned(jit::kCudaBlockSize);
      std::optional<int64_t> n = eval_extent(l.grid_extent, params);
      int64_t blocks =
          n ? (std::max<int64_t>(*n, 1) + block - 1) / block : int64_t(multiprocessors_) * 8;
      grid[0] = unsigned(std::clamp<int64_t>(blocks, 1, kMaxBlocks));
    }
    check(d.cuLaunchKernel(k.functions[f], grid[0], grid[1], grid[2], block, 1, 1, 0, stream,
                           args.data(), nullptr),
          "launching CUDA kernel " + k.key);
  }
}

std::shared_ptr<void> allocate_tensor_memory(size_t bytes) {
  CudaDevice& dev = CudaDevice::get(0);
  CUdeviceptr p = dev.alloc(bytes);
  CudaDevice* d = &dev;
  return std::shared_ptr<void>(reinterpret_cast<void*>(p), [d, bytes](void* q) {
    d->free(reinterpret_cast<CUdeviceptr>(q), bytes);
  });
}

void copy_async(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes,
                CUstream stream) {
  if (bytes == 0 || dst == src) return;
  const Driver& d = driver();
  const CUdeviceptr ddst = reinterpret_cast<CUdeviceptr>(dst),
                    dsrc = reinterpret_cast<CUdeviceptr>(src);
  const std::string what = "copying " + std::to_string(bytes) + " bytes " +
                           (src_on_device ? "from the GPU" : "from the host") +
                           (dst_on_device ? " to the GPU" : " to the host");
  if (dst_on_device && src_on_device)
    check(d.cuMemcpyDtoDAsync(ddst, dsrc, bytes, stream), what);
  else if (dst_on_device)
    check(d.cuMemcpyHtoDAsync(ddst, src, bytes, stream), what);
  else if (src_on_device)
    check(d.cuMemcpyDtoHAsync(dst, dsrc, bytes, stream), what);
  else
    std::memcpy(dst, src, bytes);
}

void copy_memory(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  CudaDevice& dev = CudaDevice::get(0);
  dev.make_current();
  StreamLease lease(dev);
  copy_async(dst, dst_on_device, src, src_on_device, bytes, lease.get());
  check(driver().cuStreamSynchronize(lease.get()), "waiting for a copy");
}

RunMemory::~RunMemory() {
  // The stream may still use these blocks (an error unwound the run): wait before reuse.
  std::string why;
  if (const Driver* d = try_driver(&why)) d->cuStreamSynchronize(stream_);
  for (const auto& [p, bytes] : all_) dev_.free(p, bytes);
}

CUdeviceptr RunMemory::alloc(size_t bytes) {
  if (bytes == 0) return 0;
  auto it = free_.lower_bound(bytes);
  if (it != free_.end() && it->first <= bytes * 2) {
    CUdeviceptr p = it->second;
    free_.erase(it);
    return p;
  }
  CUdeviceptr p = dev_.alloc(bytes);
  all_.emplace_back(p, bytes);
  return p;
}

void RunMemory::release(CUdeviceptr ptr, size_t bytes) {
  if (!ptr) return;
  for (const auto& [p, size] : all_)
    if (p == ptr) {
      free_.emplace(size, p);
      return;
    }
}

}  // namespace kiln::devices::cuda
