// Lowerings of the data-dependent and padded movement ops: Gather, GatherElements and Pad.
//
// Gather and GatherElements read indices from a tensor at run time. The reference kernel rejects an
// index outside [-dim, dim) with an error; a compiled kernel cannot raise one, so the lowered
// kernels wrap negative indices and then clamp into [0, dim - 1]. Valid indices give exactly the
// reference's result; an invalid one reads the nearest edge element instead of failing, and never
// reads out of bounds. When the indices are a constant the lowering checks them and leaves an
// invalid one to the reference kernel, so constant indices behave exactly as the reference.
//
// Pad maps each output index to an input index per padded axis (edge: clamp; wrap: modulo; reflect:
// a folded modulo), with the negative pads (crops) of the reference: the source extent of an axis
// is the input dim less its crops. Constant padding is written row by row (fill runs and a
// contiguous copy), falling back to a guarded per-element load only for a cropped dynamic innermost
// dim.
#include <algorithm>
#include <cmath>
#include <functional>

#include "kernels/lower/movement_util.h"

namespace kiln::kernels::movement_lower {

using jit::BinaryOp;
using jit::Expr;
using jit::ScalarType;
using jit::Stmt;

namespace {

// ---- Gather, GatherElements ---------------------------------------------------------------------

bool is_index_type(ScalarType t) { return t == ScalarType::kI32 || t == ScalarType::kI64; }

// Index `k` (of the indices' type) into a dim of `dim` elements (dim >= 1): negative values count
// from the end; the result is clamped into [0, dim - 1] so that no index reads out of bounds.
Expr wrap_and_clamp(Expr k, const Expr& dim) {
  if (dim->is_int_imm(1)) return jit::imm(0);
  k = jit::cast(ScalarType::kI64, k);
  Expr wrapped = jit::select(cmp(BinaryOp::kLt, k, jit::imm(0)), k + dim, k);
  return clamp(wrapped, jit::imm(0), dim - 1);
}

// True when every constant index lies in [-dim, dim) (what the reference accepts); true as well
// when the indices or the dim are not known at lowering time (the kernel clamps then).
bool constant_indices_valid(const LowerContext& ctx, int input, const Expr& dim) {
  auto v = ctx.constant_ints(input);
  if (!v || !dim->is_int_imm()) return true;
  return std::all_of(v->begin(), v->end(),
                     [&](int64_t k) { return k >= -dim->ival && k < dim->ival; });
}

}  // namespace

// out[o..., j..., i...] = data[o..., indices[j...], i...] with the outer dims o before the axis and
// the inner dims i after it. The index is loaded once per inner row (a Let) when there are inner
// dims, whose contiguous copy is then vectorized.
std::optional<jit::Kernel> lower_gather(LowerContext& ctx) {
  const TensorArg& data = ctx.input(0);
  const TensorArg& ind = ctx.input(1);
  const TensorArg& out = ctx.output(0);
  const int r = data.rank(), q = ind.rank();
  if (!is_index_type(ind.type) || data.type != out.type || r < 1) return std::nullopt;
  auto axis = axis_of(ctx.attrs().attr_int("axis", 0), r);
  if (!axis || out.rank() != r - 1 + q) return std::nullopt;
  const size_t ax = size_t(*axis), nq = size_t(q);
  if (is_empty(out)) return empty_kernel(ctx);
  const Expr& dim = data.dims[ax];
  // Indices into an empty axis are all invalid: the reference reports them.
  if (dim->is_int_imm(0) || !constant_indices_valid(ctx, 1, dim)) return std::nullopt;

  auto data_index = [&](const Index& o, const Expr& k) {
    Index at(o.begin(), o.begin() + long(ax));
    at.push_back(k);
    at.insert(at.end(), o.begin() + long(ax + nq), o.end());
    return at;
  };
  auto index_at = [&](const Index& o) {
    Index j(o.begin() + long(ax), o.begin() + long(ax + nq));
    return wrap_and_clamp(ctx.load_input(1, j), dim);
  };
  Stmt s;
  const size_t split = ax + nq;  // output dims before `split` choose the row
  if (split == size_t(out.rank())) {
    s = loop_nest(ctx, out.dims, [&](const Index& o) {
      return ctx.store_output(0, o, ctx.load_input(0, data_index(o, index_at(o))));
    });
  } else {
    std::vector<Expr> outer(out.dims.begin(), out.dims.begin() + long(split));
    std::vector<Expr> inner(out.dims.begin() + long(split), out.dims.end());
    int64_t row = concrete_product(out, split);
    s = loop_nest(
        ctx, outer,
        [&](const Index& o) {
          std::string k = ctx.fresh_var("k");
          Stmt copy = loop_nest(
              ctx, inner,
              [&](const Index& i) {
                Index full = o;
                full.insert(full.end(), i.begin(), i.end());
                return ctx.store_output(0, full, ctx.load_input(0, data_index(full, jit::var(k))));
              },
              inner_unit_stride(data), 1, false);
          return jit::let(k, index_at(o), copy);
        },
        false, row);
  }
  return ctx.finish(s, label_of(ctx));
}

// out[p] = data[p with its axis coordinate replaced by indices[p]]. The other coordinates of p must
// fit data (the reference checks indices' dims <= data's); where the kernel cannot tell that from
// the dims it clamps them too.
std::optional<jit::Kernel> lower_gather_elements(LowerContext& ctx) {
  const TensorArg& data = ctx.input(0);
  const TensorArg& ind = ctx.input(1);
  const TensorArg& out = ctx.output(0);
  const int r = data.rank();
  if (!is_index_type(ind.type) || data.type != out.type || r < 1 || ind.rank() != r ||
      out.rank() != r)
    return std::nullopt;
  auto axis = axis_of(ctx.attrs().attr_int("axis", 0), r);
  if (!axis) return std::nullopt;
  for (int d = 0; d < r; ++d) {
    const Expr& dd = data.dims[size_t(d)];
    const Expr& id = ind.dims[size_t(d)];
    if (d != *axis && dd->is_int_imm() && id->is_int_imm() && id->ival > dd->ival)
      return std::nullopt;
  }
  if (is_empty(out)) return empty_kernel(ctx);
  if (is_empty(data) || !constant_indices_valid(ctx, 1, data.dims[size_t(*axis)]))
    return std::nullopt;
  Stmt s = loop_nest(ctx, out.dims, [&](const Index& p) {
    Index at(static_cast<size_t>(r));
    for (size_t d = 0; d < size_t(r); ++d) {
      const Expr& dd = data.dims[d];
      const Expr& id = ind.dims[d];
      if (int(d) == *axis) {
        at[d] = wrap_and_clamp(ctx.load_input(1, p), dd);
      } else if (same_dim(dd, id) || (dd->is_int_imm() && id->is_int_imm())) {
        at[d] = p[d];  // id <= dd was checked above
      } else {
        at[d] = jit::min(p[d], dd - 1);
      }
    }
    return ctx.store_output(0, p, ctx.load_input(0, at));
  });
  return ctx.finish(s, label_of(ctx));
}

// ---- Pad ----------------------------------------------------------------------------------------

namespace {

// Largest pad the reference accepts.
constexpr int64_t kMaxPad = int64_t(1) << 40;

// The range of an integer type as doubles (for the float fill value of Pad-2).
std::pair<double, double> int_range(ScalarType t) {
  switch (t) {
    case ScalarType::kI8:
      return {-128, 127};
    case ScalarType::kU8:
      return {0, 255};
    case ScalarType::kI16:
      return {-32768, 32767};
    case ScalarType::kU16:
      return {0, 65535};
    case ScalarType::kI32:
      return {-2147483648.0, 2147483647.0};
    case ScalarType::kU32:
      return {0, 4294967295.0};
    default:  // i64, u64: as far as an int64 immediate reaches
      return {-9223372036854775808.0, 9223372036854774784.0};
  }
}

// The fill value of constant padding; nullopt when it cannot be lowered (a fill input of another
// type or of unknown size, a float attribute that does not fit the integer type).
std::optional<Expr> pad_fill(LowerContext& ctx, ScalarType t) {
  if (ctx.opset() >= 11) {
    if (!ctx.has_input(2)) return jit::constant(0, t);
    const TensorArg& v = ctx.input(2);
    if (v.type != t) return std::nullopt;
    if (is_empty(v)) return jit::constant(0, t);
    return ctx.load_input(2, Index(size_t(v.rank()), jit::imm(0)));
  }
  double value = double(ctx.attrs().attr_float("value", 0.0f));
  if (t == ScalarType::kBool) return jit::imm(value != 0 ? 1 : 0, ScalarType::kBool);
  if (jit::is_float(t)) return jit::fimm(value, t);
  auto [lo, hi] = int_range(t);
  if (!std::isfinite(value) || value <= lo - 1 || value >= hi + 1) return std::nullopt;
  return jit::imm(int64_t(value),
                  t);  // truncates toward zero, as static_cast does
}

// The input index of one output index `o` along one axis, and whether it is a real element
// (constant mode) or the fill value.
struct AxisMap {
  Expr src;
  Expr valid;  // null: always valid
};

struct PadAxis {
  int64_t begin = 0, end = 0;
};

// One padded axis: the reference's pad_map as index expressions. `dim` is the input dim; the source
// extent n is dim less the crops (negative pads) and starts at lo.
AxisMap pad_axis(const Expr& o, const Expr& dim, PadAxis p, const std::string& mode) {
  const int64_t lo = std::max<int64_t>(0, -p.begin), crop_end = std::max<int64_t>(0, -p.end);
  const int64_t pb = std::max<int64_t>(0, p.begin), pe = std::max<int64_t>(0, p.end);
  Expr n = lo + crop_end > 0 ? dim - (lo + crop_end) : dim;
  Expr i = pb > 0 ? o - pb : o;
  AxisMap m;
  if (pb == 0 && pe == 0) {  // crops only
    m.src = add(i, jit::imm(lo));
    return m;
  }
  Expr j;  // index into the source extent
  if (mode == "constant" || mode == "edge") {
    if (mode == "constant") {
      if (pb > 0) m.valid = cmp(BinaryOp::kGe, i, jit::imm(0));
      if (pe > 0) m.valid = all_of(m.valid, cmp(BinaryOp::kLt, i, n));
    }
    j = i;
    if (pb > 0) j = jit::max(j, jit::imm(0));
    if (pe > 0) j = jit::min(j, n - 1);
  } else if (mode == "wrap") {
    j = pb > 0 ? ((i % n) + n) % n : i % n;
  } else if (n->is_int_imm(1)) {  // reflect of one element repeats it
    j = jit::imm(0);
  } else {
    // A dynamic n may still be 1 after crops: max(.., 1) keeps the period positive, and then j = 0
    // as for an immediate 1.
    Expr period = (n - 1) * 2;
    if (!n->is_int_imm()) period = jit::max(period, jit::imm(1));
    Expr k = pb > 0 ? ((i % period) + period) % period : i % period;
    j = jit::select(cmp(BinaryOp::kGe, k, n), period - k, k);
  }
  m.src = add(j, jit::imm(lo));
  // A dynamic dim with crops may leave an empty source extent in some specialization (where the
  // reference fails): keep the read inside the input regardless.
  if (!dim->is_int_imm() && lo + crop_end > 0) m.src = clamp(m.src, jit::imm(0), dim - 1);
  return m;
}

// Constant padding row by row: the outer axes decide per row (an `if`) whether the row has source
// elements at all, and a row with them is written as three contiguous runs: fill, a vectorized copy
// of the source extent, fill. No element pays for a select or a clamped (gathered) load. The caller
// guarantees the innermost source extent is an immediate or the whole dim (no crops on a dynamic
// dim), so the runs add up to the output row in every specialization.
Stmt constant_pad_rows(LowerContext& ctx, const std::vector<PadAxis>& pad, const Expr& fill) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  const size_t r = size_t(in.rank()), last = r - 1;
  std::vector<Expr> outer(out.dims.begin(), out.dims.end() - 1);
  const PadAxis p = pad[last];
  const int64_t lo = std::max<int64_t>(0, -p.begin), pb = std::max<int64_t>(0, p.begin);
  const int64_t pe = std::max<int64_t>(0, p.end);
  const Expr& dim = in.dims[last];
  const Expr n =
      lo + std::max<int64_t>(0, -p.end) > 0 ? dim - (lo + std::max<int64_t>(0, -p.end)) : dim;
  const int64_t row = std::max<int64_t>(out.concrete[last], 1);
  const int64_t vf = vector_factor(ctx);
  auto run = [&](const Expr& extent, int64_t est, const std::function<Stmt(const Expr&)>& body) {
    std::string j = ctx.fresh_var("j");
    bool vec = est >= 4 && vf > 1;
    return jit::for_loop(j, extent, vec ? jit::LoopKind::kVectorized : jit::LoopKind::kSerial,
                         body(jit::var(j)), vec ? std::min<int64_t>(vf, est) : 0);
  };
  return loop_nest(
      ctx, outer,
      [&](const Index& o) {
        Index src(r), dst(o);
        dst.push_back(nullptr);
        Expr valid;
        for (size_t d = 0; d < last; ++d) {
          // Inside the `if`, the source index lies in [lo, lo + n): no clamp needed.
          const PadAxis q = pad[d];
          const int64_t qlo = std::max<int64_t>(0, -q.begin), qb = std::max<int64_t>(0, q.begin);
          const int64_t qcrop = qlo + std::max<int64_t>(0, -q.end);
          Expr qn = qcrop > 0 ? in.dims[d] - qcrop : in.dims[d];
          Expr i = qb > 0 ? o[d] - qb : o[d];
          if (qb > 0) valid = all_of(valid, cmp(BinaryOp::kGe, i, jit::imm(0)));
          if (q.end > 0) valid = all_of(valid, cmp(BinaryOp::kLt, i, qn));
          src[d] = add(i, jit::imm(qlo));
        }
        auto store_at = [&](const Expr& k, const Expr& v) {
          Index at = dst;
          at.back() = k;
          return ctx.store_output(0, at, v);
        };
        std::vector<Stmt> runs;
        if (pb > 0)
          runs.push_back(run(jit::imm(pb), pb, [&](const Expr& j) { return store_at(j, fill); }));
        const int64_t n_est = std::max<int64_t>(row - pb - pe, 0);
        runs.push_back(run(n, n_est, [&](const Expr& j) {
          Index s = src;
          s[last] = add(j, jit::imm(lo));
          return store_at(add(j, jit::imm(pb)), ctx.load_input(0, s));
        }));
        if (pe > 0)
          runs.push_back(run(jit::imm(pe), pe, [&](const Expr& j) {
            return store_at(add(add(j, jit::imm(pb)), n), fill);
          }));
        Stmt copy = runs.size() == 1 ? runs[0] : jit::block(runs);
        if (!valid) return copy;
        Stmt blank = run(out.dims[last], row, [&](const Expr& j) { return store_at(j, fill); });
        return jit::if_then(valid, copy, blank);
      },
      false, row);
}

}  // namespace

