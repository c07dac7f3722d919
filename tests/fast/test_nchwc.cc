// The blocked (NCHWc) kernels of src/kernels/fast/nchwc.h against naive double-accumulating NCHW
// references, at every dispatch level the CPU supports: the convolution with each input/output
// layout, bias, residual and every activation, on shapes with ragged channel blocks (C and K not
// multiples of the block), every tile width, strides, dilations, asymmetric pads and depthwise;
// the reorders; max/average pooling with pads; the global average pool; and threads.
#include <tbb/task_arena.h>

#include "fast_test_util.h"
#include "kernels/fast/isa.h"
#include "kernels/fast/nchwc.h"
#include "kernels/fast/winograd.h"
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

// NCHW -> blocked -> NCHW through the library's reorders.
std::vector<float> to_blocked(const std::vector<float>& x, int64_t n, int64_t c, int64_t hw) {
  const int64_t cb = nchwc_block();
  std::vector<float> y(size_t(n * nchwc_blocks(c, cb) * hw * cb), 777.0f);
  nchwc_from_nchw(x.data(), y.data(), n, c, hw, cb);
  return y;
}
std::vector<float> from_blocked(const std::vector<float>& x, int64_t n, int64_t c, int64_t hw) {
  std::vector<float> y(size_t(n * c * hw), 777.0f);
  nchwc_to_nchw(x.data(), y.data(), n, c, hw, nchwc_block());
  return y;
}

// The blocked convolution (or, `winograd`, WinogradConv: blocked on both sides) against a
// double-precision naive one.
int check_conv(const ConvShape& sh, bool x_blocked, bool y_blocked, bool bias, bool residual,
               Activation act, std::mt19937& rng, bool winograd = false) {
  const int64_t oh = sh.out_h(), ow = sh.out_w(), cg = sh.c / sh.group;
  const int64_t cb = nchwc_block();
  std::vector<float> x = random_floats(rng, size_t(sh.n * sh.c * sh.h * sh.w));
  std::vector<float> w = random_floats(rng, size_t(sh.k * cg * sh.r * sh.s));
  std::vector<float> b = random_floats(rng, size_t(sh.k));
  const size_t y_size = size_t(sh.n * sh.k * oh * ow);
  std::vector<float> res = random_floats(rng, y_size);

  std::vector<float> xin = x_blocked ? to_blocked(x, sh.n, sh.c, sh.h * sh.w) : x;
  std::vector<float> rin = y_blocked ? to_blocked(res, sh.n, sh.k, oh * ow) : res;
  std::vector<float> y(y_blocked ? size_t(sh.n * nchwc_blocks(sh.k, cb) * oh * ow * cb) : y_size,
                       1234.5f);
  AlignedBuffer scratch;
  auto run = [&](const auto& conv) {
    conv.run(xin.data(), y.data(), residual ? rin.data() : nullptr,
             scratch.reserve(conv.scratch_bytes() / 4 + 1));
    return conv.algorithm();
  };
  const float* bp = bias ? b.data() : nullptr;
  const std::string algorithm =
      winograd
          ? run(WinogradConv(sh, WinogradWeights::pack(sh, w.data()), bp, act, true, true))
          : run(ConvNchwc(sh, NchwcWeights::pack(sh, w.data()), bp, act, x_blocked, y_blocked));
  if (y_blocked) y = from_blocked(y, sh.n, sh.k, oh * ow);

  int failures = 0;
  for (int64_t img = 0; img < sh.n; ++img)
    for (int64_t oc = 0; oc < sh.k && failures < 5; ++oc) {
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double scale = 0;
          double sum = conv_ref_at(sh, x, w, img, oc, i, j, &scale);
          const size_t at = size_t(((img * sh.k + oc) * oh + i) * ow + j);
          if (bias) sum += b[size_t(oc)], scale += std::abs(b[size_t(oc)]);
          if (residual) sum += res[at], scale += std::abs(res[at]);
          const double want = activation_ref(sum, act);
          if (!close(y[at], want, scale + std::abs(want))) {
            ADD_FAILURE() << "y[" << img << "," << oc << "," << i << "," << j << "] = " << y[at]
                          << ", want " << want << " (" << algorithm << ", c " << sh.c << " k "
                          << sh.k << " " << sh.r << "x" << sh.s << " group " << sh.group << " act "
                          << int(act.kind) << " residual " << residual << ")";
            if (++failures >= 5) break;
          }
        }
    }
  return failures;
}

