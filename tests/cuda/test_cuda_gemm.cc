// The tiled CUDA GEMM kernels (jit/cuda_gemm.h) of MatMul, Gemm and Conv nodes, built by the host
// C++ compiler with every block's threads run as host threads (__syncthreads a barrier, shared
// arrays shared by the block's threads), against the reference kernels: every tiling, K whole
// and split, ragged shapes, broadcast batches, transposes, biases, groups, strides, pads and
// dilations. The same text is what NVRTC compiles for the GPU (test_cuda_ptx.cc).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "cuda/cuda_host_emulation.h"
#include "cuda/cuda_test_util.h"
#include "engine/cuda_gemm_select.h"
#include "jit/cuda_gemm.h"
#include "op_test_util.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

using jit::CudaGemm;

// Builds every variant into one host library.
std::vector<HostCudaLibrary::Entry> build_variants(const std::vector<CudaGemm>& variants,
                                                   const TempDir& dir, std::string* error) {
  HostCudaLibrary lib;
  for (size_t v = 0; v < variants.size(); ++v) {
    const CudaGemm& g = variants[v];
    std::vector<std::string> types;
    for (int b = 0; b < g.num_buffers; ++b)
      types.push_back(b == g.y_buf ? "float*" : "const float*");
    lib.add(jit::print_cuda_gemm(g, "gemm" + std::to_string(v)), types, 0);
  }
  return lib.build(dir, error);
}

// `g` with another tiling and `splits` chunks of K.
CudaGemm retiled(CudaGemm g, const std::vector<int>& tile, int splits) {
  g.bm = tile[0];
  g.bn = tile[1];
  g.tm = tile[2];
  g.tn = tile[3];
  g.bk = 16;
  jit::split_cuda_gemm_k(&g, splits);
  return g;
}

// The GEMM the CUDA backend picks for `call`'s node, run in every tiling with K whole and split
// three ways (when long enough), against the reference kernel; `act` is applied to both.
void expect_gemm_matches(OpCall call, CudaGemm::Act act = CudaGemm::Act::kNone, float lo = 0,
                         float hi = 0) {
  if (host_compiler().empty()) GTEST_SKIP() << "no host C++ compiler to build the CUDA C with";
  call.inputs_as_graph_inputs = false;  // constant weights, as in the models
  std::unique_ptr<ir::Graph> graph = make_op_graph(call);
  auto reference = [&](const OpCall& c) {
    Tensor want = run_op(c).at(0);
    if (act != CudaGemm::Act::kNone) {
      float* p = want.data<float>();
      for (int64_t i = 0; i < want.numel(); ++i)
        p[i] =
            act == CudaGemm::Act::kRelu ? std::max(p[i], 0.0f) : std::min(std::max(p[i], lo), hi);
    }
    return want;
  };
  const Tensor want = reference(call);
  // On tensor cores the operands (inputs 0 and 1: A and B, image and weights) are rounded to
  // TF32 and the products summed in f32: the reference on rounded operands, at f32 tolerance.
  OpCall rounded = call;
  for (int i = 0; i < 2; ++i) {
    rounded.inputs[size_t(i)] = call.inputs[size_t(i)].clone();
    float* p = rounded.inputs[size_t(i)].data<float>();
    for (int64_t e = 0; e < rounded.inputs[size_t(i)].numel(); ++e) p[e] = jit::round_to_tf32(p[e]);
  }
  const Tensor want_tf32 = reference(rounded);
  engine::PlanStep step;
  step.kind = engine::PlanStep::Kind::kKernel;
  step.node = 0;
  step.fused = {0};
  step.inputs = graph->nodes[0].inputs;
  step.outputs = graph->nodes[0].outputs;
  std::optional<CudaGemm> chosen = engine::cuda_gemm_for_step(*graph, step, 4);
  ASSERT_TRUE(chosen) << call.op << " is not taken as a GEMM";
  chosen->act = act;
  chosen->lo = lo;
  chosen->hi = hi;
  std::vector<CudaGemm> variants;
  if (act == CudaGemm::Act::kNone) variants.push_back(*chosen);  // as chosen for 4 SMs
  int tf32_tiles = 0;
  for (const auto& tile : jit::cuda_gemm_tiles()) {
    for (bool tf32 : {false, true}) {
      CudaGemm g = retiled(*chosen, tile, 1);
      g.tf32 = tf32;
      if (tf32 && !jit::cuda_gemm_tf32_fits(g)) continue;
      variants.push_back(g);
      // K split three ways: every SIMT tile, the first TF32 one.
      if (act == CudaGemm::Act::kNone && chosen->k >= 48 && (!tf32 || tf32_tiles++ == 0)) {
        variants.push_back(retiled(*chosen, tile, 3));
        variants.back().tf32 = tf32;
      }
    }
  }
  TempDir dir;
  std::string error;
  std::vector<HostCudaLibrary::Entry> entries = build_variants(variants, dir, &error);
  ASSERT_EQ(entries.size(), variants.size()) << error;
  for (size_t v = 0; v < variants.size(); ++v) {
    Tensor got(DType::kF32, want.dims());
    float* out = got.data<float>();
    for (int64_t i = 0; i < got.numel(); ++i)
      out[i] = std::numeric_limits<float>::quiet_NaN();  // every element must be written
    std::vector<void*> bufs;
    for (const Tensor& t : call.inputs) bufs.push_back(t.defined() ? t.raw_data() : nullptr);
    bufs.push_back(got.raw_data());
    ASSERT_TRUE(entries[v]) << "variant " << v;
    entries[v](bufs.data(), nullptr);
    EXPECT_TRUE(tensors_near(got, variants[v].tf32 ? want_tf32 : want, 1e-4, 1e-4))
        << call.op << " variant " << v << ": " << jit::cuda_gemm_key(variants[v]);
    if (variants[v].tf32) {  // the operands really were rounded
      EXPECT_FALSE(tensors_near(got, want, 1e-7, 1e-7)) << jit::cuda_gemm_key(variants[v]);
    }
  }
}

