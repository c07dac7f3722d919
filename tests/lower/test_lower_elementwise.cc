// Tests of the elementwise lowerings against the reference kernels (check_lowering): every op on
// sizes 1, 3, 17, 64, 1023, empty and rank-0 tensors, special values (NaN, +-inf, +-0, halves),
// every broadcast pattern, f32/f64 and the integer types each op takes, dynamic dims, strided
// inputs and the parallel paths. The interpreter runs every case; the JIT runs a selection per op
// (compiling is what costs time), always including a dynamic, a strided and a parallel kernel.
#include <cmath>
#include <limits>

#include "lower/lower_test_util.h"

namespace kiln::testing {
namespace {

const std::vector<Dims> kShapes = {{}, {0}, {1}, {3}, {17}, {64}, {1023}, {2, 0, 3}, {3, 17}};

LowerOptions interp_only() {
  LowerOptions o;
  o.jit = false;
  return o;
}
LowerOptions dynamic_strided() {
  LowerOptions o;
  o.dynamic = true;
  o.strided = true;
  return o;
}
LowerOptions parallel() {
  LowerOptions o;
  o.parallel_grain = 64;
  return o;
}

// NaN, infinities, signed zeros, halves (rounding), a denormal and values near overflow.
Tensor specials(DType t) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> v = {std::nan(""), inf,  -inf, 0.0, -0.0, 1e-7, -1e-7, 0.5, -0.5, 1.5,
                           2.5,          -2.5, 3,    -3,  20,   -20,  1e-40, 0.9, -0.9, 1.0};
  Tensor out(t, {int64_t(v.size())});
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::kF32)
      out.data<float>()[i] = float(v[i]);
    else
      out.data<double>()[i] = v[i];
  }
  return out;
}

struct UnaryCase {
  std::string op;
  double lo = -3, hi = 3;  // the domain of the random inputs
  std::map<std::string, ir::Attribute> attrs = {};
  int opset = 18;
};

std::string case_name(const ::testing::TestParamInfo<UnaryCase>& info) {
  std::string n = info.param.op;
  for (const auto& [k, v] : info.param.attrs) n += "_" + k;
  return n + "_" + std::to_string(info.index);
}

class LowerElementwiseUnary : public ::testing::TestWithParam<UnaryCase> {};

TEST_P(LowerElementwiseUnary, MatchesReference) {
  const UnaryCase& p = GetParam();
  auto call = [&](Tensor x) { return OpCall{p.op, {std::move(x)}, p.attrs, p.opset}; };
  uint64_t seed = 1;
  for (const Dims& d : kShapes)
    EXPECT_TRUE(
        check_lowering(call(random_tensor(DType::kF32, d, p.lo, p.hi, seed++)), interp_only()))
        << dims_to_string(d);
  EXPECT_TRUE(check_lowering(call(random_tensor(DType::kF32, {1023}, p.lo, p.hi, 7))));
  EXPECT_TRUE(
      check_lowering(call(random_tensor(DType::kF32, {3, 17}, p.lo, p.hi, 8)), dynamic_strided()));
  EXPECT_TRUE(
      check_lowering(call(random_tensor(DType::kF32, {4, 5, 33}, p.lo, p.hi, 9)), parallel()));
  // Chunked parallel loops: one long dim, and a long dim under a short one (dynamic).
  EXPECT_TRUE(check_lowering(call(random_tensor(DType::kF32, {1023}, p.lo, p.hi, 11)), parallel()));
  LowerOptions dyn_par = parallel();
  dyn_par.dynamic = true;
  EXPECT_TRUE(check_lowering(call(random_tensor(DType::kF32, {3, 1000}, p.lo, p.hi, 12)), dyn_par));
  EXPECT_TRUE(check_lowering(call(random_tensor(DType::kF64, {17}, p.lo, p.hi, 10))));
  EXPECT_TRUE(check_lowering(call(specials(DType::kF32))));
  EXPECT_TRUE(check_lowering(call(specials(DType::kF64)), interp_only()));
}

std::map<std::string, ir::Attribute> alpha(float a) { return {{"alpha", attr_float(a)}}; }

