// Tests of the elementwise reference kernels: hand-computed values for each op, broadcasting,
// integer and 16-bit float types, opset variants (Clip), errors, and the symbolic dims values
// that keep shape arithmetic symbolic at load time.
#include <cmath>
#include <limits>

#include "op_test_util.h"

namespace kiln::testing {
namespace {

const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

Tensor f32(Dims d, std::vector<float> v) { return make<float>(std::move(d), std::move(v)); }
Tensor i32(Dims d, std::vector<int32_t> v) { return make<int32_t>(std::move(d), std::move(v)); }
Tensor i64(Dims d, std::vector<int64_t> v) { return make<int64_t>(std::move(d), std::move(v)); }
Tensor b8(Dims d, std::vector<bool> v) { return make<bool>(std::move(d), std::move(v)); }

Tensor run1(const std::string& op, std::vector<Tensor> in,
            std::map<std::string, ir::Attribute> attrs = {}, int opset = 18) {
  OpCall c;
  c.op = op;
  c.inputs = std::move(in);
  c.attrs = std::move(attrs);
  c.opset = opset;
  return run_op(c)[0];
}

// ---- unary ----------------------------------------------------------------------------------

TEST(OpElementwise, UnaryMath) {
  Tensor x = f32({4}, {-1.5f, -0.5f, 0.5f, 2.5f});
  EXPECT_TRUE(tensors_near(run1("Abs", {x}), f32({4}, {1.5f, 0.5f, 0.5f, 2.5f})));
  EXPECT_TRUE(tensors_near(run1("Neg", {x}), f32({4}, {1.5f, 0.5f, -0.5f, -2.5f})));
  EXPECT_TRUE(tensors_near(run1("Floor", {x}), f32({4}, {-2, -1, 0, 2})));
  EXPECT_TRUE(tensors_near(run1("Ceil", {x}), f32({4}, {-1, -0.f, 1, 3})));
  // Half to even.
  EXPECT_TRUE(tensors_near(run1("Round", {x}), f32({4}, {-2, -0.f, 0, 2})));
  EXPECT_TRUE(tensors_near(run1("Sign", {x}), f32({4}, {-1, -1, 1, 1})));
  EXPECT_TRUE(tensors_near(run1("Reciprocal", {x}), f32({4}, {-1 / 1.5f, -2, 2, 0.4f})));
  Tensor p = f32({3}, {0.25f, 1, 4});
  EXPECT_TRUE(tensors_near(run1("Sqrt", {p}), f32({3}, {0.5f, 1, 2})));
  EXPECT_TRUE(tensors_near(run1("Log", {p}), f32({3}, {std::log(0.25f), 0, std::log(4.f)})));
  EXPECT_TRUE(
      tensors_near(run1("Exp", {p}), f32({3}, {std::exp(0.25f), std::exp(1.f), std::exp(4.f)})));
  EXPECT_TRUE(tensors_near(run1("Erf", {f32({2}, {0, 1})}), f32({2}, {0, 0.8427008f})));
}

TEST(OpElementwise, Trigonometric) {
  Tensor x = f32({2}, {0.f, 0.5f});
  for (auto [op, f] :
       std::vector<std::pair<std::string, float (*)(float)>>{{"Sin", std::sin},
                                                             {"Cos", std::cos},
                                                             {"Tan", std::tan},
                                                             {"Asin", std::asin},
                                                             {"Acos", std::acos},
                                                             {"Atan", std::atan},
                                                             {"Sinh", std::sinh},
                                                             {"Cosh", std::cosh},
                                                             {"Asinh", std::asinh},
                                                             {"Atanh", std::atanh}}) {
    EXPECT_TRUE(tensors_near(run1(op, {x}), f32({2}, {f(0.f), f(0.5f)}))) << op;
  }
  EXPECT_TRUE(tensors_near(run1("Acosh", {f32({1}, {2})}), f32({1}, {std::acosh(2.f)})));
}

TEST(OpElementwise, UnaryIntegersAndHalf) {
  EXPECT_TRUE(tensors_near(run1("Abs", {make<int8_t>({3}, {-128, -3, 4})}),
                           make<int8_t>({3}, {-128, 3, 4})));  // wraps like two's complement
  EXPECT_TRUE(tensors_near(run1("Neg", {i64({2}, {5, -7})}), i64({2}, {-5, 7})));
  EXPECT_TRUE(tensors_near(run1("Sign", {i32({3}, {-9, 0, 4})}), i32({3}, {-1, 0, 1})));
  Tensor h = make<Float16>({2}, {Float16(-2.0f), Float16(0.5f)});
  EXPECT_TRUE(tensors_near(run1("Abs", {h}), make<Float16>({2}, {Float16(2.0f), Float16(0.5f)})));
  EXPECT_TRUE(tensors_near(run1("BitwiseNot", {make<uint8_t>({2}, {0, 0x0f})}),
                           make<uint8_t>({2}, {0xff, 0xf0})));
  EXPECT_TRUE(tensors_near(run1("Not", {b8({2}, {true, false})}), b8({2}, {false, true})));
}

TEST(OpElementwise, IsNaNIsInf) {
  Tensor x = f32({4}, {1, kNaN, kInf, -kInf});
  EXPECT_TRUE(tensors_near(run1("IsNaN", {x}), b8({4}, {false, true, false, false})));
  EXPECT_TRUE(tensors_near(run1("IsInf", {x}), b8({4}, {false, false, true, true})));
  EXPECT_TRUE(tensors_near(run1("IsInf", {x}, {{"detect_positive", attr_int(0)}}),
                           b8({4}, {false, false, false, true})));
  EXPECT_TRUE(tensors_near(run1("IsInf", {x}, {{"detect_negative", attr_int(0)}}),
                           b8({4}, {false, false, true, false})));
}

TEST(OpElementwise, ZeroSizeInput) {
  Tensor x = f32({0, 3}, {});
  Tensor y = run1("Exp", {x});
  EXPECT_EQ(y.dims(), (Dims{0, 3}));
  EXPECT_EQ(run1("Add", {x, f32({3}, {1, 2, 3})}).dims(), (Dims{0, 3}));
}

// ---- binary ---------------------------------------------------------------------------------

TEST(OpElementwise, ArithmeticBroadcast) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({3}, {10, 20, 30});
  EXPECT_TRUE(tensors_near(run1("Add", {a, b}), f32({2, 3}, {11, 22, 33, 14, 25, 36})));
  EXPECT_TRUE(tensors_near(run1("Sub", {a, b}), f32({2, 3}, {-9, -18, -27, -6, -15, -24})));
  EXPECT_TRUE(tensors_near(run1("Mul", {b, a}), f32({2, 3}, {10, 40, 90, 40, 100, 180})));
  EXPECT_TRUE(
      tensors_near(run1("Div", {a, f32({}, {2})}), f32({2, 3}, {0.5f, 1, 1.5f, 2, 2.5f, 3})));
  // [2,1] x [1,3] -> [2,3]
  Tensor c = f32({2, 1}, {1, 2});
  Tensor d = f32({1, 3}, {10, 20, 30});
  EXPECT_TRUE(tensors_near(run1("Add", {c, d}), f32({2, 3}, {11, 21, 31, 12, 22, 32})));
}

// The row-wise broadcast path against index arithmetic, for shapes that broadcast in the last
// dim, in middle dims, and with different ranks.
TEST(OpElementwise, BroadcastMatchesNaive) {
  const std::vector<std::pair<Dims, Dims>> cases = {{{2, 3, 4}, {3, 1}},
                                                    {{2, 1, 4}, {3, 1}},
                                                    {{4}, {2, 3, 1}},
                                                    {{2, 3, 1}, {1, 1, 5}},
                                                    {{1, 3, 1}, {2, 1, 4}}};
  for (const auto& [da, db] : cases) {
    Tensor a = random_tensor(DType::kF32, da, -1, 1, 1);
    Tensor b = random_tensor(DType::kF32, db, -1, 1, 2);
    Tensor got = run1("Sub", {a, b});
    const size_t r = std::max(da.size(), db.size());
    Dims pa(r - da.size(), 1), pb(r - db.size(), 1);
    pa.insert(pa.end(), da.begin(), da.end());
    pb.insert(pb.end(), db.begin(), db.end());
    Dims od(r);
    for (size_t k = 0; k < r; ++k) od[k] = std::max(pa[k], pb[k]);
    ASSERT_EQ(got.dims(), od);
    Dims idx(r, 0);
    for (int64_t i = 0; i < got.numel(); ++i) {
      int64_t oa = 0, ob = 0;
      for (size_t k = 0; k < r; ++k) {
        oa = oa * pa[k] + (pa[k] == 1 ? 0 : idx[k]);
        ob = ob * pb[k] + (pb[k] == 1 ? 0 : idx[k]);
      }
      ASSERT_FLOAT_EQ(got.data<float>()[i], a.data<float>()[oa] - b.data<float>()[ob])
          << dims_to_string(da) << " - " << dims_to_string(db) << " at " << i;
      for (int k = int(r) - 1; k >= 0 && ++idx[size_t(k)] == od[size_t(k)]; --k) idx[size_t(k)] = 0;
    }
  }
}

TEST(OpElementwise, IntegerArithmetic) {
  // C-style truncating division.
  EXPECT_TRUE(tensors_near(run1("Div", {i32({4}, {7, -7, 7, -7}), i32({4}, {2, 2, -2, -2})}),
                           i32({4}, {3, -3, -3, 3})));
  // Wrapping add on uint8.
  EXPECT_TRUE(tensors_near(run1("Add", {make<uint8_t>({1}, {250}), make<uint8_t>({1}, {10})}),
                           make<uint8_t>({1}, {4})));
  EXPECT_TRUE(
      tensors_near(run1("Mul", {make<uint16_t>({1}, {65535}), make<uint16_t>({1}, {65535})}),
                   make<uint16_t>({1}, {1})));
  EXPECT_THROW(run1("Div", {i32({1}, {1}), i32({1}, {0})}), Error);
}

TEST(OpElementwise, Mod) {
  Tensor a = i32({4}, {5, -5, 5, -5});
  Tensor b = i32({4}, {3, 3, -3, -3});
  EXPECT_TRUE(tensors_near(run1("Mod", {a, b}), i32({4}, {2, 1, -1, -2})));  // sign of divisor
  EXPECT_TRUE(tensors_near(run1("Mod", {a, b}, {{"fmod", attr_int(1)}}), i32({4}, {2, -2, 2, -2})));
  Tensor fa = f32({2}, {5.5f, -5.5f});
  EXPECT_TRUE(tensors_near(run1("Mod", {fa, f32({1}, {2})}, {{"fmod", attr_int(1)}}),
                           f32({2}, {1.5f, -1.5f})));
  EXPECT_THROW(run1("Mod", {fa, f32({1}, {2})}), Error);  // fmod=0 is invalid for floats
}

TEST(OpElementwise, PowMixedTypes) {
  EXPECT_TRUE(tensors_near(run1("Pow", {f32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})}),
                           f32({3}, {1, 32, 729})));
  EXPECT_TRUE(tensors_near(run1("Pow", {f32({2}, {2, 4}), i64({}, {2})}), f32({2}, {4, 16})));
  EXPECT_TRUE(tensors_near(run1("Pow", {i64({3}, {2, 3, -2}), i64({3}, {10, 2, 3})}),
                           i64({3}, {1024, 9, -8})));
  EXPECT_TRUE(
      tensors_near(run1("Pow", {i32({2}, {2, 4}), f32({2}, {0.5f, 0.5f})}), i32({2}, {1, 2})));
  EXPECT_TRUE(tensors_near(run1("Pow", {f32({1}, {4}), f32({1}, {0.5f})}), f32({1}, {2})));
}

