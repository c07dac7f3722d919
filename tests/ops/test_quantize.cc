// Tests of the quantization family (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
// QLinearConv) and of BitCast and NonMaxSuppression, with hand-computed values: per-tensor,
// per-axis and blocked granularity, rounding half to even, saturation and error cases.
#include <cstring>

#include "op_test_util.h"

namespace kiln::testing {
namespace {

using ir::Dim;

TEST(OpQuantize, QuantizePerTensorRoundsHalfToEven) {
  Tensor x = make<float>({5}, {0, 1.5f, 2.5f, -3, 0.5f});
  OpCall c{"QuantizeLinear", {x, Tensor::scalar<float>(1), Tensor::scalar<uint8_t>(128)}, {}, 10};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<uint8_t>({5}, {128, 130, 130, 125, 128})));
  // Saturation to int8, and a scale that divides.
  OpCall s{"QuantizeLinear",
           {make<float>({3}, {300, -300, 3}), Tensor::scalar<float>(2), Tensor::scalar<int8_t>(1)},
           {},
           13};
  EXPECT_TRUE(tensors_near(run_op(s)[0], make<int8_t>({3}, {127, -128, 3})));  // 1.5 -> 2, + 1
  // No zero point: uint8.
  OpCall u{"QuantizeLinear", {make<float>({2}, {-1, 2}), Tensor::scalar<float>(1)}, {}, 19};
  auto out = run_op(u);
  EXPECT_EQ(out[0].dtype(), DType::kU8);
  EXPECT_TRUE(tensors_near(out[0], make<uint8_t>({2}, {0, 2})));
  // int32 input (opset 10).
  OpCall i{"QuantizeLinear",
           {make<int32_t>({2}, {5, -7}), Tensor::scalar<float>(2), Tensor::scalar<int8_t>(0)},
           {},
           10};
  EXPECT_TRUE(tensors_near(run_op(i)[0], make<int8_t>({2}, {2, -4})));  // 2.5->2, -3.5->-4
}

TEST(OpQuantize, QuantizePerAxisAndBlocked) {
  Tensor x = make<float>({2, 2}, {1, 2, 3, 4});
  OpCall a{"QuantizeLinear",
           {x, make<float>({2}, {1, 2}), make<int8_t>({2}, {0, 1})},
           {{"axis", attr_int(0)}},
           13};
  EXPECT_TRUE(tensors_near(run_op(a)[0], make<int8_t>({2, 2}, {1, 2, 3, 3})));
  a.attrs["axis"] = attr_int(-1);
  EXPECT_TRUE(tensors_near(run_op(a)[0], make<int8_t>({2, 2}, {1, 2, 3, 3})));
  // Blocked: x [1, 5], blocks of 2 along axis 1 -> scale [1, 3] (last block is short).
  Tensor xb = make<float>({1, 5}, {1, 2, 3, 4, 5});
  Tensor zb = make<uint8_t>({1, 3}, {0, 0, 10});
  OpCall b{"QuantizeLinear",
           {xb, make<float>({1, 3}, {1, 2, 5}), zb},
           {{"axis", attr_int(1)}, {"block_size", attr_int(2)}},
           21};
  EXPECT_TRUE(tensors_near(run_op(b)[0], make<uint8_t>({1, 5}, {1, 2, 2, 2, 11})));
  // output_dtype without a zero point (opset 21): int16 saturation.
  OpCall o{"QuantizeLinear",
           {make<float>({2}, {-40000, 5}), Tensor::scalar<float>(1)},
           {{"output_dtype", attr_int(int64_t(DType::kI16))}},
           21};
  EXPECT_TRUE(tensors_near(run_op(o)[0], make<int16_t>({2}, {-32768, 5})));
  // f16 input and scale (opset 19).
  OpCall h{"QuantizeLinear",
           {make<Float16>({2}, {Float16(3), Float16(-1)}), Tensor::scalar<Float16>(Float16(0.5f)),
            Tensor::scalar<uint16_t>(10)},
           {},
           21};
  EXPECT_TRUE(tensors_near(run_op(h)[0], make<uint16_t>({2}, {16, 8})));
}

TEST(OpQuantize, QuantizeErrors) {
  Tensor x = make<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  // Per-axis scale of the wrong length.
  EXPECT_THROW(
      run_op({"QuantizeLinear", {x, make<float>({2}, {1, 1})}, {{"axis", attr_int(1)}}, 13}),
      Error);
  // Zero point shape differs from the scale's.
  Tensor s3 = make<float>({3}, {1, 1, 1});
  EXPECT_THROW(run_op({"QuantizeLinear", {x, s3, Tensor::scalar<uint8_t>(0)}, {}, 13}), Error);
  // Blocked scale that does not fit; axis out of range.
  EXPECT_THROW(run_op({"QuantizeLinear",
                       {x, make<float>({2, 1}, {1, 1})},
                       {{"axis", attr_int(1)}, {"block_size", attr_int(2)}},
                       21}),
               Error);
  EXPECT_THROW(
      run_op({"QuantizeLinear", {x, make<float>({2}, {1, 1})}, {{"axis", attr_int(2)}}, 13}),
      Error);
}

