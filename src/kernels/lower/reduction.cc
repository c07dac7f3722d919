// Lowerings of the reductions: Reduce* (Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp,
// SumSquare), ArgMax/ArgMin, Softmax/LogSoftmax and LayerNormalization/RMSNormalization.
//
// Each is a loop nest over the kept dims whose body folds the reduced dims with kir Reduce
// expressions. Per-row statistics that are used more than once (a row's max, its sum of
// exponentials, its mean and inverse deviation) are bound with Let, so they are computed once per
// row; the row's elements are then written by an inner loop nest. The inner loops (or the reduce)
// run along the contiguous dim whenever that dim is reduced; otherwise the kept innermost loop is
// vectorized and each lane folds its own column.
//
// Semantics follow src/kernels/ref/reduction.cc and normalization.cc: float reductions accumulate
// in the element type (the reference uses double; results agree within rounding), integer ones in
// i64/u64 and convert once, as the reference does. Empty reductions give the reference's values
// (identities, NaN for a float mean, -inf for LogSum/LogSumExp). Max/Min/ArgMax propagate NaN as
// the reference does. Axes must be known at lowering time (attribute or constant input); invalid
// axes, unsupported types and unusual attribute values return nullopt.
#include <cmath>
#include <limits>
#include <map>

#include "kernels/lower/lower.h"

namespace kiln::kernels {
namespace {

using jit::BinaryOp;
using jit::Expr;
using jit::ReduceOp;
using jit::ScalarType;
using jit::Stmt;
using jit::UnaryOp;

constexpr double kInf = std::numeric_limits<double>::infinity();

Expr c(double v, ScalarType t) { return jit::constant(v, t); }
Expr un(UnaryOp op, Expr a) { return jit::unary(op, std::move(a)); }
Expr bin(BinaryOp op, Expr a, Expr b) { return jit::binary(op, std::move(a), std::move(b)); }
Expr is_nan(const Expr& x) { return bin(BinaryOp::kNe, x, x); }
// x - x == 0 holds exactly for finite x (inf - inf and NaN - NaN are NaN).
Expr is_finite(const Expr& x) { return bin(BinaryOp::kEq, x - x, c(0, x->type)); }

bool same_dim(const Expr& a, const Expr& b) {
  if (a->is_int_imm() || b->is_int_imm()) return a->is_int_imm() && b->is_int_imm(a->ival);
  return a == b || jit::print(a) == jit::print(b);
}

// Folds `value` over `vars`; with no variables (a rank-0 input), applies op(init, value) once.
Expr fold(ReduceOp op, const std::vector<std::string>& vars, const std::vector<Expr>& extents,
          Expr init, Expr value) {
  if (!vars.empty()) return jit::reduce(op, vars, extents, std::move(init), std::move(value));
  switch (op) {
    case ReduceOp::kSum:
      return init + value;
    case ReduceOp::kProd:
      return init * value;
    case ReduceOp::kMin:
      return jit::min(init, value);
    case ReduceOp::kMax:
      return jit::max(init, value);
  }
  return value;
}

// Normalized, distinct axes in [0, rank), or nullopt where the reference would fail. A rank-0
// tensor accepts axis 0 / -1 (naming the scalar), which reduces nothing.
std::optional<std::vector<bool>> axes_mask(const std::vector<int64_t>& axes, int rank,
                                           bool empty_means_all) {
  std::vector<bool> mask(size_t(rank), axes.empty() && empty_means_all);
  for (int64_t a : axes) {
    if (rank == 0) {
      if (a != 0 && a != -1) return std::nullopt;
      continue;
    }
    if (a < -rank || a >= rank) return std::nullopt;
    size_t n = size_t(a < 0 ? a + rank : a);
    if (mask[n] && !(axes.empty() && empty_means_all)) return std::nullopt;  // repeated
    mask[n] = true;
  }
  return mask;
}

// The dims of x split into kept and reduced ones; builds x's index from both kinds of indices.
struct Split {
  std::vector<bool> reduced;  // per dim of x