INSTANTIATE_TEST_SUITE_P(
    Ops, LowerElementwiseUnary,
    ::testing::Values(
        UnaryCase{"Abs"}, UnaryCase{"Neg"}, UnaryCase{"Sign"}, UnaryCase{"Reciprocal"},
        UnaryCase{"Floor"}, UnaryCase{"Ceil"}, UnaryCase{"Round"}, UnaryCase{"Sqrt", 0, 10},
        UnaryCase{"Exp"}, UnaryCase{"Log", 0.01, 10}, UnaryCase{"Tanh"}, UnaryCase{"Erf"},
        UnaryCase{"Sigmoid"}, UnaryCase{"Sin"}, UnaryCase{"Cos"}, UnaryCase{"Tan", -1.2, 1.2},
        UnaryCase{"Asin", -0.99, 0.99}, UnaryCase{"Acos", -0.99, 0.99}, UnaryCase{"Atan"},
        UnaryCase{"Sinh"}, UnaryCase{"Cosh"}, UnaryCase{"Asinh"}, UnaryCase{"Acosh", 1, 5},
        UnaryCase{"Atanh", -0.99, 0.99}, UnaryCase{"Relu"}, UnaryCase{"LeakyRelu"},
        UnaryCase{"LeakyRelu", -3, 3, alpha(0.3f)}, UnaryCase{"Elu"},
        UnaryCase{"Elu", -3, 3, alpha(0.7f)}, UnaryCase{"Selu"}, UnaryCase{"Celu"},
        UnaryCase{"Celu", -3, 3, alpha(2.5f)}, UnaryCase{"ThresholdedRelu"},
        UnaryCase{"ThresholdedRelu", -3, 3, alpha(-0.5f)}, UnaryCase{"HardSigmoid"},
        UnaryCase{"HardSigmoid", -3, 3, {{"alpha", attr_float(0.4f)}, {"beta", attr_float(0.1f)}}},
        UnaryCase{"HardSwish"}, UnaryCase{"Softplus", -30, 30}, UnaryCase{"Softsign"},
        UnaryCase{"Mish", -10, 10}, UnaryCase{"Gelu", -5, 5, {}, 20},
        UnaryCase{"Gelu", -5, 5, {{"approximate", attr_string("tanh")}}, 20},
        UnaryCase{"Swish", -5, 5, alpha(1.5f), 24}, UnaryCase{"Shrink"},
        UnaryCase{"Shrink", -3, 3, {{"bias", attr_float(0.3f)}, {"lambd", attr_float(1.2f)}}},
        UnaryCase{"Clip", -3, 3, {}, 6}, UnaryCase{"Clip", -3, 3, {}, 13},
        UnaryCase{"Clip", -3, 3, {{"min", attr_float(-0.5f)}, {"max", attr_float(0.7f)}}, 6}),
    case_name);

// ---- integer unary ops and predicates ----

const std::vector<DType> kIntTypes = {DType::kI8, DType::kI16, DType::kI32, DType::kI64,
                                      DType::kU8, DType::kU16, DType::kU32, DType::kU64};

TEST(LowerElementwiseInt, UnaryOps) {
  for (const char* op : {"Abs", "Neg", "Sign", "Relu", "BitwiseNot", "Clip"}) {
    for (DType t : kIntTypes) {
      Tensor x = random_tensor(t, {67}, -100, 100, 3);
      if (t == DType::kI8) x.data<int8_t>()[0] = std::numeric_limits<int8_t>::min();
      OpCall call{op, {x}, {}, std::string(op) == "BitwiseNot" ? 18 : 13};
      bool jit = t == DType::kI32 || t == DType::kU8 || t == DType::kI8;
      LowerOptions o;
      o.jit = jit;
      EXPECT_TRUE(check_lowering(call, o)) << op << " " << dtype_name(t);
    }
  }
}

