// The kernel IR: factory type checks and folding, the exact printer, the
// structural hash, the validator, and the reference interpreter's semantics and
// bounds checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <set>

#include "jit/kir.h"
#include "jit/kir_interp.h"
#include "kiln/error.h"

namespace kiln::jit {
namespace {

using ST = ScalarType;

/// Expects `fn` to throw kiln::Error(kInternal) whose message contains
/// `needle`.
void expect_internal_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << needle;
    return;
  }
  ADD_FAILURE() << "no kiln::Error thrown; expected one containing: " << needle;
}

BufferDecl buf(ST t, std::vector<Expr> dims, bool output = false, int align = 1) {
  BufferDecl b;
  b.type = t;
  b.strides = contiguous_strides(dims);
  b.dims = std::move(dims);
  b.output = output;
  b.align = align;
  return b;
}

// Comparison helpers (kir.h defines no comparison operators: they would hijack
// shared_ptr's).
Expr lt(Expr a, Expr b) { return binary(BinaryOp::kLt, a, b); }
Expr gt(Expr a, Expr b) { return binary(BinaryOp::kGt, a, b); }
Expr eq(Expr a, Expr b) { return binary(BinaryOp::kEq, a, b); }

// ---- Factories ----

TEST(KirFactory, RejectsBadTypes) {
  Expr f = var("x", ST::kF32), n = var("n");
  expect_internal_error([&] { binary(BinaryOp::kAdd, f, n); }, "operand types differ (f32 vs i64)");
  expect_internal_error([&] { f + n; }, "kir: binary +");
  expect_internal_error([&] { load(0, ST::kF32, {f}); }, "index 0 must be i64, got f32");
  expect_internal_error([&] { select(n, f, f); }, "select condition must be bool, got i64");
  expect_internal_error([&] { select(lt(n, imm(3)), f, n); }, "select operand types differ");
  expect_internal_error([&] { imm(1, ST::kF32); }, "imm of float type");
  expect_internal_error([&] { fimm(1, ST::kI32); }, "fimm of non-float type");
  expect_internal_error([&] { binary(BinaryOp::kPow, n, n); }, "binary pow does not apply to i64");
  expect_internal_error([&] { binary(BinaryOp::kShl, f, f); }, "binary << does not apply to f32");
  expect_internal_error([&] { binary(BinaryOp::kAnd, f, f); }, "does not apply to f32");
  expect_internal_error([&] { binary(BinaryOp::kAdd, lt(n, n), lt(n, n)); },
                        "+ does not apply to bool");
  expect_internal_error([&] { unary(UnaryOp::kExp, n); }, "unary exp does not apply to i64");
  expect_internal_error([&] { unary(UnaryOp::kNot, f); }, "unary not does not apply to f32");
  expect_internal_error([&] { unary(UnaryOp::kNeg, lt(n, n)); },
                        "unary neg does not apply to bool");
  expect_internal_error([&] { reduce(ReduceOp::kSum, {"k"}, {imm(3)}, fimm(0), n); },
                        "init is f32 but value is i64");
  expect_internal_error([&] { reduce(ReduceOp::kSum, {"k", "k"}, {imm(3), imm(2)}, n, n); },
                        "listed twice");
  expect_internal_error([&] { reduce(ReduceOp::kSum, {"k"}, {}, n, n); }, "1 variables but 0");
  expect_internal_error([&] { reduce(ReduceOp::kMax, {"k"}, {f}, n, n); }, "must be i64");
  expect_internal_error([&] { for_loop("i", f, LoopKind::kSerial, block({})); },
                        "extent of loop 'i' must be i64");
  expect_internal_error([&] { for_loop("i", n, LoopKind::kSerial, nullptr); }, "null body");
  expect_internal_error([&] { for_loop("i", n, LoopKind::kSerial, block({}), -1); },
                        "negative factor");
  expect_internal_error([&] { if_then(n, block({})); }, "if condition must be bool");
  expect_internal_error([&] { store(0, {cast(ST::kI32, n)}, f); }, "must be i64, got i32");
  expect_internal_error([&] { store(-1, {}, f); }, "negative buffer");
  expect_internal_error([&] { var("p0"); }, "reserved");
  expect_internal_error([&] { var("b12"); }, "reserved");
  expect_internal_error([&] { var("1x"); }, "must start with a letter");
  expect_internal_error([&] { var("a-b"); }, "only letters");
  expect_internal_error([&] { param(-1); }, "negative");
  expect_internal_error([&] { (lt(n, n)) + 1; }, "integer operand with a bool expression");
  expect_internal_error([&] { f + nullptr; }, "null expression");
  // Legal names and uses do not throw.
  EXPECT_NO_THROW(var("p"));
  EXPECT_NO_THROW(var("b0x"));
  EXPECT_NO_THROW(var("_k3"));
  EXPECT_NO_THROW(binary(BinaryOp::kEq, lt(n, n), lt(n, n)));
  EXPECT_NO_THROW(binary(BinaryOp::kXor, lt(n, n), lt(n, n)));
}

