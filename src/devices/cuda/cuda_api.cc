// Loading libcuda and NVRTC with dlopen, and CUDA result -> kiln::Error conversion.
#include "devices/cuda/cuda_api.h"

#include <dlfcn.h>

#include <mutex>
#include <vector>

#include "kiln/error.h"

namespace kiln::devices::cuda {

namespace {

#define KILN_STR2(x) #x
#define KILN_STR(x) KILN_STR2(x)

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

template <typename F>
bool resolve(void* lib, F* fn, const char* name, const char* fallback, std::string* why) {
  void* p = dlsym(lib, name);
  if (!p && fallback) p = dlsym(lib, fallback);
  if (!p) {
    *why = std::string("symbol ") + name + " not found";
    return false;
  }
  *fn = reinterpret_cast<F>(p);
  return true;
}

struct DriverState {
  Driver d;
  std::string error;
  bool ok = false;
};

const DriverState& driver_state() {
  static const DriverState state = [] {
    DriverState s;
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      s.error = "libcuda.so.1 cannot be loaded (" + dl_error() + ")";
      return s;
    }
    std::string why;
    bool ok = true;
    // Entry points whose versioned name is newer than some drivers fall back to the base name
    // when the signature is the same (cuEventElapsedTime_v2 arrived in CUDA 12.8).
#define KILN_CUDA_LOAD(fn)                                                                       \
  ok = ok && resolve(lib, &s.d.fn, KILN_STR(fn),                                                 \
                     std::string(KILN_STR(fn)) == "cuEventElapsedTime_v2" ? "cuEventElapsedTime" \
                                                                          : nullptr,             \
                     &why);
    KILN_CUDA_DRIVER_FUNCTIONS(KILN_CUDA_LOAD)
#undef KILN_CUDA_LOAD
    if (!ok) {
      s.error = "the CUDA driver is too old or broken (" + why + ")";
      return s;
    }
    CUresult r = s.d.cuInit(0);
    if (r != CUDA_SUCCESS) {
      const char* name = nullptr;
      if (s.d.cuGetErrorName(r, &name) != CUDA_SUCCESS) name = nullptr;
      s.error = std::string("cuInit failed: ") +
                (name ? std::string(name) : "CUDA error " + std::to_string(int(r))) +
                (r == CUDA_ERROR_NO_DEVICE ? " (no GPU)" : "") +
                (r == CUDA_ERROR_STUB_LIBRARY ? " (the toolkit's stub libcuda, not a driver)" : "");
      return s;
    }
    s.d.cuDriverGetVersion(&s.d.version);
    r = s.d.cuDeviceGetCount(&s.d.device_count);
    if (r != CUDA_SUCCESS || s.d.device_count == 0) {
      s.error = "the CUDA driver found no GPU";
      return s;
    }
    s.ok = true;
    return s;
  }();
  return state;
}

struct NvrtcState {
  Nvrtc n;
  std::string error;
  bool ok = false;
};

const NvrtcState& nvrtc_state() {
  static const NvrtcState state = [] {
    NvrtcState s;
    std::vector<std::string> candidates = {"libnvrtc.so.13",
                                           "libnvrtc.so.12",
                                           "libnvrtc.so",
                                           "/usr/local/cuda/lib64/libnvrtc.so.13",
                                           "/usr/local/cuda/lib64/libnvrtc.so.12",
                                           "/usr/local/cuda/lib64/libnvrtc.so"};
#ifdef KILN_CUDA_TOOLKIT_LIB_DIR
    for (const char* n : {"/libnvrtc.so.13", "/libnvrtc.so.12", "/libnvrtc.so"})
      candidates.push_back(std::string(KILN_CUDA_TOOLKIT_LIB_DIR) + n);
#endif
    // The first NVRTC that loads and is not newer than the driver: a driver cannot load PTX
    // from a newer toolkit (CUDA_ERROR_UNSUPPORTED_PTX_VERSION). Without a driver (PTX for
    // inspection only) the first one that loads.
    std::string why_driver;
    const Driver* drv = try_driver(&why_driver);
    const int driver_major = drv ? drv->version / 1000 : 0;
    std::string tried, skipped;
    for (const auto& c : candidates) {
      void* lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!lib) {
        tried += (tried.empty() ? "" : ", ") + c;
        continue;
      }
      Nvrtc n;
      n.library = c;
      std::string why;
      bool ok = resolve(lib, &n.nvrtcVersion, "nvrtcVersion", nullptr, &why) &&
                resolve(lib, &n.nvrtcGetErrorString, "nvrtcGetErrorString", nullptr, &why) &&
                resolve(lib, &n.nvrtcCreateProgram, "nvrtcCreateProgram", nullptr, &why) &&
                resolve(lib, &n.nvrtcDestroyProgram, "nvrtcDestroyProgram", nullptr, &why) &&
                resolve(lib, &n.nvrtcCompileProgram, "nvrtcCompileProgram", nullptr, &why) &&
                resolve(lib, &n.nvrtcGetPTXSize, "nvrtcGetPTXSize", nullptr, &why) &&
                resolve(lib, &n.nvrtcGetPTX, "nvrtcGetPTX", nullptr, &why) &&
                resolve(lib, &n.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", nullptr, &why) &&
                resolve(lib, &n.nvrtcGetProgramLog, "nvrtcGetProgramLog", nullptr, &why);
      if (!ok) {
        skipped += (skipped.empty() ? "" : ", ") + c + " (" + why + ")";
        continue;
      }
      if (n.nvrtcVersion(&n.major, &n.minor) != NVRTC_SUCCESS) {
        skipped += (skipped.empty() ? "" : ", ") + c + " (nvrtcVersion failed)";
        continue;
      }
      if (driver_major > 0 && n.major > driver_major) {  // left loaded: harmless
        skipped += (skipped.empty() ? "" : ", ") + c + " (" + n.version_string() +
                   ", newer than the driver's CUDA " + std::to_string(driver_major) + ")";
        continue;
      }
      s.n = n;
      break;
    }
    if (s.n.library.empty()) {
      s.error = "NVRTC not found (tried " + tried + ")" +
                (skipped.empty() ? "" : "; unusable: " + skipped);
      return s;
    }
    s.ok = true;
    return s;
  }();
  return state;
}

}  // namespace

