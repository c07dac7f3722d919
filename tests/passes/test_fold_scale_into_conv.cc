// fold_scale_into_conv: per-channel or scalar Mul/Add after Conv/Gemm fold into weights and bias;
// a per-pixel constant or a second reader does not.
#include "ir/passes/fold_scale_into_conv.h"

#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

ModelBuilder conv_mul_add(std::vector<int64_t> mul_dims, bool add_first) {
  ModelBuilder b(13);
  b.input("x", kF32, {-1, 2, 5, 5}, {"batch"});
  b.init_random("w", {3, 2, 3, 3}, 0.5f, 1);
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  int64_t n = 1;
  for (int64_t d : mul_dims) n *= d;
  std::vector<float> m(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) m[size_t(i)] = 0.5f + float(i);
  b.init_f32("m", mul_dims, m);
  b.init_f32("a", {3, 1, 1}, {0.25f, -1.0f, 2.0f});
  if (add_first) {
    b.node("Add", {"a", "c"}, {"s"});
    b.node("Mul", {"s", "m"}, {"y"});
  } else {
    b.node("Mul", {"m", "c"}, {"s"});
    b.node("Add", {"s", "a"}, {"y"});
  }
  b.output("y", kF32, {-1, 3, 3, 3}, {"batch"});
  return b;
}

TEST(PassFoldScaleIntoConv, PerChannelMulThenAdd) {
  for (bool add_first : {false, true}) {
    int n = 0;
    // One run folds both: the second sees the rewritten Conv as its producer.
    std::string text =
        after_pass(conv_mul_add({3, 1, 1}, add_first), ir::passes::fold_scale_into_conv, &n);
    EXPECT_EQ(n, 2);
    EXPECT_EQ(without_values(text),
              "in x: f32[batch,2,5,5]\n"
              "const conv.folded_weight_1: f32[3,2,3,3]\n"
              "const conv.folded_bias_1: f32[3]\n"
              "y = Conv(x, conv.folded_weight_1, conv.folded_bias_1)\n"
              "out y\n");
    expect_same_outputs(conv_mul_add({3, 1, 1}, add_first), {{"x", {2, 2, 5, 5}}});
  }
}

TEST(PassFoldScaleIntoConv, ScalarMulFolds) {
  int n = 0;
  after_pass(conv_mul_add({1}, false), ir::passes::fold_scale_into_conv, &n);
  EXPECT_EQ(n, 2);
  expect_same_outputs(conv_mul_add({1}, false), {{"x", {1, 2, 5, 5}}});
}

TEST(PassFoldScaleIntoConv, PerPixelMulDoesNotFold) {
  int n = 0;
  std::string text =
      after_pass(conv_mul_add({3, 3, 3}, false), ir::passes::fold_scale_into_conv, &n);
  EXPECT_EQ(n, 0) << text;  // the Add reads the Mul, not the Conv, so it cannot fold either
  expect_same_outputs(conv_mul_add({3, 3, 3}, false), {{"x", {1, 2, 5, 5}}});
}

TEST(PassFoldScaleIntoConv, GemmOutputWithSecondReaderDoesNotFold) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 4});
  b.init_random("w", {4, 3}, 0.5f, 1);
  b.init_f32("m", {3}, {1, 2, 3});
  b.node("Gemm", {"x", "w"}, {"g"});
  b.node("Mul", {"g", "m"}, {"y"});
  b.output("y", kF32, {2, 3});
  b.output("g", kF32, {2, 3});
  int n = 0;
  after_pass(b, ir::passes::fold_scale_into_conv, &n);
  EXPECT_EQ(n, 0);
}

TEST(PassFoldScaleIntoConv, GemmPerColumnMul) {
  ModelBuilder b(13);
  b.input("x", kF32, {2, 4});
  b.init_random("w", {3, 4}, 0.5f, 1);
  b.init_f32("bias", {1, 3}, {1, 2, 3});
  b.init_f32("m", {1, 3}, {-1, 2, 0.5f});
  ModelBuilder::set_int(b.node("Gemm", {"x", "w", "bias"}, {"g"}, "fc"), "transB", 1);
  b.node("Mul", {"g", "m"}, {"y"});
  b.output("y", kF32, {2, 3});
  int n = 0;
  std::string text = after_pass(b, ir::passes::fold_scale_into_conv, &n);
  EXPECT_EQ(n, 1);
  EXPECT_NE(text.find("y = Gemm(x, fc.folded_weight, fc.folded_bias) {alpha=1, beta=1, transB=1}"),
            std::string::npos)
      << text;
  expect_same_outputs(b, {{"x", {2, 4}}});
}

}  // namespace
}  // namespace kiln::testing