TEST(KirFactory, FoldsIntegerImmediates) {
  Expr x = var("x");
  EXPECT_TRUE((imm(2) + imm(3))->is_int_imm(5));
  EXPECT_TRUE((imm(6) * imm(7))->is_int_imm(42));
  EXPECT_TRUE((imm(7) / imm(-2))->is_int_imm(-3));
  EXPECT_TRUE((imm(-7) % imm(2))->is_int_imm(-1));
  EXPECT_TRUE((imm(5) / imm(0))->is_int_imm(0));
  EXPECT_TRUE((imm(5) % imm(0))->is_int_imm(0));
  EXPECT_TRUE(min(imm(4), imm(-2))->is_int_imm(-2));
  EXPECT_TRUE(max(imm(4), imm(-2))->is_int_imm(4));
  EXPECT_EQ(x + 0, x);
  EXPECT_EQ(imm(0) + x, x);
  EXPECT_EQ(x - 0, x);
  EXPECT_EQ(x * 1, x);
  EXPECT_EQ(imm(1) * x, x);
  EXPECT_EQ(x / 1, x);
  EXPECT_TRUE((x * 0)->is_int_imm(0));
  EXPECT_TRUE((imm(0) * x)->is_int_imm(0));
  EXPECT_TRUE((x % 1)->is_int_imm(0));
  EXPECT_EQ(print((x + 2) + 3), "(x + 5)");
  EXPECT_EQ(print(x + 2 + -2), "x");
  // Typed immediates wrap to their width.
  EXPECT_EQ(imm(200, ST::kI8)->ival, -56);
  EXPECT_EQ(imm(-1, ST::kU8)->ival, 255);
  EXPECT_EQ(imm(5, ST::kBool)->ival, 1);
  EXPECT_EQ((imm(250, ST::kU8) + imm(10, ST::kU8))->ival, 4);
  EXPECT_EQ((imm(INT32_MAX, ST::kI32) + 1)->ival, INT32_MIN);
  EXPECT_EQ((imm(INT64_MIN) / imm(-1))->ival, INT64_MIN);
  // Comparisons of immediates give bool immediates.
  Expr cmp = lt(imm(2), imm(3));
  EXPECT_EQ(cmp->kind, ExprKind::kIntImm);
  EXPECT_EQ(cmp->type, ST::kBool);
  EXPECT_EQ(cmp->ival, 1);
  EXPECT_EQ(lt(imm(200, ST::kU8), imm(100, ST::kU8))->ival,
            0);  // unsigned compare
  EXPECT_EQ(binary(BinaryOp::kGe, imm(-1), imm(0))->ival, 0);
  // Select with an immediate condition is the chosen operand.
  Expr a = var("a", ST::kF32), b = var("b", ST::kF32);
  EXPECT_EQ(select(imm(1, ST::kBool), a, b), a);
  EXPECT_EQ(select(gt(imm(2), imm(3)), a, b), b);
  EXPECT_EQ(select(lt(x, imm(3)), a, a), a);
  // Bool logic with an immediate operand.
  Expr c = lt(x, imm(3));
  EXPECT_EQ(binary(BinaryOp::kAnd, imm(1, ST::kBool), c), c);
  EXPECT_TRUE(binary(BinaryOp::kAnd, c, imm(0, ST::kBool))->is_int_imm(0));
  EXPECT_TRUE(binary(BinaryOp::kOr, imm(1, ST::kBool), c)->is_int_imm(1));
  EXPECT_EQ(binary(BinaryOp::kOr, c, imm(0, ST::kBool)), c);
  // Unary on immediates.
  EXPECT_TRUE(unary(UnaryOp::kNeg, imm(5))->is_int_imm(-5));
  EXPECT_TRUE(unary(UnaryOp::kNot, imm(0, ST::kBool))->is_int_imm(1));
  EXPECT_EQ(unary(UnaryOp::kNot, imm(0x0f, ST::kU8))->ival, 0xf0);
  EXPECT_EQ(unary(UnaryOp::kAbs, fimm(-2.5))->fval, 2.5);
  // Casts of immediates.
  EXPECT_EQ(cast(ST::kU8, imm(300))->ival, 44);
  EXPECT_EQ(cast(ST::kU32, imm(-1, ST::kI32))->ival, 4294967295);
  EXPECT_EQ(cast(ST::kBool, imm(-7))->ival, 1);
  Expr f3 = cast(ST::kF32, imm(3));
  EXPECT_EQ(f3->kind, ExprKind::kFloatImm);
  EXPECT_EQ(f3->fval, 3.0);
  EXPECT_EQ(cast(ST::kI32, fimm(-2.7))->ival, -2);
  EXPECT_EQ(cast(ST::kBool, fimm(NAN))->ival, 1);
  EXPECT_EQ(cast(ST::kF32, fimm(0.1, ST::kF64))->fval, double(0.1f));
  EXPECT_EQ(cast(ST::kI8, fimm(300))->kind,
            ExprKind::kCast);  // out of range: not folded
  EXPECT_EQ(cast(ST::kI32, fimm(NAN))->kind, ExprKind::kCast);
  EXPECT_EQ(cast(ST::kI64, x), x);
  // The operator sugar converts the integer to the expression's type.
  EXPECT_EQ(print(a + 1), "(a + 1f32)");
  EXPECT_EQ(print(var("h", ST::kI32) * 2), "(h * 2i32)");
  EXPECT_EQ(print(var("d", ST::kF64) - 3), "(d - 3f64)");
  // constant() from a double.
  EXPECT_EQ(constant(2.9, ST::kI32)->ival, 2);
  EXPECT_EQ(constant(1, ST::kBool)->ival, 1);
  EXPECT_EQ(constant(0.1, ST::kF32)->fval, double(0.1f));
  EXPECT_EQ(constant(0.1, ST::kF64)->fval, 0.1);
  EXPECT_EQ(constant(-1, ST::kU8)->ival, 255);
  // A reduce over an empty immediate range is its init.
  Expr init = fimm(0);
  EXPECT_EQ(reduce(ReduceOp::kSum, {"k"}, {imm(0)}, init, a), init);
}

TEST(KirFactory, ContiguousStridesAndBlocks) {
  std::vector<Expr> s = contiguous_strides({param(0), imm(3), imm(4)});
  ASSERT_EQ(s.size(), 3u);
  EXPECT_TRUE(s[0]->is_int_imm(12));
  EXPECT_TRUE(s[1]->is_int_imm(4));
  EXPECT_TRUE(s[2]->is_int_imm(1));
  s = contiguous_strides({imm(2), param(0), imm(4)});
  EXPECT_EQ(print(s[0]), "(4 * p0)");
  EXPECT_TRUE(contiguous_strides({}).empty());
  // Blocks are flattened; a one-statement block is the statement.
  Stmt st = store(0, {}, fimm(1));
  EXPECT_EQ(block({st}), st);
  Stmt nested = block({block({st, st}), block({}), st});
  EXPECT_EQ(nested->kind, StmtKind::kBlock);
  EXPECT_EQ(nested->body.size(), 3u);
  // If with an immediate condition is the chosen branch.
  Stmt other = store(1, {}, fimm(2));
  EXPECT_EQ(if_then(imm(1, ST::kBool), st, other), st);
  EXPECT_EQ(if_then(imm(0, ST::kBool), st, other), other);
  EXPECT_EQ(if_then(imm(0, ST::kBool), st)->kind, StmtKind::kBlock);
}