TEST(OpElementwise, VariadicSumMeanMaxMin) {
  Tensor a = f32({3}, {3, 2, 1});
  Tensor b = f32({3}, {1, 4, 4});
  Tensor c = f32({1}, {2});
  EXPECT_TRUE(tensors_near(run1("Sum", {a, b, c}), f32({3}, {6, 8, 7})));
  EXPECT_TRUE(tensors_near(run1("Mean", {a, b, c}), f32({3}, {2, 8.f / 3, 7.f / 3})));
  EXPECT_TRUE(tensors_near(run1("Max", {a, b, c}), f32({3}, {3, 4, 4})));
  EXPECT_TRUE(tensors_near(run1("Min", {a, b, c}), f32({3}, {1, 2, 1})));
  EXPECT_TRUE(tensors_near(run1("Sum", {a}), a));
  EXPECT_TRUE(tensors_near(run1("Max", {i32({2}, {-1, 5}), i32({2, 1}, {0, 7})}),
                           i32({2, 2}, {0, 5, 7, 7})));
  EXPECT_TRUE(
      tensors_near(run1("Max", {f32({2}, {kNaN, 1}), f32({2}, {0, 2})}), f32({2}, {kNaN, 2})));
}

TEST(OpElementwise, Comparisons) {
  Tensor a = f32({3}, {1, 2, 3});
  Tensor b = f32({}, {2});
  EXPECT_TRUE(tensors_near(run1("Equal", {a, b}), b8({3}, {false, true, false})));
  EXPECT_TRUE(tensors_near(run1("Less", {a, b}), b8({3}, {true, false, false})));
  EXPECT_TRUE(tensors_near(run1("LessOrEqual", {a, b}), b8({3}, {true, true, false})));
  EXPECT_TRUE(tensors_near(run1("Greater", {a, b}), b8({3}, {false, false, true})));
  EXPECT_TRUE(tensors_near(run1("GreaterOrEqual", {a, b}), b8({3}, {false, true, true})));
  Tensor s1 = make<std::string>({2}, {"a", "bc"});
  Tensor s2 = make<std::string>({2}, {"a", "b"});
  EXPECT_TRUE(tensors_near(run1("Equal", {s1, s2}, {}, 19), b8({2}, {true, false})));
  EXPECT_TRUE(tensors_near(run1("Less", {make<uint64_t>({1}, {1}), make<uint64_t>({1}, {2})}),
                           b8({1}, {true})));
  EXPECT_THROW(run1("Less", {a, i32({1}, {1})}), Error);  // mixed types
}

