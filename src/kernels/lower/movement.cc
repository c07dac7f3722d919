// Lowerings of the data-movement ops: copies (Identity, Dropout, Reshape, Flatten, Squeeze,
// Unsqueeze), Transpose, Concat, Split, Slice, Expand, Tile, Where, DepthToSpace and SpaceToDepth;
// Gather, GatherElements and Pad are in movement_index.cc.
//
// Every kernel walks its output in row-major order (the innermost dim contiguous, vectorized; the
// outer dims parallel when big, both via loop_nest) and computes the input index of each element
// from the output index. Sizes come from the output's dims, which the shape function derived from
// the attributes, so most lowerings need only the axis attributes; Slice needs its starts and
// steps, which must be constants. A case the reference kernel would reject (a bad attribute, a
// non-divisible block size) returns nullopt so the reference reports the error.
//
// The reshape family is a row-major copy between two shapes; the engine aliases these ops instead
// of running a kernel, but the lowering lets a fused group contain them.
#include <algorithm>
#include <limits>

#include "kernels/lower/movement_util.h"
#include "kernels/ref/common.h"

namespace kiln::kernels {
namespace movement_lower {

using jit::BinaryOp;
using jit::Expr;
using jit::ExprKind;
using jit::Stmt;

Expr add(const Expr& a, const Expr& b) {
  if (a->is_int_imm(0)) return b;
  if (b->is_int_imm(0)) return a;
  return a + b;
}

Expr mul(const Expr& a, const Expr& b) {
  if (a->is_int_imm(1)) return b;
  if (b->is_int_imm(1)) return a;
  return a * b;
}

Expr clamp(const Expr& e, const Expr& lo, const Expr& hi) { return jit::min(jit::max(e, lo), hi); }

Expr cmp(BinaryOp op, const Expr& a, const Expr& b) { return jit::binary(op, a, b); }

Expr all_of(const Expr& a, const Expr& b) {
  if (!a) return b;
  if (!b) return a;
  return jit::binary(BinaryOp::kAnd, a, b);
}

bool same_dim(const Expr& a, const Expr& b) {
  if (a->kind != b->kind) return false;
  if (a->kind == ExprKind::kIntImm || a->kind == ExprKind::kParam) return a->ival == b->ival;
  return jit::print(a) == jit::print(b);
}

bool is_empty(const TensorArg& t) {
  return std::any_of(t.dims.begin(), t.dims.end(), [](const Expr& d) { return d->is_int_imm(0); });
}

bool inner_unit_stride(const TensorArg& t) {
  return t.rank() > 0 && t.strides.back()->is_int_imm(1);
}

int64_t concrete_product(const TensorArg& t, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < std::min(end, t.concrete.size()); ++d)
    p = std::min<int64_t>(p * std::max<int64_t>(t.concrete[d], 0), int64_t(1) << 40);
  return p;
}

std::optional<int> axis_of(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return int(axis < 0 ? axis + rank : axis);
}

std::optional<std::vector<int>> axes_of(const std::vector<int64_t>& axes, int rank) {
  std::vector<int> out;
  for (int64_t a : axes) {
    auto n = axis_of(a, rank);
    if (!n || std::find(out.begin(), out.end(), *n) != out.end()) return std::nullopt;
    out.push_back(*n);
  }
  return out;
}

jit::Kernel empty_kernel(LowerContext& ctx) { return ctx.finish(jit::block({}), label_of(ctx)); }

std::string label_of(const LowerContext& ctx) { return ctx.node().op_type; }

namespace {

// ---- Copies: Identity, Dropout, Reshape, Flatten, Squeeze, Unsqueeze ----------------------------

// Identity and Dropout (inference): the output has the input's shape.
std::optional<jit::Kernel> lower_identity(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  if (in.rank() != out.rank() || in.type != out.type) return std::nullopt;
  std::vector<Stmt> parts;
  parts.push_back(loop_nest(
      ctx, out.dims, [&](const Index& i) { return ctx.store_output(0, i, ctx.load_input(0, i)); }));
  if (ctx.node().op_type == "Dropout") {
    // Training mode is deterministic (and supported by the reference) only when nothing drops.
    if (ctx.has_input(2)) {
      const Tensor* training = ctx.constant(2);
      if (!training || training->numel() != 1) return std::nullopt;
      if (training->element_as_double(0) != 0) {
        const Tensor* ratio = ctx.has_input(1) ? ctx.constant(1) : nullptr;
        if (!ratio || ratio->numel() < 1 || ratio->element_as_double(0) != 0) return std::nullopt;
      }
    }
    // The optional mask is all true.
    if (ctx.num_outputs() > 1) {
      const TensorArg& mask = ctx.output(1);
      if (mask.type != jit::ScalarType::kBool || mask.rank() != out.rank()) return std::nullopt;
      parts.push_back(loop_nest(ctx, mask.dims, [&](const Index& i) {
        return ctx.store_output(1, i, jit::imm(1, jit::ScalarType::kBool));
      }));
    }
  }
  return ctx.finish(parts.size() == 1 ? parts[0] : jit::block(parts), label_of(ctx));
}

// Dims of the input and the output whose row-major index ranges coincide: a flat position in the
// group's output dims is the same flat position in its input dims.
struct DimGroup {
  std::vector<int> in, out;
};

// Splits a row-major reshape into groups, finest first: identical dims pair up one to one,
// immediates pair up by equal products ([6, 4] -> [2, 3, 4]: {6}-{2, 3} and {4}-{4}); whatever
// follows the first dim that can be matched neither way is one last group. Dims of 1 are left out
// (their index is 0). The groups are valid for every value of the params: all earlier groups have
// equal products in every specialization, so the remainders do too.
std::optional<std::vector<DimGroup>> reshape_groups(const TensorArg& in, const TensorArg& out) {
  std::vector<int> ia, oa;
  for (int d = 0; d < in.rank(); ++d)
    if (!in.dims[size_t(d)]->is_int_imm(1)) ia.push_back(d);
  for (int d = 0; d < out.rank(); ++d)
    if (!out.dims[size_t(d)]->is_int_imm(1)) oa.push_back(d);
  std::vector<DimGroup> groups;
  size_t i = 0, j = 0;
  while (i < ia.size() && j < oa.size()) {
    const Expr& a = in.dims[size_t(ia[i])];
    const Expr& b = out.dims[size_t(oa[j])];
    if (same_dim(a, b)) {
      groups.push_back({{ia[i]}, {oa[j]}});
      ++i, ++j;
      continue;
    }
    if (!a->is_int_imm() || !b->is_int_imm()) break;
    DimGroup g{{ia[i]}, {oa[j]}};
    int64_t pa = a->ival, pb = b->ival;
    size_t i2 = i + 1, j2 = j + 1;
    bool ok = true;
    while (ok && pa != pb) {
      if (pa < pb) {
        ok = i2 < ia.size() && in.dims[size_t(ia[i2])]->is_int_imm();
        if (ok) {
          pa *= in.dims[size_t(ia[i2])]->ival;
          g.in.push_back(ia[i2++]);
        }
      } else {
        ok = j2 < oa.size() && out.dims[size_t(oa[j2])]->is_int_imm();
        if (ok) {
          pb *= out.dims[size_t(oa[j2])]->ival;
          g.out.push_back(oa[j2++]);
        }
      }
    }
    if (!ok) break;
    groups.push_back(std::move(g));
    i = i2, j = j2;
  }
  if (i < ia.size() || j < oa.size()) {
    // Equal element counts leave dims on both sides or on neither.
    if (i == ia.size() || j == oa.size()) return std::nullopt;
    DimGroup g;
    g.in.assign(ia.begin() + long(i), ia.end());
    g.out.assign(oa.begin() + long(j), oa.end());
    groups.push_back(std::move(g));
  }
  return groups;
}

std::optional<jit::Kernel> lower_reshape_copy(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  if (in.type != out.type) return std::nullopt;
  if (is_empty(out) || is_empty(in)) return empty_kernel(ctx);
  auto groups = reshape_groups(in, out);
  if (!groups) return std::nullopt;
  // The inner loop is contiguous when the last group pairs the two innermost dims one to one.
  bool vectorize =
      inner_unit_stride(in) &&
      (groups->empty() ||
       (groups->back().in.size() == 1 && groups->back().out.size() == 1 &&
        groups->back().in[0] == in.rank() - 1 && groups->back().out[0] == out.rank() - 1));
  Stmt s = loop_nest(
      ctx, out.dims,
      [&](const Index& idx) {
        Index at(size_t(in.rank()), jit::imm(0));
        for (const DimGroup& g : *groups) {
          Expr flat = idx[size_t(g.out[0])];
          for (size_t k = 1; k < g.out.size(); ++k)
            flat = add(flat * out.dims[size_t(g.out[k])], idx[size_t(g.out[k])]);
          for (size_t k = g.in.size(); k-- > 1;) {
            const Expr& d = in.dims[size_t(g.in[k])];
            at[size_t(g.in[k])] = flat % d;
            flat = flat / d;
          }
          at[size_t(g.in[0])] = flat;
        }
        return ctx.store_output(0, idx, ctx.load_input(0, at));
      },
      vectorize);
  return ctx.finish(s, label_of(ctx));
}

// ---- Transpose ----------------------------------------------------------------------------------

// Tile edge of the blocked transpose: a 32x32 tile of 8-byte elements is 8 KiB per side.
constexpr int64_t kTransposeTile = 32;

std::optional<jit::Kernel> lower_transpose(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  const int r = in.rank();
  if (out.rank() != r || in.type != out.type) return std::nullopt;
  std::vector<int> perm;
  NodeAttrs attrs = ctx.attrs();
  if (attrs.has_attr("perm")) {
    auto p = attrs.attr_ints("perm");
    if (int(p.size()) != r) return std::nullopt;
    for (int64_t a : p)
      if (a < 0) return std::nullopt;
    auto n = axes_of(p, r);
    if (!n) return std::nullopt;
    perm = *n;
  } else {
    for (int d = r - 1; d >= 0; --d) perm.push_back(d);
  }
  if (is_empty(out)) return empty_kernel(ctx);
  auto in_index = [&](const Index& o) {
    Index at(static_cast<size_t>(r));
    for (int d = 0; d < r; ++d) at[size_t(perm[size_t(d)])] = o[size_t(d)];
    return at;
  };

  // Output dim `a` walks the input's contiguous dim; when that is not the output's innermost dim
  // `b` and both are long, a naive walk reads the input with a large stride and touches a new cache
  // line per element. Blocking a and b into tiles keeps both sides of a tile in L1.
  int a = -1, b = r - 1;
  for (int d = 0; d < r; ++d)
    if (perm[size_t(d)] == r - 1) a = d;
  const bool tiled = r >= 2 && a != b && inner_unit_stride(in) &&
                     out.concrete[size_t(a)] >= 2 * kTransposeTile &&
                     out.concrete[size_t(b)] >= 2 * kTransposeTile;
  if (!tiled) {
    Stmt s = loop_nest(ctx, out.dims, [&](const Index& o) {
      return ctx.store_output(0, o, ctx.load_input(0, in_index(o)));
    });
    return ctx.finish(s, label_of(ctx));
  }
  const int64_t t = kTransposeTile;
  const Expr& da = out.dims[size_t(a)];
  const Expr& db = out.dims[size_t(b)];
  std::vector<Expr> outer = out.dims;  // dims a and b become their tile counts
  outer[size_t(a)] = (da + (t - 1)) / t;
  outer[size_t(b)] = (db + (t - 1)) / t;
  Stmt s = loop_nest(
      ctx, outer,
      [&](const Index& tile) {
        Expr a0 = tile[size_t(a)] * t, b0 = tile[size_t(b)] * t;
        std::string ia = ctx.fresh_var("i"), ib = ctx.fresh_var("i");
        Index o = tile;
        o[size_t(a)] = a0 + jit::var(ia);
        o[size_t(b)] = b0 + jit::var(ib);
        Stmt body = ctx.store_output(0, o, ctx.load_input(0, in_index(o)));
        body = jit::for_loop(ib, jit::min(jit::imm(t), db - b0), jit::LoopKind::kVectorized, body,
                             std::min<int64_t>(vector_factor(ctx), t));
        return jit::for_loop(ia, jit::min(jit::imm(t), da - a0), jit::LoopKind::kSerial, body);
      },
      false, t * t);
  return ctx.finish(s, label_of(ctx));
}

// ---- Concat and Split ---------------------------------------------------------------------------

// One loop nest per input, each writing its block of the output at the running offset along the
// axis: every copy has a contiguous inner loop and no select.
std::optional<jit::Kernel> lower_concat(LowerContext& ctx) {
  const TensorArg& out = ctx.output(0);
  const int r = out.rank();
  NodeAttrs attrs = ctx.attrs();
  if (r == 0 || (ctx.opset() >= 4 && !attrs.has_attr("axis"))) return std::nullopt;
  auto axis = axis_of(attrs.attr_int("axis", 1), r);
  if (!axis) return std::nullopt;
  const size_t ax = size_t(*axis);
  std::vector<Stmt> parts;
  Expr offset = jit::imm(0);
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return std::nullopt;
    const TensorArg& in = ctx.input(i);
    if (in.rank() != r || in.type != out.type) return std::nullopt;
    if (!is_empty(in) && !is_empty(out)) {
      bool vectorize = inner_unit_stride(in);
      parts.push_back(loop_nest(
          ctx, in.dims,
          [&](const Index& idx) {
            Index o = idx;
            o[ax] = add(idx[ax], offset);
            return ctx.store_output(0, o, ctx.load_input(i, idx));
          },
          vectorize));
    }
    offset = add(offset, in.dims[ax]);
  }
  if (parts.empty()) return empty_kernel(ctx);
  return ctx.finish(parts.size() == 1 ? parts[0] : jit::block(parts), label_of(ctx));
}

// The split sizes are the outputs' dims along the axis (the shape function checked them against the
// split attribute/input or num_outputs), so the input offsets are their running sums.
std::optional<jit::Kernel> lower_split(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const int r = in.rank();
  if (r == 0 || ctx.num_outputs() == 0) return std::nullopt;
  auto axis = axis_of(ctx.attrs().attr_int("axis", 0), r);
  if (!axis) return std::nullopt;
  const size_t ax = size_t(*axis);
  std::vector<Stmt> parts;
  Expr offset = jit::imm(0);
  const bool vectorize = inner_unit_stride(in);
  for (int o = 0; o < ctx.num_outputs(); ++o) {
    const TensorArg& out = ctx.output(o);
    if (out.rank() != r || out.type != in.type) return std::nullopt;
    if (!is_empty(out)) {
      parts.push_back(loop_nest(
          ctx, out.dims,
          [&](const Index& idx) {
            Index at = idx;
            at[ax] = add(idx[ax], offset);
            return ctx.store_output(o, idx, ctx.load_input(0, at));
          },
          vectorize));
    }
    offset = add(offset, out.dims[ax]);
  }
  if (parts.empty()) return empty_kernel(ctx);
  return ctx.finish(parts.size() == 1 ? parts[0] : jit::block(parts), label_of(ctx));
}

// ---- Slice --------------------------------------------------------------------------------------

// The effective start of slicing a dynamic dim (a param, so >= 2) as an index expression: the same
// clamping as slice_range, evaluated on the dim's value at run time.
Expr dynamic_slice_start(const Expr& dim, int64_t start, int64_t step) {
  if (step > 0)
    return start < 0 ? jit::max(dim + start, jit::imm(0)) : jit::min(jit::imm(start), dim);
  return start < 0 ? jit::max(dim + start, jit::imm(0)) : jit::min(jit::imm(start), dim - 1);
}

std::optional<jit::Kernel> lower_slice(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  const int r = in.rank();
  if (out.rank() != r || out.type != in.type) return std::nullopt;
  NodeAttrs attrs = ctx.attrs();
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    if (!attrs.has_attr("starts") || !attrs.has_attr("ends")) return std::nullopt;
    starts = attrs.attr_ints("starts");
    ends = attrs.attr_ints("ends");
    if (attrs.has_attr("axes")) axes = attrs.attr_ints("axes");
  } else {
    auto s = ctx.has_input(1) ? ctx.constant_ints(1) : std::nullopt;
    auto e = ctx.has_input(2) ? ctx.constant_ints(2) : std::nullopt;
    if (!s || !e) return std::nullopt;
    starts = *s;
    ends = *e;
    if (ctx.has_input(3)) {
      auto a = ctx.constant_ints(3);
      if (!a) return std::nullopt;
      axes = *a;
    }
    if (ctx.has_input(4)) {
      auto st = ctx.constant_ints(4);
      if (!st) return std::nullopt;
      steps = *st;
    }
  }
  const size_t n = starts.size();
  const bool axes_given = ctx.opset() < 10 ? attrs.has_attr("axes") : ctx.has_input(3);
  const bool steps_given = ctx.opset() >= 10 && ctx.has_input(4);
  if (!axes_given)
    for (size_t i = 0; i < n; ++i) axes.push_back(int64_t(i));
  if (!steps_given) steps.assign(n, 1);
  if (ends.size() != n || axes.size() != n || steps.size() != n) return std::nullopt;
  auto ax = axes_of(axes, r);
  if (!ax) return std::nullopt;
  for (int64_t s : steps)
    if (s == 0) return std::nullopt;
  if (is_empty(out)) return empty_kernel(ctx);

