// The kernel IR: type helpers and validating factories with integer constant
// folding (see kir.h for the semantics; the whole-kernel validator is in
// kir_validate.cc, the printer and the structural hash in kir_print.cc).
//
// Folding is done here, at construction, so that index arithmetic built by the
// lowerings from immediate dims collapses to immediates (and prints, hashes and
// compiles as such). It uses the same scalar semantics as the interpreter
// (kir_interp.h), so a folded kernel computes what the unfolded one would. Only
// integer and bool immediates are folded, plus the exact float ops (negation,
// abs, casts): float arithmetic is left to the backends.
#include "jit/kir.h"

#include <cmath>
#include <set>

#include "jit/kir_internal.h"
#include "jit/kir_interp.h"
#include "kiln/error.h"

namespace kiln::jit {

namespace detail {

void fail(const std::string& msg) { throw Error(ErrorCode::kInternal, "kir: " + msg); }

std::string brief(const Expr& e) {
  std::string s = print(e);
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

bool is_valid_type(ScalarType t) { return uint8_t(t) <= uint8_t(ScalarType::kF64); }

void check_i64(const Expr& e, const std::string& what) {
  if (!e) fail(what + " is a null expression");
  if (e->type != ScalarType::kI64) {
    fail(what + " must be i64, got " + type_name(e->type) + " (" + brief(e) + ")");
  }
}

}  // namespace detail

using detail::brief;
using detail::check_i64;
using detail::fail;
using detail::is_valid_type;

namespace {

void check_not_null(const Expr& e, const char* what) {
  if (!e) fail(std::string(what) + ": null expression");
}

/// Variable names are identifiers that cannot be mistaken for printed params
/// (p3), buffers (b1) or constants, which keeps the printed text unambiguous.
void check_name(const std::string& name, const char* what) {
  auto bad = [&](const char* why) { fail(std::string(what) + " name '" + name + "' " + why); };
  if (name.empty()) bad("is empty");
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(name[0])) bad("must start with a letter or '_'");
  for (char c : name) {
    if (!alpha(c) && !digit(c)) bad("must contain only letters, digits and '_'");
  }
  if ((name[0] == 'p' || name[0] == 'b') && name.size() > 1) {
    bool all_digits = true;
    for (size_t i = 1; i < name.size(); ++i) all_digits = all_digits && digit(name[i]);
    if (all_digits) bad("is reserved (it prints like a param or buffer)");
  }
  for (const char* r : {"true", "false", "inff32", "inff64", "nanf32", "nanf64"}) {
    if (name == r) bad("is reserved (it prints like a constant)");
  }
}

std::shared_ptr<ExprNode> node(ExprKind kind, ScalarType type) {
  auto n = std::make_shared<ExprNode>();
  n->kind = kind;
  n->type = type;
  return n;
}

void check_type(ScalarType t, const char* what) {
  if (!is_valid_type(t))
    fail(std::string(what) + ": invalid scalar type " + std::to_string(int(t)));
}

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::kEq || op == BinaryOp::kNe || op == BinaryOp::kLt || op == BinaryOp::kLe ||
         op == BinaryOp::kGt || op == BinaryOp::kGe;
}

/// `v` as a constant of a's type (the int operand of the mixed operator sugar).
Expr constant_like(const Expr& a, int64_t v, const char* op) {
  if (!a) fail(std::string("operator") + op + ": null expression");
  if (is_float(a->type)) return fimm(double(v), a->type);
  if (is_int(a->type)) return imm(v, a->type);
  fail(std::string("operator") + op + ": integer operand with a " + type_name(a->type) +
       " expression (" + brief(a) + ")");
}

}  // namespace

// ---- Type helpers ----