TEST(OpElementwise, LogicAndBits) {
  Tensor a = b8({4}, {false, false, true, true});
  Tensor b = b8({4}, {false, true, false, true});
  EXPECT_TRUE(tensors_near(run1("And", {a, b}), b8({4}, {false, false, false, true})));
  EXPECT_TRUE(tensors_near(run1("Or", {a, b}), b8({4}, {false, true, true, true})));
  EXPECT_TRUE(tensors_near(run1("Xor", {a, b}), b8({4}, {false, true, true, false})));
  Tensor x = make<uint8_t>({3}, {16, 4, 1});
  Tensor s = make<uint8_t>({3}, {1, 2, 9});
  EXPECT_TRUE(tensors_near(run1("BitShift", {x, s}, {{"direction", attr_string("RIGHT")}}),
                           make<uint8_t>({3}, {8, 1, 0})));
  EXPECT_TRUE(tensors_near(run1("BitShift", {x, s}, {{"direction", attr_string("LEFT")}}),
                           make<uint8_t>({3}, {32, 16, 0})));
  EXPECT_THROW(run1("BitShift", {x, s}, {{"direction", attr_string("UP")}}), Error);
  Tensor p = i32({2}, {0b1100, -1});
  Tensor q = i32({2}, {0b1010, 5});
  EXPECT_TRUE(tensors_near(run1("BitwiseAnd", {p, q}), i32({2}, {0b1000, 5})));
  EXPECT_TRUE(tensors_near(run1("BitwiseOr", {p, q}), i32({2}, {0b1110, -1})));
  EXPECT_TRUE(tensors_near(run1("BitwiseXor", {p, q}), i32({2}, {0b0110, -6})));
}

