// The kernel IR: a small loop-nest language in the spirit of TVM's TIR and Halide's lowered IR.
//
// A Kernel is a list of buffers (element type, dims, strides, alignment), a count of i64 kernel
// parameters, and a body statement. Loop extents, buffer dims and strides are index expressions
// over integer constants and parameters, so one compiled kernel can serve every value of a
// dynamic dim: the caller passes the parameter values next to the buffer pointers.
//
// Nodes are immutable and shared (shared_ptr<const ...>); they are built only through the factory
// functions below, which check operand types and throw kiln::Error(kInternal) on misuse, so a
// lowering bug fails at construction, not in LLVM. validate() checks what needs the whole kernel
// (buffer ids and ranks, variables in scope, parallel loops placement). print() is exact and
// deterministic: two kernels print the same text iff they are the same kernel, which makes the
// text (and its hash) the kernel cache key.
//
// Semantics (shared by the interpreter, the LLVM code generator and later the CUDA printer):
// - Loops run their variable over [0, extent) in order (parallel loops in any order, so their
//   iterations must not conflict; vectorized loops as if serial).
// - Load/Store address element sum(index_i * stride_i) of the buffer (strides in elements).
//   Every access must be in bounds; Select evaluates both operands, so a lowering that needs a
//   guarded load clamps the index and selects the result (see safe_load in lower.h).
// - Integer arithmetic wraps (two's complement); integer kDiv truncates toward zero and kMod
//   takes the sign of the dividend (C semantics); a zero divisor yields 0 and never traps.
//   kShr is arithmetic for signed and logical for unsigned types; shift counts are taken modulo
//   the bit width.
// - Float kMin/kMax return NaN when either operand is NaN (numpy.minimum/maximum); kMod on floats
//   is C fmod. Comparisons yield kBool; ordered (false on NaN) except kNe (true on NaN).
// - kRound rounds half to even. Math intrinsics are computed in the operand's float type, accurate
//   to a few ulp (the code generator uses its own vectorizable polynomial implementations).
// - Cast float->int truncates toward zero (out-of-range values give an unspecified value, never
//   a trap); int->bool and float->bool test != 0; bool->number gives 0 or 1.
// - A Reduce expression folds `value` over its variables' ranges (in row-major order, the last
//   variable fastest) starting from `init`; float sums may be reassociated.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/dtype.h"

namespace kiln::jit {

enum class ScalarType : uint8_t { kBool, kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64, kF32, kF64 };

const char* type_name(ScalarType t);  // "bool", "i8", ..., "f32", "f64"
int type_bytes(ScalarType t);         // bool is stored as one byte
bool is_float(ScalarType t);
bool is_signed_int(ScalarType t);
bool is_int(ScalarType t);  // any integer type, bool excluded
/// The kernel type of a tensor dtype; nullopt for types the JIT does not handle (f16, strings...).
std::optional<ScalarType> scalar_type_of(DType d);

enum class ExprKind : uint8_t {
  kIntImm,
  kFloatImm,
  kVar,    // a loop variable or a Let-bound scalar
  kParam,  // i64 kernel parameter
  kUnary,
  kBinary,
  kCast,
  kSelect,
  kLoad,
  kReduce,
};

enum class UnaryOp : uint8_t {
  kNeg,
  kNot,  // logical on bool, bitwise on integers
  kAbs,
  kFloor,
  kCeil,
  kRound,
  kSqrt,
  kExp,
  kLog,
  kTanh,
  kErf,
  kSigmoid,
  kSin,
  kCos,
  kTan,
  kAsin,
  kAcos,
  kAtan,
  kSinh,
  kCosh,
  kAsinh,
  kAcosh,
  kAtanh,
};

enum class BinaryOp : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kMin,
  kMax,
  kPow,  // floats only
  kAnd,  // logical on bool, bitwise on integers
  kOr,
  kXor,
  kShl,
  kShr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
};

enum class ReduceOp : uint8_t { kSum, kProd, kMin, kMax };

const char* unary_name(UnaryOp op);    // "exp"
const char* binary_name(BinaryOp op);  // "+", "min", "pow", "==", ...
const char* reduce_name(ReduceOp op);  // "sum"

struct ExprNode;
using Expr = std::shared_ptr<const ExprNode>;

struct ExprNode {
  ExprKind kind;
  ScalarType type;
  int64_t ival = 0;                      // kIntImm value; kParam index; kLoad buffer id
  double fval = 0;                       // kFloatImm value
  std::string name;                      // kVar
  uint8_t op = 0;                        // UnaryOp / BinaryOp / ReduceOp for those kinds
  std::vector<Expr> args;                // operands; kLoad: indices; kReduce: {init, value}
  std::vector<std::string> reduce_vars;  // kReduce: the i64 variables, outermost first
  std::vector<Expr> reduce_extents;      // kReduce: their extents (i64)

  bool is_int_imm() const { return kind == ExprKind::kIntImm; }
  bool is_int_imm(int64_t v) const { return kind == ExprKind::kIntImm && ival == v; }
};

