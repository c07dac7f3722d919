// The reference interpreter of the kernel IR and the integer scalar semantics
// (see kir_interp.h).
//
// Values are carried as an int64 (integers in canonical form, bool as 0/1) or a
// double (f64, and f32 values, which a double holds exactly); every f32
// operation converts its operands to float and computes in float, so results
// match what a float-typed backend computes, not a double-precision
// approximation of it.
#include "jit/kir_interp.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>

#include "kiln/error.h"

namespace kiln::jit {

// ---- Integer semantics ----

int64_t wrap_int(int64_t v, ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
      return v != 0;
    case ScalarType::kI8:
      return int8_t(v);
    case ScalarType::kU8:
      return uint8_t(v);
    case ScalarType::kI16:
      return int16_t(v);
    case ScalarType::kU16:
      return uint16_t(v);
    case ScalarType::kI32:
      return int32_t(v);
    case ScalarType::kU32:
      return uint32_t(v);
    default:
      return v;  // i64, u64 (bit pattern)
  }
}

int64_t eval_int_binary(BinaryOp op, ScalarType t, int64_t a, int64_t b) {
  const bool sgn = is_signed_int(t);
  const uint64_t ua = uint64_t(a), ub = uint64_t(b);
  const unsigned bits = unsigned(type_bytes(t)) * 8;
  switch (op) {
    case BinaryOp::kAdd:
      return wrap_int(int64_t(ua + ub), t);
    case BinaryOp::kSub:
      return wrap_int(int64_t(ua - ub), t);
    case BinaryOp::kMul:
      return wrap_int(int64_t(ua * ub), t);
    case BinaryOp::kDiv:
      if (b == 0) return 0;
      if (sgn) {
        // INT64_MIN / -1 overflows in C++; two's complement wraps it to
        // INT64_MIN.
        if (b == -1) return wrap_int(int64_t(0 - ua), t);
        return wrap_int(a / b, t);
      }
      return wrap_int(int64_t(ua / ub), t);
    case BinaryOp::kMod:
      if (b == 0) return 0;
      if (sgn) return b == -1 ? 0 : wrap_int(a % b, t);
      return wrap_int(int64_t(ua % ub), t);
    case BinaryOp::kMin:
      return (sgn ? a < b : ua < ub) ? a : b;
    case BinaryOp::kMax:
      return (sgn ? a > b : ua > ub) ? a : b;
    case BinaryOp::kAnd:
      return wrap_int(a & b, t);
    case BinaryOp::kOr:
      return wrap_int(a | b, t);
    case BinaryOp::kXor:
      return wrap_int(a ^ b, t);
    // The count's bit pattern modulo the width (bits divides 2^64, so ub % bits
    // is exactly that).
    case BinaryOp::kShl:
      return wrap_int(int64_t(ua << (ub % bits)), t);
    case BinaryOp::kShr:
      return sgn ? wrap_int(a >> (ub % bits), t) : wrap_int(int64_t(ua >> (ub % bits)), t);
    case BinaryOp::kEq:
      return a == b;
    case BinaryOp::kNe:
      return a != b;
    case BinaryOp::kLt:
      return sgn ? a < b : ua < ub;
    case BinaryOp::kLe:
      return sgn ? a <= b : ua <= ub;
    case BinaryOp::kGt:
      return sgn ? a > b : ua > ub;
    case BinaryOp::kGe:
      return sgn ? a >= b : ua >= ub;
    case BinaryOp::kPow:
      break;
  }
  throw Error(ErrorCode::kInternal,
              std::string("kir: integer ") + binary_name(op) + " on " + type_name(t));
}

int64_t eval_int_unary(UnaryOp op, ScalarType t, int64_t a) {
  switch (op) {
    case UnaryOp::kNeg:
      return wrap_int(int64_t(0 - uint64_t(a)), t);
    case UnaryOp::kNot:
      return t == ScalarType::kBool ? int64_t(a == 0) : wrap_int(~a, t);
    case UnaryOp::kAbs:
      return is_signed_int(t) && a < 0 ? wrap_int(int64_t(0 - uint64_t(a)), t) : a;
    default:
      break;
  }
  throw Error(ErrorCode::kInternal,
              std::string("kir: integer ") + unary_name(op) + " on " + type_name(t));
}

