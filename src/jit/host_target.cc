// Host CPU queries through LLVM's TargetParser.
#include "jit/host_target.h"

#include <algorithm>

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/TargetParser/Host.h"

namespace kiln::jit {

std::string host_cpu_name() { return llvm::sys::getHostCPUName().str(); }

std::vector<std::string> host_cpu_features() {
  std::vector<std::string> out;
  for (const auto& f : llvm::sys::getHostCPUFeatures())
    if (f.second) out.push_back(f.first().str());
  std::sort(out.begin(), out.end());
  return out;
}

int host_vector_lanes_f32() {
  auto f = llvm::sys::getHostCPUFeatures();
  auto has = [&](const char* name) { return f.count(name) && f.lookup(name); };
  if (has("avx512f")) return 16;
  if (has("avx2") || has("avx")) return 8;
  return 4;
}

std::string llvm_version() { return LLVM_VERSION_STRING; }

}  // namespace kiln::jit
