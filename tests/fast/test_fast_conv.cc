// The fast Conv2d (src/kernels/fast/conv.h) against a naive double-accumulating NCHW
// convolution, at every dispatch level the CPU supports: 1x1, 3x3, 7x7, strides 1/2,
// asymmetric pads, dilation 2, groups, depthwise with and without a channel multiplier, batch
// 1 and 3, odd H/W, every activation, bias and residual, caller scratch, and threads.
#include <tbb/task_arena.h>

#include "fast_test_util.h"
#include "kernels/fast/conv.h"
#include "kiln/error.h"

namespace kiln::kernels::fast {
namespace {

using testing::activation_ref;
using testing::all_activations;
using testing::close;
using testing::conv_ref_at;
using testing::for_each_level;
using testing::random_floats;

constexpr auto make = testing::conv_shape;

std::vector<float> check_conv(const ConvShape& sh, bool bias, bool residual, Activation act,
                              bool with_scratch, std::mt19937& rng,
                              const char* want_algo = nullptr) {
  const int64_t oh = sh.out_h(), ow = sh.out_w(), cg = sh.c / sh.group;
  std::vector<float> x = random_floats(rng, static_cast<size_t>(sh.n * sh.c * sh.h * sh.w));
  std::vector<float> w = random_floats(rng, static_cast<size_t>(sh.k * cg * sh.r * sh.s));
  std::vector<float> b = random_floats(rng, static_cast<size_t>(sh.k));
  const size_t y_size = static_cast<size_t>(sh.n * sh.k * oh * ow);
  std::vector<float> res = random_floats(rng, y_size);
  std::vector<float> y(y_size, 1234.5f);

  Conv2d conv(sh, w.data(), bias ? b.data() : nullptr, act);
  if (want_algo != nullptr) {
    EXPECT_EQ(conv.algorithm(), want_algo);
  }
  EXPECT_EQ(conv.shape().k, sh.k);
  AlignedBuffer scratch;
  void* s = with_scratch ? scratch.reserve(conv.scratch_bytes() / 4 + 1) : nullptr;
  conv.run(x.data(), y.data(), residual ? res.data() : nullptr, s);

  int failures = 0;
  for (int64_t img = 0; img < sh.n; ++img) {
    for (int64_t oc = 0; oc < sh.k && failures < 5; ++oc) {
      for (int64_t i = 0; i < oh; ++i) {
        for (int64_t j = 0; j < ow; ++j) {
          double scale = 0;
          double sum = conv_ref_at(sh, x, w, img, oc, i, j, &scale);
          const size_t at = static_cast<size_t>(((img * sh.k + oc) * oh + i) * ow + j);
          if (bias) sum += b[oc], scale += std::abs(b[oc]);
          if (residual) sum += res[at], scale += std::abs(res[at]);
          const double want = activation_ref(sum, act);
          if (!close(y[at], want, scale)) {
            ADD_FAILURE() << "y[" << img << "," << oc << "," << i << "," << j << "] = " << y[at]
                          << ", want " << want << " (" << conv.algorithm() << ", c " << sh.c
                          << " k " << sh.k << " " << sh.r << "x" << sh.s << " group " << sh.group
                          << " act " << static_cast<int>(act.kind) << ")";
            if (++failures >= 5) break;
          }
        }
      }
    }
  }
  return y;
}

std::vector<ConvShape> shapes() {
  return {
      make(1, 16, 7, 9, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1),     // 1x1
      make(3, 8, 9, 9, 17, 1, 1, 2, 1, 0, 0, 0, 0, 1),      // 1x1 stride 2, batch 3
      make(1, 5, 11, 13, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 3x3 pad 1, odd H/W
      make(3, 4, 12, 10, 9, 3, 3, 2, 1, 0, 1, 1, 0, 1),     // 3x3 stride 2, asymmetric pads
      make(1, 6, 13, 11, 7, 3, 3, 1, 2, 2, 2, 2, 2, 1),     // dilation 2
      make(1, 3, 33, 31, 16, 7, 7, 2, 1, 3, 3, 3, 3, 1),    // 7x7 stride 2
      make(2, 8, 9, 9, 12, 3, 3, 1, 1, 1, 1, 1, 1, 4),      // groups
      make(1, 64, 10, 10, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // several K-blocks
      make(1, 32, 6, 6, 130, 1, 3, 1, 1, 0, 1, 0, 1, 1),    // > one row block, 1x3
      make(1, 16, 15, 15, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16),  // depthwise
      make(3, 8, 14, 13, 8, 3, 3, 2, 1, 0, 1, 1, 0, 8),     // depthwise stride 2, asym pads
      make(1, 6, 17, 19, 6, 5, 5, 1, 2, 4, 4, 4, 4, 6),     // depthwise 5x5 dilation 2
      make(1, 4, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4),       // channel multiplier 2
      make(1, 5, 8, 70, 5, 3, 3, 3, 1, 0, 0, 0, 0, 5),      // depthwise stride 3, wide rows
      make(1, 4, 7, 37, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4),      // depthwise 3x3, rows of 3 chunks
      make(1, 3, 9, 50, 3, 3, 3, 2, 1, 1, 1, 1, 1, 3),      // depthwise 3x3/2, wide rows
      make(1, 3, 12, 40, 6, 3, 3, 2, 2, 2, 0, 2, 3, 3),     // depthwise 3x3/2 dilation 2, mult 2
      make(1, 2, 20, 17, 2, 3, 3, 1, 1, 0, 2, 0, 3, 2),     // depthwise 3x3, pads only left/right
      make(1, 3, 1, 1, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1),       // 1x1 image
      make(1, 3, 9, 75, 8, 3, 3, 2, 1, 1, 2, 1, 0, 1),      // stride 2, rows wider than 16
      make(1, 4, 11, 70, 6, 3, 3, 2, 2, 2, 3, 1, 2, 1),     // stride 2 and dilation 2
      make(1, 8, 5, 6, 300, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // more than one row block
  };
}

TEST(FastConv, ShapesWithEveryActivation) {
  const std::vector<Activation> acts = all_activations();
  for_each_level([&](int) {
    std::mt19937 rng(11);
    int variant = 0;
    for (const ConvShape& sh : shapes()) {
      for (int rep = 0; rep < 3; ++rep, ++variant) {
        check_conv(sh, variant % 2 == 0, variant % 3 != 1, acts[variant % acts.size()],
                   variant % 4 == 0, rng);
      }
    }
  });
}

TEST(FastConv, EveryActivationOnEachAlgorithm) {
  for_each_level([&](int) {
    std::mt19937 rng(12);
    for (const Activation& act : all_activations()) {
      check_conv(make(1, 8, 6, 7, 9, 1, 1, 1, 1, 0, 0, 0, 0, 1), true, true, act, false, rng,
                 "gemm1x1");
      check_conv(make(1, 3, 9, 8, 10, 3, 3, 2, 1, 1, 0, 1, 1, 1), true, false, act, true, rng,
                 "im2col-gemm");
      check_conv(make(2, 6, 9, 10, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6), true, true, act, false, rng,
                 "depthwise");
    }
  });
}

TEST(FastConv, ThreadsGiveTheSerialBits) {
  for_each_level([&](int) {
    for (const ConvShape& sh : {make(2, 32, 28, 28, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1),
                                make(1, 64, 28, 28, 128, 1, 1, 1, 1, 0, 0, 0, 0, 1),
                                make(2, 96, 28, 28, 96, 3, 3, 2, 1, 0, 0, 1, 1, 96)}) {
      std::mt19937 rng_a(13), rng_b(13);
      std::vector<float> serial, parallel;
      tbb::task_arena one(1), two(2);
      Activation relu{Activation::Kind::kRelu};
      one.execute([&] { serial = check_conv(sh, true, true, relu, true, rng_a); });
      two.execute([&] { parallel = check_conv(sh, true, true, relu, false, rng_b); });
      EXPECT_EQ(serial, parallel);
    }
  });
}

TEST(FastConv, PackedFiltersServeOtherImageSizes) {
  for_each_level([&](int) {
    std::mt19937 rng(14);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    // Same filters (K, C, R, S, group), other image sizes, strides and pads.
    for (const auto& [a, b] : {std::pair{make(1, 8, 9, 9, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1),
                                         make(2, 8, 13, 7, 12, 3, 3, 2, 1, 0, 1, 1, 0, 1)},
                               std::pair{make(1, 6, 10, 10, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6),
                                         make(1, 6, 21, 17, 6, 3, 3, 2, 1, 1, 1, 1, 1, 6)},
                               std::pair{make(1, 16, 5, 5, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1),
                                         make(1, 16, 11, 4, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1)}}) {
      std::vector<float> w(static_cast<size_t>(a.k * a.c / a.group * a.r * a.s)), bias(a.k);
      std::vector<float> x(static_cast<size_t>(b.n * b.c * b.h * b.w));
      for (float& v : w) v = dist(rng);
      for (float& v : bias) v = dist(rng);
      for (float& v : x) v = dist(rng);
      const Activation relu{Activation::Kind::kRelu};
      const Conv2d own(b, w.data(), bias.data(), relu);
      const Conv2d shared(b, ConvWeights::pack(a, w.data()), bias.data(), relu);
      std::vector<float> y0(static_cast<size_t>(b.n * b.k * b.out_h() * b.out_w())), y1(y0.size());
      own.run(x.data(), y0.data());
      shared.run(x.data(), y1.data());
      EXPECT_EQ(y0, y1) << own.algorithm();
    }
    // Filters of another layer are refused.
    const std::vector<float> w(9 * 8 * 4, 0.5f);
    EXPECT_THROW(Conv2d(make(1, 8, 9, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1),
                        ConvWeights::pack(make(1, 4, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1), w.data()),
                        nullptr, {}),
                 Error);
  });
}

TEST(FastConv, BadShapeThrows) {
  const std::vector<float> w(64, 0.0f);
  EXPECT_THROW(Conv2d(make(1, 6, 5, 5, 4, 3, 3, 1, 1, 0, 0, 0, 0, 4), w.data(), nullptr, {}),
               Error);
  EXPECT_THROW(Conv2d(make(1, 2, 2, 2, 4, 3, 3, 1, 1, 0, 0, 0, 0, 1), w.data(), nullptr, {}),
               Error);
}

}  // namespace
}  // namespace kiln::kernels::fast