TEST(KirFactory, TypeHelpers) {
  EXPECT_STREQ(type_name(ST::kU16), "u16");
  EXPECT_EQ(type_bytes(ST::kBool), 1);
  EXPECT_EQ(type_bytes(ST::kF64), 8);
  EXPECT_TRUE(is_float(ST::kF32));
  EXPECT_FALSE(is_int(ST::kBool));
  EXPECT_TRUE(is_int(ST::kU64));
  EXPECT_TRUE(is_signed_int(ST::kI8));
  EXPECT_FALSE(is_signed_int(ST::kU8));
  EXPECT_EQ(scalar_type_of(DType::kF32), ST::kF32);
  EXPECT_EQ(scalar_type_of(DType::kBool), ST::kBool);
  EXPECT_EQ(scalar_type_of(DType::kU64), ST::kU64);
  EXPECT_EQ(scalar_type_of(DType::kF16), std::nullopt);
  EXPECT_EQ(scalar_type_of(DType::kString), std::nullopt);
  EXPECT_STREQ(binary_name(BinaryOp::kMin), "min");
  EXPECT_STREQ(binary_name(BinaryOp::kGe), ">=");
  EXPECT_STREQ(unary_name(UnaryOp::kAtanh), "atanh");
  EXPECT_STREQ(reduce_name(ReduceOp::kProd), "prod");
  EXPECT_STREQ(loop_kind_name(LoopKind::kVectorized), "vectorized");
}

// ---- Printer and hash ----

Kernel add_kernel(const std::string& label = "Add") {
  Kernel k;
  k.label = label;
  k.buffers = {buf(ST::kF32, {param(0), imm(4)}, false, 64), buf(ST::kF32, {imm(4)}, false, 64),
               buf(ST::kF32, {param(0), imm(4)}, true, 64)};
  k.num_params = 1;
  Expr i0 = var("i0"), i1 = var("i1");
  k.body = for_loop(
      "i0", param(0), LoopKind::kParallel,
      for_loop("i1", imm(4), LoopKind::kVectorized,
               store(2, {i0, i1}, load(0, ST::kF32, {i0, i1}) + load(1, ST::kF32, {i1})), 8),
      64);
  return k;
}

TEST(KirPrint, SmallKernelExact) {
  EXPECT_EQ(print(add_kernel()),
            "// Add\n"
            "kernel(b0: f32[p0, 4] strides [4, 1] align 64, b1: f32[4] strides "
            "[1] align 64, "
            "b2 out: f32[p0, 4] strides [4, 1] align 64; params 1) {\n"
            "  parallel(grain 64) for i0 in 0..p0 {\n"
            "    vectorized(8) for i1 in 0..4 {\n"
            "      b2[i0, i1] = (b0[i0, i1] + b1[i1])\n"
            "    }\n"
            "  }\n"
            "}\n");
}

TEST(KirPrint, EveryStatementKind) {
  Kernel k;
  k.label = "Mixed";
  k.buffers = {buf(ST::kF32, {imm(3), imm(4)}), buf(ST::kI32, {imm(3)}, true)};
  Expr iv = var("i"), s = var("s", ST::kF32);
  Stmt body =
      let("s", reduce(ReduceOp::kSum, {"k"}, {imm(4)}, fimm(0), load(0, ST::kF32, {iv, var("k")})),
          if_then(gt(s, fimm(1.5)), store(1, {iv}, cast(ST::kI32, s)),
                  store(1, {iv}, select(lt(s, fimm(-1)), imm(-1, ST::kI32), imm(0, ST::kI32)))));
  k.body = for_loop("i", imm(3), LoopKind::kSerial, body);
  EXPECT_EQ(print(k),
            "// Mixed\n"
            "kernel(b0: f32[3, 4] strides [4, 1] align 1, b1 out: "
            "i32[3] strides [1] align 1; "
            "params 0) {\n"
            "  for i in 0..3 {\n"
            "    let s: f32 = sum(k in 0..4; init 0f32; b0[i, k]) {\n"
            "      if (s > 1.5f32) {\n"
            "        b1[i] = i32(s)\n"
            "      } else {\n"
            "        b1[i] = select((s < -1f32), -1i32, 0i32)\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n");
  EXPECT_NO_THROW(validate(k));
}

TEST(KirPrint, ExactConstantsAndOps) {
  EXPECT_EQ(print(fimm(0.1, ST::kF64)), "0.10000000000000001f64");
  EXPECT_EQ(print(fimm(0.1)), "0.100000001f32");
  EXPECT_EQ(print(fimm(1.5)), "1.5f32");
  EXPECT_EQ(print(fimm(-0.0)), "-0f32");
  EXPECT_EQ(print(fimm(NAN)), "nanf32");
  EXPECT_EQ(print(fimm(-INFINITY, ST::kF64)), "-inff64");
  EXPECT_EQ(print(fimm(3.4028234663852886e38)), "3.40282347e+38f32");
  EXPECT_EQ(print(imm(-3, ST::kI32)), "-3i32");
  EXPECT_EQ(print(imm(-1, ST::kU64)), "18446744073709551615u64");
  EXPECT_EQ(print(imm(7)), "7");
  EXPECT_EQ(print(imm(1, ST::kBool)), "true");
  Expr a = var("a", ST::kF32), b = var("b", ST::kF32), n = var("n", ST::kU8);
  EXPECT_EQ(print(min(a, b)), "min(a, b)");
  EXPECT_EQ(print(binary(BinaryOp::kPow, a, b)), "pow(a, b)");
  EXPECT_EQ(print(unary(UnaryOp::kSigmoid, a - b)), "sigmoid((a - b))");
  EXPECT_EQ(print(binary(BinaryOp::kShr, n, imm(1, ST::kU8))), "(n >> 1u8)");
  EXPECT_EQ(print(cast(ST::kF64, a)), "f64(a)");
  EXPECT_EQ(print(reduce(ReduceOp::kMax, {"r", "q"}, {param(1), imm(2)}, a, b)),
            "max(r in 0..p1, q in 0..2; init a; b)");
  // Loop kinds and factors.
  Stmt st = store(0, {}, a);
  EXPECT_EQ(print(for_loop("i", imm(2), LoopKind::kSerial, st)),
            "for i in 0..2 {\n  b0[] = a\n}\n");
  EXPECT_EQ(print(for_loop("i", imm(2), LoopKind::kUnrolled, st, 4), 1),
            "  unrolled(4) for i in 0..2 {\n    b0[] = a\n  }\n");
  EXPECT_EQ(print(for_loop("i", imm(2), LoopKind::kVectorized, st)).substr(0, 17),
            "vectorized(auto) ");
  EXPECT_EQ(print(for_loop("i", imm(2), LoopKind::kParallel, st)).substr(0, 22),
            "parallel(grain auto) f");
  EXPECT_EQ(print(for_loop("i", imm(2), LoopKind::kSerial, st, 3)).substr(0, 10), "serial(3) ");
}

