// fold_constants: constant subgraphs become initializers; overridable defaults, random ops and
// huge results stay nodes.
#include "ir/passes/fold_constants.h"

#include "kiln/session.h"
#include "op_test_util.h"
#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

ModelBuilder constant_chain() {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 3});
  b.init_f32("a", {3}, {1, 2, 3});
  b.init_f32("b", {3}, {10, 20, 30});
  b.node("Add", {"a", "b"}, {"ab"});
  b.node("Neg", {"ab"}, {"nab"});
  b.node("Mul", {"x", "nab"}, {"y"});
  b.output("y", kF32, {2, 3});
  return b;
}

TEST(PassFoldConstants, FoldsAChain) {
  int n = 0;
  EXPECT_EQ(after_pass(constant_chain(), ir::passes::fold_constants, &n),
            "in x: f32[2,3]\n"
            "const nab: f32[3] = -11, -22, -33\n"
            "y = Mul(x, nab)\n"
            "out y\n");
  EXPECT_EQ(n, 2);
}

TEST(PassFoldConstants, SameOutputs) { expect_same_outputs(constant_chain(), {{"x", {2, 3}}}); }

// An initializer that is also a graph input is a default the caller may override: not constant.
ModelBuilder overridable() {
  ModelBuilder b(17);
  b.input("x", kF32, {3});
  b.init_f32("scale", {3}, {2, 2, 2});
  b.input("scale", kF32, {3});
  b.init_f32("one", {3}, {1, 1, 1});
  b.node("Add", {"scale", "one"}, {"s1"});
  b.node("Mul", {"x", "s1"}, {"y"});
  b.output("y", kF32, {3});
  return b;
}

TEST(PassFoldConstants, KeepsOverridableInitializerInputs) {
  int n = 0;
  EXPECT_EQ(after_pass(overridable(), ir::passes::fold_constants, &n),
            "in x: f32[3]\n"
            "in scale: f32[3]\n"
            "const one: f32[3] = 1, 1, 1\n"
            "s1 = Add(scale, one)\n"
            "y = Mul(x, s1)\n"
            "out y\n");
  EXPECT_EQ(n, 0);
}

TEST(PassFoldConstants, OverriddenDefaultIsHonouredAfterOptimization) {
  std::string bytes = overridable().serialize();
  std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  Session s = Session::from_bytes(span, {}, "");
  auto out = s.run({{"x", make<float>({3}, {1, 1, 1})}, {"scale", make<float>({3}, {5, 6, 7})}});
  EXPECT_TRUE(tensors_near(out.at("y"), make<float>({3}, {6, 7, 8})));
}

TEST(PassFoldConstants, FoldsConstantNodesButNotRandomOnes) {
  ModelBuilder b(17);
  b.input("x", kF32, {2});
  auto& c = b.node("Constant", {}, {"c"});
  ModelBuilder::set_float(c, "value_float", 3.0f);
  b.init_f32("ones", {2}, {1, 1});
  b.init_f32("ratio", {}, {0.5f});
  init_bool(b, "training", true);
  b.node("Dropout", {"ones", "ratio", "training"}, {"r"});  // random: all inputs constant, stays
  b.node("Mul", {"x", "c"}, {"xc"});
  b.node("Add", {"xc", "r"}, {"y"});
  b.output("y", kF32, {2});
  int n = 0;
  std::string text = after_pass(b, ir::passes::fold_constants, &n);
  EXPECT_EQ(n, 1);
  EXPECT_NE(text.find("const c: f32[] = 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("r = Dropout(ones, ratio, training)"), std::string::npos) << text;
}

TEST(PassFoldConstants, LeavesHugeResultsAlone) {
  ModelBuilder b(17);
  b.input("x", kF32, {1});
  b.init_i64("shape", {2}, {8192, 4096});  // 32M elements: over the 16M cap
  b.node("ConstantOfShape", {"shape"}, {"big"});
  b.node("ReduceSum", {"big"}, {"s"});
  b.node("Add", {"x", "s"}, {"y"});
  b.output("y", kF32, {1, 1});
  int n = 0;
  std::string text = after_pass(b, ir::passes::fold_constants, &n);
  EXPECT_EQ(n, 0) << text;
}

}  // namespace
}  // namespace kiln::testing
