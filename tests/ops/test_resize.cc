// Tests of Resize (opsets 10, 11+, 18 axes/policy), Upsample (7, 9) and GridSample: modes,
// coordinate transforms, scales vs sizes, extrapolation, non-float types and symbolic shapes.
#include "op_test_util.h"

namespace kiln::testing {
namespace {

Tensor scales(std::vector<float> v) { return make<float>({int64_t(v.size())}, v); }
Tensor sizes(std::vector<int64_t> v) { return make<int64_t>({int64_t(v.size())}, v); }

TEST(OpResize, NearestUpsampleScales) {
  Tensor x = make<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  OpCall c{"Resize", {x, Tensor(), scales({1, 1, 2, 2})}, {{"mode", attr_string("nearest")}}, 19};
  c.inputs_as_graph_inputs = false;
  EXPECT_TRUE(tensors_near(
      run_op(c)[0], make<float>({1, 1, 4, 4}, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4})));
}

TEST(OpResize, LinearHalfPixelAndAlignCorners) {
  OpCall c{"Resize",
           {make<float>({2}, {1, 2}), Tensor(), scales({2})},
           {{"mode", attr_string("linear")}},
           13};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({4}, {1, 1.25, 1.75, 2})));
  OpCall a{"Resize",
           {make<float>({2}, {0, 10}), Tensor(), Tensor(), sizes({3})},
           {{"mode", attr_string("linear")},
            {"coordinate_transformation_mode", attr_string("align_corners")}},
           13};
  EXPECT_TRUE(tensors_near(run_op(a)[0], make<float>({3}, {0, 5, 10})));
}

TEST(OpResize, CubicAsymmetricKeepsSamples) {
  // Asymmetric upsampling by 2 hits every input sample exactly at even outputs.
  Tensor x = make<double>({4}, {1, 3, 2, 5});
  OpCall c{"Resize",
           {x, Tensor(), scales({2})},
           {{"mode", attr_string("cubic")},
            {"coordinate_transformation_mode", attr_string("asymmetric")}},
           18};
  Tensor y = run_op(c)[0];
  ASSERT_EQ(y.dims(), Dims({8}));
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(y.data<double>()[2 * i], x.data<double>()[i]);
}

TEST(OpResize, Opset10AndUpsample) {
  Tensor x = make<float>({1, 2}, {1, 2});
  OpCall r10{"Resize", {x, scales({1, 2})}, {}, 10};
  EXPECT_TRUE(tensors_near(run_op(r10)[0], make<float>({1, 4}, {1, 1, 2, 2})));
  OpCall u7{"Upsample", {x}, {{"scales", attr_floats({1, 3})}}, 7};
  EXPECT_TRUE(tensors_near(run_op(u7)[0], make<float>({1, 6}, {1, 1, 1, 2, 2, 2})));
  OpCall u9{"Upsample", {x, scales({2, 2})}, {{"mode", attr_string("linear")}}, 9};
  EXPECT_TRUE(tensors_near(run_op(u9)[0], make<float>({2, 4}, {1, 1.5, 2, 2, 1, 1.5, 2, 2})));
}

TEST(OpResize, AxesAndAspectPolicy) {
  Tensor x = make<float>({2, 2}, {1, 2, 3, 4});
  OpCall c{"Resize", {x, Tensor(), Tensor(), sizes({4})}, {{"axes", attr_ints({-1})}}, 18};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({2, 4}, {1, 1, 2, 2, 3, 3, 4, 4})));
  // not_larger: sizes [4, 6] on a 2x2 input -> one scale min(2, 3) = 2 -> 4x4.
  OpCall p{"Resize",
           {x, Tensor(), Tensor(), sizes({4, 6})},
           {{"keep_aspect_ratio_policy", attr_string("not_larger")}},
           18};
  EXPECT_EQ(run_op(p)[0].dims(), Dims({4, 4}));
  p.attrs["keep_aspect_ratio_policy"] = attr_string("not_smaller");
  EXPECT_EQ(run_op(p)[0].dims(), Dims({6, 6}));
}

TEST(OpResize, TfCropAndResizeExtrapolation) {
  // roi [0.5, 1.5] over [0, 10, 20]: x_original = 1 + x * 2 * 2 / 2 -> 1, 3 (outside).
  OpCall c{"Resize",
           {make<float>({3}, {0, 10, 20}), make<float>({2}, {0.5f, 1.5f}), Tensor(), sizes({2})},
           {{"mode", attr_string("linear")},
            {"coordinate_transformation_mode", attr_string("tf_crop_and_resize")},
            {"extrapolation_value", attr_float(-1)}},
           13};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({2}, {10, -1})));
}

