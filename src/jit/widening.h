// Can a vectorized loop be widened into explicit vector code? (Used by the code generator.)
//
// The generator widens a `vectorized` loop by running its body on W consecutive iterations at
// once: every statement in program order, for all lanes. That has the serial loop's meaning when
// no iteration depends on another, which the kernel IR does not promise by itself, so this check
// looks for the patterns where widening would change results:
// - a store whose index does not depend on the loop variable (every lane writes one element: a
//   loop-carried dependence, as in an accumulation into out[0]);
// - a buffer both loaded and stored unless every access is to the same index, linear in the loop
//   variable (out[i] = out[i] * 2 is fine, out[i + 1] = out[i] + x is not);
// - an inner loop or reduction whose extent depends on the loop variable (lanes would need
//   different trip counts).
// A loop that fails the check is left to LLVM's loop vectorizer, which proves legality itself.
#pragma once

#include <string>

#include "jit/kir.h"

namespace kiln::jit {

struct Widening {
  bool ok = false;
  int max_bits = 32;  // the widest element the body loads or stores (32 if none)
};

/// Checks the body of a vectorized loop over `var`.
Widening check_widening(const std::string& var, const Stmt& body);

}  // namespace kiln::jit
