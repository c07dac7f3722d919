// Tests of the convolution reference kernels: Conv, ConvTranspose and ConvInteger. Besides
// hand-computed cases, random cases are checked against a direct per-element evaluation of the
// defining sums (with explicit bounds tests), written independently of the kernels' row loops.
#include "op_test_util.h"

namespace kiln::testing {
namespace {

using ir::Dim;

// Direct Conv / ConvTranspose in double over 2-D spatial inputs (N, C, H, W), explicit pads.
struct Geom2d {
  int64_t group = 1;
  Dims strides{1, 1}, dilations{1, 1}, pads{0, 0, 0, 0};
};

Tensor naive_conv2d(const Tensor& x, const Tensor& w, const Tensor* b, const Geom2d& g) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t M = w.dim(0), KH = w.dim(2), KW = w.dim(3), cg = C / g.group, mg = M / g.group;
  const int64_t OH =
      (H + g.pads[0] + g.pads[2] - ((KH - 1) * g.dilations[0] + 1)) / g.strides[0] + 1;
  const int64_t OW =
      (W + g.pads[1] + g.pads[3] - ((KW - 1) * g.dilations[1] + 1)) / g.strides[1] + 1;
  Tensor y(DType::kF32, {N, M, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = b ? b->element_as_double(m) : 0.0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t ih = oh * g.strides[0] + kh * g.dilations[0] - g.pads[0];
                int64_t iw = ow * g.strides[1] + kw * g.dilations[1] - g.pads[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                int64_t ic = (m / mg) * cg + c;
                s += x.element_as_double(((n * C + ic) * H + ih) * W + iw) *
                     w.element_as_double(((m * cg + c) * KH + kh) * KW + kw);
              }
          y.data<float>()[((n * M + m) * OH + oh) * OW + ow] = float(s);
        }
  return y;
}

Tensor naive_conv_transpose2d(const Tensor& x, const Tensor& w, const Geom2d& g, Dims out_hw) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t mg = w.dim(1), KH = w.dim(2), KW = w.dim(3), cg = C / g.group, M = mg * g.group;
  Tensor y(DType::kF32, {N, M, out_hw[0], out_hw[1]});
  std::vector<double> acc(size_t(y.numel()), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ic = 0; ic < C; ++ic)
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw)
          for (int64_t m = 0; m < mg; ++m)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t oh = ih * g.strides[0] + kh * g.dilations[0] - g.pads[0];
                int64_t ow = iw * g.strides[1] + kw * g.dilations[1] - g.pads[1];
                if (oh < 0 || oh >= out_hw[0] || ow < 0 || ow >= out_hw[1]) continue;
                int64_t oc = (ic / cg) * mg + m;
                acc[size_t(((n * M + oc) * out_hw[0] + oh) * out_hw[1] + ow)] +=
                    x.element_as_double(((n * C + ic) * H + ih) * W + iw) *
                    w.element_as_double(((ic * mg + m) * KH + kh) * KW + kw);
              }
  for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] = float(acc[size_t(i)]);
  return y;
}

std::map<std::string, ir::Attribute> attrs_of(const Geom2d& g) {
  return {{"group", attr_int(g.group)},
          {"strides", attr_ints(g.strides)},
          {"dilations", attr_ints(g.dilations)},
          {"pads", attr_ints(g.pads)}};
}

