// Fused plan steps against the reference kernels, on random shapes: elementwise chains in one
// loop nest, Conv/MatMul/Gemm with their epilogues on the native kernels, and attention read
// through strided Split/Reshape/Transpose views. Each model runs at optimization level 3 and
// with the JIT off (the reference executor), and the plan must show the fusion it tests.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <iostream>
#include <random>

#include "kiln/kiln.h"
#include "model_builder.h"
#include "op_test_util.h"

namespace kiln {
namespace {

constexpr int32_t kF = onnx::TensorProto::FLOAT;
constexpr int32_t kB = onnx::TensorProto::BOOL;

using testing::session_at_level;

using testing::plan_text;

// Runs `bytes` on `inputs` fused and on the reference kernels; outputs must agree to `tol`
// relative to the output's magnitude.
void expect_same(const std::string& bytes, const TensorMap& inputs, double tol = 2e-5) {
  Session fused = session_at_level(bytes, true), ref = session_at_level(bytes, false);
  TensorMap want = ref.run(inputs);
  for (int rep = 0; rep < 2; ++rep)  // the second run reuses the pooled arena
    testing::expect_outputs_near(fused.run(inputs), want, tol);
}

TEST(Fusion, ElementwiseChainsWithBroadcastsMatchTheReference) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 6; ++trial) {
    const int64_t a = 1 + rng() % 5, b = 1 + rng() % 19, c = 1 + rng() % 33;
    dev::ModelBuilder m(17);
    m.input("x", kF, {a, b, c});
    m.input("row", kF, {c});     // broadcast along the last dim
    m.input("col", kF, {b, 1});  // broadcast along the middle dim
    m.output("y", kF, {a, b, c});
    m.node("Mul", {"x", "row"}, {"t0"});
    m.node("Add", {"t0", "col"}, {"t1"});
    m.node("Tanh", {"t1"}, {"t2"});
    m.node("Sub", {"t2", "x"}, {"t3"});
    m.node("Sigmoid", {"t3"}, {"t4"});
    m.node("Div", {"t4", "row"}, {"y"});
    std::string bytes = m.serialize();
    Session s = session_at_level(bytes, true);
    std::string plan = plan_text(s, {{"x", {a, b, c}}, {"row", {c}}, {"col", {b, 1}}});
    EXPECT_NE(plan.find("(Mul+Add+Tanh+Sub+Sigmoid+Div): jit"), std::string::npos) << plan;
    TensorMap in = {{"x", testing::random_tensor(DType::kF32, {a, b, c}, -2, 2, rng())},
                    {"row", testing::random_tensor(DType::kF32, {c}, 0.5, 2, rng())},
                    {"col", testing::random_tensor(DType::kF32, {b, 1}, -1, 1, rng())}};
    expect_same(bytes, in);
  }
}

// Elementwise producers computed in their consumer's loads: chains into a reduction, a
// transpose, a concat and a slice, one node into a softmax; a chain whose output is also a graph
// output stays a step of its own.
std::string producer_model(int64_t a, int64_t b, int64_t c, bool symbolic) {
  dev::ModelBuilder m(17);
  std::vector<int64_t> dims = {a, b, c};
  std::vector<std::string> syms;
  if (symbolic) {
    dims = {-1, -1, c};
    syms = {"A", "B"};
  }
  m.input("x", kF, dims, syms);
  m.input("row", kF, {c});
  m.init_i64("axes", {1}, {1});
  m.node("Mul", {"x", "row"}, {"m0"});
  m.node("Sigmoid", {"m0"}, {"m1"});
  m.node("ReduceSum", {"m1", "axes"}, {"sum"});
  m.node("Add", {"x", "row"}, {"a0"});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"a0"}, {"tr"}), "perm", {2, 0, 1});
  m.node("Exp", {"x"}, {"e0"});
  m.node("Softmax", {"e0"}, {"sm"});
  m.node("Relu", {"x"}, {"r0"});
  m.node("Neg", {"r0"}, {"r1"});
  dev::ModelBuilder::set_int(m.node("Concat", {"x", "r1"}, {"cat"}), "axis", 0);
  m.node("Sub", {"x", "row"}, {"s0"});
  m.init_i64("starts", {1}, {1});
  m.init_i64("ends", {1}, {c});
  m.init_i64("slice_axes", {1}, {2});
  m.node("Slice", {"s0", "starts", "ends", "slice_axes"}, {"sl"});
  m.node("Tanh", {"x"}, {"kept"});
  dev::ModelBuilder::set_ints(m.node("ReduceMax", {"kept"}, {"max"}), "axes", {1});
  for (const char* out : {"sum", "tr", "sm", "cat", "sl", "kept", "max"})
    m.output_untyped_shape(out, kF);
  return m.serialize();
}