int64_t float_to_int(double v, ScalarType t) {
  if (t == ScalarType::kBool) return v != 0;
  if (std::isnan(v)) return 0;
  const double tv = std::trunc(v);
  const double two63 = 9223372036854775808.0;
  if (tv >= two63) {
    if (t == ScalarType::kU64 && tv < 2 * two63) return int64_t(uint64_t(tv));
    return wrap_int(t == ScalarType::kU64 ? -1 : std::numeric_limits<int64_t>::max(), t);
  }
  if (tv < -two63) return wrap_int(std::numeric_limits<int64_t>::min(), t);
  return wrap_int(int64_t(tv), t);
}

double int_to_float(int64_t v, ScalarType from, ScalarType to) {
  if (to == ScalarType::kF32) {
    return from == ScalarType::kU64 ? double(float(uint64_t(v))) : double(float(v));
  }
  return from == ScalarType::kU64 ? double(uint64_t(v)) : double(v);
}

// ---- The interpreter ----

namespace {

[[noreturn]] void fail(const std::string& msg) {
  throw Error(ErrorCode::kInternal, "kir interpreter: " + msg);
}

/// A scalar: `i` for integers and bool (canonical), `f` for floats.
struct Value {
  int64_t i = 0;
  double f = 0;
};

template <typename F>
F round_half_even(F x) {
  F r = std::round(x);  // half away from zero
  if (std::fabs(x - std::trunc(x)) == F(0.5)) r = F(2) * std::round(x / F(2));
  return r;
}

template <typename F>
F float_unary(UnaryOp op, F x) {
  switch (op) {
    case UnaryOp::kNeg:
      return -x;
    case UnaryOp::kAbs:
      return std::fabs(x);
    case UnaryOp::kFloor:
      return std::floor(x);
    case UnaryOp::kCeil:
      return std::ceil(x);
    case UnaryOp::kRound:
      return round_half_even(x);
    case UnaryOp::kSqrt:
      return std::sqrt(x);
    case UnaryOp::kExp:
      return std::exp(x);
    case UnaryOp::kLog:
      return std::log(x);
    case UnaryOp::kTanh:
      return std::tanh(x);
    case UnaryOp::kErf:
      return std::erf(x);
    case UnaryOp::kSigmoid:
      return F(1) / (F(1) + std::exp(-x));
    case UnaryOp::kSin:
      return std::sin(x);
    case UnaryOp::kCos:
      return std::cos(x);
    case UnaryOp::kTan:
      return std::tan(x);
    case UnaryOp::kAsin:
      return std::asin(x);
    case UnaryOp::kAcos:
      return std::acos(x);
    case UnaryOp::kAtan:
      return std::atan(x);
    case UnaryOp::kSinh:
      return std::sinh(x);
    case UnaryOp::kCosh:
      return std::cosh(x);
    case UnaryOp::kAsinh:
      return std::asinh(x);
    case UnaryOp::kAcosh:
      return std::acosh(x);
    case UnaryOp::kAtanh:
      return std::atanh(x);
    case UnaryOp::kNot:
      break;
  }
  fail(std::string("float ") + unary_name(op));
}

/// Arithmetic result in `f`, comparison result in `i`.
template <typename F>
Value float_binary(BinaryOp op, F a, F b) {
  Value v;
  auto num = [&](F x) {
    v.f = double(x);
    return v;
  };
  auto cmp = [&](bool x) {
    v.i = x;
    return v;
  };
  switch (op) {
    case BinaryOp::kAdd:
      return num(a + b);
    case BinaryOp::kSub:
      return num(a - b);
    case BinaryOp::kMul:
      return num(a * b);
    case BinaryOp::kDiv:
      return num(a / b);
    case BinaryOp::kMod:
      return num(std::fmod(a, b));
    case BinaryOp::kPow:
      return num(std::pow(a, b));
    case BinaryOp::kMin:
      if (std::isnan(a)) return num(a);
      if (std::isnan(b)) return num(b);
      return num(b < a ? b : a);
    case BinaryOp::kMax:
      if (std::isnan(a)) return num(a);
      if (std::isnan(b)) return num(b);
      return num(a < b ? b : a);
    case BinaryOp::kEq:
      return cmp(a == b);
    case BinaryOp::kNe:
      return cmp(a != b);
    case BinaryOp::kLt:
      return cmp(a < b);
    case BinaryOp::kLe:
      return cmp(a <= b);
    case BinaryOp::kGt:
      return cmp(a > b);
    case BinaryOp::kGe:
      return cmp(a >= b);
    default:
      break;
  }
  fail(std::string("float ") + binary_name(op));
}

Value binary_value(BinaryOp op, ScalarType t, const Value& a, const Value& b) {
  if (t == ScalarType::kF32) return float_binary<float>(op, float(a.f), float(b.f));
  if (t == ScalarType::kF64) return float_binary<double>(op, a.f, b.f);
  Value v;
  v.i = eval_int_binary(op, t, a.i, b.i);
  return v;
}

BinaryOp reduce_combiner(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return BinaryOp::kAdd;
    case ReduceOp::kProd:
      return BinaryOp::kMul;
    case ReduceOp::kMin:
      return BinaryOp::kMin;
    case ReduceOp::kMax:
      return BinaryOp::kMax;
  }
  fail("invalid reduce op");
}