ir::Attribute ints(std::vector<int64_t> v) { return attr_ints(std::move(v)); }

TEST(CudaGemm, MatMulBroadcastBatches) {
  OpCall c;
  c.op = "MatMul";
  c.inputs = {random_tensor(DType::kF32, {2, 1, 37, 53}, -1, 1, 1),
              random_tensor(DType::kF32, {3, 53, 70}, -1, 1, 2)};
  expect_gemm_matches(c);
}

TEST(CudaGemm, MatMulVectorOperands) {
  OpCall row;
  row.op = "MatMul";
  row.inputs = {random_tensor(DType::kF32, {300}, -1, 1, 3),
                random_tensor(DType::kF32, {300, 45}, -1, 1, 4)};
  expect_gemm_matches(row);
  OpCall col;
  col.op = "MatMul";
  col.inputs = {random_tensor(DType::kF32, {2, 33, 64}, -1, 1, 5),
                random_tensor(DType::kF32, {64}, -1, 1, 6)};
  expect_gemm_matches(col);
}

TEST(CudaGemm, GemmTransposesAlphaBetaAndBiasShapes) {
  const std::vector<Dims> biases = {{1}, {40}, {29, 1}, {29, 40}};
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    OpCall c;
    c.op = "Gemm";
    c.inputs = {random_tensor(DType::kF32, ta ? Dims{70, 29} : Dims{29, 70}, -1, 1, 7),
                random_tensor(DType::kF32, tb ? Dims{40, 70} : Dims{70, 40}, -1, 1, 8),
                random_tensor(DType::kF32, biases[size_t(t)], -1, 1, 9)};
    c.attrs = {{"transA", attr_int(ta)},
               {"transB", attr_int(tb)},
               {"alpha", attr_float(0.5f)},
               {"beta", attr_float(t == 3 ? 1.0f : -2.0f)}};
    SCOPED_TRACE("transA " + std::to_string(ta) + " transB " + std::to_string(tb));
    expect_gemm_matches(c);
  }
}

TEST(CudaGemm, GemmWithReluAndClipEpilogues) {
  OpCall c;
  c.op = "Gemm";
  c.inputs = {random_tensor(DType::kF32, {19, 40}, -1, 1, 10),
              random_tensor(DType::kF32, {40, 66}, -1, 1, 11),
              random_tensor(DType::kF32, {66}, -1, 1, 12)};
  expect_gemm_matches(c, CudaGemm::Act::kRelu);
  expect_gemm_matches(c, CudaGemm::Act::kClip, -0.25f, 0.5f);
}

