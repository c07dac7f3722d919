// Lowerings of the elementwise and broadcast ops: arithmetic, comparisons, logic and bit ops,
// unary math, activations, Clip, PRelu and Cast/CastLike (Identity is a movement lowering).
//
// Each is one loop nest over the output (loop_nest: parallel outer loops, vectorized inner loop)
// whose body loads every input at its numpy-broadcast index and stores f(inputs). The bodies
// mirror the reference kernels (src/kernels/ref/elementwise_*.cc) operation by operation, so
// results agree to the rounding of the math intrinsics:
// - std::min/std::max of the reference are written as the selects they are (`b < a ? b : a`),
//   which is what makes HardSigmoid map NaN to 1 and Clip(-inf) give the lowest finite value;
//   kMin/kMax (NaN-propagating) serve the ops whose reference propagates NaN (Max, Min).
// - expm1 and log1p, which the IR lacks, use Kahan's correction on exp/log (accurate to a few ulp
//   near 0, where exp(x) - 1 would lose every digit).
// - Integer Div and Mod fail in the reference on a zero divisor, so they are lowered only with a
//   constant divisor free of zeros; INT_MIN / -1 is kept off the hardware divide by a select.
// - Float -> integer casts saturate through i64 (NaN -> 0) as ew::float_to_int does, since the
//   IR leaves out-of-range conversions unspecified.
// Anything else (f16/bf16, strings, mismatched types, shapes that do not broadcast, unknown
// attribute values) returns nullopt and runs on the reference kernel.
#include <cmath>
#include <limits>

#include "kernels/lower/lower.h"