TEST(OpElementwise, BroadcastErrors) {
  EXPECT_THROW(run1("Add", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({2}, {1, 2})}), Error);
  EXPECT_THROW(run1("Where", {b8({2}, {true, false}), f32({3}, {1, 2, 3}), f32({1}, {0})}), Error);
  EXPECT_THROW(run1("And", {f32({1}, {1}), f32({1}, {1})}), Error);
}

// ---- activations ----------------------------------------------------------------------------

TEST(OpElementwise, Activations) {
  Tensor x = f32({3}, {-1, 0, 2});
  auto near = [&](const std::string& op, std::vector<float> want,
                  std::map<std::string, ir::Attribute> attrs = {}, int opset = 18) {
    EXPECT_TRUE(tensors_near(run1(op, {x}, attrs, opset), f32({3}, want))) << op;
  };
  const float e = std::exp(-1.f);
  near("Relu", {0, 0, 2});
  near("LeakyRelu", {-0.01f, 0, 2});
  near("LeakyRelu", {-0.5f, 0, 2}, {{"alpha", attr_float(0.5f)}});
  near("Sigmoid", {1 / (1 + 1 / e), 0.5f, 1 / (1 + std::exp(-2.f))});
  near("HardSigmoid", {0.3f, 0.5f, 0.9f});
  near("HardSwish", {-1 * (1 / 3.f), 0, 2 * (5 / 6.f)});
  near("Tanh", {std::tanh(-1.f), 0, std::tanh(2.f)});
  near("Elu", {e - 1, 0, 2});
  near("Selu", {1.0507010f * 1.6732632f * (e - 1), 0, 1.0507010f * 2});
  near("Celu", {e - 1, 0, 2});
  near("Softplus", {std::log1p(e), std::log(2.f), std::log1p(std::exp(2.f))});
  near("Softsign", {-0.5f, 0, 2 / 3.f});
  near("ThresholdedRelu", {0, 0, 2});
  near("ThresholdedRelu", {0, 0, 0}, {{"alpha", attr_float(2.f)}});
  near("Gelu", {-0.15865526f, 0, 1.9544997f}, {}, 20);
  near("Gelu", {-0.15880801f, 0, 1.9545977f}, {{"approximate", attr_string("tanh")}}, 20);
  near("Mish", {-1 * std::tanh(std::log1p(e)), 0, 2 * std::tanh(std::log1p(std::exp(2.f)))});
  near("Swish", {-1 / (1 + 1 / e), 0, 2 / (1 + std::exp(-2.f))}, {}, 24);
  near("Shrink", {-1, 0, 2}, {{"lambd", attr_float(0.5f)}}, 9);
  near("Shrink", {-0.5f, 0, 1.5f}, {{"bias", attr_float(0.5f)}}, 9);
  EXPECT_THROW(run1("Gelu", {x}, {{"approximate", attr_string("fast")}}, 20), Error);
  EXPECT_TRUE(tensors_near(run1("Relu", {make<int8_t>({2}, {-3, 3})}), make<int8_t>({2}, {0, 3})));
  EXPECT_TRUE(tensors_near(run1("Relu", {f32({1}, {kNaN})}), f32({1}, {kNaN})));
}

