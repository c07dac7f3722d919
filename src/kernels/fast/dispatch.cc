// Runtime ISA dispatch of the fast kernels: detects AVX-512F/VL/DQ+FMA or AVX2+FMA once with
// __builtin_cpu_supports and hands out the matching kernel table (isa.h). Tests can force a
// lower level so every path runs on an AVX-512 machine.
#include <atomic>

#include "kernels/fast/gemm.h"
#include "kernels/fast/isa.h"

namespace kiln::kernels::fast {
namespace {

int detect_level() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma")) {
    return 3;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
#endif
  return 0;
}

int detected_level() {
  static const int level = detect_level();
  return level;
}

std::atomic<int> g_forced_level{-1};

}  // namespace

bool available() { return detected_level() >= 2; }

int simd_level() {
  const int forced = g_forced_level.load(std::memory_order_relaxed);
  return forced >= 0 ? forced : detected_level();
}

void set_simd_level_for_testing(int level) {
  const int cpu = detected_level();
  int chosen = -1;
  if (level >= 3 && cpu >= 3) {
    chosen = 3;
  } else if (level >= 2 && cpu >= 2) {
    chosen = 2;
  } else if (level >= 0) {
    chosen = 0;
  }
  g_forced_level.store(chosen, std::memory_order_relaxed);
}

const IsaKernels& isa_for_level(int level) {
#if defined(__x86_64__)
  if (level >= 3 && detected_level() >= 3) return kAvx512Kernels;
  if (level >= 2 && detected_level() >= 2) return kAvx2Kernels;
#endif
  return kGenericKernels;
}

const IsaKernels& isa() { return isa_for_level(simd_level()); }

}  // namespace kiln::kernels::fast