TEST(LowerElementwiseInt, ClipBoundsAsInputs) {
  // Bounds as (scalar) inputs, float and integer, present or omitted; min > max gives max.
  Tensor x = random_tensor(DType::kF32, {5, 13}, -3, 3, 4);
  auto f = [](float v) { return Tensor::scalar<float>(v); };
  EXPECT_TRUE(check_lowering(OpCall{"Clip", {x, f(-0.5f), f(0.5f)}, {}, 13}));
  EXPECT_TRUE(check_lowering(OpCall{"Clip", {x, f(-0.5f)}, {}, 13}));
  EXPECT_TRUE(check_lowering(OpCall{"Clip", {x, Tensor(), f(0.25f)}, {}, 13}));
  EXPECT_TRUE(check_lowering(OpCall{"Clip", {x, f(1.0f), f(-1.0f)}, {}, 13}));
  EXPECT_TRUE(check_lowering(OpCall{"Clip", {x, make<float>({1}, {0.1f}), f(0.2f)}, {}, 13},
                             dynamic_strided()));
  Tensor xi = random_tensor(DType::kI32, {40}, -50, 50, 5);
  EXPECT_TRUE(check_lowering(
      OpCall{"Clip", {xi, Tensor::scalar<int32_t>(-7), Tensor::scalar<int32_t>(9)}, {}, 13}));
  // NaN stays NaN; -inf without a lower bound clamps to the lowest finite float (std::max).
  EXPECT_TRUE(check_lowering(OpCall{"Clip", {specials(DType::kF32), Tensor(), f(2)}, {}, 13}));
  EXPECT_TRUE(check_lowering(OpCall{"Clip", {specials(DType::kF32), f(-1), f(2)}, {}, 13}));
}

TEST(LowerElementwiseInt, Predicates) {
  for (DType t : {DType::kF32, DType::kF64}) {
    EXPECT_TRUE(check_lowering(OpCall{"IsNaN", {specials(t)}, {}, 13}));
    for (int neg = 0; neg < 2; ++neg)
      for (int pos = 0; pos < 2; ++pos)
        EXPECT_TRUE(check_lowering(
            OpCall{"IsInf",
                   {specials(t)},
                   {{"detect_negative", attr_int(neg)}, {"detect_positive", attr_int(pos)}},
                   13},
            t == DType::kF32 ? LowerOptions{} : interp_only()));
  }
  Tensor b = random_tensor(DType::kBool, {3, 17}, 0, 1, 6);
  EXPECT_TRUE(check_lowering(OpCall{"Not", {b}}));
  EXPECT_TRUE(check_lowering(OpCall{"Not", {b}}, dynamic_strided()));
}

// ---- binary ops over every broadcast pattern ----

// (a dims, b dims): same shape, scalars on either side, rows, columns, both sides, rank 0, empty.
const std::vector<std::pair<Dims, Dims>> kPatterns = {
    {{3, 17}, {3, 17}}, {{3, 17}, {}},     {{}, {3, 17}},        {{3, 17}, {17}},
    {{17}, {3, 17}},    {{3, 1}, {1, 17}}, {{2, 3, 17}, {3, 1}}, {{1}, {5}},
    {{}, {}},           {{0, 3}, {3}},     {{1023}, {1023}},     {{4, 1, 5}, {1, 6, 1}},
};

struct BinaryCase {
  std::string op;
  std::vector<DType> types;
  double lo = -3, hi = 3;
  std::map<std::string, ir::Attribute> attrs = {};
  int opset = 18;
};

class LowerElementwiseBinary : public ::testing::TestWithParam<BinaryCase> {};

TEST_P(LowerElementwiseBinary, BroadcastPatterns) {
  const BinaryCase& p = GetParam();
  for (DType t : p.types) {
    uint64_t seed = 11;
    for (const auto& [da, db] : kPatterns) {
      OpCall call{
          p.op,
          {random_tensor(t, da, p.lo, p.hi, seed), random_tensor(t, db, p.lo, p.hi, seed + 1)},
          p.attrs,
          p.opset};
      seed += 2;
      // Integer inputs 1 count as constants by default; here both are data.
      LowerOptions o = interp_only();
      o.constant_inputs = std::vector<int>{};
      EXPECT_TRUE(check_lowering(call, o))
          << dtype_name(t) << " " << dims_to_string(da) << " " << dims_to_string(db);
    }
    OpCall call{
        p.op,
        {random_tensor(t, {4, 1, 33}, p.lo, p.hi, 1), random_tensor(t, {3, 33}, p.lo, p.hi, 2)},
        p.attrs,
        p.opset};
    LowerOptions o = dynamic_strided();
    o.constant_inputs = std::vector<int>{};
    o.parallel_grain = 32;
    EXPECT_TRUE(check_lowering(call, o)) << dtype_name(t);
    o = LowerOptions{};
    o.constant_inputs = std::vector<int>{};
    EXPECT_TRUE(check_lowering(call, o)) << dtype_name(t);
  }
}