TEST(OpElementwise, PRelu) {
  Tensor x = f32({2, 2}, {-1, 2, -3, 4});
  EXPECT_TRUE(
      tensors_near(run1("PRelu", {x, f32({2}, {0.1f, 0.2f})}), f32({2, 2}, {-0.1f, 2, -0.3f, 4})));
  EXPECT_TRUE(
      tensors_near(run1("PRelu", {x, f32({2, 1}, {0.5f, 2})}), f32({2, 2}, {-0.5f, 2, -6, 4})));
  // The slope must broadcast to X, not the other way.
  EXPECT_THROW(run1("PRelu", {f32({2}, {1, 2}), f32({2, 2}, {1, 2, 3, 4})}), Error);
}

TEST(OpElementwise, ClipOpsetVariants) {
  Tensor x = f32({4}, {-2, -0.5f, 0.5f, 2});
  // Opset 6: attributes.
  EXPECT_TRUE(tensors_near(run1("Clip", {x}, {{"min", attr_float(-1)}, {"max", attr_float(1)}}, 6),
                           f32({4}, {-1, -0.5f, 0.5f, 1})));
  EXPECT_TRUE(
      tensors_near(run1("Clip", {x}, {{"max", attr_float(0)}}, 6), f32({4}, {-2, -0.5f, 0, 0})));
  // Opset 11+: optional inputs.
  EXPECT_TRUE(tensors_near(run1("Clip", {x, f32({}, {-1}), f32({}, {1})}, {}, 13),
                           f32({4}, {-1, -0.5f, 0.5f, 1})));
  EXPECT_TRUE(
      tensors_near(run1("Clip", {x, Tensor(), f32({}, {0})}, {}, 13), f32({4}, {-2, -0.5f, 0, 0})));
  EXPECT_TRUE(tensors_near(run1("Clip", {x}, {}, 13), x));
  // min > max: everything becomes max.
  EXPECT_TRUE(
      tensors_near(run1("Clip", {x, f32({}, {1}), f32({}, {0})}, {}, 13), f32({4}, {0, 0, 0, 0})));
  EXPECT_TRUE(tensors_near(
      run1("Clip",
           {make<int8_t>({3}, {-100, 5, 100}), make<int8_t>({}, {-10}), make<int8_t>({}, {10})}, {},
           13),
      make<int8_t>({3}, {-10, 5, 10})));
  EXPECT_THROW(run1("Clip", {x, f32({2}, {0, 1})}, {}, 13), Error);
}

// ---- Cast, CastLike, Where ------------------------------------------------------------------