TEST(KirHash, EqualKernelsEqualHashesDifferentKernelsDiffer) {
  std::string h = structural_hash(add_kernel("Add"));
  ASSERT_EQ(h.size(), 32u);
  for (char c : h) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << h;
  EXPECT_EQ(structural_hash(add_kernel("something else")),
            h);  // the label is not hashed
  std::set<std::string> hashes = {h};
  auto variant = [&](const std::function<void(Kernel&)>& change) {
    Kernel k = add_kernel();
    change(k);
    EXPECT_TRUE(hashes.insert(structural_hash(k)).second) << print(k);
  };
  variant([](Kernel& k) { k.buffers[0].align = 32; });
  variant([](Kernel& k) { k.buffers[1].output = true; });
  variant([](Kernel& k) { k.buffers[1].type = ST::kF64; });
  variant([](Kernel& k) { k.num_params = 2; });
  variant([](Kernel& k) { k.buffers[0].dims[0] = imm(5); });
  variant([](Kernel& k) { k.buffers[0].strides[1] = imm(2); });
  variant([](Kernel& k) {
    k.body = for_loop("i0", param(0), LoopKind::kParallel, k.body->body[0], 128);
  });
  variant(
      [](Kernel& k) { k.body = for_loop("i0", param(0), LoopKind::kSerial, k.body->body[0], 64); });
  variant([](Kernel& k) {
    k.body = for_loop("i0", param(0), LoopKind::kParallel,
                      store(2, {var("i0"), imm(0)}, fimm(1.0f)), 64);
  });
  variant([](Kernel& k) {
    k.body = for_loop("i0", param(0), LoopKind::kParallel,
                      store(2, {var("i0"), imm(0)}, fimm(1.0000001f)), 64);
  });
}

// ---- Validation ----

/// A kernel around `body`: b0 f32[4] input, b1 f32[4] output, b2 i32[2, 3]
/// output; 1 param.
Kernel small_kernel(Stmt body) {
  Kernel k;
  k.buffers = {buf(ST::kF32, {imm(4)}), buf(ST::kF32, {imm(4)}, true),
               buf(ST::kI32, {imm(2), imm(3)}, true)};
  k.num_params = 1;
  k.body = std::move(body);
  return k;
}

Stmt loop(const char* v, int64_t n, Stmt body, LoopKind kind = LoopKind::kSerial) {
  return for_loop(v, imm(n), kind, std::move(body));
}

TEST(KirValidate, CatchesEachMisuse) {
  Expr iv = var("i"), j = var("j");
  Stmt ok = loop("i", 4, store(1, {iv}, load(0, ST::kF32, {iv})));
  EXPECT_NO_THROW(validate(small_kernel(ok)));

  auto bad = [](Stmt body, const std::string& needle) {
    expect_internal_error([&] { validate(small_kernel(body)); }, needle);
  };
  bad(loop("i", 4, store(1, {iv}, load(7, ST::kF32, {iv}))), "load from b7: the kernel has 3");
  bad(loop("i", 4, store(5, {iv}, fimm(0))), "store to b5: the kernel has 3");
  bad(loop("i", 4, store(1, {iv}, load(0, ST::kF32, {iv, iv}))),
      "with 2 indices, but its rank is 1");
  bad(loop("i", 4, store(2, {iv}, imm(0, ST::kI32))), "with 1 indices, but its rank is 2");
  bad(loop("i", 4, store(0, {iv}, fimm(0))), "store to b0, which is not an output");
  bad(loop("i", 4, store(1, {iv}, fimm(0, ST::kF64))), "store of a f64 value to b1 of type f32");
  bad(loop("i", 4, store(1, {iv}, cast(ST::kF32, load(0, ST::kI32, {iv})))),
      "load of b0 as i32 but the buffer is f32");
  bad(store(1, {iv}, fimm(0)), "variable 'i' used out of scope");
  bad(loop("i", 4, store(1, {iv}, var("i", ST::kF32))), "variable 'i' is i64 but used as f32");
  bad(loop("i", 4, loop("i", 4, store(1, {iv}, fimm(0)))), "'i' is bound again");
  bad(loop("i", 4, let("i", imm(1), store(1, {iv}, fimm(0)))), "'i' is bound again");
  bad(loop("k", 4,
           store(1, {var("k")},
                 reduce(ReduceOp::kSum, {"k"}, {imm(4)}, fimm(0), load(0, ST::kF32, {var("k")})))),
      "'k' is bound again");
  bad(loop("i", 4, store(1, {min(iv, param(1))}, fimm(0))), "param p1 used but the kernel has 1");
  bad(loop("i", 4, loop("j", 4, store(1, {j}, fimm(0)), LoopKind::kParallel)),
      "parallel loop 'j' is nested inside a loop or let");
  bad(let("t", fimm(1), loop("j", 4, store(1, {j}, var("t", ST::kF32)), LoopKind::kParallel)),
      "parallel loop 'j' is nested");
  // A reduce variable is in scope only in the reduced value.
  bad(loop("i", 4,
           store(1, {iv},
                 reduce(ReduceOp::kSum, {"k"}, {var("k")}, fimm(0), load(0, ST::kF32, {iv})))),
      "variable 'k' used out of scope");
  // Sibling loops may reuse a name; parallel loops may sit in top-level blocks
  // and ifs.
  Stmt par = loop("i", 4, store(1, {iv}, fimm(0)), LoopKind::kParallel);
  EXPECT_NO_THROW(validate(small_kernel(block({par, par}))));
  EXPECT_NO_THROW(validate(small_kernel(if_then(gt(param(0), imm(2)), par, block({ok, par})))));
  EXPECT_NO_THROW(validate(small_kernel(
      loop("i", 4, let("t", load(0, ST::kF32, {iv}), store(1, {iv}, var("t", ST::kF32)))))));

  // Kernel-level checks.
  Kernel k = small_kernel(ok);
  k.buffers[0].dims = {var("i")};
  expect_internal_error([&] { validate(k); }, "buffer b0 dim 0 may use only immediates and params");
  k = small_kernel(ok);
  k.buffers[1].strides = {param(3)};
  expect_internal_error([&] { validate(k); }, "param p3 used but the kernel has 1");
  k = small_kernel(ok);
  k.buffers[1].strides = {};
  expect_internal_error([&] { validate(k); }, "1 dims but 0 strides");
  k = small_kernel(ok);
  k.buffers[1].align = 24;
  expect_internal_error([&] { validate(k); }, "not a power of two");
  k = small_kernel(ok);
  k.buffers[1].dims = {cast(ST::kI32, param(0))};
  k.buffers[1].dims[0] = cast(ST::kI32, param(0));
  expect_internal_error([&] { validate(k); }, "dim 0 must be i64, got i32");
  k = small_kernel(nullptr);
  expect_internal_error([&] { validate(k); }, "without a body");
}

