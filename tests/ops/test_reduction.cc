// Tests of the reduction family: Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax,
// CumSum/CumProd and TopK, on hand-computed cases, opset variants and symbolic shapes.
#include <cmath>
#include <limits>

#include "ir/shape_inference.h"
#include "op_test_util.h"

namespace kiln::testing {
namespace {

const float kInf = std::numeric_limits<float>::infinity();

Tensor axes(std::vector<int64_t> v) { return make<int64_t>({int64_t(v.size())}, v); }

// x = [[1, 2, 3], [4, 5, 6]]
Tensor x23() { return make<float>({2, 3}, {1, 2, 3, 4, 5, 6}); }

TEST(OpReduction, SumAxesInputKeepdims) {
  auto out = run_op({"ReduceSum", {x23(), axes({1})}, {}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 1}, {6, 15})));
  out = run_op({"ReduceSum", {x23(), axes({-2})}, {{"keepdims", attr_int(0)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({3}, {5, 7, 9})));
}

TEST(OpReduction, SumEmptyAxesReducesAllOrIsNoop) {
  auto out = run_op({"ReduceSum", {x23()}, {{"keepdims", attr_int(0)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], Tensor::scalar<float>(21)));
  out = run_op({"ReduceSum", {x23(), axes({})}, {{"noop_with_empty_axes", attr_int(1)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], x23()));
}

TEST(OpReduction, AxesAttributeInOlderOpsets) {
  auto out = run_op({"ReduceSum", {x23()}, {{"axes", attr_ints({0})}}, 11});
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 3}, {5, 7, 9})));
  out = run_op({"ReduceMean", {x23()}, {{"axes", attr_ints({1})}, {"keepdims", attr_int(0)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2}, {2, 5})));
  out = run_op({"ReduceMax", {x23(), axes({1})}, {{"keepdims", attr_int(0)}}, 18});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2}, {3, 6})));
}

TEST(OpReduction, OtherKinds) {
  Tensor x = make<float>({2, 2}, {1, -2, 3, 4});
  auto one = [&](const char* op) {
    return run_op({op, {x, axes({1})}, {{"keepdims", attr_int(0)}}, 18})[0];
  };
  EXPECT_TRUE(tensors_near(one("ReduceMin"), make<float>({2}, {-2, 3})));
  EXPECT_TRUE(tensors_near(one("ReduceProd"), make<float>({2}, {-2, 12})));
  EXPECT_TRUE(tensors_near(one("ReduceL1"), make<float>({2}, {3, 7})));
  EXPECT_TRUE(tensors_near(one("ReduceL2"), make<float>({2}, {std::sqrt(5.f), 5})));
  EXPECT_TRUE(tensors_near(one("ReduceSumSquare"), make<float>({2}, {5, 25})));
  EXPECT_TRUE(tensors_near(one("ReduceLogSum"), make<float>({2}, {NAN, std::log(7.f)})));
  EXPECT_TRUE(tensors_near(one("ReduceLogSumExp"),
                           make<float>({2}, {std::log(std::exp(1.f) + std::exp(-2.f)),
                                             std::log(std::exp(3.f) + std::exp(4.f))})));
}

TEST(OpReduction, LogSumExpIsStableForLargeValues) {
  Tensor x = make<float>({2}, {1000, 1000});
  auto out = run_op({"ReduceLogSumExp", {x}, {{"keepdims", attr_int(0)}}, 18});
  EXPECT_TRUE(tensors_near(out[0], Tensor::scalar<float>(1000 + std::log(2.f))));
}

TEST(OpReduction, EmptyReductionsGiveIdentities) {
  Tensor x(DType::kF32, {2, 0});
  auto one = [&](const char* op) {
    return run_op({op, {x, axes({1})}, {{"keepdims", attr_int(1)}}, 18})[0];
  };
  EXPECT_TRUE(tensors_near(one("ReduceSum"), make<float>({2, 1}, {0, 0})));
  EXPECT_TRUE(tensors_near(one("ReduceProd"), make<float>({2, 1}, {1, 1})));
  EXPECT_TRUE(tensors_near(one("ReduceMax"), make<float>({2, 1}, {-kInf, -kInf})));
  EXPECT_TRUE(tensors_near(one("ReduceMin"), make<float>({2, 1}, {kInf, kInf})));
  EXPECT_TRUE(tensors_near(one("ReduceLogSumExp"), make<float>({2, 1}, {-kInf, -kInf})));
  Tensor xi(DType::kI32, {0, 3});
  auto out = run_op({"ReduceMin", {xi, axes({0})}, {{"keepdims", attr_int(0)}}, 18});
  int32_t big = std::numeric_limits<int32_t>::max();
  EXPECT_TRUE(tensors_near(out[0], make<int32_t>({3}, {big, big, big})));
}

