// fold_batchnorm: Conv/Gemm/MatMul + BatchNormalization fold into weights and bias; a producer
// output read elsewhere, or a BN in training mode, does not.
#include "ir/passes/fold_batchnorm.h"

#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

void add_bn_params(ModelBuilder& b, int64_t c) {
  b.init_random("scale", {c}, 1.0f, 11);
  b.init_random("bias", {c}, 1.0f, 12);
  b.init_random("mean", {c}, 0.5f, 13);
  std::vector<float> var(static_cast<size_t>(c));
  for (int64_t i = 0; i < c; ++i) var[size_t(i)] = 0.5f + 0.25f * float(i);
  b.init_f32("var", {c}, var);
}

ModelBuilder conv_bn(bool with_bias, bool conv_out_also_used = false) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 3, 8, 8}, {"batch"});
  b.init_random("w", {4, 3, 3, 3}, 0.5f, 1);
  std::vector<std::string> ins = {"x", "w"};
  if (with_bias) {
    b.init_random("b", {4}, 0.5f, 2);
    ins.push_back("b");
  }
  ModelBuilder::set_ints(b.node("Conv", ins, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  add_bn_params(b, 4);
  ModelBuilder::set_float(
      b.node("BatchNormalization", {"c", "scale", "bias", "mean", "var"}, {"y"}), "epsilon", 1e-3f);
  b.output("y", kF32, {-1, 4, 8, 8}, {"batch"});
  if (conv_out_also_used) b.output("c", kF32, {-1, 4, 8, 8}, {"batch"});
  return b;
}

TEST(PassFoldBatchnorm, ConvWithoutBiasGetsOne) {
  int n = 0;
  std::string text = after_pass(conv_bn(false), ir::passes::fold_batchnorm, &n);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(without_values(text),
            "in x: f32[batch,3,8,8]\n"
            "const conv.folded_weight: f32[4,3,3,3]\n"
            "const conv.folded_bias: f32[4]\n"
            "y = Conv(x, conv.folded_weight, conv.folded_bias) {pads=[1,1,1,1]}\n"
            "out y\n");
}

TEST(PassFoldBatchnorm, ConvSameOutputs) {
  expect_same_outputs(conv_bn(false), {{"x", {2, 3, 8, 8}}});
  expect_same_outputs(conv_bn(true), {{"x", {1, 3, 8, 8}}});
}

TEST(PassFoldBatchnorm, ConvOutputReadElsewhereIsNotFolded) {
  int n = 0;
  std::string text = after_pass(conv_bn(true, true), ir::passes::fold_batchnorm, &n);
  EXPECT_EQ(n, 0);
  EXPECT_NE(text.find("y = BatchNormalization(c, scale, bias, mean, var)"), std::string::npos)
      << text;
  expect_same_outputs(conv_bn(true, true), {{"x", {1, 3, 8, 8}}});
}

TEST(PassFoldBatchnorm, TrainingModeIsNotFolded) {
  ModelBuilder b = conv_bn(true);
  auto* bn = b.proto().mutable_graph()->mutable_node(1);
  ModelBuilder::set_int(*bn, "training_mode", 1);
  b.proto().mutable_opset_import(0)->set_version(15);
  int n = 0;
  after_pass(b, ir::passes::fold_batchnorm, &n);
  EXPECT_EQ(n, 0);
}

ModelBuilder gemm_bn(bool trans_b, float alpha, float beta) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 5}, {"batch"});
  b.init_random("w", trans_b ? std::vector<int64_t>{6, 5} : std::vector<int64_t>{5, 6}, 0.5f, 3);
  b.init_random("b", {6}, 0.5f, 4);
  auto& gemm = b.node("Gemm", {"x", "w", "b"}, {"g"}, "fc");
  ModelBuilder::set_int(gemm, "transB", trans_b ? 1 : 0);
  ModelBuilder::set_float(gemm, "alpha", alpha);
  ModelBuilder::set_float(gemm, "beta", beta);
  add_bn_params(b, 6);
  b.node("BatchNormalization", {"g", "scale", "bias", "mean", "var"}, {"y"});
  b.output("y", kF32, {-1, 6}, {"batch"});
  return b;
}

TEST(PassFoldBatchnorm, GemmEitherTransposeWithAlphaBeta) {
  for (bool t : {false, true}) {
    int n = 0;
    std::string text = after_pass(gemm_bn(t, 0.5f, 2.0f), ir::passes::fold_batchnorm, &n);
    EXPECT_EQ(n, 1);
    EXPECT_NE(text.find("y = Gemm(x, fc.folded_weight, fc.folded_bias) {alpha=1, beta=1, transB=" +
                        std::to_string(int(t)) + "}"),
              std::string::npos)
        << text;
    expect_same_outputs(gemm_bn(t, 0.5f, 2.0f), {{"x", {3, 5}}});
  }
}

TEST(PassFoldBatchnorm, MatMulBecomesGemm) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 5}, {"batch"});
  b.init_random("w", {5, 6}, 0.5f, 3);
  b.node("MatMul", {"x", "w"}, {"m"}, "mm");
  add_bn_params(b, 6);
  b.node("BatchNormalization", {"m", "scale", "bias", "mean", "var"}, {"y"});
  b.output("y", kF32, {-1, 6}, {"batch"});
  int n = 0;
  std::string text = after_pass(b, ir::passes::fold_batchnorm, &n);
  EXPECT_EQ(n, 1);
  EXPECT_NE(text.find("y = Gemm(x, mm.folded_weight, mm.folded_bias)\n"), std::string::npos)
      << text;
  expect_same_outputs(b, {{"x", {4, 5}}});
}

}  // namespace
}  // namespace kiln::testing
