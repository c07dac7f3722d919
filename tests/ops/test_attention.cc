// Tests of the attention family: Attention (3-D and 4-D forms, grouped-query heads, masks,
// KV cache, causal alignment, nonpad_kv_seqlen, softcap and qk_matmul_output modes),
// RotaryEmbedding, TensorScatter, SwiGLU, CausalConvWithState and LinearAttention, on
// hand-computed cases.
//
// Most Attention cases use head size 1 and scale 1 so that the scores are plain products and the
// softmax weights are simple fractions: scores {0, ln 3} give weights {1/4, 3/4}.
#include <cmath>

#include "ir/shape_inference.h"
#include "op_test_util.h"

namespace kiln::testing {
namespace {

using ir::Dim;

const float kLn3 = std::log(3.0f);

Tensor f4(Dims d, std::vector<float> v) { return make<float>(std::move(d), std::move(v)); }

OpCall attention(std::vector<Tensor> in, std::map<std::string, ir::Attribute> attrs = {},
                 int outputs = 1, int opset = 23) {
  OpCall c{"Attention", std::move(in), std::move(attrs), opset, outputs};
  return c;
}

TEST(OpAttention, Basic4DScaleAttribute) {
  // Scores {0, ln3} -> weights {1/4, 3/4} over V {4, 8}.
  auto out = run_op(
      attention({f4({1, 1, 1, 1}, {1}), f4({1, 1, 2, 1}, {0, kLn3}), f4({1, 1, 2, 1}, {4, 8})},
                {{"scale", attr_float(1)}}));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 1}, {7})));
}

TEST(OpAttention, DefaultScaleAndQkOutput) {
  // head size 4 -> scale 1/2; dot products {0, 2 ln3} -> scores {0, ln3}.
  float k = kLn3 / 2;
  auto out =
      run_op(attention({f4({1, 1, 1, 4}, {1, 1, 1, 1}), f4({1, 1, 2, 4}, {0, 0, 0, 0, k, k, k, k}),
                        f4({1, 1, 2, 1}, {4, 8})},
                       {}, 4));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 1}, {7})));
  EXPECT_TRUE(tensors_near(out[1], f4({1, 1, 2, 4}, {0, 0, 0, 0, k, k, k, k})));  // present_key
  EXPECT_TRUE(tensors_near(out[3], f4({1, 1, 1, 2}, {0, kLn3})));                 // mode 0
}

TEST(OpAttention, ThreeDLayoutSplitsHeads) {
  // Hidden = heads * head_size with head size 1: head 0 scores {0, ln3}, head 1 {0, -ln3}.
  auto out = run_op(attention(
      {f4({1, 1, 2}, {1, 1}), f4({1, 2, 2}, {0, 0, kLn3, -kLn3}), f4({1, 2, 2}, {4, 4, 8, 8})},
      {{"scale", attr_float(1)}, {"q_num_heads", attr_int(2)}, {"kv_num_heads", attr_int(2)}}, 3));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 2}, {7, 5})));
  // present_key is 4-D [batch, kv_heads, seq, head_size].
  EXPECT_TRUE(tensors_near(out[1], f4({1, 2, 2, 1}, {0, kLn3, 0, -kLn3})));
  EXPECT_TRUE(tensors_near(out[2], f4({1, 2, 2, 1}, {4, 8, 4, 8})));
}

TEST(OpAttention, GroupedQueryHeadsShareConsecutively) {
  // 4 query heads over 2 kv heads: heads 0,1 read kv 0 and heads 2,3 read kv 1.
  auto out =
      run_op(attention({f4({1, 4, 1, 1}, {1, 1, 1, 1}), f4({1, 2, 2, 1}, {0, kLn3, 0, -kLn3}),
                        f4({1, 2, 2, 1}, {4, 8, 4, 8})},
                       {{"scale", attr_float(1)}}));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 4, 1, 1}, {7, 7, 5, 5})));
}

