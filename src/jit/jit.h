// The process-wide ORC LLJIT and the path from a kernel to callable code.
//
// compile_to_object() lowers a jit::Kernel to an LLVM module for the host CPU (its name and
// features, queried from LLVM, never a fixed CPU), optimizes it with the O3 pipeline and emits a
// relocatable object file in memory. load_object() adds an object to the one LLJIT instance under
// a fresh resource tracker and looks up the kernel's entry symbol; the returned CompiledKernel
// removes the code again when the last reference to it goes away (an evicted kernel is freed once
// no plan uses it). Both are thread-safe; compiles run concurrently, each in its own LLVMContext.
//
// Generated code calls back into the host only through kiln_parallel_for (devices/cpu.h) and a
// few libm functions for rarely used intrinsics (asin, acos, ... outside the hot set); exp, log,
// tanh, erf, sigmoid, pow, sin and cos are inline polynomial code that the vectorizer widens.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/kir.h"

namespace kiln::jit {

/// Entry point of every compiled kernel: buffer base pointers in kernel order, then the values
/// of the kernel's i64 parameters.
using KernelFn = void (*)(void* const* buffers, const int64_t* params);

class CompiledKernel {
 public:
  virtual ~CompiledKernel() = default;
  KernelFn fn() const { return fn_; }
  const std::string& symbol() const { return symbol_; }
  size_t object_bytes() const { return object_bytes_; }

 protected:
  KernelFn fn_ = nullptr;
  std::string symbol_;
  size_t object_bytes_ = 0;
};

/// "<cpu name>;+feat1,+feat2,..." of the host, with LLVM's version: what generated code depends
/// on beyond the kernel itself (part of every cache key).
const std::string& host_target_id();

/// Kernel -> optimized LLVM module -> object file bytes. `symbol` names the entry function.
/// Throws kiln::Error(kInternal) if the kernel does not validate or LLVM fails.
std::string compile_to_object(const Kernel& k, const std::string& symbol);

/// Loads an object file produced by compile_to_object (possibly by another process) and returns
/// its entry `symbol`. Throws kiln::Error(kInternal) when the object cannot be linked.
std::shared_ptr<const CompiledKernel> load_object(const std::string& object,
                                                  const std::string& symbol);

/// The LLVM IR text of a kernel, before or after optimization (for `kiln info --llvm` and tests).
std::string emit_llvm_ir(const Kernel& k, const std::string& symbol, bool optimized);

}  // namespace kiln::jit
