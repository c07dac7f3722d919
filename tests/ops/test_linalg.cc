// Tests of the linear algebra reference kernels: MatMul, Gemm, Einsum, MatMulInteger and
// QLinearMatMul, with hand-computed expectations, load-time symbolic shapes and error cases.
#include "op_test_util.h"

namespace kiln::testing {
namespace {

using ir::Dim;

// Load-time output shape of a one-node graph whose inputs have the given (symbolic) shapes.
ir::Shape infer_symbolic(const std::string& op, std::vector<std::pair<DType, ir::Shape>> inputs,
                         std::map<std::string, ir::Attribute> attrs = {}, int opset = 18) {
  return infer_symbolic_shapes(op, inputs, attrs, opset)[0];
}

ir::Shape sym(std::vector<Dim> d) { return ir::Shape(std::move(d)); }

TEST(OpLinalg, MatMul2d) {
  Tensor a = make<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = make<float>({3, 2}, {1, 0, 0, 1, 1, 1});
  auto out = run_op({"MatMul", {a, b}});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2}, {4, 5, 10, 11})));
}

TEST(OpLinalg, MatMulVectorPromotion) {
  Tensor v = make<float>({3}, {1, 2, 3});
  // 1-D x 1-D: a scalar.
  EXPECT_TRUE(tensors_near(run_op({"MatMul", {v, v}})[0], Tensor::scalar<float>(14)));
  // 1-D x 3-D: the vector is a row; the promoted dim is dropped.
  Tensor b = make<float>({2, 3, 1}, {1, 1, 1, 0, 1, 2});
  EXPECT_TRUE(tensors_near(run_op({"MatMul", {v, b}})[0], make<float>({2, 1}, {6, 8})));
  // 2-D x 1-D: the vector is a column.
  Tensor a = make<float>({2, 3}, {1, 0, 0, 0, 1, 1});
  EXPECT_TRUE(tensors_near(run_op({"MatMul", {a, v}})[0], make<float>({2}, {1, 5})));
}

TEST(OpLinalg, MatMulBatchBroadcast) {
  // a: [2,1,1,2], b: [3,2,1] -> [2,3,1,1]
  Tensor a = make<float>({2, 1, 1, 2}, {1, 2, 3, 4});
  Tensor b = make<float>({3, 2, 1}, {1, 0, 0, 1, 1, 1});
  auto out = run_op({"MatMul", {a, b}});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 3, 1, 1}, {1, 2, 3, 3, 4, 7})));
}

