// Host CPU queries through LLVM's TargetParser, computed once per process (cpuid does not change
// while we run, and lowerings ask for the vector width of every kernel).
#include "jit/host_target.h"

#include <algorithm>

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/TargetParser/Host.h"

namespace kiln::jit {

namespace {

const llvm::StringMap<bool>& features() {
  static const llvm::StringMap<bool> f = llvm::sys::getHostCPUFeatures();
  return f;
}

}  // namespace

std::string host_cpu_name() {
  static const std::string name = llvm::sys::getHostCPUName().str();
  return name;
}

std::vector<std::string> host_cpu_features() {
  std::vector<std::string> out;
  for (const auto& f : features())
    if (f.second) out.push_back(f.first().str());
  std::sort(out.begin(), out.end());
  return out;
}

std::string host_feature_string() {
  std::vector<std::string> names;
  for (const auto& f : features()) names.push_back(f.first().str());
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ",";
    out += (features().lookup(n) ? "+" : "-") + n;
  }
  return out;
}

int host_vector_lanes_f32() {
  auto has = [&](const char* name) { return features().lookup(name); };
  if (has("avx512f")) return 16;
  if (has("avx2") || has("avx")) return 8;
  return 4;
}

std::string llvm_version() { return LLVM_VERSION_STRING; }

}  // namespace kiln::jit