const Driver* try_driver(std::string* why) {
  const DriverState& s = driver_state();
  if (!s.ok && why) *why = s.error;
  return s.ok ? &s.d : nullptr;
}

const Driver& driver() {
  std::string why;
  const Driver* d = try_driver(&why);
  if (!d) throw Error(ErrorCode::kUnsupported, "CUDA is not available: " + why);
  return *d;
}

const Nvrtc* try_nvrtc(std::string* why) {
  const NvrtcState& s = nvrtc_state();
  if (!s.ok && why) *why = s.error;
  return s.ok ? &s.n : nullptr;
}

const Nvrtc& nvrtc() {
  std::string why;
  const Nvrtc* n = try_nvrtc(&why);
  if (!n) throw Error(ErrorCode::kUnsupported, "CUDA kernels cannot be compiled: " + why);
  return *n;
}

void check(CUresult r, const std::string& what) {
  if (r == CUDA_SUCCESS) return;
  const char* name = nullptr;
  const char* desc = nullptr;
  const DriverState& s = driver_state();
  if (s.d.cuGetErrorName && s.d.cuGetErrorName(r, &name) != CUDA_SUCCESS) name = nullptr;
  if (s.d.cuGetErrorString && s.d.cuGetErrorString(r, &desc) != CUDA_SUCCESS) desc = nullptr;
  std::string msg = std::string("CUDA error ") + (name ? name : std::to_string(int(r)).c_str());
  if (desc) msg += std::string(" (") + desc + ")";
  msg += " while " + what;
  throw Error(r == CUDA_ERROR_OUT_OF_MEMORY ? ErrorCode::kInvalidArgument : ErrorCode::kInternal,
              msg);
}

void check_nvrtc(nvrtcResult r, const std::string& what) {
  if (r == NVRTC_SUCCESS) return;
  const NvrtcState& s = nvrtc_state();
  const char* name = s.n.nvrtcGetErrorString ? s.n.nvrtcGetErrorString(r) : nullptr;
  throw Error(ErrorCode::kInternal, std::string("NVRTC error ") +
                                        (name ? name : std::to_string(int(r)).c_str()) + " while " +
                                        what);
}

}  // namespace kiln::devices::cuda
