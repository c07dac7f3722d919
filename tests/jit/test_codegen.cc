// Tests of the LLVM code generator and the ORC loader: hand-built kernels compiled to objects,
// loaded and run, and compared with the reference interpreter (kir_interp.h). Every kernel runs
// both as scalar code (serial loops) and widened (vectorized loops, with ragged remainders).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "devices/cpu.h"
#include "jit/codegen_test_util.h"
#include "jit/host_target.h"
#include "jit/widening.h"
#include "kiln/error.h"

namespace kiln::jit {
namespace {

using testing::buffer;
using testing::Case;
using testing::compile;
using testing::expect_matches_interpreter;
using testing::HostBuffer;

constexpr ScalarType kF32 = ScalarType::kF32;
constexpr ScalarType kF64 = ScalarType::kF64;
constexpr ScalarType kI32 = ScalarType::kI32;
constexpr ScalarType kI64 = ScalarType::kI64;
constexpr ScalarType kU8 = ScalarType::kU8;
constexpr ScalarType kBool = ScalarType::kBool;

const int64_t kSizes[] = {1, 3, 17, 64, 1023};
const LoopKind kInnerKinds[] = {LoopKind::kSerial, LoopKind::kVectorized};

void fill_random(HostBuffer& b, double lo, double hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  for (size_t i = 0; i < b.count; ++i) b.set(i, d(rng));
}

Expr v(const char* name) { return var(name); }

// ---- elementwise, params, ragged vector loops ----

TEST(CodegenLoops, ElementwiseWithParamRowsAndRaggedVectorLoop) {
  for (int64_t n : kSizes) {
    for (LoopKind kind : kInnerKinds) {
      for (bool dynamic : {false, true}) {
        Case c;
        Expr cols = dynamic ? param(1) : imm(n);
        c.kernel.label = "axpb";
        c.kernel.num_params = 2;
        c.kernel.buffers = {buffer("x", kF32, {param(0), cols}),
                            buffer("y", kF32, {param(0), cols}, true, 64)};
        Expr x = load(0, kF32, {v("i"), v("j")});
        c.kernel.body = for_loop(
            "i", param(0), LoopKind::kSerial,
            for_loop("j", cols, kind, store(1, {v("i"), v("j")}, x * fimm(2.0f) + fimm(1.0f))));
        c.params = {3, n};
        c.buffers = {HostBuffer(kF32, size_t(3 * n)), HostBuffer(kF32, size_t(3 * n))};
        fill_random(c.buffers[0], -10, 10, uint32_t(n));
        expect_matches_interpreter(c);
      }
    }
  }
}

TEST(CodegenLoops, VectorizedLoopUsesHostVectors) {
  Kernel k;
  k.label = "scale";
  k.num_params = 1;
  k.buffers = {buffer("x", kF32, {param(0)}), buffer("y", kF32, {param(0)}, true)};
  k.body = for_loop("i", param(0), LoopKind::kVectorized,
                    store(1, {v("i")}, load(0, kF32, {v("i")}) * fimm(3.0f)));
  std::string ir = emit_llvm_ir(k, "scale", true);
  std::string want = "<" + std::to_string(host_vector_lanes_f32()) + " x float>";
  EXPECT_NE(ir.find(want), std::string::npos) << ir;
  EXPECT_NE(ir.find("\"target-cpu\"=\"" + host_cpu_name() + "\""), std::string::npos);
  // The unoptimized IR already holds the widened loop (it does not depend on the vectorizer).
  EXPECT_NE(emit_llvm_ir(k, "scale", false).find(want), std::string::npos);
}

TEST(CodegenLoops, Unrolled) {
  for (int64_t n : {1, 3, 17, 64}) {
    for (int64_t factor : {0, 1, 4}) {
      Case c;
      c.kernel.label = "unrolled";
      c.kernel.buffers = {buffer("x", kI32, {imm(n)}), buffer("y", kI32, {imm(n)}, true)};
      c.kernel.body =
          for_loop("i", imm(n), LoopKind::kUnrolled,
                   store(1, {v("i")}, load(0, kI32, {v("i")}) * 3 + cast(kI32, v("i"))), factor);
      c.buffers = {HostBuffer(kI32, size_t(n)), HostBuffer(kI32, size_t(n))};
      fill_random(c.buffers[0], -1000, 1000, 7);
      expect_matches_interpreter(c);
    }
  }
}

TEST(CodegenLoops, ParallelMatchesSerial) {
  devices::Cpu cpu(2);
  for (int64_t rows : {1, 5, 64, 300}) {
    for (int64_t grain : {0, 1, 7}) {
      Case c;
      c.kernel.label = "parallel rows";
      c.kernel.num_params = 2;
      c.kernel.buffers = {buffer("x", kF32, {param(0), param(1)}),
                          buffer("y", kF32, {param(0), param(1)}, true)};
      Expr x = load(0, kF32, {v("i"), v("j")});
      Stmt row = for_loop("j", param(1), LoopKind::kVectorized,
                          store(1, {v("i"), v("j")}, unary(UnaryOp::kExp, x) * x));
      // Two parallel loops in a block, the second under an if on a param.
      c.kernel.body = block({for_loop("i", param(0), LoopKind::kParallel, row, grain),
                             if_then(binary(BinaryOp::kGt, param(0), imm(3)),
                                     for_loop("i", param(0), LoopKind::kParallel,
                                              store(1, {v("i"), imm(0)},
                                                    load(1, kF32, {v("i"), imm(0)}) * fimm(0.5f)),
                                              grain))});
      c.params = {rows, 19};
      c.buffers = {HostBuffer(kF32, size_t(rows * 19)), HostBuffer(kF32, size_t(rows * 19))};
      fill_random(c.buffers[0], -5, 5, 11);
      auto ck = compile(c.kernel);
      // exp is within a few ulp of the interpreter's std::exp, the rest is exact.
      cpu.execute([&] { expect_matches_interpreter(c, 4e-7, ck); });
      // Outside any arena, and in a one-thread arena (inline), too.
      expect_matches_interpreter(c, 4e-7, ck);
      devices::Cpu one(1);
      one.execute([&] { expect_matches_interpreter(c, 4e-7, ck); });
    }
  }
}

TEST(CodegenStmts, LetIfSelectScalarAndWidened) {
  for (int64_t n : kSizes) {
    for (LoopKind kind : kInnerKinds) {
      Case c;
      c.kernel.label = "let/if/select";
      c.kernel.num_params = 1;
      c.kernel.buffers = {buffer("x", kF32, {imm(n)}), buffer("y", kF32, {imm(n)}, true),
                          buffer("z", kI32, {imm(n)}, true), buffer("w", kF32, {imm(n)}, true)};
      Expr x = load(0, kF32, {v("i")});
      Expr t = var("t", kF32);
      Stmt then_s = block({store(1, {v("i")}, t), if_then(binary(BinaryOp::kLt, x, fimm(0.0f)),
                                                          store(2, {v("i")}, imm(1, kI32)))});
      Stmt else_s = store(1, {v("i")},
                          select(binary(BinaryOp::kGt, x, fimm(0.0f)), unary(UnaryOp::kNeg, t), t));
      // A uniform condition (a param) inside the widened loop: a branch, not a mask.
      Stmt uniform_if =
          if_then(binary(BinaryOp::kGt, param(0), imm(2)), store(3, {v("i")}, x + fimm(1.0f)),
                  store(3, {v("i")}, x - fimm(1.0f)));
      c.kernel.body = for_loop(
          "i", imm(n), kind,
          let("t", x * x,
              block({if_then(binary(BinaryOp::kGt, t, fimm(1.0f)), then_s, else_s), uniform_if})));
      c.params = {int64_t(n % 5)};
      c.buffers = {HostBuffer(kF32, size_t(n)), HostBuffer(kF32, size_t(n)),
                   HostBuffer(kI32, size_t(n)), HostBuffer(kF32, size_t(n))};
      fill_random(c.buffers[0], -2, 2, 3);
      for (size_t i = 0; i < size_t(n); ++i) c.buffers[2].set(i, -5);
      expect_matches_interpreter(c);
    }
  }
}

// ---- every binary op, unary op and cast ----

std::vector<double> special_values(ScalarType t) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  switch (t) {
    case ScalarType::kF32:
    case ScalarType::kF64:
      return {0, -0.0, 1, -1, 2.5, -2.5, 3, 0.5, 7, -7, 1e30, -1e30, inf, -inf, nan, 1e-40, 100};
    case ScalarType::kI32:
      return {0, 1, -1, 2, -2, 7, -7, 31, 32, 33, -2147483648.0, 2147483647.0, 100, -100, 5, 64};
    case ScalarType::kI64:
      return {0, 1, -1, 7, -7, 63, 64, 65, -9223372036854775808.0, 1e18, -1e18, 3, -3, 100};
    case ScalarType::kU8:
      return {0, 1, 2, 7, 8, 9, 127, 128, 200, 255};
    default:
      return {0, 1};
  }
}

bool binary_applies(BinaryOp op, ScalarType t) {
  switch (op) {
    case BinaryOp::kPow:
      return is_float(t);
    case BinaryOp::kAnd:
    case BinaryOp::kOr:
    case BinaryOp::kXor:
      return !is_float(t);
    case BinaryOp::kShl:
    case BinaryOp::kShr:
      return is_int(t);
    case BinaryOp::kEq:
    case BinaryOp::kNe:
    case BinaryOp::kLt:
    case BinaryOp::kLe:
    case BinaryOp::kGt:
    case BinaryOp::kGe:
      return true;
    default:
      return t != ScalarType::kBool;
  }
}

void set_value(HostBuffer& b, size_t i, ScalarType t, double v) {
  if (t == ScalarType::kI64 && v <= -9.2e18)
    b.set_int(i, std::numeric_limits<int64_t>::min());
  else
    b.set(i, v);
}

TEST(CodegenOps, EveryBinaryOpOnEveryType) {
  for (ScalarType t : {kF32, kF64, kI32, kI64, kU8, kBool}) {
    std::vector<double> vals = special_values(t);
    const size_t n = vals.size() * vals.size();
    for (LoopKind kind : kInnerKinds) {
      for (bool pow_only : {false, true}) {
        if (pow_only && !is_float(t)) continue;
        Case c;
        c.kernel.label = std::string("binary ops on ") + type_name(t);
        c.kernel.buffers = {buffer("a", t, {imm(int64_t(n))}), buffer("b", t, {imm(int64_t(n))})};
        c.buffers = {HostBuffer(t, n), HostBuffer(t, n)};
        for (size_t i = 0; i < vals.size(); ++i) {
          for (size_t j = 0; j < vals.size(); ++j) {
            set_value(c.buffers[0], i * vals.size() + j, t, vals[i]);
            set_value(c.buffers[1], i * vals.size() + j, t, vals[j]);
          }
        }
        std::vector<Stmt> stores;
        Expr a = load(0, t, {v("i")}), b = load(1, t, {v("i")});
        for (int o = 0; o <= int(BinaryOp::kGe); ++o) {
          BinaryOp op = BinaryOp(o);
          if (!binary_applies(op, t) || (op == BinaryOp::kPow) != pow_only) continue;
          Expr e = binary(op, a, b);
          int id = int(c.kernel.buffers.size());
          c.kernel.buffers.push_back(buffer(binary_name(op), e->type, {imm(int64_t(n))}, true));
          c.buffers.push_back(HostBuffer(e->type, n));
          stores.push_back(store(id, {v("i")}, e));
        }
        c.kernel.body = for_loop("i", imm(int64_t(n)), kind, block(stores));
        SCOPED_TRACE(c.kernel.label + (pow_only ? " (pow)" : ""));
        // pow: within 2 ulp of libm's powf/pow (which the interpreter calls).
        expect_matches_interpreter(c, pow_only ? (t == kF32 ? 2.4e-7 : 1e-15) : 0);
      }
    }
  }
}

TEST(CodegenOps, UnaryOpsExact) {
  for (ScalarType t : {kF32, kF64, kI32, kI64, kU8, kBool}) {
    std::vector<double> vals = special_values(t);
    if (is_float(t))
      for (double x : {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1e7 + 0.5, -3.7, 4.2}) vals.push_back(x);
    const size_t n = vals.size();
    for (LoopKind kind : kInnerKinds) {
      Case c;
      c.kernel.label = std::string("unary ops on ") + type_name(t);
      c.kernel.buffers = {buffer("a", t, {imm(int64_t(n))})};
      c.buffers = {HostBuffer(t, n)};
      for (size_t i = 0; i < n; ++i) set_value(c.buffers[0], i, t, vals[i]);
      std::vector<Stmt> stores;
      Expr a = load(0, t, {v("i")});
      const UnaryOp ops[] = {UnaryOp::kNeg,  UnaryOp::kNot,   UnaryOp::kAbs, UnaryOp::kFloor,
                             UnaryOp::kCeil, UnaryOp::kRound, UnaryOp::kSqrt};
      for (UnaryOp op : ops) {
        bool applies = op == UnaryOp::kNot                          ? !is_float(t)
                       : op == UnaryOp::kNeg || op == UnaryOp::kAbs ? t != kBool
                                                                    : is_float(t);
        if (!applies) continue;
        int id = int(c.kernel.buffers.size());
        c.kernel.buffers.push_back(buffer(unary_name(op), t, {imm(int64_t(n))}, true));
        c.buffers.push_back(HostBuffer(t, n));
        stores.push_back(store(id, {v("i")}, unary(op, a)));
      }
      c.kernel.body = for_loop("i", imm(int64_t(n)), kind, block(stores));
      SCOPED_TRACE(c.kernel.label);
      expect_matches_interpreter(c);
    }
  }
}

TEST(CodegenOps, EveryCastPair) {
  const ScalarType types[] = {kF32, kF64, kI32, kI64, kU8, kBool};
  for (ScalarType from : types) {
    std::vector<double> vals = special_values(from);
    if (is_float(from)) {
      // Out-of-range values are unspecified by the IR; the generator saturates to i64 and wraps
      // like the interpreter, so they are compared too.
      for (double x : {255.9, 256.0, 300.0, -3.0, 1e10, -1e10, 3e9, 2147483648.0, -2147483649.0,
                       9.3e18, 1.8e19, 2e19, -0.7, 0.7})
        vals.push_back(x);
    }
    const size_t n = vals.size();
    for (LoopKind kind : kInnerKinds) {
      Case c;
      c.kernel.label = std::string("casts from ") + type_name(from);
      c.kernel.buffers = {buffer("a", from, {imm(int64_t(n))})};
      c.buffers = {HostBuffer(from, n)};
      for (size_t i = 0; i < n; ++i) set_value(c.buffers[0], i, from, vals[i]);
      std::vector<Stmt> stores;
      for (ScalarType to : types) {
        int id = int(c.kernel.buffers.size());
        c.kernel.buffers.push_back(buffer(type_name(to), to, {imm(int64_t(n))}, true));
        c.buffers.push_back(HostBuffer(to, n));
        stores.push_back(store(id, {v("i")}, cast(to, load(0, from, {v("i")}))));
      }
      c.kernel.body = for_loop("i", imm(int64_t(n)), kind, block(stores));
      SCOPED_TRACE(c.kernel.label);
      expect_matches_interpreter(c);
    }
  }
}

// ---- reductions ----

Expr identity(ReduceOp op, ScalarType t) {
  switch (op) {
    case ReduceOp::kSum:
      return constant(0, t);
    case ReduceOp::kProd:
      return constant(1, t);
    case ReduceOp::kMin:
      return is_float(t) ? constant(std::numeric_limits<double>::infinity(), t)
                         : imm(std::numeric_limits<int32_t>::max(), t);
    case ReduceOp::kMax:
      return is_float(t) ? constant(-std::numeric_limits<double>::infinity(), t)
                         : imm(std::numeric_limits<int32_t>::min(), t);
  }
  return nullptr;
}

TEST(CodegenReduce, RowsColumnsAndMultiVar) {
  const ReduceOp ops[] = {ReduceOp::kSum, ReduceOp::kProd, ReduceOp::kMin, ReduceOp::kMax};
  for (ScalarType t : {kF32, kF64, kI32}) {
    for (ReduceOp op : ops) {
      for (int64_t n : {1, 3, 17, 64}) {
        for (LoopKind kind : kInnerKinds) {
          // x: [n, n, 5]. rows[i] = op_{j,k} x[i,j,k]; cols[j] = op_i x[i,j,0] (the reduce inside
          // the possibly widened loop over j, so its accumulator is a vector).
          Case c;
          c.kernel.label = std::string("reduce ") + reduce_name(op) + " " + type_name(t);
          c.kernel.buffers = {buffer("x", t, {imm(n), imm(n), imm(5)}),
                              buffer("rows", t, {imm(n)}, true), buffer("cols", t, {imm(n)}, true)};
          Expr rows = reduce(op, {"j", "k"}, {imm(n), imm(5)}, identity(op, t),
                             load(0, t, {v("i"), v("j"), v("k")}));
          Expr cols =
              reduce(op, {"r"}, {imm(n)}, identity(op, t), load(0, t, {v("r"), v("i"), imm(0)}));
          c.kernel.body = for_loop("i", imm(n), kind,
                                   block({store(1, {v("i")}, rows), store(2, {v("i")}, cols)}));
          c.buffers = {HostBuffer(t, size_t(n * n * 5)), HostBuffer(t, size_t(n)),
                       HostBuffer(t, size_t(n))};
          if (op == ReduceOp::kProd)
            fill_random(c.buffers[0], is_float(t) ? 0.9 : -1, is_float(t) ? 1.1 : 2, 5);
          else
            fill_random(c.buffers[0], is_float(t) ? -1 : -100, is_float(t) ? 1 : 100, 5);
          if (is_float(t) && n > 1 && op >= ReduceOp::kMin)
            c.buffers[0].set(size_t(5 * n + 2), std::numeric_limits<double>::quiet_NaN());
          SCOPED_TRACE(c.kernel.label + " n=" + std::to_string(n));
          // Float sums may be reassociated: compared relative to max(|want|, 1).
          expect_matches_interpreter(c, t == kF32 ? 1e-5 : 1e-12, nullptr, 1.0);
        }
      }
    }
  }
}

TEST(CodegenReduce, RowSumIsVectorizedByLlvm) {
  Kernel k;
  k.label = "row sum";
  k.num_params = 2;
  k.buffers = {buffer("x", kF32, {param(0), param(1)}), buffer("y", kF32, {param(0)}, true)};
  k.body = for_loop("i", param(0), LoopKind::kSerial,
                    store(1, {v("i")},
                          reduce(ReduceOp::kSum, {"j"}, {param(1)}, fimm(0.0f),
                                 load(0, kF32, {v("i"), v("j")}))));
  std::string ir = emit_llvm_ir(k, "row_sum", true);
  EXPECT_NE(ir.find("<" + std::to_string(host_vector_lanes_f32()) + " x float>"), std::string::npos)
      << ir;
}

TEST(CodegenReduce, MatmulWidenedOverColumns) {
  // out[i, j] = sum_k a[i, k] * b[k, j], j vectorized: a vector accumulator per row tile.
  for (int64_t n : {1, 3, 17, 64}) {
    Case c;
    c.kernel.label = "matmul";
    c.kernel.num_params = 1;
    c.kernel.buffers = {buffer("a", kF32, {imm(5), param(0)}),
                        buffer("b", kF32, {param(0), imm(n)}),
                        buffer("c", kF32, {imm(5), imm(n)}, true)};
    Expr prod = load(0, kF32, {v("i"), v("k")}) * load(1, kF32, {v("k"), v("j")});
    c.kernel.body =
        for_loop("i", imm(5), LoopKind::kSerial,
                 for_loop("j", imm(n), LoopKind::kVectorized,
                          store(2, {v("i"), v("j")},
                                reduce(ReduceOp::kSum, {"k"}, {param(0)}, fimm(0.0f), prod))));
    c.params = {7};
    c.buffers = {HostBuffer(kF32, 35), HostBuffer(kF32, size_t(7 * n)),
                 HostBuffer(kF32, size_t(5 * n))};
    fill_random(c.buffers[0], -1, 1, 1);
    fill_random(c.buffers[1], -1, 1, 2);
    expect_matches_interpreter(c, 1e-5, nullptr, 1.0);
  }
}

// ---- strided access, read-modify-write, loops LLVM must vectorize itself ----

TEST(CodegenLoops, StridedGatherScatterAndReadModifyWrite) {
  for (int64_t n : kSizes) {
    for (LoopKind kind : kInnerKinds) {
      Case c;
      c.kernel.label = "strided";
      c.kernel.num_params = 1;
      // xt: a transposed [p0, n] view of a [n, p0] array; out: the same layout.
      BufferDecl xt = buffer("xt", kF32, {param(0), imm(n)});
      xt.strides = {imm(1), param(0)};
      BufferDecl out = buffer("out", kF32, {param(0), imm(n)}, true);
      out.strides = {imm(1), param(0)};
      c.kernel.buffers = {xt, out, buffer("acc", kF32, {param(0), imm(n)}, true),
                          buffer("every_other", kF32, {param(0), imm(2 * n)})};
      Expr x = load(0, kF32, {v("i"), v("j")});
      Expr acc = load(2, kF32, {v("i"), v("j")});
      Expr eo = load(3, kF32, {v("i"), v("j") * 2});
      c.kernel.body = for_loop("i", param(0), LoopKind::kSerial,
                               for_loop("j", imm(n), kind,
                                        block({store(1, {v("i"), v("j")}, x + eo),
                                               store(2, {v("i"), v("j")}, acc * fimm(2.0f) + x)})));
      c.params = {4};
      c.buffers = {HostBuffer(kF32, size_t(4 * n)), HostBuffer(kF32, size_t(4 * n)),
                   HostBuffer(kF32, size_t(4 * n)), HostBuffer(kF32, size_t(8 * n))};
      fill_random(c.buffers[0], -3, 3, 1);
      fill_random(c.buffers[2], -3, 3, 2);
      fill_random(c.buffers[3], -3, 3, 3);
      expect_matches_interpreter(c);
    }
  }
}

TEST(CodegenLoops, VectorizedLoopWithCarriedDependenceStaysSerial) {
  // total[0] accumulates over i and prefix[i] reads prefix[i - 1]: widening would break both, so
  // the generator leaves these loops to LLVM's (legality-checking) vectorizer.
  for (int64_t n : kSizes) {
    Case c;
    c.kernel.label = "carried";
    c.kernel.buffers = {buffer("x", kI32, {imm(n)}), buffer("total", kI32, {imm(1)}, true),
                        buffer("prefix", kI32, {imm(n + 1)}, true)};
    Expr x = load(0, kI32, {v("i")});
    c.kernel.body = block({for_loop("i", imm(n), LoopKind::kVectorized,
                                    store(1, {imm(0)}, load(1, kI32, {imm(0)}) + x)),
                           for_loop("i", imm(n), LoopKind::kVectorized,
                                    store(2, {v("i") + 1}, load(2, kI32, {v("i")}) + x))});
    c.buffers = {HostBuffer(kI32, size_t(n)), HostBuffer(kI32, 1), HostBuffer(kI32, size_t(n + 1))};
    fill_random(c.buffers[0], -100, 100, 9);
    expect_matches_interpreter(c);
  }
}

TEST(CodegenLoops, WideningCheck) {
  Expr i = v("i");
  Expr x = load(0, kF32, {i});
  EXPECT_TRUE(check_widening("i", store(1, {i}, x)).ok);
  // Read-modify-write at the loop's own element.
  EXPECT_TRUE(check_widening("i", store(1, {i}, load(1, kF32, {i}) * fimm(2.0f) + x)).ok);
  // Accumulation into one element, a neighbour's element, a non-linear index.
  EXPECT_FALSE(check_widening("i", store(1, {imm(0)}, load(1, kF32, {imm(0)}) + x)).ok);
  EXPECT_FALSE(check_widening("i", store(1, {i + 1}, load(1, kF32, {i}) + x)).ok);
  EXPECT_FALSE(check_widening("i", store(1, {i / 2}, load(1, kF32, {i / 2}) + x)).ok);
  // Stores only (scatter): fine even at a non-linear index.
  EXPECT_TRUE(check_widening("i", store(1, {i / 2}, x)).ok);
  // Inner trip counts that differ per lane.
  EXPECT_FALSE(check_widening("i", for_loop("j", i, LoopKind::kSerial, store(1, {i}, x))).ok);
  EXPECT_FALSE(
      check_widening("i", store(1, {i}, reduce(ReduceOp::kSum, {"j"}, {i + 1}, fimm(0.0f), x))).ok);
  EXPECT_TRUE(check_widening("i", store(1, {i},
                                        reduce(ReduceOp::kSum, {"j"}, {imm(4)}, fimm(0.0f),
                                               load(0, kF32, {v("j")}))))
                  .ok);
  EXPECT_EQ(check_widening("i", store(1, {i}, load(0, kU8, {i}))).max_bits, 8);
  EXPECT_EQ(check_widening("i", store(1, {i}, cast(kF64, x))).max_bits, 64);
}

TEST(CodegenLoops, BoolAndByteBuffers) {
  for (int64_t n : kSizes) {
    for (LoopKind kind : kInnerKinds) {
      Case c;
      c.kernel.label = "where";
      c.kernel.buffers = {buffer("cond", kBool, {imm(n)}), buffer("a", kU8, {imm(n)}),
                          buffer("out", kU8, {imm(n)}, true),
                          buffer("mask", kBool, {imm(n)}, true)};
      Expr cond = load(0, kBool, {v("i")});
      Expr a = load(1, kU8, {v("i")});
      c.kernel.body = for_loop("i", imm(n), kind,
                               block({store(2, {v("i")}, select(cond, a, a + imm(1, kU8))),
                                      store(3, {v("i")},
                                            binary(BinaryOp::kAnd, unary(UnaryOp::kNot, cond),
                                                   binary(BinaryOp::kGt, a, imm(100, kU8))))}));
      c.buffers = {HostBuffer(kBool, size_t(n)), HostBuffer(kU8, size_t(n)),
                   HostBuffer(kU8, size_t(n)), HostBuffer(kBool, size_t(n))};
      fill_random(c.buffers[0], 0, 2, 4);
      for (size_t i = 0; i < size_t(n); ++i) c.buffers[0].set(i, double(int(c.buffers[0].get(i))));
      fill_random(c.buffers[1], 0, 256, 5);
      expect_matches_interpreter(c);
    }
  }
}

TEST(CodegenLoops, EmptyAndNegativeExtents) {
  for (int64_t n : {0, -3}) {
    Case c;
    c.kernel.label = "empty";
    c.kernel.num_params = 1;
    c.kernel.buffers = {buffer("y", kF32, {imm(0)}, true)};
    c.kernel.body = for_loop("i", param(0), LoopKind::kVectorized, store(0, {v("i")}, fimm(1.0f)));
    c.params = {n};
    c.buffers = {HostBuffer(kF32, 0)};
    auto ck = compile(c.kernel);
    void* ptrs[] = {nullptr};
    ck->fn()(ptrs, c.params.data());  // touches nothing
  }
}

// ---- the JIT ----

size_t resident_bytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return size_t(resident) * 4096;
}