TEST(OpAttention, CausalWithoutAndWithPast) {
  Tensor zeros2 = f4({1, 1, 2, 1}, {0, 0});
  auto out =
      run_op(attention({zeros2, zeros2, f4({1, 1, 2, 1}, {4, 8})}, {{"is_causal", attr_int(1)}}));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 2, 1}, {4, 6})));
  // One past entry: query i sees keys j <= i + 1 of the 3 total.
  out = run_op(attention({zeros2, zeros2, f4({1, 1, 2, 1}, {4, 8}), Tensor(), f4({1, 1, 1, 1}, {0}),
                          f4({1, 1, 1, 1}, {2})},
                         {{"is_causal", attr_int(1)}}, 3));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 2, 1}, {3, 14.0f / 3})));
  EXPECT_TRUE(tensors_near(out[2], f4({1, 1, 3, 1}, {2, 4, 8})));
}

TEST(OpAttention, MasksBoolFloatAndShortPadding) {
  Tensor q = f4({1, 1, 1, 1}, {1});
  Tensor k = f4({1, 1, 2, 1}, {0, kLn3});
  Tensor v = f4({1, 1, 2, 1}, {4, 8});
  std::map<std::string, ir::Attribute> scale1 = {{"scale", attr_float(1)}};
  // A bool mask covering only the first key: the missing key counts as masked out.
  auto out = run_op(attention({q, k, v, make<bool>({1, 1}, {true})}, scale1));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 1}, {4})));
  // A float mask is added to the scores: {0, ln3} + {0, -ln3} -> uniform.
  out = run_op(attention({q, k, v, f4({2}, {0, -kLn3})}, scale1));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 1}, {6})));
  // A short float mask pads with -inf.
  out = run_op(attention({q, k, v, f4({1, 1, 1, 1}, {0})}, scale1));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 1}, {4})));
}

TEST(OpAttention, FullyMaskedRowGivesZeros) {
  Tensor zeros2 = f4({1, 1, 2, 1}, {0, 0});
  auto out = run_op(attention(
      {zeros2, zeros2, f4({1, 1, 2, 1}, {4, 8}), make<bool>({2, 2}, {false, false, true, true})},
      {{"qk_matmul_output_mode", attr_int(3)}}, 4));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 2, 1}, {0, 6})));
  EXPECT_TRUE(tensors_near(out[3], f4({1, 1, 2, 2}, {0, 0, 0.5f, 0.5f})));
}

TEST(OpAttention, NonpadKvSeqlenOpset24) {
  Tensor q = f4({2, 1, 1, 1}, {0, 0});
  Tensor k = f4({2, 1, 2, 1}, {0, 0, 0, 0});
  Tensor v = f4({2, 1, 2, 1}, {4, 8, 4, 8});
  Tensor lens = make<int64_t>({2}, {1, 2});
  auto out = run_op(attention({q, k, v, Tensor(), Tensor(), Tensor(), lens}, {}, 1, 24));
  EXPECT_TRUE(tensors_near(out[0], f4({2, 1, 1, 1}, {4, 6})));
  // Causal with only nonpad lengths: the frontier is nonpad[b] - q_seq.
  out = run_op(attention({q, k, v, Tensor(), Tensor(), Tensor(), lens},
                         {{"is_causal", attr_int(1)}}, 1, 24));
  EXPECT_TRUE(tensors_near(out[0], f4({2, 1, 1, 1}, {4, 6})));
  // Lengths beyond the kv length are bad data.
  EXPECT_THROW(run_op(attention({q, k, v, Tensor(), Tensor(), Tensor(), make<int64_t>({2}, {1, 3})},
                                {}, 1, 24)),
               Error);
}

TEST(OpAttention, SoftcapAndQkOutputModes) {
  Tensor q = f4({1, 1, 1, 1}, {1});
  Tensor k = f4({1, 1, 2, 1}, {0, 2});
  Tensor v = f4({1, 1, 2, 1}, {0, 1});
  Tensor mask = f4({1, 2}, {0, -1});
  float capped = std::tanh(2.0f);
  float t = capped - 1;
  float p1 = std::exp(t) / (1 + std::exp(t));
  std::vector<std::vector<float>> want = {{0, 2}, {0, capped}, {0, t}, {1 - p1, p1}};
  for (int mode = 0; mode < 4; ++mode) {
    auto out = run_op(attention({q, k, v, mask},
                                {{"scale", attr_float(1)},
                                 {"softcap", attr_float(1)},
                                 {"qk_matmul_output_mode", attr_int(mode)}},
                                4));
    EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 1}, {p1}))) << "mode " << mode;
    EXPECT_TRUE(tensors_near(out[3], f4({1, 1, 1, 2}, want[size_t(mode)]))) << "mode " << mode;
  }
}

