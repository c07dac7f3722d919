// Tests of the normalization family: BatchNormalization (inference and training mode),
// LayerNormalization, RMSNormalization, InstanceNormalization, GroupNormalization (opset 18 and
// 21), LpNormalization, MeanVarianceNormalization and LRN, on hand-computed cases.
#include <cmath>

#include "ir/shape_inference.h"
#include "op_test_util.h"

namespace kiln::testing {
namespace {

Tensor vec(std::vector<float> v) { return make<float>({int64_t(v.size())}, v); }

TEST(OpNormalization, BatchNormInference) {
  // N=1, C=2, 2 elements per channel.
  Tensor x = make<float>({1, 2, 2}, {1, 3, 10, 20});
  auto out = run_op({"BatchNormalization",
                     {x, vec({2, 1}), vec({0, 1}), vec({2, 10}), vec({4, 100})},
                     {{"epsilon", attr_float(0)}},
                     15});
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 2, 2}, {-1, 1, 1, 2})));
  // Opset 9, rank 2 input.
  out = run_op({"BatchNormalization",
                {make<float>({2, 1}, {1, 5}), vec({1}), vec({0}), vec({1}), vec({4})},
                {{"epsilon", attr_float(0)}},
                9});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 1}, {0, 2})));
}

TEST(OpNormalization, BatchNormTrainingMode) {
  Tensor x = make<float>({2, 1, 1}, {1, 3});  // batch mean 2, batch var 1
  OpCall c{
      "BatchNormalization",
      {x, vec({1}), vec({0}), vec({0}), vec({1})},
      {{"epsilon", attr_float(0)}, {"training_mode", attr_int(1)}, {"momentum", attr_float(0.5f)}},
      15,
      3};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 1, 1}, {-1, 1})));
  EXPECT_TRUE(tensors_near(out[1], vec({1})));  // 0 * 0.5 + 2 * 0.5
  EXPECT_TRUE(tensors_near(out[2], vec({1})));  // 1 * 0.5 + 1 * 0.5
}

TEST(OpNormalization, BatchNormBadChannelCountFails) {
  Tensor x = make<float>({1, 2, 1}, {1, 2});
  EXPECT_THROW(run_op({"BatchNormalization", {x, vec({1}), vec({0}), vec({0}), vec({1})}, {}, 15}),
               Error);
}

TEST(OpNormalization, LayerNormWithStatsOutputs) {
  Tensor x = make<float>({2, 2}, {1, 3, 2, 4});
  OpCall c{
      "LayerNormalization", {x, vec({1, 2}), vec({0, 1})}, {{"epsilon", attr_float(0)}}, 17, 3};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {-1, 3, -1, 3})));
  EXPECT_TRUE(tensors_near(out[1], make<float>({2, 1}, {2, 3})));
  EXPECT_TRUE(tensors_near(out[2], make<float>({2, 1}, {1, 1})));
}

TEST(OpNormalization, LayerNormAxis0AndBroadcastScale) {
  Tensor x = make<float>({2, 2}, {0, 2, 4, 6});  // mean 3, var 5
  auto out = run_op({"LayerNormalization",
                     {x, make<float>({1}, {2})},
                     {{"axis", attr_int(0)}, {"epsilon", attr_float(0)}},
                     17});
  float s = 2 / std::sqrt(5.f);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {-3 * s, -s, s, 3 * s})));
  EXPECT_THROW(run_op({"LayerNormalization", {x, vec({1, 2, 3})}, {}, 17}), Error);
}

TEST(OpNormalization, LayerNormSymbolicStatShape) {
  OpCall c{
      "LayerNormalization", {make<float>({2, 3}, {1, 2, 3, 4, 5, 6}), vec({1, 1, 1})}, {}, 17, 2};
  auto g = make_op_graph(c);
  g->values[size_t(g->inputs[0])].shape = ir::Shape({ir::Dim::sym("batch"), ir::Dim::constant(3)});
  // make_op_graph inferred concrete output shapes; forget them so they are inferred again.
  for (int o : g->nodes[0].outputs) g->values[size_t(o)].shape = ir::Shape::unranked();
  ir::infer_shapes(*g);
  const ir::Value& mean = g->values[size_t(g->nodes[0].outputs[1])];
  EXPECT_EQ(mean.shape.to_string(),
            ir::Shape({ir::Dim::sym("batch"), ir::Dim::constant(1)}).to_string());
  EXPECT_EQ(mean.dtype, DType::kF32);
}

