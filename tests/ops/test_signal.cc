// DFT, STFT, windows, MelWeightMatrix and Det on inputs small enough to transform by hand.
#include "op_test_util.h"

namespace kiln::testing {
namespace {

Tensor f32(Dims d, std::vector<float> v) { return make<float>(std::move(d), std::move(v)); }
Tensor i64(int64_t v) { return Tensor::scalar<int64_t>(v); }

// DFT of [1, 2, 3, 4]: [10, -2+2i, -2, -2-2i].
const Tensor kSignal = f32({1, 4, 1}, {1, 2, 3, 4});
const Tensor kSpectrum = f32({1, 4, 2}, {10, 0, -2, 2, -2, 0, -2, -2});

TEST(OpSignal, DftForwardInverseOnesided) {
  EXPECT_TRUE(tensors_near(run_op({"DFT", {kSignal}, {}, 17})[0], kSpectrum));
  OpCall one{"DFT", {kSignal}, {{"onesided", attr_int(1)}}, 17};
  EXPECT_TRUE(tensors_near(run_op(one)[0], f32({1, 3, 2}, {10, 0, -2, 2, -2, 0})));
  OpCall inv{"DFT", {kSpectrum}, {{"inverse", attr_int(1)}}, 17};
  EXPECT_TRUE(tensors_near(run_op(inv)[0], f32({1, 4, 2}, {1, 0, 2, 0, 3, 0, 4, 0})));
  // irfft: bins 0..n/2 in, a real signal of n = 2*(3-1) = 4 out.
  OpCall irfft{"DFT",
               {f32({1, 3, 2}, {10, 0, -2, 2, -2, 0})},
               {{"onesided", attr_int(1)}, {"inverse", attr_int(1)}},
               17};
  EXPECT_TRUE(tensors_near(run_op(irfft)[0], kSignal));
}

TEST(OpSignal, DftLengthAndAxisInput) {
  // dft_length 2 reads [1, 2]; 6 zero-pads.
  OpCall trunc{"DFT", {kSignal, i64(2)}, {}, 17};
  EXPECT_TRUE(tensors_near(run_op(trunc)[0], f32({1, 2, 2}, {3, 0, -1, 0})));
  OpCall pad{"DFT", {f32({1, 2, 1}, {1, 1}), i64(4)}, {}, 17};
  EXPECT_TRUE(tensors_near(run_op(pad)[0], f32({1, 4, 2}, {2, 0, 1, -1, 0, 0, 1, 1})));
  // Opset 20: axis is input 2 (default -2); here the transform runs over dim 0 of a [4, 1, 1].
  Tensor col = f32({4, 1, 1}, {1, 2, 3, 4});
  OpCall ax{"DFT", {col, Tensor(), i64(0)}, {}, 20};
  EXPECT_TRUE(tensors_near(run_op(ax)[0], f32({4, 1, 2}, {10, 0, -2, 2, -2, 0, -2, -2})));
  OpCall def{"DFT", {kSignal}, {}, 20};
  EXPECT_TRUE(tensors_near(run_op(def)[0], kSpectrum));
  // The last dim (real/imaginary) is not a signal axis.
  OpCall bad{"DFT", {kSignal, Tensor(), i64(-1)}, {}, 20};
  EXPECT_THROW(run_op(bad), Error);
  OpCall three{"DFT", {f32({1, 1, 3}, {1, 2, 3})}, {}, 17};
  EXPECT_THROW(run_op(three), Error);
}

TEST(OpSignal, DftDoubleAndSymbolic) {
  OpCall d{"DFT", {make<double>({1, 2, 1}, {1, 3})}, {}, 17};
  EXPECT_TRUE(tensors_near(run_op(d)[0], make<double>({1, 2, 2}, {4, 0, -2, 0}), 1e-12));
  OpCall s{"DFT", {kSignal}, {{"onesided", attr_int(1)}}, 17};
  s.input_shapes = {ir::Shape({ir::Dim::sym("b"), ir::Dim::constant(8), ir::Dim::constant(1)})};
  auto g = make_op_graph(s);
  EXPECT_EQ(g->values[size_t(g->nodes[0].outputs[0])].shape.to_string(), "[b,5,2]");
}

TEST(OpSignal, Stft) {
  Tensor x = f32({1, 4, 1}, {1, 2, 3, 4});
  OpCall c{"STFT", {x, i64(2), Tensor(), i64(2)}, {}, 17};
  EXPECT_TRUE(tensors_near(run_op(c)[0], f32({1, 2, 2, 2}, {3, 0, -1, 0, 7, 0, -1, 0})));
  OpCall w{"STFT", {x, i64(2), f32({2}, {1, 0})}, {}, 17};
  EXPECT_TRUE(tensors_near(run_op(w)[0], f32({1, 2, 2, 2}, {1, 0, 1, 0, 3, 0, 3, 0})));
  OpCall two{"STFT", {x, i64(2), Tensor(), i64(2)}, {{"onesided", attr_int(0)}}, 17};
  EXPECT_EQ(run_op(two)[0].dims(), (Dims{1, 2, 2, 2}));
  OpCall bad{"STFT", {x, i64(1), Tensor(), i64(5)}, {}, 17};  // frame longer than the signal
  EXPECT_THROW(run_op(bad), Error);
}

TEST(OpSignal, Windows) {
  OpCall hann{"HannWindow", {i64(4)}, {}, 17};
  EXPECT_TRUE(tensors_near(run_op(hann)[0], f32({4}, {0, 0.5f, 1, 0.5f})));
  OpCall sym{"HannWindow", {i64(5)}, {{"periodic", attr_int(0)}}, 17};
  EXPECT_TRUE(tensors_near(run_op(sym)[0], f32({5}, {0, 0.5f, 1, 0.5f, 0})));
  OpCall ham{"HammingWindow", {Tensor::scalar<int32_t>(4)}, {}, 17};
  EXPECT_TRUE(tensors_near(run_op(ham)[0], f32({4}, {2.0f / 23, 25.0f / 46, 1, 25.0f / 46})));
  OpCall bl{"BlackmanWindow", {i64(4)}, {}, 17};
  EXPECT_TRUE(tensors_near(run_op(bl)[0], f32({4}, {0, 0.34f, 1, 0.34f}), 1e-6));
  OpCall dbl{"HannWindow", {i64(2)}, {{"output_datatype", attr_int(int64_t(DType::kF64))}}, 17};
  EXPECT_TRUE(tensors_near(run_op(dbl)[0], make<double>({2}, {0, 1})));
  OpCall ints{"HannWindow", {i64(4)}, {{"output_datatype", attr_int(int64_t(DType::kI32))}}, 17};
  EXPECT_TRUE(tensors_near(run_op(ints)[0], make<int32_t>({4}, {0, 0, 1, 0})));
  OpCall empty{"HannWindow", {i64(0)}, {}, 17};
  EXPECT_EQ(run_op(empty)[0].numel(), 0);
  OpCall neg{"HannWindow", {i64(-1)}, {}, 17};
  EXPECT_THROW(run_op(neg), Error);
  OpCall str{"HannWindow", {i64(2)}, {{"output_datatype", attr_int(int64_t(DType::kString))}}, 17};
  EXPECT_THROW(run_op(str), Error);
}

TEST(OpSignal, MelWeightMatrix) {
  // One band over [0, 4] Hz at 8 Hz and an 8-point DFT: edges at bins 0, 1, 2 -> a peak at bin 1.
  OpCall c{"MelWeightMatrix",
           {i64(1), i64(8), i64(8), Tensor::scalar<float>(0), Tensor::scalar<float>(4)},
           {},
           17};
  EXPECT_TRUE(tensors_near(run_op(c)[0], f32({5, 1}, {0, 1, 0, 0, 0})));
  OpCall bad = c;
  bad.inputs[0] = i64(0);
  EXPECT_THROW(run_op(bad), Error);
}

TEST(OpSignal, Det) {
  EXPECT_TRUE(tensors_near(run_op({"Det", {f32({2, 2}, {1, 2, 3, 4})}, {}, 11})[0],
                           Tensor::scalar<float>(-2)));
  // A batch: a row swap flips the sign, a singular matrix gives 0.
  Tensor b = f32({2, 3, 3}, {0, 1, 0, 1, 0, 0, 0, 0, 2, 1, 2, 3, 2, 4, 6, 0, 1, 1});
  EXPECT_TRUE(tensors_near(run_op({"Det", {b}, {}, 22})[0], f32({2}, {-2, 0})));
  EXPECT_THROW(run_op({"Det", {f32({2, 3}, {1, 2, 3, 4, 5, 6})}, {}, 22}), Error);
}

TEST(OpSignal, AffineGrid) {
  Tensor theta = f32({1, 2, 3}, {1, 0, 0, 0, 1, 0});
  Tensor size = make<int64_t>({4}, {1, 1, 2, 2});
  OpCall c{"AffineGrid", {theta, size}, {{"align_corners", attr_int(1)}}, 20};
  EXPECT_TRUE(tensors_near(run_op(c)[0], f32({1, 2, 2, 2}, {-1, -1, 1, -1, -1, 1, 1, 1})));
  c.attrs["align_corners"] = attr_int(0);
  EXPECT_TRUE(tensors_near(
      run_op(c)[0], f32({1, 2, 2, 2}, {-0.5f, -0.5f, 0.5f, -0.5f, -0.5f, 0.5f, 0.5f, 0.5f})));
  OpCall bad{"AffineGrid", {theta, make<int64_t>({5}, {1, 1, 2, 2, 2})}, {}, 20};
  EXPECT_THROW(run_op(bad), Error);
}

TEST(OpSignal, RoiAlign) {
  Tensor x = f32({1, 1, 2, 2}, {0, 1, 2, 3});
  Tensor rois = f32({1, 4}, {0, 0, 1, 1});
  // output_half_pixel, one sample at (0.5, 0.5): the mean of the four pixels.
  OpCall c{"RoiAlign",
           {x, rois, make<int64_t>({1}, {0})},
           {{"sampling_ratio", attr_int(1)},
            {"coordinate_transformation_mode", attr_string("output_half_pixel")}},
           16};
  EXPECT_TRUE(tensors_near(run_op(c)[0], f32({1, 1, 1, 1}, {1.5f})));
  OpCall bad = c;
  bad.inputs[2] = make<int64_t>({1}, {1});  // batch index past N
  EXPECT_THROW(run_op(bad), Error);
}

TEST(OpSignal, DeformConv) {
  Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor w = f32({1, 1, 1, 1}, {2});
  // Zero offsets: a plain 1x1 convolution.
  OpCall c{"DeformConv", {x, w, f32({1, 2, 2, 2}, std::vector<float>(8, 0))}, {}, 19};
  EXPECT_TRUE(tensors_near(run_op(c)[0], f32({1, 1, 2, 2}, {2, 4, 6, 8})));
  // +0.5 in x: halfway to the right neighbour; past the edge reads 0. Mask 0.5 and bias 1.
  Tensor off = f32({1, 2, 2, 2}, {0, 0, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f});
  OpCall m{"DeformConv",
           {x, w, off, f32({1}, {1}), f32({1, 1, 2, 2}, {0.5f, 0.5f, 0.5f, 0.5f})},
           {},
           22};
  EXPECT_TRUE(tensors_near(run_op(m)[0], f32({1, 1, 2, 2}, {2.5f, 2, 4.5f, 3})));
  OpCall bad{"DeformConv", {x, w, f32({1, 2, 1, 1}, {0, 0})}, {}, 19};  // offset of the wrong size
  EXPECT_THROW(run_op(bad), Error);
}

}  // namespace
}  // namespace kiln::testing
