// The CUDA C printer (see cuda_c.h): the prelude of semantic helpers and the statement/expression
// printer. Reductions are printed as loops before the statement that uses them (their value is a
// fresh local), so every expression stays a single C expression.
#include "jit/cuda_c.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "kiln/error.h"

namespace kiln::jit {

namespace {

constexpr const char* kPrelude =
    R"(// ---- Kiln CUDA prelude: the kernel IR's scalar semantics (src/jit/kir.h) ----
#if !defined(__CUDACC_RTC__) && !defined(__CUDACC__)
// A host C++ compiler builds the same text: one thread (block 0 of a grid of one block), or with
// KILN_HOST_THREADS the blocks of a launch one after another, each block's threads as host
// threads (a test harness defines these names; __shared__ arrays are then function statics).
#include <math.h>
#include <string.h>
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __restrict__
struct kiln_dim3 { unsigned x, y, z; };
#ifdef KILN_HOST_THREADS
extern thread_local kiln_dim3 blockIdx, threadIdx;
extern kiln_dim3 blockDim, gridDim;
void __syncthreads();
float atomicAdd(float* address, float value);
#define __shared__ static
#else
static const kiln_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static const kiln_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#endif
static inline float __int_as_float(int b) { float f; memcpy(&f, &b, 4); return f; }
static inline double __longlong_as_double(long long b) { double d; memcpy(&d, &b, 8); return d; }
#endif
#define KILN_D static __device__ __forceinline__
// Wrapping integer arithmetic in an unsigned type of at least 32 bits; div/mod by zero give 0,
// MIN / -1 wraps, shift counts are taken modulo the width.
#define KILN_INT_OPS(T, U, S, BITS)                                                        \
  KILN_D T kiln_add(T a, T b) { return (T)((U)a + (U)b); }                                 \
  KILN_D T kiln_sub(T a, T b) { return (T)((U)a - (U)b); }                                 \
  KILN_D T kiln_mul(T a, T b) { return (T)((U)a * (U)b); }                                 \
  KILN_D T kiln_neg(T a) { return (T)((U)0 - (U)a); }                                      \
  KILN_D T kiln_abs(T a) { return (S && !(a >= (T)0)) ? kiln_neg(a) : a; }                 \
  KILN_D T kiln_div(T a, T b) {                                                            \
    return b == (T)0 ? (T)0 : (S && b == (T)(-1)) ? kiln_neg(a) : (T)(a / b);             \
  }                                                                                        \
  KILN_D T kiln_mod(T a, T b) {                                                            \
    return b == (T)0 ? (T)0 : (S && b == (T)(-1)) ? (T)0 : (T)(a % b);                    \
  }                                                                                        \
  KILN_D T kiln_min(T a, T b) { return b < a ? b : a; }                                    \
  KILN_D T kiln_max(T a, T b) { return a < b ? b : a; }                                    \
  KILN_D T kiln_shl(T a, T b) { return (T)((U)a << ((U)b % (U)BITS)); }                    \
  KILN_D T kiln_shr(T a, T b) {                                                            \
    return S ? (T)(a >> ((U)b % (U)BITS)) : (T)((U)a >> ((U)b % (U)BITS));                 \
  }
KILN_INT_OPS(signed char, unsigned int, true, 8)
KILN_INT_OPS(unsigned char, unsigned int, false, 8)
KILN_INT_OPS(short, unsigned int, true, 16)
KILN_INT_OPS(unsigned short, unsigned int, false, 16)
KILN_INT_OPS(int, unsigned int, true, 32)
KILN_INT_OPS(unsigned int, unsigned int, false, 32)
KILN_INT_OPS(long long, unsigned long long, true, 64)
KILN_INT_OPS(unsigned long long, unsigned long long, false, 64)
// Float min/max return NaN when either operand is NaN.
KILN_D float kiln_fmin(float a, float b) { return a != a ? a : b != b ? b : (b < a ? b : a); }
KILN_D float kiln_fmax(float a, float b) { return a != a ? a : b != b ? b : (a < b ? b : a); }
KILN_D double kiln_fmin(double a, double b) { return a != a ? a : b != b ? b : (b < a ? b : a); }
KILN_D double kiln_fmax(double a, double b) { return a != a ? a : b != b ? b : (a < b ? b : a); }
KILN_D float kiln_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
KILN_D double kiln_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
// Float -> integer never traps: NaN gives 0, values beyond i64 saturate (u64 keeps [2^63, 2^64)),
// then the i64 wraps to the target width, as the interpreter does.
KILN_D long long kiln_f2i(double x) {
  double t = trunc(x);
  if (t != t) return 0;
  if (t >= 9223372036854775808.0) return 9223372036854775807LL;
  if (t < -9223372036854775808.0) return -9223372036854775807LL - 1LL;
  return (long long)t;
}
KILN_D unsigned long long kiln_f2u64(double x) {
  double t = trunc(x);
  if (t != t) return 0ULL;
  if (t >= 9223372036854775808.0)
    return t < 18446744073709551616.0 ? (unsigned long long)t : ~0ULL;
  if (t < -9223372036854775808.0) return 9223372036854775808ULL;
  return (unsigned long long)(long long)t;
}
// Warp-cooperative rows (see cuda_c.h): KILN_WARP lanes share one iteration of a grid loop and
// combine reductions through kiln_shfl_xor. One lane on a single-thread host build; a
// KILN_HOST_THREADS harness provides the exchange (a block of 32 host threads is one warp).
#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define KILN_WARP 32
#define KILN_SHFL(T)                                                                       \
  KILN_D T kiln_shfl_xor(T v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
KILN_SHFL(float)
KILN_SHFL(double)
KILN_SHFL(int)
KILN_SHFL(unsigned int)
KILN_SHFL(long long)
KILN_SHFL(unsigned long long)
#define KILN_SHFL_NARROW(T)                                                                \
  KILN_D T kiln_shfl_xor(T v, int o) { return (T)__shfl_xor_sync(0xffffffffu, (int)v, o); }
KILN_SHFL_NARROW(signed char)
KILN_SHFL_NARROW(unsigned char)
KILN_SHFL_NARROW(short)
KILN_SHFL_NARROW(unsigned short)
#define kiln_syncwarp() __syncwarp()
#elif defined(KILN_HOST_THREADS)
#define KILN_WARP (blockDim.x < 32u ? 1u : 32u)
template <class T> T kiln_shfl_xor(T v, int o);
void kiln_syncwarp();
#else
#define KILN_WARP 1u
template <class T> static inline T kiln_shfl_xor(T v, int) { return v; }
static inline void kiln_syncwarp() {}
#endif
KILN_D float kiln_f32_bits(unsigned int b) { return __int_as_float((int)b); }
KILN_D double kiln_f64_bits(unsigned long long b) { return __longlong_as_double((long long)b); }
// ---- end of the prelude ----
)";

std::string int_imm(int64_t v, ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
      return v ? "true" : "false";
    case ScalarType::kI64:
      if (v == std::numeric_limits<int64_t>::min()) return "(-9223372036854775807LL - 1LL)";
      return v < 0 ? "(" + std::to_string(v) + "LL)" : std::to_string(v) + "LL";
    case ScalarType::kU64:
      return std::to_string(uint64_t(v)) + "ULL";
    case ScalarType::kI32:
      if (v == std::numeric_limits<int32_t>::min()) return "(-2147483647 - 1)";
      return v < 0 ? "(" + std::to_string(v) + ")" : std::to_string(v);
    case ScalarType::kU32:
      return std::to_string(uint64_t(v)) + "u";
    default:
      return std::string("((") + cuda_type(t) + ")" + std::to_string(v) + ")";
  }
}

// The shortest decimal that reads back as exactly `v` in type t, or the bits when not finite.
std::string float_imm(double v, ScalarType t) {
  const bool f32 = t == ScalarType::kF32;
  if (!std::isfinite(v)) {
    char buf[64];
    if (f32) {
      float f = float(v);
      uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      std::snprintf(buf, sizeof buf, "kiln_f32_bits(0x%08xu)", bits);
    } else {
      uint64_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      std::snprintf(buf, sizeof buf, "kiln_f64_bits(0x%016llxULL)",
                    static_cast<unsigned long long>(bits));
    }
    return buf;
  }
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    double back = std::strtod(buf, nullptr);
    if (f32 ? float(back) == float(v) : back == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  if (f32) s += "f";
  return std::signbit(v) ? "(" + s + ")" : s;
}

const char* float_fn(UnaryOp op) {
  switch (op) {
    case UnaryOp::kAbs:
      return "fabs";
    case UnaryOp::kFloor:
      return "floor";
    case UnaryOp::kCeil:
      return "ceil";
    case UnaryOp::kRound:
      return "rint";  // round half to even in the default rounding mode
    case UnaryOp::kSqrt:
      return "sqrt";
    case UnaryOp::kExp:
      return "exp";
    case UnaryOp::kLog:
      return "log";
    case UnaryOp::kTanh:
      return "tanh";
    case UnaryOp::kErf:
      return "erf";
    case UnaryOp::kSin:
      return "sin";
    case UnaryOp::kCos:
      return "cos";
    case UnaryOp::kTan:
      return "tan";
    case UnaryOp::kAsin:
      return "asin";
    case UnaryOp::kAcos:
      return "acos";
    case UnaryOp::kAtan:
      return "atan";
    case UnaryOp::kSinh:
      return "sinh";
    case UnaryOp::kCosh:
      return "cosh";
    case UnaryOp::kAsinh:
      return "asinh";
    case UnaryOp::kAcosh:
      return "acosh";
    case UnaryOp::kAtanh:
      return "atanh";
    default:
      return nullptr;
  }
}

[[noreturn]] void fail(const std::string& msg) {
  throw Error(ErrorCode::kInternal, "cuda printer: " + msg);
}

class Printer {
 public:
  explicit Printer(const Kernel& k) : k_(k) {}

  std::string out;
  /// Printing a warp-cooperative grid loop's body: statements at lane depth 0 are uniform
  /// across the warp; distributed loops (and what they hold) run per lane.
  bool warp = false;

  void line(const std::string& s) {
    out.append(size_t(indent_) * 2, ' ');
    out += s;
    out += '\n';
  }
  void push() { ++indent_; }
  void pop() { --indent_; }

  std::string expr(const Expr& e) {
    switch (e->kind) {
      case ExprKind::kIntImm:
        return int_imm(e->ival, e->type);
      case ExprKind::kFloatImm:
        return float_imm(e->fval, e->type);
      case ExprKind::kVar:
        return "v_" + e->name;
      case ExprKind::kParam:
        return "p" + std::to_string(e->ival);
      case ExprKind::kUnary:
        return unary(UnaryOp(e->op), e->type, expr(e->args[0]));
      case ExprKind::kBinary: {
        std::string a = expr(e->args[0]);
        std::string b = expr(e->args[1]);
        return binary(BinaryOp(e->op), e->args[0]->type, a, b);
      }
      case ExprKind::kCast:
        return cast(e->type, e->args[0]->type, expr(e->args[0]));
      case ExprKind::kSelect: {
        std::string c = expr(e->args[0]);
        std::string t = expr(e->args[1]);
        std::string f = expr(e->args[2]);
        return "(" + c + " ? " + t + " : " + f + ")";
      }
      case ExprKind::kLoad: {
        int b = int(e->ival);
        std::string ref = "b" + std::to_string(b) + "[" + offset(b, e->args) + "]";
        return e->type == ScalarType::kBool ? "(" + ref + " != 0)" : ref;
      }
      case ExprKind::kReduce:
        return reduce(e);
    }
    fail("invalid expression kind");
  }

  // Element offset of an access: sum(index * stride), dropping zero indices and unit strides.
  std::string offset(int buffer, const std::vector<Expr>& idx) {
    if (buffer < 0 || size_t(buffer) >= k_.buffers.size()) fail("buffer id out of range");
    const BufferDecl& d = k_.buffers[size_t(buffer)];
    if (idx.size() != d.strides.size()) fail("index count differs from the buffer's rank");
    std::string s;
    for (size_t i = 0; i < idx.size(); ++i) {
      if (idx[i]->is_int_imm(0) || d.strides[i]->is_int_imm(0)) continue;
      std::string term = expr(idx[i]);
      if (!d.strides[i]->is_int_imm(1)) term = "kiln_mul(" + term + ", " + expr(d.strides[i]) + ")";
      s = s.empty() ? term : "kiln_add(" + s + ", " + term + ")";
    }
    return s.empty() ? "0" : s;
  }

  void stmt(const Stmt& s) {
    switch (s->kind) {
      case StmtKind::kFor: {
        std::string ext = expr(s->extent);
        if (warp && lane_depth_ == 0) {  // the warp's lanes take its iterations in turn
          std::string v = "v_" + s->var;
          line("kiln_syncwarp();");  // the lanes' earlier reads are done
          line("for (long long " + v + " = kiln_lane; " + v + " < " + ext + "; " + v +
               " += KILN_WARP) {");
          push();
          ++lane_depth_;
          stmt(s->body[0]);
          --lane_depth_;
          pop();
          line("}");
          line("kiln_syncwarp();");
          return;
        }
        if ((s->loop == LoopKind::kUnrolled || s->loop == LoopKind::kVectorized) && s->factor > 1)
          line("#pragma unroll " + std::to_string(s->factor));
        std::string v = "v_" + s->var;
        line("for (long long " + v + " = 0; " + v + " < " + ext + "; ++" + v + ") {");
        push();
        stmt(s->body[0]);
        pop();
        line("}");
        return;
      }
      case StmtKind::kStore: {
        const int b = s->buffer;
        std::string off = offset(b, s->indices);
        std::string v = expr(s->value);
        if (k_.buffers[size_t(b)].type == ScalarType::kBool) v = "(unsigned char)" + v;
        // A uniform store is made once per warp (and seen by its lanes after the sync).
        const bool uniform = warp && lane_depth_ == 0;
        if (uniform) line("kiln_syncwarp();");  // the lanes' earlier reads are done
        line(std::string(uniform ? "if (kiln_lane == 0) " : "") + "b" + std::to_string(b) + "[" +
             off + "] = " + v + ";");
        if (uniform) line("kiln_syncwarp();");
        return;
      }
      case StmtKind::kLet: {
        std::string v = expr(s->value);
        line(std::string("const ") + cuda_type(s->value->type) + " v_" + s->var + " = " + v + ";");
        stmt(s->body[0]);
        return;
      }
      case StmtKind::kBlock:
        for (const Stmt& c : s->body) stmt(c);
        return;
      case StmtKind::kIf: {
        std::string c = expr(s->value);
        line("if (" + c + ") {");
        push();
        stmt(s->body[0]);
        pop();
        if (s->body.size() > 1 && s->body[1]) {
          line("} else {");
          push();
          stmt(s->body[1]);
          pop();
        }
        line("}");
        return;
      }
    }
    fail("invalid statement kind");
  }

 private:
  std::string unary(UnaryOp op, ScalarType t, const std::string& a) {
    if (is_float(t)) {
      const char* suffix = t == ScalarType::kF32 ? "f" : "";
      if (op == UnaryOp::kNeg) return "(-" + a + ")";
      if (op == UnaryOp::kSigmoid) return "kiln_sigmoid(" + a + ")";
      const char* fn = float_fn(op);
      if (!fn) fail(std::string("unary ") + unary_name(op) + " on " + type_name(t));
      return std::string(fn) + suffix + "(" + a + ")";
    }
    switch (op) {
      case UnaryOp::kNeg:
        return "kiln_neg(" + a + ")";
      case UnaryOp::kAbs:
        return "kiln_abs(" + a + ")";
      case UnaryOp::kNot:
        if (t == ScalarType::kBool) return "(!" + a + ")";
        return std::string("((") + cuda_type(t) + ")~" + a + ")";
      default:
        fail(std::string("unary ") + unary_name(op) + " on " + type_name(t));
    }
  }

  std::string binary(BinaryOp op, ScalarType t, const std::string& a, const std::string& b) {
    auto infix = [&](const char* o) { return "(" + a + " " + o + " " + b + ")"; };
    auto call = [&](const char* fn) { return std::string(fn) + "(" + a + ", " + b + ")"; };
    const bool flt = is_float(t);
    const char* sfx = t == ScalarType::kF32 ? "f" : "";
    switch (op) {
      case BinaryOp::kAdd:
        return flt ? infix("+") : call("kiln_add");
      case BinaryOp::kSub:
        return flt ? infix("-") : call("kiln_sub");
      case BinaryOp::kMul:
        return flt ? infix("*") : call("kiln_mul");
      case BinaryOp::kDiv:
        return flt ? infix("/") : call("kiln_div");
      case BinaryOp::kMod:
        return flt ? std::string("fmod") + sfx + "(" + a + ", " + b + ")" : call("kiln_mod");
      case BinaryOp::kMin:
        return flt ? call("kiln_fmin") : call("kiln_min");
      case BinaryOp::kMax:
        return flt ? call("kiln_fmax") : call("kiln_max");
      case BinaryOp::kPow:
        if (!flt) fail("integer pow");
        return std::string("pow") + sfx + "(" + a + ", " + b + ")";
      case BinaryOp::kAnd:
        return t == ScalarType::kBool ? infix("&&")
                                      : "((" + std::string(cuda_type(t)) + ")" + infix("&") + ")";
      case BinaryOp::kOr:
        return t == ScalarType::kBool ? infix("||")
                                      : "((" + std::string(cuda_type(t)) + ")" + infix("|") + ")";
      case BinaryOp::kXor:
        return t == ScalarType::kBool ? infix("!=")
                                      : "((" + std::string(cuda_type(t)) + ")" + infix("^") + ")";
      case BinaryOp::kShl:
        return call("kiln_shl");
      case BinaryOp::kShr:
        return call("kiln_shr");
      case BinaryOp::kEq:
        return infix("==");
      case BinaryOp::kNe:
        return infix("!=");
      case BinaryOp::kLt:
        return infix("<");
      case BinaryOp::kLe:
        return infix("<=");
      case BinaryOp::kGt:
        return infix(">");
      case BinaryOp::kGe:
        return infix(">=");
    }
    fail("invalid binary op");
  }

  static std::string cast(ScalarType to, ScalarType from, const std::string& a) {
    if (to == from) return a;
    if (to == ScalarType::kBool) return "(" + a + " != 0)";
    if (is_float(from) && is_int(to)) {
      if (to == ScalarType::kU64) return "kiln_f2u64(" + a + ")";
      if (to == ScalarType::kI64) return "kiln_f2i(" + a + ")";
      return std::string("((") + cuda_type(to) + ")kiln_f2i(" + a + "))";
    }
    return std::string("((") + cuda_type(to) + ")" + a + ")";
  }

  std::string reduce(const Expr& e) {
    const ScalarType t = e->type;
    const std::string acc = "kiln_r" + std::to_string(reduce_counter_++);
    std::string init = expr(e->args[0]);
    // A uniform reduction is shared by the warp: each lane folds every KILN_WARP-th value of
    // the outermost variable from the op's identity, the lanes combine by shuffles, then init.
    const bool coop = warp && lane_depth_ == 0 && !e->reduce_vars.empty();
    const ReduceOp op = ReduceOp(e->op);
    auto combine = [&](const std::string& a, const std::string& b) {
      switch (op) {
        case ReduceOp::kSum:
          return binary(BinaryOp::kAdd, t, a, b);
        case ReduceOp::kProd:
          return binary(BinaryOp::kMul, t, a, b);
        case ReduceOp::kMin:
          return binary(BinaryOp::kMin, t, a, b);
        case ReduceOp::kMax:
          return binary(BinaryOp::kMax, t, a, b);
      }
      fail("invalid reduce op");
    };
    line(std::string(cuda_type(t)) + " " + acc + " = " + (coop ? identity(op, t) : init) + ";");
    const size_t n = e->reduce_vars.size();
    ++lane_depth_;
    for (size_t d = 0; d < n; ++d) {
      std::string ext = expr(e->reduce_extents[d]);
      std::string v = "v_" + e->reduce_vars[d];
      if (coop && d == 0)
        line("for (long long " + v + " = kiln_lane; " + v + " < " + ext + "; " + v +
             " += KILN_WARP) {");
      else
        line("for (long long " + v + " = 0; " + v + " < " + ext + "; ++" + v + ") {");
      push();
    }
    std::string value = expr(e->args[1]);
    line(acc + " = " + combine(acc, value) + ";");
    for (size_t d = 0; d < n; ++d) {
      pop();
      line("}");
    }
    --lane_depth_;
    if (coop) {
      // Partners combine in lane order, so both get the same bits (signed zeros, NaNs).
      line("for (int kiln_o = KILN_WARP / 2; kiln_o > 0; kiln_o >>= 1) {");
      push();
      line(std::string(cuda_type(t)) + " kiln_p = kiln_shfl_xor(" + acc + ", kiln_o);");
      line(acc + " = (kiln_lane & kiln_o) ? " + combine("kiln_p", acc) + " : " +
           combine(acc, "kiln_p") + ";");
      pop();
      line("}");
      line(acc + " = " + combine(init, acc) + ";");
    }
    return acc;
  }

  // The identity of a reduction on type t (warp-cooperative reductions start each lane there).
  static std::string identity(ReduceOp op, ScalarType t) {
    const bool flt = is_float(t);
    switch (op) {
      case ReduceOp::kSum:
        return flt ? float_imm(-0.0, t) : int_imm(0, t);  // -0 + -0 stays -0
      case ReduceOp::kProd:
        return flt ? float_imm(1.0, t) : int_imm(1, t);
      case ReduceOp::kMin:
      case ReduceOp::kMax: {
        const bool mx = op == ReduceOp::kMax;
        if (flt) return float_imm(mx ? -HUGE_VAL : HUGE_VAL, t);
        switch (t) {
#define KILN_LIMIT(ST, CT)                                                                        \
  case ScalarType::ST:                                                                            \
    return int_imm(int64_t(mx ? std::numeric_limits<CT>::min() : std::numeric_limits<CT>::max()), \
                   t);
          KILN_LIMIT(kI8, int8_t)
          KILN_LIMIT(kU8, uint8_t)
          KILN_LIMIT(kI16, int16_t)
          KILN_LIMIT(kU16, uint16_t)
          KILN_LIMIT(kI32, int32_t)
          KILN_LIMIT(kU32, uint32_t)
          KILN_LIMIT(kI64, int64_t)
          KILN_LIMIT(kU64, uint64_t)
#undef KILN_LIMIT
          default:
            break;
        }
      }
    }
    fail(std::string("no warp reduction on ") + type_name(t));
  }

  const Kernel& k_;
  int indent_ = 0;
  int reduce_counter_ = 0;
  int lane_depth_ = 0;  // > 0: inside a distributed loop or a reduction's loops
};

// Top-level statements, with nested top-level blocks flattened.
void flatten(const Stmt& s, std::vector<Stmt>* out) {
  if (s->kind == StmtKind::kBlock) {
    for (const Stmt& c : s->body) flatten(c, out);
  } else {
    out->push_back(s);
  }
}

bool is_grid_loop(const Stmt& s) {
  return s->kind == StmtKind::kFor && s->loop == LoopKind::kParallel;
}

// ---- Warp-cooperative grid loops ----
// A grid loop whose iterations each reduce or loop over enough elements (a LayerNorm or Softmax
// row) gives each iteration a warp instead of a thread, when that is safe: every loop at the top
// of its body must have independent iterations (it writes no buffer it reads, and each store has
// an index that is its variable plus terms without it), so the lanes can take them in turn.

bool mentions(const Expr& e, const std::string& var) {
  if (!e) return false;
  if (e->kind == ExprKind::kVar && e->name == var) return true;
  for (const Expr& a : e->args)
    if (mentions(a, var)) return true;
  for (const Expr& a : e->reduce_extents)
    if (mentions(a, var)) return true;
  return false;
}

void loads_of(const Expr& e, std::vector<int>* out) {
  if (!e) return;
  if (e->kind == ExprKind::kLoad) out->push_back(int(e->ival));
  for (const Expr& a : e->args) loads_of(a, out);
  for (const Expr& a : e->reduce_extents) loads_of(a, out);
}

// Loads and stores of a statement tree.
void accesses(const Stmt& s, std::vector<int>* loads, std::vector<const StmtNode*>* stores) {
  if (!s) return;
  loads_of(s->extent, loads);
  loads_of(s->value, loads);
  for (const Expr& i : s->indices) loads_of(i, loads);
  if (s->kind == StmtKind::kStore) stores->push_back(s.get());
  for (const Stmt& b : s->body) accesses(b, loads, stores);
}

// Names bound inside a statement tree (loop variables, lets, reduction variables).
void bound_names(const Stmt& s, std::set<std::string>* out);
void bound_names(const Expr& e, std::set<std::string>* out) {
  if (!e) return;
  for (const std::string& v : e->reduce_vars) out->insert(v);
  for (const Expr& a : e->args) bound_names(a, out);
}
void bound_names(const Stmt& s, std::set<std::string>* out) {
  if (!s) return;
  if (s->kind == StmtKind::kFor || s->kind == StmtKind::kLet) out->insert(s->var);
  bound_names(s->value, out);
  for (const Expr& i : s->indices) bound_names(i, out);
  for (const Stmt& b : s->body) bound_names(b, out);
}

// Whether the loop's iterations are independent (see above): no buffer it stores is loaded in
// it, and every store to a buffer has, at one same index position with a non-zero stride, the
// loop variable plus one same offset that mentions nothing bound inside the loop.
bool distributable(const Kernel& k, const StmtNode& loop) {
  std::vector<int> loads;
  std::vector<const StmtNode*> stores;
  accesses(loop.body[0], &loads, &stores);
  std::set<std::string> inner = {loop.var};
  bound_names(loop.body[0], &inner);
  auto free_of_inner = [&](const Expr& e) {
    for (const std::string& v : inner)
      if (mentions(e, v)) return false;
    return true;
  };
  std::map<int, std::pair<size_t, std::string>> key;  // buffer -> (position, offset)
  for (const StmtNode* st : stores) {
    for (int b : loads)
      if (b == st->buffer) return false;
    const BufferDecl& d = k.buffers[size_t(st->buffer)];
    std::optional<std::pair<size_t, std::string>> found;
    for (size_t c = 0; c < st->indices.size() && !found; ++c) {
      const Expr& i = st->indices[c];
      if (!d.strides[c]->is_int_imm() || d.strides[c]->ival == 0) continue;
      auto is_var = [&](const Expr& e) { return e->kind == ExprKind::kVar && e->name == loop.var; };
      if (is_var(i)) {
        found = std::make_pair(c, std::string());
      } else if (i->kind == ExprKind::kBinary && BinaryOp(i->op) == BinaryOp::kAdd) {
        if (is_var(i->args[1]) && free_of_inner(i->args[0]))
          found = std::make_pair(c, print(i->args[0]));
        else if (is_var(i->args[0]) && free_of_inner(i->args[1]))
          found = std::make_pair(c, print(i->args[1]));
      }
    }
    if (!found) return false;
    auto [it, fresh] = key.emplace(st->buffer, *found);
    if (!fresh && it->second != *found) return false;
  }
  return true;
}

// The let-bound scalars in scope of a statement, by name.
using LetValues = std::map<std::string, Expr>;

// Bounds of an i64 expression where they follow from immediates, let-bound values, +, -, min
// and max (a window's tap count, max(min(k, ...) - min(k, ...), 0), is at most k); nullopt
// where unknown (params, loads, loop variables).
struct Bounds {
  std::optional<int64_t> lo, hi;
};
Bounds bounds_of(const Expr& e, const LetValues& lets, int depth = 0) {
  constexpr int64_t kLimit = int64_t(1) << 60;  // beyond: unknown (no overflow in the sums)
  auto fits = [&](std::optional<int64_t> v) {
    return v && *v > -kLimit && *v < kLimit ? v : std::nullopt;
  };
  if (!e || depth > 64) return {};
  if (e->is_int_imm()) return {fits(e->ival), fits(e->ival)};
  if (e->kind == ExprKind::kVar) {
    auto it = lets.find(e->name);
    return it == lets.end() ? Bounds{} : bounds_of(it->second, lets, depth + 1);
  }
  if (e->kind != ExprKind::kBinary || e->type != ScalarType::kI64) return {};
  const Bounds a = bounds_of(e->args[0], lets, depth + 1),
               b = bounds_of(e->args[1], lets, depth + 1);
  auto both = [](std::optional<int64_t> x, std::optional<int64_t> y, auto f) {
    return x && y ? std::optional<int64_t>(f(*x, *y)) : std::nullopt;
  };
  auto either = [](std::optional<int64_t> x, std::optional<int64_t> y, auto f) {
    return x && y ? std::optional<int64_t>(f(*x, *y)) : x ? x : y;
  };
  auto add = [](int64_t x, int64_t y) { return x + y; };
  auto sub = [](int64_t x, int64_t y) { return x - y; };
  auto lesser = [](int64_t x, int64_t y) { return std::min(x, y); };
  auto greater = [](int64_t x, int64_t y) { return std::max(x, y); };
  switch (BinaryOp(e->op)) {
    case BinaryOp::kAdd:
      return {fits(both(a.lo, b.lo, add)), fits(both(a.hi, b.hi, add))};
    case BinaryOp::kSub:
      return {fits(both(a.lo, b.hi, sub)), fits(both(a.hi, b.lo, sub))};
    case BinaryOp::kMin:  // at most either operand's upper bound
      return {both(a.lo, b.lo, lesser), either(a.hi, b.hi, lesser)};
    case BinaryOp::kMax:  // at least either operand's lower bound
      return {either(a.lo, b.lo, greater), both(a.hi, b.hi, greater)};
    default:
      return {};
  }
}

// Whether an extent is worth a warp: at least `n`, or not bounded below it before run time.
bool long_enough(const Expr& extent, int64_t n, const LetValues& lets) {
  std::optional<int64_t> hi = bounds_of(extent, lets).hi;
  return !hi || *hi >= n;
}

// Top-level reductions of an expression (not those inside another's value).
void reductions(const Expr& e, std::vector<const ExprNode*>* out) {
  if (!e) return;
  if (e->kind == ExprKind::kReduce) {
    out->push_back(e.get());
    reductions(e->args[0], out);  // the init is uniform too
    return;
  }
  for (const Expr& a : e->args) reductions(a, out);
}

// Walks the uniform (warp-level) statements of a grid loop's body: false when a loop there is
// not distributable or a reduction has a type shuffles do not carry; *worth when some
// reduction or loop is long enough.
bool warp_walk(const Kernel& k, const Stmt& s, bool* worth, LetValues& lets) {
  if (!s) return true;
  std::vector<const ExprNode*> reds;
  switch (s->kind) {
    case StmtKind::kFor:
      if (!distributable(k, *s)) return false;
      *worth |= long_enough(s->extent, 64, lets);
      reductions(s->extent, &reds);
      break;
    case StmtKind::kStore:
      for (const Expr& i : s->indices) reductions(i, &reds);
      reductions(s->value, &reds);
      break;
    case StmtKind::kLet:
    case StmtKind::kIf: {
      reductions(s->value, &reds);
      std::optional<LetValues> saved;
      if (s->kind == StmtKind::kLet) {
        saved = lets;
        lets[s->var] = s->value;
      }
      bool ok = true;
      for (const Stmt& b : s->body) ok = ok && warp_walk(k, b, worth, lets);
      if (saved) lets = std::move(*saved);
      if (!ok) return false;
      break;
    }
    case StmtKind::kBlock:
      for (const Stmt& b : s->body)
        if (!warp_walk(k, b, worth, lets)) return false;
      break;
  }
  for (const ExprNode* r : reds) {
    if (r->type == ScalarType::kBool) return false;
    // Only float sums may be reassociated (kir.h): a float product stays serial.
    if (is_float(r->type) && ReduceOp(r->op) == ReduceOp::kProd) return false;
    if (!r->reduce_extents.empty()) *worth |= long_enough(r->reduce_extents[0], 32, lets);
  }
  return true;
}

bool warp_rows(const Kernel& k, const Stmt& loop) {
  bool worth = false;
  LetValues lets;
  return warp_walk(k, loop->body[0], &worth, lets) && worth;
}

std::string signature(const Kernel& k, const std::string& name) {
  std::string sig = "extern \"C\" __global__ void __launch_bounds__(" +
                    std::to_string(kCudaBlockSize) + ") " + name + "(";
  bool first = true;
  for (size_t b = 0; b < k.buffers.size(); ++b) {
    const BufferDecl& d = k.buffers[b];
    sig += first ? "" : ", ";
    first = false;
    sig +=
        std::string(d.output ? "" : "const ") + cuda_type(d.type, true) + "* b" + std::to_string(b);
  }
  for (int p = 0; p < k.num_params; ++p) {
    sig += first ? "" : ", ";
    first = false;
    sig += "long long p" + std::to_string(p);
  }
  return sig + ") {";
}

}  // namespace

const char* cuda_type(ScalarType t, bool storage) {
  switch (t) {
    case ScalarType::kBool:
      return storage ? "unsigned char" : "bool";
    case ScalarType::kI8:
      return "signed char";
    case ScalarType::kU8:
      return "unsigned char";
    case ScalarType::kI16:
      return "short";
    case ScalarType::kU16:
      return "unsigned short";
    case ScalarType::kI32:
      return "int";
    case ScalarType::kU32:
      return "unsigned int";
    case ScalarType::kI64:
      return "long long";
    case ScalarType::kU64:
      return "unsigned long long";
    case ScalarType::kF32:
      return "float";
    case ScalarType::kF64:
      return "double";
  }
  return "void";
}

std::string cuda_f32_literal(float v) { return float_imm(double(v), ScalarType::kF32); }

const std::string& cuda_prelude() {
  static const std::string prelude = kPrelude;
  return prelude;
}

std::string print_cuda_functions(const Kernel& k, const std::string& name,
                                 std::vector<CudaFunction>* functions) {
  if (!k.body) fail("kernel without a body");
  std::vector<Stmt> top;
  flatten(k.body, &top);
  // Groups: each parallel loop alone, runs of other statements together.
  std::vector<std::vector<Stmt>> groups;
  for (const Stmt& s : top) {
    if (is_grid_loop(s) || groups.empty() || is_grid_loop(groups.back().back()))
      groups.emplace_back();
    groups.back().push_back(s);
  }
  if (groups.empty()) groups.emplace_back();  // an empty kernel still has its function
  std::string text;
  for (size_t g = 0; g < groups.size(); ++g) {
    std::string fname = g == 0 ? name : name + "_" + std::to_string(g);
    Printer p(k);
    p.line(signature(k, fname));
    p.push();
    CudaFunction f;
    f.name = fname;
    if (!groups[g].empty() && is_grid_loop(groups[g][0])) {
      const Stmt& loop = groups[g][0];
      f.grid_extent = loop->extent;
      std::string ext = p.expr(loop->extent);
      std::string v = "v_" + loop->var;
      p.line("const long long kiln_n = " + ext + ";");
      if (warp_rows(k, loop)) {  // a warp per iteration
        f.warp = true;
        f.grid_extent = loop->extent * int64_t(32);
        p.warp = true;
        p.line("const long long kiln_lane = (long long)(threadIdx.x % KILN_WARP);");
        p.line("for (long long " + v +
               " = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / KILN_WARP; " + v +
               " < kiln_n; " + v + " += ((long long)gridDim.x * blockDim.x) / KILN_WARP) {");
      } else {
        p.line("for (long long " + v + " = (long long)blockIdx.x * blockDim.x + threadIdx.x; " + v +
               " < kiln_n; " + v + " += (long long)gridDim.x * blockDim.x) {");
      }
      p.push();
      p.stmt(loop->body[0]);
      p.pop();
      p.line("}");
    } else {
      p.line("if (blockIdx.x != 0 || threadIdx.x != 0) return;");
      for (const Stmt& s : groups[g]) p.stmt(s);
    }
    p.pop();
    p.line("}");
    text += p.out;
    if (functions) functions->push_back(std::move(f));
  }
  return text;
}

CudaSource print_cuda(const Kernel& k, const std::string& name) {
  CudaSource src;
  std::string label = k.label;
  for (char& c : label)
    if (c == '\n' || c == '\r') c = ' ';
  src.code = "// Kiln kernel " + name + (label.empty() ? "" : ": " + label) + "\n";
  src.code += cuda_prelude();
  src.code += print_cuda_functions(k, name, &src.functions);
  return src;
}

}  // namespace kiln::jit
