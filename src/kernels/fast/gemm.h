// Fast float32 GEMM for the CPU engine: C = A * B (+ fused epilogue), with B packed once into
// register-tile panels (constant weights) or on the fly (gemm_dynamic). Runtime dispatch picks
// an AVX-512F, AVX2+FMA or generic C++ microkernel; all three agree with a double reference to
// float rounding (tests/fast/test_fast_gemm.cc).
//
// Threading: gemm splits into (row block, column chunk) tasks run by tbb::parallel_for in the
// caller's arena when each task gets >= ~2e5 FMAs; otherwise it runs serially on the caller's
// thread. Calls are thread-safe and reentrant.
//
// Scratch: `scratch` (64-byte aligned, *_scratch_bytes() bytes) is used by the serial path;
// tasks of a parallel call use per-thread buffers that grow to the largest request and are kept.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/fast/activation.h"
#include "kernels/fast/buffer.h"

namespace kiln::kernels::fast {

/// True when a SIMD path (AVX2+FMA or AVX-512F) exists on this CPU.
bool available();
/// 0 generic, 2 avx2, 3 avx512: the level new PackedB / Conv2d objects are built for.
int simd_level();
/// Forces the dispatch level (clamped to what the CPU supports); -1 restores detection.
/// Objects already packed keep the level they were packed for. Not thread-safe: tests only.
void set_simd_level_for_testing(int level);

/// B (K x N row-major, or N x K when trans_b) packed into the layout of the microkernel of the
/// dispatch level current at pack() time.
class PackedB {
 public:
  PackedB() = default;
  static PackedB pack(const float* b, int64_t k, int64_t n, bool trans_b);
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int level() const { return level_; }
  /// Panel holding rows [k0, k0 + kc) of columns [jp*nr, jp*nr + nr) (k0 a K-block start).
  const float* panel(int64_t k0, int64_t kc, int64_t jp) const;

 private:
  int64_t k_ = 0, n_ = 0, n_pad_ = 0;
  int level_ = 0;
  int nr_ = 1;
  AlignedBuffer data_;
};

struct GemmEpilogue {
  const float* bias_n = nullptr;    ///< per output column (length N)
  const float* bias_m = nullptr;    ///< per output row (length M)
  const float* residual = nullptr;  ///< same layout as C with row stride ld_residual
  int64_t ld_residual = 0;
  Activation act;
};

/// C[M x N] (row stride ldc) = A[M x K] (row stride lda, or A^T stored K x M when trans_a) * B
/// (+ epilogue). K == 0 gives the epilogue of zero. `serial`: on the caller's thread only (for
/// callers that split the work themselves).
void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
          const PackedB& b, float* c, int64_t ldc, const GemmEpilogue& ep, void* scratch = nullptr,
          bool serial = false);
size_t gemm_scratch_bytes(int64_t m, int64_t n, int64_t k);

/// Both operands dynamic: B (K x N, row stride ldb; or N x K when trans_b) is packed per call.
/// `serial`: run on the caller's thread only (callers that split the work themselves); with
/// scratch given it then allocates nothing.
void gemm_dynamic(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
                  const float* b, int64_t ldb, bool trans_b, float* c, int64_t ldc,
                  const GemmEpilogue& ep, void* scratch = nullptr, bool serial = false);
size_t gemm_dynamic_scratch_bytes(int64_t m, int64_t n, int64_t k);

}  // namespace kiln::kernels::fast