TEST(OpConv, BasicWithPadding) {
  // The ONNX basic case: 5x5 ramp, 3x3 ones kernel, pad 1.
  std::vector<float> xs(25);
  for (int i = 0; i < 25; ++i) xs[size_t(i)] = float(i);
  Tensor x = make<float>({1, 1, 5, 5}, xs);
  Tensor w = make<float>({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  auto out = run_op({"Conv", {x, w}, {{"pads", attr_ints({1, 1, 1, 1})}}});
  ASSERT_EQ(out[0].dims(), (Dims{1, 1, 5, 5}));
  const float want[] = {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                        117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
  for (int i = 0; i < 25; ++i) EXPECT_EQ(out[0].data<float>()[i], want[i]) << i;
  // Without padding, kernel_shape given explicitly.
  out = run_op({"Conv", {x, w}, {{"kernel_shape", attr_ints({3, 3})}}});
  EXPECT_TRUE(
      tensors_near(out[0], make<float>({1, 1, 3, 3}, {54, 63, 72, 99, 108, 117, 144, 153, 162})));
}

TEST(OpConv, RandomAgainstDirectSums) {
  struct Case {
    Dims x, w;
    Geom2d g;
    bool bias;
  };
  std::vector<Case> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, {1, 1}, {1, 1}, {1, 1, 1, 1}}, true},
      {{1, 4, 9, 8}, {6, 2, 3, 2}, {2, {2, 3}, {1, 1}, {1, 0, 2, 1}}, false},
      {{1, 4, 8, 8}, {4, 1, 3, 3}, {4, {1, 1}, {2, 2}, {2, 2, 2, 2}}, true},  // depthwise
      {{1, 2, 5, 11}, {3, 2, 1, 4}, {1, {3, 2}, {1, 3}, {0, 3, 0, 0}}, false},
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    Tensor x = random_tensor(DType::kF32, c.x, -1, 1, ++seed);
    Tensor w = random_tensor(DType::kF32, c.w, -1, 1, ++seed);
    Tensor b = random_tensor(DType::kF32, {c.w[0]}, -1, 1, ++seed);
    std::vector<Tensor> ins{x, w};
    if (c.bias) ins.push_back(b);
    auto out = run_op({"Conv", ins, attrs_of(c.g)});
    EXPECT_TRUE(tensors_near(out[0], naive_conv2d(x, w, c.bias ? &b : nullptr, c.g), 1e-5, 1e-5));
  }
}

TEST(OpConv, AutoPadSameUpperLower1d) {
  // in 4, k 2, stride 1: total pad 1, at the end (UPPER) or the beginning (LOWER).
  Tensor x = make<float>({1, 1, 4}, {1, 2, 3, 4});
  Tensor w = make<float>({1, 1, 2}, {1, 10});
  auto up = run_op({"Conv", {x, w}, {{"auto_pad", attr_string("SAME_UPPER")}}});
  EXPECT_TRUE(tensors_near(up[0], make<float>({1, 1, 4}, {21, 32, 43, 4})));
  auto lo = run_op({"Conv", {x, w}, {{"auto_pad", attr_string("SAME_LOWER")}}});
  EXPECT_TRUE(tensors_near(lo[0], make<float>({1, 1, 4}, {10, 21, 32, 43})));
  auto valid =
      run_op({"Conv", {x, w}, {{"auto_pad", attr_string("VALID")}, {"strides", attr_ints({2})}}});
  EXPECT_TRUE(tensors_near(valid[0], make<float>({1, 1, 2}, {21, 43})));
  // Stride 2 on 5: out ceil(5/2) = 3.
  Tensor x5 = make<float>({1, 1, 5}, {1, 2, 3, 4, 5});
  auto s2 = run_op({"Conv",
                    {x5, make<float>({1, 1, 1}, {1})},
                    {{"auto_pad", attr_string("SAME_UPPER")}, {"strides", attr_ints({2})}}});
  EXPECT_TRUE(tensors_near(s2[0], make<float>({1, 1, 3}, {1, 3, 5})));
}