TEST(CudaGemm, ConvPaddedStridedDilatedGrouped) {
  OpCall c;
  c.op = "Conv";
  c.inputs = {random_tensor(DType::kF32, {2, 6, 13, 11}, -1, 1, 13),
              random_tensor(DType::kF32, {20, 3, 3, 3}, -1, 1, 14),
              random_tensor(DType::kF32, {20}, -1, 1, 15)};
  c.attrs = {{"group", attr_int(2)},
             {"strides", ints({2, 1})},
             {"dilations", ints({1, 2})},
             {"pads", ints({1, 2, 2, 1})}};
  expect_gemm_matches(c);
}

TEST(CudaGemm, ConvStemAndSamePadding) {
  OpCall stem;
  stem.op = "Conv";
  stem.inputs = {random_tensor(DType::kF32, {1, 3, 23, 23}, -1, 1, 16),
                 random_tensor(DType::kF32, {16, 3, 7, 7}, -1, 1, 17)};
  stem.attrs = {{"strides", ints({2, 2})}, {"pads", ints({3, 3, 3, 3})}};
  expect_gemm_matches(stem);
  OpCall same;
  same.op = "Conv";
  same.inputs = {random_tensor(DType::kF32, {1, 8, 9, 10}, -1, 1, 18),
                 random_tensor(DType::kF32, {12, 8, 3, 3}, -1, 1, 19),
                 random_tensor(DType::kF32, {12}, -1, 1, 20)};
  same.attrs = {{"auto_pad", attr_string("SAME_LOWER")}, {"strides", ints({2, 2})}};
  expect_gemm_matches(same);
}

TEST(CudaGemm, PointwiseConvReadsTheImageAsB) {
  OpCall c;
  c.op = "Conv";
  c.inputs = {random_tensor(DType::kF32, {2, 24, 7, 9}, -1, 1, 21),
              random_tensor(DType::kF32, {40, 24, 1, 1}, -1, 1, 22),
              random_tensor(DType::kF32, {40}, -1, 1, 23)};
  expect_gemm_matches(c);
}

TEST(CudaGemm, ConvWithRelu) {
  OpCall c;
  c.op = "Conv";
  c.inputs = {random_tensor(DType::kF32, {1, 16, 12, 12}, -1, 1, 24),
              random_tensor(DType::kF32, {32, 16, 3, 3}, -1, 1, 25),
              random_tensor(DType::kF32, {32}, -1, 1, 26)};
  c.attrs = {{"pads", ints({1, 1, 1, 1})}};
  expect_gemm_matches(c, CudaGemm::Act::kRelu);
}

TEST(CudaGemm, DepthwiseConvIsOneRowPerGroup) {
  OpCall c;
  c.op = "Conv";
  c.inputs = {random_tensor(DType::kF32, {2, 12, 9, 11}, -1, 1, 27),
              random_tensor(DType::kF32, {12, 1, 3, 3}, -1, 1, 28),
              random_tensor(DType::kF32, {12}, -1, 1, 29)};
  c.attrs = {{"group", attr_int(12)}, {"strides", ints({2, 1})}, {"pads", ints({1, 1, 1, 1})}};
  expect_gemm_matches(c);
  expect_gemm_matches(c, CudaGemm::Act::kClip, 0.0f, 6.0f);
}

TEST(CudaGemm, OtherTypesStayLoopNests) {
  auto taken = [](OpCall c) {
    c.inputs_as_graph_inputs = false;
    std::unique_ptr<ir::Graph> g = make_op_graph(c);
    engine::PlanStep s;
    s.kind = engine::PlanStep::Kind::kKernel;
    s.node = 0;
    s.fused = {0};
    s.inputs = g->nodes[0].inputs;
    s.outputs = g->nodes[0].outputs;
    std::optional<CudaGemm> gm = engine::cuda_gemm_for_step(*g, s, 132);
    return gm ? std::to_string(gm->bm) + "x" + std::to_string(gm->bn) : std::string("none");
  };
  OpCall dw;
  dw.op = "Conv";
  dw.inputs = {random_tensor(DType::kF32, {1, 32, 56, 56}),
               random_tensor(DType::kF32, {32, 1, 3, 3})};
  dw.attrs = {{"group", attr_int(32)}, {"pads", ints({1, 1, 1, 1})}};
  EXPECT_EQ(taken(dw), "1x256");
  OpCall f64;
  f64.op = "MatMul";
  f64.inputs = {random_tensor(DType::kF64, {4, 4}), random_tensor(DType::kF64, {4, 4})};
  EXPECT_EQ(taken(f64), "none");
  OpCall mm;
  mm.op = "MatMul";
  mm.inputs = {random_tensor(DType::kF32, {4, 4}), random_tensor(DType::kF32, {4, 4})};
  EXPECT_NE(taken(mm), "none");
}

