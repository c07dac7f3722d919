// Shape ops: Reshape, Shape, Size, Squeeze, Unsqueeze, Flatten, Expand, Tile, ConstantOfShape,
// Range, EyeLike; hand-computed cases, opset variants, errors, and symbolic shape propagation
// through the Shape -> Gather -> Unsqueeze -> Reshape chains of transformer exports.
#include "engine/executor.h"
#include "op_test_util.h"

namespace kiln::testing {
namespace {

using ir::Dim;

Tensor i64(std::vector<int64_t> v) { return make<int64_t>({int64_t(v.size())}, v); }

TEST(OpShapeOps, ReshapeZeroAndMinusOne) {
  Tensor x = random_tensor(DType::kF32, {2, 3, 4});
  auto out = run_op({"Reshape", {x, i64({0, -1})}});
  EXPECT_EQ(out[0].dims(), (Dims{2, 12}));
  EXPECT_EQ(out[0].data<float>()[5], x.data<float>()[5]);
  out = run_op({"Reshape", {x, i64({-1, 0, 1})}});  // 0 copies input dim 1
  EXPECT_EQ(out[0].dims(), (Dims{8, 3, 1}));
}

TEST(OpShapeOps, ReshapeAllowZeroAndOldAttributeForm) {
  Tensor empty(DType::kF32, {0, 3});
  OpCall c{"Reshape", {empty, i64({3, 0})}, {{"allowzero", attr_int(1)}}};
  EXPECT_EQ(run_op(c)[0].dims(), (Dims{3, 0}));
  Tensor x = make<float>({2, 2}, {1, 2, 3, 4});
  OpCall old{"Reshape", {x}, {{"shape", attr_ints({4})}}, 4};
  EXPECT_TRUE(tensors_near(run_op(old)[0], make<float>({4}, {1, 2, 3, 4})));
}

TEST(OpShapeOps, ReshapeErrors) {
  Tensor x = random_tensor(DType::kF32, {2, 3});
  EXPECT_THROW(run_op({"Reshape", {x, i64({4, 2})}}), Error);     // 6 vs 8 elements
  EXPECT_THROW(run_op({"Reshape", {x, i64({-1, -1})}}), Error);   // two -1
  EXPECT_THROW(run_op({"Reshape", {x, i64({4, -1})}}), Error);    // 6 not divisible by 4
  EXPECT_THROW(run_op({"Reshape", {x, i64({0, 0, 0})}}), Error);  // 0 past the input rank
}

TEST(OpShapeOps, ShapeStartEnd) {
  Tensor x(DType::kF32, {2, 3, 4});
  EXPECT_TRUE(tensors_near(run_op({"Shape", {x}})[0], i64({2, 3, 4})));
  OpCall c{"Shape", {x}, {{"start", attr_int(-2)}, {"end", attr_int(10)}}, 15};
  EXPECT_TRUE(tensors_near(run_op(c)[0], i64({3, 4})));
  OpCall empty{"Shape", {x}, {{"start", attr_int(2)}, {"end", attr_int(1)}}, 15};
  EXPECT_EQ(run_op(empty)[0].dims(), (Dims{0}));
  EXPECT_TRUE(tensors_near(run_op({"Size", {x}})[0], Tensor::scalar<int64_t>(24)));
}

TEST(OpShapeOps, SqueezeOpsetForms) {
  Tensor x = random_tensor(DType::kF32, {1, 3, 1, 2});
  OpCall attr{"Squeeze", {x}, {{"axes", attr_ints({0, -2})}}, 11};
  EXPECT_EQ(run_op(attr)[0].dims(), (Dims{3, 2}));
  OpCall input{"Squeeze", {x, i64({2})}, {}, 13};
  EXPECT_EQ(run_op(input)[0].dims(), (Dims{1, 3, 2}));
  OpCall all{"Squeeze", {x}, {}, 13};
  EXPECT_EQ(run_op(all)[0].dims(), (Dims{3, 2}));
  OpCall bad{"Squeeze", {x, i64({1})}, {}, 13};
  EXPECT_THROW(run_op(bad), Error);
}

TEST(OpShapeOps, UnsqueezeOpsetForms) {
  Tensor x = make<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  OpCall attr{"Unsqueeze", {x}, {{"axes", attr_ints({0, 3})}}, 11};
  auto out = run_op(attr);
  EXPECT_EQ(out[0].dims(), (Dims{1, 2, 3, 1}));
  EXPECT_EQ(out[0].data<int32_t>()[4], 5);
  OpCall input{"Unsqueeze", {x, i64({-1, 1})}, {}, 13};  // unsorted, negative
  EXPECT_EQ(run_op(input)[0].dims(), (Dims{2, 1, 3, 1}));
  OpCall dup{"Unsqueeze", {x, i64({1, 1})}, {}, 13};
  EXPECT_THROW(run_op(dup), Error);
}

TEST(OpShapeOps, Flatten) {
  Tensor x = random_tensor(DType::kF16, {2, 3, 4});
  EXPECT_EQ(run_op({"Flatten", {x}})[0].dims(), (Dims{2, 12}));
  OpCall a0{"Flatten", {x}, {{"axis", attr_int(0)}}};
  EXPECT_EQ(run_op(a0)[0].dims(), (Dims{1, 24}));
  OpCall neg{"Flatten", {x}, {{"axis", attr_int(-1)}}};
  EXPECT_EQ(run_op(neg)[0].dims(), (Dims{6, 4}));
  OpCall bad{"Flatten", {x}, {{"axis", attr_int(4)}}};
  EXPECT_THROW(run_op(bad), Error);
}

TEST(OpShapeOps, ExpandBidirectional) {
  Tensor x = make<float>({3, 1}, {1, 2, 3});
  auto out = run_op({"Expand", {x, i64({2, 1, 2})}});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 3, 2}, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3})));
  // The shape may be smaller than the input: the input's dims win.
  EXPECT_EQ(run_op({"Expand", {x, i64({1})}})[0].dims(), (Dims{3, 1}));
  Tensor h = make<Float16>({1}, {Float16(1.5f)});
  EXPECT_TRUE(tensors_near(run_op({"Expand", {h, i64({2})}})[0],
                           make<Float16>({2}, {Float16(1.5f), Float16(1.5f)})));
  EXPECT_THROW(run_op({"Expand", {x, i64({2, 2})}}), Error);  // 3 vs 2
}