// ---- Interpreter ----

template <typename T>
size_t bytes_of(const std::vector<T>& v) {
  return v.size() * sizeof(T);
}

/// out[i] = op(a[i], b[i]) for i in 0..n, all of type T (bool results into a u8
/// vector).
template <typename T, typename R = T>
std::vector<R> run_binary(BinaryOp op, ST t, std::vector<T> a, std::vector<T> b) {
  int64_t n = int64_t(a.size());
  ST rt = binary(op, var("x", t), var("y", t))->type;
  Kernel k;
  k.buffers = {buf(t, {imm(n)}), buf(t, {imm(n)}), buf(rt, {imm(n)}, true)};
  Expr iv = var("i");
  k.body = loop("i", n, store(2, {iv}, binary(op, load(0, t, {iv}), load(1, t, {iv}))));
  std::vector<R> out(a.size());
  interpret(k, {a.data(), b.data(), out.data()}, {bytes_of(a), bytes_of(b), bytes_of(out)}, {});
  return out;
}

TEST(KirInterp, IntegerBinaryOps) {
  using V = std::vector<int32_t>;
  const int32_t mn = INT32_MIN, mx = INT32_MAX;
  V a = {7, 7, -7, 5, mn, mx, 3, -8};
  V b = {-2, 2, 2, 0, -1, 1, 33, 1};
  EXPECT_EQ(run_binary(BinaryOp::kAdd, ST::kI32, a, b), (V{5, 9, -5, 5, mx, mn, 36, -7}));
  EXPECT_EQ(run_binary(BinaryOp::kSub, ST::kI32, a, b), (V{9, 5, -9, 5, mn + 1, mx - 1, -30, -9}));
  EXPECT_EQ(run_binary(BinaryOp::kMul, ST::kI32, a, b), (V{-14, 14, -14, 0, mn, mx, 99, -8}));
  EXPECT_EQ(run_binary(BinaryOp::kDiv, ST::kI32, a, b), (V{-3, 3, -3, 0, mn, mx, 0, -8}));
  EXPECT_EQ(run_binary(BinaryOp::kMod, ST::kI32, a, b), (V{1, 1, -1, 0, 0, 0, 3, 0}));
  EXPECT_EQ(run_binary(BinaryOp::kMin, ST::kI32, a, b), (V{-2, 2, -7, 0, mn, 1, 3, -8}));
  EXPECT_EQ(run_binary(BinaryOp::kMax, ST::kI32, a, b), (V{7, 7, 2, 5, -1, mx, 33, 1}));
  EXPECT_EQ(run_binary(BinaryOp::kAnd, ST::kI32, a, b), (V{6, 2, 0, 0, mn, 1, 1, 0}));
  EXPECT_EQ(run_binary(BinaryOp::kOr, ST::kI32, a, b), (V{-1, 7, -5, 5, -1, mx, 35, -7}));
  EXPECT_EQ(run_binary(BinaryOp::kXor, ST::kI32, a, b), (V{-7, 5, -5, 5, mx, mx - 1, 34, -7}));
  // Shift counts modulo 32: -2 -> 30, 33 -> 1.
  EXPECT_EQ(run_binary(BinaryOp::kShl, ST::kI32, a, b),
            (V{-1073741824, 28, -28, 5, 0, -2, 6, -16}));
  EXPECT_EQ(run_binary(BinaryOp::kShr, ST::kI32, a, b), (V{0, 1, -2, 5, -1, mx / 2, 1, -4}));
  using B = std::vector<uint8_t>;
  EXPECT_EQ((run_binary<int32_t, uint8_t>(BinaryOp::kLt, ST::kI32, a, b)),
            (B{0, 0, 1, 0, 1, 0, 1, 1}));
  EXPECT_EQ((run_binary<int32_t, uint8_t>(BinaryOp::kGe, ST::kI32, a, b)),
            (B{1, 1, 0, 1, 0, 1, 0, 0}));
  EXPECT_EQ((run_binary<int32_t, uint8_t>(BinaryOp::kEq, ST::kI32, V{1, 2}, V{1, 3})), (B{1, 0}));

  // Unsigned: compares and shifts are unsigned, arithmetic wraps at 8 bits.
  using U = std::vector<uint8_t>;
  U ua = {200, 250, 7, 128}, ub = {100, 10, 0, 9};
  EXPECT_EQ(run_binary(BinaryOp::kAdd, ST::kU8, ua, ub), (U{44, 4, 7, 137}));
  EXPECT_EQ(run_binary(BinaryOp::kSub, ST::kU8, ub, ua), (U{156, 16, 249, 137}));
  EXPECT_EQ(run_binary(BinaryOp::kDiv, ST::kU8, ua, ub), (U{2, 25, 0, 14}));
  EXPECT_EQ(run_binary(BinaryOp::kMod, ST::kU8, ua, ub), (U{0, 0, 0, 2}));
  EXPECT_EQ(run_binary(BinaryOp::kMin, ST::kU8, ua, ub), (U{100, 10, 0, 9}));
  EXPECT_EQ(run_binary(BinaryOp::kShr, ST::kU8, ua, U{1, 9, 3, 7}), (U{100, 125, 0, 1}));
  EXPECT_EQ(run_binary(BinaryOp::kShl, ST::kU8, ua, U{1, 8, 3, 7}), (U{144, 250, 56, 0}));

  // 64-bit: INT64_MIN / -1 wraps, modulo by zero is zero.
  using L = std::vector<int64_t>;
  const int64_t lmn = INT64_MIN;
  EXPECT_EQ(run_binary(BinaryOp::kDiv, ST::kI64, L{lmn, 9, -9}, L{-1, 0, 4}), (L{lmn, 0, -2}));
  EXPECT_EQ(run_binary(BinaryOp::kMod, ST::kI64, L{lmn, 9, -9}, L{-1, 0, 4}), (L{0, 0, -1}));
  EXPECT_EQ(run_binary(BinaryOp::kShr, ST::kI64, L{-1, lmn}, L{63, 64}), (L{-1, lmn}));
  using UL = std::vector<uint64_t>;
  EXPECT_EQ(run_binary(BinaryOp::kShr, ST::kU64, UL{~0ull}, UL{63}), (UL{1}));
  EXPECT_EQ(run_binary(BinaryOp::kMax, ST::kU64, UL{~0ull, 1}, UL{1, 2}), (UL{~0ull, 2}));

  // Bool logic.
  B t = {0, 0, 1, 1}, u = {0, 1, 0, 1};
  EXPECT_EQ(run_binary(BinaryOp::kAnd, ST::kBool, t, u), (B{0, 0, 0, 1}));
  EXPECT_EQ(run_binary(BinaryOp::kOr, ST::kBool, t, u), (B{0, 1, 1, 1}));
  EXPECT_EQ(run_binary(BinaryOp::kXor, ST::kBool, t, u), (B{0, 1, 1, 0}));
  EXPECT_EQ(run_binary(BinaryOp::kNe, ST::kBool, t, u), (B{0, 1, 1, 0}));
}