const std::vector<DType> kF = {DType::kF32, DType::kF64};
const std::vector<DType> kNum = {DType::kF32, DType::kI32, DType::kI64, DType::kU8, DType::kI8};
const std::vector<DType> kInts = {DType::kI32, DType::kI64, DType::kU8, DType::kI8, DType::kU16};

INSTANTIATE_TEST_SUITE_P(
    Ops, LowerElementwiseBinary,
    ::testing::Values(
        BinaryCase{"Add", kNum, -100, 100}, BinaryCase{"Sub", kNum, -100, 100},
        BinaryCase{"Mul", kNum, -100, 100}, BinaryCase{"Div", kF}, BinaryCase{"Pow", kF, 0.1, 3},
        BinaryCase{"Mod", kF, -5, 5, {{"fmod", attr_int(1)}}}, BinaryCase{"Max", kNum, -50, 50},
        BinaryCase{"Min", kNum, -50, 50}, BinaryCase{"Sum", kF}, BinaryCase{"Mean", kF},
        BinaryCase{"Equal", kNum, -2, 2}, BinaryCase{"Less", kNum, -2, 2},
        BinaryCase{"LessOrEqual", kNum, -2, 2}, BinaryCase{"Greater", kNum, -2, 2},
        BinaryCase{"GreaterOrEqual", kNum, -2, 2}, BinaryCase{"And", {DType::kBool}, 0, 1},
        BinaryCase{"Or", {DType::kBool}, 0, 1}, BinaryCase{"Xor", {DType::kBool}, 0, 1},
        BinaryCase{"Equal", {DType::kBool}, 0, 1}, BinaryCase{"BitwiseAnd", kInts, -100, 100},
        BinaryCase{"BitwiseOr", kInts, -100, 100}, BinaryCase{"BitwiseXor", kInts, -100, 100}),
    [](const ::testing::TestParamInfo<BinaryCase>& info) {
      return info.param.op + "_" + std::to_string(info.index);
    });

TEST(LowerElementwiseBinary, SpecialValues) {
  // NaN and infinities through arithmetic, comparisons and the NaN-propagating Max/Min.
  Tensor a = specials(DType::kF32);
  Tensor b = random_tensor(DType::kF32, {20}, -3, 3, 5);
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min", "Equal", "Less", "Greater",
                         "LessOrEqual", "GreaterOrEqual"}) {
    EXPECT_TRUE(check_lowering(OpCall{op, {a, b}})) << op;
    EXPECT_TRUE(check_lowering(OpCall{op, {b, a}}, interp_only())) << op;
  }
  EXPECT_TRUE(check_lowering(OpCall{"Mod", {a, b}, {{"fmod", attr_int(1)}}}));
  EXPECT_TRUE(check_lowering(OpCall{"PRelu", {a, b}}));
}

TEST(LowerElementwiseBinary, PRelu) {
  // The slope broadcasts to X (scalar, per channel, per row, full), never the other way.
  for (DType t : {DType::kF32, DType::kI32, DType::kF64}) {
    Tensor x = random_tensor(t, {2, 3, 17}, -10, 10, 1);
    for (const Dims& sd : std::vector<Dims>{{}, {1}, {17}, {3, 1}, {3, 17}, {2, 3, 17}}) {
      LowerOptions o;
      o.constant_inputs = std::vector<int>{};
      o.jit = t == DType::kF32;
      EXPECT_TRUE(check_lowering(OpCall{"PRelu", {x, random_tensor(t, sd, -2, 2, 2)}}, o))
          << dtype_name(t) << " " << dims_to_string(sd);
    }
  }
  Tensor x = random_tensor(DType::kF32, {4, 33}, -10, 10, 3);
  EXPECT_TRUE(check_lowering(OpCall{"PRelu", {x, random_tensor(DType::kF32, {33}, -2, 2, 4)}},
                             dynamic_strided()));
}

