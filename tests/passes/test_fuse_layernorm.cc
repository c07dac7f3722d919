// fuse_layernorm: the exported mean/variance chain becomes LayerNormalization (Pow and Mul-by-self
// variants, with or without gamma/beta); a non-trailing axis does not.
#include "ir/passes/fuse_layernorm.h"

#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

ModelBuilder layernorm(int opset, bool pow, bool affine, int64_t axis = -1) {
  ModelBuilder b(opset);
  b.input("x", kF32, {-1, 4, 6}, {"batch"});
  auto mean = [&](const std::string& in, const std::string& out) {
    if (opset >= 18) {
      b.node("ReduceMean", {in, "axes"}, {out});
    } else {
      ModelBuilder::set_ints(b.node("ReduceMean", {in}, {out}), "axes", {axis});
    }
  };
  if (opset >= 18) b.init_i64("axes", {1}, {axis});
  b.init_f32("two", {}, {2.0f});
  b.init_f32("eps", {}, {1e-5f});
  mean("x", "m");
  b.node("Sub", {"x", "m"}, {"d"});
  if (pow)
    b.node("Pow", {"d", "two"}, {"sq"});
  else
    b.node("Mul", {"d", "d"}, {"sq"});
  mean("sq", "v");
  b.node("Add", {"v", "eps"}, {"ve"});
  b.node("Sqrt", {"ve"}, {"sd"});
  b.node("Div", {"d", "sd"}, {affine ? "n" : "y"});
  if (affine) {
    b.init_random("gamma", {6}, 1.0f, 5);
    b.init_random("beta", {6}, 1.0f, 6);
    b.node("Mul", {"n", "gamma"}, {"ng"});
    b.node("Add", {"ng", "beta"}, {"y"});
  }
  b.output("y", kF32, {-1, 4, 6}, {"batch"});
  return b;
}

TEST(PassFuseLayernorm, PowVariantWithAffine) {
  int n = 0;
  EXPECT_EQ(without_values(after_pass(layernorm(17, true, true), ir::passes::fuse_layernorm, &n)),
            "in x: f32[batch,4,6]\n"
            "const Add_8.ln_scale: f32[6]\n"
            "const Add_8.ln_bias: f32[6]\n"
            "y = LayerNormalization(x, Add_8.ln_scale, Add_8.ln_bias) {axis=2, epsilon=1e-05}\n"
            "out y\n");
  EXPECT_EQ(n, 1);
  expect_same_outputs(layernorm(17, true, true), {{"x", {2, 4, 6}}});
}

TEST(PassFuseLayernorm, MulVariantWithoutAffineAtOpset18) {
  int n = 0;
  EXPECT_EQ(without_values(after_pass(layernorm(18, false, false), ir::passes::fuse_layernorm, &n)),
            "in x: f32[batch,4,6]\n"
            "const Div_6.ln_scale: f32[6]\n"
            "y = LayerNormalization(x, Div_6.ln_scale) {axis=2, epsilon=1e-05}\n"
            "out y\n");
  EXPECT_EQ(n, 1);
  expect_same_outputs(layernorm(18, false, false), {{"x", {3, 4, 6}}});
}

TEST(PassFuseLayernorm, NonTrailingAxisIsLeftAlone) {
  int n = 0;
  after_pass(layernorm(17, true, true, 1), ir::passes::fuse_layernorm, &n);
  EXPECT_EQ(n, 0);
}

TEST(PassFuseLayernorm, CenteredValueReadElsewhereIsLeftAlone) {
  ModelBuilder b = layernorm(17, true, true);
  b.output("d", kF32, {-1, 4, 6}, {"batch"});
  int n = 0;
  after_pass(b, ir::passes::fuse_layernorm, &n);
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace kiln::testing
