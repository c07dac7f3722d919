// The linear-algebra lowerings (src/kernels/lower/linalg.cc, conv.cc) against the reference
// kernels: MatMul (sizes 1, 3, 17, 64 and sizes that cut the schedule's tiles raggedly, 1-D
// operands, batch broadcasting, empty dims), Gemm (every transA/transB, alpha, beta and C
// broadcast) and Conv (1-D, 2-D, 3-D; strides, pads, dilations, auto_pad, groups, depthwise with
// channel multipliers, 1x1, bias or none, empty inputs). Each case runs with immediate dims,
// dynamic dims (params), strided inputs and a tiny parallel grain, through the bounds-checking
// interpreter and the JIT. A disabled benchmark reports single-thread GFLOPS.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "devices/cpu.h"
#include "jit/kernel_cache.h"
#include "kernels/lower/lower.h"
#include "lower/lower_test_util.h"

namespace kiln::testing {
namespace {

using Attrs = std::map<std::string, ir::Attribute>;

Tensor rnd(const Dims& dims, uint64_t seed = 1, DType t = DType::kF32) {
  return random_tensor(t, dims, -1, 1, seed);
}

OpCall op(std::string name, std::vector<Tensor> inputs, Attrs attrs = {}) {
  return op_call(std::move(name), std::move(inputs), std::move(attrs), 18);
}

std::string dims_str(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

// Sums of up to a few hundred products: a tolerance that scales with K.
LowerOptions tol(double atol = 1e-4) {
  LowerOptions o;
  o.atol = atol;
  o.rtol = 1e-4;
  return o;
}

// ---- MatMul ------------------------------------------------------------------------------------

TEST(LowerLinalgMatMul, MatrixSizes) {
  const std::vector<int64_t> sizes = {1, 3, 17};
  uint64_t seed = 1;
  for (int64_t m : sizes)
    for (int64_t n : sizes)
      for (int64_t k : sizes) {
        SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) +
                     " k=" + std::to_string(k));
        check_variants(op("MatMul", {rnd({m, k}, seed), rnd({k, n}, seed + 1)}), tol());
        seed += 2;
      }
}

// Sizes that cut tile_m (8), tile_n (64), tile_k (256) and the unrolls raggedly.
TEST(LowerLinalgMatMul, RaggedTiles) {
  const std::vector<std::array<int64_t, 3>> mnk = {
      {64, 64, 3}, {9, 65, 5}, {17, 130, 2}, {5, 7, 259}, {3, 70, 300}, {64, 3, 64}, {2, 1, 17}};
  uint64_t seed = 100;
  for (auto [m, n, k] : mnk) {
    SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
    check_variants(op("MatMul", {rnd({m, k}, seed), rnd({k, n}, seed + 1)}), tol(1e-3), true);
    seed += 2;
  }
}

TEST(LowerLinalgMatMul, BatchBroadcastingAndVectors) {
  const std::vector<std::pair<Dims, Dims>> cases = {
      {{2, 3, 4}, {2, 4, 5}},  {{2, 3, 4, 5}, {5, 6}},
      {{4, 5}, {3, 5, 2}},     {{2, 1, 3, 4}, {3, 4, 5}},
      {{1, 3, 4}, {2, 4, 17}}, {{5}, {2, 5, 3}},
      {{2, 3, 5}, {5}},        {{17}, {17}},
      {{3, 4}, {4}},           {{4}, {4, 3}},
      {{1, 1, 3}, {3, 1}},     {{2, 1, 1, 5}, {1, 3, 5, 2}},
  };
  uint64_t seed = 200;
  for (const auto& [a, b] : cases) {
    SCOPED_TRACE(dims_str(a) + " x " + dims_str(b));
    check_variants(op("MatMul", {rnd(a, seed), rnd(b, seed + 1)}), tol());
    seed += 2;
  }
}

TEST(LowerLinalgMatMul, EmptyDims) {
  const std::vector<std::pair<Dims, Dims>> cases = {
      {{0, 3}, {3, 4}}, {{3, 0}, {0, 4}}, {{3, 4}, {4, 0}}, {{0, 2, 3}, {3, 2}}, {{0}, {0}}};
  for (const auto& [a, b] : cases) {
    SCOPED_TRACE(dims_str(a) + " x " + dims_str(b));
    check_variants(op("MatMul", {rnd(a), rnd(b, 2)}));
  }
}

TEST(LowerLinalgMatMul, DoubleAndFallbackTypes) {
  check_variants(op("MatMul", {rnd({5, 17}, 1, DType::kF64), rnd({17, 9}, 2, DType::kF64)}),
                 tol(1e-9));
  LowerOptions fb;
  fb.expect_fallback = true;
  fb.constant_inputs = std::vector<int>{};
  EXPECT_TRUE(check_lowering(op("MatMul", {random_tensor(DType::kI32, {3, 4}, -5, 5, 1),
                                           random_tensor(DType::kI32, {4, 2}, -5, 5, 2)}),
                             fb));
}

// ---- Gemm --------------------------------------------------------------------------------------

TEST(LowerLinalgGemm, TransposesAlphaBetaAndC) {
  const int64_t m = 5, n = 17, k = 6;
  const std::vector<Dims> c_shapes = {{}, {1}, {n}, {m, 1}, {1, n}, {m, n}};
  uint64_t seed = 300;
  for (int ta : {0, 1})
    for (int tb : {0, 1}) {
      Dims a = ta ? Dims{k, m} : Dims{m, k};
      Dims b = tb ? Dims{n, k} : Dims{k, n};
      Attrs at = {{"transA", attr_int(ta)}, {"transB", attr_int(tb)}};
      SCOPED_TRACE("transA=" + std::to_string(ta) + " transB=" + std::to_string(tb));
      // No C.
      check_variants(op("Gemm", {rnd(a, seed), rnd(b, seed + 1)}, at), tol(), /*all=*/true);
      Attrs ab = at;
      ab["alpha"] = attr_float(0.5f);
      ab["beta"] = attr_float(-2.0f);
      check_variants(op("Gemm", {rnd(a, seed), rnd(b, seed + 1)}, ab), tol());
      for (const Dims& c : c_shapes) {
        SCOPED_TRACE("C " + dims_str(c));
        check_variants(op("Gemm", {rnd(a, seed), rnd(b, seed + 1), rnd(c, seed + 2)}, ab), tol());
        seed += 3;
      }
      Attrs zero = at;
      zero["beta"] = attr_float(0.0f);
      check_variants(op("Gemm", {rnd(a, seed), rnd(b, seed + 1), rnd({m, n}, seed + 2)}, zero),
                     tol());
    }
}

TEST(LowerLinalgGemm, SizesAndDouble) {
  uint64_t seed = 400;
  for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{{1, 64, 17}, {17, 3, 64}, {1, 1, 1}}) {
    for (int tb : {0, 1}) {
      SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) +
                   " k=" + std::to_string(k) + " transB=" + std::to_string(tb));
      Dims b = tb ? Dims{n, k} : Dims{k, n};
      check_variants(op("Gemm", {rnd({m, k}, seed), rnd(b, seed + 1), rnd({n}, seed + 2)},
                        {{"transB", attr_int(tb)}}),
                     tol());
      seed += 3;
    }
  }
  check_variants(
      op("Gemm",
         {rnd({4, 9}, 1, DType::kF64), rnd({9, 5}, 2, DType::kF64), rnd({1, 5}, 3, DType::kF64)},
         {{"alpha", attr_float(1.5f)}, {"beta", attr_float(0.25f)}}),
      tol(1e-9));
  check_variants(op("Gemm", {rnd({0, 3}), rnd({3, 4}, 2), rnd({4}, 3)}));
  check_variants(op("Gemm", {rnd({2, 0}), rnd({0, 4}, 2), rnd({2, 4}, 3)}));
}