TEST(OpShapeOps, Tile) {
  Tensor x = make<int32_t>({2, 2}, {1, 2, 3, 4});
  auto out = run_op({"Tile", {x, i64({1, 2})}});
  EXPECT_TRUE(tensors_near(out[0], make<int32_t>({2, 4}, {1, 2, 1, 2, 3, 4, 3, 4})));
  EXPECT_EQ(run_op({"Tile", {x, i64({0, 1})}})[0].dims(), (Dims{0, 2}));
  EXPECT_THROW(run_op({"Tile", {x, i64({2})}}), Error);
}

TEST(OpShapeOps, ConstantOfShape) {
  auto out = run_op({"ConstantOfShape", {i64({2, 3})}});
  EXPECT_TRUE(tensors_near(out[0], Tensor(DType::kF32, {2, 3})));
  OpCall c{"ConstantOfShape", {i64({2})}, {{"value", attr_tensor(make<int64_t>({1}, {7}))}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int64_t>({2}, {7, 7})));
  EXPECT_EQ(run_op({"ConstantOfShape", {i64({0})}})[0].dims(), (Dims{0}));
  EXPECT_THROW(run_op({"ConstantOfShape", {i64({-2})}}), Error);
}

TEST(OpShapeOps, Range) {
  auto out = run_op(
      {"Range",
       {Tensor::scalar<int32_t>(10), Tensor::scalar<int32_t>(4), Tensor::scalar<int32_t>(-3)}});
  EXPECT_TRUE(tensors_near(out[0], make<int32_t>({2}, {10, 7})));
  out =
      run_op({"Range",
              {Tensor::scalar<float>(1), Tensor::scalar<float>(2), Tensor::scalar<float>(0.25f)}});
  EXPECT_TRUE(tensors_near(out[0], make<float>({4}, {1, 1.25f, 1.5f, 1.75f})));
  out = run_op(
      {"Range",
       {Tensor::scalar<int64_t>(5), Tensor::scalar<int64_t>(1), Tensor::scalar<int64_t>(1)}});
  EXPECT_EQ(out[0].dims(), (Dims{0}));
  EXPECT_THROW(run_op({"Range",
                       {Tensor::scalar<int64_t>(0), Tensor::scalar<int64_t>(3),
                        Tensor::scalar<int64_t>(0)}}),
               Error);
}

TEST(OpShapeOps, EyeLike) {
  Tensor x(DType::kI32, {2, 3});
  OpCall c{"EyeLike", {x}, {{"k", attr_int(1)}, {"dtype", attr_int(int64_t(DType::kF64))}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<double>({2, 3}, {0, 1, 0, 0, 0, 1})));
  EXPECT_TRUE(tensors_near(run_op({"EyeLike", {x}})[0], make<int32_t>({2, 3}, {1, 0, 0, 0, 1, 0})));
  EXPECT_THROW(run_op({"EyeLike", {Tensor(DType::kF32, {3})}}), Error);
}

