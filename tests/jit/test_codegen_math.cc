// Accuracy of the code generator's inline math (codegen_math.h): each function over dense ranges
// and special values, against the double-precision C library, in ulps of the result type.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "jit/codegen_test_util.h"
#include "jit/host_target.h"

namespace kiln::jit {
namespace {

using testing::buffer;
using testing::Case;
using testing::compile;
using testing::expect_matches_interpreter;
using testing::HostBuffer;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// |got - want| in units of the last place of `want` rounded to T (subnormal spacing below the
/// normal range); 0 when both are NaN or the same infinity, huge when only one is.
template <typename T>
double ulp_error(T got, double want) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got) ? 0 : 1e30;
  if (std::isinf(want) || std::isinf(got)) return double(got) == double(T(want)) ? 0 : 1e30;
  double m = std::max(std::fabs(double(T(want))), double(std::numeric_limits<T>::min()));
  double ulp = std::ldexp(1.0, std::ilogb(m) - (std::numeric_limits<T>::digits - 1));
  return std::fabs(double(got) - want) / ulp;
}

/// y[i] = op(x[i]) over a param-sized loop of the given kind.
Kernel unary_kernel(UnaryOp op, ScalarType t, LoopKind kind) {
  Kernel k;
  k.label = unary_name(op);
  k.num_params = 1;
  k.buffers = {buffer("x", t, {param(0)}), buffer("y", t, {param(0)}, true)};
  k.body = for_loop("i", param(0), kind, store(1, {var("i")}, unary(op, load(0, t, {var("i")}))));
  return k;
}

std::vector<double> samples(double lo, double hi, int n, std::vector<double> extra) {
  std::vector<double> v = std::move(extra);
  for (int i = 0; i < n; ++i) v.push_back(lo + (hi - lo) * (double(i) + 0.5) / n);
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> d(lo, hi);
  for (int i = 0; i < n; ++i) v.push_back(d(rng));
  return v;
}

/// Runs `ck` (y = f(x)) on `xs`; returns the worst ulp error against `ref` (ignoring points where
/// |ref| < abs_tol and the absolute error is below abs_tol) and where it happens.
template <typename T>
std::pair<double, double> worst_error(const CompiledKernel& ck, const std::vector<double>& xs,
                                      double (*ref)(double), double abs_tol) {
  std::vector<T> x(xs.begin(), xs.end()), y(xs.size());
  void* ptrs[] = {x.data(), y.data()};
  int64_t n = int64_t(xs.size());
  ck.fn()(ptrs, &n);
  double worst = 0, at = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double want = ref(double(x[i]));
    if (std::fabs(want) < abs_tol && std::fabs(double(y[i]) - want) < abs_tol) continue;
    double e = ulp_error<T>(y[i], want);
    if (e > worst) {
      worst = e;
      at = double(x[i]);
    }
  }
  return {worst, at};
}

double ref_sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double ref_exp(double x) { return std::exp(x); }
double ref_log(double x) { return std::log(x); }
double ref_tanh(double x) { return std::tanh(x); }
double ref_erf(double x) { return std::erf(x); }
double ref_sin(double x) { return std::sin(x); }
double ref_cos(double x) { return std::cos(x); }

const std::vector<double> kSpecials = {
    0.0, -0.0, kInf, -kInf, kNaN,   FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, 1e-40, -1e-40, 1, -1,
    0.5, 88.7, 88.8, -87.3, -103.0, -104.0,  -110.0,   1e30,    -1e30,    20,    -20,    9, -9};

struct MathCase {
  UnaryOp op;
  double (*ref)(double);
  double lo, hi;
  double max_ulp;
  double abs_tol;  // near zero crossings
};