// ---- Conv --------------------------------------------------------------------------------------

struct ConvCase {
  Dims x, w;
  Attrs attrs;
  bool bias = true;
};

void check_conv(const ConvCase& c, uint64_t seed, bool all = false) {
  std::vector<Tensor> in = {rnd(c.x, seed), rnd(c.w, seed + 1)};
  if (c.bias) in.push_back(rnd({c.w[0]}, seed + 2));
  SCOPED_TRACE("X " + dims_str(c.x) + " W " + dims_str(c.w) + (c.bias ? " bias" : ""));
  check_variants(op("Conv", in, c.attrs), tol(), all);
}

TEST(LowerLinalgConv, StridesPadsDilations2D) {
  const std::vector<ConvCase> cases = {
      {{1, 3, 7, 7}, {4, 3, 3, 3}, {}},
      {{2, 3, 9, 8}, {5, 3, 3, 3}, {{"pads", attr_ints({1, 1, 1, 1})}}},
      {{1, 4, 9, 9},
       {3, 4, 3, 3},
       {{"strides", attr_ints({2, 2})}, {"pads", attr_ints({1, 1, 1, 1})}},
       false},
      {{1, 5, 10, 11},
       {6, 5, 3, 2},
       {{"strides", attr_ints({2, 1})},
        {"pads", attr_ints({0, 1, 2, 0})},
        {"dilations", attr_ints({2, 3})}}},
      {{1, 2, 6, 17},
       {9, 2, 2, 4},
       {{"strides", attr_ints({1, 3})}, {"pads", attr_ints({2, 3, 1, 2})}}},
      {{1, 8, 5, 5}, {17, 8, 1, 1}, {}},
      {{2, 6, 4, 7}, {3, 6, 1, 1}, {{"strides", attr_ints({2, 2})}}, false},
      {{1, 3, 3, 3}, {2, 3, 5, 5}, {{"pads", attr_ints({2, 2, 2, 2})}}},
      {{1, 2, 4, 4}, {3, 2, 3, 3}, {{"pads", attr_ints({4, 0, 0, 4})}}},
  };
  uint64_t seed = 500;
  for (const ConvCase& c : cases) check_conv(c, seed += 3, /*all=*/true);
}

