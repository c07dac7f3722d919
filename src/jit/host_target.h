// The host CPU as LLVM sees it: name and enabled features. The JIT generates code for exactly these
// (AVX-512 where present, AVX2 otherwise); they are also part of every kernel cache key.
#pragma once

#include <string>
#include <vector>

namespace kiln::jit {

/// LLVM's name of the host CPU ("znver4", "sapphirerapids", ...).
std::string host_cpu_name();
/// Enabled host features, sorted ("avx2", "avx512f", "fma", ...).
std::vector<std::string> host_cpu_features();
/// LLVM's target-features string of the host: every feature LLVM knows, enabled ones with '+' and
/// disabled ones with '-', sorted ("+avx2,-avx512f,..."). The '-' entries matter: a CPU name alone
/// implies features the OS may have disabled (AVX-512 under some hypervisors).
std::string host_feature_string();
/// The widest float vector the host runs natively, in 32-bit lanes (16 AVX-512, 8 AVX2, 4 SSE).
int host_vector_lanes_f32();
/// "19.1.7"
std::string llvm_version();

}  // namespace kiln::jit
