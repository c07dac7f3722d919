// eliminate_common_subexpressions: equal pure nodes and equal small constants merge; random
// nodes and graph outputs do not.
#include "ir/passes/eliminate_common_subexpressions.h"

#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

ModelBuilder duplicates() {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 3});
  b.init_f32("c1", {3}, {1, 2, 3});
  b.init_f32("c2", {3}, {1, 2, 3});
  b.node("Add", {"x", "c1"}, {"a1"});
  b.node("Add", {"x", "c2"}, {"a2"});
  b.node("Relu", {"a1"}, {"r1"});
  b.node("Relu", {"a2"}, {"r2"});
  b.node("Mul", {"r1", "r2"}, {"y"});
  b.output("y", kF32, {2, 3});
  return b;
}

TEST(PassEliminateCommonSubexpressions, MergesChainsAndConstants) {
  int n = 0;
  EXPECT_EQ(after_pass(duplicates(), ir::passes::eliminate_common_subexpressions, &n),
            "in x: f32[2,3]\n"
            "const c1: f32[3] = 1, 2, 3\n"
            "a1 = Add(x, c1)\n"
            "r1 = Relu(a1)\n"
            "y = Mul(r1, r1)\n"
            "out y\n");
  EXPECT_EQ(n, 3);  // c2, the second Add, the second Relu
}

TEST(PassEliminateCommonSubexpressions, SameOutputs) {
  expect_same_outputs(duplicates(), {{"x", {2, 3}}});
}

TEST(PassEliminateCommonSubexpressions, NeverMergesRandomNodes) {
  ModelBuilder b(17);
  b.input("x", kF32, {4});
  b.init_f32("ratio", {}, {0.5f});
  init_bool(b, "training", true);
  b.node("Dropout", {"x", "ratio", "training"}, {"r1"});  // random in training mode
  b.node("Dropout", {"x", "ratio", "training"}, {"r2"});
  b.node("Sub", {"r1", "r2"}, {"y"});
  b.output("y", kF32, {4});
  int n = 0;
  EXPECT_EQ(after_pass(b, ir::passes::eliminate_common_subexpressions, &n),
            "in x: f32[4]\n"
            "const ratio: f32[] = 0.5\n"
            "const training: bool[] = 1\n"
            "r1 = Dropout(x, ratio, training)\n"
            "r2 = Dropout(x, ratio, training)\n"
            "y = Sub(r1, r2)\n"
            "out y\n");
  EXPECT_EQ(n, 0);
}

TEST(PassEliminateCommonSubexpressions, DifferentAttributesOrGraphOutputsStay) {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 3});
  ModelBuilder::set_int(b.node("Softmax", {"x"}, {"s0"}), "axis", 0);
  ModelBuilder::set_int(b.node("Softmax", {"x"}, {"s1"}), "axis", 1);
  b.node("Neg", {"x"}, {"n1"});
  b.node("Neg", {"x"}, {"n2"});
  b.node("Add", {"s0", "s1"}, {"y"});
  b.output("y", kF32, {2, 3});
  b.output("n1", kF32, {2, 3});
  b.output("n2", kF32, {2, 3});
  int n = 0;
  EXPECT_EQ(after_pass(b, ir::passes::eliminate_common_subexpressions, &n),
            "in x: f32[2,3]\n"
            "s0 = Softmax(x) {axis=0}\n"
            "s1 = Softmax(x) {axis=1}\n"
            "n1 = Neg(x)\n"
            "n2 = Neg(x)\n"
            "y = Add(s0, s1)\n"
            "out y, n1, n2\n");
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace kiln::testing