  std::vector<Expr> start(size_t(r), jit::imm(0));
  std::vector<int64_t> step(size_t(r), 1);
  for (size_t i = 0; i < n; ++i) {
    size_t d = size_t((*ax)[i]);
    const Expr& dim = in.dims[d];
    if (dim->is_int_imm()) {
      auto [b, count] = slice_range(dim->ival, starts[i], ends[i], steps[i]);
      if (out.dims[d]->is_int_imm() && out.dims[d]->ival != count) return std::nullopt;
      start[d] = jit::imm(b);
    } else {
      start[d] = dynamic_slice_start(dim, starts[i], steps[i]);
    }
    step[d] = steps[i];
  }
  const bool vectorize = inner_unit_stride(in) && step.back() == 1;
  Stmt s = loop_nest(
      ctx, out.dims,
      [&](const Index& idx) {
        Index at(static_cast<size_t>(r));
        // An index of an extent-1 dim is the immediate 0: the step (maybe huge) is never taken.
        for (size_t d = 0; d < size_t(r); ++d)
          at[d] = idx[d]->is_int_imm(0) ? start[d] : add(start[d], mul(idx[d], jit::imm(step[d])));
        return ctx.store_output(0, idx, ctx.load_input(0, at));
      },
      vectorize);
  return ctx.finish(s, label_of(ctx));
}

