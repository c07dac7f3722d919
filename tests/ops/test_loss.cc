// Tests of the loss ops (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss) with hand-computed
// values: reductions, class weights, ignore_index, N-d inputs, log_prob and error cases.
#include <cmath>

#include "op_test_util.h"

namespace kiln::testing {
namespace {

using ir::Dim;

const Tensor kScores = make<float>({2, 3}, {1, 2, 3, 4, 5, 6});
const Tensor kTarget = make<int64_t>({2}, {2, 0});

OpCall nll(std::string reduction, std::vector<Tensor> inputs = {kScores, kTarget}) {
  return OpCall{"NegativeLogLikelihoodLoss",
                std::move(inputs),
                {{"reduction", attr_string(std::move(reduction))}},
                13};
}

TEST(OpLoss, NllReductions) {
  EXPECT_TRUE(tensors_near(run_op(nll("none"))[0], make<float>({2}, {-3, -4})));
  EXPECT_TRUE(tensors_near(run_op(nll("sum"))[0], Tensor::scalar<float>(-7)));
  EXPECT_TRUE(tensors_near(run_op(nll("mean"))[0], Tensor::scalar<float>(-3.5f)));
  // mean is the default reduction
  OpCall d{"NegativeLogLikelihoodLoss", {kScores, kTarget}, {}, 22};
  EXPECT_TRUE(tensors_near(run_op(d)[0], Tensor::scalar<float>(-3.5f)));
}

TEST(OpLoss, NllWeightsAndIgnoreIndex) {
  Tensor w = make<float>({3}, {0.5f, 1, 2});
  EXPECT_TRUE(
      tensors_near(run_op(nll("none", {kScores, kTarget, w}))[0], make<float>({2}, {-6, -2})));
  // mean divides by the sum of applied weights: -8 / (2 + 0.5)
  EXPECT_TRUE(
      tensors_near(run_op(nll("mean", {kScores, kTarget, w}))[0], Tensor::scalar<float>(-3.2f)));
  OpCall ii = nll("mean", {kScores, kTarget, w});
  ii.attrs["ignore_index"] = attr_int(2);
  EXPECT_TRUE(tensors_near(run_op(ii)[0], Tensor::scalar<float>(-4)));  // -2 / 0.5
  // Without weights the ignored sample leaves the count: -4 / 1.
  OpCall ii2 = nll("mean");
  ii2.attrs["ignore_index"] = attr_int(2);
  EXPECT_TRUE(tensors_near(run_op(ii2)[0], Tensor::scalar<float>(-4)));
  // A negative ignore_index may appear in the target.
  OpCall neg = nll("none", {kScores, make<int32_t>({2}, {-1, 1})});
  neg.attrs["ignore_index"] = attr_int(-1);
  EXPECT_TRUE(tensors_near(run_op(neg)[0], make<float>({2}, {0, -5})));
}

TEST(OpLoss, NllMultiDimAndDouble) {
  // N=1, C=2, d1=2: loss[0][j] = -input[0][target[0][j]][j]
  Tensor x = make<double>({1, 2, 2}, {1, 2, 3, 4});
  Tensor t = make<int64_t>({1, 2}, {1, 0});
  auto out = run_op(nll("none", {x, t}));
  EXPECT_TRUE(tensors_near(out[0], make<double>({1, 2}, {-3, -2})));
  // Zero-size batch: sum is 0.
  auto z = run_op(nll("sum", {Tensor(DType::kF32, {0, 3}), Tensor(DType::kI64, {0})}));
  EXPECT_TRUE(tensors_near(z[0], Tensor::scalar<float>(0)));
}

TEST(OpLoss, NllSymbolicShape) {
  Tensor t = make<int64_t>({2, 4}, {0, 1, 2, 0, 1, 1, 2, 2});
  OpCall c = nll("none", {random_tensor(DType::kF32, {2, 3, 4}), t});
  c.input_shapes = {ir::Shape({Dim::sym("batch"), Dim::constant(3), Dim::sym("len")}),
                    ir::Shape({Dim::sym("batch"), Dim::unknown()})};
  auto g = make_op_graph(c);  // runs load-time inference
  const ir::Shape& s = g->values[size_t(g->nodes[0].outputs[0])].shape;
  ASSERT_TRUE(s.has_rank);
  ASSERT_EQ(s.rank(), 2);
  EXPECT_EQ(s.dims[0], Dim::sym("batch"));
  EXPECT_EQ(s.dims[1], Dim::sym("len"));
  EXPECT_EQ(run_op(c)[0].dims(), (Dims{2, 4}));
}

TEST(OpLoss, NllErrors) {
  // Target out of range.
  EXPECT_THROW(run_op(nll("none", {kScores, make<int64_t>({2}, {3, 0})})), Error);
  // Target shape does not match the input's.
  EXPECT_THROW(run_op(nll("none", {kScores, make<int64_t>({3}, {0, 0, 0})})), Error);
  // Bad weight length and bad reduction.
  EXPECT_THROW(run_op(nll("sum", {kScores, kTarget, make<float>({2}, {1, 1})})), Error);
  EXPECT_THROW(run_op(nll("max")), Error);
}

TEST(OpLoss, SoftmaxCrossEntropy) {
  // Uniform scores: every log-probability is -ln 2.
  Tensor x = make<float>({2, 2}, {0, 0, 3, 3});
  Tensor t = make<int64_t>({2}, {0, 1});
  OpCall c{"SoftmaxCrossEntropyLoss", {x, t}, {}, 13, 2};
  auto out = run_op(c);
  float l2 = std::log(2.0f);
  EXPECT_TRUE(tensors_near(out[0], Tensor::scalar<float>(l2)));
  EXPECT_TRUE(tensors_near(out[1], make<float>({2, 2}, {-l2, -l2, -l2, -l2})));
  // scores [0, ln 3] -> probabilities [1/4, 3/4]; weights and "none".
  Tensor y = make<float>({1, 2}, {0, std::log(3.0f)});
  OpCall w{"SoftmaxCrossEntropyLoss",
           {y, make<int64_t>({1}, {1}), make<float>({2}, {1, 2})},
           {{"reduction", attr_string("none")}},
           13};
  EXPECT_TRUE(tensors_near(run_op(w)[0], make<float>({1}, {-2 * std::log(0.75f)})));
  // f16 with ignore_index on a 3-d input.
  Tensor h = make<Float16>({1, 2, 2}, {Float16(0), Float16(1), Float16(0), Float16(1)});
  OpCall f{"SoftmaxCrossEntropyLoss",
           {h, make<int64_t>({1, 2}, {1, 5})},
           {{"reduction", attr_string("sum")}, {"ignore_index", attr_int(5)}},
           13};
  auto fo = run_op(f);
  EXPECT_EQ(fo[0].dtype(), DType::kF16);
  EXPECT_TRUE(tensors_near(fo[0], Tensor::scalar<Float16>(Float16(std::log(2.0f))), 1e-3, 1e-3));
}

TEST(OpLoss, SoftmaxCrossEntropyErrors) {
  EXPECT_THROW(
      run_op(
          {"SoftmaxCrossEntropyLoss", {make<float>({2}, {1, 2}), make<int64_t>({}, {0})}, {}, 13}),
      Error);
  Tensor bad = make<int64_t>({2}, {0, -1});  // -1 without ignore_index
  EXPECT_THROW(run_op({"SoftmaxCrossEntropyLoss", {kScores, bad}, {}, 13}), Error);
}

}  // namespace
}  // namespace kiln::testing