class Interpreter {
 public:
  Interpreter(const Kernel& k, const std::vector<void*>& buffers,
              const std::vector<size_t>& buffer_bytes, const std::vector<int64_t>& params)
      : k_(k), params_(params) {
    if (buffers.size() != k.buffers.size() || buffer_bytes.size() != k.buffers.size()) {
      fail("the kernel has " + std::to_string(k.buffers.size()) + " buffers but " +
           std::to_string(buffers.size()) + " pointers and " + std::to_string(buffer_bytes.size()) +
           " sizes were given");
    }
    if (params.size() < size_t(k.num_params)) {
      fail("the kernel has " + std::to_string(k.num_params) + " params but " +
           std::to_string(params.size()) + " values were given");
    }
    for (size_t b = 0; b < k.buffers.size(); ++b) {
      const BufferDecl& d = k.buffers[b];
      Buf buf;
      buf.base = static_cast<char*>(buffers[b]);
      buf.elements = int64_t(buffer_bytes[b] / size_t(type_bytes(d.type)));
      if (buffer_bytes[b] > 0 && !buf.base) fail("b" + std::to_string(b) + " is null");
      if (buffer_bytes[b] > 0 && reinterpret_cast<uintptr_t>(buf.base) % uintptr_t(d.align)) {
        fail("b" + std::to_string(b) + " is not aligned to " + std::to_string(d.align) +
             " bytes as declared");
      }
      for (size_t i = 0; i < d.dims.size(); ++i) {
        buf.dims.push_back(eval(d.dims[i]).i);
        buf.strides.push_back(eval(d.strides[i]).i);
      }
      bufs_.push_back(std::move(buf));
    }
  }

  void run() { exec(k_.body); }

 private:
  struct Buf {
    char* base = nullptr;
    int64_t elements = 0;
    std::vector<int64_t> dims, strides;
  };

