// Lowering of Conv (any number of spatial dims, groups, strides, dilations, pads, auto_pad,
// bias) for f32 and f64. W's dims may be kernel parameters; X's and W's channel counts only
// need to agree as shape inference says.
//
// Per group, Conv is a product of the weights (out channels x in channels * taps) with the input
// taps, computed along the output's last spatial dim (an output "row"). Two schedules:
//   - general: the (batch, group, block of R output channels, outer output position) tuples are
//     fused into the parallel loop. The block's rows are set to the bias; then, for every
//     in-bounds tap of the outer spatial dims and every tap kw of the last dim, the range of
//     output columns whose input column is in bounds is computed once (no padding checks inside)
//     and U input channels at a time are added: for ow vectorized,
//     Y[oc + r, ow] += W[oc + r, c + u, taps, kw] * X[c + u, rows, ow * s + off], the R x U
//     weights being loop invariants and each X vector loaded once for the R channels.
//   - depthwise (one input channel per group, channel multipliers included): per output row,
//     interior columns (whole window in bounds) sum all kw taps in one vectorized loop with the
//     weights as invariants, and the few border columns sum only their in-bounds taps. Rows whose
//     outer taps are all in bounds do this for every tap in one pass (small fixed kernels).
// The output is NCHW, the ONNX layout; nothing reads outside the tensors whatever the pads.
#include "kernels/lower/lower.h"
#include "kernels/lower/window.h"