TEST(LowerElementwiseBinary, Variadic) {
  // One to four inputs with mixed broadcasting.
  std::vector<Tensor> in = {
      random_tensor(DType::kF32, {3, 17}, -3, 3, 1), random_tensor(DType::kF32, {17}, -3, 3, 2),
      random_tensor(DType::kF32, {3, 1}, -3, 3, 3), random_tensor(DType::kF32, {}, -3, 3, 4)};
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) {
    for (size_t n = 1; n <= in.size(); ++n) {
      OpCall call{op, std::vector<Tensor>(in.begin(), in.begin() + long(n))};
      EXPECT_TRUE(check_lowering(call, n == 4 ? dynamic_strided() : LowerOptions{}))
          << op << " " << n;
    }
  }
  std::vector<Tensor> ints = {random_tensor(DType::kI16, {5, 7}, -99, 99, 1),
                              random_tensor(DType::kI16, {7}, -99, 99, 2),
                              random_tensor(DType::kI16, {5, 1}, -99, 99, 3)};
  LowerOptions o;
  o.constant_inputs = std::vector<int>{};
  EXPECT_TRUE(check_lowering(OpCall{"Max", ints}, o));
  EXPECT_TRUE(check_lowering(OpCall{"Min", ints}, o));
}

TEST(LowerElementwiseBinary, PowExponentTypes) {
  // Negative bases with integral exponents, and exponents of other types than the base.
  Tensor base = make<float>({6}, {-2, -1.5, 0, 0.5, 2, 3});
  EXPECT_TRUE(check_lowering(OpCall{"Pow", {base, make<float>({6}, {2, 3, 2, 3, -1, 0.5})}}));
  EXPECT_TRUE(check_lowering(OpCall{"Pow", {base, Tensor::scalar<int64_t>(3)}}));
  EXPECT_TRUE(check_lowering(OpCall{"Pow", {base, Tensor::scalar<int32_t>(2)}}, dynamic_strided()));
  EXPECT_TRUE(check_lowering(OpCall{"Pow", {base, Tensor::scalar<double>(2.0)}}));
  // Integer bases are exact by squaring in the reference: not lowered.
  LowerOptions fb;
  fb.expect_fallback = true;
  EXPECT_TRUE(
      check_lowering(OpCall{"Pow", {make<int32_t>({2}, {2, 3}), Tensor::scalar<int32_t>(2)}}, fb));
}

TEST(LowerElementwiseInt, DivModConstantDivisors) {
  // Python-sign and C-sign remainders, truncating division, INT_MIN / -1 (wraps, remainder 0).
  for (DType t : {DType::kI8, DType::kI32, DType::kI64, DType::kU8, DType::kU32}) {
    bool is_signed = dtype_is_signed_int(t);
    Tensor x = random_tensor(t, {4, 9}, -120, 120, 21);
    if (t == DType::kI8) x.data<int8_t>()[0] = -128;
    if (t == DType::kI32) x.data<int32_t>()[0] = std::numeric_limits<int32_t>::min();
    Tensor y(t, {9});
    for (int64_t k = 0; k < 9; ++k) {
      int64_t v = is_signed ? (k % 2 ? -1 : 1) * (k / 2 + 1) : k + 1;  // 1,-1,2,-2,... / 1..9
      switch (t) {
        case DType::kI8:
          y.data<int8_t>()[k] = int8_t(v);
          break;
        case DType::kI32:
          y.data<int32_t>()[k] = int32_t(v);
          break;
        case DType::kI64:
          y.data<int64_t>()[k] = v;
          break;
        case DType::kU8:
          y.data<uint8_t>()[k] = uint8_t(v);
          break;
        default:
          y.data<uint32_t>()[k] = uint32_t(v);
          break;
      }
    }
    EXPECT_TRUE(check_lowering(OpCall{"Div", {x, y}})) << dtype_name(t);
    EXPECT_TRUE(check_lowering(OpCall{"Mod", {x, y}}, interp_only())) << dtype_name(t);
    EXPECT_TRUE(check_lowering(OpCall{"Mod", {x, y}, {{"fmod", attr_int(1)}}}, interp_only()))
        << dtype_name(t);
    EXPECT_TRUE(check_lowering(OpCall{"Mod", {x, y}}, dynamic_strided())) << dtype_name(t);
  }
  // A zero divisor fails in the reference, and an unknown divisor might be zero: no kernel.
  Tensor x = random_tensor(DType::kI32, {8}, -10, 10, 2);
  EXPECT_TRUE(check_lowering(OpCall{"Div", {x, make<int32_t>({8}, {1, 2, 3, 4, 5, 6, 7, 8})}}, [] {
    LowerOptions o;
    o.expect_fallback = true;
    o.constant_inputs = std::vector<int>{};
    return o;
  }()));
  // Empty output: the zero divisor is never used, as in the reference.
  EXPECT_TRUE(
      check_lowering(OpCall{"Div", {Tensor(DType::kI32, {0, 2}), make<int32_t>({2}, {0, 1})}}));
}

