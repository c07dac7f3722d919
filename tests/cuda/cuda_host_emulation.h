// Printed CUDA C run on the host: the kernels of a source built by the host C++ compiler with
// KILN_HOST_THREADS (cuda_c.cc's prelude), each block's threads run as host threads.
#pragma once

#include <string>
#include <vector>

#include "jit/cuda_c.h"
#include "test_paths.h"

namespace kiln::testing {

/// Collects printed sources into one host library: each add() becomes an entry taking the
/// buffer pointers and the i64 params, launching the source's functions in order (fixed
/// launches with their grid and block; grid loops and single-thread functions as one thread).
class HostCudaLibrary {
 public:
  using Entry = void (*)(void** buffers, const long long* params);
  /// `buffer_types`: the C type of each pointer argument ("const float*"); `params`: how many i64
  /// params the functions take after them. Returns the entry's index.
  int add(const jit::CudaSource& src, const std::vector<std::string>& buffer_types, int params);
  /// Compiles and loads the library; the entries in add() order, or empty with `error` set.
  std::vector<Entry> build(const TempDir& dir, std::string* error);

 private:
  std::string code_, entries_;
  int count_ = 0;
};

}  // namespace kiln::testing