TEST(Fusion, ProducerChainsRunInTheirConsumersLoads) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 4; ++trial) {
    const int64_t a = 1 + rng() % 4, b = 1 + rng() % 9, c = 2 + rng() % 40;
    const bool symbolic = trial % 2 == 1;
    std::string bytes = producer_model(a, b, c, symbolic);
    SessionOptions o;
    o.optimization_level = 3;
    if (symbolic) o.specialization = Specialization::kDynamic;
    Session s = testing::session_from_bytes(bytes, o);
    std::string plan = plan_text(s, {{"x", {a, b, c}}, {"row", {c}}});
    for (const char* fused :
         {"(Mul+Sigmoid+ReduceSum): jit", "(Add+Transpose): jit", "(Exp+Softmax): jit",
          "(Relu+Neg+Concat): jit", "(Sub+Slice): jit", "(Tanh): jit", "(ReduceMax): jit"})
      EXPECT_NE(plan.find(fused), std::string::npos) << fused << "\n" << plan;
    TensorMap in = {{"x", testing::random_tensor(DType::kF32, {a, b, c}, -2, 2, rng())},
                    {"row", testing::random_tensor(DType::kF32, {c}, 0.5, 2, rng())}};
    Session ref = session_at_level(bytes, false);
    TensorMap want = ref.run(in);
    for (int rep = 0; rep < 2; ++rep) testing::expect_outputs_near(s.run(in), want, 2e-5);
  }
}

// Transposes of Transposes and chains of views collapse when the plan is specialized: composed
// permutations run as one kernel, and a pair that cancels runs as none.
TEST(Fusion, TransposeChainsCollapseAtSpecialization) {
  dev::ModelBuilder m(17);
  m.input("x", kF, {-1, 5, 6}, {"n"});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"x"}, {"t0"}), "perm", {1, 2, 0});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"t0"}, {"t1"}), "perm", {1, 2, 0});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"x"}, {"u0"}), "perm", {2, 0, 1});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"u0"}, {"u1"}), "perm", {1, 2, 0});
  m.node("Sigmoid", {"u1"}, {"v"});
  m.init_i64("axes", {1}, {0});
  m.node("Unsqueeze", {"v", "axes"}, {"w0"});
  m.node("Flatten", {"w0"}, {"w"});
  m.output_untyped_shape("t1", kF);
  m.output_untyped_shape("w", kF);
  std::string bytes = m.serialize();
  Session s = session_at_level(bytes, true);
  std::string plan = plan_text(s, {{"x", {3, 5, 6}}});
  EXPECT_EQ(testing::count_of(plan, "(Transpose)"), 1u) << plan;
  EXPECT_EQ(plan.find("(Unsqueeze)"), std::string::npos) << plan;
  EXPECT_NE(plan.find("(Sigmoid): jit"), std::string::npos) << plan;
  for (int64_t n : {1, 3, 8})
    expect_same(bytes, {{"x", testing::random_tensor(DType::kF32, {n, 5, 6}, -2, 2, n)}});
}

