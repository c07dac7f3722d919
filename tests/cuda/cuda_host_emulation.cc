// HostCudaLibrary (see cuda_host_emulation.h).
#include "cuda/cuda_host_emulation.h"

#include <dlfcn.h>

#include <fstream>

#include "cuda/cuda_test_util.h"

namespace kiln::testing {

namespace {

// The host side of a threaded launch: one host thread per thread of a block, running the blocks
// one after another and meeting at a barrier after each (so a block's __shared__ arrays, which
// are function statics here, serve one block at a time).
constexpr const char* kHarness = R"(
thread_local kiln_dim3 blockIdx, threadIdx;
kiln_dim3 blockDim, gridDim;
static std::barrier<>* kiln_block_barrier;
void __syncthreads() { kiln_block_barrier->arrive_and_wait(); }
float atomicAdd(float* address, float value) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  float old = *address;
  *address = old + value;
  return old;
}
// A warp's lanes are the block's 32 host threads: a shuffle goes through an exchange array.
static unsigned long long kiln_exchange[1024];
template <class T>
T kiln_shfl_xor(T v, int o) {
  static_assert(sizeof(T) <= sizeof(unsigned long long));
  unsigned long long bits = 0;
  memcpy(&bits, &v, sizeof v);
  kiln_exchange[threadIdx.x] = bits;
  __syncthreads();
  unsigned long long got = kiln_exchange[threadIdx.x ^ unsigned(o)];
  __syncthreads();
  T r;
  memcpy(&r, &got, sizeof r);
  return r;
}
void kiln_syncwarp() { __syncthreads(); }
template <class F>
static void kiln_launch(unsigned gx, unsigned gy, unsigned gz, unsigned threads, F f) {
  gridDim = {gx, gy, gz};
  blockDim = {threads, 1, 1};
  std::barrier<> bar(threads);
  kiln_block_barrier = &bar;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      threadIdx = {t, 0, 0};
      for (unsigned z = 0; z < gz; ++z)
        for (unsigned y = 0; y < gy; ++y)
          for (unsigned x = 0; x < gx; ++x) {
            blockIdx = {x, y, z};
            f();
            bar.arrive_and_wait();
          }
    });
  for (auto& th : pool) th.join();
}
)";

}  // namespace

int HostCudaLibrary::add(const jit::CudaSource& src, const std::vector<std::string>& buffer_types,
                         int params) {
  std::string text = src.code;
  if (count_ > 0) {  // one prelude per translation unit
    size_t at = text.find(jit::cuda_prelude());
    if (at != std::string::npos) text.erase(at, jit::cuda_prelude().size());
  }
  code_ += text;
  std::string args;
  for (size_t b = 0; b < buffer_types.size(); ++b)
    args += std::string(b ? ", " : "") + "(" + buffer_types[b] + ")b[" + std::to_string(b) + "]";
  for (int p = 0; p < params; ++p)
    args += (args.empty() ? "" : ", ") + std::string("p[") + std::to_string(p) + "]";
  const int id = count_++;
  entries_ += "extern \"C\" void kiln_entry_" + std::to_string(id) +
              "(void** b, const long long* p) {\n  (void)b;\n  (void)p;\n";
  for (const jit::CudaFunction& f : src.functions) {
    if (f.block > 0)
      entries_ += "  kiln_launch(" + std::to_string(f.grid[0]) + ", " + std::to_string(f.grid[1]) +
                  ", " + std::to_string(f.grid[2]) + ", " + std::to_string(f.block) + ", [&] { " +
                  f.name + "(" + args + "); });\n";
    else  // a grid-stride loop (a warp's, for warp rows) or a single-thread function
      entries_ += "  kiln_launch(1, 1, 1, " + std::string(f.warp ? "32" : "1") + ", [&] { " +
                  f.name + "(" + args + "); });\n";
  }
  entries_ += "}\n";
  return id;
}

std::vector<HostCudaLibrary::Entry> HostCudaLibrary::build(const TempDir& dir, std::string* error) {
  std::string code =
      "#define KILN_HOST_THREADS 1\n#include <barrier>\n#include <mutex>\n#include <thread>\n"
      "#include <vector>\n" +
      code_ + kHarness + entries_;
  std::ofstream(dir.file("lib.cc")) << code;
  std::string cmd = host_compiler() + " -std=c++20 -O1 -pthread -shared -fPIC -o " +
                    dir.file("lib.so") + " " + dir.file("lib.cc") + " > " + dir.file("log.txt") +
                    " 2>&1";
  std::vector<Entry> out;
  if (host_compiler().empty() || std::system(cmd.c_str()) != 0) {
    std::ifstream log(dir.file("log.txt"));
    *error = "host build failed: " + std::string(std::istreambuf_iterator<char>(log), {});
    return out;
  }
  void* lib = dlopen(dir.file("lib.so").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    *error = dlerror();
    return out;
  }
  for (int i = 0; i < count_; ++i)
    out.push_back(reinterpret_cast<Entry>(dlsym(lib, ("kiln_entry_" + std::to_string(i)).c_str())));
  return out;
}

}  // namespace kiln::testing