TEST(OpAttention, Float16ComputesInFloat) {
  auto h = [](Dims d, std::vector<float> v) {
    std::vector<Float16> x(v.begin(), v.end());
    return make<Float16>(std::move(d), x);
  };
  auto out =
      run_op(attention({h({1, 1, 1, 1}, {1}), h({1, 1, 2, 1}, {0, kLn3}), h({1, 1, 2, 1}, {4, 8})},
                       {{"scale", attr_float(1)}}));
  ASSERT_EQ(out[0].dtype(), DType::kF16);
  EXPECT_TRUE(tensors_near(out[0], h({1, 1, 1, 1}, {7}), 1e-2, 1e-2));
}

TEST(OpAttention, BadShapesFail) {
  // K head size differs from Q's.
  EXPECT_THROW(run_op(attention(
                   {f4({1, 1, 1, 2}, {1, 1}), f4({1, 1, 1, 3}, {1, 1, 1}), f4({1, 1, 1, 1}, {1})})),
               Error);
  // 3-D without head counts.
  EXPECT_THROW(
      run_op(attention({f4({1, 1, 2}, {1, 1}), f4({1, 1, 2}, {1, 1}), f4({1, 1, 2}, {1, 1})})),
      Error);
  // 3 query heads cannot share 2 kv heads.
  EXPECT_THROW(run_op(attention({f4({1, 3, 1, 1}, {1, 1, 1}), f4({1, 2, 1, 1}, {1, 1}),
                                 f4({1, 2, 1, 1}, {1, 1})})),
               Error);
  // Mask longer than the kv length.
  EXPECT_THROW(run_op(attention({f4({1, 1, 1, 1}, {1}), f4({1, 1, 1, 1}, {1}),
                                 f4({1, 1, 1, 1}, {1}), f4({2}, {0, 0})})),
               Error);
}

// Load-time inference on symbolic shapes; returns the shapes of all outputs.
std::vector<ir::Shape> infer_symbolic(const std::string& op, int opset,
                                      std::vector<ir::Shape> shapes, int num_outputs,
                                      std::map<std::string, ir::Attribute> attrs) {
  std::vector<std::pair<DType, ir::Shape>> inputs;
  for (auto& s : shapes) inputs.emplace_back(DType::kF32, s);
  return infer_symbolic_shapes(op, inputs, attrs, opset, num_outputs);
}

TEST(OpAttention, SymbolicShapes) {
  Dim batch = Dim::sym("batch"), seq = Dim::sym("seq"), kv = Dim::sym("kv"),
      past = Dim::sym("past");
  ir::Shape q({batch, seq, Dim::constant(8)});
  ir::Shape k({batch, kv, Dim::constant(4)});
  ir::Shape v({batch, kv, Dim::constant(6)});
  ir::Shape pk({batch, Dim::constant(2), past, Dim::constant(2)});
  ir::Shape pv({batch, Dim::constant(2), past, Dim::constant(3)});
  // 4 query heads of size 2, 2 kv heads; V head size 3.
  auto s = infer_symbolic("Attention", 23, {q, k, v, ir::Shape::unranked(), pk, pv}, 4,
                          {{"q_num_heads", attr_int(4)}, {"kv_num_heads", attr_int(2)}});
  Dim total = ir::dim_add(past, kv);
  EXPECT_EQ(s[0].to_string(), ir::Shape({batch, seq, Dim::constant(12)}).to_string());
  EXPECT_EQ(s[1].to_string(),
            ir::Shape({batch, Dim::constant(2), total, Dim::constant(2)}).to_string());
  EXPECT_EQ(s[2].to_string(),
            ir::Shape({batch, Dim::constant(2), total, Dim::constant(3)}).to_string());
  EXPECT_EQ(s[3].to_string(), ir::Shape({batch, Dim::constant(4), seq, total}).to_string());
  // Unranked Q: outputs stay unranked rather than failing.
  s = infer_symbolic("Attention", 23, {ir::Shape::unranked(), k, v}, 1, {});
  EXPECT_FALSE(s[0].has_rank);
}

// ---- RotaryEmbedding ------------------------------------------------------------------------