TEST(OpLinalg, MatMulIntAndHalf) {
  Tensor a = make<int32_t>({1, 2}, {3, -4});
  Tensor b = make<int32_t>({2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(tensors_near(run_op({"MatMul", {a, b}})[0], make<int32_t>({1, 2}, {-9, -10})));
  Tensor u = make<uint8_t>({1, 2}, {10, 20});
  Tensor w = make<uint8_t>({2, 1}, {2, 3});
  EXPECT_TRUE(tensors_near(run_op({"MatMul", {u, w}})[0], make<uint8_t>({1, 1}, {80})));
  Tensor h = make<Float16>({1, 2}, {Float16(0.5f), Float16(2.0f)});
  Tensor hb = make<Float16>({2, 1}, {Float16(4.0f), Float16(0.25f)});
  EXPECT_TRUE(tensors_near(run_op({"MatMul", {h, hb}})[0], make<Float16>({1, 1}, {Float16(2.5f)})));
  Tensor bf = make<BFloat16>({1, 1}, {BFloat16(3.0f)});
  EXPECT_TRUE(tensors_near(run_op({"MatMul", {bf, bf}, {}, 13})[0],
                           make<BFloat16>({1, 1}, {BFloat16(9.0f)})));
}

TEST(OpLinalg, MatMulZeroSizeInnerDim) {
  Tensor a(DType::kF32, {2, 0});
  Tensor b(DType::kF32, {0, 3});
  EXPECT_TRUE(tensors_near(run_op({"MatMul", {a, b}})[0], Tensor(DType::kF32, {2, 3})));
  Tensor e(DType::kF32, {0, 4});
  Tensor f(DType::kF32, {4, 3});
  EXPECT_EQ(run_op({"MatMul", {e, f}})[0].dims(), (Dims{0, 3}));
}

TEST(OpLinalg, MatMulErrors) {
  EXPECT_THROW(run_op({"MatMul", {Tensor(DType::kF32, {2, 3}), Tensor(DType::kF32, {4, 2})}}),
               Error);
  EXPECT_THROW(run_op({"MatMul", {Tensor(DType::kF32, {2, 2, 3}), Tensor(DType::kF32, {3, 3, 1})}}),
               Error);
  EXPECT_THROW(run_op({"MatMul", {Tensor::scalar<float>(1), Tensor(DType::kF32, {1})}}), Error);
}

TEST(OpLinalg, MatMulSymbolicShape) {
  auto s = infer_symbolic(
      "MatMul", {{DType::kF32, sym({Dim::sym("batch"), Dim::sym("seq"), Dim::constant(64)})},
                 {DType::kF32, sym({Dim::constant(64), Dim::constant(32)})}});
  EXPECT_EQ(s.to_string(), "[batch,seq,32]");
  s = infer_symbolic("MatMul", {{DType::kF32, sym({Dim::sym("n"), Dim::constant(8)})},
                                {DType::kF32, sym({Dim::constant(8)})}});
  EXPECT_EQ(s.to_string(), "[n]");
  EXPECT_FALSE(infer_symbolic("MatMul", {{DType::kF32, ir::Shape::unranked()},
                                         {DType::kF32, sym({Dim::constant(8)})}})
                   .has_rank);
  EXPECT_THROW(infer_symbolic("MatMul", {{DType::kF32, sym({Dim::sym("n"), Dim::constant(8)})},
                                         {DType::kF32, sym({Dim::constant(7), Dim::sym("m")})}}),
               Error);
}

TEST(OpLinalg, GemmAttributesAndBroadcastC) {
  // A^T is [[1,2],[3,4]] (A = [[1,3],[2,4]]), B^T is identity.
  Tensor a = make<float>({2, 2}, {1, 3, 2, 4});
  Tensor b = make<float>({2, 2}, {1, 0, 0, 1});
  Tensor c = make<float>({2}, {10, 20});
  OpCall call{"Gemm",
              {a, b, c},
              {{"transA", attr_int(1)},
               {"transB", attr_int(1)},
               {"alpha", attr_float(2)},
               {"beta", attr_float(0.5f)}}};
  EXPECT_TRUE(tensors_near(run_op(call)[0], make<float>({2, 2}, {7, 14, 11, 18})));
  // Column C [M,1] and scalar C.
  Tensor col = make<float>({2, 1}, {1, 2});
  EXPECT_TRUE(tensors_near(run_op({"Gemm", {b, b, col}})[0], make<float>({2, 2}, {2, 1, 2, 3})));
  EXPECT_TRUE(tensors_near(run_op({"Gemm", {b, b, Tensor::scalar<float>(1)}})[0],
                           make<float>({2, 2}, {2, 1, 1, 2})));
}

TEST(OpLinalg, GemmOptionalCAndOpsets) {
  Tensor a = make<double>({1, 2}, {1, 2});
  Tensor b = make<double>({2, 1}, {3, 4});
  EXPECT_TRUE(tensors_near(run_op({"Gemm", {a, b}, {}, 13})[0], make<double>({1, 1}, {11})));
  EXPECT_THROW(run_op({"Gemm", {a, b}, {}, 9}), Error);  // C required before opset 11
  Tensor ai = make<int32_t>({1, 2}, {1, 2});
  Tensor bi = make<int32_t>({2, 1}, {3, 4});
  EXPECT_TRUE(tensors_near(run_op({"Gemm", {ai, bi, make<int32_t>({1}, {5})}, {}, 13})[0],
                           make<int32_t>({1, 1}, {16})));
}

TEST(OpLinalg, GemmErrors) {
  Tensor a(DType::kF32, {2, 3});
  Tensor b(DType::kF32, {2, 3});
  EXPECT_THROW(run_op({"Gemm", {a, b}}), Error);  // K mismatch without transB
  EXPECT_NO_THROW(run_op({"Gemm", {a, b}, {{"transB", attr_int(1)}}}));
  EXPECT_THROW(run_op({"Gemm", {a, b, Tensor(DType::kF32, {3})}, {{"transB", attr_int(1)}}}),
               Error);  // C [3] does not broadcast to [2,2]
  EXPECT_THROW(run_op({"Gemm", {Tensor(DType::kF32, {2, 3, 1}), b}}), Error);
}

TEST(OpLinalg, GemmSymbolicShape) {
  auto s = infer_symbolic("Gemm",
                          {{DType::kF32, sym({Dim::sym("batch"), Dim::constant(512)})},
                           {DType::kF32, sym({Dim::constant(1000), Dim::constant(512)})},
                           {DType::kF32, sym({Dim::constant(1000)})}},
                          {{"transB", attr_int(1)}});
  EXPECT_EQ(s.to_string(), "[batch,1000]");
}

Tensor run_einsum(const std::string& eq, std::vector<Tensor> inputs) {
  return run_op({"Einsum", std::move(inputs), {{"equation", attr_string(eq)}}})[0];
}

TEST(OpLinalg, EinsumBasicForms) {
  Tensor a = make<float>({2, 2}, {1, 2, 3, 4});
  Tensor b = make<float>({2, 2}, {0, 1, 1, 0});
  EXPECT_TRUE(tensors_near(run_einsum("ij,jk->ik", {a, b}), make<float>({2, 2}, {2, 1, 4, 3})));
  // Implicit output: labels seen once, sorted.
  EXPECT_TRUE(tensors_near(run_einsum("ij,jk", {a, b}), make<float>({2, 2}, {2, 1, 4, 3})));
  EXPECT_TRUE(tensors_near(run_einsum("ij->ji", {a}), make<float>({2, 2}, {1, 3, 2, 4})));
  EXPECT_TRUE(tensors_near(run_einsum("ba", {a}), make<float>({2, 2}, {1, 3, 2, 4})));
  EXPECT_TRUE(tensors_near(run_einsum("ii->i", {a}), make<float>({2}, {1, 4})));
  EXPECT_TRUE(tensors_near(run_einsum("ii", {a}), Tensor::scalar<float>(5)));
  EXPECT_TRUE(tensors_near(run_einsum("ij->", {a}), Tensor::scalar<float>(10)));
  EXPECT_TRUE(tensors_near(run_einsum(" i j -> j ", {a}), make<float>({2}, {4, 6})));
  Tensor u = make<float>({2}, {1, 2});
  Tensor v = make<float>({3}, {1, 10, 100});
  EXPECT_TRUE(
      tensors_near(run_einsum("i,j->ij", {u, v}), make<float>({2, 3}, {1, 10, 100, 2, 20, 200})));
  EXPECT_TRUE(tensors_near(run_einsum("i,i", {u, u}), Tensor::scalar<float>(5)));
}

TEST(OpLinalg, EinsumEllipsisBroadcast) {
  // x: [2,1,2] batches of rows, y: [3,2,1]: "...ij,...jk->...ik" broadcasts to [2,3,1,1].
  Tensor x = make<double>({2, 1, 2}, {1, 2, 3, 4});
  Tensor y = make<double>({3, 2, 1}, {1, 0, 0, 1, 1, 1});
  Tensor out = run_einsum("...ij,...jk->...ik", {x.reshaped({2, 1, 1, 2}), y});
  EXPECT_TRUE(tensors_near(out, make<double>({2, 3, 1, 1}, {1, 2, 3, 3, 4, 7})));
  // Batch diagonal, implicit ellipsis output first.
  Tensor z = make<int64_t>({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_TRUE(tensors_near(run_einsum("...ii->...i", {z}), make<int64_t>({2, 2}, {1, 4, 5, 8})));
  EXPECT_TRUE(tensors_near(run_einsum("...ij", {z}), z));
  EXPECT_TRUE(tensors_near(run_einsum("b...->b", {z}), make<int64_t>({2}, {10, 26})));
}

TEST(OpLinalg, EinsumErrorsAndShapes) {
  Tensor a(DType::kF32, {2, 3});
  EXPECT_THROW(run_einsum("ij,jk->ik", {a, Tensor(DType::kF32, {2, 3})}), Error);
  EXPECT_THROW(run_einsum("ijk->i", {a}), Error);  // rank mismatch
  EXPECT_THROW(run_einsum("ij->iz", {a}), Error);  // unknown output label
  EXPECT_THROW(run_einsum("ij,jk", {a}), Error);   // term count
  EXPECT_THROW(run_einsum("i.j->i", {a}), Error);  // malformed ellipsis
  auto s = infer_symbolic("Einsum",
                          {{DType::kF32, sym({Dim::sym("b"), Dim::sym("s"), Dim::constant(4)})},
                           {DType::kF32, sym({Dim::sym("b"), Dim::constant(4), Dim::sym("t")})}},
                          {{"equation", attr_string("bij,bjk->bik")}});
  EXPECT_EQ(s.to_string(), "[b,s,t]");
}

TEST(OpLinalg, MatMulIntegerZeroPoints) {
  Tensor a = make<uint8_t>({2, 2}, {11, 12, 13, 14});
  Tensor b = make<uint8_t>({2, 2}, {1, 2, 3, 4});
  // A - 10 = [[1,2],[3,4]]; B - [1,2] per column = [[0,0],[2,2]].
  auto out = run_op(
      {"MatMulInteger", {a, b, make<uint8_t>({}, {10}), make<uint8_t>({2}, {1, 2})}, {}, 10});
  EXPECT_TRUE(tensors_near(out[0], make<int32_t>({2, 2}, {4, 4, 8, 8})));
  // Per-row A zero points and int8 B without zero point.
  Tensor bi = make<int8_t>({2, 1}, {-1, 1});
  out = run_op({"MatMulInteger", {a, bi, make<uint8_t>({2}, {11, 13})}, {}, 10});
  EXPECT_TRUE(tensors_near(out[0], make<int32_t>({2, 1}, {1, 1})));
  EXPECT_THROW(run_op({"MatMulInteger", {a, b, make<uint8_t>({3}, {1, 2, 3})}, {}, 10}), Error);
}

TEST(OpLinalg, QLinearMatMulRoundsAndSaturates) {
  Tensor a = make<uint8_t>({1, 2}, {2, 4});
  Tensor b = make<uint8_t>({2, 1}, {3, 100});
  Tensor s1 = make<float>({}, {1.0f});
  Tensor z0 = make<uint8_t>({}, {0});
  // (2*3 + 4*100) * 1 * 1 / 2 = 203 + zp 10 = 213.
  auto out = run_op({"QLinearMatMul",
                     {a, s1, z0, b, s1, z0, make<float>({}, {2.0f}), make<uint8_t>({}, {10})},
                     {},
                     10});
  EXPECT_TRUE(tensors_near(out[0], make<uint8_t>({1, 1}, {213})));
  // 406 / 1 saturates at 255; 2.5 rounds to even 2.
  out = run_op({"QLinearMatMul", {a, s1, z0, b, s1, z0, s1, z0}, {}, 10});
  EXPECT_TRUE(tensors_near(out[0], make<uint8_t>({1, 1}, {255})));
  Tensor one = make<uint8_t>({1, 1}, {5});
  out = run_op({"QLinearMatMul",
                {one, make<float>({}, {0.5f}), z0, make<uint8_t>({1, 1}, {1}), s1, z0, s1, z0},
                {},
                10});
  EXPECT_TRUE(tensors_near(out[0], make<uint8_t>({1, 1}, {2})));
}

}  // namespace
}  // namespace kiln::testing
