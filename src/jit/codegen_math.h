// Math functions of the kernel IR as inline, branch-free LLVM IR.
//
// The hot functions (exp, log, tanh, erf, sigmoid, pow, sin, cos) are emitted as straight-line
// polynomial code (Cephes-style range reduction and minimax polynomials) that works unchanged on
// scalars and on vectors, so a loop using them vectorizes like one using only adds and multiplies.
// f32 versions are accurate to about 1-3 ulp; pow computes log and exp in double so that large
// exponents do not amplify rounding. The f64 versions of exp, log and sigmoid use double-precision
// polynomials; the other f64 functions and the rarely used f32 ones (tan, asin, acos, atan, the
// hyperbolic ones) call libm, lane by lane when the operand is a vector.
//
// Special values follow C/IEEE: NaN propagates, exp overflows to inf and underflows to 0, log(0) =
// -inf, log(x < 0) = NaN, tanh and erf saturate to +-1, sigmoid never produces NaN for finite
// input, pow matches std::pow on signed zeros, infinities and negative bases.
//
// Used only by the code generator (codegen.cc); the emitted code sets its own fast-math flags
// (contraction only: reassociation would break the range reductions).
#pragma once

#include "jit/kir.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/IR/IRBuilder.h"

namespace kiln::jit {

/// op(x) for a float-only unary op (kExp ... kAtanh, not sqrt/floor/ceil/round/abs/neg, which are
/// plain LLVM intrinsics); x is f32 or f64, scalar or vector.
llvm::Value* emit_math_unary(llvm::IRBuilderBase& b, UnaryOp op, llvm::Value* x);

/// std::pow(x, y) for f32 or f64 operands of the same (scalar or vector) type.
llvm::Value* emit_math_pow(llvm::IRBuilderBase& b, llvm::Value* x, llvm::Value* y);

/// Calls the libm function `name` (of the operands' scalar float type) on each lane.
llvm::Value* emit_libm_call(llvm::IRBuilderBase& b, const char* name,
                            llvm::ArrayRef<llvm::Value*> args);

}  // namespace kiln::jit
