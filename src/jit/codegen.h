// The LLVM code generator: jit::Kernel -> llvm::Module for the host CPU.
//
// The module holds the kernel's external entry `void <symbol>(void* const* buffers, const int64_t*
// params)`. The entry loads the buffer pointers and parameter values and calls an always-inline
// twin whose pointer arguments are noalias, nonnull and aligned as declared, so that the optimizer
// needs no alias checks. Parallel loops become separate internal functions `void body(buffers,
// params, begin, end)` handed to kiln_parallel_for (devices/cpu.h).
//
// Vectorized loops are widened by the generator itself (explicit vector IR: contiguous accesses
// become vector loads and stores, others gathers and scatters, the remainder one masked iteration),
// which also covers bodies with inner loops and reductions that LLVM's loop vectorizer leaves
// alone. A body that cannot be widened safely (a store whose index does not depend on the loop
// variable, a buffer read and written at different indices, an inner loop whose extent depends on
// the lane) is emitted as a scalar loop carrying llvm.loop.vectorize metadata instead, and LLVM
// decides. Every function carries the host's "target-cpu" and "target-features" so the vectors are
// AVX-512 where the host has it.
//
// Float arithmetic has the reassoc and contract flags (not nnan/ninf/nsz: NaN semantics are part of
// the IR); the math functions are inline polynomials (codegen_math.h).
#pragma once

#include <memory>
#include <string>

#include "jit/kir.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace kiln::jit {

/// What generated code may assume about the CPU it runs on.
struct CodegenTarget {
  std::string cpu;        // LLVM CPU name ("rocketlake")
  std::string features;   // LLVM feature string, every host feature: "+avx2,-avx512f,..."
  int vector_bits = 128;  // widest native vector register (512 with AVX-512)
  // "prefer-vector-width" in bits for LLVM's own vectorizers; 0: the CPU's default.
  int prefer_vector_width = 0;

  /// The machine this process runs on.
  static CodegenTarget host();
};

/// Builds the (unoptimized, verified) module of `k` with the entry function `symbol`. The module
/// has no triple or data layout yet; the caller sets them from its TargetMachine. Throws
/// kiln::Error(kInternal) if `k` does not validate or the generated IR is malformed.
std::unique_ptr<llvm::Module> generate_module(const Kernel& k, const std::string& symbol,
                                              llvm::LLVMContext& ctx, const CodegenTarget& target);

}  // namespace kiln::jit