TEST(OpResize, NearestIntAndString) {
  OpCall c{"Resize",
           {make<int32_t>({2}, {7, -3}), Tensor(), scales({1.5f})},
           {{"nearest_mode", attr_string("floor")},
            {"coordinate_transformation_mode", attr_string("asymmetric")}},
           13};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int32_t>({3}, {7, 7, -3})));
  c.inputs[0] = make<std::string>({2}, {"a", "b"});
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<std::string>({3}, {"a", "a", "b"})));
  // Linear on uint8 rounds to nearest.
  OpCall u{"Resize",
           {make<uint8_t>({2}, {0, 255}), Tensor(), Tensor(), sizes({3})},
           {{"mode", attr_string("linear")},
            {"coordinate_transformation_mode", attr_string("align_corners")}},
           13};
  EXPECT_TRUE(tensors_near(run_op(u)[0], make<uint8_t>({3}, {0, 128, 255})));
}

TEST(OpResize, SymbolicShape) {
  OpCall c{
      "Resize", {make<float>({1, 1, 2, 2}, {1, 2, 3, 4}), Tensor(), scales({1, 1, 2, 2})}, {}, 19};
  c.inputs_as_graph_inputs = false;
  auto g = make_op_graph(c);
  int in = g->nodes[0].inputs[0];
  g->values[size_t(in)].constant = Tensor();
  g->values[size_t(in)].is_graph_input = true;
  g->values[size_t(in)].shape =
      ir::Shape({ir::Dim::sym("N"), ir::Dim::sym("C"), ir::Dim::sym("H"), ir::Dim::constant(5)});
  g->values[size_t(g->nodes[0].outputs[0])].shape = ir::Shape::unranked();
  ir::infer_shapes(*g);
  const ir::Shape& s = g->values[size_t(g->nodes[0].outputs[0])].shape;
  ASSERT_EQ(s.rank(), 4);
  EXPECT_EQ(s.dims[0], ir::Dim::sym("N"));
  EXPECT_EQ(s.dims[1], ir::Dim::sym("C"));
  EXPECT_FALSE(s.dims[2].is_const());
  EXPECT_EQ(s.dims[3], ir::Dim::constant(10));
}

TEST(OpResize, Errors) {
  Tensor x = make<float>({2, 2}, {1, 2, 3, 4});
  EXPECT_THROW(run_op({"Resize", {x, Tensor(), scales({2})}, {}, 13}), Error);  // wrong length
  EXPECT_THROW(
      run_op({"Resize", {x, Tensor(), scales({2, 2})}, {{"mode", attr_string("area")}}, 13}),
      Error);
  EXPECT_THROW(run_op({"Resize", {x, Tensor(), scales({1, 1}), sizes({2, 2})}, {}, 13}), Error);
}

TEST(OpGridSample, IdentityAndPadding) {
  Tensor x = make<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  // Grid entries are (x, y); corners with align_corners reproduce the input.
  Tensor grid = make<float>({1, 2, 2, 2}, {-1, -1, 1, -1, -1, 1, 1, 1});
  OpCall c{"GridSample", {x, grid}, {{"align_corners", attr_int(1)}}, 16};
  EXPECT_TRUE(tensors_near(run_op(c)[0], x));
  // The center blends all four; far outside reads zeros or the border.
  Tensor g2 = make<float>({1, 1, 2, 2}, {0, 0, 3, 3});
  OpCall z{"GridSample", {x, g2}, {{"align_corners", attr_int(1)}}, 16};
  EXPECT_TRUE(tensors_near(run_op(z)[0], make<float>({1, 1, 1, 2}, {2.5, 0})));
  z.attrs["padding_mode"] = attr_string("border");
  EXPECT_TRUE(tensors_near(run_op(z)[0], make<float>({1, 1, 1, 2}, {2.5, 4})));
  z.attrs["mode"] = attr_string("nearest");
  z.opset = 20;
  EXPECT_TRUE(tensors_near(run_op(z)[0], make<float>({1, 1, 1, 2}, {1, 4})));  // rint(0.5) = 0
  EXPECT_THROW(run_op({"GridSample", {x, make<float>({1, 1, 2, 3}, {0, 0, 0, 0, 0, 0})}, {}, 16}),
               Error);
}

}  // namespace
}  // namespace kiln::testing