// Cache row 1 rotates the first pair by 90 degrees and leaves the second alone.
TEST(OpAttention, RotaryEmbeddingHalvesAndInterleaved) {
  Tensor x = f4({1, 1, 1, 4}, {1, 2, 3, 4});
  Tensor cos = f4({2, 2}, {1, 1, 0, 1});
  Tensor sin = f4({2, 2}, {0, 0, 1, 0});
  Tensor pos = make<int64_t>({1, 1}, {1});
  auto out = run_op({"RotaryEmbedding", {x, cos, sin, pos}, {}, 23});
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 4}, {-3, 2, 1, 4})));
  out = run_op({"RotaryEmbedding", {x, cos, sin, pos}, {{"interleaved", attr_int(1)}}, 23});
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 4}, {-2, 1, 3, 4})));
}

TEST(OpAttention, RotaryEmbeddingPartialDimAnd3D) {
  Tensor x = f4({1, 1, 1, 4}, {1, 2, 3, 4});
  auto out = run_op({"RotaryEmbedding",
                     {x, f4({2, 1}, {1, 0}), f4({2, 1}, {0, 1}), make<int64_t>({1, 1}, {1})},
                     {{"rotary_embedding_dim", attr_int(2)}},
                     23});
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 1, 4}, {-2, 1, 3, 4})));
  // 3-D input split into 2 heads of size 2; caches given per (batch, seq) without position_ids.
  out = run_op({"RotaryEmbedding",
                {f4({1, 1, 4}, {1, 2, 3, 4}), f4({1, 1, 1}, {0}), f4({1, 1, 1}, {1})},
                {{"num_heads", attr_int(2)}},
                23});
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 4}, {-2, 1, -4, 3})));
}

TEST(OpAttention, RotaryEmbeddingBadPositionFails) {
  Tensor x = f4({1, 1, 1, 4}, {1, 2, 3, 4});
  Tensor cache = f4({2, 2}, {1, 1, 0, 1});
  EXPECT_THROW(run_op({"RotaryEmbedding", {x, cache, cache, make<int64_t>({1, 1}, {2})}, {}, 23}),
               Error);
  // 3-D input without num_heads.
  EXPECT_THROW(run_op({"RotaryEmbedding",
                       {f4({1, 1, 4}, {1, 2, 3, 4}), f4({1, 1, 2}, {1, 1}), f4({1, 1, 2}, {0, 0})},
                       {},
                       23}),
               Error);
}

// ---- TensorScatter --------------------------------------------------------------------------

TEST(OpAttention, TensorScatterLinearAndCircular) {
  Tensor past = f4({2, 3, 1}, {0, 0, 0, 0, 0, 0});
  auto out =
      run_op({"TensorScatter", {past, f4({2, 1, 1}, {5, 6}), make<int64_t>({2}, {2, 0})}, {}, 24});
  EXPECT_TRUE(tensors_near(out[0], f4({2, 3, 1}, {0, 0, 5, 6, 0, 0})));
  out = run_op({"TensorScatter",
                {f4({1, 3, 1}, {1, 2, 3}), f4({1, 2, 1}, {7, 8}), make<int64_t>({1}, {2})},
                {{"mode", attr_string("circular")}},
                24});
  EXPECT_TRUE(tensors_near(out[0], f4({1, 3, 1}, {8, 2, 7})));
  // Without write_indices the update goes to the front; axis given explicitly; int64 data.
  out = run_op({"TensorScatter",
                {make<int64_t>({1, 3}, {1, 2, 3}), make<int64_t>({1, 1}, {9})},
                {{"axis", attr_int(1)}},
                24});
  EXPECT_TRUE(tensors_near(out[0], make<int64_t>({1, 3}, {9, 2, 3})));
}

TEST(OpAttention, TensorScatterOverflowFails) {
  Tensor past = f4({1, 3, 1}, {0, 0, 0});
  EXPECT_THROW(
      run_op({"TensorScatter", {past, f4({1, 2, 1}, {1, 2}), make<int64_t>({1}, {2})}, {}, 24}),
      Error);
  EXPECT_THROW(run_op({"TensorScatter", {past, f4({1, 2, 2}, {1, 2, 3, 4})}, {}, 24}), Error);
}

// ---- SwiGLU ---------------------------------------------------------------------------------