TEST(LowerLinalgConv, AutoPad) {
  uint64_t seed = 600;
  for (const char* ap : {"SAME_UPPER", "SAME_LOWER", "VALID"})
    for (int64_t s : {1, 2})
      for (const Dims& w : std::vector<Dims>{{4, 3, 3, 3}, {4, 3, 2, 4}})
        check_conv(
            {{1, 3, 8, 7}, w, {{"auto_pad", attr_string(ap)}, {"strides", attr_ints({s, s})}}},
            seed += 3);
}

TEST(LowerLinalgConv, GroupsAndDepthwise) {
  const std::vector<ConvCase> cases = {
      {{1, 4, 6, 6}, {6, 2, 3, 3}, {{"group", attr_int(2)}, {"pads", attr_ints({1, 1, 1, 1})}}},
      {{2, 8, 5, 7}, {4, 2, 3, 3}, {{"group", attr_int(4)}, {"strides", attr_ints({2, 1})}}},
      {{1, 6, 7, 9}, {6, 1, 3, 3}, {{"group", attr_int(6)}, {"pads", attr_ints({1, 1, 1, 1})}}},
      {{1, 3, 17, 19},
       {3, 1, 3, 3},
       {{"group", attr_int(3)}, {"strides", attr_ints({2, 2})}, {"pads", attr_ints({1, 0, 1, 2})}},
       false},
      {{1, 4, 8, 9},
       {8, 1, 3, 5},
       {{"group", attr_int(4)},
        {"dilations", attr_ints({2, 1})},
        {"pads", attr_ints({2, 2, 2, 2})}}},
      {{1, 2, 5, 6},
       {2, 1, 5, 5},
       {{"group", attr_int(2)}, {"auto_pad", attr_string("SAME_UPPER")}}},
      {{1, 1, 6, 6}, {5, 1, 3, 3}, {{"pads", attr_ints({1, 1, 1, 1})}}},  // one input channel
      {{1, 3, 4, 20}, {3, 1, 1, 17}, {{"group", attr_int(3)}, {"pads", attr_ints({0, 8, 0, 8})}}},
  };
  uint64_t seed = 700;
  for (const ConvCase& c : cases) check_conv(c, seed += 3);
}