TEST(CodegenMath, F32AccuracyOverDenseRanges) {
  const MathCase cases[] = {
      {UnaryOp::kExp, ref_exp, -110, 95, 2, 0},
      {UnaryOp::kLog, ref_log, 0, 1e4, 2, 0},
      {UnaryOp::kTanh, ref_tanh, -12, 12, 3, 0},
      {UnaryOp::kErf, ref_erf, -6, 6, 2, 0},
      {UnaryOp::kSigmoid, ref_sigmoid, -100, 100, 3, 1e-37},
      {UnaryOp::kSin, ref_sin, -100, 100, 2, 0},
      {UnaryOp::kCos, ref_cos, -100, 100, 2, 0},
  };
  for (const MathCase& mc : cases) {
    for (LoopKind kind : {LoopKind::kVectorized, LoopKind::kSerial}) {
      auto ck = compile(unary_kernel(mc.op, ScalarType::kF32, kind));
      std::vector<std::vector<double>> sets = {samples(mc.lo, mc.hi, 100000, kSpecials),
                                               samples(-1, 1, 20000, {}),
                                               samples(-1e-3, 1e-3, 2000, {})};
      if (mc.op == UnaryOp::kLog) {
        // Every binade, subnormals included, and around 1.
        std::vector<double> v;
        for (int e = -149; e < 128; ++e)
          for (int i = 0; i < 64; ++i) v.push_back(std::ldexp(1.0 + i / 64.0, e));
        sets.push_back(v);
        sets.push_back(samples(0.5, 2, 20000, {}));
      }
      if (mc.op == UnaryOp::kSin || mc.op == UnaryOp::kCos)
        sets.push_back(samples(-1e4, 1e4, 50000, {}));
      double worst = 0, at = 0;
      for (const auto& xs : sets) {
        auto [w, a] = worst_error<float>(*ck, xs, mc.ref, mc.abs_tol);
        if (w > worst) worst = w, at = a;
      }
      EXPECT_LE(worst, mc.max_ulp) << unary_name(mc.op) << " worst at x = " << at;
      if (kind == LoopKind::kVectorized)
        std::printf("[ info ] f32 %s: max error %.2f ulp (at %g)\n", unary_name(mc.op), worst, at);
    }
  }
}

TEST(CodegenMath, F64PolynomialsAndLibmCalls) {
  const MathCase cases[] = {
      {UnaryOp::kExp, ref_exp, -750, 715, 2, 0},
      {UnaryOp::kLog, ref_log, 0, 1e6, 2, 0},
      // The reference (the same formula in double) has rounding errors of its own.
      {UnaryOp::kSigmoid, ref_sigmoid, -50, 50, 4, 0},
      // libm in the generated code: same function as the reference.
      {UnaryOp::kTanh, ref_tanh, -20, 20, 0, 0},
      {UnaryOp::kErf, ref_erf, -6, 6, 0, 0},
      {UnaryOp::kSin, ref_sin, -100, 100, 0, 0},
      {UnaryOp::kCos, ref_cos, -100, 100, 0, 0},
  };
  std::vector<double> specials = {0.0,      -0.0, kInf, -kInf, kNaN,  DBL_MAX, DBL_MIN,
                                  4.9e-324, 1,    -1,   709.7, 709.8, -745,    -746};
  for (const MathCase& mc : cases) {
    auto ck = compile(unary_kernel(mc.op, ScalarType::kF64, LoopKind::kVectorized));
    std::vector<double> xs = samples(mc.lo, mc.hi, 50000, specials);
    if (mc.op == UnaryOp::kLog)
      for (int e = -1074; e < 1024; e += 3) xs.push_back(std::ldexp(1.37, e));
    auto [worst, at] = worst_error<double>(*ck, xs, mc.ref, 0);
    EXPECT_LE(worst, mc.max_ulp) << unary_name(mc.op) << " worst at x = " << at;
  }
}