// ---- Expand, Tile, Where ------------------------------------------------------------------------

// The target shape input need not be constant: the output's dims are the broadcast shape.
std::optional<jit::Kernel> lower_expand(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  if (in.type != out.type || in.rank() > out.rank()) return std::nullopt;
  if (is_empty(out)) return empty_kernel(ctx);
  Stmt s = loop_nest(ctx, out.dims, [&](const Index& idx) {
    return ctx.store_output(0, idx, ctx.load_input(0, ctx.broadcast_index(0, idx)));
  });
  return ctx.finish(s, label_of(ctx));
}

// Output dim d of Tile is (repeat r, input index i) -> r * in_d + i: the loop nest runs over both,
// so no index needs a modulo. The repeat count is the constant repeats input, or out_d / in_d when
// it is not known.
std::optional<jit::Kernel> lower_tile(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  const int r = in.rank();
  if (out.rank() != r || in.type != out.type) return std::nullopt;
  auto reps = ctx.has_input(1) ? ctx.constant_ints(1) : std::nullopt;
  if (reps && int(reps->size()) != r) return std::nullopt;
  if (reps)
    for (int64_t v : *reps)
      if (v < 0) return std::nullopt;
  if (is_empty(out) || is_empty(in)) return empty_kernel(ctx);
  std::vector<Expr> loops;
  std::vector<int> rep_loop(static_cast<size_t>(r), -1), in_loop(static_cast<size_t>(r));
  for (size_t d = 0; d < size_t(r); ++d) {
    Expr rep = reps ? jit::imm((*reps)[d]) : out.dims[d] / in.dims[d];
    if (same_dim(in.dims[d], out.dims[d])) rep = jit::imm(1);
    if (!rep->is_int_imm(1)) {
      rep_loop[d] = int(loops.size());
      loops.push_back(rep);
    }
    in_loop[d] = int(loops.size());
    loops.push_back(in.dims[d]);
  }
  Stmt s = loop_nest(
      ctx, loops,
      [&](const Index& idx) {
        Index at(static_cast<size_t>(r)), o(static_cast<size_t>(r));
        for (size_t d = 0; d < size_t(r); ++d) {
          at[d] = idx[size_t(in_loop[d])];
          o[d] = rep_loop[d] < 0 ? at[d] : add(mul(idx[size_t(rep_loop[d])], in.dims[d]), at[d]);
        }
        return ctx.store_output(0, o, ctx.load_input(0, at));
      },
      inner_unit_stride(in));
  return ctx.finish(s, label_of(ctx));
}

