// Tests of the data-movement reference kernels: Transpose, Concat, Split, Slice, Pad,
// CenterCropPad, Trilu, DepthToSpace, SpaceToDepth, ReverseSequence, Unique, Col2Im.
#include <limits>

#include "op_test_util.h"

namespace kiln::testing {
namespace {

using ir::Dim;

Tensor iota_f(Dims dims) {
  Tensor t(DType::kF32, dims);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i);
  return t;
}
Tensor ints(std::vector<int64_t> v) { return make<int64_t>({int64_t(v.size())}, v); }

// Forgets what make_op_graph inferred for the outputs (re-inference keeps declared shapes).
void reset_outputs(ir::Graph& g) {
  for (int id : g.nodes[0].outputs) {
    g.values[size_t(id)].shape = ir::Shape::unranked();
    g.values[size_t(id)].dims_value.reset();
  }
}

// Runs shape inference of a one-node graph whose input `sym_input` has symbolic `shape`.
std::unique_ptr<ir::Graph> infer_with_shape(const OpCall& call, int sym_input,
                                            std::vector<Dim> shape) {
  auto g = make_op_graph(call);
  g->values[size_t(g->nodes[0].inputs[size_t(sym_input)])].shape = ir::Shape(std::move(shape));
  reset_outputs(*g);
  ir::infer_shapes(*g);
  return g;
}
const ir::Value& out_value(const ir::Graph& g, int i) {
  return g.values[size_t(g.nodes[0].outputs[size_t(i)])];
}

// ---- Transpose -------------------------------------------------------------------------------

TEST(OpMovement, TransposeDefaultReverses) {
  auto out = run_op({"Transpose", {iota_f({2, 3})}});
  EXPECT_TRUE(tensors_near(out[0], make<float>({3, 2}, {0, 3, 1, 4, 2, 5})));
}

TEST(OpMovement, TransposePermStringsAndBool) {
  Tensor s = make<std::string>({1, 2, 2}, {"a", "b", "c", "d"});
  auto out = run_op({"Transpose", {s}, {{"perm", attr_ints({2, 0, 1})}}});
  EXPECT_TRUE(tensors_near(out[0], make<std::string>({2, 1, 2}, {"a", "c", "b", "d"})));
  Tensor b = make<bool>({2, 2}, {true, false, false, false});
  EXPECT_TRUE(
      tensors_near(run_op({"Transpose", {b}})[0], make<bool>({2, 2}, {true, false, false, false})));
}

TEST(OpMovement, TransposeZeroSizeAndErrors) {
  auto out = run_op({"Transpose", {Tensor(DType::kF16, {0, 3})}});
  EXPECT_EQ(out[0].dims(), (Dims{3, 0}));
  EXPECT_THROW(run_op({"Transpose", {iota_f({2, 3})}, {{"perm", attr_ints({0, 0})}}}), Error);
  EXPECT_THROW(run_op({"Transpose", {iota_f({2, 3})}, {{"perm", attr_ints({0})}}}), Error);
}

TEST(OpMovement, TransposeSymbolic) {
  OpCall c{"Transpose", {iota_f({1, 2, 3})}, {{"perm", attr_ints({0, 2, 1})}}};
  auto g = infer_with_shape(c, 0, {Dim::sym("b"), Dim::sym("s"), Dim::constant(3)});
  EXPECT_EQ(out_value(*g, 0).shape, ir::Shape({Dim::sym("b"), Dim::constant(3), Dim::sym("s")}));
}

// ---- Concat ----------------------------------------------------------------------------------

TEST(OpMovement, ConcatAxes) {
  Tensor a = iota_f({2, 2}), b = make<float>({2, 1}, {10, 11});
  auto out = run_op({"Concat", {a, b}, {{"axis", attr_int(-1)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 3}, {0, 1, 10, 2, 3, 11})));
  Tensor c = make<float>({1, 2}, {7, 8});
  out = run_op({"Concat", {a, c}, {{"axis", attr_int(0)}}, 13});
  EXPECT_TRUE(tensors_near(out[0], make<float>({3, 2}, {0, 1, 2, 3, 7, 8})));
}

TEST(OpMovement, ConcatZeroSizeAndStrings) {
  Tensor a = make<std::string>({1}, {"x"}), e(DType::kString, {0});
  auto out = run_op({"Concat", {e, a, a}, {{"axis", attr_int(0)}}});
  EXPECT_TRUE(tensors_near(out[0], make<std::string>({2}, {"x", "x"})));
}

TEST(OpMovement, ConcatMismatchFails) {
  EXPECT_THROW(run_op({"Concat", {iota_f({2, 2}), iota_f({3, 2})}, {{"axis", attr_int(1)}}}),
               Error);
  EXPECT_THROW(run_op({"Concat", {iota_f({2, 2}), iota_f({2})}, {{"axis", attr_int(0)}}}), Error);
  EXPECT_THROW(run_op({"Concat", {iota_f({2, 2})}, {{"axis", attr_int(2)}}}), Error);
}

TEST(OpMovement, ConcatSymbolicShapeAndDimsValue) {
  OpCall c{"Concat", {iota_f({2, 3}), iota_f({4, 3})}, {{"axis", attr_int(0)}}};
  auto g = infer_with_shape(c, 0, {Dim::sym("n"), Dim::constant(3)});
  EXPECT_EQ(out_value(*g, 0).shape.dims[0], ir::dim_add(Dim::sym("n"), Dim::constant(4)));
  EXPECT_EQ(out_value(*g, 0).shape.dims[1], Dim::constant(3));

  // Concat(Unsqueeze(batch), Unsqueeze(seq), [4], [64]) -> [batch, seq, 4, 64].
  OpCall s{"Concat", {ints({1}), ints({1}), ints({4}), ints({64})}, {{"axis", attr_int(0)}}};
  s.inputs_as_graph_inputs = false;
  auto h = make_op_graph(s);
  for (int i = 0; i < 2; ++i) {
    ir::Value& v = h->values[size_t(h->nodes[0].inputs[size_t(i)])];
    v.constant = Tensor();
    v.dims_value = std::vector<Dim>{Dim::sym(i == 0 ? "batch" : "seq")};
  }
  reset_outputs(*h);
  ir::infer_shapes(*h);
  const auto& dv = out_value(*h, 0).dims_value;
  ASSERT_TRUE(dv.has_value());
  EXPECT_EQ(*dv, (std::vector<Dim>{Dim::sym("batch"), Dim::sym("seq"), Dim::constant(4),
                                   Dim::constant(64)}));
}

// ---- Split -----------------------------------------------------------------------------------

TEST(OpMovement, SplitForms) {
  Tensor x = iota_f({6});
  // Attribute form (opset 11), input form (13), num_outputs with an uneven last chunk (18).
  auto a = run_op({"Split", {x}, {{"split", attr_ints({2, 4})}}, 11, 2});
  EXPECT_TRUE(tensors_near(a[1], make<float>({4}, {2, 3, 4, 5})));
  auto b = run_op({"Split", {x, ints({1, 5})}, {}, 13, 2});
  EXPECT_TRUE(tensors_near(b[0], make<float>({1}, {0})));
  auto c = run_op({"Split", {iota_f({7})}, {{"num_outputs", attr_int(3)}}, 18, 3});
  EXPECT_EQ(c[0].dims(), (Dims{3}));
  EXPECT_TRUE(tensors_near(c[2], make<float>({1}, {6})));
  auto d = run_op({"Split", {iota_f({2, 4})}, {{"axis", attr_int(-1)}}, 13, 2});
  EXPECT_TRUE(tensors_near(d[1], make<float>({2, 2}, {2, 3, 6, 7})));
  auto e = run_op({"Split", {x, ints({0, 6})}, {}, 13, 2});
  EXPECT_EQ(e[0].dims(), (Dims{0}));
}

TEST(OpMovement, SplitErrors) {
  EXPECT_THROW(run_op({"Split", {iota_f({6}), ints({2, 2})}, {}, 13, 2}), Error);
  EXPECT_THROW(run_op({"Split", {iota_f({5})}, {}, 13, 2}), Error);
}

TEST(OpMovement, SplitSymbolic) {
  OpCall c{"Split", {iota_f({4, 2})}, {}, 13, 2};
  auto g = infer_with_shape(c, 0, {Dim::sym("n"), Dim::constant(2)});
  EXPECT_EQ(out_value(*g, 0).shape.dims[0], ir::dim_div(Dim::sym("n"), Dim::constant(2)));
}

// ---- Slice -----------------------------------------------------------------------------------

TEST(OpMovement, SliceInputsAndAttributes) {
  Tensor x = iota_f({3, 4});
  auto a =
      run_op({"Slice", {x, ints({1, 0}), ints({1000, 3}), ints({0, 1}), ints({1, 2})}, {}, 13});
  EXPECT_TRUE(tensors_near(a[0], make<float>({2, 2}, {4, 6, 8, 10})));
  auto b =
      run_op({"Slice",
              {x},
              {{"starts", attr_ints({1})}, {"ends", attr_ints({-1})}, {"axes", attr_ints({1})}},
              9});
  EXPECT_TRUE(tensors_near(b[0], make<float>({3, 2}, {1, 2, 5, 6, 9, 10})));
}

TEST(OpMovement, SliceNegativeStepsAndClamping) {
  Tensor x = iota_f({5});
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  auto a = run_op({"Slice", {x, ints({-1}), ints({kMin}), ints({0}), ints({-2})}});
  EXPECT_TRUE(tensors_near(a[0], make<float>({3}, {4, 2, 0})));
  auto b = run_op({"Slice", {x, ints({10}), ints({20})}});
  EXPECT_EQ(b[0].dims(), (Dims{0}));
  auto c = run_op({"Slice", {x, ints({-100}), ints({2})}});
  EXPECT_TRUE(tensors_near(c[0], make<float>({2}, {0, 1})));
  auto d = run_op({"Slice", {x, ints({100}), ints({-100}), ints({0}), ints({-1})}});
  EXPECT_TRUE(tensors_near(d[0], make<float>({5}, {4, 3, 2, 1, 0})));
}

TEST(OpMovement, SliceHugeStepsAndF16) {
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  Tensor x = make<Float16>({4}, {Float16(0.f), Float16(1.f), Float16(2.f), Float16(3.f)});
  auto a = run_op({"Slice", {x, ints({1}), ints({kMax}), ints({0}), ints({kMax})}});
  EXPECT_TRUE(tensors_near(a[0], make<Float16>({1}, {Float16(1.f)})));
  auto b = run_op({"Slice", {x, ints({-1}), ints({kMin}), ints({0}), ints({kMin})}});
  EXPECT_TRUE(tensors_near(b[0], make<Float16>({1}, {Float16(3.f)})));
}

TEST(OpMovement, SliceErrors) {
  EXPECT_THROW(run_op({"Slice", {iota_f({5}), ints({0}), ints({2}), ints({0}), ints({0})}}), Error);
  EXPECT_THROW(run_op({"Slice", {iota_f({5}), ints({0}), ints({2}), ints({1})}}), Error);
}

TEST(OpMovement, SliceSymbolicAndDimsValue) {
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  OpCall c{"Slice", {iota_f({2, 8}), ints({0, 1}), ints({kMax, 3})}};
  c.inputs_as_graph_inputs = false;
  auto g = make_op_graph(c);
  g->values[size_t(g->nodes[0].inputs[0])].constant = Tensor();
  g->values[size_t(g->nodes[0].inputs[0])].is_graph_input = true;
  g->values[size_t(g->nodes[0].inputs[0])].shape = ir::Shape({Dim::sym("b"), Dim::sym("s")});
  reset_outputs(*g);
  ir::infer_shapes(*g);
  const auto& s = out_value(*g, 0).shape;
  ASSERT_EQ(s.rank(), 2);
  EXPECT_EQ(s.dims[0], Dim::sym("b"));  // whole dim kept
  EXPECT_FALSE(s.dims[1].is_const());   // depends on s

  // Shape(x)[1:3] of a shape tensor [b, s, 4, 64] -> [s, 4].
  OpCall d{"Slice", {ints({0, 0, 4, 64}), ints({1}), ints({3})}};
  d.inputs_as_graph_inputs = false;
  auto h = make_op_graph(d);
  ir::Value& v = h->values[size_t(h->nodes[0].inputs[0])];
  v.constant = Tensor();
  v.dims_value =
      std::vector<Dim>{Dim::sym("b"), Dim::sym("s"), Dim::constant(4), Dim::constant(64)};
  reset_outputs(*h);
  ir::infer_shapes(*h);
  ASSERT_TRUE(out_value(*h, 0).dims_value.has_value());
  EXPECT_EQ(*out_value(*h, 0).dims_value, (std::vector<Dim>{Dim::sym("s"), Dim::constant(4)}));
}

// ---- Pad -------------------------------------------------------------------------------------

TEST(OpMovement, PadModes) {
  Tensor x = make<int32_t>({3}, {1, 2, 3});
  auto pad = [&](const std::string& mode) {
    return run_op({"Pad", {x, ints({2, 3})}, {{"mode", attr_string(mode)}}, 19})[0];
  };
  EXPECT_TRUE(tensors_near(pad("constant"), make<int32_t>({8}, {0, 0, 1, 2, 3, 0, 0, 0})));
  EXPECT_TRUE(tensors_near(pad("edge"), make<int32_t>({8}, {1, 1, 1, 2, 3, 3, 3, 3})));
  EXPECT_TRUE(tensors_near(pad("reflect"), make<int32_t>({8}, {3, 2, 1, 2, 3, 2, 1, 2})));
  EXPECT_TRUE(tensors_near(pad("wrap"), make<int32_t>({8}, {2, 3, 1, 2, 3, 1, 2, 3})));
}

TEST(OpMovement, PadConstantValueAxesAndCrop) {
  Tensor x = iota_f({2, 2});
  auto a = run_op({"Pad", {x, ints({1, 0}), Tensor::scalar<float>(9), ints({-1})}, {}, 18});
  EXPECT_TRUE(tensors_near(a[0], make<float>({2, 3}, {9, 0, 1, 9, 2, 3})));
  auto b = run_op({"Pad", {x, ints({-1, 0, 0, 1})}, {}, 13});  // crop row 0, add a column
  EXPECT_TRUE(tensors_near(b[0], make<float>({1, 3}, {2, 3, 0})));
  // Opset 2 attribute form with a value.
  auto c = run_op({"Pad",
                   {make<float>({1}, {5})},
                   {{"pads", attr_ints({1, 0})}, {"value", attr_float(-1)}},
                   2});
  EXPECT_TRUE(tensors_near(c[0], make<float>({2}, {-1, 5})));
  auto d = run_op({"Pad", {make<bool>({1}, {true}), ints({0, 1})}, {}, 13});
  EXPECT_TRUE(tensors_near(d[0], make<bool>({2}, {true, false})));
}

TEST(OpMovement, PadErrors) {
  EXPECT_THROW(run_op({"Pad", {iota_f({2}), ints({1})}, {}, 13}), Error);
  EXPECT_THROW(run_op({"Pad", {iota_f({2}), ints({-2, -1})}, {}, 13}), Error);
  EXPECT_THROW(run_op({"Pad", {iota_f({2}), ints({1, 1})}, {{"mode", attr_string("mirror")}}, 13}),
               Error);
}

TEST(OpMovement, CenterCropPad) {
  Tensor x = iota_f({3, 4});
  auto a = run_op({"CenterCropPad", {x, ints({1, 6})}});
  EXPECT_TRUE(tensors_near(a[0], make<float>({1, 6}, {0, 4, 5, 6, 7, 0})));
  auto b = run_op({"CenterCropPad", {x, ints({2})}, {{"axes", attr_ints({-1})}}});
  EXPECT_TRUE(tensors_near(b[0], make<float>({3, 2}, {1, 2, 5, 6, 9, 10})));
  EXPECT_THROW(run_op({"CenterCropPad", {x, ints({2})}}), Error);
}

// ---- Trilu, DepthToSpace, SpaceToDepth -------------------------------------------------------

TEST(OpMovement, Trilu) {
  Tensor x = make<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto up = run_op({"Trilu", {x}, {}, 14});
  EXPECT_TRUE(tensors_near(up[0], make<int64_t>({2, 3}, {1, 2, 3, 0, 5, 6})));
  auto lo = run_op({"Trilu", {x, Tensor::scalar<int64_t>(-1)}, {{"upper", attr_int(0)}}, 14});
  EXPECT_TRUE(tensors_near(lo[0], make<int64_t>({2, 3}, {0, 0, 0, 4, 0, 0})));
  auto up1 = run_op({"Trilu", {x, Tensor::scalar<int64_t>(1)}, {}, 14});
  EXPECT_TRUE(tensors_near(up1[0], make<int64_t>({2, 3}, {0, 2, 3, 0, 0, 6})));
  EXPECT_THROW(run_op({"Trilu", {make<int64_t>({2}, {1, 2})}, {}, 14}), Error);
}

TEST(OpMovement, DepthToSpaceAndBack) {
  Tensor x = iota_f({1, 8, 2, 3});
  for (std::string mode : {"DCR", "CRD"}) {
    auto y = run_op(
        {"DepthToSpace", {x}, {{"blocksize", attr_int(2)}, {"mode", attr_string(mode)}}, 13});
    EXPECT_EQ(y[0].dims(), (Dims{1, 2, 4, 6}));
    if (mode == "DCR") {
      // SpaceToDepth inverts DCR DepthToSpace.
      auto z = run_op({"SpaceToDepth", {y[0]}, {{"blocksize", attr_int(2)}}, 13});
      EXPECT_TRUE(tensors_near(z[0], x));
    }
  }
  // CRD: output[0,0,0,1] = input[0, 0*4 + 0*2 + 1, 0, 0] = element 6.
  auto crd = run_op({"DepthToSpace",
                     {iota_f({1, 4, 1, 1})},
                     {{"blocksize", attr_int(2)}, {"mode", attr_string("CRD")}},
                     13});
  EXPECT_TRUE(tensors_near(crd[0], make<float>({1, 1, 2, 2}, {0, 1, 2, 3})));
  EXPECT_THROW(run_op({"DepthToSpace", {iota_f({1, 3, 2, 2})}, {{"blocksize", attr_int(2)}}, 13}),
               Error);
  EXPECT_THROW(run_op({"SpaceToDepth", {iota_f({1, 1, 3, 2})}, {{"blocksize", attr_int(2)}}, 13}),
               Error);
}

// ---- ReverseSequence, Unique, Col2Im ---------------------------------------------------------

TEST(OpMovement, ReverseSequence) {
  // time_axis 0: x[t][b]
  Tensor x = make<float>({3, 2}, {0, 10, 1, 11, 2, 12});
  auto y = run_op({"ReverseSequence", {x, ints({3, 1})}, {}, 10});
  EXPECT_TRUE(tensors_near(y[0], make<float>({3, 2}, {2, 10, 1, 11, 0, 12})));
  auto z = run_op({"ReverseSequence",
                   {make<float>({2, 3}, {0, 1, 2, 10, 11, 12}), ints({2, 3})},
                   {{"time_axis", attr_int(1)}, {"batch_axis", attr_int(0)}},
                   10});
  EXPECT_TRUE(tensors_near(z[0], make<float>({2, 3}, {1, 0, 2, 12, 11, 10})));
  EXPECT_THROW(run_op({"ReverseSequence", {x, ints({4, 1})}, {}, 10}), Error);
}

TEST(OpMovement, UniqueFlatSortedAndUnsorted) {
  Tensor x = make<int64_t>({6}, {2, 1, 1, 3, 4, 3});
  auto s = run_op({"Unique", {x}, {}, 11, 4});
  EXPECT_TRUE(tensors_near(s[0], make<int64_t>({4}, {1, 2, 3, 4})));
  EXPECT_TRUE(tensors_near(s[1], make<int64_t>({4}, {1, 0, 3, 4})));
  EXPECT_TRUE(tensors_near(s[2], make<int64_t>({6}, {1, 0, 0, 2, 3, 2})));
  EXPECT_TRUE(tensors_near(s[3], make<int64_t>({4}, {2, 1, 2, 1})));
  auto u = run_op({"Unique", {x}, {{"sorted", attr_int(0)}}, 11, 4});
  EXPECT_TRUE(tensors_near(u[0], make<int64_t>({4}, {2, 1, 3, 4})));
  EXPECT_TRUE(tensors_near(u[1], make<int64_t>({4}, {0, 1, 3, 4})));
  EXPECT_TRUE(tensors_near(u[2], make<int64_t>({6}, {0, 1, 1, 2, 3, 2})));
  EXPECT_TRUE(tensors_near(u[3], make<int64_t>({4}, {1, 2, 2, 1})));
  auto str = run_op({"Unique", {make<std::string>({3}, {"b", "a", "b"})}, {}, 11});
  EXPECT_TRUE(tensors_near(str[0], make<std::string>({2}, {"a", "b"})));
}

TEST(OpMovement, UniqueAxis) {
  Tensor x = make<float>({3, 2}, {1, 0, 0, 1, 1, 0});
  auto y = run_op({"Unique", {x}, {{"axis", attr_int(0)}}, 11, 3});
  EXPECT_TRUE(tensors_near(y[0], make<float>({2, 2}, {0, 1, 1, 0})));
  EXPECT_TRUE(tensors_near(y[2], make<int64_t>({3}, {1, 0, 1})));
  EXPECT_THROW(run_op({"Unique", {x}, {{"axis", attr_int(2)}}, 11}), Error);
}

TEST(OpMovement, Col2Im) {
  // One channel, 2x2 blocks over a 3x3 image with stride 1: 4 block positions, sums overlap.
  Tensor cols(DType::kF32, {1, 4, 4});
  for (int64_t i = 0; i < cols.numel(); ++i) cols.data<float>()[i] = 1;
  auto y = run_op({"Col2Im", {cols, ints({3, 3}), ints({2, 2})}});
  EXPECT_TRUE(tensors_near(y[0], make<float>({1, 1, 3, 3}, {1, 2, 1, 2, 4, 2, 1, 2, 1})));
  EXPECT_THROW(run_op({"Col2Im", {cols, ints({4, 4}), ints({2, 2})}}), Error);
}

}  // namespace
}  // namespace kiln::testing
