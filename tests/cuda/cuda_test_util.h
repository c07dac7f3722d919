// Helpers of the CUDA tests: small kernels built with the kernel IR factories.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "jit/kir.h"
#include "kiln/devices.h"

/// Skips the test (GTEST_SKIP) unless a CUDA GPU can run sessions here.
#define KILN_REQUIRE_GPU()                                                               \
  do {                                                                                   \
    DeviceReport r = list_devices();                                                     \
    if (!r.cuda.usable) GTEST_SKIP() << "no usable CUDA device here: " << r.cuda.status; \
  } while (0)

namespace kiln::testing {

/// The host C++ compiler that builds printed CUDA C in the host tests ("" when there is none).
inline std::string host_compiler() {
  for (const char* c : {"c++", "g++", "clang++"})
    if (std::system((std::string("command -v ") + c + " >/dev/null 2>&1").c_str()) == 0) return c;
  return "";
}

/// The CUDA toolkit's PTX assembler: $KILN_PTXAS, else the one found at configure time; ""
/// when there is none.
inline std::string ptxas_path() {
  if (const char* e = std::getenv("KILN_PTXAS"); e && *e) return e;
#ifdef KILN_PTXAS_PATH
  if (std::system((std::string("test -x '") + KILN_PTXAS_PATH + "'").c_str()) == 0)
    return KILN_PTXAS_PATH;
#endif
  return "";
}

inline jit::BufferDecl cuda_buf(const std::string& name, jit::ScalarType t,
                                std::vector<jit::Expr> dims, bool output = false) {
  jit::BufferDecl b;
  b.name = name;
  b.type = t;
  b.dims = dims;
  b.strides = jit::contiguous_strides(dims);
  b.output = output;
  return b;
}

/// out[i] = f(a[i], b[i]) for i < n over two inputs of type `in` (a single-thread kernel: no
/// parallel loop), output of type `out`.
inline jit::Kernel cuda_binary_kernel(jit::ScalarType in, jit::ScalarType out, int64_t n,
                                      jit::Expr (*f)(jit::Expr, jit::Expr)) {
  using namespace jit;
  Kernel k;
  k.label = "test";
  k.buffers = {cuda_buf("a", in, {imm(n)}), cuda_buf("b", in, {imm(n)}),
               cuda_buf("y", out, {imm(n)}, true)};
  Expr i = var("i");
  k.body = for_loop("i", imm(n), LoopKind::kSerial,
                    store(2, {i}, f(load(0, in, {i}), load(1, in, {i}))));
  validate(k);
  return k;
}

}  // namespace kiln::testing