  std::vector<int> reduced_dims() const {
    std::vector<int> r;
    for (size_t d = 0; d < reduced.size(); ++d)
      if (reduced[d]) r.push_back(int(d));
    return r;
  }
  std::vector<int> kept_dims() const {
    std::vector<int> r;
    for (size_t d = 0; d < reduced.size(); ++d)
      if (!reduced[d]) r.push_back(int(d));
    return r;
  }
  // kept: one index per kept dim; red: one per reduced dim (both in dim order).
  std::vector<Expr> index(const std::vector<Expr>& kept, const std::vector<Expr>& red) const {
    std::vector<Expr> idx;
    size_t k = 0, r = 0;
    for (bool is_red : reduced) idx.push_back(is_red ? red[r++] : kept[k++]);
    return idx;
  }
};

// Fresh variables over the reduced dims of input `in`, and the load of x at (kept, those vars).
struct ReduceVars {
  std::vector<std::string> names;
  std::vector<Expr> extents;
  Expr load;
};

ReduceVars reduce_vars(LowerContext& ctx, int in, const Split& s, const std::vector<Expr>& kept) {
  ReduceVars rv;
  std::vector<Expr> red;
  for (int d : s.reduced_dims()) {
    rv.names.push_back(ctx.fresh_var("r"));
    rv.extents.push_back(ctx.input(in).dims[size_t(d)]);
    red.push_back(jit::var(rv.names.back()));
  }
  rv.load = ctx.load_input(in, s.index(kept, red));
  return rv;
}

// Output dims of a reduction of x over `s` (reduced dims kept as 1 when keepdims).
bool output_matches(const LowerContext& ctx, const Split& s, bool keep) {
  const TensorArg& x = ctx.input(0);
  std::vector<Expr> want;
  for (int d = 0; d < x.rank(); ++d) {
    if (!s.reduced[size_t(d)])
      want.push_back(x.dims[size_t(d)]);
    else if (keep)
      want.push_back(jit::imm(1));
  }
  const TensorArg& out = ctx.output(0);
  if (out.dims.size() != want.size()) return false;
  for (size_t d = 0; d < want.size(); ++d)
    if (!same_dim(out.dims[d], want[d])) return false;
  return true;
}

// Output o has exactly x's dims (Softmax, LayerNormalization's Y).
bool output_is_input_shaped(const LowerContext& ctx, int o) {
  const TensorArg& x = ctx.input(0);
  const TensorArg& out = ctx.output(o);
  if (out.rank() != x.rank()) return false;
  for (size_t d = 0; d < x.dims.size(); ++d)
    if (!same_dim(out.dims[d], x.dims[d])) return false;
  return true;
}

// The kept indices of x from an output index (keepdims: the kept positions; else all of them).
std::vector<Expr> kept_from_output(const Split& s, bool keep, const std::vector<Expr>& oidx) {
  if (!keep) return oidx;
  std::vector<Expr> kept;
  for (int d : s.kept_dims()) kept.push_back(oidx[size_t(d)]);
  return kept;
}

int64_t estimate_count(const LowerContext& ctx, const Split& s) {
  int64_t n = 1;
  for (int d : s.reduced_dims()) {
    auto v = concrete_value(ctx, ctx.input(0).dims[size_t(d)]);
    n *= std::max<int64_t>(v.value_or(1024), 1);
    if (n > (int64_t(1) << 30)) return int64_t(1) << 30;
  }
  return n;
}

bool last_dim_reduced(const Split& s) { return !s.reduced.empty() && s.reduced.back(); }

// ---- Reduce* ----

enum class Kind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

// Integer accumulator type: the reference accumulates in int64 / uint64.
ScalarType wide(ScalarType t) {
  if (jit::is_float(t)) return t;
  return jit::is_signed_int(t) ? ScalarType::kI64 : ScalarType::kU64;
}

// The lowest / greatest value of an integer type, as a constant of `as`.
Expr int_limit(ScalarType t, bool lowest, ScalarType as) {
  auto bits = jit::type_bytes(t) * 8;
  if (jit::is_signed_int(t)) {
    int64_t hi = bits == 64 ? std::numeric_limits<int64_t>::max() : (int64_t(1) << (bits - 1)) - 1;
    return jit::imm(lowest ? -hi - 1 : hi, as);
  }
  if (lowest) return jit::imm(0, as);
  return jit::imm(bits == 64 ? -1 : (int64_t(1) << bits) - 1, as);  // -1 is UINT64_MAX in u64
}

std::optional<jit::Kernel> lower_reduce(LowerContext& ctx, Kind kind) {
  if (!ctx.has_input(0) || ctx.num_outputs() != 1) return std::nullopt;
  const TensorArg& x = ctx.input(0);
  const ScalarType t = x.type;
  const bool is_bool = t == ScalarType::kBool;
  if (is_bool && kind != Kind::kMax && kind != Kind::kMin) return std::nullopt;
  if (!is_bool && !jit::is_float(t) && !jit::is_int(t)) return std::nullopt;
  // Integer results of log/sqrt convert from double in the reference: not lowered.
  if (jit::is_int(t) && (kind == Kind::kL2 || kind == Kind::kLogSum || kind == Kind::kLogSumExp))
    return std::nullopt;
  if (ctx.output(0).type != t) return std::nullopt;

  NodeAttrs attrs = ctx.attrs();
  const bool keep = attrs.attr_int("keepdims", 1) != 0;
  const bool from_input = ctx.opset() >= (ctx.node().op_type == "ReduceSum" ? 13 : 18);
  std::vector<int64_t> axes;
  if (!from_input) {
    axes = attrs.attr_ints("axes");
  } else if (ctx.has_input(1)) {
    auto v = ctx.constant_ints(1);
    if (!v) return std::nullopt;
    axes = *v;
  }
  const bool noop = from_input && axes.empty() && attrs.attr_int("noop_with_empty_axes", 0) != 0;
  Split s;
  if (noop) {
    s.reduced.assign(size_t(x.rank()), false);
  } else {
    auto mask = axes_mask(axes, x.rank(), true);
    if (!mask) return std::nullopt;
    s.reduced = *mask;
  }
  if (!output_matches(ctx, s, keep || noop)) return std::nullopt;
  if (noop) {
    Stmt body = loop_nest(ctx, ctx.output(0).dims, [&](const std::vector<Expr>& idx) {
      return ctx.store_output(0, idx, ctx.load_input(0, idx));
    });
    return ctx.finish(body, ctx.node().op_type);
  }

  const ScalarType acc = is_bool ? ScalarType::kU8 : wide(t);
  Expr count = jit::imm(1);
  bool empty = false;
  for (int d : s.reduced_dims()) {
    count = count * x.dims[size_t(d)];
    empty = empty || x.dims[size_t(d)]->is_int_imm(0);
  }

  auto body = [&](const std::vector<Expr>& oidx) -> Stmt {
    std::vector<Expr> kept = kept_from_output(s, keep || noop, oidx);
    ReduceVars rv = reduce_vars(ctx, 0, s, kept);
    Expr v = jit::cast(acc, rv.load);
    auto sum = [&](Expr value) {
      return fold(ReduceOp::kSum, rv.names, rv.extents, c(0, acc), std::move(value));
    };
    Expr r;
    switch (kind) {
      case Kind::kSum:
      case Kind::kMean:
      case Kind::kLogSum:
        r = sum(v);
        break;
      case Kind::kSumSquare:
      case Kind::kL2:
        r = sum(v * v);
        break;
      case Kind::kL1:
        r = sum(jit::is_signed_int(acc) || jit::is_float(acc) ? un(UnaryOp::kAbs, v) : v);
        break;
      case Kind::kProd:
        r = fold(ReduceOp::kProd, rv.names, rv.extents, c(1, acc), v);
        break;
      case Kind::kMax:
      case Kind::kMin: {
        bool mx = kind == Kind::kMax;
        Expr init = jit::is_float(acc) ? c(mx ? -kInf : kInf, acc)
                    : is_bool          ? jit::imm(mx ? 0 : 1, acc)
                                       : int_limit(t, mx, acc);
        r = fold(mx ? ReduceOp::kMax : ReduceOp::kMin, rv.names, rv.extents, init, v);
        break;
      }
      case Kind::kLogSumExp: {
        // log(sum(exp(x - m))) + m with m the row max; m = +-inf or NaN decides alone.
        std::string m = ctx.fresh_var("m"), sh = ctx.fresh_var("sh"), sm = ctx.fresh_var("s");
        Expr mv = jit::var(m, t), shv = jit::var(sh, t), smv = jit::var(sm, t);
        ReduceVars rv2 = reduce_vars(ctx, 0, s, kept);
        Expr result =
            jit::select(is_finite(mv), un(UnaryOp::kLog, smv) + shv,
                        jit::select(bin(BinaryOp::kOr, is_nan(mv), bin(BinaryOp::kGt, mv, c(0, t))),
                                    mv, c(-kInf, t)));
        Stmt st = ctx.store_output(0, oidx, result);
        st = jit::let(sm,
                      fold(ReduceOp::kSum, rv2.names, rv2.extents, c(0, t),
                           un(UnaryOp::kExp, rv2.load - shv)),
                      st);
        st = jit::let(sh, jit::select(is_finite(mv), mv, c(0, t)), st);
        return jit::let(m, fold(ReduceOp::kMax, rv.names, rv.extents, c(-kInf, t), rv.load), st);
      }
    }
    if (kind == Kind::kMean) {
      if (jit::is_float(t)) {
        r = r / jit::cast(t, count);  // 0 / 0 = NaN for an empty reduction
      } else {
        r = empty ? c(0, acc) : r / jit::cast(acc, count);
      }
    } else if (kind == Kind::kL2) {
      r = un(UnaryOp::kSqrt, r);
    } else if (kind == Kind::kLogSum) {
      r = un(UnaryOp::kLog, r);
    }
    if (is_bool) r = bin(BinaryOp::kNe, r, c(0, acc));
    return ctx.store_output(0, oidx, jit::cast(t, r));
  };
  int64_t work = estimate_count(ctx, s) * (kind == Kind::kLogSumExp ? 16 : 1);
  Stmt st = loop_nest(ctx, ctx.output(0).dims, body, !last_dim_reduced(s), work);
  return ctx.finish(st, ctx.node().op_type);
}

// ---- ArgMax / ArgMin ----

std::optional<jit::Kernel> lower_arg(LowerContext& ctx, bool is_max) {
  if (!ctx.has_input(0) || ctx.num_outputs() != 1) return std::nullopt;
  const TensorArg& x = ctx.input(0);
  const ScalarType t = x.type;
  if (!jit::is_float(t) && !jit::is_int(t)) return std::nullopt;
  if (ctx.output(0).type != ScalarType::kI64 || x.rank() == 0) return std::nullopt;
  NodeAttrs attrs = ctx.attrs();
  auto mask = axes_mask({attrs.attr_int("axis", 0)}, x.rank(), false);
  if (!mask) return std::nullopt;
  Split s{*mask};
  const int axis = s.reduced_dims()[0];
  if (x.dims[size_t(axis)]->is_int_imm(0)) return std::nullopt;  // the reference fails
  const bool keep = attrs.attr_int("keepdims", 1) != 0;
  const bool last = attrs.attr_int("select_last_index", 0) != 0;
  if (!output_matches(ctx, s, keep)) return std::nullopt;
  const Expr n = x.dims[size_t(axis)];

  auto body = [&](const std::vector<Expr>& oidx) -> Stmt {
    std::vector<Expr> kept = kept_from_output(s, keep, oidx);
    ReduceVars r1 = reduce_vars(ctx, 0, s, kept);
    std::string m = ctx.fresh_var("m");
    Expr mv = jit::var(m, t);
    // The extreme value; NaN when the row has one (the first NaN then wins, as in the reference).
    Expr init = jit::is_float(t) ? c(is_max ? -kInf : kInf, t) : int_limit(t, is_max, t);
    Expr extreme =
        fold(is_max ? ReduceOp::kMax : ReduceOp::kMin, r1.names, r1.extents, init, r1.load);
    // First index whose value is the extreme (or NaN when the extreme is NaN).
    ReduceVars r2 = reduce_vars(ctx, 0, s, kept);
    Expr j2 = jit::var(r2.names[0]);
    Expr hit2 = bin(BinaryOp::kEq, r2.load, mv);
    if (jit::is_float(t)) hit2 = jit::select(is_nan(mv), is_nan(r2.load), hit2);
    Expr first = fold(ReduceOp::kMin, r2.names, r2.extents, n, jit::select(hit2, j2, n));
    Expr result = first;
    if (last) {
      ReduceVars r3 = reduce_vars(ctx, 0, s, kept);
      Expr j3 = jit::var(r3.names[0]);
      Expr hit3 = bin(BinaryOp::kEq, r3.load, mv);
      Expr last_hit = fold(ReduceOp::kMax, r3.names, r3.extents, jit::imm(-1),
                           jit::select(hit3, j3, jit::imm(-1)));
      result = jit::is_float(t) ? jit::select(is_nan(mv), first, last_hit) : last_hit;
    }
    return jit::let(m, extreme, ctx.store_output(0, oidx, result));
  };
  int64_t work = 3 * estimate_count(ctx, s);
  Stmt st = loop_nest(ctx, ctx.output(0).dims, body, !last_dim_reduced(s), work);
  return ctx.finish(st, ctx.node().op_type);
}

// ---- Softmax / LogSoftmax ----

// Loops over the kept dims of x (top level, parallel when large); for each row `row` returns the
// statements (inner loops over the reduced dims included) given the kept indices.
Stmt per_row(LowerContext& ctx, const Split& s, int64_t work,
             const std::function<Stmt(const std::vector<Expr>&)>& row) {
  const TensorArg& x = ctx.input(0);
  std::vector<Expr> kept_dims;
  for (int d : s.kept_dims()) kept_dims.push_back(x.dims[size_t(d)]);
  return loop_nest(ctx, kept_dims, row, !last_dim_reduced(s), work);
}

// A loop nest (not top level) over the reduced dims; body gets the full index of x.
Stmt over_row(LowerContext& ctx, const Split& s, const std::vector<Expr>& kept,
              const std::function<Stmt(const std::vector<Expr>&)>& body) {
  const TensorArg& x = ctx.input(0);
  std::vector<Expr> red_dims;
  for (int d : s.reduced_dims()) red_dims.push_back(x.dims[size_t(d)]);
  return loop_nest(
      ctx, red_dims, [&](const std::vector<Expr>& red) { return body(s.index(kept, red)); },
      last_dim_reduced(s), 1, false);
}

std::optional<jit::Kernel> lower_softmax(LowerContext& ctx, bool log) {
  if (!ctx.has_input(0) || ctx.num_outputs() != 1) return std::nullopt;
  const TensorArg& x = ctx.input(0);
  const ScalarType t = x.type;
  if (!jit::is_float(t) || ctx.output(0).type != t) return std::nullopt;
  const int rank = x.rank();
  Split s;
  s.reduced.assign(size_t(rank), false);
  NodeAttrs attrs = ctx.attrs();
  if (ctx.opset() < 13) {
    // Coerced to 2-D at `axis` (axis == rank allowed): the row is every dim from axis on.
    int64_t axis = attrs.attr_int("axis", 1);
    if (axis < -rank || axis > rank) return std::nullopt;
    if (axis < 0) axis += rank;
    for (int d = int(axis); d < rank; ++d) s.reduced[size_t(d)] = true;
  } else {
    int64_t axis = attrs.attr_int("axis", -1);
    auto mask = axes_mask({axis}, rank, false);
    if (!mask) return std::nullopt;
    s.reduced = *mask;
  }
  if (!output_is_input_shaped(ctx, 0)) return std::nullopt;
  const int64_t n = estimate_count(ctx, s);
  auto row = [&](const std::vector<Expr>& kept) -> Stmt {
    ReduceVars r1 = reduce_vars(ctx, 0, s, kept);
    ReduceVars r2 = reduce_vars(ctx, 0, s, kept);
    std::string m = ctx.fresh_var("m"), sm = ctx.fresh_var("s");
    Expr mv = jit::var(m, t), smv = jit::var(sm, t);
    Expr max = fold(ReduceOp::kMax, r1.names, r1.extents, c(-kInf, t), r1.load);
    Expr sum = fold(ReduceOp::kSum, r2.names, r2.extents, c(0, t), un(UnaryOp::kExp, r2.load - mv));
    std::string ls;
    if (log) ls = ctx.fresh_var("ls");
    Stmt write = over_row(ctx, s, kept, [&](const std::vector<Expr>& idx) {
      Expr v = ctx.load_input(0, idx) - mv;
      Expr y = log ? v - jit::var(ls, t) : un(UnaryOp::kExp, v) / smv;
      return ctx.store_output(0, idx, y);
    });
    if (log) write = jit::let(ls, un(UnaryOp::kLog, smv), write);
    return jit::let(m, max, jit::let(sm, sum, write));
  };
  Stmt st = per_row(ctx, s, 3 * 8 * n, row);
  return ctx.finish(st, ctx.node().op_type);
}

// ---- LayerNormalization / RMSNormalization ----

// True when parameter input i (rank <= the normalized rank) broadcasts to x's trailing dims.
bool param_fits(const LowerContext& ctx, int i, int axis) {
  const TensorArg& x = ctx.input(0);
  const TensorArg& p = ctx.input(i);
  if (p.type != x.type || p.rank() > x.rank() - axis) return false;
  for (int d = 0; d < p.rank(); ++d) {
    const Expr& pd = p.dims[size_t(d)];
    if (!pd->is_int_imm(1) && !same_dim(pd, x.dims[size_t(x.rank() - p.rank() + d)])) return false;
  }
  return true;
}

std::optional<jit::Kernel> lower_layer_norm(LowerContext& ctx, bool rms) {
  if (!ctx.has_input(0) || !ctx.has_input(1) || ctx.num_outputs() < 1 || ctx.num_outputs() > 3)
    return std::nullopt;
  const TensorArg& x = ctx.input(0);
  const ScalarType t = x.type;
  const int rank = x.rank();
  if (!jit::is_float(t) || ctx.output(0).type != t || rank == 0) return std::nullopt;
  NodeAttrs attrs = ctx.attrs();
  int64_t axis = attrs.attr_int("axis", -1);
  if (axis < -rank || axis >= rank) return std::nullopt;
  if (axis < 0) axis += rank;
  int64_t stash_type = attrs.attr_int("stash_type", 1);
  if (stash_type <= 0 || stash_type > 255) return std::nullopt;
  auto stash = jit::scalar_type_of(DType(stash_type));
  if (!stash || !jit::is_float(*stash)) return std::nullopt;
  const bool has_bias = !rms && ctx.has_input(2);
  if (!param_fits(ctx, 1, int(axis)) || (has_bias && !param_fits(ctx, 2, int(axis))))
    return std::nullopt;
  Split s;
  s.reduced.assign(size_t(rank), false);
  for (int d = int(axis); d < rank; ++d) s.reduced[size_t(d)] = true;
  if (!output_is_input_shaped(ctx, 0)) return std::nullopt;
  // Mean / InvStdDev: x's dims up to axis, then 1s, of the stash type.
  for (int o = 1; o < ctx.num_outputs(); ++o) {
    const TensorArg& out = ctx.output(o);
    if (out.type != *stash || out.rank() != rank) return std::nullopt;
    for (int d = 0; d < rank; ++d)
      if (!(d < axis ? same_dim(out.dims[size_t(d)], x.dims[size_t(d)])
                     : out.dims[size_t(d)]->is_int_imm(1)))
        return std::nullopt;
  }
  Expr len = jit::imm(1);
  for (int d = int(axis); d < rank; ++d) len = len * x.dims[size_t(d)];
  const bool empty_row = len->is_int_imm(0);
  const double eps = double(attrs.attr_float("epsilon", 1e-5f));

  auto row = [&](const std::vector<Expr>& kept) -> Stmt {
    std::string mean = ctx.fresh_var("mean"), inv = ctx.fresh_var("inv");
    Expr meanv = jit::var(mean, t), invv = jit::var(inv, t);
    Expr mean_val = c(0, t);
    if (!rms && !empty_row) {
      ReduceVars r = reduce_vars(ctx, 0, s, kept);
      mean_val = fold(ReduceOp::kSum, r.names, r.extents, c(0, t), r.load) / jit::cast(t, len);
    }
    Expr var_val = c(0, t);
    if (!empty_row) {
      ReduceVars r = reduce_vars(ctx, 0, s, kept);
      Expr d = rms ? r.load : r.load - meanv;
      var_val = fold(ReduceOp::kSum, r.names, r.extents, c(0, t), d * d) / jit::cast(t, len);
    }
    Expr inv_val = c(1, t) / un(UnaryOp::kSqrt, var_val + c(eps, t));
    std::vector<Stmt> stmts;
    stmts.push_back(over_row(ctx, s, kept, [&](const std::vector<Expr>& idx) {
      Expr y =
          (ctx.load_input(0, idx) - meanv) * invv * ctx.load_input(1, ctx.broadcast_index(1, idx));
      if (has_bias) y = y + ctx.load_input(2, ctx.broadcast_index(2, idx));
      return ctx.store_output(0, idx, y);
    }));
    std::vector<Expr> stat_idx = s.index(kept, std::vector<Expr>(size_t(rank - axis), jit::imm(0)));
    if (ctx.num_outputs() > 1)
      stmts.push_back(ctx.store_output(1, stat_idx, jit::cast(*stash, meanv)));
    if (ctx.num_outputs() > 2)
      stmts.push_back(ctx.store_output(2, stat_idx, jit::cast(*stash, invv)));
    Stmt body = stmts.size() == 1 ? stmts[0] : jit::block(stmts);
    return jit::let(mean, mean_val, jit::let(inv, inv_val, body));
  };
  Stmt st = per_row(ctx, s, 4 * estimate_count(ctx, s), row);
  return ctx.finish(st, ctx.node().op_type);
}

}  // namespace

void register_reduction_lowerings(Lowerings& l) {
  const std::map<std::string, Kind> kinds = {{"ReduceSum", Kind::kSum},
                                             {"ReduceMean", Kind::kMean},
                                             {"ReduceMax", Kind::kMax},
                                             {"ReduceMin", Kind::kMin},
                                             {"ReduceProd", Kind::kProd},
                                             {"ReduceL1", Kind::kL1},
                                             {"ReduceL2", Kind::kL2},
                                             {"ReduceLogSum", Kind::kLogSum},
                                             {"ReduceLogSumExp", Kind::kLogSumExp},
                                             {"ReduceSumSquare", Kind::kSumSquare}};
  for (const auto& [op, kind] : kinds) {
    Kind k = kind;
    l.add("", op, [k](LowerContext& ctx) { return lower_reduce(ctx, k); });
  }
  l.add("", "ArgMax", [](LowerContext& ctx) { return lower_arg(ctx, true); });
  l.add("", "ArgMin", [](LowerContext& ctx) { return lower_arg(ctx, false); });
  l.add("", "Softmax", [](LowerContext& ctx) { return lower_softmax(ctx, false); });
  l.add("", "LogSoftmax", [](LowerContext& ctx) { return lower_softmax(ctx, true); });
  l.add("", "LayerNormalization", [](LowerContext& ctx) { return lower_layer_norm(ctx, false); });
  l.add("", "RMSNormalization", [](LowerContext& ctx) { return lower_layer_norm(ctx, true); });
}

}  // namespace kiln::kernels
