// The fast GEMM (src/kernels/fast/gemm.h) against a double-accumulating reference, at every
// dispatch level the CPU supports: ragged M/N/K, transposed operands, row strides wider than the
// matrix, every activation with bias per row/column and a residual, K == 0, caller scratch, and
// multi-threaded runs giving the same bits as serial ones.
#include <tbb/task_arena.h>

#include <tuple>

#include "fast_test_util.h"
#include "kernels/fast/gemm.h"

namespace kiln::kernels::fast {
namespace {

using testing::activation_ref;
using testing::all_activations;
using testing::close;
using testing::for_each_level;
using testing::random_floats;

struct GemmCase {
  int64_t m, n, k;
  bool trans_a = false, trans_b = false;
  int64_t pad_lda = 0, pad_ldb = 0, pad_ldc = 0;
  bool bias_n = false, bias_m = false, residual = false;
  Activation act;
  bool dynamic = false;
  bool with_scratch = false;
};

// Runs one case and checks every output element; returns the output for bit comparisons.
std::vector<float> check_gemm(const GemmCase& gc, std::mt19937& rng) {
  const int64_t m = gc.m, n = gc.n, k = gc.k;
  const int64_t lda = (gc.trans_a ? m : k) + gc.pad_lda;
  const int64_t ldb = (gc.trans_b ? k : n) + gc.pad_ldb;
  const int64_t ldc = n + gc.pad_ldc;
  std::vector<float> a = random_floats(rng, static_cast<size_t>((gc.trans_a ? k : m) * lda + 1));
  std::vector<float> b = random_floats(rng, static_cast<size_t>((gc.trans_b ? n : k) * ldb + 1));
  std::vector<float> bias_n = random_floats(rng, static_cast<size_t>(n));
  std::vector<float> bias_m = random_floats(rng, static_cast<size_t>(m));
  std::vector<float> res = random_floats(rng, static_cast<size_t>(m * ldc));
  std::vector<float> c(static_cast<size_t>(m * ldc), 1234.5f);

  GemmEpilogue ep;
  ep.bias_n = gc.bias_n ? bias_n.data() : nullptr;
  ep.bias_m = gc.bias_m ? bias_m.data() : nullptr;
  ep.residual = gc.residual ? res.data() : nullptr;
  ep.ld_residual = ldc;
  ep.act = gc.act;

  auto A = [&](int64_t i, int64_t p) { return gc.trans_a ? a[p * lda + i] : a[i * lda + p]; };
  auto B = [&](int64_t p, int64_t j) { return gc.trans_b ? b[j * ldb + p] : b[p * ldb + j]; };

  if (gc.dynamic) {
    AlignedBuffer scratch;
    void* s = nullptr;
    if (gc.with_scratch) s = scratch.reserve(gemm_dynamic_scratch_bytes(m, n, k) / 4 + 1);
    gemm_dynamic(m, n, k, a.data(), lda, gc.trans_a, b.data(), ldb, gc.trans_b, c.data(), ldc, ep,
                 s);
  } else {
    // Pack from a compact copy when ldb is padded: PackedB takes dense operands.
    std::vector<float> dense(static_cast<size_t>(k * n));
    for (int64_t p = 0; p < k; ++p) {
      for (int64_t j = 0; j < n; ++j) {
        dense[gc.trans_b ? j * k + p : p * n + j] = B(p, j);
      }
    }
    PackedB packed = PackedB::pack(dense.data(), k, n, gc.trans_b);
    EXPECT_EQ(packed.k(), k);
    EXPECT_EQ(packed.n(), n);
    AlignedBuffer scratch;
    void* s = gc.with_scratch ? scratch.reserve(gemm_scratch_bytes(m, n, k) / 4 + 1) : nullptr;
    gemm(m, n, k, a.data(), lda, gc.trans_a, packed, c.data(), ldc, ep, s);
  }

  int failures = 0;
  for (int64_t i = 0; i < m && failures < 5; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, scale = 0;
      for (int64_t p = 0; p < k; ++p) {
        sum += static_cast<double>(A(i, p)) * B(p, j);
        scale += std::abs(static_cast<double>(A(i, p)) * B(p, j));
      }
      if (gc.bias_n) sum += bias_n[j], scale += std::abs(bias_n[j]);
      if (gc.bias_m) sum += bias_m[i], scale += std::abs(bias_m[i]);
      if (gc.residual) sum += res[i * ldc + j], scale += std::abs(res[i * ldc + j]);
      const double want = activation_ref(sum, gc.act);
      const float got = c[i * ldc + j];
      if (!close(got, want, scale)) {
        ADD_FAILURE() << "C(" << i << "," << j << ") = " << got << ", want " << want << " (m " << m
                      << " n " << n << " k " << k << " trans " << gc.trans_a << gc.trans_b
                      << " act " << static_cast<int>(gc.act.kind) << ")";
        if (++failures >= 5) break;
      }
    }
    for (int64_t j = n; j < ldc; ++j) {
      EXPECT_EQ(c[i * ldc + j], 1234.5f) << "wrote past column " << n;
    }
  }
  return c;
}

TEST(FastGemm, DispatchReportsTheCpu) {
  const int level = simd_level();
  EXPECT_TRUE(level == 0 || level == 2 || level == 3);
  EXPECT_EQ(available(), level >= 2);
}

TEST(FastGemm, RaggedShapesBothLayouts) {
  const int64_t dims[] = {1, 3, 17, 31, 64, 65, 127, 255, 1023};
  for_each_level([&](int) {
    std::mt19937 rng(1);
    for (int64_t m : dims) {
      for (int64_t n : dims) {
        for (int64_t k : dims) {
          if (m * n * k > 3'000'000) continue;
          GemmCase gc{m, n, k};
          gc.trans_a = (rng() & 1) != 0;
          gc.trans_b = (rng() & 1) != 0;
          gc.pad_lda = rng() % 3;
          gc.pad_ldc = rng() % 3;
          check_gemm(gc, rng);
        }
      }
    }
  });
}

TEST(FastGemm, LargeEdges) {
  for_each_level([&](int) {
    std::mt19937 rng(2);
    check_gemm({1023, 65, 31, true, false}, rng);
    check_gemm({3, 1023, 255, false, true}, rng);
    check_gemm({255, 127, 1023}, rng);
    check_gemm({130, 300, 600, false, false, 5, 0, 7, true, false, true}, rng);
  });
}

TEST(FastGemm, EveryActivationWithBiasAndResidual) {
  for_each_level([&](int) {
    std::mt19937 rng(3);
    int variant = 0;
    for (const Activation& act : all_activations()) {
      for (auto [m, n, k] :
           {std::tuple<int64_t, int64_t, int64_t>{17, 65, 31}, {1, 255, 64}, {9, 33, 300}}) {
        GemmCase gc{m, n, k};
        gc.act = act;
        gc.bias_n = variant % 2 == 0;
        gc.bias_m = variant % 3 != 0;
        gc.residual = variant % 2 == 1 || variant % 5 == 0;
        gc.trans_a = variant % 4 == 1;
        gc.pad_ldc = variant % 3;
        ++variant;
        check_gemm(gc, rng);
      }
    }
  });
}

TEST(FastGemm, ActivationsOnLargeValues) {
  // Saturated regions (|x| up to ~60) of sigmoid/tanh/gelu/silu must not produce NaN or inf.
  for_each_level([&](int) {
    std::mt19937 rng(4);
    for (const Activation& act : all_activations()) {
      GemmCase gc{5, 37, 3000};
      gc.act = act;
      gc.bias_m = true;
      check_gemm(gc, rng);
    }
  });
}

TEST(FastGemm, ZeroKGivesTheEpilogueOfZero) {
  for_each_level([&](int) {
    std::mt19937 rng(5);
    GemmCase gc{7, 40, 0};
    gc.bias_n = gc.bias_m = gc.residual = true;
    gc.act = {Activation::Kind::kSigmoid};
    check_gemm(gc, rng);
    gc.dynamic = true;
    check_gemm(gc, rng);
  });
}

TEST(FastGemm, DynamicWithAndWithoutScratch) {
  for_each_level([&](int) {
    std::mt19937 rng(6);
    for (bool trans_b : {false, true}) {
      for (bool scratch : {false, true}) {
        GemmCase gc{64, 127, 64, false, trans_b, 0, 3, 1};
        gc.dynamic = true;
        gc.with_scratch = scratch;
        gc.bias_n = true;
        gc.act = {Activation::Kind::kGeluErf};
        check_gemm(gc, rng);
        GemmCase small{1, 17, 64, true, trans_b};
        small.dynamic = true;
        small.with_scratch = scratch;
        check_gemm(small, rng);
      }
    }
    GemmCase packed{65, 255, 255};
    packed.with_scratch = true;
    packed.residual = true;
    check_gemm(packed, rng);
  });
}

TEST(FastGemm, ThreadsGiveTheSerialBits) {
  for_each_level([&](int) {
    GemmCase gc{255, 1023, 255, false, false, 0, 0, 2, true, true, true};
    gc.act = {Activation::Kind::kSilu};
    std::mt19937 rng_a(7), rng_b(7);
    std::vector<float> serial, parallel;
    tbb::task_arena one(1), two(2);
    one.execute([&] { serial = check_gemm(gc, rng_a); });
    two.execute([&] { parallel = check_gemm(gc, rng_b); });
    EXPECT_EQ(serial, parallel);
  });
}

}  // namespace
}  // namespace kiln::kernels::fast