Kernel small_kernel(float scale) {
  Kernel k;
  k.label = "small";
  k.num_params = 1;
  k.buffers = {buffer("x", kF32, {param(0)}), buffer("y", kF32, {param(0)}, true)};
  k.body = for_loop("i", param(0), LoopKind::kVectorized,
                    store(1, {v("i")}, load(0, kF32, {v("i")}) * fimm(scale) + fimm(1.0f)));
  return k;
}

void expect_runs(const CompiledKernel& ck, float scale) {
  std::vector<float> x = {1, 2, 3}, y(3);
  void* ptrs[] = {x.data(), y.data()};
  int64_t n = 3;
  ck.fn()(ptrs, &n);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(y[size_t(i)], x[size_t(i)] * scale + 1);
}

TEST(CodegenJit, DroppedKernelsFreeTheirCode) {
  const std::string obj = compile_to_object(small_kernel(2), "kiln_test_reload");
  // The same symbol loaded again while the first copy is alive: each load is independent.
  auto first = load_object(obj, "kiln_test_reload");
  auto second = load_object(obj, "kiln_test_reload");
  EXPECT_NE(first->fn(), second->fn());
  expect_runs(*first, 2);
  expect_runs(*second, 2);
  first.reset();
  expect_runs(*second, 2);
  second.reset();
  for (int i = 0; i < 100; ++i) load_object(obj, "kiln_test_reload");
  size_t before = resident_bytes();
  for (int i = 0; i < 1000; ++i) {
    auto k = load_object(obj, "kiln_test_reload");
    if (i % 100 == 0) expect_runs(*k, 2);
  }
  size_t after = resident_bytes();
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's quarantine keeps freed memory resident";
#endif
  // Each loaded kernel maps at least a few pages: 1000 leaked ones would be megabytes.
  EXPECT_LT(after, before + (4u << 20)) << "before " << before << " after " << after;
}