TEST(OpReduction, IntBoolAndHalfTypes) {
  Tensor xi = make<int64_t>({2, 2}, {1, 2, 3, 4});
  auto out = run_op({"ReduceSum", {xi, axes({0})}, {{"keepdims", attr_int(0)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<int64_t>({2}, {4, 6})));
  out = run_op({"ReduceMean", {xi}, {{"keepdims", attr_int(0)}}, 18});
  EXPECT_TRUE(tensors_near(out[0], Tensor::scalar<int64_t>(2)));  // 10 / 4, truncated
  Tensor xb = make<bool>({2, 2}, {true, false, true, true});
  out = run_op({"ReduceMax", {xb, axes({1})}, {{"keepdims", attr_int(0)}}, 20});
  EXPECT_TRUE(tensors_near(out[0], make<bool>({2}, {true, true})));
  out = run_op({"ReduceMin", {xb, axes({1})}, {{"keepdims", attr_int(0)}}, 20});
  EXPECT_TRUE(tensors_near(out[0], make<bool>({2}, {false, true})));
  Tensor xh = make<Float16>({3}, {Float16(1.5f), Float16(2.f), Float16(-0.5f)});
  out = run_op({"ReduceSum", {xh}, {{"keepdims", attr_int(0)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], Tensor::scalar<Float16>(Float16(3.f))));
}

TEST(OpReduction, MaxPropagatesNaN) {
  Tensor x = make<float>({3}, {1, NAN, 2});
  auto out = run_op({"ReduceMax", {x}, {{"keepdims", attr_int(0)}}, 18});
  EXPECT_TRUE(std::isnan(out[0].data<float>()[0]));
}

TEST(OpReduction, BadAxesFail) {
  EXPECT_THROW(run_op({"ReduceSum", {x23(), axes({2})}, {}, 13}), Error);
  EXPECT_THROW(run_op({"ReduceMean", {x23()}, {{"axes", attr_ints({0, -2})}}, 13}), Error);
}

TEST(OpReduction, SymbolicShapes) {
  OpCall c{"ReduceSum", {x23(), axes({1})}, {{"keepdims", attr_int(0)}}, 13};
  c.inputs_as_graph_inputs = false;
  auto g = make_op_graph(c);
  ir::Value& in = g->values[size_t(g->nodes[0].inputs[0])];
  in.constant = Tensor();
  in.shape = ir::Shape({ir::Dim::sym("batch"), ir::Dim::sym("seq")});
  // make_op_graph inferred concrete output shapes; forget them so they are inferred again.
  for (int o : g->nodes[0].outputs) g->values[size_t(o)].shape = ir::Shape::unranked();
  ir::infer_shapes(*g);
  EXPECT_EQ(g->values[size_t(g->nodes[0].outputs[0])].shape.to_string(),
            ir::Shape({ir::Dim::sym("batch")}).to_string());

  // Axes unknown at load time: keepdims keeps the rank.
  OpCall d{"ReduceMax", {x23(), axes({1})}, {}, 18};
  auto g2 = make_op_graph(d);
  ir::infer_shapes(*g2);
  EXPECT_EQ(g2->values[size_t(g2->nodes[0].outputs[0])].shape.rank(), 2);
}

TEST(OpReduction, ArgMaxArgMin) {
  Tensor x = make<float>({2, 3}, {1, 3, 3, 5, 0, 5});
  auto out = run_op({"ArgMax", {x}, {{"axis", attr_int(1)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<int64_t>({2, 1}, {1, 0})));
  out = run_op(
      {"ArgMax",
       {x},
       {{"axis", attr_int(-1)}, {"select_last_index", attr_int(1)}, {"keepdims", attr_int(0)}},
       13});
  EXPECT_TRUE(tensors_near(out[0], make<int64_t>({2}, {2, 2})));
  out = run_op({"ArgMin", {x}, {{"keepdims", attr_int(0)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<int64_t>({3}, {0, 1, 0})));
  EXPECT_THROW(run_op({"ArgMax", {x}, {{"axis", attr_int(2)}}, 13}), Error);
  EXPECT_THROW(run_op({"ArgMax", {Tensor(DType::kF32, {0, 2})}, {}, 13}), Error);
}

TEST(OpReduction, SoftmaxAlongAxisAndCoerced) {
  Tensor x = make<float>({2, 2}, {0, 0, 1, 3});
  float e2 = std::exp(2.f);
  auto out = run_op({"Softmax", {x}, {}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {0.5f, 0.5f, 1 / (1 + e2), e2 / (1 + e2)})));
  out = run_op({"Softmax", {x}, {{"axis", attr_int(0)}}, 13});
  float e1 = std::exp(1.f), e3 = std::exp(3.f);
  EXPECT_TRUE(tensors_near(
      out[0], make<float>({2, 2}, {1 / (1 + e1), 1 / (1 + e3), e1 / (1 + e1), e3 / (1 + e3)})));
  // Opset 11, axis 0: the whole tensor is one row.
  out = run_op({"Softmax", {x}, {{"axis", attr_int(0)}}, 11});
  float s = 2 + e1 + e3;
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {1 / s, 1 / s, e1 / s, e3 / s})));
  out = run_op({"LogSoftmax", {x}, {}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {-std::log(2.f), -std::log(2.f),
                                                        -std::log(1 + e2), 2 - std::log(1 + e2)})));
  EXPECT_THROW(run_op({"Softmax", {x}, {{"axis", attr_int(2)}}, 13}), Error);
}

TEST(OpReduction, HardmaxTiesPickFirst) {
  Tensor x = make<float>({2, 3}, {1, 4, 4, 2, 1, 0});
  auto out = run_op({"Hardmax", {x}, {}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 3}, {0, 1, 0, 1, 0, 0})));
  out = run_op({"Hardmax", {x}, {{"axis", attr_int(0)}}, 11});  // one row of 6
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 3}, {0, 1, 0, 0, 0, 0})));
}

