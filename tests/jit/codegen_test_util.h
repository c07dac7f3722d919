// Helpers for the code generator tests: host buffers of any kernel type, running a kernel both
// through the reference interpreter and through LLVM + ORC, and comparing the outputs.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "jit/jit.h"
#include "jit/kir.h"
#include "jit/kir_interp.h"

namespace kiln::jit::testing {

/// A 64-byte aligned host buffer of `count` elements of a kernel type.
struct HostBuffer {
  ScalarType type = ScalarType::kF32;
  size_t count = 0;
  std::shared_ptr<uint8_t> mem;

  HostBuffer() = default;
  HostBuffer(ScalarType t, size_t n) : type(t), count(n) {
    size_t bytes = (std::max<size_t>(n * size_t(type_bytes(t)), 1) + 63) / 64 * 64;
    mem.reset(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)),
              [](uint8_t* p) { std::free(p); });
    std::memset(mem.get(), 0, bytes);
  }
  size_t bytes() const { return count * size_t(type_bytes(type)); }
  void* data() const { return mem.get(); }
  HostBuffer clone() const {
    HostBuffer c(type, count);
    std::memcpy(c.data(), data(), bytes());
    return c;
  }

  /// Element i as a double (integers converted, bool 0/1).
  double get(size_t i) const {
    const uint8_t* p = mem.get() + i * size_t(type_bytes(type));
    switch (type) {
      case ScalarType::kBool:
      case ScalarType::kU8:
        return *p;
      case ScalarType::kI8:
        return *reinterpret_cast<const int8_t*>(p);
      case ScalarType::kI16:
        return *reinterpret_cast<const int16_t*>(p);
      case ScalarType::kU16:
        return *reinterpret_cast<const uint16_t*>(p);
      case ScalarType::kI32:
        return *reinterpret_cast<const int32_t*>(p);
      case ScalarType::kU32:
        return *reinterpret_cast<const uint32_t*>(p);
      case ScalarType::kI64:
        return double(*reinterpret_cast<const int64_t*>(p));
      case ScalarType::kU64:
        return double(*reinterpret_cast<const uint64_t*>(p));
      case ScalarType::kF32:
        return *reinterpret_cast<const float*>(p);
      case ScalarType::kF64:
        return *reinterpret_cast<const double*>(p);
    }
    return 0;
  }
  /// Stores `v` converted to the buffer's type (bool: v != 0).
  void set(size_t i, double v) {
    uint8_t* p = mem.get() + i * size_t(type_bytes(type));
    switch (type) {
      case ScalarType::kBool:
        *p = v != 0;
        break;
      case ScalarType::kF32:
        *reinterpret_cast<float*>(p) = float(v);
        break;
      case ScalarType::kF64:
        *reinterpret_cast<double*>(p) = v;
        break;
      default:
        set_int(i, int64_t(v));
        break;
    }
  }
  /// Stores the integer `v` wrapped to the buffer's width.
  void set_int(size_t i, int64_t v) {
    uint8_t* p = mem.get() + i * size_t(type_bytes(type));
    std::memcpy(p, &v,
                size_t(type_bytes(type)));  // little endian: the low bytes
    if (type == ScalarType::kBool) *p = v != 0;
  }
};

/// A kernel with its buffers and params, ready to run both ways.
struct Case {
  Kernel kernel;
  std::vector<HostBuffer> buffers;
  std::vector<int64_t> params;

  std::vector<void*> pointers(const std::vector<HostBuffer>& bufs) const {
    std::vector<void*> p;
    for (const auto& b : bufs) p.push_back(b.data());
    return p;
  }
};

/// Compiles and loads `k` under a fresh symbol.
inline std::shared_ptr<const CompiledKernel> compile(const Kernel& k) {
  static std::atomic<int> n{0};
  std::string symbol = "kiln_test_kernel_" + std::to_string(n++);
  return load_object(compile_to_object(k, symbol), symbol);
}

/// Runs the compiled kernel on copies of the case's buffers; returns them.
inline std::vector<HostBuffer> run_compiled(const Case& c, const CompiledKernel& ck) {
  std::vector<HostBuffer> bufs;
  for (const auto& b : c.buffers) bufs.push_back(b.clone());
  std::vector<void*> ptrs = c.pointers(bufs);
  ck.fn()(ptrs.data(), c.params.data());
  return bufs;
}

/// Runs the reference interpreter on copies of the case's buffers; returns them.
inline std::vector<HostBuffer> run_interpreter(const Case& c) {
  std::vector<HostBuffer> bufs;
  std::vector<size_t> bytes;
  for (const auto& b : c.buffers) {
    bufs.push_back(b.clone());
    bytes.push_back(b.bytes());
  }
  interpret(c.kernel, c.pointers(bufs), bytes, c.params);
  return bufs;
}

/// Float equality up to `rel` relative to max(|want|, abs_floor), with NaN == NaN.
inline bool close(double got, double want, double rel, double abs_floor) {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
  if (got == want) return true;
  return std::fabs(got - want) <= rel * std::max(std::fabs(want), abs_floor);
}

/// Compiles `c.kernel` (unless `ck` is given), runs it and the interpreter, and expects equal
/// outputs: integers exactly, floats within `rel` relative to max(|want|, abs_floor).
inline void expect_matches_interpreter(const Case& c, double rel = 0,
                                       const std::shared_ptr<const CompiledKernel>& ck = nullptr,
                                       double abs_floor = 1e-30) {
  auto kernel = ck ? ck : compile(c.kernel);
  std::vector<HostBuffer> want = run_interpreter(c);
  std::vector<HostBuffer> got = run_compiled(c, *kernel);
  for (size_t b = 0; b < c.buffers.size(); ++b) {
    if (!c.kernel.buffers[b].output) continue;
    int bad = 0;
    for (size_t i = 0; i < want[b].count && bad < 5; ++i) {
      double g = got[b].get(i), w = want[b].get(i);
      bool ok = is_float(want[b].type)
                    ? close(g, w, rel, abs_floor)
                    : std::memcmp(got[b].mem.get() + i * type_bytes(want[b].type),
                                  want[b].mem.get() + i * type_bytes(want[b].type),
                                  size_t(type_bytes(want[b].type))) == 0;
      if (!ok) {
        ++bad;
        ADD_FAILURE() << c.kernel.label << ": buffer " << b << " element " << i << ": got " << g
                      << ", interpreter " << w << "\n"
                      << print(c.kernel);
      }
    }
  }
}

/// A buffer declaration with contiguous strides.
inline BufferDecl buffer(const std::string& name, ScalarType t, std::vector<Expr> dims,
                         bool output = false, int align = 0) {
  BufferDecl d;
  d.name = name;
  d.type = t;
  d.strides = contiguous_strides(dims);
  d.dims = std::move(dims);
  d.align = align > 0 ? align : type_bytes(t);
  d.output = output;
  return d;
}

}  // namespace kiln::jit::testing