// ---- Expression factories (validate operand types; fold integer-immediate arithmetic) ----

Expr imm(int64_t v, ScalarType t = ScalarType::kI64);  // integer or bool constant
Expr fimm(double v, ScalarType t = ScalarType::kF32);  // float constant
/// A constant of any type (bool/int/float) from a double.
Expr constant(double v, ScalarType t);
Expr var(const std::string& name, ScalarType t = ScalarType::kI64);
Expr param(int index);  // i64
Expr unary(UnaryOp op, Expr a);
Expr binary(BinaryOp op, Expr a, Expr b);             // same operand types
Expr cast(ScalarType t, Expr a);                      // identity cast returns `a`
Expr select(Expr cond, Expr if_true, Expr if_false);  // cond is kBool
/// Element of buffer `buffer` (whose element type is `t`) at one index per dim (i64 each).
Expr load(int buffer, ScalarType t, std::vector<Expr> indices);
/// Folds `value` over vars (each in [0, extent)) with `op`, starting at `init` (same type).
Expr reduce(ReduceOp op, std::vector<std::string> vars, std::vector<Expr> extents, Expr init,
            Expr value);

// Arithmetic sugar. Mixed Expr/int64 operands convert the integer to the Expr's type.
Expr operator+(Expr a, Expr b);
Expr operator-(Expr a, Expr b);
Expr operator*(Expr a, Expr b);
Expr operator/(Expr a, Expr b);
Expr operator%(Expr a, Expr b);
Expr operator+(Expr a, int64_t b);
Expr operator-(Expr a, int64_t b);
Expr operator*(Expr a, int64_t b);
Expr operator/(Expr a, int64_t b);
Expr operator%(Expr a, int64_t b);
Expr min(Expr a, Expr b);
Expr max(Expr a, Expr b);

// ---- Statements ----

enum class StmtKind : uint8_t { kFor, kStore, kLet, kBlock, kIf };
enum class LoopKind : uint8_t { kSerial, kParallel, kVectorized, kUnrolled };
const char* loop_kind_name(LoopKind k);  // "serial", "parallel", "vectorized", "unrolled"

struct StmtNode;
using Stmt = std::shared_ptr<const StmtNode>;

struct StmtNode {
  StmtKind kind;
  // kFor: var runs over [0, extent). factor: the vector width (kVectorized), the unroll factor
  // (kUnrolled) or the minimum iterations per task (kParallel); 0 = let the backend choose.
  std::string var;  // kFor loop variable; kLet bound name
  Expr extent;      // kFor
  LoopKind loop = LoopKind::kSerial;
  int64_t factor = 0;
  int buffer = -1;            // kStore
  std::vector<Expr> indices;  // kStore
  Expr value;                 // kStore value; kLet value; kIf condition
  std::vector<Stmt> body;  // kFor/kLet: one statement; kBlock: the statements; kIf: {then, else?}
};

Stmt for_loop(const std::string& var, Expr extent, LoopKind kind, Stmt body, int64_t factor = 0);
Stmt store(int buffer, std::vector<Expr> indices, Expr value);
/// Binds `name` (of value's type) to `value` in `body`.
Stmt let(const std::string& name, Expr value, Stmt body);
Stmt block(std::vector<Stmt> stmts);
Stmt if_then(Expr cond, Stmt then_body, Stmt else_body = nullptr);

// ---- Kernels ----

struct BufferDecl {
  std::string name;  // for printing ("x", "y", "out0")
  ScalarType type = ScalarType::kF32;
  std::vector<Expr> dims;     // i64 expressions over immediates and params
  std::vector<Expr> strides;  // in elements, one per dim
  int align = 1;              // guaranteed byte alignment of the base pointer
  bool output = false;        // written by the kernel
};

/// Row-major strides for dims (the last dim contiguous).
std::vector<Expr> contiguous_strides(const std::vector<Expr>& dims);

struct Kernel {
  std::string label;  // a human hint ("Add", "MatMul+Relu"); printed as a comment, not hashed
  std::vector<BufferDecl> buffers;
  int num_params = 0;
  Stmt body;
};

/// Throws kiln::Error(kInternal) naming the problem: buffer ids out of range, index count !=
/// rank, stores to non-output buffers, variables used out of scope or bound twice, parallel
/// loops nested inside loops or lets, params >= num_params, non-i64 extents or indices.
void validate(const Kernel& k);

/// Exact text of the kernel (label as a leading comment line).
std::string print(const Kernel& k);
std::string print(const Expr& e);
std::string print(const Stmt& s, int indent = 0);

/// Structural hash of the kernel without its label: 32 lowercase hex digits (128 bits).
std::string structural_hash(const Kernel& k);

/// 64-bit FNV-1a of `bytes`: half of structural_hash, and the checksum of the kernel caches'
/// files (detects truncation and corruption, not tampering).
uint64_t fnv1a64(const std::string& bytes);

}  // namespace kiln::jit
