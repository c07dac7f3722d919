// Helpers shared by the data-movement lowerings (movement.cc, movement_index.cc).
//
// Movement ops never compute: each output element is one input element (or a fill value), so a
// lowering is an index map from the output's loop variables to the input. These helpers keep the
// index arithmetic lean (no "+ 0", "* 1") because the printed kernel is the cache key and a
// readable debugging aid, and they parse axes without throwing: a lowering that meets an invalid
// attribute returns nullopt so the reference kernel reports the error with its proper message.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/lower/lower.h"

namespace kiln::kernels::movement_lower {

using Index = std::vector<jit::Expr>;

/// a + b and a * b that skip immediate 0 / 1 operands.
jit::Expr add(const jit::Expr& a, const jit::Expr& b);
jit::Expr mul(const jit::Expr& a, const jit::Expr& b);
/// min(max(e, lo), hi).
jit::Expr clamp(const jit::Expr& e, const jit::Expr& lo, const jit::Expr& hi);
/// A comparison (kBool).
jit::Expr cmp(jit::BinaryOp op, const jit::Expr& a, const jit::Expr& b);
/// Logical and; a null operand stands for true.
jit::Expr all_of(const jit::Expr& a, const jit::Expr& b);

/// True when two dims are the same expression (the same immediate or the same param), so they are
/// equal in every specialization the kernel serves.
bool same_dim(const jit::Expr& a, const jit::Expr& b);
/// True when some dim is the immediate 0.
bool is_empty(const TensorArg& t);
/// True when the innermost dim has the immediate stride 1.
bool inner_unit_stride(const TensorArg& t);
/// Product of the concrete dims [begin, end) (for schedule choices).
int64_t concrete_product(const TensorArg& t, size_t begin, size_t end = size_t(-1));

/// An axis in [-rank, rank) normalized to [0, rank); nullopt when out of range.
std::optional<int> axis_of(int64_t axis, int rank);
/// Normalized axes; nullopt when one is out of range or repeated.
std::optional<std::vector<int>> axes_of(const std::vector<int64_t>& axes, int rank);

/// A kernel that does nothing (an empty output).
jit::Kernel empty_kernel(LowerContext& ctx);
/// The op type, as the kernel label.
std::string label_of(const LowerContext& ctx);

// Lowerings defined in movement_index.cc.
std::optional<jit::Kernel> lower_gather(LowerContext& ctx);
std::optional<jit::Kernel> lower_gather_elements(LowerContext& ctx);
std::optional<jit::Kernel> lower_pad(LowerContext& ctx);

}  // namespace kiln::kernels::movement_lower