TEST(CodegenJit, CorruptObjectsAreErrors) {
  const std::string obj = compile_to_object(small_kernel(3), "kiln_test_corrupt");
  for (const std::string& bad :
       {std::string("not an object file"), std::string(), obj.substr(0, 64)}) {
    try {
      load_object(bad, "kiln_test_corrupt");
      ADD_FAILURE() << "loaded a corrupt object of " << bad.size() << " bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInternal);
    }
  }
  // A valid object without the symbol.
  EXPECT_THROW(load_object(obj, "kiln_test_no_such_symbol"), Error);
  // The valid one still loads.
  expect_runs(*load_object(obj, "kiln_test_corrupt"), 3);
}

TEST(CodegenJit, InvalidKernelIsAnError) {
  Kernel k = small_kernel(1);
  k.num_params = 0;  // param(0) out of range
  EXPECT_THROW(compile_to_object(k, "bad"), Error);
}

TEST(CodegenJit, ConcurrentCompiles) {
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &ok] {
      for (int i = 0; i < 3; ++i) {
        float scale = float(t * 10 + i);
        auto ck = compile(small_kernel(scale));
        std::vector<float> x = {1, 2, 3}, y(3);
        void* ptrs[] = {x.data(), y.data()};
        int64_t n = 3;
        ck->fn()(ptrs, &n);
        if (y[2] == 3 * scale + 1) ++ok[size_t(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[size_t(t)], 3);
}

TEST(CodegenJit, HostTargetIdAndCompileCost) {
  const std::string& id = host_target_id();
  EXPECT_EQ(id.rfind(host_cpu_name() + ";", 0), 0u) << id;
  EXPECT_NE(id.find(";llvm " + llvm_version()), std::string::npos) << id;
  if (host_vector_lanes_f32() == 16) {
    EXPECT_NE(id.find("+avx512f"), std::string::npos);
  }
  // Compile time and object size of a small kernel (reported, not asserted: machines vary).
  auto t0 = std::chrono::steady_clock::now();
  const int n = 10;
  size_t bytes = 0;
  for (int i = 0; i < n; ++i)
    bytes = compile_to_object(small_kernel(float(i)), "kiln_test_cost").size();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n;
  EXPECT_GT(bytes, 0u);
  std::printf("[ info ] small kernel: %.1f ms per compile, %zu byte object\n", ms, bytes);
}

}  // namespace
}  // namespace kiln::jit
