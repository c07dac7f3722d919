// The CUDA C printer: a jit::Kernel (the same kernel IR the CPU LLVM path compiles) as CUDA C
// source that NVRTC compiles to PTX. Pure text generation: no CUDA header or library is needed.
//
// Mapping. A kernel becomes one or more `extern "C" __global__` functions, launched in order on
// one stream (stream order is the barrier between them):
// - a top-level parallel loop is mapped to the grid: its variable is
//   blockIdx.x * blockDim.x + threadIdx.x, with a grid-stride loop so any grid size is correct;
// - a top-level block is split at its parallel loops: each parallel loop is its own grid
//   function, consecutive other statements run in one single-thread function;
// - everything else (serial, vectorized and unrolled loops, lets, ifs, reductions) runs as plain
//   serial C inside the thread; vectorized and unrolled loops with a factor get `#pragma unroll`;
// - except in a warp-cooperative grid loop (a row of LayerNorm or Softmax): when each iteration
//   reduces or loops over at least 32 (64) elements and every loop at the top of its body has
//   independent iterations, an iteration is a warp's: its lanes take those loops' iterations in
//   turn (then __syncwarp), split each top-level reduction's outermost variable and combine the
//   partial results with __shfl_xor_sync (float sums reassociate, as kir.h allows), and one lane
//   makes each top-level store.
// Arguments: the buffers as typed pointers (b0, b1, ...; inputs const, bool as unsigned char),
// then the i64 params by value (p0, p1, ...).
//
// Semantics are exactly those of kir.h's header comment, through the helpers of cuda_prelude():
// wrapping integer arithmetic (computed in unsigned types), integer div/mod by zero giving 0
// (and INT_MIN / -1 wrapping), shift counts modulo the width, NaN-propagating float min/max,
// round half to even (rint), float->int casts that never trap (NaN -> 0, saturating to i64 like
// the interpreter, then wrapping to the target width). Integer immediates carry their type's
// suffix or cast; float immediates print as the shortest decimal that round-trips (non-finite
// ones by their bits). Loop and let variables print as `v_<name>`.
#pragma once

#include <string>
#include <vector>

#include "jit/kir.h"

namespace kiln::jit {

/// Threads per block of every grid function (also its __launch_bounds__).
constexpr int kCudaBlockSize = 256;

/// One __global__ function of a printed kernel.
struct CudaFunction {
  std::string name;
  /// The extent of the parallel loop mapped to the grid (i64 over immediates and params); null
  /// for a function that runs as a single thread or has a fixed launch.
  Expr grid_extent;
  /// A fixed launch (tiled kernels, cuda_gemm.h): threads per block (0 = none: the launch follows
  /// grid_extent) and the grid.
  int block = 0;
  unsigned grid[3] = {1, 1, 1};
  /// A warp-cooperative grid loop: each iteration is a warp's (grid_extent counts threads, 32
  /// per iteration).
  bool warp = false;
};

struct CudaSource {
  std::string code;                     ///< cuda_prelude() followed by the functions
  std::vector<CudaFunction> functions;  ///< to launch in this order
};

/// Helper functions every printed kernel uses (integer wrapping, div/mod, min/max, casts).
const std::string& cuda_prelude();

/// The kernel's functions alone (no prelude), named `name`, `name`_1, `name`_2, ...
std::string print_cuda_functions(const Kernel& k, const std::string& name,
                                 std::vector<CudaFunction>* functions = nullptr);

/// The whole translation unit for NVRTC. `k` must be valid (validate()).
CudaSource print_cuda(const Kernel& k, const std::string& name);

/// An f32 immediate as CUDA C: the shortest decimal that reads back as exactly `v` (non-finite
/// values by their bits).
std::string cuda_f32_literal(float v);

/// The C type a scalar type prints as ("float", "long long", "unsigned char" for bool storage
/// via `storage`).
const char* cuda_type(ScalarType t, bool storage = false);

}  // namespace kiln::jit