TEST(OpAttention, SwiGLU) {
  auto sig = [](float x) { return 1 / (1 + std::exp(-x)); };
  Tensor a = f4({2}, {0, 1});
  Tensor b = f4({2}, {2, 3});
  auto out = run_op({"SwiGLU", {a, b}, {}, 28});
  EXPECT_TRUE(tensors_near(out[0], f4({2}, {0, sig(1) * 3})));
  out = run_op({"SwiGLU", {a, b}, {{"alpha", attr_float(0.5f)}}, 28});
  EXPECT_TRUE(tensors_near(out[0], f4({2}, {0, sig(0.5f) * 3})));
  EXPECT_THROW(run_op({"SwiGLU", {a, f4({1}, {1})}, {}, 28}), Error);
}

// ---- CausalConvWithState --------------------------------------------------------------------

TEST(OpAttention, CausalConvWithState) {
  // Kernel {1, 10}: out[t] = x[t-1] + 10 x[t]; the history before t=0 is the past state.
  Tensor x = f4({1, 1, 3}, {1, 2, 3});
  Tensor w = f4({1, 1, 2}, {1, 10});
  OpCall c{"CausalConvWithState", {x, w}, {}, 27, 2};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 3}, {10, 21, 32})));
  EXPECT_TRUE(tensors_near(out[1], f4({1, 1, 1}, {3})));
  c.inputs = {x, w, f4({1}, {1}), f4({1, 1, 1}, {5})};
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 3}, {16, 22, 33})));
  c.attrs = {{"activation", attr_string("silu")}};
  out = run_op(c);
  auto silu = [](float v) { return v / (1 + std::exp(-v)); };
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 3}, {silu(16), silu(22), silu(33)})));
  // A past state of the wrong length.
  c.inputs = {x, w, Tensor(), f4({1, 1, 2}, {0, 0})};
  EXPECT_THROW(run_op(c), Error);
}

// ---- LinearAttention ------------------------------------------------------------------------

OpCall linear_attention(std::vector<Tensor> in, std::string rule, int64_t qh = 1) {
  OpCall c{"LinearAttention",
           std::move(in),
           {{"update_rule", attr_string(std::move(rule))},
            {"scale", attr_float(1)},
            {"q_num_heads", attr_int(qh)},
            {"kv_num_heads", attr_int(1)}},
           27,
           2};
  return c;
}

TEST(OpAttention, LinearAttentionRules) {
  // One head, head sizes 1: the state is a scalar S; q = 1 reads S back.
  Tensor q = f4({1, 2, 1}, {1, 1});
  Tensor k = f4({1, 2, 1}, {1, 2});
  Tensor v = f4({1, 2, 1}, {3, 4});
  auto out = run_op(linear_attention({q, k, v}, "linear"));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 2, 1}, {3, 11})));  // S = 3, then 3 + 2*4
  EXPECT_TRUE(tensors_near(out[1], f4({1, 1, 1, 1}, {11})));
  // Gated: S = 3 * 0.5 + 8 at step 1.
  Tensor decay = f4({1, 2, 1}, {0, std::log(0.5f)});
  out = run_op(linear_attention({q, k, v, Tensor(), decay}, "gated"));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 2, 1}, {3, 9.5f})));
  // Delta: step 1 writes 0.5 * (4 - S k) = -1 along k = 2: S = 3 - 2.
  Tensor beta = f4({1, 2, 1}, {1, 0.5f});
  out = run_op(linear_attention({q, k, v, Tensor(), Tensor(), beta}, "delta"));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 2, 1}, {3, 1})));
  // A past state is the starting S.
  out = run_op(linear_attention({q, k, v, f4({1, 1, 1, 1}, {1})}, "linear"));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 2, 1}, {4, 12})));
}

TEST(OpAttention, LinearAttentionGroupedHeads) {
  // Two query heads read the one kv state: q = {1, 2} -> {3, 6}.
  auto out = run_op(linear_attention(
      {f4({1, 1, 2}, {1, 2}), f4({1, 1, 1}, {1}), f4({1, 1, 1}, {3})}, "linear", 2));
  EXPECT_TRUE(tensors_near(out[0], f4({1, 1, 2}, {3, 6})));
  // The default rule (gated_delta) needs decay and beta.
  OpCall c = linear_attention({f4({1, 1, 1}, {1}), f4({1, 1, 1}, {1}), f4({1, 1, 1}, {3})}, "");
  c.attrs.erase("update_rule");
  EXPECT_THROW(run_op(c), Error);
}

}  // namespace
}  // namespace kiln::testing
