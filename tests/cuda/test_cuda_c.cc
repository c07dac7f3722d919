// The CUDA C printer: exact text of small kernels, every op kind, the tricky semantics.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cuda/cuda_test_util.h"
#include "jit/cuda_c.h"
#include "jit/kir.h"

namespace kiln::testing {
namespace {

using namespace jit;
using ST = ScalarType;

// The expression a one-store kernel prints for `e` (stored into an output of e's type). Inputs:
// b0 f32[4], b1 f64[4], b2 i32[4], b3 i64[4], b4 bool[4], b5 u64[4], b6 i8[4].
std::string printed(const Expr& e) {
  Kernel k;
  k.buffers = {cuda_buf("f", ST::kF32, {imm(4)}),  cuda_buf("d", ST::kF64, {imm(4)}),
               cuda_buf("i", ST::kI32, {imm(4)}),  cuda_buf("l", ST::kI64, {imm(4)}),
               cuda_buf("b", ST::kBool, {imm(4)}), cuda_buf("u", ST::kU64, {imm(4)}),
               cuda_buf("c", ST::kI8, {imm(4)}),   cuda_buf("y", e->type, {imm(4)}, true)};
  k.body = store(7, {imm(1)}, e);
  validate(k);
  std::string text = print_cuda_functions(k, "f");
  std::string head = "  b7[1LL] = ";
  size_t at = text.rfind(head);
  EXPECT_NE(at, std::string::npos) << text;
  if (at == std::string::npos) return "";
  size_t end = text.find(";\n", at);
  std::string s = text.substr(at + head.size(), end - at - head.size());
  if (e->type == ST::kBool) {
    EXPECT_EQ(s.rfind("(unsigned char)", 0), 0u) << s;
    s = s.substr(15);
  }
  return s;
}

Expr F(int i) { return load(0, ST::kF32, {imm(i)}); }
Expr D(int i) { return load(1, ST::kF64, {imm(i)}); }
Expr I(int i) { return load(2, ST::kI32, {imm(i)}); }
Expr L(int i) { return load(3, ST::kI64, {imm(i)}); }
Expr B(int i) { return load(4, ST::kBool, {imm(i)}); }
Expr U(int i) { return load(5, ST::kU64, {imm(i)}); }
Expr C(int i) { return load(6, ST::kI8, {imm(i)}); }

TEST(CudaC, ParallelElementwiseKernelExactText) {
  Kernel k;
  k.label = "Relu";
  k.num_params = 1;
  k.buffers = {cuda_buf("x", ST::kF32, {param(0), imm(8)}),
               cuda_buf("y", ST::kF32, {param(0), imm(8)}, true)};
  Expr i = var("i"), j = var("j");
  k.body = for_loop("i", param(0), LoopKind::kParallel,
                    for_loop("j", imm(8), LoopKind::kVectorized,
                             store(1, {i, j}, max(load(0, ST::kF32, {i, j}), fimm(0))), 8));
  validate(k);
  std::vector<CudaFunction> fns;
  EXPECT_EQ(print_cuda_functions(k, "relu", &fns),
            "extern \"C\" __global__ void __launch_bounds__(256) relu(const float* b0, float* b1, "
            "long long p0) {\n"
            "  const long long kiln_n = p0;\n"
            "  for (long long v_i = (long long)blockIdx.x * blockDim.x + threadIdx.x; v_i < "
            "kiln_n; v_i += (long long)gridDim.x * blockDim.x) {\n"
            "    #pragma unroll 8\n"
            "    for (long long v_j = 0; v_j < 8LL; ++v_j) {\n"
            "      b1[kiln_add(kiln_mul(v_i, 8LL), v_j)] = kiln_fmax(b0[kiln_add(kiln_mul(v_i, "
            "8LL), v_j)], 0.0f);\n"
            "    }\n"
            "  }\n"
            "}\n");
  ASSERT_EQ(fns.size(), 1u);
  EXPECT_EQ(fns[0].name, "relu");
  ASSERT_TRUE(fns[0].grid_extent);
  EXPECT_EQ(print(fns[0].grid_extent), "p0");
  CudaSource src = print_cuda(k, "relu");
  EXPECT_EQ(src.code.rfind("// Kiln kernel relu: Relu\n", 0), 0u);
  EXPECT_NE(src.code.find(cuda_prelude()), std::string::npos);
}

TEST(CudaC, SerialKernelRunsAsOneThreadWithReductionLoops) {
  Kernel k;
  k.label = "ReduceSum";
  k.buffers = {cuda_buf("x", ST::kI32, {imm(3), imm(5)}), cuda_buf("y", ST::kI32, {imm(3)}, true)};
  Expr i = var("i"), r = var("r");
  k.body = for_loop(
      "i", imm(3), LoopKind::kSerial,
      let("t", reduce(ReduceOp::kSum, {"r"}, {imm(5)}, imm(0, ST::kI32), load(0, ST::kI32, {i, r})),
          store(1, {i}, var("t", ST::kI32))));
  validate(k);
  std::vector<CudaFunction> fns;
  EXPECT_EQ(print_cuda_functions(k, "rs", &fns),
            "extern \"C\" __global__ void __launch_bounds__(256) rs(const int* b0, int* b1) {\n"
            "  if (blockIdx.x != 0 || threadIdx.x != 0) return;\n"
            "  for (long long v_i = 0; v_i < 3LL; ++v_i) {\n"
            "    int kiln_r0 = 0;\n"
            "    for (long long v_r = 0; v_r < 5LL; ++v_r) {\n"
            "      kiln_r0 = kiln_add(kiln_r0, b0[kiln_add(kiln_mul(v_i, 5LL), v_r)]);\n"
            "    }\n"
            "    const int v_t = kiln_r0;\n"
            "    b1[v_i] = v_t;\n"
            "  }\n"
            "}\n");
  ASSERT_EQ(fns.size(), 1u);
  EXPECT_FALSE(fns[0].grid_extent);
}

TEST(CudaC, TopLevelBlockSplitsAtParallelLoops) {
  Kernel k;
  k.buffers = {cuda_buf("y", ST::kF32, {imm(4)}, true)};
  Expr i = var("i"), j = var("j");
  k.body = block({for_loop("i", imm(4), LoopKind::kParallel, store(0, {i}, fimm(1))),
                  store(0, {imm(0)}, fimm(2)), store(0, {imm(1)}, fimm(3)),
                  for_loop("j", imm(2), LoopKind::kParallel, store(0, {j}, fimm(4)))});
  validate(k);
  std::vector<CudaFunction> fns;
  std::string text = print_cuda_functions(k, "g", &fns);
  ASSERT_EQ(fns.size(), 3u) << text;
  EXPECT_EQ(fns[0].name, "g");
  EXPECT_EQ(fns[1].name, "g_1");
  EXPECT_EQ(fns[2].name, "g_2");
  EXPECT_TRUE(fns[0].grid_extent);
  EXPECT_FALSE(fns[1].grid_extent);
  EXPECT_TRUE(fns[2].grid_extent);
  EXPECT_NE(text.find("g_1(float* b0) {\n  if (blockIdx.x != 0 || threadIdx.x != 0) return;\n"
                      "  b0[0] = 2.0f;\n  b0[1LL] = 3.0f;\n}\n"),
            std::string::npos)
      << text;
}

TEST(CudaC, IntegerSemantics) {
  EXPECT_EQ(printed(binary(BinaryOp::kDiv, I(0), I(1))), "kiln_div(b2[0], b2[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kMod, L(0), L(1))), "kiln_mod(b3[0], b3[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kAdd, C(0), C(1))), "kiln_add(b6[0], b6[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kShr, U(0), U(1))), "kiln_shr(b5[0], b5[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kShl, I(0), I(1))), "kiln_shl(b2[0], b2[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kMin, I(0), I(1))), "kiln_min(b2[0], b2[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kAnd, I(0), I(1))), "((int)(b2[0] & b2[1LL]))");
  EXPECT_EQ(printed(binary(BinaryOp::kXor, B(0), B(1))), "((b4[0] != 0) != (b4[1LL] != 0))");
  EXPECT_EQ(printed(unary(UnaryOp::kNeg, L(0))), "kiln_neg(b3[0])");
  EXPECT_EQ(printed(unary(UnaryOp::kAbs, C(0))), "kiln_abs(b6[0])");
  EXPECT_EQ(printed(unary(UnaryOp::kNot, I(0))), "((int)~b2[0])");
  EXPECT_EQ(printed(unary(UnaryOp::kNot, B(0))), "(!(b4[0] != 0))");
  EXPECT_EQ(printed(binary(BinaryOp::kLt, U(0), U(1))), "(b5[0] < b5[1LL])");
  // Immediates carry their type.
  EXPECT_EQ(printed(imm(std::numeric_limits<int64_t>::min())), "(-9223372036854775807LL - 1LL)");
  EXPECT_EQ(printed(imm(-7, ST::kI32)), "(-7)");
  EXPECT_EQ(printed(imm(-1, ST::kU64)), "18446744073709551615ULL");
  EXPECT_EQ(printed(imm(-3, ST::kI8)), "((signed char)-3)");
  EXPECT_EQ(printed(imm(1, ST::kBool)), "true");
}

TEST(CudaC, FloatSemantics) {
  EXPECT_EQ(printed(binary(BinaryOp::kMin, F(0), F(1))), "kiln_fmin(b0[0], b0[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kMax, D(0), D(1))), "kiln_fmax(b1[0], b1[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kMod, F(0), F(1))), "fmodf(b0[0], b0[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kPow, D(0), D(1))), "pow(b1[0], b1[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kDiv, F(0), F(1))), "(b0[0] / b0[1LL])");
  EXPECT_EQ(printed(binary(BinaryOp::kNe, F(0), F(1))), "(b0[0] != b0[1LL])");
  EXPECT_EQ(printed(unary(UnaryOp::kRound, F(0))), "rintf(b0[0])");
  EXPECT_EQ(printed(unary(UnaryOp::kRound, D(0))), "rint(b1[0])");
  EXPECT_EQ(printed(unary(UnaryOp::kSigmoid, F(0))), "kiln_sigmoid(b0[0])");
  EXPECT_EQ(printed(unary(UnaryOp::kNeg, F(0))), "(-b0[0])");
  EXPECT_EQ(printed(fimm(0.1)), "0.1f");
  EXPECT_EQ(printed(fimm(0.1, ST::kF64)), "0.1");
  EXPECT_EQ(printed(fimm(-2.5)), "(-2.5f)");
  EXPECT_EQ(printed(fimm(1e30)), "1e+30f");
  EXPECT_EQ(printed(fimm(16777216.0)), "16777216.0f");
  EXPECT_EQ(printed(fimm(-0.0)), "(-0.0f)");
  EXPECT_EQ(printed(fimm(INFINITY)), "kiln_f32_bits(0x7f800000u)");
  EXPECT_EQ(printed(fimm(-INFINITY, ST::kF64)), "kiln_f64_bits(0xfff0000000000000ULL)");
  EXPECT_EQ(printed(fimm(std::nan(""))), "kiln_f32_bits(0x7fc00000u)");
}

TEST(CudaC, CastSemantics) {
  EXPECT_EQ(printed(cast(ST::kI32, F(0))), "((int)kiln_f2i(b0[0]))");
  EXPECT_EQ(printed(cast(ST::kI64, D(0))), "kiln_f2i(b1[0])");
  EXPECT_EQ(printed(cast(ST::kU64, F(0))), "kiln_f2u64(b0[0])");
  EXPECT_EQ(printed(cast(ST::kI8, F(0))), "((signed char)kiln_f2i(b0[0]))");
  EXPECT_EQ(printed(cast(ST::kBool, F(0))), "(b0[0] != 0)");
  EXPECT_EQ(printed(cast(ST::kBool, I(0))), "(b2[0] != 0)");
  EXPECT_EQ(printed(cast(ST::kF32, B(0))), "((float)(b4[0] != 0))");
  EXPECT_EQ(printed(cast(ST::kF32, U(0))), "((float)b5[0])");
  EXPECT_EQ(printed(cast(ST::kI8, L(0))), "((signed char)b3[0])");
  EXPECT_EQ(printed(cast(ST::kF64, F(0))), "((double)b0[0])");
  EXPECT_EQ(printed(select(B(0), F(0), F(1))), "((b4[0] != 0) ? b0[0] : b0[1LL])");
}

TEST(CudaC, EveryOpKindPrints) {
  const char* unary_f32[] = {"(-",    "",      "fabsf",  "floorf", "ceilf", "rintf",
                             "sqrtf", "expf",  "logf",   "tanhf",  "erff",  "kiln_sigmoid",
                             "sinf",  "cosf",  "tanf",   "asinf",  "acosf", "atanf",
                             "sinhf", "coshf", "asinhf", "acoshf", "atanhf"};
  for (int op = 0; op <= int(UnaryOp::kAtanh); ++op) {
    if (UnaryOp(op) == UnaryOp::kNot) {
      EXPECT_EQ(printed(unary(UnaryOp::kNot, L(0))), "((long long)~b3[0])");
      continue;
    }
    std::string s = printed(unary(UnaryOp(op), F(0)));
    EXPECT_EQ(s.rfind(unary_f32[op], 0), 0u) << unary_name(UnaryOp(op)) << ": " << s;
    std::string fn64 = unary_f32[op];  // the double function drops the 'f' suffix
    if (fn64.size() > 2 && fn64.back() == 'f') fn64.pop_back();
    std::string d = printed(unary(UnaryOp(op), D(0)));
    EXPECT_EQ(d.rfind(fn64 + (fn64 == "(-" ? "" : "("), 0), 0u)
        << unary_name(UnaryOp(op)) << ": " << d;
  }
  for (int op = 0; op <= int(BinaryOp::kGe); ++op) {
    BinaryOp b = BinaryOp(op);
    bool int_only = b == BinaryOp::kAnd || b == BinaryOp::kOr || b == BinaryOp::kXor ||
                    b == BinaryOp::kShl || b == BinaryOp::kShr;
    if (b != BinaryOp::kPow) {
      EXPECT_FALSE(printed(binary(b, I(0), I(1))).empty());
    }
    if (!int_only) {
      EXPECT_FALSE(printed(binary(b, D(0), D(1))).empty());
    }
  }
  const char* combine[] = {"(kiln_r0 + ", "(kiln_r0 * ", "kiln_fmin(kiln_r0, ",
                           "kiln_fmax(kiln_r0, "};
  for (int op = 0; op <= int(ReduceOp::kMax); ++op) {
    Kernel k;
    k.buffers = {cuda_buf("x", ST::kF32, {imm(4)}), cuda_buf("y", ST::kF32, {imm(1)}, true)};
    k.body = store(1, {imm(0)},
                   reduce(ReduceOp(op), {"r"}, {imm(4)}, fimm(0), load(0, ST::kF32, {var("r")})));
    validate(k);
    std::string text = print_cuda_functions(k, "r");
    EXPECT_NE(text.find(std::string("kiln_r0 = ") + combine[op] + "b0[v_r]"), std::string::npos)
        << text;
  }
}

}  // namespace
}  // namespace kiln::testing