TEST(OpQuantize, Dequantize) {
  OpCall c{
      "DequantizeLinear",
      {make<uint8_t>({3}, {0, 128, 255}), Tensor::scalar<float>(2), Tensor::scalar<uint8_t>(128)},
      {},
      10};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({3}, {-256, 0, 254})));
  // Per-axis int8 on axis 1 of [1, 2, 2].
  OpCall a{
      "DequantizeLinear",
      {make<int8_t>({1, 2, 2}, {1, 2, 3, 4}), make<float>({2}, {1, 10}), make<int8_t>({2}, {0, 2})},
      {},
      13};
  EXPECT_TRUE(tensors_near(run_op(a)[0], make<float>({1, 2, 2}, {1, 2, 10, 20})));
  // int32 without a zero point; f16 scale gives f16 output.
  Tensor hs = Tensor::scalar<Float16>(Float16(0.5f));
  OpCall i{"DequantizeLinear", {make<int32_t>({2}, {-3, 7}), hs}, {}, 19};
  auto out = run_op(i);
  EXPECT_EQ(out[0].dtype(), DType::kF16);
  EXPECT_TRUE(tensors_near(out[0], make<Float16>({2}, {Float16(-1.5f), Float16(3.5f)})));
  // Blocked along axis 0, and output_dtype (opset 23).
  OpCall b{"DequantizeLinear",
           {make<int16_t>({3, 1}, {1, 2, 3}), make<float>({2, 1}, {1, 4})},
           {{"axis", attr_int(0)},
            {"block_size", attr_int(2)},
            {"output_dtype", attr_int(int64_t(DType::kF64))}},
           23};
  EXPECT_TRUE(tensors_near(run_op(b)[0], make<double>({3, 1}, {1, 2, 12})));
  // Zero point of another type than x.
  EXPECT_THROW(
      run_op({"DequantizeLinear",
              {make<uint8_t>({1}, {1}), Tensor::scalar<float>(1), Tensor::scalar<int8_t>(0)},
              {},
              13}),
      Error);
}

TEST(OpQuantize, QuantizeSymbolicShape) {
  OpCall c{
      "QuantizeLinear", {random_tensor(DType::kF32, {2, 3}), make<float>({3}, {1, 2, 3})}, {}, 13};
  c.input_shapes = {ir::Shape({Dim::sym("n"), Dim::constant(3)}), ir::Shape({Dim::constant(3)})};
  auto g = make_op_graph(c);
  const auto& v = g->values[size_t(g->nodes[0].outputs[0])];
  EXPECT_EQ(v.dtype, DType::kU8);
  EXPECT_EQ(v.shape, ir::Shape({Dim::sym("n"), Dim::constant(3)}));
}

TEST(OpQuantize, DynamicQuantize) {
  Tensor x = make<float>({6}, {0, 2, -3, -2.5f, 1.34f, 0.5f});
  OpCall c{"DynamicQuantizeLinear", {x}, {}, 11, 3};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<uint8_t>({6}, {153, 255, 0, 26, 221, 179})));
  EXPECT_TRUE(tensors_near(out[1], Tensor::scalar<float>(5.0f / 255), 1e-7));
  EXPECT_TRUE(tensors_near(out[2], Tensor::scalar<uint8_t>(153)));
  // All zeros: scale 1/255, zero point 0.
  auto z = run_op({"DynamicQuantizeLinear", {make<float>({2}, {0, 0})}, {}, 11, 3});
  EXPECT_TRUE(tensors_near(z[0], make<uint8_t>({2}, {0, 0})));
  EXPECT_TRUE(tensors_near(z[2], Tensor::scalar<uint8_t>(0)));
  EXPECT_THROW(run_op({"DynamicQuantizeLinear", {make<double>({1}, {1})}, {}, 11, 3}), Error);
}

OpCall qconv(Tensor x, Tensor w, float y_scale, uint8_t x_zp, Tensor bias = {}) {
  OpCall c{"QLinearConv",
           {x, Tensor::scalar<float>(1), Tensor::scalar<uint8_t>(x_zp), w, Tensor::scalar<float>(1),
            Tensor::scalar<uint8_t>(0), Tensor::scalar<float>(y_scale), Tensor::scalar<uint8_t>(0),
            bias},
           {},
           10};
  return c;
}

