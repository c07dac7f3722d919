// Tests of the pooling ops: MaxPool (Indices, storage_order, ceil_mode, auto_pad, dilations),
// AveragePool (count_include_pad), LpPool, the Global pools, MaxUnpool and MaxRoiPool, plus
// symbolic shape inference.
#include <cmath>

#include "op_test_util.h"

namespace kiln::testing {
namespace {

Tensor iota_f32(Dims dims) {
  Tensor t(DType::kF32, dims);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i + 1);
  return t;
}

TEST(OpPool, MaxPool2dDefault) {
  OpCall c{"MaxPool", {iota_f32({1, 1, 3, 3})}, {{"kernel_shape", attr_ints({2, 2})}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({1, 1, 2, 2}, {5, 6, 8, 9})));
}

TEST(OpPool, MaxPoolPadsStridesAndIndices) {
  // 4x4 input 1..16, kernel 3, stride 2, pads 1: windows centered on (0,0),(0,2),(2,0),(2,2).
  OpCall c{"MaxPool",
           {iota_f32({1, 1, 4, 4})},
           {{"kernel_shape", attr_ints({3, 3})},
            {"strides", attr_ints({2, 2})},
            {"pads", attr_ints({1, 1, 1, 1})}},
           12,
           2};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 1, 2, 2}, {6, 8, 14, 16})));
  EXPECT_TRUE(tensors_near(out[1], make<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15})));
  // Column-major indices: (h, w) -> w * H + h.
  c.attrs["storage_order"] = attr_int(1);
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[1], make<int64_t>({1, 1, 2, 2}, {5, 13, 7, 15})));
}

TEST(OpPool, MaxPoolIndicesIncludeBatchAndChannel) {
  OpCall c{"MaxPool", {iota_f32({2, 1, 1, 2})}, {{"kernel_shape", attr_ints({1, 2})}}, 12, 2};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 1, 1, 1}, {2, 4})));
  EXPECT_TRUE(tensors_near(out[1], make<int64_t>({2, 1, 1, 1}, {1, 3})));
}

TEST(OpPool, MaxPool1dCeilModeAndUint8) {
  // Length 5, kernel 2, stride 2: floor gives 2 outputs, ceil 3 (the last window is [4]).
  OpCall c{"MaxPool",
           {make<uint8_t>({1, 1, 5}, {3, 1, 4, 1, 5})},
           {{"kernel_shape", attr_ints({2})}, {"strides", attr_ints({2})}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<uint8_t>({1, 1, 2}, {3, 4})));
  c.attrs["ceil_mode"] = attr_int(1);
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<uint8_t>({1, 1, 3}, {3, 4, 5})));
}

TEST(OpPool, MaxPoolCeilModeDropsWindowStartingInPad) {
  // Length 4, kernel 2, stride 2, pad end 1: ceil((4+1-2)/2)+1 = 3, but window 3 would start
  // at 4 (in the pad), so 2 outputs.
  OpCall c{"MaxPool",
           {iota_f32({1, 1, 4})},
           {{"kernel_shape", attr_ints({2})},
            {"strides", attr_ints({2})},
            {"pads", attr_ints({0, 1})},
            {"ceil_mode", attr_int(1)}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({1, 1, 2}, {2, 4})));
}

TEST(OpPool, MaxPoolSameUpperAndDilations) {
  OpCall c{"MaxPool",
           {iota_f32({1, 1, 5})},
           {{"kernel_shape", attr_ints({2})},
            {"auto_pad", attr_string("SAME_UPPER")},
            {"strides", attr_ints({2})}}};
  // out = ceil(5/2) = 3, total pad = 1 at the end: windows [1,2] [3,4] [5,pad].
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({1, 1, 3}, {2, 4, 5})));
  OpCall d{"MaxPool",
           {make<float>({1, 1, 5}, {9, 1, 2, 8, 3})},
           {{"kernel_shape", attr_ints({2})}, {"dilations", attr_ints({3})}}};
  // Windows {0,3} and {1,4}.
  EXPECT_TRUE(tensors_near(run_op(d)[0], make<float>({1, 1, 2}, {9, 3})));
}

TEST(OpPool, MaxPool3dF16) {
  Tensor x(DType::kF16, {1, 1, 2, 2, 2});
  for (int i = 0; i < 8; ++i) x.data<Float16>()[i] = Float16(float(i) - 4.0f);
  OpCall c{"MaxPool", {x}, {{"kernel_shape", attr_ints({2, 2, 2})}}};
  Tensor want(DType::kF16, {1, 1, 1, 1, 1});
  want.data<Float16>()[0] = Float16(3.0f);
  EXPECT_TRUE(tensors_near(run_op(c)[0], want));
}

TEST(OpPool, AveragePoolCountIncludePad) {
  // 2x2 input [[1,2],[3,4]], kernel 2, pads 1 each side -> 3x3 output.
  OpCall c{"AveragePool",
           {iota_f32({1, 1, 2, 2})},
           {{"kernel_shape", attr_ints({2, 2})}, {"pads", attr_ints({1, 1, 1, 1})}}};
  EXPECT_TRUE(
      tensors_near(run_op(c)[0], make<float>({1, 1, 3, 3}, {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4})));
  c.attrs["count_include_pad"] = attr_int(1);
  EXPECT_TRUE(tensors_near(
      run_op(c)[0], make<float>({1, 1, 3, 3}, {0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1})));
}