  /// Element offset of an access, checked against the dims and the buffer's
  /// size.
  int64_t offset(int b, const std::vector<Expr>& indices, const char* what) {
    const Buf& buf = bufs_[size_t(b)];
    std::vector<int64_t> idx;
    idx.reserve(indices.size());
    for (const Expr& e : indices) idx.push_back(eval(e).i);
    auto where = [&] {
      std::string s = "b" + std::to_string(b) + "[";
      for (size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
      return s + "]";
    };
    int64_t off = 0;
    bool overflow = false;
    for (size_t d = 0; d < idx.size(); ++d) {
      if (idx[d] < 0 || idx[d] >= buf.dims[d]) {
        fail(std::string("out-of-bounds ") + what + " of " + where() + ": index " +
             std::to_string(idx[d]) + " of dim " + std::to_string(d) + " is outside [0, " +
             std::to_string(buf.dims[d]) + ")");
      }
      int64_t p = 0;
      overflow = overflow || __builtin_mul_overflow(idx[d], buf.strides[d], &p);
      overflow = overflow || __builtin_add_overflow(off, p, &off);
    }
    if (overflow || off < 0 || off >= buf.elements) {
      fail(std::string("out-of-bounds ") + what + " of b" + std::to_string(b) + " at element " +
           (overflow ? std::string("(overflow)") : std::to_string(off)) + " (buffer holds " +
           std::to_string(buf.elements) + "), access " + where());
    }
    return off;
  }

  Value read(int b, ScalarType t, int64_t off) {
    const char* p = bufs_[size_t(b)].base + off * type_bytes(t);
    Value v;
    auto get = [&](auto x) {
      std::memcpy(&x, p, sizeof x);
      return x;
    };
    switch (t) {
      case ScalarType::kBool:
        v.i = get(uint8_t()) != 0;
        break;
      case ScalarType::kI8:
        v.i = get(int8_t());
        break;
      case ScalarType::kU8:
        v.i = get(uint8_t());
        break;
      case ScalarType::kI16:
        v.i = get(int16_t());
        break;
      case ScalarType::kU16:
        v.i = get(uint16_t());
        break;
      case ScalarType::kI32:
        v.i = get(int32_t());
        break;
      case ScalarType::kU32:
        v.i = get(uint32_t());
        break;
      case ScalarType::kI64:
        v.i = get(int64_t());
        break;
      case ScalarType::kU64:
        v.i = int64_t(get(uint64_t()));
        break;
      case ScalarType::kF32:
        v.f = double(get(float()));
        break;
      case ScalarType::kF64:
        v.f = get(double());
        break;
    }
    return v;
  }

  void write(int b, ScalarType t, int64_t off, const Value& v) {
    char* p = bufs_[size_t(b)].base + off * type_bytes(t);
    auto put = [&](auto x) { std::memcpy(p, &x, sizeof x); };
    switch (t) {
      case ScalarType::kBool:
        put(uint8_t(v.i != 0));
        break;
      case ScalarType::kI8:
        put(int8_t(v.i));
        break;
      case ScalarType::kU8:
        put(uint8_t(v.i));
        break;
      case ScalarType::kI16:
        put(int16_t(v.i));
        break;
      case ScalarType::kU16:
        put(uint16_t(v.i));
        break;
      case ScalarType::kI32:
        put(int32_t(v.i));
        break;
      case ScalarType::kU32:
        put(uint32_t(v.i));
        break;
      case ScalarType::kI64:
        put(int64_t(v.i));
        break;
      case ScalarType::kU64:
        put(uint64_t(v.i));
        break;
      case ScalarType::kF32:
        put(float(v.f));
        break;
      case ScalarType::kF64:
        put(double(v.f));
        break;
    }
  }

  Value cast_value(ScalarType to, ScalarType from, const Value& a) {
    Value v;
    if (is_float(from)) {
      if (to == ScalarType::kF32) {
        v.f = double(float(a.f));
      } else if (to == ScalarType::kF64) {
        v.f = a.f;
      } else {
        v.i = float_to_int(a.f, to);
      }
    } else if (is_float(to)) {
      v.f = int_to_float(a.i, from, to);
    } else {
      v.i = to == ScalarType::kBool ? int64_t(a.i != 0) : wrap_int(a.i, to);
    }
    return v;
  }

  Value eval(const Expr& e) {
    Value v;
    switch (e->kind) {
      case ExprKind::kIntImm:
        v.i = e->ival;
        return v;
      case ExprKind::kFloatImm:
        v.f = e->fval;
        return v;
      case ExprKind::kVar:
        return vars_.at(e->name);
      case ExprKind::kParam:
        v.i = params_[size_t(e->ival)];
        return v;
      case ExprKind::kUnary: {
        Value a = eval(e->args[0]);
        UnaryOp op = UnaryOp(e->op);
        if (e->type == ScalarType::kF32) {
          v.f = double(float_unary<float>(op, float(a.f)));
        } else if (e->type == ScalarType::kF64) {
          v.f = float_unary<double>(op, a.f);
        } else {
          v.i = eval_int_unary(op, e->type, a.i);
        }
        return v;
      }
      case ExprKind::kBinary: {
        Value a = eval(e->args[0]);
        Value b = eval(e->args[1]);
        return binary_value(BinaryOp(e->op), e->args[0]->type, a, b);
      }
      case ExprKind::kCast:
        return cast_value(e->type, e->args[0]->type, eval(e->args[0]));
      case ExprKind::kSelect: {
        // Both operands are evaluated (and their loads checked), as the semantics
        // say.
        Value c = eval(e->args[0]);
        Value t = eval(e->args[1]);
        Value f = eval(e->args[2]);
        return c.i ? t : f;
      }
      case ExprKind::kLoad: {
        int b = int(e->ival);
        return read(b, e->type, offset(b, e->args, "load"));
      }
      case ExprKind::kReduce:
        return eval_reduce(e);
    }
    fail("invalid expression kind");
  }

  Value eval_reduce(const Expr& e) {
    Value acc = eval(e->args[0]);
    const size_t n = e->reduce_vars.size();
    std::vector<int64_t> extents(n), pos(n, 0);
    for (size_t d = 0; d < n; ++d) {
      extents[d] = eval(e->reduce_extents[d]).i;
      if (extents[d] <= 0) return acc;
    }
    BinaryOp combine = reduce_combiner(ReduceOp(e->op));
    for (;;) {
      for (size_t d = 0; d < n; ++d) vars_[e->reduce_vars[d]].i = pos[d];
      acc = binary_value(combine, e->type, acc, eval(e->args[1]));
      size_t d = n;
      while (d > 0 && ++pos[d - 1] == extents[d - 1]) pos[--d] = 0;  // last variable fastest
      if (d == 0) break;
    }
    for (const std::string& name : e->reduce_vars) vars_.erase(name);
    return acc;
  }

  void exec(const Stmt& s) {
    switch (s->kind) {
      case StmtKind::kFor: {
        int64_t extent = eval(s->extent).i;
        for (int64_t i = 0; i < extent; ++i) {
          vars_[s->var].i = i;
          exec(s->body[0]);
        }
        vars_.erase(s->var);
        return;
      }
      case StmtKind::kStore: {
        int64_t off = offset(s->buffer, s->indices, "store");
        write(s->buffer, k_.buffers[size_t(s->buffer)].type, off, eval(s->value));
        return;
      }
      case StmtKind::kLet:
        vars_[s->var] = eval(s->value);
        exec(s->body[0]);
        vars_.erase(s->var);
        return;
      case StmtKind::kBlock:
        for (const Stmt& b : s->body) exec(b);
        return;
      case StmtKind::kIf:
        if (eval(s->value).i) {
          exec(s->body[0]);
        } else if (s->body.size() > 1) {
          exec(s->body[1]);
        }
        return;
    }
    fail("invalid statement kind");
  }

  const Kernel& k_;
  const std::vector<int64_t>& params_;
  std::vector<Buf> bufs_;
  std::unordered_map<std::string, Value> vars_;
};

}  // namespace

void interpret(const Kernel& k, const std::vector<void*>& buffers,
               const std::vector<size_t>& buffer_bytes, const std::vector<int64_t>& params) {
  validate(k);
  Interpreter(k, buffers, buffer_bytes, params).run();
}

}  // namespace kiln::jit