TEST(OpElementwise, Cast) {
  auto cast = [](Tensor x, DType to) {
    return run1("Cast", {std::move(x)}, {{"to", attr_int(int64_t(to))}}, 19);
  };
  Tensor x = f32({5}, {-1.7f, -0.5f, 0, 2.9f, 300});
  EXPECT_TRUE(tensors_near(cast(x, DType::kI32), i32({5}, {-1, 0, 0, 2, 300})));
  EXPECT_TRUE(tensors_near(cast(x, DType::kBool), b8({5}, {true, true, false, true, true})));
  EXPECT_TRUE(tensors_near(cast(x, DType::kF64), make<double>({5}, {-1.7f, -0.5f, 0, 2.9f, 300})));
  EXPECT_TRUE(tensors_near(cast(i32({2}, {257, -1}), DType::kU8), make<uint8_t>({2}, {1, 255})));
  EXPECT_TRUE(tensors_near(cast(b8({2}, {true, false}), DType::kF32), f32({2}, {1, 0})));
  EXPECT_TRUE(tensors_near(cast(f32({1}, {1.0f + 1.0f / 4096}), DType::kF16),
                           make<Float16>({1}, {Float16(1.0f)})));  // rounds to nearest even
  EXPECT_TRUE(tensors_near(cast(f32({1}, {kNaN}), DType::kI32), i32({1}, {0})));
  // Strings.
  Tensor s = make<std::string>({4}, {"1.5", "-INF", "NaN", "1e2"});
  EXPECT_TRUE(tensors_near(cast(s, DType::kF32), f32({4}, {1.5f, -kInf, kNaN, 100})));
  EXPECT_TRUE(tensors_near(cast(make<std::string>({2}, {"-7", "9007199254740993"}), DType::kI64),
                           i64({2}, {-7, 9007199254740993})));
  EXPECT_TRUE(tensors_near(cast(f32({4}, {1.5f, -kInf, kNaN, 0.1f}), DType::kString),
                           make<std::string>({4}, {"1.5", "-INF", "NaN", "0.1"})));
  EXPECT_TRUE(tensors_near(cast(i64({1}, {-42}), DType::kString), make<std::string>({1}, {"-42"})));
  EXPECT_THROW(cast(make<std::string>({1}, {"abc"}), DType::kF32), Error);
  // float8 (17) is not supported.
  EXPECT_THROW(run1("Cast", {x}, {{"to", attr_int(17)}}, 19), Error);
}

TEST(OpElementwise, CastLike) {
  Tensor x = f32({2}, {1.5f, -2.5f});
  EXPECT_TRUE(tensors_near(run1("CastLike", {x, i64({0}, {})}, {}, 15), i64({2}, {1, -2})));
  EXPECT_TRUE(tensors_near(run1("CastLike", {x, make<double>({1}, {0})}, {}, 15),
                           make<double>({2}, {1.5, -2.5})));
}

TEST(OpElementwise, Where) {
  Tensor c = b8({2, 2}, {true, false, false, true});
  EXPECT_TRUE(tensors_near(run1("Where", {c, f32({2, 2}, {1, 2, 3, 4}), f32({}, {0})}),
                           f32({2, 2}, {1, 0, 0, 4})));
  // Three-way broadcast: [2,1] x [2] x [1].
  EXPECT_TRUE(
      tensors_near(run1("Where", {b8({2, 1}, {true, false}), i64({2}, {1, 2}), i64({1}, {9})}),
                   i64({2, 2}, {1, 2, 9, 9})));
  EXPECT_TRUE(tensors_near(run1("Where", {b8({1}, {false}), make<std::string>({1}, {"x"}),
                                          make<std::string>({1}, {"y"})}),
                           make<std::string>({1}, {"y"})));
}

// ---- shape inference on symbolic shapes -----------------------------------------------------

TEST(OpElementwise, SymbolicBroadcastShape) {
  ir::Graph g;
  g.opsets[""] = 18;
  ir::Value a;
  a.name = "a";
  a.dtype = DType::kF32;
  a.shape = ir::Shape({ir::Dim::sym("batch"), ir::Dim::constant(1), ir::Dim::constant(4)});
  a.is_graph_input = true;
  ir::Value b = a;
  b.name = "b";
  b.shape = ir::Shape({ir::Dim::sym("seq"), ir::Dim::constant(1)});
  ir::Value o;
  o.name = "o";
  o.producer = 0;
  int ia = g.add_value(a), ib = g.add_value(b), io = g.add_value(o);
  g.inputs = {ia, ib};
  g.outputs = {io};
  ir::Node n;
  n.name = "add";
  n.op_type = "Add";
  n.opset = 18;
  n.inputs = {ia, ib};
  n.outputs = {io};
  n.schema = kernels::Registry::global().find("", "Add", 18);
  g.nodes.push_back(n);
  ir::infer_shapes(g);
  EXPECT_EQ(
      g.values[size_t(io)].shape.to_string(),
      ir::Shape({ir::Dim::sym("batch"), ir::Dim::sym("seq"), ir::Dim::constant(4)}).to_string());
}