const char* type_name(ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
      return "bool";
    case ScalarType::kI8:
      return "i8";
    case ScalarType::kU8:
      return "u8";
    case ScalarType::kI16:
      return "i16";
    case ScalarType::kU16:
      return "u16";
    case ScalarType::kI32:
      return "i32";
    case ScalarType::kU32:
      return "u32";
    case ScalarType::kI64:
      return "i64";
    case ScalarType::kU64:
      return "u64";
    case ScalarType::kF32:
      return "f32";
    case ScalarType::kF64:
      return "f64";
  }
  return "?";
}

int type_bytes(ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
    case ScalarType::kI8:
    case ScalarType::kU8:
      return 1;
    case ScalarType::kI16:
    case ScalarType::kU16:
      return 2;
    case ScalarType::kI32:
    case ScalarType::kU32:
    case ScalarType::kF32:
      return 4;
    case ScalarType::kI64:
    case ScalarType::kU64:
    case ScalarType::kF64:
      return 8;
  }
  return 0;
}

bool is_float(ScalarType t) { return t == ScalarType::kF32 || t == ScalarType::kF64; }

bool is_signed_int(ScalarType t) {
  return t == ScalarType::kI8 || t == ScalarType::kI16 || t == ScalarType::kI32 ||
         t == ScalarType::kI64;
}

bool is_int(ScalarType t) {
  return is_signed_int(t) || t == ScalarType::kU8 || t == ScalarType::kU16 ||
         t == ScalarType::kU32 || t == ScalarType::kU64;
}

std::optional<ScalarType> scalar_type_of(DType d) {
  switch (d) {
    case DType::kBool:
      return ScalarType::kBool;
    case DType::kI8:
      return ScalarType::kI8;
    case DType::kU8:
      return ScalarType::kU8;
    case DType::kI16:
      return ScalarType::kI16;
    case DType::kU16:
      return ScalarType::kU16;
    case DType::kI32:
      return ScalarType::kI32;
    case DType::kU32:
      return ScalarType::kU32;
    case DType::kI64:
      return ScalarType::kI64;
    case DType::kU64:
      return ScalarType::kU64;
    case DType::kF32:
      return ScalarType::kF32;
    case DType::kF64:
      return ScalarType::kF64;
    default:
      return std::nullopt;
  }
}

const char* unary_name(UnaryOp op) {
  static const char* const kNames[] = {"neg",  "not",  "abs",   "floor", "ceil", "round",
                                       "sqrt", "exp",  "log",   "tanh",  "erf",  "sigmoid",
                                       "sin",  "cos",  "tan",   "asin",  "acos", "atan",
                                       "sinh", "cosh", "asinh", "acosh", "atanh"};
  size_t i = size_t(op);
  return i < std::size(kNames) ? kNames[i] : "?";
}

const char* binary_name(BinaryOp op) {
  static const char* const kNames[] = {"+", "-",  "*",  "/",  "%",  "min", "max", "pow", "&", "|",
                                       "^", "<<", ">>", "==", "!=", "<",   "<=",  ">",   ">="};
  size_t i = size_t(op);
  return i < std::size(kNames) ? kNames[i] : "?";
}

const char* reduce_name(ReduceOp op) {
  static const char* const kNames[] = {"sum", "prod", "min", "max"};
  size_t i = size_t(op);
  return i < std::size(kNames) ? kNames[i] : "?";
}

const char* loop_kind_name(LoopKind k) {
  switch (k) {
    case LoopKind::kSerial:
      return "serial";
    case LoopKind::kParallel:
      return "parallel";
    case LoopKind::kVectorized:
      return "vectorized";
    case LoopKind::kUnrolled:
      return "unrolled";
  }
  return "?";
}

// ---- Expression factories ----

Expr imm(int64_t v, ScalarType t) {
  check_type(t, "imm");
  if (is_float(t)) fail(std::string("imm of float type ") + type_name(t) + " (use fimm)");
  auto n = node(ExprKind::kIntImm, t);
  n->ival = wrap_int(v, t);
  return n;
}

