// The blocked NCHWc layout of level-3 plans (engine/layout.h) against the reference kernels, on
// random CNNs that hold every kind of step the layout touches: a stem convolution reading NCHW,
// max and average pools, squeeze/expand convolutions joined by a channel Concat, a residual
// convolution, a depthwise convolution, a global average pool ending the chain, and blocked
// values that NCHW readers (an elementwise op, a graph output) need too. Channel counts are
// random, so blocks are often ragged and some concats cannot stay blocked.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <random>

#include "kernels/fast/gemm.h"
#include "kiln/kiln.h"
#include "model_builder.h"
#include "op_test_util.h"

namespace kiln {
namespace {

constexpr int32_t kF = onnx::TensorProto::FLOAT;

using testing::session_at_level;

struct Net {
  int64_t n, c0, h, w, c1, c2, e, c4;
  int64_t pool_pad;
  bool include_pad;
};

onnx::NodeProto& conv(dev::ModelBuilder& m, const std::string& x, const std::string& y, int64_t cin,
                      int64_t cout, int64_t k, int64_t stride, int64_t pad, int64_t group,
                      std::mt19937& rng) {
  const std::string w = y + "_w", b = y + "_b";
  m.init_random(w, {cout, cin / group, k, k}, 0.4f, rng());
  m.init_random(b, {cout}, 0.2f, rng());
  auto& node = m.node("Conv", {x, w, b}, {y});
  dev::ModelBuilder::set_ints(node, "kernel_shape", {k, k});
  dev::ModelBuilder::set_ints(node, "strides", {stride, stride});
  dev::ModelBuilder::set_ints(node, "pads", {pad, pad, pad, pad});
  dev::ModelBuilder::set_int(node, "group", group);
  return node;
}

std::string build(const Net& t, std::mt19937& rng, Dims* feat_dims) {
  dev::ModelBuilder m(13);
  m.input("x", kF, {t.n, t.c0, t.h, t.w});
  conv(m, "x", "c1", t.c0, t.c1, 3, 2, 1, 1, rng);
  m.node("Relu", {"c1"}, {"r1"});
  auto& mp = m.node("MaxPool", {"r1"}, {"p1"});
  dev::ModelBuilder::set_ints(mp, "kernel_shape", {3, 3});
  dev::ModelBuilder::set_ints(mp, "strides", {2, 2});
  dev::ModelBuilder::set_ints(mp, "pads", {t.pool_pad, t.pool_pad, t.pool_pad, t.pool_pad});
  conv(m, "p1", "sq", t.c1, t.c2, 1, 1, 0, 1, rng);
  m.node("Relu", {"sq"}, {"feat"});  // a blocked value that is also a graph output
  conv(m, "feat", "ea", t.c2, t.e, 1, 1, 0, 1, rng);
  m.node("Relu", {"ea"}, {"ra"});
  conv(m, "feat", "eb", t.c2, t.e, 3, 1, 1, 1, rng);
  m.node("Relu", {"eb"}, {"rb"});
  m.node("Sigmoid", {"ra"}, {"side"});  // an NCHW reader of a blocked value
  auto& cat = m.node("Concat", {"ra", "rb"}, {"cat"});
  dev::ModelBuilder::set_int(cat, "axis", 1);
  conv(m, "cat", "down", 2 * t.e, t.c4, 1, 1, 0, 1, rng);
  conv(m, "cat", "body", 2 * t.e, t.c4, 3, 1, 1, 1, rng);
  m.node("Add", {"body", "down"}, {"sum"});
  m.node("Relu", {"sum"}, {"rs"});
  auto& ap = m.node("AveragePool", {"rs"}, {"ap"});
  dev::ModelBuilder::set_ints(ap, "kernel_shape", {3, 3});
  dev::ModelBuilder::set_ints(ap, "strides", {1, 1});
  dev::ModelBuilder::set_ints(ap, "pads", {1, 1, 1, 1});
  dev::ModelBuilder::set_int(ap, "count_include_pad", t.include_pad ? 1 : 0);
  conv(m, "ap", "dw", t.c4, t.c4, 3, 1, 1, t.c4, rng);
  m.init_f32("lo", {}, {0.0f});
  m.init_f32("hi", {}, {6.0f});
  m.node("Clip", {"dw", "lo", "hi"}, {"act"});
  m.node("GlobalAveragePool", {"act"}, {"gap"});
  m.node("Flatten", {"gap"}, {"y"});

  const int64_t h1 = (t.h + 2 - 3) / 2 + 1, w1 = (t.w + 2 - 3) / 2 + 1;
  const int64_t h2 = (h1 + 2 * t.pool_pad - 3) / 2 + 1, w2 = (w1 + 2 * t.pool_pad - 3) / 2 + 1;
  *feat_dims = {t.n, t.c2, h2, w2};
  m.output("y", kF, {t.n, t.c4});
  m.output("feat", kF, {t.n, t.c2, h2, w2});
  m.output("side", kF, {t.n, t.e, h2, w2});
  return m.serialize();
}

void expect_close(const TensorMap& got, const TensorMap& want) {
  testing::expect_outputs_near(got, want, 1e-4);
}

TEST(Layout, BlockedCnnChainsMatchTheReference) {
  std::mt19937 rng(2024);
  // The first net's channels fill whole blocks (everything can stay blocked); the rest are random.
  std::vector<Net> nets = {{1, 3, 41, 45, 32, 16, 32, 48, 0, false}};
  for (int i = 0; i < 5; ++i)
    nets.push_back({1 + int64_t(rng() % 2), 1 + int64_t(rng() % 5), 15 + int64_t(rng() % 20),
                    15 + int64_t(rng() % 20), 4 + int64_t(rng() % 40), 3 + int64_t(rng() % 30),
                    3 + int64_t(rng() % 40), 5 + int64_t(rng() % 50), int64_t(rng() % 2),
                    rng() % 2 == 0});
  for (const Net& t : nets) {
    SCOPED_TRACE("net c0 " + std::to_string(t.c0) + " c1 " + std::to_string(t.c1) + " c2 " +
                 std::to_string(t.c2) + " e " + std::to_string(t.e) + " c4 " +
                 std::to_string(t.c4));
    Dims feat;
    const std::string bytes = build(t, rng, &feat);
    Session blocked = session_at_level(bytes, true), ref = session_at_level(bytes, false);
    const TensorMap in = {
        {"x", testing::random_tensor(DType::kF32, {t.n, t.c0, t.h, t.w}, -1, 1, rng())}};
    const TensorMap want = ref.run(in);
    for (int rep = 0; rep < 2; ++rep) expect_close(blocked.run(in), want);

    const std::string plan = testing::plan_text(blocked, {{"x", {t.n, t.c0, t.h, t.w}}});
    EXPECT_NE(plan.find("nchwc from-nchw"), std::string::npos) << plan;  // the stem
    // The stem's maxpool runs blocked, on its own or fused with the stem conv it alone reads.
    EXPECT_TRUE(plan.find("maxpool nchwc") != std::string::npos ||
                plan.find("+maxpool") != std::string::npos)
        << plan;
    EXPECT_NE(plan.find("nchwc-depthwise"), std::string::npos) << plan;
    EXPECT_NE(plan.find("globalaveragepool nchwc"), std::string::npos) << plan;
    EXPECT_NE(plan.find("reorder nchwc -> nchw"), std::string::npos) << plan;  // feat, side
    if (&t == &nets[0]) {
      // One image: the concat inputs are written into its output, with no copy step.
      EXPECT_NE(plan.find("(into a concat)"), std::string::npos) << plan;
      EXPECT_EQ(plan.find("concat nchwc"), std::string::npos) << plan;
      EXPECT_NE(plan.find("nchwc-winograd-f2x2"), std::string::npos) << plan;  // eb, body
      EXPECT_NE(plan.find("averagepool nchwc"), std::string::npos) << plan;
    }
  }
}

// A convolution whose input is also its residual, x + conv(x), with x blocked (another
// convolution made it and this one reads it) and its own output NCHW (only a graph output reads
// it): the residual must come from an NCHW copy of x.
TEST(Layout, InputThatIsAlsoTheResidualOfAnNchwOutput) {
  std::mt19937 rng(5);
  dev::ModelBuilder m(13);
  m.input("x", kF, {1, 20, 9, 11});
  conv(m, "x", "a", 20, 20, 3, 1, 1, 1, rng);
  conv(m, "a", "b", 20, 20, 3, 1, 1, 1, rng);
  m.node("Add", {"b", "a"}, {"s"});
  m.node("Relu", {"s"}, {"y"});
  m.output("y", kF, {1, 20, 9, 11});
  const std::string bytes = m.serialize();
  const TensorMap in = {{"x", testing::random_tensor(DType::kF32, {1, 20, 9, 11}, -1, 1, rng())}};
  Session blocked = session_at_level(bytes, true);
  const std::string plan = testing::plan_text(blocked, {{"x", {1, 20, 9, 11}}});
  EXPECT_NE(plan.find("+residual+relu"), std::string::npos) << plan;
  EXPECT_NE(plan.find("to-nchw"), std::string::npos) << plan;
  expect_close(blocked.run(in), session_at_level(bytes, false).run(in));
}

// Elementwise steps between convolutions run blocked: x * tanh(x), a per-channel bias (read NCHW,
// in its own layout) and a scalar scale on one convolution's output, and the product of two
// convolutions; an elementwise step reading a graph input (NCHW) stays NCHW. No reorder runs
// between the convolutions, and the padding lanes of ragged blocks stay harmless.
TEST(Layout, ElementwiseStepsBetweenConvolutionsRunBlocked) {
  std::mt19937 rng(31);
  for (int64_t c : {13, 16, 20}) {
    SCOPED_TRACE("channels " + std::to_string(c));
    dev::ModelBuilder m(13);
    m.input("x", kF, {2, 5, 9, 11});
    m.input("gate", kF, {2, c, 9, 11});
    conv(m, "x", "a", 5, c, 3, 1, 1, 1, rng);
    m.node("Tanh", {"a"}, {"ta"});
    m.node("Mul", {"a", "ta"}, {"xt"});
    m.init_random("bias", {1, c, 1, 1}, 0.5f, rng());
    m.node("Add", {"xt", "bias"}, {"biased"});
    m.init_f32("scale", {}, {0.5f});
    m.node("Mul", {"biased", "scale"}, {"scaled"});
    conv(m, "scaled", "b", c, c, 3, 1, 1, 1, rng);
    conv(m, "scaled", "d", c, c, 1, 1, 0, 1, rng);
    m.node("Mul", {"b", "d"}, {"prod"});
    conv(m, "prod", "e", c, 7, 1, 1, 0, 1, rng);
    m.node("Mul", {"d", "gate"}, {"gated"});
    m.output("e", kF, {2, 7, 9, 11});
    m.output("gated", kF, {2, c, 9, 11});
    const std::string bytes = m.serialize();
    const TensorMap in = {
        {"x", testing::random_tensor(DType::kF32, {2, 5, 9, 11}, -1, 1, rng())},
        {"gate", testing::random_tensor(DType::kF32, {2, c, 9, 11}, -1, 1, rng())}};
    Session blocked = session_at_level(bytes, true);
    const std::string plan =
        testing::plan_text(blocked, {{"x", {2, 5, 9, 11}}, {"gate", {2, c, 9, 11}}});
    EXPECT_NE(plan.find("(Tanh+Mul+Add+Mul): jit"), std::string::npos) << plan;
    EXPECT_EQ(testing::count_of(plan, "nchwc  ->"), 2u)
        << plan;  // the chain and b * d; d * gate stays NCHW
    EXPECT_EQ(testing::count_of(plan, "reorder"), 1u) << plan;  // d to NCHW for d * gate
    const TensorMap want = session_at_level(bytes, false).run(in);
    for (int rep = 0; rep < 2; ++rep) expect_close(blocked.run(in), want);
  }
}

// Blocks of 8 (AVX2 and generic kernels) as well as 16: the plan's block follows the dispatch
// level current when it is built.
TEST(Layout, BlocksOfEightMatchTheReference) {
  namespace fast = kernels::fast;
  fast::set_simd_level_for_testing(-1);
  if (fast::simd_level() < 2) GTEST_SKIP() << "no AVX2 on this CPU: blocks are 8 already";
  std::mt19937 rng(99);
  const Net t{1, 3, 23, 17, 16, 8, 24, 20, 1, false};
  Dims feat;
  const std::string bytes = build(t, rng, &feat);
  const TensorMap in = {
      {"x", testing::random_tensor(DType::kF32, {t.n, t.c0, t.h, t.w}, -1, 1, rng())}};
  const TensorMap want = session_at_level(bytes, false).run(in);
  fast::set_simd_level_for_testing(2);
  Session blocked = session_at_level(bytes, true);
  const std::string plan = testing::plan_text(blocked, {{"x", {t.n, t.c0, t.h, t.w}}});
  const TensorMap got = blocked.run(in);
  fast::set_simd_level_for_testing(-1);
  EXPECT_NE(plan.find("(into a concat)"), std::string::npos) << plan;  // 24 channels: 3 blocks
  EXPECT_NE(plan.find(",8]"), std::string::npos) << plan;
  expect_close(got, want);
}

TEST(Layout, EveryLevelAgreesOnABlockedNet) {
  std::mt19937 rng(77);
  const Net t{2, 3, 21, 19, 24, 12, 20, 36, 1, true};
  Dims feat;
  const std::string bytes = build(t, rng, &feat);
  const TensorMap in = {
      {"x", testing::random_tensor(DType::kF32, {t.n, t.c0, t.h, t.w}, -1, 1, rng())}};
  const TensorMap want = session_at_level(bytes, false).run(in);
  for (int level = 0; level <= 3; ++level) {
    SCOPED_TRACE("level " + std::to_string(level));
    expect_close(session_at_level(bytes, true, level).run(in), want);
  }
}

// MobileNet's inverted residual: a 1x1 expand conv whose output only a depthwise conv reads
// runs with it as one step (fast::ConvDwNchwc), on 1 thread and 2, for a small expanded tensor
// (which one thread runs apart) and a large one, with stride 1 and 2.
TEST(Layout, ExpandAndDepthwiseRunAsOneStep) {
  std::mt19937 rng(31);
  struct Case {
    int64_t c, h, w, e, stride;
  };
  for (const Case& t : {Case{16, 30, 29, 96, 1}, Case{24, 90, 85, 144, 2}}) {
    SCOPED_TRACE("expand " + std::to_string(t.e) + " at " + std::to_string(t.h) + "x" +
                 std::to_string(t.w) + " stride " + std::to_string(t.stride));
    dev::ModelBuilder m(13);
    m.input("x", kF, {1, t.c, t.h, t.w});
    m.init_f32("lo", {}, {0.0f});
    m.init_f32("hi", {}, {6.0f});
    conv(m, "x", "ex", t.c, t.e, 1, 1, 0, 1, rng);
    m.node("Clip", {"ex", "lo", "hi"}, {"exa"});
    conv(m, "exa", "dw", t.e, t.e, 3, t.stride, 1, t.e, rng);
    m.node("Clip", {"dw", "lo", "hi"}, {"dwa"});
    conv(m, "dwa", "pr", t.e, t.c, 1, 1, 0, 1, rng);
    const int64_t oh = (t.h - 1) / t.stride + 1, ow = (t.w - 1) / t.stride + 1;
    m.output("pr", kF, {1, t.c, oh, ow});
    const std::string bytes = m.serialize();
    const TensorMap in = {
        {"x", testing::random_tensor(DType::kF32, {1, t.c, t.h, t.w}, -1, 1, rng())}};
    const TensorMap want = session_at_level(bytes, false).run(in);
    for (int threads : {1, 2}) {
      SessionOptions o;
      o.intra_op_threads = threads;
      Session s = testing::session_from_bytes(bytes, o);
      const std::string plan = testing::plan_text(s, {{"x", {1, t.c, t.h, t.w}}});
      EXPECT_NE(plan.find("+depthwise 3x3/" + std::to_string(t.stride)), std::string::npos) << plan;
      for (int rep = 0; rep < 2; ++rep) expect_close(s.run(in), want);
    }
  }
}

}  // namespace
}  // namespace kiln