TEST(LowerLinalgConv, OneAndThreeDims) {
  const std::vector<ConvCase> cases = {
      {{2, 3, 17}, {4, 3, 3}, {{"pads", attr_ints({1, 1})}}},
      {{1, 2, 1023}, {3, 2, 5}, {{"pads", attr_ints({2, 1})}, {"strides", attr_ints({2})}}},
      {{1, 4, 64}, {2, 4, 5}, {{"strides", attr_ints({3})}, {"dilations", attr_ints({2})}}, false},
      {{1, 4, 9}, {4, 1, 3}, {{"group", attr_int(4)}, {"pads", attr_ints({2, 1})}}},
      {{1, 2, 4, 5, 6}, {3, 2, 2, 3, 3}, {{"pads", attr_ints({1, 1, 0, 0, 1, 1})}}},
      {{1, 4, 3, 4, 5},
       {4, 1, 3, 3, 3},
       {{"group", attr_int(4)},
        {"strides", attr_ints({1, 2, 2})},
        {"pads", attr_ints({1, 1, 1, 1, 1, 1})}}},
  };
  uint64_t seed = 800;
  for (const ConvCase& c : cases) check_conv(c, seed += 3);
}

TEST(LowerLinalgConv, EmptyAndDouble) {
  check_conv({{0, 3, 5, 5}, {2, 3, 3, 3}, {}}, 900);
  check_conv({{1, 3, 5, 5}, {0, 3, 3, 3}, {}, false}, 903);
  std::vector<Tensor> in = {rnd({1, 3, 6, 5}, 1, DType::kF64), rnd({4, 3, 3, 3}, 2, DType::kF64),
                            rnd({4}, 3, DType::kF64)};
  check_variants(op("Conv", in, {{"pads", attr_ints({1, 1, 1, 1})}}), tol(1e-9));
}

// Larger layers through the JIT only (the interpreter is too slow for them).
TEST(LowerLinalgConv, LargeJitOnly) {
  LowerOptions opt = tol(1e-3);
  opt.interp = false;
  EXPECT_TRUE(
      check_lowering(op("Conv", {rnd({1, 64, 28, 28}), rnd({64, 64, 3, 3}, 2), rnd({64}, 3)},
                        {{"pads", attr_ints({1, 1, 1, 1})}}),
                     opt));
  EXPECT_TRUE(check_lowering(op("Conv", {rnd({1, 32, 29, 30}), rnd({32, 1, 3, 3}, 2)},
                                {{"group", attr_int(32)},
                                 {"strides", attr_ints({2, 2})},
                                 {"pads", attr_ints({1, 1, 1, 1})}}),
                             opt));
  opt.dynamic = true;
  EXPECT_TRUE(check_lowering(op("MatMul", {rnd({2, 67, 300}), rnd({300, 129}, 2)}), opt));
  EXPECT_TRUE(check_lowering(op("MatMul", {rnd({3, 1023}), rnd({1023, 1023}, 2)}), opt));
  EXPECT_TRUE(check_lowering(
      op("Gemm", {rnd({5, 1023}), rnd({1023, 1023}, 2), rnd({1023}, 3)}, {{"transB", attr_int(1)}}),
      opt));
}

// ---- Benchmark (disabled; run with --gtest_also_run_disabled_tests)
// ------------------------------