std::vector<ConvShape> shapes() {
  return {
      make(1, 16, 7, 9, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1),     // 1x1, ragged K
      make(2, 40, 15, 17, 50, 1, 1, 1, 1, 0, 0, 0, 0, 1),   // 1x1 as one row of several tasks
      make(2, 8, 9, 9, 17, 1, 1, 2, 1, 0, 0, 0, 0, 1),      // 1x1 stride 2, batch 2
      make(1, 5, 11, 13, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 3x3 pad 1, C < block
      make(2, 20, 12, 10, 9, 3, 3, 2, 1, 0, 1, 1, 0, 1),    // stride 2, asymmetric pads
      make(1, 6, 13, 11, 7, 3, 3, 1, 2, 2, 2, 2, 2, 1),     // dilation 2
      make(1, 3, 33, 31, 16, 7, 7, 2, 1, 3, 3, 3, 3, 1),    // 7x7 stride 2 stem
      make(1, 3, 23, 21, 64, 3, 3, 2, 1, 0, 0, 0, 0, 1),    // unpadded stem: NCHW read in place
      make(1, 5, 12, 14, 20, 3, 3, 1, 2, 0, 0, 0, 0, 1),    // unpadded, dilated, C < block
      make(2, 16, 9, 8, 18, 3, 3, 2, 1, 1, 0, 1, 0, 1),     // C of one AVX-512 block, two AVX2
      make(1, 64, 10, 10, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // 4 output blocks (AVX-512 ob 4)
      make(1, 40, 6, 30, 96, 1, 3, 1, 1, 0, 1, 0, 1, 1),    // 1x3, rows of several tiles
      make(1, 32, 5, 57, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // ragged last tile
      make(1, 16, 15, 15, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16),  // depthwise
      make(2, 24, 14, 13, 24, 3, 3, 2, 1, 0, 1, 1, 0, 24),  // depthwise, ragged block, stride 2
      make(1, 6, 17, 19, 6, 5, 5, 1, 2, 4, 4, 4, 4, 6),     // depthwise 5x5 dilation 2
      make(1, 20, 40, 37, 20, 3, 3, 2, 1, 1, 1, 1, 1, 20),  // depthwise, bands of rows, stride 2
      make(1, 16, 30, 30, 16, 3, 3, 1, 1, 0, 0, 0, 0, 16),  // depthwise bands read in place
      make(1, 16, 6, 1, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16),    // depthwise: every window crosses a pad
      make(1, 3, 1, 1, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1),       // 1x1 image
      make(1, 48, 7, 7, 160, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 7x7 maps, 10 output blocks
      // Kernels wider than the image, wide uneven pads with stride and dilation, a depthwise
      // left pad.
      make(1, 16, 4, 3, 16, 5, 5, 1, 1, 2, 2, 2, 2, 1),
      make(1, 20, 15, 17, 20, 3, 3, 2, 2, 3, 1, 2, 3, 1),
      make(1, 32, 9, 20, 32, 3, 3, 1, 1, 1, 3, 1, 0, 32),
  };
}

TEST(Nchwc, ConvAgainstNaiveEveryLayoutAndLevel) {
  std::mt19937 rng(41);
  for_each_level([&](int) {
    for (const ConvShape& sh : shapes())
      for (int layout = 0; layout < 4; ++layout)
        check_conv(sh, layout & 1, layout & 2, true, layout == 3, {Activation::Kind::kRelu}, rng);
  });
}

TEST(Nchwc, ConvEveryActivationWithAndWithoutResidual) {
  std::mt19937 rng(42);
  const ConvShape dense = make(1, 20, 6, 17, 36, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  const ConvShape dw = make(1, 20, 6, 17, 20, 3, 3, 1, 1, 1, 1, 1, 1, 20);
  for_each_level([&](int) {
    for (const Activation& act : all_activations())
      for (const ConvShape& sh : {dense, dw})
        for (int v = 0; v < 4; ++v) check_conv(sh, true, v & 1, v & 2, v != 0, act, rng);
  });
}

// A convolution run on 4 threads writes the same bits as on 1.
template <class Conv>
void expect_threads_give_serial_bits(const Conv& conv, const std::vector<float>& x) {
  std::vector<float> serial(x.size()), parallel(x.size());
  tbb::task_arena one(1), four(4);
  one.execute([&] { conv.run(x.data(), serial.data(), nullptr, nullptr); });
  four.execute([&] { conv.run(x.data(), parallel.data(), nullptr, nullptr); });
  EXPECT_EQ(serial, parallel);
}

TEST(Nchwc, ThreadsGiveTheSerialBits) {
  std::mt19937 rng(43);
  const ConvShape sh = make(2, 64, 20, 20, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  std::vector<float> x = to_blocked(random_floats(rng, size_t(2 * 64 * 400)), 2, 64, 400);
  std::vector<float> w = random_floats(rng, size_t(64 * 64 * 9));
  expect_threads_give_serial_bits(
      ConvNchwc(sh, NchwcWeights::pack(sh, w.data()), nullptr, {}, true, true), x);
}

// Winograd F(2x2, 3x3): even and odd output sizes (ragged tiles), pads 0, 1 and uneven, channel
// counts off the block and the GEMM tiles, batches, images of several tile blocks, every
// activation with and without residual, at every SIMD level.
TEST(Winograd, ConvAgainstNaive) {
  std::mt19937 rng(46);
  const ConvShape shapes[] = {
      make(1, 32, 8, 8, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // even, pad 1
      make(2, 20, 7, 9, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // odd sizes, ragged blocks, batch 2
      make(1, 48, 9, 11, 24, 3, 3, 1, 1, 0, 0, 0, 0, 1),   // no padding
      make(1, 16, 10, 6, 16, 3, 3, 1, 1, 2, 0, 1, 2, 1),   // uneven pads
      make(1, 40, 30, 29, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // several tile blocks
      make(1, 3, 5, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1),      // fewer channels than a block
  };
  for_each_level([&](int) {
    for (const ConvShape& sh : shapes)
      check_conv(sh, true, true, true, false, {Activation::Kind::kRelu}, rng, true);
    for (const Activation& act : all_activations())
      for (int v = 0; v < 2; ++v) check_conv(shapes[1], true, true, v, v, act, rng, true);
  });
}

TEST(Winograd, ThreadsGiveTheSerialBitsAndFiltersFitTheirShape) {
  std::mt19937 rng(47);
  for (int64_t hw : {20, 7}) {  // several tile blocks (split over threads), one (split GEMMs)
    const ConvShape sh = make(2, 64, hw, hw, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    std::vector<float> x = to_blocked(random_floats(rng, size_t(2 * 64 * hw * hw)), 2, 64, hw * hw);
    std::vector<float> w = random_floats(rng, size_t(64 * 64 * 9));
    expect_threads_give_serial_bits(
        WinogradConv(sh, WinogradWeights::pack(sh, w.data()), nullptr, {}, true, true), x);
  }
  std::vector<float> w(size_t(16 * 8 * 9), 0.5f);
  const ConvShape a = make(1, 8, 10, 10, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  auto packed = WinogradWeights::pack(a, w.data());
  ConvShape other_size = a;
  other_size.h = other_size.w = 33;
  EXPECT_TRUE(packed->fits(other_size));
  ConvShape other_k = a;
  other_k.k = 8;
  EXPECT_FALSE(packed->fits(other_k));
  EXPECT_THROW(WinogradConv(a, packed, nullptr, {}, false, true), Error);  // NCHW input
  ConvShape strided = a;
  strided.stride_h = strided.stride_w = 2;
  EXPECT_FALSE(winograd_supported(strided));
  EXPECT_THROW(WinogradWeights::pack(strided, w.data()), Error);
}

TEST(Nchwc, FiltersFitOnlyTheirShapeAndLevel) {
  std::vector<float> w(size_t(16 * 8 * 9), 0.5f);
  const ConvShape a = make(1, 8, 10, 10, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  auto packed = NchwcWeights::pack(a, w.data());
  ConvShape other_size = a;
  other_size.h = other_size.w = 33;  // image size is free
  EXPECT_TRUE(packed->fits(other_size));
  ConvShape other_k = a;
  other_k.k = 8;
  EXPECT_FALSE(packed->fits(other_k));
  EXPECT_THROW(ConvNchwc(other_k, packed, nullptr, {}, true, true), Error);
  ConvShape grouped = a;
  grouped.group = 2;
  grouped.k = 16;
  EXPECT_FALSE(nchwc_conv_supported(grouped));
  EXPECT_THROW(NchwcWeights::pack(grouped, w.data()), Error);
}

TEST(Nchwc, ReordersRoundTripAndZeroPaddedLanes) {
  std::mt19937 rng(44);
  for_each_level([&](int) {
    const int64_t cb = nchwc_block();
    for (int64_t c : {1, 7, 16, 21, 40}) {
      std::vector<float> x = random_floats(rng, size_t(2 * c * 15));
      std::vector<float> b = to_blocked(x, 2, c, 15);
      EXPECT_EQ(from_blocked(b, 2, c, 15), x);
      const int64_t blocks = nchwc_blocks(c, cb);
      for (int64_t l = c - (blocks - 1) * cb; l < cb; ++l)
        EXPECT_EQ(b[size_t(((blocks - 1) * 15 + 3) * cb + l)], 0.0f);
    }
  });
}

TEST(Nchwc, PoolsAgainstNaive) {
  std::mt19937 rng(45);
  struct Case {
    bool max, include_pad;
    int64_t c, h, w, k, stride, dil, pt, pl, pb, pr, oh, ow;
  };
  // Output sizes as shape inference gives them (floor; the last ones ceil_mode-like).
  const std::vector<Case> cases = {
      {true, false, 20, 13, 13, 3, 2, 1, 0, 0, 0, 0, 6, 6},
      {true, false, 8, 12, 11, 3, 2, 1, 1, 1, 1, 1, 6, 6},
      {true, false, 5, 9, 9, 2, 1, 2, 0, 0, 0, 0, 7, 7},
      {false, false, 17, 10, 10, 3, 1, 1, 1, 1, 1, 1, 10, 10},
      {false, true, 17, 10, 10, 3, 1, 1, 1, 1, 1, 1, 10, 10},
      {false, true, 9, 8, 8, 3, 2, 1, 1, 1, 0, 0, 4, 4},
      {true, false, 16, 13, 13, 3, 2, 1, 0, 0, 0, 0, 7, 7},  // ceil mode: last window partial
  };
  for_each_level([&](int) {
    for (const Case& t : cases) {
      PoolNchwc p{t.max,
                  t.include_pad,
                  2,
                  t.c,
                  t.h,
                  t.w,
                  t.oh,
                  t.ow,
                  {t.k, t.k, t.stride, t.stride, t.dil, t.dil, t.pt, t.pl, t.pb, t.pr}};
      std::vector<float> x = random_floats(rng, size_t(2 * t.c * t.h * t.w));
      std::vector<float> xb = to_blocked(x, 2, t.c, t.h * t.w);
      const int64_t cb = nchwc_block();
      std::vector<float> yb(size_t(2 * nchwc_blocks(t.c, cb) * t.oh * t.ow * cb));
      nchwc_pool(p, xb.data(), yb.data(), cb);
      std::vector<float> y = from_blocked(yb, 2, t.c, t.oh * t.ow);
      for (int64_t plane = 0; plane < 2 * t.c; ++plane)
        for (int64_t i = 0; i < t.oh; ++i)
          for (int64_t j = 0; j < t.ow; ++j) {
            double acc = t.max ? -INFINITY : 0;
            int64_t count = 0, padded = 0;
            for (int64_t r = 0; r < t.k; ++r)
              for (int64_t q = 0; q < t.k; ++q) {
                const int64_t ih = i * t.stride - t.pt + r * t.dil;
                const int64_t iw = j * t.stride - t.pl + q * t.dil;
                if (ih >= -t.pt && ih < t.h + t.pb && iw >= -t.pl && iw < t.w + t.pr) ++padded;
                if (ih < 0 || ih >= t.h || iw < 0 || iw >= t.w) continue;
                const double v = x[size_t((plane * t.h + ih) * t.w + iw)];
                acc = t.max ? std::max(acc, v) : acc + v;
                ++count;
              }
            if (!t.max) acc /= double(t.include_pad ? padded : count);
            ASSERT_NEAR(y[size_t((plane * t.oh + i) * t.ow + j)], acc, 1e-5)
                << "plane " << plane << " at " << i << "," << j << " max " << t.max;
          }
    }
  });
}

// A conv fused with the pool that reads it gives the bits of the blocked conv followed by the
// blocked pool (both checked against naive ones above): NCHW and blocked inputs, max and
// average pools with pads (uneven, count_include_pad), images of several bands, a ragged
// output block, a 1x1 stride-1 conv built by_rows, batch 2, and 4 threads as 1, at every SIMD
// level.
TEST(Nchwc, ConvPoolGivesTheBitsOfConvThenPool) {
  std::mt19937 rng(47);
  struct Case {
    ConvShape sh;
    bool x_blocked, max, include_pad;
    int64_t k, stride, pt, pb;
  };
  const std::vector<Case> cases = {
      {make(1, 3, 99, 97, 64, 3, 3, 2, 1, 0, 0, 0, 0, 1), false, true, false, 3, 2, 0, 0},
      {make(2, 3, 61, 59, 20, 7, 7, 2, 1, 3, 3, 3, 3, 1), false, true, false, 3, 2, 1, 1},
      {make(1, 24, 40, 38, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1), true, false, true, 3, 2, 1, 0},
      {make(1, 16, 30, 31, 48, 1, 1, 2, 1, 0, 0, 0, 0, 1), true, false, false, 2, 2, 0, 1},
      {make(1, 16, 30, 31, 48, 1, 1, 1, 1, 0, 0, 0, 0, 1), true, true, false, 3, 2, 1, 1},
  };
  const Activation relu{Activation::Kind::kRelu};
  for_each_level([&](int) {
    const int64_t cb = nchwc_block();
    for (const Case& t : cases) {
      const ConvShape& sh = t.sh;
      const int64_t oh = sh.out_h(), ow = sh.out_w();
      PoolNchwc p{t.max,
                  t.include_pad,
                  sh.n,
                  sh.k,
                  oh,
                  ow,
                  (oh + t.pt + t.pb - t.k) / t.stride + 1,
                  (ow + t.pt + t.pb - t.k) / t.stride + 1,
                  {t.k, t.k, t.stride, t.stride, 1, 1, t.pt, t.pt, t.pb, t.pb}};
      std::vector<float> x = random_floats(rng, size_t(sh.n * sh.c * sh.h * sh.w));
      if (t.x_blocked) x = to_blocked(x, sh.n, sh.c, sh.h * sh.w);
      const std::vector<float> w = random_floats(rng, size_t(sh.k * sh.c * sh.r * sh.s));
      const std::vector<float> b = random_floats(rng, size_t(sh.k));
      auto conv = [&](bool by_rows) {
        return ConvNchwc(sh, NchwcWeights::pack(sh, w.data()), b.data(), relu, t.x_blocked, true,
                         by_rows);
      };
      const int64_t kb = nchwc_blocks(sh.k, cb);
      std::vector<float> yc(size_t(sh.n * kb * oh * ow * cb));
      std::vector<float> want(size_t(sh.n * kb * p.oh * p.ow * cb)), got(want.size(), 7.0f),
          got4(want.size(), 7.0f);
      conv(false).run(x.data(), yc.data(), nullptr, nullptr);
      nchwc_pool(p, yc.data(), want.data(), cb);
      const ConvPoolNchwc fused(conv(true), p);
      tbb::task_arena one(1), four(4);
      one.execute([&] { fused.run(x.data(), got.data(), nullptr, nullptr); });
      four.execute([&] { fused.run(x.data(), got4.data(), nullptr, nullptr); });
      EXPECT_EQ(got, want) << fused.algorithm() << " c " << sh.c << " k " << sh.k;
      EXPECT_EQ(got4, want) << fused.algorithm();
    }
  });
  // A 1x1 stride-1 conv not built by_rows runs its image as one row: no rows to hand a band.
  const ConvShape pointwise = make(1, 16, 8, 8, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1);
  const std::vector<float> w = random_floats(rng, 16 * 16);
  const PoolNchwc p{true, false, 1, 16, 8, 8, 4, 4, {2, 2, 2, 2, 1, 1, 0, 0, 0, 0}};
  EXPECT_THROW(ConvPoolNchwc(ConvNchwc(pointwise, NchwcWeights::pack(pointwise, w.data()), nullptr,
                                       {}, true, true),
                             p),
               Error);
}

// An expand conv fused with the depthwise conv that alone reads it gives the bits of the two
// blocked convs run one after the other: stride 1 and 2, symmetric and uneven pads, a ragged
// channel block, a 3x3 expand, batch 2, and 4 threads as 1, at every SIMD level.
TEST(Nchwc, ConvDepthwiseGivesTheBitsOfConvThenDepthwise) {
  std::mt19937 rng(48);
  struct Case {
    ConvShape conv;
    int64_t stride, pt, pl, pb, pr;
  };
  const std::vector<Case> cases = {
      {make(1, 16, 30, 29, 96, 1, 1, 1, 1, 0, 0, 0, 0, 1), 1, 1, 1, 1, 1},
      {make(2, 24, 20, 21, 144, 1, 1, 1, 1, 0, 0, 0, 0, 1), 2, 1, 1, 1, 1},
      {make(1, 8, 17, 40, 20, 1, 1, 1, 1, 0, 0, 0, 0, 1), 2, 0, 1, 1, 0},
      {make(1, 5, 23, 19, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1), 1, 2, 0, 0, 2},
  };
  const Activation clip{Activation::Kind::kClip, 0.0f, 6.0f};
  for_each_level([&](int) {
    const int64_t cb = nchwc_block();
    for (const Case& t : cases) {
      const ConvShape& c = t.conv;
      const ConvShape d =
          make(c.n, c.k, c.out_h(), c.out_w(), c.k, 3, 3, t.stride, 1, t.pt, t.pl, t.pb, t.pr, c.k);
      const std::vector<float> x =
          to_blocked(random_floats(rng, size_t(c.n * c.c * c.h * c.w)), c.n, c.c, c.h * c.w);
      const std::vector<float> wc = random_floats(rng, size_t(c.k * c.c * c.r * c.s));
      const std::vector<float> wd = random_floats(rng, size_t(d.k * 9));
      const std::vector<float> bc = random_floats(rng, size_t(c.k)),
                               bd = random_floats(rng, size_t(d.k));
      auto conv = [&](bool by_rows) {
        return ConvNchwc(c, NchwcWeights::pack(c, wc.data()), bc.data(), clip, true, true, by_rows);
      };
      auto dw = [&] {
        return ConvNchwc(d, NchwcWeights::pack(d, wd.data()), bd.data(), clip, true, true);
      };
      const int64_t kb = nchwc_blocks(c.k, cb);
      std::vector<float> mid(size_t(c.n * kb * c.out_h() * c.out_w() * cb));
      std::vector<float> want(size_t(d.n * kb * d.out_h() * d.out_w() * cb)),
          got(want.size(), 7.0f), got4(want.size(), 7.0f);
      conv(false).run(x.data(), mid.data(), nullptr, nullptr);
      dw().run(mid.data(), want.data(), nullptr, nullptr);
      const ConvDwNchwc fused(conv(true), dw());
      tbb::task_arena one(1), four(4);
      one.execute([&] { fused.run(x.data(), got.data(), nullptr, nullptr); });
      four.execute([&] { fused.run(x.data(), got4.data(), nullptr, nullptr); });
      EXPECT_EQ(got, want) << fused.algorithm() << " c " << c.c << " k " << c.k;
      EXPECT_EQ(got4, want) << fused.algorithm();
      // With the conv also built as usual, one thread runs the two apart over scratch.
      const ConvDwNchwc either(conv(true), dw(), conv(false));
      std::vector<float> apart(want.size(), 7.0f);
      AlignedBuffer scratch(either.scratch_bytes() / 4 + 1);
      one.execute([&] { either.run(x.data(), apart.data(), nullptr, scratch.data()); });
      EXPECT_EQ(apart, want) << either.algorithm();
    }
  });
}

// Convolutions filling the slices of a blocked channel Concat of 3 images (their outputs the
// Concat's image apart): the direct conv with a residual and Winograd write what they write
// packed, each at its slice of every image, and nothing else.
TEST(Nchwc, ConvsWriteConcatSlicesImagesApart) {
  std::mt19937 rng(49);
  const int64_t cb = nchwc_block();
  const ConvShape a = make(3, 32, 12, 11, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1);
  const ConvShape b = make(3, 32, 12, 11, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  const int64_t plane = 12 * 11 * cb, ka = nchwc_blocks(40, cb), kb = nchwc_blocks(48, cb);
  const int64_t image = (ka + kb) * plane;
  const std::vector<float> x = to_blocked(random_floats(rng, 3 * 32 * 132), 3, 32, 132);
  const std::vector<float> wa = random_floats(rng, 40 * 32), wb = random_floats(rng, 48 * 32 * 9);
  const std::vector<float> res = random_floats(rng, size_t(3 * ka * plane));
  ConvNchwc conv_a(a, NchwcWeights::pack(a, wa.data()), nullptr, {}, true, true);
  WinogradConv conv_b(b, WinogradWeights::pack(b, wb.data()), nullptr, {}, true, true);
  std::vector<float> pa(size_t(3 * ka * plane)), pb(size_t(3 * kb * plane));
  conv_a.run(x.data(), pa.data(), res.data(), nullptr);
  conv_b.run(x.data(), pb.data(), nullptr, nullptr);
  std::vector<float> cat(size_t(3 * image), 7.0f);
  conv_a.set_y_image_floats(image);
  conv_b.set_y_image_floats(image);
  conv_a.run(x.data(), cat.data(), res.data(), nullptr);
  conv_b.run(x.data(), cat.data() + ka * plane, nullptr, nullptr);
  for (int64_t n = 0; n < 3; ++n) {
    EXPECT_TRUE(std::equal(pa.begin() + n * ka * plane, pa.begin() + (n + 1) * ka * plane,
                           cat.begin() + n * image))
        << "image " << n;
    EXPECT_TRUE(std::equal(pb.begin() + n * kb * plane, pb.begin() + (n + 1) * kb * plane,
                           cat.begin() + n * image + ka * plane))
        << "image " << n;
  }
}

TEST(Nchwc, GlobalAveragePoolWritesNchw) {
  std::mt19937 rng(46);
  for_each_level([&](int) {
    for (int64_t c : {3, 16, 37}) {
      std::vector<float> x = random_floats(rng, size_t(2 * c * 49));
      std::vector<float> xb = to_blocked(x, 2, c, 49);
      std::vector<float> y(size_t(2 * c), -1.0f);
      nchwc_global_avg_pool(xb.data(), y.data(), 2, c, 49, nchwc_block());
      for (int64_t plane = 0; plane < 2 * c; ++plane) {
        double sum = 0;
        for (int64_t i = 0; i < 49; ++i) sum += x[size_t(plane * 49 + i)];
        EXPECT_NEAR(y[size_t(plane)], sum / 49, 1e-5);
      }
    }
  });
}

}  // namespace
}  // namespace kiln::kernels::fast