Expr fimm(double v, ScalarType t) {
  check_type(t, "fimm");
  if (!is_float(t)) fail(std::string("fimm of non-float type ") + type_name(t) + " (use imm)");
  auto n = node(ExprKind::kFloatImm, t);
  // An f32 constant holds exactly the float value, so that equal constants
  // print equal.
  n->fval = t == ScalarType::kF32 ? double(float(v)) : v;
  return n;
}

Expr constant(double v, ScalarType t) {
  check_type(t, "constant");
  if (is_float(t)) return fimm(v, t);
  return imm(float_to_int(v, t), t);
}

Expr var(const std::string& name, ScalarType t) {
  check_type(t, "var");
  check_name(name, "var");
  auto n = node(ExprKind::kVar, t);
  n->name = name;
  return n;
}

Expr param(int index) {
  if (index < 0) fail("param index " + std::to_string(index) + " is negative");
  auto n = node(ExprKind::kParam, ScalarType::kI64);
  n->ival = index;
  return n;
}

Expr unary(UnaryOp op, Expr a) {
  check_not_null(a, "unary");
  if (uint8_t(op) > uint8_t(UnaryOp::kAtanh)) fail("unary: invalid op " + std::to_string(int(op)));
  ScalarType t = a->type;
  bool ok = false;
  switch (op) {
    case UnaryOp::kNeg:
    case UnaryOp::kAbs:
      ok = is_int(t) || is_float(t);
      break;
    case UnaryOp::kNot:
      ok = is_int(t) || t == ScalarType::kBool;
      break;
    default:
      ok = is_float(t);
      break;
  }
  if (!ok) {
    fail(std::string("unary ") + unary_name(op) + " does not apply to " + type_name(t) + " (" +
         brief(a) + ")");
  }
  if (a->kind == ExprKind::kIntImm) return imm(eval_int_unary(op, t, a->ival), t);
  if (a->kind == ExprKind::kFloatImm && op == UnaryOp::kNeg) return fimm(-a->fval, t);
  if (a->kind == ExprKind::kFloatImm && op == UnaryOp::kAbs) return fimm(std::fabs(a->fval), t);
  auto n = node(ExprKind::kUnary, t);
  n->op = uint8_t(op);
  n->args = {std::move(a)};
  return n;
}