TEST(Fusion, ConvEpiloguesMatchTheReference) {
  std::mt19937 rng(11);
  struct Case {
    int64_t n, c, h, w, k, r, stride, pad, group;
    const char* act;
  };
  const Case cases[] = {
      {1, 3, 17, 13, 8, 3, 1, 1, 1, "Relu"},         {2, 16, 9, 11, 16, 3, 2, 1, 16, "Clip"},
      {1, 8, 7, 7, 24, 1, 1, 0, 1, "Sigmoid"},       {1, 6, 15, 10, 12, 5, 2, 2, 2, "HardSwish"},
      {2, 5, 9, 12, 20, 3, 1, 1, 1, "SiLU"},  // s * Sigmoid(s)
      {1, 5, 9, 12, 16, 3, 1, 1, 1, "SiLUreversed"}, {3, 4, 8, 8, 4, 3, 1, 1, 1, ""}};
  for (const Case& k : cases) {
    const int64_t oh = (k.h + 2 * k.pad - k.r) / k.stride + 1;
    const int64_t ow = (k.w + 2 * k.pad - k.r) / k.stride + 1;
    dev::ModelBuilder m(14);
    m.input("x", kF, {k.n, k.c, k.h, k.w});
    m.input("res", kF, {k.n, k.k, oh, ow});
    m.output("y", kF, {k.n, k.k, oh, ow});
    m.init_random("w", {k.k, k.c / k.group, k.r, k.r}, 0.5f, rng());
    m.init_random("b", {k.k}, 0.5f, rng());
    auto& conv = m.node("Conv", {"x", "w", "b"}, {"c"});
    dev::ModelBuilder::set_ints(conv, "kernel_shape", {k.r, k.r});
    dev::ModelBuilder::set_ints(conv, "strides", {k.stride, k.stride});
    dev::ModelBuilder::set_ints(conv, "pads", {k.pad, k.pad, k.pad, k.pad});
    dev::ModelBuilder::set_int(conv, "group", k.group);
    std::string act = k.act;
    m.node("Add", {"c", "res"}, {act.empty() ? "y" : "s"});
    if (act == "Clip") {
      m.init_f32("lo", {}, {0.0f});
      m.init_f32("hi", {}, {6.0f});
      m.node("Clip", {"s", "lo", "hi"}, {"y"});
    } else if (act.rfind("SiLU", 0) == 0) {
      m.node("Sigmoid", {"s"}, {"sig"});
      m.node("Mul",
             act == "SiLU" ? std::vector<std::string>{"s", "sig"}
                           : std::vector<std::string>{"sig", "s"},
             {"y"});
    } else if (!act.empty()) {
      m.node(act, {"s"}, {"y"});
    }
    std::string bytes = m.serialize();
    Session s = session_at_level(bytes, true);
    std::string plan = plan_text(s, {{"x", {k.n, k.c, k.h, k.w}}, {"res", {k.n, k.k, oh, ow}}});
    EXPECT_NE(plan.find("native conv"), std::string::npos) << plan;
    if (std::getenv("KILN_TEST_VERBOSE")) std::cerr << plan;
    EXPECT_NE(plan.find("+residual"), std::string::npos) << plan;
    if (act.rfind("SiLU", 0) == 0) {
      EXPECT_NE(plan.find("(Conv+Add+Sigmoid+Mul): native conv"), std::string::npos) << plan;
    }
    TensorMap in = {{"x", testing::random_tensor(DType::kF32, {k.n, k.c, k.h, k.w}, -1, 1, rng())},
                    {"res", testing::random_tensor(DType::kF32, {k.n, k.k, oh, ow}, -1, 1, rng())}};
    expect_same(bytes, in, 1e-4);
  }
}

