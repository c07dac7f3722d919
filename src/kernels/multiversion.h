// KILN_MULTIVERSION: compile a plain C++ function for AVX-512, AVX2 and baseline x86-64 (GCC
// function multi-versioning, resolved once at load), so loops written to vectorize get the
// widest vectors the machine has without -march flags. A no-op elsewhere and under sanitizers,
// whose instrumentation cannot run in the ifunc resolvers (they run before the sanitizer's runtime
// starts).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define KILN_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_MULTIVERSION
#endif