std::optional<jit::Kernel> lower_pad(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  const int r = in.rank();
  if (out.rank() != r || out.type != in.type) return std::nullopt;
  NodeAttrs attrs = ctx.attrs();
  const std::string mode = attrs.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    return std::nullopt;
  std::vector<int64_t> pads, axes;
  if (ctx.opset() < 11) {
    const char* name = ctx.opset() < 2 ? "paddings" : "pads";
    if (!attrs.has_attr(name)) return std::nullopt;
    pads = attrs.attr_ints(name);
  } else {
    auto p = ctx.has_input(1) ? ctx.constant_ints(1) : std::nullopt;
    if (!p) return std::nullopt;
    pads = *p;
  }
  if (ctx.opset() >= 18 && ctx.has_input(3)) {
    auto a = ctx.constant_ints(3);
    if (!a) return std::nullopt;
    axes = *a;
  } else {
    for (int d = 0; d < r; ++d) axes.push_back(d);
  }
  auto ax = axes_of(axes, r);
  if (!ax || pads.size() != 2 * ax->size()) return std::nullopt;
  for (int64_t v : pads)
    if (v > kMaxPad || v < -kMaxPad) return std::nullopt;
  std::vector<PadAxis> pad(static_cast<size_t>(r));
  for (size_t i = 0; i < ax->size(); ++i) pad[size_t((*ax)[i])] = {pads[i], pads[ax->size() + i]};

  // Cases the reference rejects, and whether some axis has no source element at all.
  bool all_fill = is_empty(in);
  for (size_t d = 0; d < size_t(r); ++d) {
    const Expr& dim = in.dims[d];
    if (!dim->is_int_imm()) continue;
    int64_t n = dim->ival - std::max<int64_t>(0, -pad[d].begin) - std::max<int64_t>(0, -pad[d].end);
    int64_t added = std::max<int64_t>(0, pad[d].begin) + std::max<int64_t>(0, pad[d].end);
    if (n < 0 || n + added < 0) return std::nullopt;
    if (n == 0 && mode != "constant" && added > 0) return std::nullopt;
    if (n == 0) all_fill = true;
  }
  if (is_empty(out)) return empty_kernel(ctx);
  std::optional<Expr> fill;
  if (mode == "constant") {
    fill = pad_fill(ctx, in.type);
    if (!fill) return std::nullopt;
  }
  if (all_fill) {  // constant mode with an empty source: every element is the fill value
    if (!fill) return std::nullopt;
    Stmt s =
        loop_nest(ctx, out.dims, [&](const Index& o) { return ctx.store_output(0, o, *fill); });
    return ctx.finish(s, label_of(ctx));
  }
  if (mode == "constant" && r > 0 &&
      (in.dims.back()->is_int_imm() || (pad.back().begin >= 0 && pad.back().end >= 0)))
    return ctx.finish(constant_pad_rows(ctx, pad, *fill), label_of(ctx));
  // The inner loop is contiguous unless the innermost axis itself is padded.
  const PadAxis last = r > 0 ? pad.back() : PadAxis{};
  const bool vectorize = inner_unit_stride(in) && last.begin <= 0 && last.end <= 0;
  Stmt s = loop_nest(
      ctx, out.dims,
      [&](const Index& o) {
        Index at(static_cast<size_t>(r));
        Expr valid;
        for (size_t d = 0; d < size_t(r); ++d) {
          AxisMap m = pad_axis(o[d], in.dims[d], pad[d], mode);
          at[d] = m.src;
          valid = all_of(valid, m.valid);
        }
        Expr v = ctx.load_input(0, at);
        if (valid) v = jit::select(valid, v, *fill);
        return ctx.store_output(0, o, v);
      },
      vectorize);
  return ctx.finish(s, label_of(ctx));
}

}  // namespace kiln::kernels::movement_lower