TEST(KirInterp, FloatBinaryOps) {
  using F = std::vector<float>;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  F a = {1.5f, nan, 2.f, -7.5f, 0.f};
  F b = {nan, 3.f, -1.f, 2.f, 0.f};
  F mn = run_binary(BinaryOp::kMin, ST::kF32, a, b);
  F mx = run_binary(BinaryOp::kMax, ST::kF32, a, b);
  EXPECT_TRUE(std::isnan(mn[0]) && std::isnan(mn[1]));
  EXPECT_TRUE(std::isnan(mx[0]) && std::isnan(mx[1]));
  EXPECT_EQ(mn[2], -1.f);
  EXPECT_EQ(mx[2], 2.f);
  EXPECT_EQ(mn[3], -7.5f);
  EXPECT_EQ(mx[3], 2.f);
  F mod = run_binary(BinaryOp::kMod, ST::kF32, a, b);
  EXPECT_EQ(mod[2], 0.f);
  EXPECT_EQ(mod[3], -1.5f);  // C fmod: the sign of the dividend
  EXPECT_TRUE(std::isnan(mod[4]));
  F div = run_binary(BinaryOp::kDiv, ST::kF32, F{1.f, -1.f, 0.f}, F{0.f, 0.f, 0.f});
  EXPECT_EQ(div[0], INFINITY);
  EXPECT_EQ(div[1], -INFINITY);
  EXPECT_TRUE(std::isnan(div[2]));
  EXPECT_EQ(run_binary(BinaryOp::kPow, ST::kF32, F{2.f, 9.f}, F{10.f, 0.5f}), (F{1024.f, 3.f}));
  // f32 arithmetic rounds to float at every step.
  EXPECT_EQ(run_binary(BinaryOp::kAdd, ST::kF32, F{16777216.f}, F{1.f}), (F{16777216.f}));
  using D = std::vector<double>;
  EXPECT_EQ(run_binary(BinaryOp::kAdd, ST::kF64, D{16777216.0}, D{1.0}), (D{16777217.0}));
  using B = std::vector<uint8_t>;
  // Comparisons are ordered, except != which is true on NaN.
  EXPECT_EQ((run_binary<float, uint8_t>(BinaryOp::kLt, ST::kF32, a, b)), (B{0, 0, 0, 1, 0}));
  EXPECT_EQ((run_binary<float, uint8_t>(BinaryOp::kLe, ST::kF32, a, b)), (B{0, 0, 0, 1, 1}));
  EXPECT_EQ((run_binary<float, uint8_t>(BinaryOp::kEq, ST::kF32, a, b)), (B{0, 0, 0, 0, 1}));
  EXPECT_EQ((run_binary<float, uint8_t>(BinaryOp::kNe, ST::kF32, a, b)), (B{1, 1, 1, 1, 0}));
  EXPECT_EQ((run_binary<float, uint8_t>(BinaryOp::kGt, ST::kF32, a, b)), (B{0, 0, 1, 0, 0}));
}

/// out[i] = op(a[i]) over f32.
std::vector<float> run_unary(UnaryOp op, std::vector<float> a) {
  int64_t n = int64_t(a.size());
  Kernel k;
  k.buffers = {buf(ST::kF32, {imm(n)}), buf(ST::kF32, {imm(n)}, true)};
  Expr iv = var("i");
  k.body = loop("i", n, store(1, {iv}, unary(op, load(0, ST::kF32, {iv}))));
  std::vector<float> out(a.size());
  interpret(k, {a.data(), out.data()}, {bytes_of(a), bytes_of(out)}, {});
  return out;
}

TEST(KirInterp, UnaryOps) {
  using F = std::vector<float>;
  EXPECT_EQ(run_unary(UnaryOp::kRound, F{0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, 2.6f, -2.6f}),
            (F{0.f, 2.f, 2.f, -0.f, -2.f, -2.f, 2.f, 3.f, -3.f}));
  EXPECT_TRUE(std::signbit(run_unary(UnaryOp::kRound, F{-0.5f})[0]));
  EXPECT_EQ(run_unary(UnaryOp::kFloor, F{-1.5f, 1.5f}), (F{-2.f, 1.f}));
  EXPECT_EQ(run_unary(UnaryOp::kCeil, F{-1.5f, 1.5f}), (F{-1.f, 2.f}));
  EXPECT_EQ(run_unary(UnaryOp::kNeg, F{-1.5f, 0.f}), (F{1.5f, -0.f}));
  EXPECT_EQ(run_unary(UnaryOp::kAbs, F{-1.5f, 2.f}), (F{1.5f, 2.f}));
  EXPECT_EQ(run_unary(UnaryOp::kSqrt, F{4.f, 2.f}), (F{2.f, std::sqrt(2.f)}));
  EXPECT_EQ(run_unary(UnaryOp::kExp, F{0.f, 1.f}), (F{1.f, std::exp(1.f)}));
  EXPECT_EQ(run_unary(UnaryOp::kSigmoid, F{0.f, -200.f, 200.f}), (F{0.5f, 0.f, 1.f}));
  EXPECT_EQ(run_unary(UnaryOp::kErf, F{0.5f}), (F{std::erf(0.5f)}));
  EXPECT_EQ(run_unary(UnaryOp::kAtanh, F{0.5f}), (F{std::atanh(0.5f)}));
  EXPECT_TRUE(std::isnan(run_unary(UnaryOp::kLog, F{-1.f})[0]));

  // Integer unary ops wrap.
  Kernel k;
  k.buffers = {buf(ST::kI8, {imm(3)}), buf(ST::kI8, {imm(3)}, true), buf(ST::kI8, {imm(3)}, true),
               buf(ST::kI8, {imm(3)}, true)};
  Expr iv = var("i"), x = load(0, ST::kI8, {iv});
  k.body =
      loop("i", 3,
           block({store(1, {iv}, unary(UnaryOp::kNeg, x)), store(2, {iv}, unary(UnaryOp::kAbs, x)),
                  store(3, {iv}, unary(UnaryOp::kNot, x))}));
  std::vector<int8_t> in = {-128, -5, 7}, neg(3), abs(3), inv(3);
  interpret(k, {in.data(), neg.data(), abs.data(), inv.data()}, {3, 3, 3, 3}, {});
  EXPECT_EQ(neg, (std::vector<int8_t>{-128, 5, -7}));
  EXPECT_EQ(abs, (std::vector<int8_t>{-128, 5, 7}));
  EXPECT_EQ(inv, (std::vector<int8_t>{127, 4, -8}));
}

