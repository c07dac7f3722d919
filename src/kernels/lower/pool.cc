// Lowerings of the pooling ops: MaxPool, AveragePool, LpPool (any number of spatial dims) and
// GlobalMaxPool, GlobalAveragePool, GlobalLpPool.
//
// With the GPU's schedule (no vector loops) a windowed pool is one loop nest over its outputs,
// each folding its own window's in-bounds taps (a thread per output). On the CPU, windowed pools
// walk one output row (the last spatial dim) per (n, c, outer output position),
// those fused into the parallel loop. A row is first set to the fold's identity, then, for every
// in-bounds tap of the outer spatial dims, folded with the taps of the last dim:
//   - interior outputs, whose window lies inside the row, fold all kernel taps with a
//     fixed-extent reduction in a vectorized loop over the output row;
//   - the few border outputs on either side fold only their in-bounds taps (a per-output range).
// Padding therefore never reads memory and needs no select: pad positions contribute nothing, as
// in the reference kernel (max ignores them; average divides by the count of real taps, or of the
// taps inside the explicit padding with count_include_pad; positions past the padded extent in
// ceil_mode never count). AveragePool and LpPool finish with one pass over the row. The output
// sizes come from the output's dims (shape inference applied ceil_mode and the dropped last
// window), so the lowering only needs the pads.
//
// Types: MaxPool handles every numeric type; the others f32 and f64 (summed in the element type,
// where the reference sums in double). MaxPool's optional Indices output and rank < 3 global
// pools are left to the reference kernel. A NaN input may propagate differently from the
// reference's first-wins scan.
#include <cmath>
#include <limits>

#include "kernels/lower/lower.h"
#include "kernels/lower/window.h"

namespace kiln::kernels {
namespace {

using jit::Expr;
using jit::Stmt;

enum class PoolKind { kMax, kAverage, kLp };

// The fold of one pool kind: its reduction, identity, per-element term and finishing map.
struct Fold {
  PoolKind kind;
  jit::ScalarType type;
  int64_t p = 2;  // LpPool