namespace kiln::testing {
namespace {

using namespace jit;
using ST = ScalarType;

// Rows of a reduction get a warp each; a loop that reads what it writes keeps a thread per row.
TEST(CudaC, WarpRowsOnlyWhenTheirLoopsAreIndependent) {
  auto row_kernel = [](bool read_modify_write) {
    Kernel k;
    k.label = "rows";
    k.buffers = {cuda_buf("x", ST::kF32, {imm(8), imm(64)}),
                 cuda_buf("y", ST::kF32, {imm(8), imm(64)}, true)};
    Expr i = var("i"), j = var("j"), r = var("r");
    Expr total = reduce(ReduceOp::kSum, {"r"}, {imm(64)}, fimm(0), load(0, ST::kF32, {i, r}));
    Expr t = var("t", ST::kF32);
    Expr value = read_modify_write ? load(1, ST::kF32, {i, j}) + t : load(0, ST::kF32, {i, j}) / t;
    k.body = for_loop(
        "i", imm(8), LoopKind::kParallel,
        let("t", total, for_loop("j", imm(64), LoopKind::kSerial, store(1, {i, j}, value))));
    validate(k);
    std::vector<CudaFunction> fns;
    std::string text = print_cuda_functions(k, "rows", &fns);
    return std::make_pair(text, fns.at(0));
  };
  auto [warp_text, warp_fn] = row_kernel(false);
  EXPECT_TRUE(warp_fn.warp);
  EXPECT_EQ(print(warp_fn.grid_extent), "256") << "32 threads per row";
  EXPECT_NE(warp_text.find("kiln_shfl_xor"), std::string::npos) << warp_text;
  EXPECT_NE(warp_text.find("v_j = kiln_lane"), std::string::npos) << warp_text;
  auto [plain_text, plain_fn] = row_kernel(true);
  EXPECT_FALSE(plain_fn.warp);
  EXPECT_EQ(plain_text.find("kiln_lane"), std::string::npos) << plain_text;

  // Stores that two iterations could share keep a thread per row: an offset bound inside the
  // loop (y[i, j + k]: j=0,k=1 and j=1,k=0), or two stores on different index positions.
  auto warp_of = [](Stmt row_body) {
    Kernel k;
    k.buffers = {cuda_buf("x", ST::kF32, {imm(8), imm(64)}),
                 cuda_buf("y", ST::kF32, {imm(8), imm(128)}, true)};
    k.body = for_loop("i", imm(8), LoopKind::kParallel, row_body);
    validate(k);
    std::vector<CudaFunction> fns;
    print_cuda_functions(k, "rows", &fns);
    return fns.at(0).warp;
  };
  Expr i = var("i"), j = var("j"), kk = var("k");
  Expr x = load(0, ST::kF32, {i, j});
  EXPECT_FALSE(
      warp_of(for_loop("j", imm(64), LoopKind::kSerial,
                       for_loop("k", imm(2), LoopKind::kSerial, store(1, {i, j + kk}, x)))));
  EXPECT_FALSE(warp_of(for_loop("j", imm(8), LoopKind::kSerial,
                                block({store(1, {j, imm(0)}, x), store(1, {imm(1), j}, x)}))));
  EXPECT_FALSE(warp_of(for_loop("j", imm(64), LoopKind::kSerial,
                                block({store(1, {i, j}, x), store(1, {i, j + 64}, x)}))))
      << "different offsets at one position: conservatively not distributed";
  EXPECT_TRUE(warp_of(for_loop("j", imm(64), LoopKind::kSerial, store(1, {i, j + 64}, x))));
}

// A reduction whose extent is bound by a let to a window's tap count, max(min(3, a) - min(3, b),
// 0) (at most 3), keeps a thread per row; one bounded only at run time (a param) gets a warp.
TEST(CudaC, WarpRowsNotForShortBoundedReductions) {
  auto warp_of = [](Expr extent, int params) {
    Kernel k;
    k.buffers = {cuda_buf("x", ST::kF32, {imm(8), imm(64)}),
                 cuda_buf("y", ST::kF32, {imm(8)}, true)};
    k.num_params = params;
    Expr i = var("i"), r = var("r");
    Expr sum = reduce(ReduceOp::kSum, {"r"}, {var("n")}, fimm(0), load(0, ST::kF32, {i, r}));
    k.body = for_loop("i", imm(8), LoopKind::kParallel, let("n", extent, store(1, {i}, sum)));
    validate(k);
    std::vector<CudaFunction> fns;
    print_cuda_functions(k, "rows", &fns);
    return fns.at(0).warp;
  };
  Expr i = var("i");
  Expr taps = max(min(imm(3), i * imm(2) + imm(5)) - min(imm(3), max(imm(1) - i, imm(0))), imm(0));
  EXPECT_FALSE(warp_of(taps, 0));
  EXPECT_FALSE(warp_of(min(param(0), imm(20)), 1));
  EXPECT_TRUE(warp_of(min(param(0), imm(64)), 1));
  EXPECT_TRUE(warp_of(param(0), 1));
  EXPECT_TRUE(warp_of(max(param(0), imm(3)), 1)) << "at least 3: unbounded above";
}

}  // namespace
}  // namespace kiln::testing