// The transformer pattern: the reshape target is computed from the input's own shape.
TEST(OpShapeOps, SymbolicShapeGatherUnsqueezeReshape) {
  GraphBuilder b;
  int x =
      b.symbolic_input("x", DType::kF32, {Dim::sym("batch"), Dim::sym("seq"), Dim::constant(256)});
  int y = b.symbolic_input(
      "y", DType::kF32, {Dim::sym("batch"), Dim::sym("seq"), Dim::constant(4), Dim::constant(64)});
  int shape = b.node("Shape", {x});
  int seq = b.node("Gather", {shape, b.constant("one", Tensor::scalar<int64_t>(1))});
  int seq1 = b.node("Unsqueeze", {seq, b.constant("ax", i64({0}))});
  int r1 = b.node("Reshape", {x, b.node("Shape", {y})});
  int r2 = b.node("Reshape", {x, b.constant("t", i64({0, 0, 4, -1}))});
  int flat = b.node("Reshape", {x, b.constant("f", i64({-1, 256}))});
  int back = b.node("Reshape", {flat, b.constant("g", i64({-1, 64}))});
  int size = b.node("Size", {x});
  int cos = b.node("ConstantOfShape", {shape});
  int range = b.node("Range", {b.constant("z", Tensor::scalar<int64_t>(0)), seq,
                               b.constant("d", Tensor::scalar<int64_t>(1))});
  int ex = b.node("Expand", {b.constant("c", make<float>({1, 1, 1}, {2.f})), shape});
  int tile = b.node("Tile", {x, b.node("Shape", {x})});
  b.finish({seq1, r1, r2, back, size, cos, range, ex, tile});

  EXPECT_EQ(b.shape(seq).rank(), 0);
  ASSERT_TRUE(b.g->values[size_t(seq1)].dims_value.has_value());
  EXPECT_EQ((*b.g->values[size_t(seq1)].dims_value)[0], Dim::sym("seq"));
  EXPECT_EQ(b.shape(r1).to_string(), "[batch,seq,4,64]");
  EXPECT_EQ(b.shape(r2).to_string(), "[batch,seq,4,64]");
  EXPECT_EQ(b.shape(flat).to_string(), "[batch*seq,256]");
  EXPECT_EQ(b.shape(back).to_string(), "[(batch*seq)*4,64]");
  EXPECT_EQ((*b.g->values[size_t(size)].dims_value)[0].to_string(), "(batch*seq)*256");
  EXPECT_EQ(b.shape(cos).to_string(), "[batch,seq,256]");
  EXPECT_EQ(b.shape(range).to_string(), "[seq]");
  EXPECT_EQ(b.shape(ex).to_string(), "[batch,seq,256]");
  EXPECT_EQ(b.shape(tile).to_string(), "[batch*batch,seq*seq,65536]");

  // And exact with concrete values at run time.
  engine::Executor exec(*b.g);
  auto out = exec.run(
      {random_tensor(DType::kF32, {2, 3, 256}), random_tensor(DType::kF32, {2, 3, 4, 64})}, {});
  EXPECT_TRUE(tensors_near(out[0], i64({3})));
  EXPECT_EQ(out[1].dims(), (Dims{2, 3, 4, 64}));
  EXPECT_EQ(out[3].dims(), (Dims{24, 64}));
  EXPECT_EQ(out[4].data<int64_t>()[0], 1536);
  EXPECT_EQ(out[6].dims(), (Dims{3}));
  EXPECT_EQ(out[8].dims(), (Dims{4, 9, 65536}));
}

TEST(OpShapeOps, SymbolicUnknownsStayRanked) {
  GraphBuilder b;
  int x = b.symbolic_input("x", DType::kF32, {Dim::sym("n"), Dim::constant(6)});
  int t = b.symbolic_input("t", DType::kI64, {Dim::constant(3)});
  int r = b.node("Reshape", {x, t});
  int sq = b.node("Squeeze", {x});  // "n" may be 1: rank unknown
  int fl = b.node("Flatten",
                  {
                      x,
                  },
                  {{"axis", attr_int(0)}});
  int ones = b.node("ConstantOfShape", {b.constant("two", Tensor::from_vector<int64_t>({1}, {2}))},
                    {{"value", attr_tensor(Tensor::from_vector<int64_t>({1}, {1}))}});
  int rng = b.node("Range", {b.constant("s", Tensor::scalar<int64_t>(0)),
                             b.constant("l", Tensor::scalar<int64_t>(3)),
                             b.constant("d", Tensor::scalar<int64_t>(1))});
  b.finish({r, sq, fl, ones, rng});
  EXPECT_EQ(*b.g->values[size_t(ones)].dims_value,
            (std::vector<Dim>{Dim::constant(1), Dim::constant(1)}));
  EXPECT_EQ(b.g->values[size_t(rng)].dims_value->size(), 3u);
  EXPECT_EQ(b.shape(r).rank(), 3);
  EXPECT_FALSE(b.shape(sq).has_rank);
  EXPECT_EQ(b.shape(fl).to_string(), "[1,n*6]");
}

}  // namespace
}  // namespace kiln::testing