TEST(LowerElementwiseInt, BitShift) {
  // ONNX defines unsigned types only; the reference shifts signed ones as their bit patterns.
  for (DType t : {DType::kU8, DType::kU16, DType::kU32, DType::kU64, DType::kI8, DType::kI32}) {
    Tensor x = random_tensor(t, {3, 11}, -120, 120, 4);
    Tensor s = random_tensor(t, {11}, 0, 70, 5);  // counts past the width give 0
    for (const char* dir : {"LEFT", "RIGHT"}) {
      LowerOptions o;
      o.constant_inputs = std::vector<int>{};
      o.jit = t == DType::kU8 || t == DType::kU64 || t == DType::kI8;
      EXPECT_TRUE(check_lowering(OpCall{"BitShift", {x, s}, {{"direction", attr_string(dir)}}}, o))
          << dtype_name(t) << " " << dir;
    }
  }
}

// ---- Cast ----

TEST(LowerElementwiseCast, EveryJitTypePair) {
  // Values that exercise truncation, NaN, infinities, negatives into unsigned types and values
  // beyond every integer range (saturating through i64, then wrapping).
  const std::vector<DType> types = {DType::kBool, DType::kI8,  DType::kU8,  DType::kI16,
                                    DType::kU16,  DType::kI32, DType::kU32, DType::kI64,
                                    DType::kU64,  DType::kF32, DType::kF64};
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> floats = {0,    -0.0, 1.5,  -1.5, 2.7,   -2.7, 127.9, 128.5,
                                      -129, 255,  256,  -1,   3e4,   7e4,  -7e4,  3e9,
                                      -3e9, 1e19, 2e19, 1e30, -1e30, inf,  -inf,  std::nan("")};
  for (DType from : types) {
    Tensor x;
    if (dtype_is_float(from)) {
      x = Tensor(from, {int64_t(floats.size())});
      for (size_t i = 0; i < floats.size(); ++i) {
        if (from == DType::kF32)
          x.data<float>()[i] = float(floats[i]);
        else
          x.data<double>()[i] = floats[i];
      }
    } else {
      x = random_tensor(from, {37}, -200, 200, 9);
    }
    for (DType to : types) {
      OpCall call{"Cast", {x}, {{"to", attr_int(int64_t(to))}}, 19};
      // The JIT runs the conversions from and to the float types and a few integer pairs.
      LowerOptions o;
      o.jit = dtype_is_float(from) || dtype_is_float(to) || from == DType::kBool ||
              (from == DType::kI64 && to == DType::kU8);
      EXPECT_TRUE(check_lowering(call, o)) << dtype_name(from) << " -> " << dtype_name(to);
    }
  }
  Tensor x = random_tensor(DType::kF32, {3, 17}, -300, 300, 3);
  EXPECT_TRUE(check_lowering(OpCall{"Cast", {x}, {{"to", attr_int(int64_t(DType::kI32))}}, 19},
                             dynamic_strided()));
  EXPECT_TRUE(check_lowering(OpCall{"CastLike", {x, Tensor(DType::kI8, {})}, {}, 19}));
  // 16-bit floats are not kernel types: the node stays on the reference.
  LowerOptions fb;
  fb.expect_fallback = true;
  EXPECT_TRUE(
      check_lowering(OpCall{"Cast", {x}, {{"to", attr_int(int64_t(DType::kF16))}}, 19}, fb));
}

// ---- what must not be lowered ----

TEST(LowerElementwiseFallback, UnusualAttributesAndTypes) {
  LowerOptions fb;
  fb.expect_fallback = true;
  Tensor h = random_tensor(DType::kF16, {4}, -1, 1, 1);
  EXPECT_TRUE(check_lowering(OpCall{"Relu", {h}}, fb));
  EXPECT_TRUE(check_lowering(OpCall{"Add", {h, h}}, fb));
  // Integer Shrink converts through double in the reference.
  EXPECT_TRUE(check_lowering(OpCall{"Shrink", {random_tensor(DType::kI32, {4}, -5, 5, 1)}}, fb));
}

}  // namespace
}  // namespace kiln::testing
