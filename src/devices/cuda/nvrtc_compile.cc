// NVRTC compilation of printed kernels and the PTX files of the disk cache.
#include "devices/cuda/nvrtc_compile.h"

#include <chrono>
#include <cstdio>
#include <regex>

#include "devices/cuda/cuda_api.h"
#include "jit/kernel_cache.h"
#include "kiln/error.h"
#include "kiln/session.h"

namespace kiln::devices::cuda {

namespace {

// Bump when the printer's output changes, so cached PTX of the old text is not reused.
constexpr int kPrinterVersion = 2;
constexpr char kPtxMagic[] = "KILNPTX1";

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string encode_ptx_file(const std::string& key, const std::string& ptx) {
  return std::string(kPtxMagic) + "\n" + key + "\n" + std::to_string(ptx.size()) + "\n" +
         hex64(jit::fnv1a64(ptx)) + "\n" + ptx;
}

// The PTX of a cache file when it is exactly what this build writes for `key`.
bool decode_ptx_file(const std::string& file, const std::string& key, std::string* ptx) {
  size_t pos = 0;
  auto next_line = [&](std::string* out) {
    size_t end = file.find('\n', pos);
    if (end == std::string::npos) return false;
    *out = file.substr(pos, end - pos);
    pos = end + 1;
    return true;
  };
  std::string magic, file_key, size, sum;
  if (!next_line(&magic) || magic != kPtxMagic || !next_line(&file_key) || file_key != key ||
      !next_line(&size) || !next_line(&sum))
    return false;
  if (size != std::to_string(file.size() - pos)) return false;
  *ptx = file.substr(pos);
  return hex64(jit::fnv1a64(*ptx)) == sum;
}

}  // namespace

std::string virtual_arch(const std::string& arch) {
  static const std::regex kArch(R"((sm|compute)_(\d{2,3}[a-z]?))");
  std::smatch m;
  if (!std::regex_match(arch, m, kArch))
    throw Error(ErrorCode::kInvalidArgument,
                "CUDA architecture '" + arch + "' is not of the form sm_90 or compute_90");
  return "compute_" + m[2].str();
}

std::string compile_ptx(const std::string& source, const std::string& program_name,
                        const std::string& arch) {
  const Nvrtc& n = nvrtc();
  const std::string arch_opt = "--gpu-architecture=" + virtual_arch(arch);
  nvrtcProgram prog = nullptr;
  check_nvrtc(
      n.nvrtcCreateProgram(&prog, source.c_str(), program_name.c_str(), 0, nullptr, nullptr),
      "creating the program " + program_name);
  struct Destroy {
    const Nvrtc& n;
    nvrtcProgram* p;
    ~Destroy() { n.nvrtcDestroyProgram(p); }
  } destroy{n, &prog};
  const char* opts[] = {arch_opt.c_str(), "--std=c++17", "-w"};
  nvrtcResult r = n.nvrtcCompileProgram(prog, 3, opts);
  if (r != NVRTC_SUCCESS) {
    size_t log_size = 0;
    std::string log;
    if (n.nvrtcGetProgramLogSize(prog, &log_size) == NVRTC_SUCCESS && log_size > 1) {
      log.resize(log_size);
      if (n.nvrtcGetProgramLog(prog, log.data()) != NVRTC_SUCCESS) log.clear();
      while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    }
    throw Error(ErrorCode::kInternal, std::string("NVRTC could not compile ") + program_name +
                                          " (" + n.nvrtcGetErrorString(r) + "):\n" + log);
  }
  size_t size = 0;
  check_nvrtc(n.nvrtcGetPTXSize(prog, &size), "getting the PTX size of " + program_name);
  std::string ptx(size, '\0');
  check_nvrtc(n.nvrtcGetPTX(prog, ptx.data()), "getting the PTX of " + program_name);
  while (!ptx.empty() && ptx.back() == '\0') ptx.pop_back();
  return ptx;
}

KernelPtx source_ptx(jit::CudaSource source, const std::string& hash, const std::string& arch,
                     const std::string& cache_dir) {
  const Nvrtc& n = nvrtc();
  KernelPtx out;
  const std::string varch = virtual_arch(arch);
  out.key = hash + "." + varch + ".nvrtc" + n.version_string() + ".p" +
            std::to_string(kPrinterVersion) + ".k" + kiln::version();
  out.source = std::move(source);
  if (out.source.functions.empty())
    throw Error(ErrorCode::kInternal, "a CUDA kernel without functions");
  const std::string& fn_name = out.source.functions[0].name;
  const std::string path = cache_dir.empty() ? "" : cache_dir + "/" + out.key + ".ptx";
  std::string file;
  if (!path.empty() && jit::read_cache_file(path, &file) &&
      decode_ptx_file(file, out.key, &out.ptx)) {
    out.from_disk = true;
    return out;
  }
  auto t0 = std::chrono::steady_clock::now();
  out.ptx = compile_ptx(out.source.code, fn_name + ".cu", varch);
  out.compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!cache_dir.empty())
    jit::write_cache_file_atomic(cache_dir, out.key, ".ptx", encode_ptx_file(out.key, out.ptx));
  return out;
}

KernelPtx kernel_ptx(const jit::Kernel& k, const std::string& arch, const std::string& cache_dir) {
  const std::string hash = jit::structural_hash(k);
  return source_ptx(jit::print_cuda(k, "kiln_" + hash.substr(0, 16)), hash, arch, cache_dir);
}

KernelPtx gemm_ptx(const jit::CudaGemm& g, const std::string& arch, const std::string& cache_dir) {
  const std::string hash = jit::cuda_gemm_hash(g);
  return source_ptx(jit::print_cuda_gemm(g, "kiln_" + hash), hash, arch, cache_dir);
}

}  // namespace kiln::devices::cuda