// Lowers `call` with immediate dims and times its JIT kernel on one thread; returns GFLOPS.
double gflops(const OpCall& call, double flops) {
  auto graph = make_op_graph(call);
  const ir::Node& node = graph->nodes[0];
  std::vector<Tensor> expected = run_op(call);
  std::vector<std::optional<kernels::TensorArg>> inputs;
  std::vector<const Tensor*> constants;
  for (const Tensor& t : call.inputs) {
    inputs.push_back(kernels::TensorArg::fixed(*jit::scalar_type_of(t.dtype()), t.dims()));
    constants.push_back(nullptr);
  }
  std::vector<kernels::TensorArg> outputs = {
      kernels::TensorArg::fixed(*jit::scalar_type_of(expected[0].dtype()), expected[0].dims())};
  kernels::LowerContext ctx(node, inputs, outputs, constants, kernels::Schedule::for_host());
  auto kernel = (*kernels::Lowerings::global().find("", call.op))(ctx);
  if (!kernel) return 0;
  auto lookup = jit::KernelCache::global().get(*kernel, "");
  Tensor y(expected[0].dtype(), expected[0].dims());
  std::vector<void*> ptrs;
  for (const Tensor& t : call.inputs) ptrs.push_back(const_cast<void*>(t.raw_data()));
  ptrs.push_back(y.raw_data());
  devices::Cpu cpu(1);
  double best = 1e30;
  for (int rep = 0; rep < 10; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    cpu.execute([&] { lookup.kernel->fn()(ptrs.data(), nullptr); });
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  EXPECT_TRUE(tensors_near(y, expected[0], 1e-2, 1e-3));
  return flops / best * 1e-9;
}

TEST(LowerLinalgBench, DISABLED_SingleThreadGflops) {
  for (int64_t n : {256, 512, 1000, 1024}) {
    double g = gflops(op("MatMul", {rnd({n, n}), rnd({n, n}, 2)}), 2.0 * n * n * n);
    std::printf("MatMul %ld^3: %.1f GFLOPS\n", long(n), g);
  }
  for (int64_t m : {1, 64}) {
    double g = gflops(op("Gemm", {rnd({m, 2048}), rnd({1000, 2048}, 2), rnd({1000}, 3)},
                         {{"transB", attr_int(1)}}),
                      2.0 * m * 1000 * 2048);
    std::printf("Gemm transB %ldx2048 * 2048x1000: %.1f GFLOPS\n", long(m), g);
  }
  struct Layer {
    const char* name;
    Dims x, w;
    Attrs attrs;
  };
  const std::vector<Layer> layers = {
      {"ResNet 3x3 64->64 56x56",
       {1, 64, 56, 56},
       {64, 64, 3, 3},
       {{"pads", attr_ints({1, 1, 1, 1})}}},
      {"ResNet 3x3 256->256 14x14",
       {1, 256, 14, 14},
       {256, 256, 3, 3},
       {{"pads", attr_ints({1, 1, 1, 1})}}},
      {"1x1 128->256 28x28", {1, 128, 28, 28}, {256, 128, 1, 1}, {}},
      {"ResNet stem 7x7/2 3->64 224x224",
       {1, 3, 224, 224},
       {64, 3, 7, 7},
       {{"pads", attr_ints({3, 3, 3, 3})}, {"strides", attr_ints({2, 2})}}},
      {"depthwise 3x3 128 56x56",
       {1, 128, 56, 56},
       {128, 1, 3, 3},
       {{"group", attr_int(128)}, {"pads", attr_ints({1, 1, 1, 1})}}},
  };
  for (const Layer& l : layers) {
    OpCall c = op("Conv", {rnd(l.x), rnd(l.w, 2), rnd({l.w[0]}, 3)}, l.attrs);
    auto out = run_op(c);
    double macs = double(out[0].numel()) * double(l.w[1] * l.w[2] * l.w[3]);
    std::printf("Conv %s: %.1f GFLOPS\n", l.name, gflops(c, 2 * macs));
  }
}

}  // namespace
}  // namespace kiln::testing