TEST(Fusion, MatMulAndGemmEpiloguesMatchTheReference) {
  std::mt19937 rng(13);
  for (int64_t rows : {1, 3, 17, 64}) {
    const int64_t k = 1 + rng() % 70, n = 1 + rng() % 90;
    dev::ModelBuilder m(20);
    m.input("a", kF, {2, rows, k});
    m.input("res", kF, {2, rows, n});
    m.output("y", kF, {2, rows, n});
    m.output("z", kF, {rows, n});
    m.init_random("w", {k, n}, 0.5f, rng());
    m.init_random("bias", {n}, 0.5f, rng());
    m.node("MatMul", {"a", "w"}, {"mm"});
    m.node("Add", {"mm", "bias"}, {"mb"});
    m.node("Add", {"mb", "res"}, {"ms"});
    m.node("Gelu", {"ms"}, {"y"});
    // Gemm with transB, alpha, beta and a bias, then LeakyRelu.
    m.init_random("wt", {n, k}, 0.5f, rng());
    m.node("Reshape", {"a", "shape"}, {"a2"});
    m.init_i64("shape", {2}, {-1, k});
    m.node("Slice", {"a2", "s0", "s1"}, {"a3"});
    m.init_i64("s0", {1}, {0});
    m.init_i64("s1", {1}, {rows});
    auto& gemm = m.node("Gemm", {"a3", "wt", "bias"}, {"g"});
    dev::ModelBuilder::set_int(gemm, "transB", 1);
    dev::ModelBuilder::set_float(gemm, "alpha", 0.75f);
    dev::ModelBuilder::set_float(gemm, "beta", 1.5f);
    m.node("LeakyRelu", {"g"}, {"z"});
    std::string bytes = m.serialize();
    Session s = session_at_level(bytes, true);
    std::string plan = plan_text(s, {{"a", {2, rows, k}}, {"res", {2, rows, n}}});
    EXPECT_NE(plan.find("+bias+residual+gelu"), std::string::npos) << plan;
    EXPECT_NE(plan.find("+bias+leakyrelu"), std::string::npos) << plan;
    TensorMap in = {{"a", testing::random_tensor(DType::kF32, {2, rows, k}, -1, 1, rng())},
                    {"res", testing::random_tensor(DType::kF32, {2, rows, n}, -1, 1, rng())}};
    expect_same(bytes, in, 1e-4);
  }
}

// A transformer attention block as exported by PyTorch: one QKV projection, Split, per-head
// Reshape/Transpose, scaled scores, a mask, Softmax, the weighted sum and the merge of heads.
// With `head_dim_outer`, Q's head dim is not contiguous (Q is split as [b, s, d, heads]): the
// kernel's strided row path instead of its GEMM path.
std::string attention_model(int64_t b, int64_t s, int64_t heads, int64_t d, const std::string& mask,
                            uint64_t seed, bool head_dim_outer = false) {
  const int64_t hid = heads * d;
  dev::ModelBuilder m(17);
  m.input("x", kF, {b, s, hid});
  m.output("y", kF, {b, s, hid});
  m.init_random("wqkv", {hid, 3 * hid}, 0.3f, seed);
  m.init_random("bqkv", {3 * hid}, 0.3f, seed + 1);
  m.node("MatMul", {"x", "wqkv"}, {"qkv0"});
  m.node("Add", {"qkv0", "bqkv"}, {"qkv"});
  m.init_i64("split", {3}, {hid, hid, hid});
  auto& split = m.node("Split", {"qkv", "split"}, {"q", "k", "v"});
  dev::ModelBuilder::set_int(split, "axis", 2);
  m.init_i64("heads_shape", {4}, {b, s, heads, d});
  for (const char* t : {"q", "k", "v"})
    m.node("Reshape", {t, "heads_shape"}, {std::string(t) + "4"});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"q4"}, {"qt"}), "perm", {0, 2, 1, 3});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"k4"}, {"kt"}), "perm", {0, 2, 3, 1});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"v4"}, {"vt"}), "perm", {0, 2, 1, 3});
  m.node("MatMul", {"qt", "kt"}, {"scores"});
  m.init_f32("scale", {}, {float(std::sqrt(double(d)))});
  m.node("Div", {"scores", "scale"}, {"scaled"});
  std::string pre = "scaled";
  if (mask == "causal") {
    std::vector<int64_t> dims = {s, s};
    auto& t = *m.proto().mutable_graph()->add_initializer();
    t.set_name("causal");
    t.set_data_type(kB);
    for (int64_t x : dims) t.add_dims(x);
    for (int64_t i = 0; i < s; ++i)
      for (int64_t j = 0; j < s; ++j) t.add_int32_data(j <= i ? 1 : 0);
    m.init_f32("neg", {}, {-1e9f});
    m.node("Where", {"causal", "scaled", "neg"}, {"masked"});
    pre = "masked";
  } else if (mask == "additive") {
    m.input("mask", kF, {b, 1, 1, s});
    m.node("Add", {"scaled", "mask"}, {"masked"});
    pre = "masked";
  }
  auto& sm = m.node("Softmax", {pre}, {"p"});
  dev::ModelBuilder::set_int(sm, "axis", -1);
  m.node("MatMul", {"p", "vt"}, {"o"});
  dev::ModelBuilder::set_ints(m.node("Transpose", {"o"}, {"ot"}), "perm", {0, 2, 1, 3});
  m.init_i64("merged", {3}, {b, s, hid});
  m.node("Reshape", {"ot", "merged"}, {"y"});
  return m.serialize();
}