// Runs one binary int node at load time with input 0's dims value given symbolically.
std::optional<std::vector<ir::Dim>> dims_value_of(const std::string& op, std::vector<ir::Dim> lhs,
                                                  Tensor rhs,
                                                  std::map<std::string, ir::Attribute> attrs = {}) {
  ir::Graph g;
  g.opsets[""] = 18;
  ir::Value a;
  a.name = "a";
  a.dtype = DType::kI64;
  a.shape = ir::Shape({ir::Dim::constant(int64_t(lhs.size()))});
  a.dims_value = std::move(lhs);
  a.is_graph_input = true;
  int ia = g.add_value(a);
  std::vector<int> ins = {ia};
  if (rhs.defined()) {
    ir::Value b;
    b.name = "b";
    b.dtype = rhs.dtype();
    b.shape = ir::Shape::of(rhs.dims());
    b.constant = rhs;
    ins.push_back(g.add_value(b));
  }
  ir::Value o;
  o.name = "o";
  o.producer = 0;
  int io = g.add_value(o);
  g.inputs = {ia};
  g.outputs = {io};
  ir::Node n;
  n.name = "n";
  n.op_type = op;
  n.opset = 18;
  n.inputs = ins;
  n.outputs = {io};
  n.attrs = std::move(attrs);
  n.schema = kernels::Registry::global().find("", op, 18);
  g.nodes.push_back(n);
  ir::infer_shapes(g);
  return g.values[size_t(io)].dims_value;
}

TEST(OpElementwise, SymbolicDimsValueArithmetic) {
  const ir::Dim batch = ir::Dim::sym("batch"), seq = ir::Dim::sym("seq");
  auto mul = dims_value_of("Mul", {batch, seq}, i64({}, {4}));
  ASSERT_TRUE(mul.has_value());
  ASSERT_EQ(mul->size(), 2u);
  EXPECT_EQ((*mul)[0], ir::dim_mul(batch, ir::Dim::constant(4)));
  EXPECT_EQ((*mul)[1], ir::dim_mul(seq, ir::Dim::constant(4)));
  auto add = dims_value_of("Add", {batch, ir::Dim::constant(3)}, i64({2}, {0, 5}));
  ASSERT_TRUE(add.has_value());
  EXPECT_EQ((*add)[0], batch);
  EXPECT_EQ((*add)[1], ir::Dim::constant(8));
  auto sub = dims_value_of("Sub", {seq}, i64({1}, {1}));
  ASSERT_TRUE(sub.has_value());
  EXPECT_EQ((*sub)[0], ir::dim_sub(seq, ir::Dim::constant(1)));
  auto div = dims_value_of("Div", {batch, ir::Dim::constant(12)}, i64({}, {4}));
  ASSERT_TRUE(div.has_value());
  EXPECT_EQ((*div)[0], ir::dim_div(batch, ir::Dim::constant(4)));
  EXPECT_EQ((*div)[1], ir::Dim::constant(3));
  auto mx = dims_value_of("Max", {ir::Dim::constant(2), batch}, i64({}, {3}));
  ASSERT_TRUE(mx.has_value());
  EXPECT_EQ((*mx)[0], ir::Dim::constant(3));
  EXPECT_TRUE((*mx)[1].is_unknown());
  auto cast = dims_value_of("Cast", {batch, ir::Dim::constant(7)}, Tensor(),
                            {{"to", attr_int(int64_t(DType::kI32))}});
  ASSERT_TRUE(cast.has_value());
  EXPECT_EQ((*cast)[0], batch);
  EXPECT_EQ((*cast)[1], ir::Dim::constant(7));
  // Float arithmetic has no dims value.
  EXPECT_FALSE(dims_value_of("Cast", {batch}, Tensor(), {{"to", attr_int(1)}}).has_value());
}

}  // namespace
}  // namespace kiln::testing