std::optional<jit::Kernel> lower_where(LowerContext& ctx) {
  const TensorArg& out = ctx.output(0);
  for (int i = 0; i < 3; ++i)
    if (!ctx.has_input(i) || ctx.input(i).rank() > out.rank()) return std::nullopt;
  if (ctx.input(0).type != jit::ScalarType::kBool || ctx.input(1).type != out.type ||
      ctx.input(2).type != out.type)
    return std::nullopt;
  if (is_empty(out)) return empty_kernel(ctx);
  Stmt s = loop_nest(ctx, out.dims, [&](const Index& idx) {
    Expr c = ctx.load_input(0, ctx.broadcast_index(0, idx));
    Expr x = ctx.load_input(1, ctx.broadcast_index(1, idx));
    Expr y = ctx.load_input(2, ctx.broadcast_index(2, idx));
    return ctx.store_output(0, idx, jit::select(c, x, y));
  });
  return ctx.finish(s, label_of(ctx));
}

// ---- DepthToSpace, SpaceToDepth -----------------------------------------------------------------

std::optional<int64_t> blocksize_of(const LowerContext& ctx) {
  NodeAttrs attrs = ctx.attrs();
  if (!attrs.has_attr("blocksize")) return std::nullopt;
  int64_t b = attrs.attr_int("blocksize", 0);
  if (b < 1 || b > (int64_t(1) << 31)) return std::nullopt;
  return b;
}