TEST(KirInterp, Casts) {
  // b0 f32 -> b1 i32, b2 u8, b3 bool, b4 f64; b5 i32 -> b6 u8, b7 i8, b8 f32,
  // b9 bool.
  Kernel k;
  const int64_t n = 4;
  k.buffers = {buf(ST::kF32, {imm(n)}),       buf(ST::kI32, {imm(n)}, true),
               buf(ST::kU8, {imm(n)}, true),  buf(ST::kBool, {imm(n)}, true),
               buf(ST::kF64, {imm(n)}, true), buf(ST::kI32, {imm(n)}),
               buf(ST::kU8, {imm(n)}, true),  buf(ST::kI8, {imm(n)}, true),
               buf(ST::kF32, {imm(n)}, true), buf(ST::kBool, {imm(n)}, true)};
  Expr iv = var("i"), f = load(0, ST::kF32, {iv}), x = load(5, ST::kI32, {iv});
  k.body = loop("i", n,
                block({store(1, {iv}, cast(ST::kI32, f)), store(2, {iv}, cast(ST::kU8, f)),
                       store(3, {iv}, cast(ST::kBool, f)), store(4, {iv}, cast(ST::kF64, f)),
                       store(6, {iv}, cast(ST::kU8, x)), store(7, {iv}, cast(ST::kI8, x)),
                       store(8, {iv}, cast(ST::kF32, x)), store(9, {iv}, cast(ST::kBool, x))}));
  std::vector<float> fin = {-2.7f, 3.9f, 0.f, std::numeric_limits<float>::quiet_NaN()};
  std::vector<int32_t> xin = {-1, 300, 0, 16777217};
  std::vector<int32_t> o1(n);
  std::vector<uint8_t> o2(n), o3(n), o6(n), o9(n);
  std::vector<double> o4(n);
  std::vector<int8_t> o7(n);
  std::vector<float> o8(n);
  interpret(k,
            {fin.data(), o1.data(), o2.data(), o3.data(), o4.data(), xin.data(), o6.data(),
             o7.data(), o8.data(), o9.data()},
            {bytes_of(fin), bytes_of(o1), bytes_of(o2), bytes_of(o3), bytes_of(o4), bytes_of(xin),
             bytes_of(o6), bytes_of(o7), bytes_of(o8), bytes_of(o9)},
            {});
  EXPECT_EQ(o1[0], -2);
  EXPECT_EQ(o1[1], 3);
  EXPECT_EQ(o2[1], 3);
  EXPECT_EQ(o3, (std::vector<uint8_t>{1, 1, 0, 1}));  // NaN != 0
  EXPECT_EQ(o4[0], double(-2.7f));
  EXPECT_EQ(o6, (std::vector<uint8_t>{255, 44, 0, 1}));
  EXPECT_EQ(o7, (std::vector<int8_t>{-1, 44, 0, 1}));
  EXPECT_EQ(o8, (std::vector<float>{-1.f, 300.f, 0.f, 16777216.f}));
  EXPECT_EQ(o9, (std::vector<uint8_t>{1, 1, 0, 1}));
}

TEST(KirInterp, ElementwiseWithParamsAndBroadcast) {
  Kernel k = add_kernel();
  for (auto& b : k.buffers) b.align = 4;  // std::vector storage
  const int64_t rows = 3;
  std::vector<float> a(rows * 4), b = {10, 20, 30, 40}, out(rows * 4, -1);
  for (size_t j = 0; j < a.size(); ++j) a[j] = float(j);
  interpret(k, {a.data(), b.data(), out.data()}, {bytes_of(a), bytes_of(b), bytes_of(out)}, {rows});
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < 4; ++c)
      EXPECT_EQ(out[size_t(r * 4 + c)], float(r * 4 + c) + b[size_t(c)]);
  }
  // Zero rows: nothing runs, empty buffers are fine.
  interpret(k, {nullptr, b.data(), nullptr}, {0, bytes_of(b), 0}, {0});
}