TEST(CudaGemm, TilingFillsTheGpuAndSplitsLongK) {
  auto gemm = [](int64_t m, int64_t n, int64_t k, int64_t batch = 1) {
    CudaGemm g;
    g.m = m;
    g.n = n;
    g.k = k;
    g.batch = {{batch, m * k, k * n, m * n, 0}};
    g.a_m = k;
    g.b_k = n;
    g.y_m = n;
    return g;
  };
  // resnet18's last 3x3 layer at batch 1: 512 x 49 x 4608 on 132 SMs. Whole, its grid would
  // leave most SMs idle: K is split until the blocks cover about as many SMs.
  CudaGemm g = gemm(512, 49, 4608);
  jit::choose_cuda_gemm_tiling(&g, 132);
  const int64_t blocks = ((g.m + g.bm - 1) / g.bm) * ((g.n + g.bn - 1) / g.bn);
  EXPECT_GT(g.splits, 1) << jit::cuda_gemm_key(g);
  EXPECT_GE(blocks * g.splits, 66) << jit::cuda_gemm_key(g);
  EXPECT_LE(blocks * g.splits, 2 * 132) << jit::cuda_gemm_key(g);
  EXPECT_EQ(g.k_chunk % g.bk, 0);
  EXPECT_GE(g.k_chunk * g.splits, g.k);
  EXPECT_FALSE(g.tf32);
  EXPECT_TRUE(g.y_covers_prefix());
  // Y a part of a larger tensor (a Concat's channels): its zeroing would miss, so no split.
  CudaGemm part = g;
  part.y_offset = 49 * 100;
  EXPECT_FALSE(part.y_covers_prefix());
  jit::choose_cuda_gemm_tiling(&part, 132);
  EXPECT_EQ(part.splits, 1);
  part.batch[0].y = 1000 * 49;  // images 1000 channels apart
  part.y_offset = 0;
  part.batch[0].extent = 2;
  EXPECT_FALSE(part.y_covers_prefix());
  jit::split_cuda_gemm_k(&part, 4);
  EXPECT_THROW(jit::print_cuda_gemm(part, "k"), Error);
  // An activation needs the whole sum: no split.
  g.act = CudaGemm::Act::kRelu;
  jit::choose_cuda_gemm_tiling(&g, 132);
  EXPECT_EQ(g.splits, 1);
  // A big square GEMM keeps the largest tile and its whole K; with TF32 allowed it runs on
  // tensor cores.
  CudaGemm big = gemm(2048, 2048, 2048);
  jit::choose_cuda_gemm_tiling(&big, 132);
  EXPECT_EQ(big.bm, 64);
  EXPECT_EQ(big.bn, 64);
  EXPECT_EQ(big.splits, 1);
  EXPECT_FALSE(big.tf32);
  jit::choose_cuda_gemm_tiling(&big, 132, /*tf32=*/true);
  EXPECT_TRUE(big.tf32);
  EXPECT_TRUE(jit::cuda_gemm_tf32_fits(big));
  EXPECT_EQ(big.threads(), 256);
  // A middle resnet18 layer (256 x 196 x 2304, then Relu): a thin 1 x 256 tile would fill the
  // GPU but reread the whole image once per output channel; a square tile is chosen.
  CudaGemm mid = gemm(256, 196, 2304);
  mid.act = CudaGemm::Act::kRelu;
  jit::choose_cuda_gemm_tiling(&mid, 132);
  EXPECT_GE(mid.bm, 16) << jit::cuda_gemm_key(mid);
  // A depthwise convolution (one row per group, 32 groups, 3136 pixels, K = 9): one row per
  // tile, no rows of padding.
  CudaGemm dw = gemm(1, 3136, 9, 32);
  jit::choose_cuda_gemm_tiling(&dw, 132, /*tf32=*/true);
  EXPECT_EQ(dw.bm, 1) << jit::cuda_gemm_key(dw);
  EXPECT_FALSE(dw.tf32);
}

}  // namespace
}  // namespace kiln::testing
