// fuse_gelu: the erf form in its three associations and the tanh approximation become Gelu;
// wrong constants or extra readers do not.
#include "ir/passes/fuse_gelu.h"

#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

// association 0: (x*a)*0.5; 1: (x*0.5)*a; 2: x*(a*0.5). `sqrt2` is the divisor.
ModelBuilder erf_gelu(int association, float sqrt2 = 1.4142135f) {
  ModelBuilder b(17);
  b.input("x", kF32, {-1, 8}, {"n"});
  b.init_f32("sqrt2", {}, {sqrt2});
  b.init_f32("one", {}, {1.0f});
  b.init_f32("half", {}, {0.5f});
  b.node("Div", {"x", "sqrt2"}, {"t"});
  b.node("Erf", {"t"}, {"e"});
  b.node("Add", {"one", "e"}, {"a"});
  if (association == 0) {
    b.node("Mul", {"x", "a"}, {"xa"});
    b.node("Mul", {"xa", "half"}, {"y"});
  } else if (association == 1) {
    b.node("Mul", {"half", "x"}, {"xh"});
    b.node("Mul", {"xh", "a"}, {"y"});
  } else {
    b.node("Mul", {"a", "half"}, {"ah"});
    b.node("Mul", {"x", "ah"}, {"y"});
  }
  b.output("y", kF32, {-1, 8}, {"n"});
  return b;
}

TEST(PassFuseGelu, ErfFormInEachAssociation) {
  for (int assoc = 0; assoc < 3; ++assoc) {
    int n = 0;
    EXPECT_EQ(after_pass(erf_gelu(assoc), ir::passes::fuse_gelu, &n),
              "in x: f32[n,8]\n"
              "y = Gelu@20(x)\n"
              "out y\n")
        << "association " << assoc;
    EXPECT_EQ(n, 1);
    expect_same_outputs(erf_gelu(assoc), {{"x", {3, 8}}});
  }
}

TEST(PassFuseGelu, WrongConstantIsLeftAlone) {
  int n = 0;
  after_pass(erf_gelu(0, 1.5f), ir::passes::fuse_gelu, &n);
  EXPECT_EQ(n, 0);
}

TEST(PassFuseGelu, IntermediateReadElsewhereIsLeftAlone) {
  ModelBuilder b = erf_gelu(0);
  b.output("e", kF32, {-1, 8}, {"n"});
  int n = 0;
  after_pass(b, ir::passes::fuse_gelu, &n);
  EXPECT_EQ(n, 0);
}

ModelBuilder tanh_gelu(bool pow_cube) {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 8});
  b.init_f32("three", {}, {3.0f});
  b.init_f32("c", {}, {0.044715f});
  b.init_f32("k", {}, {0.7978846f});
  b.init_f32("one", {}, {1.0f});
  b.init_f32("half", {}, {0.5f});
  if (pow_cube) {
    b.node("Pow", {"x", "three"}, {"x3"});
  } else {
    b.node("Mul", {"x", "x"}, {"x2"});
    b.node("Mul", {"x", "x2"}, {"x3"});
  }
  b.node("Mul", {"c", "x3"}, {"cx3"});
  b.node("Add", {"x", "cx3"}, {"inner"});
  b.node("Mul", {"inner", "k"}, {"s"});
  b.node("Tanh", {"s"}, {"th"});
  b.node("Add", {"th", "one"}, {"a"});
  b.node("Mul", {"half", "x"}, {"hx"});
  b.node("Mul", {"hx", "a"}, {"y"});
  b.output("y", kF32, {2, 8});
  return b;
}

TEST(PassFuseGelu, TanhApproximation) {
  for (bool pow_cube : {true, false}) {
    int n = 0;
    EXPECT_EQ(after_pass(tanh_gelu(pow_cube), ir::passes::fuse_gelu, &n),
              "in x: f32[2,8]\n"
              "y = Gelu@20(x) {approximate=\"tanh\"}\n"
              "out y\n");
    EXPECT_EQ(n, 1);
    expect_same_outputs(tanh_gelu(pow_cube), {{"x", {2, 8}}});
  }
}

}  // namespace
}  // namespace kiln::testing