TEST(CodegenMath, PowMatchesStdPow) {
  const std::vector<double> xs = {0.0,  -0.0,  1,   -1,   2,     -2,    0.5,  -0.5,
                                  3,    -3,    10,  1e-3, 1e30,  -1e30, kInf, -kInf,
                                  kNaN, 1e-40, 7.5, -7.5, 0.999, 1.001};
  const std::vector<double> ys = {0.0,   -0.0, 1,   -1,  2,          -2,   3,     -3,
                                  0.5,   -0.5, 2.5, 10,  -10,        1e10, -1e10, kInf,
                                  -kInf, kNaN, 33,  -33, 16777217.0, 0.1};
  std::vector<double> px, py;
  for (double x : xs)
    for (double y : ys) px.push_back(x), py.push_back(y);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> dx(0, 10), dy(-30, 30);
  for (int i = 0; i < 100000; ++i) px.push_back(dx(rng)), py.push_back(dy(rng));
  for (int i = 0; i < 10000; ++i)
    px.push_back(-std::floor(dx(rng))), py.push_back(std::floor(dy(rng)));

  Kernel k;
  k.label = "pow";
  k.num_params = 1;
  k.buffers = {buffer("x", ScalarType::kF32, {param(0)}), buffer("y", ScalarType::kF32, {param(0)}),
               buffer("z", ScalarType::kF32, {param(0)}, true)};
  Expr i = var("i");
  k.body = for_loop("i", param(0), LoopKind::kVectorized,
                    store(2, {i},
                          binary(BinaryOp::kPow, load(0, ScalarType::kF32, {i}),
                                 load(1, ScalarType::kF32, {i}))));
  auto ck = compile(k);
  std::vector<float> x(px.begin(), px.end()), y(py.begin(), py.end()), z(px.size());
  void* ptrs[] = {x.data(), y.data(), z.data()};
  int64_t n = int64_t(x.size());
  ck->fn()(ptrs, &n);
  double worst = 0;
  for (size_t j = 0; j < x.size(); ++j) {
    double want = std::pow(double(x[j]), double(y[j]));
    double e = ulp_error<float>(z[j], want);
    EXPECT_LE(e, 1.0) << "pow(" << x[j] << ", " << y[j] << ") = " << z[j] << ", want " << want;
    worst = std::max(worst, e);
    if (e > 1.0) break;
  }
  std::printf("[ info ] f32 pow: max error %.2f ulp\n", worst);

  // Constant exponents take shortcuts (x*x, sqrt, 1/x) with std::pow's special values.
  for (double c : {2.0, 0.5, -1.0, 1.0, 3.0, 0.0}) {
    Kernel kc = k;
    kc.body =
        for_loop("i", param(0), LoopKind::kVectorized,
                 store(2, {i}, binary(BinaryOp::kPow, load(0, ScalarType::kF32, {i}), fimm(c))));
    auto ckc = compile(kc);
    ckc->fn()(ptrs, &n);
    for (size_t j = 0; j < x.size(); ++j) {
      double want = std::pow(double(x[j]), c);
      ASSERT_LE(ulp_error<float>(z[j], want), 1.0)
          << "pow(" << x[j] << ", " << c << ") = " << z[j] << ", want " << want;
    }
  }
}

TEST(CodegenMath, VectorizedExpIsInlineVectorCode) {
  std::string ir = emit_llvm_ir(
      unary_kernel(UnaryOp::kExp, ScalarType::kF32, LoopKind::kVectorized), "vexp", true);
  EXPECT_NE(ir.find("<" + std::to_string(host_vector_lanes_f32()) + " x float>"),
            std::string::npos);
  EXPECT_EQ(ir.find("expf"), std::string::npos) << ir;
  EXPECT_EQ(ir.find("@exp"), std::string::npos) << ir;
}

TEST(CodegenMath, RareFunctionsCallLibm) {
  // tan, asin, ... are libm calls (lane by lane when widened): exactly the interpreter's values.
  for (ScalarType t : {ScalarType::kF32, ScalarType::kF64}) {
    for (LoopKind kind : {LoopKind::kSerial, LoopKind::kVectorized}) {
      const UnaryOp ops[] = {UnaryOp::kTan,   UnaryOp::kAsin,  UnaryOp::kAcos,
                             UnaryOp::kAtan,  UnaryOp::kSinh,  UnaryOp::kCosh,
                             UnaryOp::kAsinh, UnaryOp::kAcosh, UnaryOp::kAtanh};
      const int64_t n = 37;
      Case c;
      c.kernel.label = "libm";
      c.kernel.buffers = {buffer("x", t, {imm(n)})};
      c.buffers = {HostBuffer(t, size_t(n))};
      for (int64_t j = 0; j < n; ++j) c.buffers[0].set(size_t(j), -3 + 6.0 * double(j) / (n - 1));
      c.buffers[0].set(0, kNaN);
      std::vector<Stmt> stores;
      for (UnaryOp op : ops) {
        int id = int(c.kernel.buffers.size());
        c.kernel.buffers.push_back(buffer(unary_name(op), t, {imm(n)}, true));
        c.buffers.push_back(HostBuffer(t, size_t(n)));
        stores.push_back(store(id, {var("i")}, unary(op, load(0, t, {var("i")}))));
      }
      c.kernel.body = for_loop("i", imm(n), kind, block(stores));
      expect_matches_interpreter(c);
    }
  }
}

}  // namespace
}  // namespace kiln::jit