  jit::ReduceOp op() const {
    return kind == PoolKind::kMax ? jit::ReduceOp::kMax : jit::ReduceOp::kSum;
  }
  Expr identity() const {
    if (kind != PoolKind::kMax) return jit::constant(0, type);
    if (jit::is_float(type)) return jit::fimm(-std::numeric_limits<double>::infinity(), type);
    return jit::constant(lowest_of(type), type);
  }
  Expr term(const Expr& x) const {
    if (kind != PoolKind::kLp) return x;
    if (p == 1) return jit::unary(jit::UnaryOp::kAbs, x);
    if (p == 2) return x * x;
    return jit::binary(jit::BinaryOp::kPow, jit::unary(jit::UnaryOp::kAbs, x),
                       jit::fimm(double(p), type));
  }
  Expr finish_lp(const Expr& sum) const {
    if (p == 1) return sum;
    if (p == 2) return jit::unary(jit::UnaryOp::kSqrt, sum);
    return jit::binary(jit::BinaryOp::kPow, sum, jit::fimm(1.0 / double(p), type));
  }
  static double lowest_of(jit::ScalarType t) {
    switch (t) {
      case jit::ScalarType::kI8:
        return double(std::numeric_limits<int8_t>::lowest());
      case jit::ScalarType::kI16:
        return double(std::numeric_limits<int16_t>::lowest());
      case jit::ScalarType::kI32:
        return double(std::numeric_limits<int32_t>::lowest());
      case jit::ScalarType::kI64:
        return double(std::numeric_limits<int64_t>::lowest());
      default:
        return 0;  // unsigned
    }
  }
};

// The fold of kind `kind` for this node, or nullopt for an unsupported type or p.
std::optional<Fold> make_fold(const LowerContext& ctx, PoolKind kind) {
  jit::ScalarType t = ctx.input(0).type;
  if (kind == PoolKind::kMax) {
    if (t == jit::ScalarType::kBool) return std::nullopt;
  } else if (!jit::is_float(t)) {
    return std::nullopt;
  }
  Fold f{kind, t};
  if (kind == PoolKind::kLp) {
    f.p = ctx.attrs().attr_int("p", 2);
    if (f.p <= 0) return std::nullopt;
  }
  return f;
}

std::optional<jit::Kernel> lower_window_pool(LowerContext& ctx, PoolKind kind) {
  if (ctx.num_outputs() != 1 || !ctx.has_input(0)) return std::nullopt;
  const TensorArg& x = ctx.input(0);
  const TensorArg& y = ctx.output(0);
  const int rank = x.rank();
  if (rank < 3 || y.rank() != rank || y.type != x.type) return std::nullopt;
  const int nsp = rank - 2;
  std::optional<Fold> fold = make_fold(ctx, kind);
  std::optional<window::Attrs> wa = window::read_attrs(ctx.attrs(), nsp);
  if (!fold || !wa) return std::nullopt;
  const bool include_pad =
      kind == PoolKind::kAverage && ctx.attrs().attr_int("count_include_pad", 0) != 0;
  const jit::ScalarType t = x.type;
  const int yb = ctx.output_buffer(0);

  // Per spatial dim: input size, output size and pads.
  std::vector<Expr> in, out, pb, pe;
  for (int i = 0; i < nsp; ++i) {
    in.push_back(x.dims[size_t(i + 2)]);
    out.push_back(y.dims[size_t(i + 2)]);
    pb.push_back(window::pad_begin(*wa, i, in.back()));
    pe.push_back(window::pad_end(*wa, i, in.back()));
  }
  const size_t last = size_t(nsp - 1);
  const Expr kw = jit::imm(wa->kernel[last]);
  const int64_t sw = wa->strides[last], dw = wa->dilations[last];
  int64_t taps_per_output = 1;
  for (int64_t k : wa->kernel) taps_per_output *= k;
  const int64_t row_len = y.concrete.empty() ? 1 : std::max<int64_t>(1, y.concrete.back());

  std::vector<Expr> nest = {window::common(x.dims[0], y.dims[0]),
                            window::common(x.dims[1], y.dims[1])};
  for (size_t i = 0; i < last; ++i) nest.push_back(out[i]);

  // The count of taps an average divides by: its window's real taps, or with count_include_pad
  // those inside the explicit padding; `o` the output position per spatial dim.
  auto average_count = [&](const std::vector<Expr>& o, const std::vector<Expr>& real_taps) {
    Expr count = jit::imm(1);
    for (size_t i = 0; i < size_t(nsp); ++i) {
      if (include_pad) {  // taps inside the padded extent [0, in + pb + pe)
        count = count * window::taps(o[i], wa->strides[i], wa->dilations[i],
                                     jit::imm(wa->kernel[i]), jit::imm(0), in[i] + pb[i] + pe[i])
                            .ext;
      } else {
        count = count * real_taps[i];
      }
    }
    return count;
  };
  auto finish = [&](const Expr& acc, const Expr& count) {
    if (kind == PoolKind::kLp) return fold->finish_lp(acc);
    if (kind == PoolKind::kMax) return acc;
    return jit::select(jit::binary(jit::BinaryOp::kGt, count, jit::imm(0)),
                       acc / jit::cast(t, jit::max(count, jit::imm(1))), jit::constant(0, t));
  };

  if (!ctx.schedule().vectorize) {
    // A schedule without vector loops (the GPU's: a thread per output) folds each output's own
    // window: the in-bounds taps of every spatial dim, one loop nest over all output elements.
    std::vector<Expr> all = nest;
    all.push_back(out[last]);
    auto output_body = [&](const std::vector<Expr>& idx) -> Stmt {
      window::Lets lets;
      std::vector<std::string> vars;
      std::vector<Expr> extents, x_idx = {idx[0], idx[1]}, o(idx.begin() + 2, idx.end());
      for (size_t i = 0; i < size_t(nsp); ++i) {
        const int64_t s = wa->strides[i], d = wa->dilations[i];
        window::Range r = window::bind(
            ctx, window::taps(o[i], s, d, jit::imm(wa->kernel[i]), pb[i], in[i]), "k", lets);
        vars.push_back(ctx.fresh_var("k"));
        extents.push_back(r.ext);
        x_idx.push_back(o[i] * s - pb[i] + (r.lo + jit::var(vars.back())) * d);
      }
      Expr acc = jit::reduce(fold->op(), vars, extents, fold->identity(),
                             fold->term(ctx.load_input(0, x_idx)));
      return window::wrap(lets, ctx.store_output(0, idx, finish(acc, average_count(o, extents))));
    };
    Stmt body = loop_nest(ctx, all, output_body, /*vectorize=*/false, taps_per_output);
    return ctx.finish(body, ctx.node().op_type);
  }

  auto row_body = [&](const std::vector<Expr>& idx) -> Stmt {
    // idx = (n, c, outer output positions...).
    auto y_index = [&](const Expr& ow) {
      std::vector<Expr> v = idx;
      v.push_back(ow);
      return v;
    };
    auto y_load = [&](const Expr& ow) { return jit::load(yb, t, y_index(ow)); };
    std::vector<Stmt> stmts;

    // 1. The row starts at the fold's identity.
    std::string v0 = ctx.fresh_var("ow");
    stmts.push_back(window::vector_loop(ctx, v0, out[last],
                                        jit::store(yb, y_index(jit::var(v0)), fold->identity())));

    // 2. Every in-bounds tap of the outer dims folds the row with the taps of the last dim.
    std::vector<Expr> x_outer = {idx[0], idx[1]};  // input index of the outer dims
    std::vector<std::string> tap_vars;
    std::vector<window::Range> outer_ranges;
    window::Lets tap_lets;
    for (size_t i = 0; i < last; ++i) {
      const Expr& o = idx[i + 2];
      window::Range r = window::bind(
          ctx,
          window::taps(o, wa->strides[i], wa->dilations[i], jit::imm(wa->kernel[i]), pb[i], in[i]),
          "k", tap_lets);
      outer_ranges.push_back(r);
      tap_vars.push_back(ctx.fresh_var("k"));
      Expr k = r.lo + jit::var(tap_vars.back());
      x_outer.push_back(o * wa->strides[i] - pb[i] + k * wa->dilations[i]);
    }
    auto x_at = [&](const Expr& pos) {
      std::vector<Expr> v = x_outer;
      v.push_back(pos);
      return fold->term(ctx.load_input(0, v));
    };
    window::Lets row_lets;
    std::vector<Stmt> row_fold;
    {
      // Interior: all kw taps in bounds.
      window::Range in_r = window::bind(
          ctx, window::interior(out[last], sw, dw, kw, pb[last], in[last]), "ow", row_lets);
      std::string t_var = ctx.fresh_var("ow"), k_var = ctx.fresh_var("kw");
      Expr ow = in_r.lo + jit::var(t_var);
      Expr value = jit::reduce(fold->op(), {k_var}, {kw}, y_load(ow),
                               x_at(ow * sw - pb[last] + jit::var(k_var) * dw));
      row_fold.push_back(
          window::vector_loop(ctx, t_var, in_r.ext, jit::store(yb, y_index(ow), value)));
      // Borders: [0, interior.lo) and [interior.lo + interior.ext, out).
      auto border = [&](const Expr& begin, const Expr& extent) {
        std::string b_var = ctx.fresh_var("ow"), kb_var = ctx.fresh_var("kw");
        Expr o = begin + jit::var(b_var);
        window::Range r = window::taps(o, sw, dw, kw, pb[last], in[last]);
        Expr pos = o * sw - pb[last] + (r.lo + jit::var(kb_var)) * dw;
        Expr v = jit::reduce(fold->op(), {kb_var}, {r.ext}, y_load(o), x_at(pos));
        return jit::for_loop(b_var, extent, jit::LoopKind::kSerial, jit::store(yb, y_index(o), v));
      };
      row_fold.push_back(border(jit::imm(0), in_r.lo));
      Expr hi = in_r.lo + in_r.ext;
      row_fold.push_back(border(hi, out[last] - hi));
    }
    Stmt tap_loop = jit::block(row_fold);
    for (size_t i = last; i-- > 0;)
      tap_loop = jit::for_loop(tap_vars[i], outer_ranges[i].ext, jit::LoopKind::kSerial, tap_loop);
    stmts.push_back(window::wrap(tap_lets, window::wrap(row_lets, tap_loop)));

    // 3. Average and Lp finish the row.
    if (kind != PoolKind::kMax) {
      std::string f_var = ctx.fresh_var("ow");
      Expr ow = jit::var(f_var);
      std::vector<Expr> o, real_taps;
      for (size_t i = 0; i < size_t(nsp); ++i) {
        o.push_back(i == last ? ow : idx[i + 2]);
        real_taps.push_back(window::taps(o.back(), wa->strides[i], wa->dilations[i],
                                         jit::imm(wa->kernel[i]), pb[i], in[i])
                                .ext);
      }
      Expr value = finish(y_load(ow), average_count(o, real_taps));
      stmts.push_back(
          window::vector_loop(ctx, f_var, out[last], jit::store(yb, y_index(ow), value)));
    }
    return jit::block(stmts);
  };
  Stmt body = loop_nest(ctx, nest, row_body, /*vectorize=*/false, row_len * taps_per_output);
  return ctx.finish(body, ctx.node().op_type);
}

std::optional<jit::Kernel> lower_global_pool(LowerContext& ctx, PoolKind kind) {
  if (ctx.num_outputs() != 1 || !ctx.has_input(0)) return std::nullopt;
  const TensorArg& x = ctx.input(0);
  const TensorArg& y = ctx.output(0);
  const int rank = x.rank();
  if (rank < 3 || y.rank() != rank || y.type != x.type) return std::nullopt;
  std::optional<Fold> fold = make_fold(ctx, kind);
  if (!fold || !jit::is_float(x.type)) return std::nullopt;  // the reference is float-only
  const jit::ScalarType t = x.type;
  std::vector<Expr> spatial(x.dims.begin() + 2, x.dims.end());
  int64_t plane = 1;
  for (size_t i = 2; i < x.concrete.size(); ++i) plane *= x.concrete[i];
  std::vector<Expr> nest = {window::common(x.dims[0], y.dims[0]),
                            window::common(x.dims[1], y.dims[1])};
  auto body = [&](const std::vector<Expr>& idx) -> Stmt {
    std::vector<std::string> vars;
    std::vector<Expr> x_idx = idx, y_idx = idx;
    for (size_t i = 0; i < spatial.size(); ++i) {
      vars.push_back(ctx.fresh_var("r"));
      x_idx.push_back(jit::var(vars.back()));
      y_idx.push_back(jit::imm(0));
    }
    Expr acc = jit::reduce(fold->op(), vars, spatial, fold->identity(),
                           fold->term(ctx.load_input(0, x_idx)));
    Expr value = acc;
    if (kind == PoolKind::kAverage) {
      Expr count = product(spatial);
      value = jit::select(jit::binary(jit::BinaryOp::kGt, count, jit::imm(0)),
                          acc / jit::cast(t, jit::max(count, jit::imm(1))), jit::constant(0, t));
    } else if (kind == PoolKind::kLp) {
      value = fold->finish_lp(acc);
    }
    return ctx.store_output(0, y_idx, value);
  };
  Stmt s = loop_nest(ctx, nest, body, /*vectorize=*/false, std::max<int64_t>(plane, 1));
  return ctx.finish(s, ctx.node().op_type);
}

}  // namespace

void register_pool_lowerings(Lowerings& l) {
  l.add("", "MaxPool", [](LowerContext& c) { return lower_window_pool(c, PoolKind::kMax); });
  l.add("", "AveragePool",
        [](LowerContext& c) { return lower_window_pool(c, PoolKind::kAverage); });
  l.add("", "LpPool", [](LowerContext& c) { return lower_window_pool(c, PoolKind::kLp); });
  l.add("", "GlobalMaxPool", [](LowerContext& c) { return lower_global_pool(c, PoolKind::kMax); });
  l.add("", "GlobalAveragePool",
        [](LowerContext& c) { return lower_global_pool(c, PoolKind::kAverage); });
  l.add("", "GlobalLpPool", [](LowerContext& c) { return lower_global_pool(c, PoolKind::kLp); });
}

}  // namespace kiln::kernels
