// eliminate_dead_code: unread nodes (random ones included) and unread initializers go; graph
// inputs, outputs and overridable defaults stay.
#include "ir/passes/eliminate_dead_code.h"

#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

ModelBuilder dead_branches() {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 3});
  b.init_f32("unused_w", {3}, {1, 2, 3});
  b.init_f32("k", {3}, {1, 1, 1});
  b.input("k", kF32, {3});  // an overridable default nobody reads: part of the interface
  b.node("Neg", {"x"}, {"n"});
  b.node("Add", {"n", "unused_w"}, {"dead"});
  b.init_f32("ratio", {}, {0.5f});
  init_bool(b, "training", true);
  b.node("Dropout", {"x", "ratio", "training"}, {"noise"});  // random, but unread
  b.node("Relu", {"x"}, {"y"});
  b.output("y", kF32, {2, 3});
  return b;
}

TEST(PassEliminateDeadCode, DropsUnreadNodesAndInitializers) {
  int n = 0;
  EXPECT_EQ(after_pass(dead_branches(), ir::passes::eliminate_dead_code, &n),
            "in x: f32[2,3]\n"
            "in k: f32[3]\n"
            "y = Relu(x)\n"
            "out y\n");
  EXPECT_EQ(n, 6);  // Neg, Add, Dropout, unused_w, ratio, training
}

TEST(PassEliminateDeadCode, LiveGraphIsUnchanged) {
  ModelBuilder b(17);
  b.input("x", kF32, {2});
  b.node("Relu", {"x"}, {"r"});
  b.node("Neg", {"r"}, {"y"});
  b.output("y", kF32, {2});
  b.output("r", kF32, {2});
  int n = 0;
  EXPECT_EQ(after_pass(b, ir::passes::eliminate_dead_code, &n),
            "in x: f32[2]\nr = Relu(x)\ny = Neg(r)\nout y, r\n");
  EXPECT_EQ(n, 0);
}

TEST(PassEliminateDeadCode, SameOutputs) { expect_same_outputs(dead_branches(), {{"x", {2, 3}}}); }

}  // namespace
}  // namespace kiln::testing
