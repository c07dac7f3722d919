// Tests of If, Loop and Scan with small hand-built subgraphs: branch selection and shape
// merging, loop-carried values and stacked scan outputs, scan axes and directions, opset-8 Scan.
#include "op_test_util.h"

namespace kiln::kernels {
// Defined in control_flow.cc for the shape-inference driver.
void seed_subgraph_inputs(const ir::Graph& parent, const ir::Node& node,
                          const std::string& attr_name, ir::Graph& sub);
}  // namespace kiln::kernels

namespace kiln::testing {
namespace {

ir::Attribute constant_branch(Tensor value) {
  GraphBuilder b("body");
  b.output(b.node("Constant", {}, {{"value", attr_tensor(std::move(value))}}));
  return b.attr();
}

TEST(OpControlFlow, IfPicksBranchAndMergesShapes) {
  OpCall c{"If",
           {Tensor::scalar<bool>(true)},
           {{"then_branch", constant_branch(make<float>({2}, {1, 2}))},
            {"else_branch", constant_branch(make<float>({3}, {3, 4, 5}))}},
           16};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({2}, {1, 2})));
  c.inputs[0] = Tensor::scalar<bool>(false);
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({3}, {3, 4, 5})));
  // At load time with an unknown cond, the branches' dims 2 and 3 merge to a fresh dim.
  auto g = make_op_graph(c);
  const ir::Shape& s = g->values[size_t(g->nodes[0].outputs[0])].shape;
  ASSERT_TRUE(s.has_rank);
  ASSERT_EQ(s.rank(), 1);
  EXPECT_FALSE(s.dims[0].is_const());
  EXPECT_EQ(g->values[size_t(g->nodes[0].outputs[0])].dtype, DType::kF32);
}

TEST(OpControlFlow, IfBranchMismatchFails) {
  OpCall c{"If",
           {Tensor::scalar<bool>(true)},
           {{"then_branch", constant_branch(make<float>({1}, {1}))},
            {"else_branch", constant_branch(make<int64_t>({1}, {1}))}},
           16};
  EXPECT_THROW(run_op(c), Error);  // f32 vs i64
  c.attrs.erase("else_branch");
  EXPECT_THROW(run_op(c), Error);
}

// body(i, cond, x) = (cond, x + x, x + x)
ir::Attribute doubling_body() {
  GraphBuilder b("body");
  int i = b.input("i", DType::kI64, {});
  (void)i;
  int cond = b.input("cond", DType::kBool, {});
  int x = b.input("x", DType::kF32, {1});
  int c2 = b.node("Identity", {cond});
  int y = b.node("Add", {x, x});
  int s = b.node("Identity", {y});
  b.output(c2);
  b.output(y);
  b.output(s);
  return b.attr();
}

TEST(OpControlFlow, LoopCarriedAndScanOutputs) {
  OpCall c{"Loop",
           {Tensor::scalar<int64_t>(3), Tensor::scalar<bool>(true), make<float>({1}, {1})},
           {{"body", doubling_body()}},
           16,
           2};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({1}, {8})));
  EXPECT_TRUE(tensors_near(out[1], make<float>({3, 1}, {2, 4, 8})));
  // Zero iterations: the initial value and an empty scan output.
  c.inputs[0] = Tensor::scalar<int64_t>(0);
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({1}, {1})));
  EXPECT_EQ(out[1].dims(), Dims({0, 1}));
  // cond false: no iteration either; M omitted.
  c.inputs[0] = Tensor();
  c.inputs[1] = Tensor::scalar<bool>(false);
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({1}, {1})));
}

TEST(OpControlFlow, LoopShapeInference) {
  OpCall c{"Loop",
           {Tensor::scalar<int64_t>(3), Tensor::scalar<bool>(true), make<float>({1}, {1})},
           {{"body", doubling_body()}},
           16,
           2};
  auto g = make_op_graph(c);
  const ir::Value& fin = g->values[size_t(g->nodes[0].outputs[0])];
  const ir::Value& scan = g->values[size_t(g->nodes[0].outputs[1])];
  EXPECT_EQ(fin.shape, ir::Shape::of({1}));
  ASSERT_EQ(scan.shape.rank(), 2);
  EXPECT_EQ(scan.shape.dims[1], ir::Dim::constant(1));
  EXPECT_EQ(scan.dtype, DType::kF32);
}

TEST(OpControlFlow, LoopBodyArityFails) {
  OpCall c{"Loop",
           {Tensor::scalar<int64_t>(1), Tensor::scalar<bool>(true)},
           {{"body", doubling_body()}},
           16,
           1};
  EXPECT_THROW(run_op(c), Error);
}