TEST(OpConv, ThreeDAndHalf) {
  Tensor x = make<float>({1, 1, 2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor w = make<float>({1, 1, 2, 2, 2}, std::vector<float>(8, 1.0f));
  EXPECT_TRUE(tensors_near(run_op({"Conv", {x, w}})[0], make<float>({1, 1, 1, 1, 1}, {36})));
  Tensor xh = make<Float16>({1, 1, 3}, {Float16(1), Float16(2), Float16(3)});
  Tensor wh = make<Float16>({2, 1, 2}, {Float16(1), Float16(1), Float16(0.5f), Float16(0)});
  Tensor bh = make<Float16>({2}, {Float16(0), Float16(1)});
  EXPECT_TRUE(
      tensors_near(run_op({"Conv", {xh, wh, bh}})[0],
                   make<Float16>({1, 2, 2}, {Float16(3), Float16(5), Float16(1.5f), Float16(2)})));
}

TEST(OpConv, Errors) {
  Tensor x(DType::kF32, {1, 3, 5, 5});
  EXPECT_THROW(run_op({"Conv", {x, Tensor(DType::kF32, {2, 2, 3, 3})}}), Error);  // channels
  EXPECT_THROW(run_op({"Conv", {x, Tensor(DType::kF32, {2, 3, 7, 7})}}), Error);  // kernel too big
  EXPECT_THROW(run_op({"Conv", {x, Tensor(DType::kF32, {2, 3, 3, 3}), Tensor(DType::kF32, {3})}}),
               Error);  // bias size
  EXPECT_THROW(
      run_op({"Conv", {x, Tensor(DType::kF32, {2, 3, 3, 3})}, {{"strides", attr_ints({1})}}}),
      Error);  // strides rank
  EXPECT_THROW(run_op({"Conv", {x, Tensor(DType::kF32, {3, 1, 3, 3})}, {{"group", attr_int(2)}}}),
               Error);  // 3 channels in 2 groups
}

// Load-time shape of a Conv-like node on symbolic inputs.
ir::Shape infer_symbolic(const std::string& op, std::vector<ir::Shape> shapes,
                         std::map<std::string, ir::Attribute> attrs) {
  std::vector<std::pair<DType, ir::Shape>> inputs;
  for (auto& s : shapes) inputs.emplace_back(DType::kF32, s);
  return infer_symbolic_shapes(op, inputs, attrs)[0];
}

TEST(OpConv, SymbolicShapes) {
  ir::Shape x({Dim::sym("batch"), Dim::constant(3), Dim::sym("h"), Dim::sym("w")});
  ir::Shape w({Dim::constant(16), Dim::constant(3), Dim::constant(3), Dim::constant(3)});
  EXPECT_EQ(infer_symbolic("Conv", {x, w}, {{"pads", attr_ints({1, 1, 1, 1})}}).to_string(),
            "[batch,16,h,w]");
  EXPECT_EQ(
      infer_symbolic("Conv", {x, w},
                     {{"auto_pad", attr_string("SAME_UPPER")}, {"strides", attr_ints({2, 2})}})
          .to_string(),
      "[batch,16,ceil(h/2),ceil(w/2)]");
  ir::Shape x2({Dim::sym("batch"), Dim::constant(3), Dim::constant(224), Dim::constant(224)});
  ir::Shape w7({Dim::constant(64), Dim::constant(3), Dim::constant(7), Dim::constant(7)});
  EXPECT_EQ(infer_symbolic("Conv", {x2, w7},
                           {{"pads", attr_ints({3, 3, 3, 3})}, {"strides", attr_ints({2, 2})}})
                .to_string(),
            "[batch,64,112,112]");
  ir::Shape wt({Dim::constant(3), Dim::constant(8), Dim::constant(2), Dim::constant(2)});
  EXPECT_EQ(infer_symbolic("ConvTranspose", {x2, wt}, {{"strides", attr_ints({2, 2})}}).to_string(),
            "[batch,8,448,448]");
  EXPECT_FALSE(infer_symbolic("Conv", {ir::Shape::unranked(), ir::Shape::unranked()}, {}).has_rank);
  EXPECT_THROW(
      infer_symbolic(
          "Conv",
          {x, ir::Shape({Dim::constant(16), Dim::constant(4), Dim::constant(3), Dim::constant(3)})},
          {}),
      Error);
}

TEST(OpConvTranspose, Hand1d) {
  // y[i*s + k] += x[i] * w[k]
  Tensor x = make<float>({1, 1, 3}, {1, 2, 3});
  Tensor w = make<float>({1, 1, 2}, {1, 10});
  EXPECT_TRUE(
      tensors_near(run_op({"ConvTranspose", {x, w}})[0], make<float>({1, 1, 4}, {1, 12, 23, 30})));
  auto s2 = run_op(
      {"ConvTranspose", {x, w}, {{"strides", attr_ints({2})}, {"output_padding", attr_ints({1})}}});
  EXPECT_TRUE(tensors_near(s2[0], make<float>({1, 1, 7}, {1, 10, 2, 20, 3, 30, 0})));
  auto p = run_op({"ConvTranspose",
                   {x, w, make<float>({1}, {100})},
                   {{"strides", attr_ints({2})}, {"pads", attr_ints({1, 1})}}});
  EXPECT_TRUE(tensors_near(p[0], make<float>({1, 1, 4}, {110, 102, 120, 103})));
  // output_shape larger than natural: extra elements at the end get only the bias.
  auto os = run_op(
      {"ConvTranspose", {x, w}, {{"strides", attr_ints({2})}, {"output_shape", attr_ints({8})}}});
  EXPECT_TRUE(tensors_near(os[0], make<float>({1, 1, 8}, {1, 10, 2, 20, 3, 30, 0, 0})));
  // SAME_UPPER: out = in * stride = 6, total padding 0.
  auto same = run_op({"ConvTranspose",
                      {x, w},
                      {{"strides", attr_ints({2})}, {"auto_pad", attr_string("SAME_UPPER")}}});
  EXPECT_TRUE(tensors_near(same[0], make<float>({1, 1, 6}, {1, 10, 2, 20, 3, 30})));
}

TEST(OpConvTranspose, RandomAgainstDirectSums) {
  struct Case {
    Dims x, w;
    Geom2d g;
  };
  std::vector<Case> cases = {
      {{1, 2, 3, 4}, {2, 3, 3, 3}, {1, {1, 1}, {1, 1}, {0, 0, 0, 0}}},
      {{2, 4, 3, 3}, {4, 2, 3, 2}, {2, {2, 3}, {2, 1}, {1, 0, 1, 2}}},
  };
  uint64_t seed = 50;
  for (const Case& c : cases) {
    Tensor x = random_tensor(DType::kF32, c.x, -1, 1, ++seed);
    Tensor w = random_tensor(DType::kF32, c.w, -1, 1, ++seed);
    Dims out_hw;
    for (int i = 0; i < 2; ++i)
      out_hw.push_back(c.g.strides[size_t(i)] * (c.x[size_t(i) + 2] - 1) +
                       (c.w[size_t(i) + 2] - 1) * c.g.dilations[size_t(i)] + 1 -
                       c.g.pads[size_t(i)] - c.g.pads[size_t(i) + 2]);
    auto out = run_op({"ConvTranspose", {x, w}, attrs_of(c.g)});
    EXPECT_TRUE(tensors_near(out[0], naive_conv_transpose2d(x, w, c.g, out_hw), 1e-5, 1e-5));
  }
}

TEST(OpConvTranspose, Errors) {
  Tensor x(DType::kF32, {1, 3, 4, 4});
  EXPECT_THROW(run_op({"ConvTranspose", {x, Tensor(DType::kF32, {2, 1, 3, 3})}}), Error);
  EXPECT_THROW(run_op({"ConvTranspose",
                       {x, Tensor(DType::kF32, {3, 1, 2, 2})},
                       {{"pads", attr_ints({3, 3, 3, 3})}}}),
               Error);  // negative output size
}

TEST(OpConvInteger, ZeroPoints) {
  Tensor x = make<uint8_t>({1, 1, 3}, {5, 6, 7});
  Tensor w = make<uint8_t>({2, 1, 2}, {1, 2, 3, 3});
  // x - 5 = [0,1,2]; w - [1,3] per channel = [[0,1],[0,0]]; pad 1 contributes the zero point.
  auto out = run_op({"ConvInteger",
                     {x, w, make<uint8_t>({}, {5}), make<uint8_t>({2}, {1, 3})},
                     {{"pads", attr_ints({1, 1})}},
                     10});
  EXPECT_TRUE(tensors_near(out[0], make<int32_t>({1, 2, 4}, {0, 1, 2, 0, 0, 0, 0, 0})));
  Tensor wi = make<int8_t>({1, 1, 2}, {-1, 1});
  EXPECT_TRUE(
      tensors_near(run_op({"ConvInteger", {x, wi}, {}, 10})[0], make<int32_t>({1, 1, 2}, {1, 1})));
  EXPECT_THROW(run_op({"ConvInteger", {x, w, make<uint8_t>({2}, {1, 2})}, {}, 10}), Error);
}

}  // namespace
}  // namespace kiln::testing