TEST(KirInterp, ReductionLetIfSelect) {
  // MatMul [2,3] x [3,2] with a reduce; then out2[i, j] = let t = out[i, j] * 2
  // in if i == 0 then t else select(t > 100, -t, t).
  Kernel k;
  k.buffers = {buf(ST::kF32, {imm(2), imm(3)}), buf(ST::kF32, {imm(3), imm(2)}),
               buf(ST::kF32, {imm(2), imm(2)}, true), buf(ST::kF32, {imm(2), imm(2)}, true)};
  Expr iv = var("i"), j = var("j"), kk = var("k"), t = var("t", ST::kF32);
  Expr dot = reduce(ReduceOp::kSum, {"k"}, {imm(3)}, fimm(0),
                    load(0, ST::kF32, {iv, kk}) * load(1, ST::kF32, {kk, j}));
  Stmt second =
      let("t", load(2, ST::kF32, {iv, j}) * 2,
          if_then(eq(iv, imm(0)), store(3, {iv, j}, t),
                  store(3, {iv, j}, select(gt(t, fimm(100)), unary(UnaryOp::kNeg, t), t))));
  k.body = block(
      {loop("i", 2, loop("j", 2, store(2, {iv, j}, dot))), loop("i", 2, loop("j", 2, second))});
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8, 9, 10, 11, 12}, c(4), d(4);
  interpret(k, {a.data(), b.data(), c.data(), d.data()}, {24, 24, 16, 16}, {});
  EXPECT_EQ(c, (std::vector<float>{58, 64, 139, 154}));
  EXPECT_EQ(d, (std::vector<float>{116, 128, -278, -308}));

  // Multi-variable reduce (row-major, last fastest) over ints, min/max with NaN
  // and prod.
  Kernel r;
  r.buffers = {buf(ST::kI32, {imm(2), imm(3)}), buf(ST::kI32, {imm(3)}, true),
               buf(ST::kF32, {imm(3)}), buf(ST::kF32, {imm(2)}, true)};
  Expr x = var("x"), y = var("y");
  Expr in = load(0, ST::kI32, {x, y});
  Expr fi = load(2, ST::kF32, {x});
  r.body =
      block({store(1, {imm(0)},
                   reduce(ReduceOp::kSum, {"x", "y"}, {imm(2), imm(3)}, imm(100, ST::kI32), in)),
             store(1, {imm(1)},
                   reduce(ReduceOp::kProd, {"x", "y"}, {imm(2), imm(3)}, imm(1, ST::kI32), in)),
             // max over x, y of in[x, y] * (3x + y).
             store(1, {imm(2)},
                   reduce(ReduceOp::kMax, {"x", "y"}, {imm(2), imm(3)}, imm(INT32_MIN, ST::kI32),
                          in * cast(ST::kI32, x * 3 + y))),
             store(3, {imm(0)}, reduce(ReduceOp::kMax, {"x"}, {imm(3)}, fimm(-INFINITY), fi)),
             store(3, {imm(1)}, reduce(ReduceOp::kMin, {"x"}, {imm(2)}, fimm(INFINITY), fi))});
  std::vector<int32_t> ri = {1, 2, 3, 4, 5, -6}, ro(3);
  std::vector<float> rf = {1.f, -2.f, std::numeric_limits<float>::quiet_NaN()}, rfo(2);
  interpret(r, {ri.data(), ro.data(), rf.data(), rfo.data()}, {24, 12, 12, 8}, {});
  EXPECT_EQ(ro, (std::vector<int32_t>{109, -720, 20}));
  EXPECT_TRUE(std::isnan(rfo[0]));  // NaN-propagating max
  EXPECT_EQ(rfo[1], -2.f);
}

TEST(KirInterp, ReportsOutOfBoundsInsteadOfTouchingMemory) {
  Expr iv = var("i");
  // Loads one past the end: element 4 of a 4-element buffer (dims declared
  // larger than the data).
  Kernel k;
  k.buffers = {buf(ST::kF32, {imm(5)}), buf(ST::kF32, {imm(5)}, true)};
  k.body = loop("i", 5, store(1, {iv}, load(0, ST::kF32, {iv})));
  std::vector<float> in(8, 1.f), out(8, -1.f);
  expect_internal_error([&] { interpret(k, {in.data(), out.data()}, {16, 20}, {}); },
                        "kir interpreter: out-of-bounds load of b0 at element 4 (buffer holds "
                        "4)");
  // A store past the end leaves the memory beyond it alone.
  std::fill(out.begin(), out.end(), -1.f);
  expect_internal_error([&] { interpret(k, {in.data(), out.data()}, {20, 16}, {}); },
                        "out-of-bounds store of b1 at element 4 (buffer holds 4)");
  EXPECT_EQ(out[4], -1.f);
  EXPECT_EQ(out[3], 1.f);
  // Negative indices and indices past a dim (even if the address stays inside
  // the buffer).
  Kernel neg;
  neg.buffers = {buf(ST::kF32, {imm(2), imm(3)}), buf(ST::kF32, {imm(4)}, true)};
  neg.body = loop("i", 4, store(1, {iv}, load(0, ST::kF32, {imm(1), iv - 1})));
  expect_internal_error([&] { interpret(neg, {in.data(), out.data()}, {24, 16}, {}); },
                        "index -1 of dim 1 is outside [0, 3)");
  neg.body = loop("i", 4, store(1, {iv}, load(0, ST::kF32, {imm(0), iv})));
  expect_internal_error([&] { interpret(neg, {in.data(), out.data()}, {24, 16}, {}); },
                        "index 3 of dim 1 is outside [0, 3)");
  // A negative stride that points before the base.
  Kernel back;
  back.buffers = {buf(ST::kF32, {imm(4)}), buf(ST::kF32, {imm(4)}, true)};
  back.buffers[0].strides = {imm(-1)};
  back.body = loop("i", 4, store(1, {iv}, load(0, ST::kF32, {iv})));
  expect_internal_error([&] { interpret(back, {in.data(), out.data()}, {16, 16}, {}); },
                        "out-of-bounds load of b0 at element -1");
  // Select evaluates both operands, so an unselected out-of-bounds load is
  // still an error.
  Kernel sel;
  sel.buffers = {buf(ST::kF32, {imm(4)}), buf(ST::kF32, {imm(4)}, true)};
  sel.body = loop(
      "i", 4,
      store(1, {iv}, select(lt(iv, imm(3)), load(0, ST::kF32, {iv + 1}), load(0, ST::kF32, {iv}))));
  expect_internal_error([&] { interpret(sel, {in.data(), out.data()}, {16, 16}, {}); },
                        "out-of-bounds load of b0");
}

TEST(KirInterp, ChecksArguments) {
  Kernel k = small_kernel(loop("i", 4, store(1, {var("i")}, fimm(0))));
  std::vector<float> a(4), b(4);
  std::vector<int32_t> c(6);
  std::vector<void*> ptrs = {a.data(), b.data(), c.data()};
  std::vector<size_t> sizes = {16, 16, 24};
  EXPECT_NO_THROW(interpret(k, ptrs, sizes, {0}));
  expect_internal_error([&] { interpret(k, ptrs, sizes, {}); }, "1 params but 0 values");
  expect_internal_error([&] { interpret(k, {a.data()}, {16}, {0}); }, "3 buffers but 1 pointers");
  expect_internal_error([&] { interpret(k, {a.data(), nullptr, c.data()}, sizes, {0}); },
                        "b1 is null");
  k.buffers[1].align = 64;
  alignas(64) float aligned[17] = {};
  expect_internal_error([&] { interpret(k, {a.data(), aligned + 1, c.data()}, sizes, {0}); },
                        "not aligned to 64");
  EXPECT_NO_THROW(interpret(k, {a.data(), aligned, c.data()}, sizes, {0}));
  // interpret validates first.
  Kernel bad = small_kernel(loop("i", 4, store(0, {var("i")}, fimm(0))));
  expect_internal_error([&] { interpret(bad, ptrs, sizes, {0}); }, "not an output");
}

}  // namespace
}  // namespace kiln::jit
