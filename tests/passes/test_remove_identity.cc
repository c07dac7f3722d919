// remove_identity: copies go; a graph output keeps its name; copies that shapes cannot prove stay.
#include "ir/passes/remove_identity.h"

#include <limits>

#include "pass_test_util.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

ModelBuilder copies() {
  ModelBuilder b(17);
  b.input("x", kF32, {2, 3});
  b.init_i64("same", {2}, {2, 3});
  b.init_i64("flat", {1}, {6});
  b.node("Identity", {"x"}, {"i"});
  b.node("Relu", {"i"}, {"r"});
  b.node("Dropout", {"r"}, {"d"});
  ModelBuilder::set_int(b.node("Cast", {"d"}, {"c"}), "to", kF32);
  b.node("Reshape", {"c", "same"}, {"rs"});
  ModelBuilder::set_ints(b.node("Transpose", {"rs"}, {"t"}), "perm", {0, 1});
  b.node("Reshape", {"t", "flat"}, {"f"});  // a real reshape: stays
  b.node("Identity", {"f"}, {"y"});         // a graph output: its producer writes it
  b.output("y", kF32, {6});
  return b;
}

TEST(PassRemoveIdentity, RemovesCopiesAndKeepsOutputName) {
  int n = 0;
  EXPECT_EQ(after_pass(copies(), ir::passes::remove_identity, &n),
            "in x: f32[2,3]\n"
            "const flat: i64[1] = 6\n"
            "r = Relu(x)\n"
            "y = Reshape(r, flat)\n"
            "out y\n");
  EXPECT_EQ(n, 6);
}

TEST(PassRemoveIdentity, SameOutputs) { expect_same_outputs(copies(), {{"x", {2, 3}}}); }

TEST(PassRemoveIdentity, IdentityOfAnInputAsOutputStays) {
  ModelBuilder b(17);
  b.input("x", kF32, {2});
  b.node("Identity", {"x"}, {"y"});
  b.output("y", kF32, {2});
  int n = 0;
  EXPECT_EQ(after_pass(b, ir::passes::remove_identity, &n),
            "in x: f32[2]\ny = Identity(x)\nout y\n");
  EXPECT_EQ(n, 0);
  expect_same_outputs(b, {{"x", {2}}});
}

TEST(PassRemoveIdentity, TrainingDropoutUsedMaskAndUnprovenShapesStay) {
  ModelBuilder b(17);
  b.input("x", kF32, {-1, 3}, {"n"});
  b.input("shape", kI64, {2});
  b.node("Dropout", {"x"}, {"d", "mask"});   // mask read: stays
  b.node("Reshape", {"d", "shape"}, {"y"});  // target shape unknown: stays
  ModelBuilder::set_int(b.node("Cast", {"mask"}, {"m"}), "to", kF32);
  b.output("y", kF32, {-1, -1}, {"a", "b"});
  b.output("m", kF32, {-1, 3}, {"n"});
  int n = 0;
  std::string text = after_pass(b, ir::passes::remove_identity, &n);
  EXPECT_EQ(n, 0) << text;
}

TEST(PassRemoveIdentity, InferenceDropoutWithConstantFalseTrainingMode) {
  ModelBuilder b(17);
  b.input("x", kF32, {4});
  b.init_f32("ratio", {}, {0.5f});
  init_bool(b, "training", false);
  b.node("Dropout", {"x", "ratio", "training"}, {"d"});
  b.node("Neg", {"d"}, {"y"});
  b.output("y", kF32, {4});
  int n = 0;
  EXPECT_EQ(after_pass(b, ir::passes::remove_identity, &n), "in x: f32[4]\ny = Neg(x)\nout y\n");
  EXPECT_EQ(n, 1);
}

TEST(PassRemoveIdentity, SymbolicSameShapeReshapeAndUnitSlice) {
  ModelBuilder b(17);
  b.input("x", kF32, {-1, 4}, {"batch"});
  b.node("Shape", {"x"}, {"s"});
  b.node("Reshape", {"x", "s"}, {"r"});
  b.init_i64("starts", {1}, {0});
  b.init_i64("ends", {1}, {4});
  b.init_i64("axes", {1}, {1});
  b.init_i64("steps", {1}, {-1});
  b.init_i64("last", {1}, {-1});
  b.init_i64("before_first", {1}, {std::numeric_limits<int64_t>::min() + 1});
  b.node("Slice", {"r", "starts", "ends", "axes"}, {"sl"});
  // Same shape, but reversed: stays.
  b.node("Slice", {"sl", "last", "before_first", "axes", "steps"}, {"rev"});
  b.node("Neg", {"rev"}, {"y"});
  b.output("y", kF32, {-1, 4}, {"batch"});
  int n = 0;
  std::string text = after_pass(b, ir::passes::remove_identity, &n);
  EXPECT_EQ(n, 2) << text;
  EXPECT_NE(text.find("rev = Slice(x, last, before_first, axes, steps)"), std::string::npos)
      << text;
  expect_same_outputs(b, {{"x", {3, 4}}});
}

}  // namespace
}  // namespace kiln::testing
