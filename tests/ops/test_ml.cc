// Tests of the ai.onnx.ml ops and the ai.onnx.preview.training optimizers against hand-computed
// results (the optimizer values follow the formulas of the ONNX docs, evaluated in double).
#include <cmath>
#include <limits>

#include "op_test_util.h"

namespace kiln::testing {
namespace {

using S = std::string;
constexpr const char* kMl = "ai.onnx.ml";
constexpr const char* kTraining = "ai.onnx.preview.training";

ir::Attribute attr_strings(std::vector<std::string> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kStrings;
  a.strings = std::move(v);
  return a;
}

OpCall training_call(const S& op, std::vector<Tensor> inputs, std::map<S, ir::Attribute> attrs,
                     int num_outputs) {
  OpCall c{op, std::move(inputs), std::move(attrs), 1, num_outputs};
  c.domain = kTraining;
  return c;
}

OpCall ml_call(const S& op, std::vector<Tensor> inputs, std::map<S, ir::Attribute> attrs,
               int opset = 1) {
  OpCall c{op, std::move(inputs), std::move(attrs), opset};
  c.domain = kMl;
  return c;
}

TEST(OpMl, Adagrad) {
  OpCall c =
      training_call("Adagrad",
                    {Tensor::scalar<float>(0.1f), Tensor::scalar<int64_t>(3),
                     make<float>({1}, {1.0f}), make<float>({1}, {-1.0f}), make<float>({1}, {2.0f})},
                    {{"decay_factor", attr_float(0.1f)},
                     {"epsilon", attr_float(1e-5f)},
                     {"norm_coefficient", attr_float(0.001f)}},
                    2);
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({1}, {1.0443817f})));
  EXPECT_TRUE(tensors_near(out[1], make<float>({1}, {2.998001f})));
}

TEST(OpMl, Adam) {
  OpCall c = training_call(
      "Adam",
      {Tensor::scalar<float>(0.1f), Tensor::scalar<int64_t>(2), make<double>({1}, {1.2}),
       make<double>({1}, {-0.5}), make<double>({1}, {0.3}), make<double>({1}, {0.4})},
      {{"alpha", attr_float(0.95f)},
       {"beta", attr_float(0.1f)},
       {"epsilon", attr_float(1e-7f)},
       {"norm_coefficient", attr_float(0.001f)},
       {"norm_coefficient_post", attr_float(0.01f)}},
      3);
  auto out = run_op(c);
  // Attributes are float32, so expect float-level agreement only.
  EXPECT_TRUE(tensors_near(out[0], make<double>({1}, {0.67657208}), 1e-6, 1e-5));
  EXPECT_TRUE(tensors_near(out[1], make<double>({1}, {0.26006}), 1e-6, 1e-5));
  EXPECT_TRUE(tensors_near(out[2], make<double>({1}, {0.263921296}), 1e-6, 1e-5));
}

TEST(OpMl, MomentumStandardNesterovAndMultiple) {
  std::map<S, ir::Attribute> attrs = {{"alpha", attr_float(0.9f)},
                                      {"beta", attr_float(0.1f)},
                                      {"norm_coefficient", attr_float(0.0f)},
                                      {"mode", attr_string("standard")}};
  Tensor x = make<float>({2}, {1, 2}), g = make<float>({2}, {1, 1}),
         v = make<float>({2}, {0.5f, -0.5f});
  OpCall c = training_call(
      "Momentum", {Tensor::scalar<float>(0.1f), Tensor::scalar<int64_t>(1), x, g, v}, attrs, 2);
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2}, {0.945f, 2.035f})));
  EXPECT_TRUE(tensors_near(out[1], make<float>({2}, {0.55f, -0.35f})));
  // T == 0: the gradient's coefficient is 1.
  c.inputs[1] = Tensor::scalar<int64_t>(0);
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2}, {0.855f, 1.945f})));
  c.inputs[1] = Tensor::scalar<int64_t>(1);
  c.attrs["mode"] = attr_string("nesterov");
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2}, {0.8505f, 1.9315f})));
  // Two variables: [R, T, X1, X2, G1, G2, V1, V2] -> [X1', X2', V1', V2'].
  Tensor x2 = make<float>({1}, {3}), g2 = make<float>({1}, {2}), v2 = make<float>({1}, {1});
  OpCall m = training_call(
      "Momentum", {Tensor::scalar<float>(0.1f), Tensor::scalar<int64_t>(1), x, x2, g, g2, v, v2},
      attrs, 4);
  out = run_op(m);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2}, {0.945f, 2.035f})));
  EXPECT_TRUE(tensors_near(out[1], make<float>({1}, {3 - 0.1f * 1.1f})));
  EXPECT_TRUE(tensors_near(out[3], make<float>({1}, {1.1f})));
}

