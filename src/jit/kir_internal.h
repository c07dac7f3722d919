// Internal: the error helpers the kernel IR's factories (kir.cc) and its validator
// (kir_validate.cc) share.
#pragma once

#include <string>

#include "jit/kir.h"

namespace kiln::jit::detail {

/// Throws kiln::Error (kInternal) "kir: <msg>": a malformed kernel is a Kiln bug.
[[noreturn]] void fail(const std::string& msg);
/// A short rendering of `e` for error messages.
std::string brief(const Expr& e);
/// Whether `t` is one of the ScalarType enumerators.
bool is_valid_type(ScalarType t);
/// Fails unless `e` is a non-null i64 expression; `what` names it.
void check_i64(const Expr& e, const std::string& what);

}  // namespace kiln::jit::detail