Expr binary(BinaryOp op, Expr a, Expr b) {
  check_not_null(a, "binary");
  check_not_null(b, "binary");
  if (uint8_t(op) > uint8_t(BinaryOp::kGe)) fail("binary: invalid op " + std::to_string(int(op)));
  ScalarType t = a->type;
  if (b->type != t) {
    fail(std::string("binary ") + binary_name(op) + ": operand types differ (" + type_name(t) +
         " vs " + type_name(b->type) + ") in " + brief(a) + " " + binary_name(op) + " " + brief(b));
  }
  bool ok = false;
  switch (op) {
    case BinaryOp::kAdd:
    case BinaryOp::kSub:
    case BinaryOp::kMul:
    case BinaryOp::kDiv:
    case BinaryOp::kMod:
    case BinaryOp::kMin:
    case BinaryOp::kMax:
      ok = is_int(t) || is_float(t);
      break;
    case BinaryOp::kPow:
      ok = is_float(t);
      break;
    case BinaryOp::kAnd:
    case BinaryOp::kOr:
    case BinaryOp::kXor:
      ok = is_int(t) || t == ScalarType::kBool;
      break;
    case BinaryOp::kShl:
    case BinaryOp::kShr:
      ok = is_int(t);
      break;
    default:
      ok = true;
      break;  // comparisons apply to every type
  }
  if (!ok) {
    fail(std::string("binary ") + binary_name(op) + " does not apply to " + type_name(t) + " (" +
         brief(a) + ", " + brief(b) + ")");
  }
  ScalarType result = is_comparison(op) ? ScalarType::kBool : t;
  bool ai = a->kind == ExprKind::kIntImm, bi = b->kind == ExprKind::kIntImm;
  if (ai && bi) return imm(eval_int_binary(op, t, a->ival, b->ival), result);
  if (is_int(t)) {
    switch (op) {
      case BinaryOp::kAdd:
        if (a->is_int_imm(0)) return b;
        if (b->is_int_imm(0)) return a;
        // (x + c1) + c2 -> x + (c1 + c2): keeps offset index arithmetic flat.
        if (bi && a->kind == ExprKind::kBinary && BinaryOp(a->op) == BinaryOp::kAdd &&
            a->args[1]->is_int_imm()) {
          return binary(BinaryOp::kAdd, a->args[0],
                        imm(eval_int_binary(BinaryOp::kAdd, t, a->args[1]->ival, b->ival), t));
        }
        break;
      case BinaryOp::kSub:
        if (b->is_int_imm(0)) return a;
        if (a == b) return imm(0, t);
        break;
      case BinaryOp::kMul:
        if (a->is_int_imm(1)) return b;
        if (b->is_int_imm(1)) return a;
        if (a->is_int_imm(0) || b->is_int_imm(0)) return imm(0, t);
        break;
      case BinaryOp::kDiv:
        if (b->is_int_imm(1)) return a;
        if (a->is_int_imm(0)) return imm(0, t);
        break;
      case BinaryOp::kMod:
        if (b->is_int_imm(1) || a->is_int_imm(0)) return imm(0, t);
        break;
      case BinaryOp::kMin:
      case BinaryOp::kMax:
        if (a == b) return a;
        break;
      default:
        break;
    }
  } else if (t == ScalarType::kBool && (op == BinaryOp::kAnd || op == BinaryOp::kOr)) {
    // true & x = x, false & x = false, true | x = true, false | x = x.
    bool is_and = op == BinaryOp::kAnd;
    if (ai) return (a->ival != 0) == is_and ? b : a;
    if (bi) return (b->ival != 0) == is_and ? a : b;
  }
  auto n = node(ExprKind::kBinary, result);
  n->op = uint8_t(op);
  n->args = {std::move(a), std::move(b)};
  return n;
}

Expr cast(ScalarType t, Expr a) {
  check_type(t, "cast");
  check_not_null(a, "cast");
  if (a->type == t) return a;
  if (a->kind == ExprKind::kIntImm) {
    if (is_float(t)) return fimm(int_to_float(a->ival, a->type, t), t);
    if (t == ScalarType::kBool) return imm(a->ival != 0, t);
    return imm(a->ival,
               t);  // wraps (canonical operand: sign/zero extension already applied)
  }
  if (a->kind == ExprKind::kFloatImm) {
    double v = a->fval;
    if (is_float(t)) return fimm(v, t);
    if (t == ScalarType::kBool) return imm(v != 0, t);  // NaN != 0
    // Fold only in-range conversions; others are unspecified and left to the
    // backend.
    double tv = std::trunc(v);
    bool in_range = false;
    if (std::isfinite(tv)) {
      int bits = type_bytes(t) * 8;
      double lo = is_signed_int(t) ? -std::ldexp(1.0, bits - 1) : 0.0;
      double hi = is_signed_int(t) ? std::ldexp(1.0, bits - 1) : std::ldexp(1.0, bits);
      in_range = tv >= lo && tv < hi;
    }
    if (in_range) return imm(float_to_int(v, t), t);
  }
  auto n = node(ExprKind::kCast, t);
  n->args = {std::move(a)};
  return n;
}

Expr select(Expr cond, Expr if_true, Expr if_false) {
  check_not_null(cond, "select");
  check_not_null(if_true, "select");
  check_not_null(if_false, "select");
  if (cond->type != ScalarType::kBool) {
    fail(std::string("select condition must be bool, got ") + type_name(cond->type) + " (" +
         brief(cond) + ")");
  }
  if (if_true->type != if_false->type) {
    fail(std::string("select operand types differ (") + type_name(if_true->type) + " vs " +
         type_name(if_false->type) + ")");
  }
  if (cond->kind == ExprKind::kIntImm) return cond->ival ? if_true : if_false;
  if (if_true == if_false) return if_true;
  auto n = node(ExprKind::kSelect, if_true->type);
  n->args = {std::move(cond), std::move(if_true), std::move(if_false)};
  return n;
}

