// The reference interpreter of the kernel IR, and the scalar semantics it
// shares with the factories' constant folding.
//
// interpret() executes a kernel exactly as the semantics at the top of kir.h
// say, one scalar at a time: f32 math in float, f64 in double, integers
// wrapping in their own width. It is slow (it walks the tree for every element)
// and exists to be trusted: the lowering tests run every kernel through it to
// catch out-of-bounds accesses (each load and store is checked against its
// buffer's dims and byte size and reported as kiln::Error(kInternal) instead of
// touching memory) and to cross-check the LLVM code generator's results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "jit/kir.h"

namespace kiln::jit {

/// Runs `k` (validated first) on `buffers` (base pointers in kernel order;
/// `buffer_bytes` their sizes in bytes) with the i64 parameter values `params`
/// (at least k.num_params). Bool buffers hold one byte (0 or 1) per element.
/// Throws kiln::Error(kInternal) on an out-of-bounds access, a misaligned or
/// null buffer, or too few buffers or params.
void interpret(const Kernel& k, const std::vector<void*>& buffers,
               const std::vector<size_t>& buffer_bytes, const std::vector<int64_t>& params);

// ---- Scalar semantics of integer and bool values ----
// A value of an integer type is held in an int64_t in canonical form:
// sign-extended from its width for signed types, zero-extended for unsigned
// ones (a u64 keeps its bit pattern), 0 or 1 for bool.

/// The canonical form of `v` truncated to the width of `t` (bool: v != 0).
int64_t wrap_int(int64_t v, ScalarType t);
/// `op` on canonical operands of type `t` (integer or bool): wrapping
/// arithmetic, C division and remainder with 0 for a zero divisor, shift counts
/// modulo the width, comparisons giving 0/1. Throws kiln::Error(kInternal) for
/// kPow.
int64_t eval_int_binary(BinaryOp op, ScalarType t, int64_t a, int64_t b);
/// kNeg, kNot, kAbs on a canonical operand of type `t`; throws for the
/// float-only ops.
int64_t eval_int_unary(UnaryOp op, ScalarType t, int64_t a);
/// Float -> integer or bool cast: truncation toward zero; NaN gives 0 and
/// out-of-range values saturate to the i64/u64 range before wrapping to `t`
/// (the IR leaves them unspecified).
int64_t float_to_int(double v, ScalarType t);
/// Integer or bool value (canonical, of type `from`) as a value of float type
/// `to` (one rounding).
double int_to_float(int64_t v, ScalarType from, ScalarType to);

}  // namespace kiln::jit