TEST(OpPool, AveragePoolStridesF64) {
  Tensor x = make<double>({1, 2, 4}, {1, 2, 3, 4, 10, 20, 30, 40});
  OpCall c{"AveragePool", {x}, {{"kernel_shape", attr_ints({2})}, {"strides", attr_ints({2})}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<double>({1, 2, 2}, {1.5, 3.5, 15, 35})));
}

TEST(OpPool, LpPool) {
  OpCall c{"LpPool",
           {make<float>({1, 1, 4}, {3, -4, 1, 1})},
           {{"kernel_shape", attr_ints({2})}, {"strides", attr_ints({2})}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({1, 1, 2}, {5, std::sqrt(2.0f)})));
  c.attrs["p"] = attr_int(1);
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({1, 1, 2}, {7, 2})));
}

TEST(OpPool, GlobalPools) {
  Tensor x = make<float>({1, 2, 2, 2}, {1, 2, 3, 4, -1, -2, -3, -4});
  EXPECT_TRUE(tensors_near(run_op({"GlobalMaxPool", {x}})[0], make<float>({1, 2, 1, 1}, {4, -1})));
  EXPECT_TRUE(
      tensors_near(run_op({"GlobalAveragePool", {x}})[0], make<float>({1, 2, 1, 1}, {2.5, -2.5})));
  EXPECT_TRUE(tensors_near(run_op({"GlobalLpPool", {x}, {{"p", attr_int(1)}}})[0],
                           make<float>({1, 2, 1, 1}, {10, 10})));
}

TEST(OpPool, MaxUnpool) {
  Tensor x = make<float>({1, 1, 2, 2}, {5, 6, 7, 8});
  Tensor i = make<int64_t>({1, 1, 2, 2}, {5, 7, 13, 15});
  OpCall c{"MaxUnpool",
           {x, i},
           {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}},
           11};
  Tensor want(DType::kF32, {1, 1, 4, 4});
  want.data<float>()[5] = 5;
  want.data<float>()[7] = 6;
  want.data<float>()[13] = 7;
  want.data<float>()[15] = 8;
  EXPECT_TRUE(tensors_near(run_op(c)[0], want));
  c.inputs[1] = make<int64_t>({1, 1, 2, 2}, {5, 7, 13, 16});
  EXPECT_THROW(run_op(c), Error);
}

TEST(OpPool, MaxRoiPool) {
  OpCall c{"MaxRoiPool",
           {iota_f32({1, 1, 4, 4}), make<float>({1, 5}, {0, 0, 0, 3, 3})},
           {{"pooled_shape", attr_ints({2, 2})}},
           1};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({1, 1, 2, 2}, {6, 8, 14, 16})));
}

TEST(OpPool, SymbolicShapes) {
  OpCall c{"MaxPool",
           {iota_f32({1, 3, 8, 8})},
           {{"kernel_shape", attr_ints({3, 3})},
            {"strides", attr_ints({2, 2})},
            {"pads", attr_ints({1, 1, 1, 1})}}};
  auto g = make_op_graph(c);
  g->values[size_t(g->nodes[0].inputs[0])].shape = ir::Shape(
      {ir::Dim::sym("N"), ir::Dim::constant(3), ir::Dim::sym("H"), ir::Dim::constant(224)});
  g->values[size_t(g->nodes[0].outputs[0])].shape = ir::Shape::unranked();
  ir::infer_shapes(*g);
  const ir::Shape& s = g->values[size_t(g->nodes[0].outputs[0])].shape;
  ASSERT_EQ(s.rank(), 4);
  EXPECT_EQ(s.dims[0], ir::Dim::sym("N"));
  EXPECT_EQ(s.dims[1], ir::Dim::constant(3));
  EXPECT_FALSE(s.dims[2].is_const());
  EXPECT_EQ(s.dims[3], ir::Dim::constant(112));

  OpCall gp{"GlobalAveragePool", {iota_f32({1, 3, 8, 8})}};
  auto g2 = make_op_graph(gp);
  g2->values[size_t(g2->nodes[0].inputs[0])].shape =
      ir::Shape({ir::Dim::sym("N"), ir::Dim::sym("C"), ir::Dim::sym("H"), ir::Dim::sym("W")});
  g2->values[size_t(g2->nodes[0].outputs[0])].shape = ir::Shape::unranked();
  ir::infer_shapes(*g2);
  EXPECT_EQ(g2->values[size_t(g2->nodes[0].outputs[0])].shape,
            ir::Shape({ir::Dim::sym("N"), ir::Dim::sym("C"), ir::Dim::constant(1),
                       ir::Dim::constant(1)}));
}

TEST(OpPool, Errors) {
  // kernel_shape rank does not match the input's spatial rank.
  EXPECT_THROW(run_op({"MaxPool", {iota_f32({1, 1, 4, 4})}, {{"kernel_shape", attr_ints({2})}}}),
               Error);
  // Kernel larger than the (unpadded) input.
  EXPECT_THROW(run_op({"AveragePool", {iota_f32({1, 1, 2})}, {{"kernel_shape", attr_ints({3})}}}),
               Error);
  // Rank-2 input.
  EXPECT_THROW(run_op({"LpPool", {iota_f32({2, 2})}, {{"kernel_shape", attr_ints({1})}}}), Error);
}

}  // namespace
}  // namespace kiln::testing
