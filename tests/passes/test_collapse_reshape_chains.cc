// collapse_reshape_chains: chains of views with a constant final shape become one Reshape;
// Transpose pairs compose, and vanish when they cancel.
#include "ir/passes/collapse_reshape_chains.h"

#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

ModelBuilder view_chain() {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 3, 4});
  b.init_i64("ax", {1}, {0});
  b.init_i64("shape", {2}, {6, -1});
  b.node("Unsqueeze", {"x", "ax"}, {"u"});
  b.node("Reshape", {"u", "shape"}, {"r"});
  ModelBuilder::set_int(b.node("Flatten", {"r"}, {"f"}), "axis", 0);
  b.node("Relu", {"f"}, {"y"});
  b.output("y", kF32, {1, 24});
  return b;
}

TEST(PassCollapseReshapeChains, ViewChainBecomesOneReshape) {
  int n = 0;
  EXPECT_EQ(after_pass(view_chain(), ir::passes::collapse_reshape_chains, &n),
            "in x: f32[2,3,4]\n"
            "const Flatten_2.shape: i64[2] = 1, 24\n"
            "f = Reshape(x, Flatten_2.shape)\n"
            "y = Relu(f)\n"
            "out y\n");
  EXPECT_EQ(n, 2);
  expect_same_outputs(view_chain(), {{"x", {2, 3, 4}}});
}

ModelBuilder transposes(std::vector<int64_t> p1, std::vector<int64_t> p2, bool out_is_t2) {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 3, 4});
  ModelBuilder::set_ints(b.node("Transpose", {"x"}, {"t1"}), "perm", p1);
  ModelBuilder::set_ints(b.node("Transpose", {"t1"}, {"t2"}), "perm", p2);
  if (out_is_t2) {
    b.output("t2", kF32, {});
    b.proto()
        .mutable_graph()
        ->mutable_output(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->clear_shape();
  } else {
    b.node("Neg", {"t2"}, {"y"});
    b.output("y", kF32, {});
    b.proto()
        .mutable_graph()
        ->mutable_output(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->clear_shape();
  }
  return b;
}

TEST(PassCollapseReshapeChains, TransposesCompose) {
  int n = 0;
  EXPECT_EQ(
      after_pass(transposes({1, 2, 0}, {1, 2, 0}, true), ir::passes::collapse_reshape_chains, &n),
      "in x: f32[2,3,4]\n"
      "t2 = Transpose(x) {perm=[2,0,1]}\n"
      "out t2\n");
  EXPECT_EQ(n, 1);
  expect_same_outputs(transposes({1, 2, 0}, {1, 2, 0}, true), {{"x", {2, 3, 4}}});
}

TEST(PassCollapseReshapeChains, InverseTransposesVanish) {
  int n = 0;
  EXPECT_EQ(
      after_pass(transposes({1, 2, 0}, {2, 0, 1}, false), ir::passes::collapse_reshape_chains, &n),
      "in x: f32[2,3,4]\n"
      "y = Neg(x)\n"
      "out y\n");
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace kiln::testing