namespace kiln::kernels {

void register_conv_lowering(Lowerings& l);

namespace {

using jit::Expr;
using jit::Stmt;

// Everything the two schedules share. Channel counts and kernel dims are Exprs: W's dims are kernel
// parameters when the weights' shape is dynamic.
struct ConvPlan {
  jit::ScalarType type = jit::ScalarType::kF32;
  int nsp = 0;  // spatial dims
  int64_t group = 1;
  Expr m, mg, cg;                         // out channels, out and in channels per group
  Expr groups;                            // group, bounded by X's channels (depthwise)
  std::vector<Expr> kernel, in, out, pb;  // per spatial dim
  std::vector<int64_t> strides, dilations;
  Expr batch;
  bool has_bias = false;
  bool no_taps = false;            // an empty input: every output is the bias
  int x = 0, w = 1, b = 2, y = 3;  // buffers
  int64_t taps_c = 1;              // concrete product of the kernel dims
  int64_t row_len = 1;             // concrete output row length
  int64_t cg_c = 1;                // concrete in channels per group
};

// Loops over the in-bounds taps of the outer spatial dims at outer output positions `o`, calling
// inner(k, pos) with the tap indices and the input positions of those dims.
Stmt outer_taps(
    LowerContext& ctx, const ConvPlan& p, const std::vector<Expr>& o,
    const std::function<Stmt(const std::vector<Expr>&, const std::vector<Expr>&)>& inner) {
  const size_t outer = size_t(p.nsp - 1);
  std::vector<std::string> vars;
  std::vector<window::Range> ranges;
  std::vector<Expr> k, pos;
  window::Lets lets;
  for (size_t i = 0; i < outer; ++i) {
    window::Range r = window::bind(
        ctx, window::taps(o[i], p.strides[i], p.dilations[i], p.kernel[i], p.pb[i], p.in[i]), "k",
        lets);
    ranges.push_back(r);
    vars.push_back(ctx.fresh_var("k"));
    k.push_back(r.lo + jit::var(vars.back()));
    pos.push_back(o[i] * p.strides[i] - p.pb[i] + k.back() * p.dilations[i]);
  }
  Stmt s = inner(k, pos);
  for (size_t i = outer; i-- > 0;)
    s = jit::for_loop(vars[i], ranges[i].ext, jit::LoopKind::kSerial, s);
  return window::wrap(lets, s);
}

Stmt conv_general(LowerContext& ctx, const ConvPlan& p) {
  const Schedule& sc = ctx.schedule();
  const int64_t R = sc.vector_lanes >= 16 ? 4 : 2, U = 4;
  // One group of R output channels per parallel iteration: measured faster than blocks of
  // several groups sharing the input rows (the loops stay simpler, and the input rows of a
  // task are few enough to stay in L1/L2 for the next group).
  const int64_t tm = R;
  const size_t last = size_t(p.nsp - 1);
  const int64_t sw = p.strides[last], dw = p.dilations[last];
  const jit::ScalarType t = p.type;
  std::vector<Expr> nest = {p.batch, jit::imm(p.group), (p.mg + (tm - 1)) / tm};
  for (size_t i = 0; i < last; ++i) nest.push_back(p.out[i]);

  auto body = [&](const std::vector<Expr>& idx) -> Stmt {
    const Expr& n = idx[0];
    const Expr& gi = idx[1];
    std::vector<Expr> o(idx.begin() + 3, idx.end());
    std::string oc0_v = ctx.fresh_var("oc"), rows_v = ctx.fresh_var("rows");
    Expr oc0 = jit::var(oc0_v);
    // Output channels of this block: R, unless mg is not a multiple of R.
    const bool full_blocks = p.mg->is_int_imm() && p.mg->ival % tm == 0;
    Expr rows = full_blocks ? jit::imm(tm) : jit::var(rows_v);
    Expr c0 = gi * p.cg;
    auto y_idx = [&](const Expr& oc, const Expr& ow) {
      std::vector<Expr> v = {n, oc};
      v.insert(v.end(), o.begin(), o.end());
      v.push_back(ow);
      return v;
    };
    std::vector<Stmt> stmts;
    {
      std::string rv = ctx.fresh_var("r"), ov = ctx.fresh_var("ow");
      Expr oc = oc0 + jit::var(rv);
      Expr init = p.has_bias ? jit::load(p.b, t, {oc}) : jit::constant(0, t);
      stmts.push_back(
          jit::for_loop(rv, rows, jit::LoopKind::kSerial,
                        window::vector_loop(ctx, ov, p.out[last],
                                            jit::store(p.y, y_idx(oc, jit::var(ov)), init))));
    }
    auto taps = [&](const std::vector<Expr>& k, const std::vector<Expr>& pos) -> Stmt {
      std::string kw_v = ctx.fresh_var("kw"), lo_v = ctx.fresh_var("lo"),
                  ext_v = ctx.fresh_var("ext");
      Expr kw = jit::var(kw_v), lo = jit::var(lo_v), ext = jit::var(ext_v);
      Expr off = kw * dw - p.pb[last];
      // Y[ocs, ow] += sum_u W[ocs, cs_u, k, kw] * X[c0 + cs_u, pos, ow * sw + off].
      auto update = [&](const std::vector<Expr>& ocs, const std::vector<Expr>& cs) {
        window::Lets lets;
        std::vector<std::vector<Expr>> wv(ocs.size());
        for (size_t r = 0; r < ocs.size(); ++r)
          for (const Expr& c : cs) {
            std::vector<Expr> wi = {ocs[r], c};
            wi.insert(wi.end(), k.begin(), k.end());
            wi.push_back(kw);
            lets.push_back({ctx.fresh_var("w"), jit::load(p.w, t, wi)});
            wv[r].push_back(jit::var(lets.back().first, t));
          }
        std::string ov = ctx.fresh_var("ow");
        Expr ow = lo + jit::var(ov);
        window::Lets xlets;
        std::vector<Expr> xv;
        for (const Expr& c : cs) {
          std::vector<Expr> xi = {n, c0 + c};
          xi.insert(xi.end(), pos.begin(), pos.end());
          xi.push_back(ow * sw + off);
          xlets.push_back({ctx.fresh_var("x"), jit::load(p.x, t, xi)});
          xv.push_back(jit::var(xlets.back().first, t));
        }
        std::vector<Stmt> stores;
        for (size_t r = 0; r < ocs.size(); ++r) {
          Expr acc = jit::load(p.y, t, y_idx(ocs[r], ow));
          for (size_t u = 0; u < cs.size(); ++u) acc = acc + wv[r][u] * xv[u];
          stores.push_back(jit::store(p.y, y_idx(ocs[r], ow), acc));
        }
        return window::wrap(
            lets, window::vector_loop(ctx, ov, ext, window::wrap(xlets, jit::block(stores))));
      };
      // Every output channel of the block, R at a time, for the input channels `cs`.
      auto channel_rows = [&](const std::vector<Expr>& cs) -> Stmt {
        std::string gv = ctx.fresh_var("rg"), rv = ctx.fresh_var("rr");
        std::vector<Expr> group, one = {oc0 + rows / R * R + jit::var(rv)};
        for (int64_t r = 0; r < R; ++r) group.push_back(oc0 + jit::var(gv) * R + r);
        return jit::block({window::serial_loop(gv, rows / R, update(group, cs)),
                           window::serial_loop(rv, rows % R, update(one, cs))});
      };
      std::vector<Stmt> per_kw;
      Expr quads = p.cg / U, rest = p.cg % U;
      if (!quads->is_int_imm(0)) {
        std::string cq = ctx.fresh_var("cq");
        std::vector<Expr> cs;
        for (int64_t u = 0; u < U; ++u) cs.push_back(jit::var(cq) * U + u);
        per_kw.push_back(jit::for_loop(cq, quads, jit::LoopKind::kSerial, channel_rows(cs)));
      }
      if (!rest->is_int_imm(0)) {
        std::string cr = ctx.fresh_var("cr");
        per_kw.push_back(jit::for_loop(cr, rest, jit::LoopKind::kSerial,
                                       channel_rows({quads * U + jit::var(cr)})));
      }
      window::Range r = window::outputs_for_offset(p.out[last], sw, off, p.in[last]);
      Stmt s = jit::let(lo_v, r.lo, jit::let(ext_v, r.ext, jit::block(per_kw)));
      return jit::for_loop(kw_v, p.kernel[last], jit::LoopKind::kSerial, s);
    };
    if (!p.no_taps) stmts.push_back(outer_taps(ctx, p, o, taps));
    Stmt s = jit::block(stmts);
    if (!full_blocks) s = jit::let(rows_v, jit::min(jit::imm(tm), p.mg - idx[2] * tm), s);
    return jit::let(oc0_v, gi * p.mg + idx[2] * tm, s);
  };
  return loop_nest(ctx, nest, body, /*vectorize=*/false, tm * p.row_len * p.cg_c * p.taps_c);
}

// One outer tap of depthwise conv: the tap indices and input positions of the outer dims.
struct OuterTap {
  std::vector<Expr> k, pos;
};

Stmt conv_depthwise(LowerContext& ctx, const ConvPlan& p) {
  const size_t last = size_t(p.nsp - 1);
  const Expr& kw_n = p.kernel[last];
  const int64_t sw = p.strides[last], dw = p.dilations[last];
  const jit::ScalarType t = p.type;
  std::vector<Expr> nest = {p.batch, p.groups, p.mg};
  for (size_t i = 0; i < last; ++i) nest.push_back(p.out[i]);
  // Rows whose outer taps are all in bounds (all but the border rows) take one pass that sums
  // every tap with the weights as invariants, when the kernel is small and fixed.
  int64_t all_taps = 1;
  bool fixed = true;
  for (const Expr& k : p.kernel) {
    fixed = fixed && k->is_int_imm();
    if (fixed) all_taps *= k->ival;
  }
  const bool one_pass = fixed && all_taps <= 32;

  auto body = [&](const std::vector<Expr>& idx) -> Stmt {
    const Expr& n = idx[0];
    const Expr& ic = idx[1];
    std::vector<Expr> o(idx.begin() + 3, idx.end());
    std::string oc_v = ctx.fresh_var("oc");
    Expr oc = jit::var(oc_v);
    auto y_idx = [&](const Expr& ow) {
      std::vector<Expr> v = {n, oc};
      v.insert(v.end(), o.begin(), o.end());
      v.push_back(ow);
      return v;
    };
    Expr bias = p.has_bias ? jit::load(p.b, t, {oc}) : jit::constant(0, t);
    auto w_at = [&](const OuterTap& tap, const Expr& kw) {
      std::vector<Expr> wi = {oc, jit::imm(0)};
      wi.insert(wi.end(), tap.k.begin(), tap.k.end());
      wi.push_back(kw);
      return jit::load(p.w, t, wi);
    };
    auto x_at = [&](const OuterTap& tap, const Expr& col) {
      std::vector<Expr> xi = {n, ic};
      xi.insert(xi.end(), tap.pos.begin(), tap.pos.end());
      xi.push_back(col);
      return jit::load(p.x, t, xi);
    };
    // Y[row] = (accumulate ? Y[row] : bias) + the taps of `taps` over the whole row: interior
    // columns in one vectorized loop, the border columns summing their in-bounds kw taps.
    auto row_pass = [&](const std::vector<OuterTap>& taps, bool accumulate) -> Stmt {
      window::Lets lets;
      window::Range in_r = window::bind(
          ctx, window::interior(p.out[last], sw, dw, kw_n, p.pb[last], p.in[last]), "ow", lets);
      std::vector<Stmt> parts;
      {
        std::string ov = ctx.fresh_var("ow");
        Expr ow = in_r.lo + jit::var(ov);
        Expr start = ow * sw - p.pb[last];
        Expr acc = accumulate ? jit::load(p.y, t, y_idx(ow)) : bias;
        for (const OuterTap& tap : taps) {
          if (kw_n->is_int_imm() && kw_n->ival <= 16) {
            for (int64_t j = 0; j < kw_n->ival; ++j) {
              lets.push_back({ctx.fresh_var("w"), w_at(tap, jit::imm(j))});
              acc = acc + jit::var(lets.back().first, t) * x_at(tap, start + j * dw);
            }
          } else {
            std::string kv = ctx.fresh_var("kw");
            Expr kw = jit::var(kv);
            acc = acc + jit::reduce(jit::ReduceOp::kSum, {kv}, {kw_n}, jit::constant(0, t),
                                    w_at(tap, kw) * x_at(tap, start + kw * dw));
          }
        }
        parts.push_back(window::vector_loop(ctx, ov, in_r.ext, jit::store(p.y, y_idx(ow), acc)));
      }
      auto border = [&](const Expr& begin, const Expr& extent) {
        std::string bv = ctx.fresh_var("ow");
        Expr ow = begin + jit::var(bv);
        window::Range r = window::taps(ow, sw, dw, kw_n, p.pb[last], p.in[last]);
        Expr acc = accumulate ? jit::load(p.y, t, y_idx(ow)) : bias;
        for (const OuterTap& tap : taps) {
          std::string kv = ctx.fresh_var("kw");
          Expr kw = r.lo + jit::var(kv);
          acc = acc + jit::reduce(jit::ReduceOp::kSum, {kv}, {r.ext}, jit::constant(0, t),
                                  w_at(tap, kw) * x_at(tap, ow * sw - p.pb[last] + kw * dw));
        }
        return jit::for_loop(bv, extent, jit::LoopKind::kSerial, jit::store(p.y, y_idx(ow), acc));
      };
      parts.push_back(border(jit::imm(0), in_r.lo));
      Expr hi = in_r.lo + in_r.ext;
      parts.push_back(border(hi, p.out[last] - hi));
      return window::wrap(lets, jit::block(parts));
    };

    // The general path: the row starts at the bias and each in-bounds outer tap adds a pass.
    std::vector<Stmt> general;
    {
      std::string ov = ctx.fresh_var("ow");
      general.push_back(
          window::vector_loop(ctx, ov, p.out[last], jit::store(p.y, y_idx(jit::var(ov)), bias)));
    }
    if (!p.no_taps)
      general.push_back(outer_taps(ctx, p, o, [&](const auto& k, const auto& pos) {
        return row_pass({OuterTap{k, pos}}, true);
      }));
    Stmt row = jit::block(general);
    if (one_pass && !p.no_taps) {
      // Every outer tap of the kernel, and whether all of them are in bounds for this row.
      std::vector<OuterTap> taps(1);
      Expr full;
      for (size_t i = 0; i < last; ++i) {
        const int64_t ki = p.kernel[i]->ival;
        Expr first = o[i] * p.strides[i] - p.pb[i];
        Expr ok = jit::binary(
            jit::BinaryOp::kAnd, jit::binary(jit::BinaryOp::kGe, first, jit::imm(0)),
            jit::binary(jit::BinaryOp::kLt, first + (ki - 1) * p.dilations[i], p.in[i]));
        full = full ? jit::binary(jit::BinaryOp::kAnd, full, ok) : ok;
        std::vector<OuterTap> next;
        for (const OuterTap& tap : taps)
          for (int64_t j = 0; j < ki; ++j) {
            OuterTap e = tap;
            e.k.push_back(jit::imm(j));
            e.pos.push_back(first + j * p.dilations[i]);
            next.push_back(e);
          }
        taps = next;
      }
      row = full ? jit::if_then(full, row_pass(taps, false), row) : row_pass(taps, false);
    }
    return jit::let(oc_v, ic * p.mg + idx[2], row);
  };
  return loop_nest(ctx, nest, body, /*vectorize=*/false, p.row_len * p.taps_c);
}

// Two dims that must be equal: nullopt when both are immediates that differ.
std::optional<Expr> same_dim(const Expr& a, const Expr& b) {
  if (a->is_int_imm() && b->is_int_imm() && a->ival != b->ival) return std::nullopt;
  return window::common(a, b);
}

std::optional<jit::Kernel> lower_conv(LowerContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1) || ctx.num_outputs() != 1) return std::nullopt;
  const TensorArg& x = ctx.input(0);
  const TensorArg& w = ctx.input(1);
  const TensorArg& y = ctx.output(0);
  const jit::ScalarType t = x.type;
  if (!jit::is_float(t) || w.type != t || y.type != t) return std::nullopt;
  const int rank = x.rank();
  if (rank < 3 || w.rank() != rank || y.rank() != rank) return std::nullopt;
  ConvPlan p;
  p.type = t;
  p.nsp = rank - 2;
  p.group = ctx.attrs().attr_int("group", 1);
  if (p.group < 1) return std::nullopt;
  // Channels. Dims that shape inference equates may still be separate parameters: every extent is
  // bounded by each tensor it indexes, so any parameter values stay in bounds.
  auto m = same_dim(w.dims[0], y.dims[1]);
  if (!m) return std::nullopt;
  p.m = *m;
  if (ctx.has_input(2)) {
    const TensorArg& b = ctx.input(2);
    if (b.type != t || b.rank() != 1) return std::nullopt;
    auto mb = same_dim(p.m, b.dims[0]);
    if (!mb) return std::nullopt;
    p.m = *mb;
    p.has_bias = true;
  }
  if (p.m->is_int_imm() && p.m->ival % p.group != 0) return std::nullopt;
  p.mg = p.group == 1 ? p.m : p.m / p.group;
  const Expr& c = x.dims[1];
  const Expr& wc = w.dims[1];
  if (c->is_int_imm() && wc->is_int_imm() && c->ival != wc->ival * p.group) return std::nullopt;
  p.cg = p.group == 1 ? window::common(wc, c) : window::common(wc, c / p.group);
  p.groups = window::common(jit::imm(p.group), c);
  p.cg_c = w.concrete[1];
  std::vector<int64_t> kernel(w.concrete.begin() + 2, w.concrete.end());
  std::optional<window::Attrs> wa = window::read_attrs(ctx.attrs(), p.nsp, &kernel);
  if (!wa) return std::nullopt;
  p.strides = wa->strides;
  p.dilations = wa->dilations;
  for (int i = 0; i < p.nsp; ++i) {
    p.kernel.push_back(w.dims[size_t(i + 2)]);
    p.taps_c *= kernel[size_t(i)];
    p.in.push_back(x.dims[size_t(i + 2)]);
    p.out.push_back(y.dims[size_t(i + 2)]);
    p.pb.push_back(window::pad_begin(*wa, i, p.in.back(), p.kernel.back()));
    if (p.in.back()->is_int_imm(0)) p.no_taps = true;
  }
  if (p.cg->is_int_imm(0)) p.no_taps = true;
  p.batch = window::common(x.dims[0], y.dims[0]);
  p.x = ctx.input_buffer(0);
  p.w = ctx.input_buffer(1);
  p.b = ctx.input_buffer(2);
  p.y = ctx.output_buffer(0);
  p.row_len = std::max<int64_t>(1, y.concrete.back());
  Stmt body = wc->is_int_imm(1) ? conv_depthwise(ctx, p) : conv_general(ctx, p);
  return ctx.finish(body, "Conv");
}

}  // namespace

void register_conv_lowering(Lowerings& l) { l.add("", "Conv", lower_conv); }

}  // namespace kiln::kernels