// The spec's reshape-transpose-reshape as one index map. With the output viewed as [n, c, h, bi, w,
// bj] (DCR) the input element is [n, (bi * b + bj) * C + c, h, w]; CRD reads channel c * b * b + bi
// * b + bj instead.
std::optional<jit::Kernel> lower_depth_to_space(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  auto bs = blocksize_of(ctx);
  if (!bs || in.rank() != 4 || out.rank() != 4 || in.type != out.type) return std::nullopt;
  const int64_t b = *bs;
  std::string mode = ctx.opset() >= 11 ? ctx.attrs().attr_string("mode", "DCR") : "DCR";
  if (mode != "DCR" && mode != "CRD") return std::nullopt;
  if (in.dims[1]->is_int_imm() && in.dims[1]->ival % (b * b) != 0) return std::nullopt;
  if (is_empty(out)) return empty_kernel(ctx);
  const Expr& c_out = out.dims[1];
  std::vector<Expr> loops = {out.dims[0], c_out, in.dims[2], jit::imm(b), in.dims[3], jit::imm(b)};
  Stmt s = loop_nest(ctx, loops, [&](const Index& i) {
    Expr n = i[0], c = i[1], h = i[2], bi = i[3], w = i[4], bj = i[5];
    Expr block = add(mul(bi, jit::imm(b)), bj);
    Expr ch = mode == "CRD" ? add(c * (b * b), block) : add(mul(block, c_out), c);
    Index o = {n, c, add(h * b, bi), add(w * b, bj)};
    return ctx.store_output(0, o, ctx.load_input(0, {n, ch, h, w}));
  });
  return ctx.finish(s, label_of(ctx));
}

