// Symbolic shape inference: symbols flow through broadcasting and through the shape arithmetic
// of exported transformers (Shape -> Gather -> Unsqueeze -> Concat -> Reshape).
#include <gtest/gtest.h>

#include "ir/onnx_import.h"
#include "ir/shape_inference.h"
#include "kiln/kiln.h"
#include "model_builder.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;
constexpr int32_t kF = onnx::TensorProto::FLOAT;

std::unique_ptr<ir::Graph> infer(const ModelBuilder& b) {
  std::string bytes = b.serialize();
  auto g = ir::import_onnx({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "");
  ir::infer_shapes(*g);
  return g;
}

std::string shape_of(const ir::Graph& g, const std::string& name) {
  int id = g.find_value(name);
  return id < 0 ? "(missing)" : g.values[size_t(id)].shape.to_string();
}

TEST(ShapeInference, BroadcastKeepsSymbols) {
  ModelBuilder b(13);
  b.input("x", kF, {-1, 1, 3}, {"batch"});
  b.input("y", kF, {-1, 1}, {"seq"});
  b.output_untyped_shape("z", kF);
  b.node("Add", {"x", "y"}, {"z0"});
  b.node("Relu", {"z0"}, {"z"});
  auto g = infer(b);
  EXPECT_EQ(shape_of(*g, "z0"), "[batch,seq,3]");
  EXPECT_EQ(shape_of(*g, "z"), "[batch,seq,3]");
}

TEST(ShapeInference, ReshapeFromShapeArithmeticIsSymbolic) {
  ModelBuilder b(13);
  b.input("x", kF, {-1, -1, 256}, {"batch", "seq"});
  b.output_untyped_shape("r", kF);
  b.init_i64("zero", {}, {0});
  b.init_i64("one", {}, {1});
  b.init_i64("axes0", {1}, {0});
  b.init_i64("heads", {2}, {4, 64});
  b.node("Shape", {"x"}, {"s"});
  b.node("Gather", {"s", "zero"}, {"b"});
  b.node("Gather", {"s", "one"}, {"n"});
  b.node("Unsqueeze", {"b", "axes0"}, {"bu"});
  b.node("Unsqueeze", {"n", "axes0"}, {"nu"});
  b.node("Concat", {"bu", "nu", "heads"}, {"target"}).add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(0);
    return a;
  }());
  b.node("Reshape", {"x", "target"}, {"r"});
  auto g = infer(b);
  EXPECT_EQ(shape_of(*g, "s"), "[3]");
  EXPECT_EQ(shape_of(*g, "r"), "[batch,seq,4,64]");
}

TEST(ShapeInference, SharedTransformersKeepBatchAndSeq) {
  if (!have_shared()) GTEST_SKIP() << "../shared is not beside the checkout";
  Session gpt(shared_dir() + "/models/gpt_mini/model.onnx");
  EXPECT_EQ(gpt.output_info()[0].to_string(), "f32[batch,seq,8192]");
  bool saw_heads = false;
  for (const auto& line : gpt.describe_values())
    saw_heads |= line.find("f32[batch,4,seq,64]") != std::string::npos;
  EXPECT_TRUE(saw_heads) << "no value of shape [batch,4,seq,64] in gpt_mini";
  Session mob(shared_dir() + "/models/mobilenet_v2/model.onnx");
  EXPECT_EQ(mob.input_info()[0].to_string(), "f32[batch,3,height,width]");
  EXPECT_EQ(mob.output_info()[0].to_string(), "f32[batch,1000]");
}

}  // namespace
}  // namespace kiln::testing