namespace kiln::kernels {
namespace {

using jit::BinaryOp;
using jit::Expr;
using jit::ScalarType;
using jit::Stmt;
using jit::UnaryOp;
using Body = std::function<Expr(const std::vector<Expr>&)>;

// Work per element for the parallel split: transcendental bodies cost about this many adds.
constexpr int64_t kMathWork = 8;

bool same_dim(const Expr& a, const Expr& b) {
  if (a->is_int_imm() || b->is_int_imm()) return a->is_int_imm() && b->is_int_imm(a->ival);
  return a == b || jit::print(a) == jit::print(b);
}

// True when `in` broadcasts (numpy, right-aligned) to exactly `out`'s dims.
bool broadcasts_to(const TensorArg& in, const TensorArg& out) {
  if (in.rank() > out.rank()) return false;
  size_t off = size_t(out.rank() - in.rank());
  for (size_t d = 0; d < in.dims.size(); ++d)
    if (!in.dims[d]->is_int_imm(1) && !same_dim(in.dims[d], out.dims[off + d])) return false;
  return true;
}

// True when every output dim is 1 or the dim of one of `inputs` (the output is their broadcast).
bool output_is_broadcast_of(const LowerContext& ctx, const std::vector<int>& inputs) {
  const TensorArg& out = ctx.output(0);
  for (size_t d = 0; d < out.dims.size(); ++d) {
    if (out.dims[d]->is_int_imm(1)) continue;
    bool found = false;
    for (int i : inputs) {
      const TensorArg& a = ctx.input(i);
      size_t off = size_t(out.rank() - a.rank());
      if (d >= off && same_dim(a.dims[d - off], out.dims[d])) found = true;
    }
    if (!found) return false;
  }
  return true;
}

// out0 = f(loaded inputs) over out0's dims, each input read at its broadcast index.
std::optional<jit::Kernel> map_kernel(LowerContext& ctx, const std::vector<int>& inputs,
                                      const Body& f, int64_t work = 1) {
  if (ctx.num_outputs() < 1) return std::nullopt;
  const TensorArg& out = ctx.output(0);
  for (int i : inputs)
    if (!ctx.has_input(i) || !broadcasts_to(ctx.input(i), out)) return std::nullopt;
  if (!output_is_broadcast_of(ctx, inputs)) return std::nullopt;
  if (MapCapture* cap = ctx.capture()) {
    std::vector<Expr> v;
    for (int i : inputs) {
      if (size_t(i) >= cap->args.size() || !cap->args[size_t(i)]) return std::nullopt;
      v.push_back(cap->args[size_t(i)]);
    }
    cap->result = f(v);
    cap->work = work;
    return jit::Kernel{};
  }
  Stmt body = loop_nest(
      ctx, out.dims,
      [&](const std::vector<Expr>& idx) {
        std::vector<Expr> v;
        for (int i : inputs) v.push_back(ctx.load_input(i, ctx.broadcast_index(i, idx)));
        return ctx.store_output(0, idx, f(v));
      },
      true, work);
  return ctx.finish(body, ctx.node().op_type);
}

// ---- type predicates ----

bool float_type(ScalarType t) { return jit::is_float(t); }
bool is_numeric(ScalarType t) { return jit::is_float(t) || jit::is_int(t); }

// Inputs `inputs` present, all of one type accepted by `ok`, and output 0 of type `out` (or the
// inputs' type when out is nullopt).
bool types_are(const LowerContext& ctx, const std::vector<int>& inputs, bool (*ok)(ScalarType),
               std::optional<ScalarType> out = std::nullopt) {
  if (inputs.empty() || ctx.num_outputs() < 1) return false;
  for (int i : inputs)
    if (!ctx.has_input(i)) return false;
  ScalarType t = ctx.input(inputs[0]).type;
  if (!ok(t)) return false;
  for (int i : inputs)
    if (ctx.input(i).type != t) return false;
  return ctx.output(0).type == out.value_or(t);
}

// ---- expression helpers mirroring the reference's C++ ----

Expr c(double v, ScalarType t) { return jit::constant(v, t); }
// A float attribute as the reference applies it: float, widened to the compute type.
Expr attr_c(float v, ScalarType t) { return jit::fimm(double(v), t); }
Expr lt(Expr a, Expr b) { return jit::binary(BinaryOp::kLt, std::move(a), std::move(b)); }
Expr gt(Expr a, Expr b) { return jit::binary(BinaryOp::kGt, std::move(a), std::move(b)); }
Expr le(Expr a, Expr b) { return jit::binary(BinaryOp::kLe, std::move(a), std::move(b)); }
Expr ge(Expr a, Expr b) { return jit::binary(BinaryOp::kGe, std::move(a), std::move(b)); }
Expr eq(Expr a, Expr b) { return jit::binary(BinaryOp::kEq, std::move(a), std::move(b)); }
Expr un(UnaryOp op, Expr a) { return jit::unary(op, std::move(a)); }
// std::min(a, b) and std::max(a, b): `b < a ? b : a` and `a < b ? b : a`.
Expr std_min(const Expr& a, const Expr& b) { return jit::select(lt(b, a), b, a); }
Expr std_max(const Expr& a, const Expr& b) { return jit::select(lt(a, b), b, a); }

// expm1 by Kahan's method: u = exp(x); (u - 1) * x / log(u), exact where u rounds to 1.
Expr expm1(const Expr& x) {
  ScalarType t = x->type;
  Expr u = un(UnaryOp::kExp, x);
  Expr um1 = u - c(1, t);
  Expr general = um1 * x / un(UnaryOp::kLog, u);
  Expr inf = c(std::numeric_limits<double>::infinity(), t);
  return jit::select(eq(u, c(1, t)), x,
                     jit::select(eq(um1, c(-1, t)), c(-1, t), jit::select(eq(u, inf), u, general)));
}

// log1p by Goldberg's method: w = 1 + u; log(w) * u / (w - 1), exact where w rounds to 1.
Expr log1p(const Expr& u) {
  ScalarType t = u->type;
  Expr w = c(1, t) + u;
  Expr inf = c(std::numeric_limits<double>::infinity(), t);
  return jit::select(eq(w, c(1, t)), u,
                     jit::select(eq(w, inf), w, un(UnaryOp::kLog, w) * u / (w - c(1, t))));
}

// The reference's softplus: x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)).
Expr softplus(const Expr& x) {
  Expr pos = gt(x, c(0, x->type));
  Expr l = log1p(un(UnaryOp::kExp, jit::select(pos, un(UnaryOp::kNeg, x), x)));
  return jit::select(pos, x + l, l);
}

// The reference's sigmoid (overflow-free form): the IR intrinsic computes the same function.
Expr sigmoid(const Expr& x) { return un(UnaryOp::kSigmoid, x); }

// ew::float_to_int: NaN -> 0, saturation at the i64 (u64 for u64) range, then wrap to `to`.
Expr float_to_int(const Expr& v, ScalarType to) {
  ScalarType t = v->type;
  const double two63 = 9223372036854775808.0;
  Expr i64 =
      jit::select(ge(v, c(two63, t)), jit::imm(std::numeric_limits<int64_t>::max()),
                  jit::select(lt(v, c(-two63, t)), jit::imm(std::numeric_limits<int64_t>::min()),
                              jit::cast(ScalarType::kI64, v)));
  Expr r = jit::cast(to, i64);
  if (to == ScalarType::kU64) {
    Expr big = jit::select(ge(v, c(2 * two63, t)), jit::imm(-1, ScalarType::kU64),  // UINT64_MAX
                           jit::cast(ScalarType::kU64, v));
    r = jit::select(ge(v, c(two63, t)), big, r);
  }
  return jit::select(jit::binary(BinaryOp::kNe, v, v), jit::imm(0, to), r);
}

// The reference's Cast of one element (neither side a string).
Expr convert(const Expr& v, ScalarType to) {
  ScalarType from = v->type;
  if (from == to) return v;
  if (to == ScalarType::kBool) return jit::binary(BinaryOp::kNe, v, c(0, from));
  if (jit::is_int(to) && jit::is_float(from)) return float_to_int(v, to);
  return jit::cast(to, v);  // int -> int wraps; -> float rounds once; bool -> 0/1
}

// ---- registration helpers ----

void add_map(Lowerings& l, const std::string& op, std::vector<int> inputs, bool (*ok)(ScalarType),
             std::function<Body(LowerContext&)> make, int64_t work = 1) {
  l.add("", op, [inputs, ok, make, work](LowerContext& ctx) -> std::optional<jit::Kernel> {
    if (!types_are(ctx, inputs, ok)) return std::nullopt;
    Body f = make(ctx);
    if (!f) return std::nullopt;
    return map_kernel(ctx, inputs, f, work);
  });
}

void add_unary(Lowerings& l, const std::string& op, bool (*ok)(ScalarType),
               std::function<Expr(const Expr&)> f, int64_t work = 1) {
  add_map(
      l, op, {0}, ok,
      [f](LowerContext&) -> Body { return [f](const std::vector<Expr>& v) { return f(v[0]); }; },
      work);
}

void add_binary(Lowerings& l, const std::string& op, bool (*ok)(ScalarType),
                std::function<Expr(const Expr&, const Expr&)> f, int64_t work = 1) {
  add_map(
      l, op, {0, 1}, ok,
      [f](LowerContext&) -> Body {
        return [f](const std::vector<Expr>& v) { return f(v[0], v[1]); };
      },
      work);
}

// ---- arithmetic ----

// A constant integer divisor (input 1) that is never zero, or the output is empty.
bool divisor_is_safe(const LowerContext& ctx) {
  for (const auto& d : ctx.output(0).dims)
    if (d->is_int_imm(0)) return true;
  const Tensor* t = ctx.constant(1);
  if (!t) return false;
  for (int64_t k = 0; k < t->numel(); ++k)
    if (t->element_as_int(k) == 0) return false;
  return true;
}

// Integer x / y and x % y with INT_MIN / -1 defined as the reference does (wrap; remainder 0).
Expr int_div(const Expr& x, const Expr& y) {
  if (!jit::is_signed_int(x->type)) return x / y;
  Expr m1 = eq(y, c(-1, y->type));
  return jit::select(m1, un(UnaryOp::kNeg, x), x / jit::select(m1, c(1, y->type), y));
}
Expr int_rem(const Expr& x, const Expr& y) {
  if (!jit::is_signed_int(x->type)) return x % y;
  Expr m1 = eq(y, c(-1, y->type));
  return jit::select(m1, c(0, x->type), x % jit::select(m1, c(1, y->type), y));
}

void register_arithmetic(Lowerings& l) {
  add_binary(l, "Add", is_numeric, [](const Expr& a, const Expr& b) { return a + b; });
  add_binary(l, "Sub", is_numeric, [](const Expr& a, const Expr& b) { return a - b; });
  add_binary(l, "Mul", is_numeric, [](const Expr& a, const Expr& b) { return a * b; });
  add_map(l, "Div", {0, 1}, is_numeric, [](LowerContext& ctx) -> Body {
    if (jit::is_int(ctx.input(0).type) && !divisor_is_safe(ctx)) return nullptr;
    return [](const std::vector<Expr>& v) {
      return jit::is_int(v[0]->type) ? int_div(v[0], v[1]) : v[0] / v[1];
    };
  });
  add_map(l, "Mod", {0, 1}, is_numeric, [](LowerContext& ctx) -> Body {
    const bool c_style = ctx.attrs().attr_int("fmod", 0) != 0;
    ScalarType t = ctx.input(0).type;
    if (jit::is_float(t) && !c_style) return nullptr;  // the reference rejects it
    if (jit::is_int(t) && !divisor_is_safe(ctx)) return nullptr;
    return [c_style](const std::vector<Expr>& v) {
      const Expr &x = v[0], &y = v[1];
      ScalarType t = x->type;
      Expr r = jit::is_float(t) ? x % y : int_rem(x, y);
      if (c_style || (!jit::is_float(t) && !jit::is_signed_int(t))) return r;
      // Python sign: r != 0 && (r < 0) != (y < 0) ? r + y : r.
      Expr zero = c(0, t);
      Expr fix = jit::binary(BinaryOp::kAnd, jit::binary(BinaryOp::kNe, r, zero),
                             jit::binary(BinaryOp::kNe, lt(r, zero), lt(y, zero)));
      return jit::select(fix, r + y, r);
    };
  });
  // Pow: float bases only (integer powers are exact by squaring in the reference); the
  // exponent, of any numeric type, is converted to the base's type.
  l.add("", "Pow", [](LowerContext& ctx) -> std::optional<jit::Kernel> {
    if (!ctx.has_input(0) || !ctx.has_input(1)) return std::nullopt;
    ScalarType t = ctx.input(0).type;
    if (!jit::is_float(t) || !is_numeric(ctx.input(1).type) || ctx.output(0).type != t)
      return std::nullopt;
    return map_kernel(
        ctx, {0, 1},
        [t](const std::vector<Expr>& v) {
          return jit::binary(BinaryOp::kPow, v[0], jit::cast(t, v[1]));
        },
        kMathWork);
  });
}

// Variadic Sum/Mean (floats) and Max/Min (numbers), folded left over the inputs like the
// reference; Mean divides the sum by the input count.
void add_variadic(Lowerings& l, const std::string& op, bool floats_only, bool mean, BinaryOp fold) {
  l.add("", op, [=](LowerContext& ctx) -> std::optional<jit::Kernel> {
    std::vector<int> inputs;
    for (int i = 0; i < ctx.num_inputs(); ++i) inputs.push_back(i);
    if (!types_are(ctx, inputs, floats_only ? float_type : is_numeric)) return std::nullopt;
    return map_kernel(ctx, inputs, [=](const std::vector<Expr>& v) {
      Expr acc = v[0];
      for (size_t k = 1; k < v.size(); ++k) acc = jit::binary(fold, acc, v[k]);
      if (mean) acc = acc / c(double(v.size()), acc->type);
      return acc;
    });
  });
}

// ---- comparisons, logic, bits ----

bool is_bool(ScalarType t) { return t == ScalarType::kBool; }
bool is_any(ScalarType) { return true; }
bool is_int_type(ScalarType t) { return jit::is_int(t); }

void add_compare(Lowerings& l, const std::string& op, BinaryOp cmp, bool (*ok)(ScalarType)) {
  l.add("", op, [=](LowerContext& ctx) -> std::optional<jit::Kernel> {
    if (!types_are(ctx, {0, 1}, ok, ScalarType::kBool)) return std::nullopt;
    return map_kernel(ctx, {0, 1},
                      [=](const std::vector<Expr>& v) { return jit::binary(cmp, v[0], v[1]); });
  });
}

// x << y / x >> y on the unsigned bit pattern; shifts by the width or more give 0.
Expr bit_shift(const Expr& x, const Expr& y, bool left) {
  ScalarType t = x->type;
  ScalarType u = t;
  switch (t) {
    case ScalarType::kI8:
      u = ScalarType::kU8;
      break;
    case ScalarType::kI16:
      u = ScalarType::kU16;
      break;
    case ScalarType::kI32:
      u = ScalarType::kU32;
      break;
    case ScalarType::kI64:
      u = ScalarType::kU64;
      break;
    default:
      break;
  }
  Expr ux = jit::cast(u, x), uy = jit::cast(u, y);
  Expr shifted = jit::binary(left ? BinaryOp::kShl : BinaryOp::kShr, ux, uy);
  Expr r = jit::select(ge(uy, c(jit::type_bytes(t) * 8, u)), c(0, u), shifted);
  return jit::cast(t, r);
}

void register_logic(Lowerings& l) {
  add_compare(l, "Equal", BinaryOp::kEq, is_any);
  add_compare(l, "Less", BinaryOp::kLt, is_numeric);
  add_compare(l, "Greater", BinaryOp::kGt, is_numeric);
  add_compare(l, "LessOrEqual", BinaryOp::kLe, is_numeric);
  add_compare(l, "GreaterOrEqual", BinaryOp::kGe, is_numeric);
  auto bin = [](BinaryOp op) {
    return [op](const Expr& a, const Expr& b) { return jit::binary(op, a, b); };
  };
  add_binary(l, "And", is_bool, bin(BinaryOp::kAnd));
  add_binary(l, "Or", is_bool, bin(BinaryOp::kOr));
  add_binary(l, "Xor", is_bool, bin(BinaryOp::kNe));
  add_binary(l, "BitwiseAnd", is_int_type, bin(BinaryOp::kAnd));
  add_binary(l, "BitwiseOr", is_int_type, bin(BinaryOp::kOr));
  add_binary(l, "BitwiseXor", is_int_type, bin(BinaryOp::kXor));
  add_map(l, "BitShift", {0, 1}, is_int_type, [](LowerContext& ctx) -> Body {
    std::string dir = ctx.attrs().attr_string("direction", "");
    if (dir != "LEFT" && dir != "RIGHT") return nullptr;
    bool left = dir == "LEFT";
    return [left](const std::vector<Expr>& v) { return bit_shift(v[0], v[1], left); };
  });
  add_unary(l, "Not", is_bool, [](const Expr& x) { return un(UnaryOp::kNot, x); });
  add_unary(l, "BitwiseNot", is_int_type, [](const Expr& x) { return un(UnaryOp::kNot, x); });
}

// ---- unary math ----

void register_unary(Lowerings& l) {
  add_unary(l, "Abs", is_numeric, [](const Expr& x) { return un(UnaryOp::kAbs, x); });
  add_unary(l, "Neg", is_numeric, [](const Expr& x) { return un(UnaryOp::kNeg, x); });
  add_unary(l, "Sign", is_numeric, [](const Expr& x) {
    ScalarType t = x->type;
    Expr neg =
        jit::is_float(t) || jit::is_signed_int(t) ? jit::select(lt(x, c(0, t)), c(-1, t), x) : x;
    return jit::select(gt(x, c(0, t)), c(1, t), neg);
  });
  add_unary(l, "Reciprocal", float_type, [](const Expr& x) { return c(1, x->type) / x; });
  struct Math {
    const char* op;
    UnaryOp u;
    int64_t work;
  };
  for (Math m : {Math{"Floor", UnaryOp::kFloor, 1},
                 Math{"Ceil", UnaryOp::kCeil, 1},
                 Math{"Round", UnaryOp::kRound, 1},
                 Math{"Sqrt", UnaryOp::kSqrt, 2},
                 Math{"Exp", UnaryOp::kExp, kMathWork},
                 Math{"Log", UnaryOp::kLog, kMathWork},
                 Math{"Tanh", UnaryOp::kTanh, kMathWork},
                 Math{"Erf", UnaryOp::kErf, kMathWork},
                 Math{"Sigmoid", UnaryOp::kSigmoid, kMathWork},
                 Math{"Sin", UnaryOp::kSin, kMathWork},
                 Math{"Cos", UnaryOp::kCos, kMathWork},
                 Math{"Tan", UnaryOp::kTan, kMathWork},
                 Math{"Asin", UnaryOp::kAsin, kMathWork},
                 Math{"Acos", UnaryOp::kAcos, kMathWork},
                 Math{"Atan", UnaryOp::kAtan, kMathWork},
                 Math{"Sinh", UnaryOp::kSinh, kMathWork},
                 Math{"Cosh", UnaryOp::kCosh, kMathWork},
                 Math{"Asinh", UnaryOp::kAsinh, kMathWork},
                 Math{"Acosh", UnaryOp::kAcosh, kMathWork},
                 Math{"Atanh", UnaryOp::kAtanh, kMathWork}}) {
    UnaryOp u = m.u;
    add_unary(l, m.op, float_type, [u](const Expr& x) { return un(u, x); }, m.work);
  }
  auto predicate = [](LowerContext& ctx, const Body& f) -> std::optional<jit::Kernel> {
    if (!types_are(ctx, {0}, float_type, ScalarType::kBool)) return std::nullopt;
    return map_kernel(ctx, {0}, f);
  };
  l.add("", "IsNaN", [predicate](LowerContext& ctx) {
    return predicate(
        ctx, [](const std::vector<Expr>& v) { return jit::binary(BinaryOp::kNe, v[0], v[0]); });
  });
  l.add("", "IsInf", [predicate](LowerContext& ctx) {
    const bool neg = ctx.attrs().attr_int("detect_negative", 1) != 0;
    const bool pos = ctx.attrs().attr_int("detect_positive", 1) != 0;
    return predicate(ctx, [=](const std::vector<Expr>& v) {
      ScalarType t = v[0]->type;
      const double inf = std::numeric_limits<double>::infinity();
      Expr p = pos ? eq(v[0], c(inf, t)) : jit::imm(0, ScalarType::kBool);
      Expr n = neg ? eq(v[0], c(-inf, t)) : jit::imm(0, ScalarType::kBool);
      return jit::binary(BinaryOp::kOr, p, n);
    });
  });
}

// ---- activations ----

void register_activations(Lowerings& l) {
  add_unary(l, "Relu", is_numeric, [](const Expr& x) {
    if (!jit::is_float(x->type) && !jit::is_signed_int(x->type)) return x;
    return jit::select(lt(x, c(0, x->type)), c(0, x->type), x);
  });
  add_map(l, "LeakyRelu", {0}, float_type, [](LowerContext& ctx) -> Body {
    float alpha = ctx.attrs().attr_float("alpha", 0.01f);
    return [alpha](const std::vector<Expr>& v) {
      ScalarType t = v[0]->type;
      return jit::select(lt(v[0], c(0, t)), attr_c(alpha, t) * v[0], v[0]);
    };
  });
  add_map(l, "HardSigmoid", {0}, float_type, [](LowerContext& ctx) -> Body {
    float alpha = ctx.attrs().attr_float("alpha", 0.2f),
          beta = ctx.attrs().attr_float("beta", 0.5f);
    return [=](const std::vector<Expr>& v) {
      ScalarType t = v[0]->type;
      return std_max(c(0, t), std_min(c(1, t), attr_c(alpha, t) * v[0] + attr_c(beta, t)));
    };
  });
  add_unary(l, "HardSwish", float_type, [](const Expr& x) {
    ScalarType t = x->type;
    return x * std_max(c(0, t), std_min(c(1, t), x / c(6, t) + c(0.5, t)));
  });
  add_map(
      l, "Elu", {0}, float_type,
      [](LowerContext& ctx) -> Body {
        float alpha = ctx.attrs().attr_float("alpha", 1.0f);
        return [alpha](const std::vector<Expr>& v) {
          ScalarType t = v[0]->type;
          return jit::select(lt(v[0], c(0, t)), attr_c(alpha, t) * expm1(v[0]), v[0]);
        };
      },
      kMathWork);
  add_map(
      l, "Selu", {0}, float_type,
      [](LowerContext& ctx) -> Body {
        float alpha = ctx.attrs().attr_float("alpha", 1.67326319217681884765625f);
        float gamma = ctx.attrs().attr_float("gamma", 1.05070102214813232421875f);
        return [=](const std::vector<Expr>& v) {
          ScalarType t = v[0]->type;
          Expr a = attr_c(alpha, t), g = attr_c(gamma, t);
          return jit::select(le(v[0], c(0, t)), g * (a * un(UnaryOp::kExp, v[0]) - a), g * v[0]);
        };
      },
      kMathWork);
  add_map(
      l, "Celu", {0}, float_type,
      [](LowerContext& ctx) -> Body {
        float alpha = ctx.attrs().attr_float("alpha", 1.0f);
        if (alpha == 0) return nullptr;  // the reference rejects it
        return [alpha](const std::vector<Expr>& v) {
          ScalarType t = v[0]->type;
          Expr a = attr_c(alpha, t);
          return std_max(c(0, t), v[0]) + std_min(c(0, t), a * expm1(v[0] / a));
        };
      },
      kMathWork);
  add_unary(l, "Softplus", float_type, softplus, kMathWork);
  add_unary(l, "Softsign", float_type,
            [](const Expr& x) { return x / (c(1, x->type) + un(UnaryOp::kAbs, x)); });
  add_map(l, "ThresholdedRelu", {0}, float_type, [](LowerContext& ctx) -> Body {
    float alpha = ctx.attrs().attr_float("alpha", 1.0f);
    return [alpha](const std::vector<Expr>& v) {
      ScalarType t = v[0]->type;
      return jit::select(gt(v[0], attr_c(alpha, t)), v[0], c(0, t));
    };
  });
  add_map(
      l, "Gelu", {0}, float_type,
      [](LowerContext& ctx) -> Body {
        std::string a = ctx.attrs().attr_string("approximate", "none");
        if (a != "none" && a != "tanh") return nullptr;
        bool use_tanh = a == "tanh";
        return [use_tanh](const std::vector<Expr>& v) {
          const Expr& x = v[0];
          ScalarType t = x->type;
          if (use_tanh) {
            Expr inner = c(0.7978845608028654, t) * (x + c(0.044715, t) * x * x * x);
            return c(0.5, t) * x * (c(1, t) + un(UnaryOp::kTanh, inner));
          }
          return c(0.5, t) * x * (c(1, t) + un(UnaryOp::kErf, x * c(0.7071067811865476, t)));
        };
      },
      kMathWork);
  add_unary(
      l, "Mish", float_type, [](const Expr& x) { return x * un(UnaryOp::kTanh, softplus(x)); },
      2 * kMathWork);
  add_map(
      l, "Swish", {0}, float_type,
      [](LowerContext& ctx) -> Body {
        float alpha = ctx.attrs().attr_float("alpha", 1.0f);
        return [alpha](const std::vector<Expr>& v) {
          return v[0] * sigmoid(attr_c(alpha, v[0]->type) * v[0]);
        };
      },
      kMathWork);
  add_map(l, "Shrink", {0}, float_type, [](LowerContext& ctx) -> Body {
    float bias = ctx.attrs().attr_float("bias", 0.0f),
          lambd = ctx.attrs().attr_float("lambd", 0.5f);
    return [=](const std::vector<Expr>& v) {
      // Computed in double by the reference; for f32 the float operations round the same.
      const Expr& x = v[0];
      ScalarType t = x->type;
      Expr b = attr_c(bias, t), lam = attr_c(lambd, t);
      return jit::select(lt(x, un(UnaryOp::kNeg, lam)), x + b,
                         jit::select(gt(x, lam), x - b, c(0, t)));
    };
  });
  // PRelu: slope broadcasts unidirectionally to X; the output has X's dims.
  l.add("", "PRelu", [](LowerContext& ctx) -> std::optional<jit::Kernel> {
    if (!types_are(ctx, {0, 1}, is_numeric)) return std::nullopt;
    if (!broadcasts_to(ctx.input(1), ctx.input(0))) return std::nullopt;
    return map_kernel(ctx, {0, 1}, [](const std::vector<Expr>& v) {
      ScalarType t = v[0]->type;
      if (!jit::is_float(t) && !jit::is_signed_int(t)) return v[0];  // never below 0
      return jit::select(lt(v[0], c(0, t)), v[1] * v[0], v[0]);
    });
  });
  // Clip: std::min(std::max(x, lo), hi), with lo/hi the lowest/highest finite value when absent.
  l.add("", "Clip", [](LowerContext& ctx) -> std::optional<jit::Kernel> {
    if (!types_are(ctx, {0}, is_numeric)) return std::nullopt;
    const ScalarType t = ctx.input(0).type;
    const double lowest = t == ScalarType::kF32 ? -double(std::numeric_limits<float>::max())
                                                : -std::numeric_limits<double>::max();
    std::optional<Expr> lo, hi;  // bounds loaded from inputs, or immediates
    if (ctx.opset() < 11) {
      if (!jit::is_float(t)) return std::nullopt;
      lo = attr_c(ctx.attrs().attr_float("min", std::numeric_limits<float>::lowest()), t);
      hi = attr_c(ctx.attrs().attr_float("max", std::numeric_limits<float>::max()), t);
    } else {
      for (int i = 1; i <= 2; ++i) {
        if (!ctx.has_input(i)) continue;
        const TensorArg& b = ctx.input(i);
        if (b.type != t) return std::nullopt;
        for (const auto& d : b.dims)
          if (!d->is_int_imm(1)) return std::nullopt;  // the reference wants one element
      }
    }
    const bool has_lo = ctx.opset() < 11 || ctx.has_input(1);
    const bool has_hi = ctx.opset() < 11 || ctx.has_input(2);
    return map_kernel(ctx, {0}, [&](const std::vector<Expr>& v) {
      auto bound = [&](int i) {
        return ctx.load_input(i, std::vector<Expr>(size_t(ctx.input(i).rank()), jit::imm(0)));
      };
      Expr x = v[0];
      Expr l0 = lo ? *lo : has_lo ? bound(1) : Expr();
      Expr h0 = hi ? *hi : has_hi ? bound(2) : Expr();
      if (!l0 && jit::is_float(t)) l0 = c(lowest, t);
      if (!h0 && jit::is_float(t)) h0 = c(-lowest, t);
      if (l0) x = std_max(x, l0);
      if (h0) x = std_min(x, h0);
      return x;
    });
  });
}

// ---- Cast ----

void register_cast(Lowerings& l) {
  auto cast_kernel = [](LowerContext& ctx) -> std::optional<jit::Kernel> {
    if (!ctx.has_input(0) || ctx.num_outputs() < 1) return std::nullopt;
    ScalarType to = ctx.output(0).type;
    return map_kernel(ctx, {0}, [to](const std::vector<Expr>& v) { return convert(v[0], to); });
  };
  l.add("", "Cast", [cast_kernel](LowerContext& ctx) -> std::optional<jit::Kernel> {
    int64_t onnx_to = ctx.attrs().attr_int("to", 0);
    if (onnx_to <= 0 || onnx_to > 255) return std::nullopt;
    auto to = jit::scalar_type_of(DType(onnx_to));
    if (!to || ctx.num_outputs() < 1 || *to != ctx.output(0).type) return std::nullopt;
    return cast_kernel(ctx);
  });
  l.add("", "CastLike", [cast_kernel](LowerContext& ctx) -> std::optional<jit::Kernel> {
    if (!ctx.has_input(1) || ctx.num_outputs() < 1 || ctx.input(1).type != ctx.output(0).type)
      return std::nullopt;
    return cast_kernel(ctx);
  });
}

}  // namespace

void register_elementwise_lowerings(Lowerings& l) {
  register_arithmetic(l);
  add_variadic(l, "Sum", true, false, BinaryOp::kAdd);
  add_variadic(l, "Mean", true, true, BinaryOp::kAdd);
  add_variadic(l, "Max", false, false, BinaryOp::kMax);
  add_variadic(l, "Min", false, false, BinaryOp::kMin);
  register_logic(l);
  register_unary(l);
  register_activations(l);
  register_cast(l);
}

}  // namespace kiln::kernels