Expr load(int buffer, ScalarType t, std::vector<Expr> indices) {
  check_type(t, "load");
  if (buffer < 0) fail("load from negative buffer id " + std::to_string(buffer));
  for (size_t i = 0; i < indices.size(); ++i) {
    check_i64(indices[i], "load of b" + std::to_string(buffer) + ": index " + std::to_string(i));
  }
  auto n = node(ExprKind::kLoad, t);
  n->ival = buffer;
  n->args = std::move(indices);
  return n;
}

Expr reduce(ReduceOp op, std::vector<std::string> vars, std::vector<Expr> extents, Expr init,
            Expr value) {
  if (uint8_t(op) > uint8_t(ReduceOp::kMax)) fail("reduce: invalid op " + std::to_string(int(op)));
  check_not_null(init, "reduce init");
  check_not_null(value, "reduce value");
  if (vars.empty()) fail("reduce without variables");
  if (vars.size() != extents.size()) {
    fail("reduce: " + std::to_string(vars.size()) + " variables but " +
         std::to_string(extents.size()) + " extents");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < vars.size(); ++i) {
    check_name(vars[i], "reduce variable");
    if (!seen.insert(vars[i]).second) fail("reduce variable '" + vars[i] + "' listed twice");
    check_i64(extents[i], "reduce extent of '" + vars[i] + "'");
  }
  if (init->type != value->type) {
    fail(std::string("reduce ") + reduce_name(op) + ": init is " + type_name(init->type) +
         " but value is " + type_name(value->type));
  }
  if (!is_int(value->type) && !is_float(value->type)) {
    fail(std::string("reduce ") + reduce_name(op) + " does not apply to " + type_name(value->type));
  }
  for (const Expr& e : extents) {
    if (e->is_int_imm() && e->ival <= 0) return init;  // empty range
  }
  auto n = node(ExprKind::kReduce, value->type);
  n->op = uint8_t(op);
  n->reduce_vars = std::move(vars);
  n->reduce_extents = std::move(extents);
  n->args = {std::move(init), std::move(value)};
  return n;
}

Expr operator+(Expr a, Expr b) { return binary(BinaryOp::kAdd, std::move(a), std::move(b)); }
Expr operator-(Expr a, Expr b) { return binary(BinaryOp::kSub, std::move(a), std::move(b)); }
Expr operator*(Expr a, Expr b) { return binary(BinaryOp::kMul, std::move(a), std::move(b)); }
Expr operator/(Expr a, Expr b) { return binary(BinaryOp::kDiv, std::move(a), std::move(b)); }
Expr operator%(Expr a, Expr b) { return binary(BinaryOp::kMod, std::move(a), std::move(b)); }
Expr operator+(Expr a, int64_t b) {
  Expr c = constant_like(a, b, "+");
  return binary(BinaryOp::kAdd, std::move(a), std::move(c));
}
Expr operator-(Expr a, int64_t b) {
  Expr c = constant_like(a, b, "-");
  return binary(BinaryOp::kSub, std::move(a), std::move(c));
}
Expr operator*(Expr a, int64_t b) {
  Expr c = constant_like(a, b, "*");
  return binary(BinaryOp::kMul, std::move(a), std::move(c));
}
Expr operator/(Expr a, int64_t b) {
  Expr c = constant_like(a, b, "/");
  return binary(BinaryOp::kDiv, std::move(a), std::move(c));
}
Expr operator%(Expr a, int64_t b) {
  Expr c = constant_like(a, b, "%");
  return binary(BinaryOp::kMod, std::move(a), std::move(c));
}
Expr min(Expr a, Expr b) { return binary(BinaryOp::kMin, std::move(a), std::move(b)); }
Expr max(Expr a, Expr b) { return binary(BinaryOp::kMax, std::move(a), std::move(b)); }