// Output [n, (bi * b + bj) * C + c, h, w] reads input [n, c, h * b + bi, w * b + bj].
std::optional<jit::Kernel> lower_space_to_depth(LowerContext& ctx) {
  const TensorArg& in = ctx.input(0);
  const TensorArg& out = ctx.output(0);
  auto bs = blocksize_of(ctx);
  if (!bs || in.rank() != 4 || out.rank() != 4 || in.type != out.type) return std::nullopt;
  const int64_t b = *bs;
  for (size_t d : {size_t(2), size_t(3)})
    if (in.dims[d]->is_int_imm() && in.dims[d]->ival % b != 0) return std::nullopt;
  if (is_empty(out)) return empty_kernel(ctx);
  const Expr& c_in = in.dims[1];
  std::vector<Expr> loops = {out.dims[0], jit::imm(b), jit::imm(b), c_in, out.dims[2], out.dims[3]};
  Stmt s = loop_nest(ctx, loops, [&](const Index& i) {
    Expr n = i[0], bi = i[1], bj = i[2], c = i[3], h = i[4], w = i[5];
    Expr ch = add(mul(add(mul(bi, jit::imm(b)), bj), c_in), c);
    Index at = {n, c, add(h * b, bi), add(w * b, bj)};
    return ctx.store_output(0, {n, ch, h, w}, ctx.load_input(0, at));
  });
  return ctx.finish(s, label_of(ctx));
}

}  // namespace
}  // namespace movement_lower

void register_movement_lowerings(Lowerings& l) {
  using namespace movement_lower;
  l.add("", "Identity", lower_identity);
  l.add("", "Dropout", lower_identity);
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
    l.add("", op, lower_reshape_copy);
  l.add("", "Transpose", lower_transpose);
  l.add("", "Concat", lower_concat);
  l.add("", "Split", lower_split);
  l.add("", "Slice", lower_slice);
  l.add("", "Expand", lower_expand);
  l.add("", "Tile", lower_tile);
  l.add("", "Where", lower_where);
  l.add("", "DepthToSpace", lower_depth_to_space);
  l.add("", "SpaceToDepth", lower_space_to_depth);
  l.add("", "Gather", lower_gather);
  l.add("", "GatherElements", lower_gather_elements);
  l.add("", "Pad", lower_pad);
}

}  // namespace kiln::kernels