TEST(Fusion, AttentionMatchesTheReference) {
  std::mt19937 rng(17);
  struct Case {
    int64_t b, s, heads, d;
    const char* mask;
  };
  const Case cases[] = {{1, 1, 4, 64, "causal"},
                        {1, 7, 2, 16, "causal"},
                        {2, 33, 3, 8, ""},
                        {3, 17, 1, 5, "additive"},
                        {1, 64, 4, 64, "causal"}};
  for (const Case& c : cases) {
    std::string bytes = attention_model(c.b, c.s, c.heads, c.d, c.mask, rng());
    TensorMap in = {
        {"x", testing::random_tensor(DType::kF32, {c.b, c.s, c.heads * c.d}, -1, 1, rng())}};
    std::map<std::string, Dims> shapes = {{"x", {c.b, c.s, c.heads * c.d}}};
    if (std::string(c.mask) == "additive") {
      in["mask"] = testing::random_tensor(DType::kF32, {c.b, 1, 1, c.s}, -3, 0, rng());
      shapes["mask"] = {c.b, 1, 1, c.s};
    }
    Session s = session_at_level(bytes, true);
    std::string plan = plan_text(s, shapes);
    EXPECT_NE(plan.find("native attention"), std::string::npos) << plan;
    EXPECT_EQ(plan.find("(Split)"), std::string::npos) << "Split read through strides:\n" << plan;
    expect_same(bytes, in, 1e-4);
  }
}

TEST(Fusion, AttentionWithStridedHeadDimsMatchesTheReference) {
  for (int64_t s : {1, 5, 40}) {
    std::string bytes = attention_model(2, s, 3, 8, "causal", uint64_t(s), true);
    Session fused = session_at_level(bytes, true);
    std::string plan = plan_text(fused, {{"x", {2, s, 24}}});
    EXPECT_NE(plan.find("native attention"), std::string::npos) << plan;
    expect_same(bytes, {{"x", testing::random_tensor(DType::kF32, {2, s, 24}, -1, 1, 9)}}, 1e-4);
  }
}

TEST(Fusion, EveryLevelGivesTheSameAttentionOutputs) {
  std::string bytes = attention_model(2, 9, 2, 8, "causal", 5);
  Tensor x = testing::random_tensor(DType::kF32, {2, 9, 16}, -1, 1, 3);
  Tensor want = session_at_level(bytes, false).run({{"x", x}}).at("y");
  for (int level = 0; level <= 3; ++level) {
    Tensor got = session_at_level(bytes, true, level).run({{"x", x}}).at("y");
    for (int64_t i = 0; i < want.numel(); ++i)
      ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-4) << "level " << level;
  }
}

}  // namespace
}  // namespace kiln