// ---- Statement factories ----

Stmt for_loop(const std::string& var, Expr extent, LoopKind kind, Stmt body, int64_t factor) {
  check_name(var, "loop variable");
  check_i64(extent, "extent of loop '" + var + "'");
  if (uint8_t(kind) > uint8_t(LoopKind::kUnrolled)) {
    fail("loop '" + var + "': invalid loop kind " + std::to_string(int(kind)));
  }
  if (!body) fail("loop '" + var + "': null body");
  if (factor < 0) fail("loop '" + var + "': negative factor " + std::to_string(factor));
  auto n = std::make_shared<StmtNode>();
  n->kind = StmtKind::kFor;
  n->var = var;
  n->extent = std::move(extent);
  n->loop = kind;
  n->factor = factor;
  n->body = {std::move(body)};
  return n;
}

Stmt store(int buffer, std::vector<Expr> indices, Expr value) {
  if (buffer < 0) fail("store to negative buffer id " + std::to_string(buffer));
  for (size_t i = 0; i < indices.size(); ++i) {
    check_i64(indices[i], "store to b" + std::to_string(buffer) + ": index " + std::to_string(i));
  }
  if (!value) fail("store to b" + std::to_string(buffer) + ": null value");
  auto n = std::make_shared<StmtNode>();
  n->kind = StmtKind::kStore;
  n->buffer = buffer;
  n->indices = std::move(indices);
  n->value = std::move(value);
  return n;
}

Stmt let(const std::string& name, Expr value, Stmt body) {
  check_name(name, "let");
  if (!value) fail("let '" + name + "': null value");
  if (!body) fail("let '" + name + "': null body");
  auto n = std::make_shared<StmtNode>();
  n->kind = StmtKind::kLet;
  n->var = name;
  n->value = std::move(value);
  n->body = {std::move(body)};
  return n;
}

Stmt block(std::vector<Stmt> stmts) {
  // Nested blocks are spliced and a one-statement block is that statement, so
  // that equal statement sequences have one representation (and one printed
  // text).
  std::vector<Stmt> flat;
  for (Stmt& s : stmts) {
    if (!s) fail("block: null statement");
    if (s->kind == StmtKind::kBlock) {
      flat.insert(flat.end(), s->body.begin(), s->body.end());
    } else {
      flat.push_back(std::move(s));
    }
  }
  if (flat.size() == 1) return flat[0];
  auto n = std::make_shared<StmtNode>();
  n->kind = StmtKind::kBlock;
  n->body = std::move(flat);
  return n;
}

Stmt if_then(Expr cond, Stmt then_body, Stmt else_body) {
  check_not_null(cond, "if");
  if (cond->type != ScalarType::kBool) {
    fail(std::string("if condition must be bool, got ") + type_name(cond->type) + " (" +
         brief(cond) + ")");
  }
  if (!then_body) fail("if: null then-body");
  if (cond->kind == ExprKind::kIntImm) {
    if (cond->ival) return then_body;
    return else_body ? else_body : block({});
  }
  auto n = std::make_shared<StmtNode>();
  n->kind = StmtKind::kIf;
  n->value = std::move(cond);
  n->body = {std::move(then_body)};
  if (else_body) n->body.push_back(std::move(else_body));
  return n;
}

std::vector<Expr> contiguous_strides(const std::vector<Expr>& dims) {
  std::vector<Expr> strides(dims.size());
  Expr s = imm(1);
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = s;
    check_i64(dims[i], "dim " + std::to_string(i));
    s = s * dims[i];
  }
  return strides;
}

}  // namespace kiln::jit