TEST(OpReduction, CumSumVariants) {
  Tensor x = make<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor ax = Tensor::scalar<int32_t>(1);
  EXPECT_TRUE(tensors_near(run_op({"CumSum", {x, ax}, {}, 14})[0],
                           make<float>({2, 3}, {1, 3, 6, 4, 9, 15})));
  EXPECT_TRUE(tensors_near(run_op({"CumSum", {x, ax}, {{"exclusive", attr_int(1)}}, 14})[0],
                           make<float>({2, 3}, {0, 1, 3, 0, 4, 9})));
  EXPECT_TRUE(tensors_near(run_op({"CumSum", {x, ax}, {{"reverse", attr_int(1)}}, 14})[0],
                           make<float>({2, 3}, {6, 5, 3, 15, 11, 6})));
  Tensor xi = make<int64_t>({3}, {2, 3, 4});
  EXPECT_TRUE(tensors_near(run_op({"CumProd",
                                   {xi, make<int64_t>({1}, {-1})},
                                   {{"exclusive", attr_int(1)}, {"reverse", attr_int(1)}},
                                   26})[0],
                           make<int64_t>({3}, {12, 4, 1})));
  EXPECT_THROW(run_op({"CumSum", {x, Tensor::scalar<int32_t>(2)}, {}, 14}), Error);
}

TEST(OpReduction, TopKLargestSmallestAndTies) {
  Tensor x = make<float>({2, 4}, {1, 3, 3, 2, 0, -1, 5, 4});
  auto out = run_op({"TopK", {x, axes({2})}, {}, 11, 2});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {3, 3, 5, 4})));
  EXPECT_TRUE(tensors_near(out[1], make<int64_t>({2, 2}, {1, 2, 2, 3})));
  out = run_op({"TopK", {x, axes({1})}, {{"largest", attr_int(0)}, {"axis", attr_int(0)}}, 11, 2});
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 4}, {0, -1, 3, 2})));
  EXPECT_TRUE(tensors_near(out[1], make<int64_t>({1, 4}, {1, 1, 0, 0})));
  out = run_op({"TopK", {x}, {{"k", attr_int(1)}}, 1, 2});  // k as attribute
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 1}, {3, 5})));
  EXPECT_THROW(run_op({"TopK", {x, axes({5})}, {}, 11, 2}), Error);
}

}  // namespace
}  // namespace kiln::testing