// body(sum, x) = (sum + x, sum + x)
ir::Attribute cumsum_body() {
  GraphBuilder b("body");
  int s = b.input("sum", DType::kF32, {2});
  int x = b.input("x", DType::kF32, {2});
  int y = b.node("Add", {s, x});
  b.output(y);
  b.output(b.node("Identity", {y}));
  return b.attr();
}

TEST(OpControlFlow, ScanForwardBackwardAndAxes) {
  Tensor init = make<float>({2}, {0, 0});
  Tensor xs = make<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  OpCall c{"Scan", {init, xs}, {{"body", cumsum_body()}, {"num_scan_inputs", attr_int(1)}}, 16, 2};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2}, {9, 12})));
  EXPECT_TRUE(tensors_near(out[1], make<float>({3, 2}, {1, 2, 4, 6, 9, 12})));
  c.attrs["scan_input_directions"] = attr_ints({1});
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[1], make<float>({3, 2}, {5, 6, 8, 10, 9, 12})));
  c.attrs["scan_output_directions"] = attr_ints({1});
  c.attrs["scan_output_axes"] = attr_ints({-1});
  out = run_op(c);
  EXPECT_TRUE(tensors_near(out[1], make<float>({2, 3}, {9, 8, 5, 12, 10, 6})));
  // Scan along axis 1 of a [2, 3] input.
  OpCall t{"Scan",
           {init, make<float>({2, 3}, {1, 3, 5, 2, 4, 6})},
           {{"body", cumsum_body()},
            {"num_scan_inputs", attr_int(1)},
            {"scan_input_axes", attr_ints({1})}},
           16,
           2};
  out = run_op(t);
  EXPECT_TRUE(tensors_near(out[0], make<float>({2}, {9, 12})));
  auto g = make_op_graph(t);
  EXPECT_EQ(g->values[size_t(g->nodes[0].outputs[1])].shape, ir::Shape::of({3, 2}));
}

TEST(OpControlFlow, ScanOpset8Batched) {
  OpCall c{"Scan",
           {Tensor(), make<float>({1, 2}, {0, 0}), make<float>({1, 3, 2}, {1, 2, 3, 4, 5, 6})},
           {{"body", cumsum_body()}, {"num_scan_inputs", attr_int(1)}},
           8,
           2};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<float>({1, 2}, {9, 12})));
  EXPECT_TRUE(tensors_near(out[1], make<float>({1, 3, 2}, {1, 2, 4, 6, 9, 12})));
}

TEST(OpControlFlow, ScanErrors) {
  // Two scan inputs with different lengths.
  GraphBuilder b("body");
  int s = b.input("sum", DType::kF32, {2});
  int x = b.input("x", DType::kF32, {2});
  int y = b.input("y", DType::kF32, {2});
  b.output(b.node("Add", {s, x}));
  b.output(b.node("Identity", {y}));
  OpCall c{"Scan",
           {make<float>({2}, {0, 0}), make<float>({3, 2}, {1, 2, 3, 4, 5, 6}),
            make<float>({2, 2}, {1, 2, 3, 4})},
           {{"body", b.attr()}, {"num_scan_inputs", attr_int(2)}},
           16,
           2};
  EXPECT_THROW(run_op(c), Error);
  // num_scan_inputs larger than the inputs.
  c.attrs["num_scan_inputs"] = attr_int(5);
  EXPECT_THROW(run_op(c), Error);
}

TEST(OpControlFlow, SeedUntypedScanBodyInputs) {
  GraphBuilder b("body");
  int s = b.input("sum", DType::kUndefined, {});
  int x = b.input("x", DType::kUndefined, {});
  b.g->values[size_t(s)].shape = ir::Shape::unranked();
  b.g->values[size_t(x)].shape = ir::Shape::unranked();
  OpCall c{"Scan",
           {make<float>({2}, {0, 0}), make<float>({2, 3}, {1, 2, 3, 4, 5, 6})},
           {{"body", cumsum_body()},
            {"num_scan_inputs", attr_int(1)},
            {"scan_input_axes", attr_ints({1})}},
           16,
           2};
  auto g = make_op_graph(c);
  kernels::seed_subgraph_inputs(*g, g->nodes[0], "body", *b.g);
  EXPECT_EQ(b.g->values[size_t(s)].dtype, DType::kF32);
  EXPECT_EQ(b.g->values[size_t(s)].shape, ir::Shape::of({2}));
  EXPECT_EQ(b.g->values[size_t(x)].shape, ir::Shape::of({2}));
}

}  // namespace
}  // namespace kiln::testing