TEST(OpMl, OptimizerErrors) {
  // Wrong input count for Adam (needs 4 tensors per variable).
  OpCall c = training_call("Adam",
                           {Tensor::scalar<float>(0.1f), Tensor::scalar<int64_t>(1),
                            make<float>({1}, {1}), make<float>({1}, {1}), make<float>({1}, {1})},
                           {}, 3);
  EXPECT_THROW(run_op(c), Error);
  // G's shape differs from X's.
  OpCall d =
      training_call("Adagrad",
                    {Tensor::scalar<float>(0.1f), Tensor::scalar<int64_t>(1),
                     make<float>({2}, {1, 2}), make<float>({1}, {1}), make<float>({2}, {1, 1})},
                    {}, 2);
  EXPECT_THROW(run_op(d), Error);
}

TEST(OpMl, LabelEncoderListForms) {
  OpCall c = ml_call("LabelEncoder", {make<S>({3}, {"a", "d", "c"})},
                     {{"keys_strings", attr_strings({"a", "b", "c"})},
                      {"values_int64s", attr_ints({0, 1, 2})},
                      {"default_int64", attr_int(42)}},
                     2);
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int64_t>({3}, {0, 42, 2})));
  c.attrs.erase("default_int64");
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int64_t>({3}, {0, -1, 2})));
  OpCall f = ml_call(
      "LabelEncoder", {make<float>({2, 2}, {1.5f, NAN, 2.0f, 1.5f})},
      {{"keys_floats", attr_floats({1.5f, NAN})}, {"values_strings", attr_strings({"x", "nan"})}},
      4);
  EXPECT_TRUE(tensors_near(run_op(f)[0], make<S>({2, 2}, {"x", "nan", "_Unused", "x"})));
}

TEST(OpMl, LabelEncoderTensorForms) {
  OpCall c = ml_call("LabelEncoder", {make<int16_t>({3}, {2, 3, 1})},
                     {{"keys_tensor", attr_tensor(make<int16_t>({2}, {1, 2}))},
                      {"values_tensor", attr_tensor(make<double>({2}, {0.5, 1.5}))},
                      {"default_tensor", attr_tensor(make<double>({1}, {9}))}},
                     4);
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<double>({3}, {1.5, 9, 0.5})));
  // Float values without a default use -0.0.
  c.attrs.erase("default_tensor");
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<double>({3}, {1.5, -0.0, 0.5})));
  // Mismatched lengths and a key type that does not match X.
  c.attrs["values_tensor"] = attr_tensor(make<double>({1}, {0.5}));
  EXPECT_THROW(run_op(c), Error);
  OpCall d = ml_call("LabelEncoder", {make<S>({1}, {"a"})},
                     {{"keys_int64s", attr_ints({1})}, {"values_int64s", attr_ints({1})}}, 2);
  EXPECT_THROW(run_op(d), Error);
}

TEST(OpMl, LabelEncoderV1) {
  OpCall c = ml_call("LabelEncoder", {make<S>({2}, {"b", "z"})},
                     {{"classes_strings", attr_strings({"a", "b"})}});
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int64_t>({2}, {1, -1})));
  c.inputs = {make<int64_t>({2}, {0, 5})};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<S>({2}, {"a", "_Unused"})));
}

TEST(OpMl, Binarizer) {
  OpCall c =
      ml_call("Binarizer", {make<float>({4}, {0.5f, 1, 2, -3})}, {{"threshold", attr_float(1.0f)}});
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({4}, {0, 0, 1, 0})));
  c.inputs = {make<int32_t>({2, 1}, {1, 2})};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int32_t>({2, 1}, {0, 1})));
  c.inputs = {make<S>({1}, {"a"})};
  EXPECT_THROW(run_op(c), Error);
}