TEST(OpQuantize, QLinearConv) {
  Tensor x = make<uint8_t>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = make<uint8_t>({1, 1, 2, 2}, {1, 0, 0, 1});
  EXPECT_TRUE(
      tensors_near(run_op(qconv(x, w, 1, 0))[0], make<uint8_t>({1, 1, 2, 2}, {6, 8, 12, 14})));
  // x_zp 1 -> sums 4, 6, 10, 12; bias 1 and y_scale 2 -> 2.5, 3.5, 5.5, 6.5 -> half to even.
  EXPECT_TRUE(tensors_near(run_op(qconv(x, w, 2, 1, make<int32_t>({1}, {1})))[0],
                           make<uint8_t>({1, 1, 2, 2}, {2, 4, 6, 6})));
  // SAME_UPPER padding keeps 3x3 (pad only at the end); strides 2 -> 2x2.
  OpCall p = qconv(x, w, 1, 0);
  p.attrs["auto_pad"] = attr_string("SAME_UPPER");
  EXPECT_TRUE(
      tensors_near(run_op(p)[0], make<uint8_t>({1, 1, 3, 3}, {6, 8, 3, 12, 14, 6, 7, 8, 9})));
  p.attrs["strides"] = attr_ints({2, 2});
  EXPECT_TRUE(tensors_near(run_op(p)[0], make<uint8_t>({1, 1, 2, 2}, {6, 3, 7, 9})));
  // Per-channel w_scale, two groups, int8 output saturating.
  Tensor x2 = make<int8_t>({1, 2, 1, 1}, {100, -100});
  Tensor w2 = make<int8_t>({2, 1, 1, 1}, {2, 1});
  OpCall g{
      "QLinearConv",
      {x2, Tensor::scalar<float>(1), Tensor::scalar<int8_t>(0), w2, make<float>({2}, {1, 0.5f}),
       make<int8_t>({2}, {0, 0}), Tensor::scalar<float>(1), Tensor::scalar<int8_t>(0)},
      {{"group", attr_int(2)}},
      10};
  EXPECT_TRUE(tensors_near(run_op(g)[0], make<int8_t>({1, 2, 1, 1}, {127, -50})));
  // Channel mismatch fails.
  EXPECT_THROW(run_op(qconv(x, make<uint8_t>({1, 2, 1, 1}, {1, 1}), 1, 0)), Error);
}

TEST(OpQuantize, BitCast) {
  OpCall c{
      "BitCast", {make<float>({2}, {1.0f, -0.0f})}, {{"to", attr_int(int64_t(DType::kI32))}}, 26};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int32_t>({2}, {0x3f800000, INT32_MIN})));
  OpCall b{"BitCast", {make<int8_t>({3}, {-1, 0, 5})}, {{"to", attr_int(int64_t(DType::kU8))}}, 26};
  EXPECT_TRUE(tensors_near(run_op(b)[0], make<uint8_t>({3}, {255, 0, 5})));
  OpCall bo{
      "BitCast", {make<bool>({2}, {true, false})}, {{"to", attr_int(int64_t(DType::kU8))}}, 26};
  EXPECT_TRUE(tensors_near(run_op(bo)[0], make<uint8_t>({2}, {1, 0})));
  // Sizes differ.
  EXPECT_THROW(
      run_op({"BitCast", {make<float>({1}, {1})}, {{"to", attr_int(int64_t(DType::kI64))}}, 26}),
      Error);
}

TEST(OpQuantize, NonMaxSuppression) {
  Tensor boxes = make<float>({1, 6, 4}, {0, 0,  1, 1,  0, 0.1f,  1, 1.1f,  0, -0.1f, 1, 0.9f,
                                         0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100,   1, 101});
  Tensor scores = make<float>({1, 1, 6}, {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f});
  OpCall c{"NonMaxSuppression",
           {boxes, scores, Tensor::scalar<int64_t>(3), Tensor::scalar<float>(0.5f),
            Tensor::scalar<float>(0)},
           {},
           11};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int64_t>({3, 3}, {0, 0, 3, 0, 0, 0, 0, 0, 5})));
  // A score threshold of 0.4 drops box 5; max 2 keeps the two best.
  c.inputs[4] = Tensor::scalar<float>(0.4f);
  c.inputs[2] = Tensor::scalar<int64_t>(2);
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int64_t>({2, 3}, {0, 0, 3, 0, 0, 0})));
  // No max_output_boxes_per_class: nothing selected.
  OpCall none{"NonMaxSuppression", {boxes, scores}, {}, 11};
  EXPECT_EQ(run_op(none)[0].dims(), (Dims{0, 3}));
  // Center-point format: [xc, yc, w, h].
  Tensor cb = make<float>({1, 2, 4}, {0.5f, 0.5f, 1, 1, 0.5f, 0.6f, 1, 1});
  OpCall ce{"NonMaxSuppression",
            {cb, make<float>({1, 1, 2}, {0.5f, 0.9f}), Tensor::scalar<int64_t>(5),
             Tensor::scalar<float>(0.5f)},
            {{"center_point_box", attr_int(1)}},
            11};
  EXPECT_TRUE(tensors_near(run_op(ce)[0], make<int64_t>({1, 3}, {0, 0, 1})));
  // Load-time shape: [?, 3].
  auto g = make_op_graph(c);
  const auto& s = g->values[size_t(g->nodes[0].outputs[0])].shape;
  ASSERT_EQ(s.rank(), 2);
  EXPECT_FALSE(s.dims[0].is_const());
  EXPECT_EQ(s.dims[1], Dim::constant(3));
  // Boxes and scores disagree on the box count.
  EXPECT_THROW(
      run_op({"NonMaxSuppression", {boxes, make<float>({1, 1, 5}, {1, 1, 1, 1, 1})}, {}, 11}),
      Error);
}

}  // namespace
}  // namespace kiln::testing