TEST(OpNormalization, RMSNorm) {
  Tensor x = make<float>({1, 2}, {3, 4});  // mean square 12.5
  auto out = run_op({"RMSNormalization", {x, vec({1, 2})}, {{"epsilon", attr_float(0)}}, 23});
  float r = std::sqrt(12.5f);
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 2}, {3 / r, 8 / r})));
}

TEST(OpNormalization, InstanceNorm) {
  Tensor x = make<float>({1, 2, 2}, {1, 3, 5, 5});
  auto out = run_op(
      {"InstanceNormalization", {x, vec({2, 1}), vec({1, 0})}, {{"epsilon", attr_float(0.f)}}, 6});
  // Channel 1 has zero variance: 0 * inf would be NaN, so use epsilon in a separate case.
  EXPECT_FLOAT_EQ(out[0].data<float>()[0], -1);
  EXPECT_FLOAT_EQ(out[0].data<float>()[1], 3);
  out = run_op({"InstanceNormalization", {x, vec({2, 1}), vec({1, 0})}, {}, 22});
  EXPECT_NEAR(out[0].data<float>()[2], 0, 1e-6);
}

TEST(OpNormalization, GroupNormPerChannelAndPerGroup) {
  // N=1, C=2, one element each; one group over both channels: mean 2, var 1.
  Tensor x = make<float>({1, 2, 1}, {1, 3});
  auto out = run_op({"GroupNormalization",
                     {x, vec({1, 2}), vec({0, 1})},
                     {{"num_groups", attr_int(1)}, {"epsilon", attr_float(0)}},
                     21});
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 2, 1}, {-1, 3})));
  out = run_op({"GroupNormalization",
                {x, vec({2}), vec({1})},
                {{"num_groups", attr_int(1)}, {"epsilon", attr_float(0)}},
                18});
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 2, 1}, {-1, 3})));
  EXPECT_THROW(run_op({"GroupNormalization",
                       {x, vec({1, 1, 1}), vec({0, 0, 0})},
                       {{"num_groups", attr_int(3)}},
                       21}),
               Error);
}

TEST(OpNormalization, LpNormalization) {
  Tensor x = make<float>({2, 2}, {3, 4, 1, -1});
  auto out = run_op({"LpNormalization", {x}, {}, 22});
  float r = std::sqrt(2.f);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {0.6f, 0.8f, 1 / r, -1 / r})));
  out = run_op({"LpNormalization", {x}, {{"p", attr_int(1)}, {"axis", attr_int(0)}}, 1});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {0.75f, 0.8f, 0.25f, -0.2f})));
  out = run_op({"LpNormalization", {make<float>({1, 2}, {0, 0})}, {}, 22});  // zero norm
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 2}, {0, 0})));
  EXPECT_THROW(run_op({"LpNormalization", {x}, {{"p", attr_int(3)}}, 22}), Error);
}

TEST(OpNormalization, MeanVarianceNormalization) {
  Tensor x = make<float>({2, 2}, {1, 3, 5, 7});
  auto out = run_op({"MeanVarianceNormalization", {x}, {{"axes", attr_ints({1})}}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {-1, 1, -1, 1})));
  EXPECT_THROW(run_op({"MeanVarianceNormalization", {x}, {}, 13}), Error);  // axes 2, 3
}

TEST(OpNormalization, LRN) {
  Tensor x = make<float>({1, 2, 1, 1}, {1, 2});
  auto out = run_op({"LRN",
                     {x},
                     {{"size", attr_int(2)},
                      {"alpha", attr_float(2)},
                      {"beta", attr_float(1)},
                      {"bias", attr_float(1)}},
                     13});
  // size 2: channel c sees [c, c + 1]; y = x / (1 + 2/2 * sum sq).
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 2, 1, 1}, {1.f / 6, 2.f / 5})));
  EXPECT_THROW(run_op({"LRN", {x}, {}, 13}), Error);  // size is required
}

}  // namespace
}  // namespace kiln::testing