TEST(OpMl, ArrayFeatureExtractor) {
  OpCall c = ml_call("ArrayFeatureExtractor",
                     {make<float>({2, 3}, {1, 2, 3, 4, 5, 6}), make<int64_t>({2}, {2, 0})}, {});
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({2, 2}, {3, 1, 6, 4})));
  OpCall v = ml_call("ArrayFeatureExtractor",
                     {make<S>({3}, {"a", "b", "c"}), make<int64_t>({1}, {1})}, {});
  EXPECT_TRUE(tensors_near(run_op(v)[0], make<S>({1, 1}, {"b"})));
  c.inputs[1] = make<int64_t>({1}, {3});
  EXPECT_THROW(run_op(c), Error);
}

TEST(OpMl, ArrayFeatureExtractorSymbolic) {
  OpCall c = ml_call("ArrayFeatureExtractor",
                     {make<float>({2, 3}, {1, 2, 3, 4, 5, 6}), make<int64_t>({2}, {2, 0})}, {});
  c.input_shapes = {ir::Shape({ir::Dim::sym("n"), ir::Dim::constant(3)}),
                    ir::Shape({ir::Dim::constant(2)})};
  auto g = make_op_graph(c);
  const ir::Shape& s = g->values[g->nodes[0].outputs[0]].shape;
  ASSERT_EQ(s.rank(), 2);
  EXPECT_EQ(s.dims[0].symbol, "n");
  EXPECT_TRUE(s.dims[1].known_equal(ir::Dim::constant(2)));
}

// One tree: node 0 is x0 <= 1.5 (true -> node 1, false -> leaf 2); node 1 is x1 in {1, 3}
// (true -> leaf 0, false -> leaf 1). Leaves: (target 0, 1.0), (target 1, 2.0), (target 0, 5.0).
OpCall tree_call(Tensor x, std::vector<int64_t> roots, int64_t aggregate, int64_t post) {
  return ml_call("TreeEnsemble", {std::move(x)},
                 {{"n_targets", attr_int(2)},
                  {"aggregate_function", attr_int(aggregate)},
                  {"post_transform", attr_int(post)},
                  {"tree_roots", attr_ints(std::move(roots))},
                  {"nodes_featureids", attr_ints({0, 1})},
                  {"nodes_modes", attr_tensor(make<uint8_t>({2}, {0, 6}))},
                  {"nodes_splits", attr_tensor(make<float>({2}, {1.5f, 0}))},
                  {"membership_values", attr_tensor(make<float>({3}, {1, 3, NAN}))},
                  {"nodes_truenodeids", attr_ints({1, 0})},
                  {"nodes_trueleafs", attr_ints({0, 1})},
                  {"nodes_falsenodeids", attr_ints({2, 1})},
                  {"nodes_falseleafs", attr_ints({1, 1})},
                  {"leaf_targetids", attr_ints({0, 1, 0})},
                  {"leaf_weights", attr_tensor(make<float>({3}, {1, 2, 5}))}},
                 5);
}

TEST(OpMl, TreeEnsemble) {
  Tensor x = make<float>({3, 2}, {1, 3, 1, 2, 2, 1});
  EXPECT_TRUE(
      tensors_near(run_op(tree_call(x, {0}, 1, 0))[0], make<float>({3, 2}, {1, 0, 0, 2, 5, 0})));
  // The same tree twice: SUM doubles, AVERAGE does not.
  EXPECT_TRUE(tensors_near(run_op(tree_call(x, {0, 0}, 1, 0))[0],
                           make<float>({3, 2}, {2, 0, 0, 4, 10, 0})));
  EXPECT_TRUE(
      tensors_near(run_op(tree_call(x, {0, 0}, 0, 0))[0], make<float>({3, 2}, {1, 0, 0, 2, 5, 0})));
  // MIN: a target no tree reached holds the largest float (as the ONNX reference).
  const float big = std::numeric_limits<float>::max();
  EXPECT_TRUE(tensors_near(run_op(tree_call(x, {0}, 2, 0))[0],
                           make<float>({3, 2}, {1, big, big, 2, 5, big})));
  // LOGISTIC post transform.
  auto sig = [](float v) { return 1.0f / (1.0f + std::exp(-v)); };
  EXPECT_TRUE(tensors_near(run_op(tree_call(x, {0}, 1, 2))[0],
                           make<float>({3, 2}, {sig(1), 0.5f, 0.5f, sig(2), sig(5), 0.5f})));
  // A root out of range, and a 1-D X.
  EXPECT_THROW(run_op(tree_call(x, {2}, 1, 0)), Error);
  EXPECT_THROW(run_op(tree_call(make<float>({2}, {1, 2}), {0}, 1, 0)), Error);
}

}  // namespace
}  // namespace kiln::testing
