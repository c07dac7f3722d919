// Elementwise chains fused into one loop nest.
//
// Each member's lowering runs in capture mode (MapCapture): instead of a kernel it returns its
// scalar function applied to the values of its inputs. Those values are let-bound variables: an
// external input is loaded once per element (at its broadcast index) and an earlier member's
// value is its variable, so intermediates live in registers. Loads a member makes by itself
// (Clip's bounds, read at fixed indices) name the member's buffers and are renumbered to the
// fused kernel's.
#include "kernels/lower/lower.h"

namespace kiln::kernels {

namespace {

using jit::Expr;
using jit::ExprKind;
using jit::Stmt;

// `e` with every Load's buffer renumbered through `buffer_of` (-1: fail).
std::optional<Expr> renumber_loads(const Expr& e, const std::function<int(int)>& buffer_of) {
  if (!e) return e;
  std::vector<Expr> args;
  bool changed = false;
  for (const Expr& a : e->args) {
    std::optional<Expr> r = renumber_loads(a, buffer_of);
    if (!r) return std::nullopt;
    changed |= *r != a;
    args.push_back(*r);
  }
  switch (e->kind) {
    case ExprKind::kLoad: {
      int b = buffer_of(int(e->ival));
      if (b < 0) return std::nullopt;
      return jit::load(b, e->type, std::move(args));
    }
    case ExprKind::kUnary:
      return changed ? jit::unary(jit::UnaryOp(e->op), args[0]) : e;
    case ExprKind::kBinary:
      return changed ? jit::binary(jit::BinaryOp(e->op), args[0], args[1]) : e;
    case ExprKind::kCast:
      return changed ? jit::cast(e->type, args[0]) : e;
    case ExprKind::kSelect:
      return changed ? jit::select(args[0], args[1], args[2]) : e;
    case ExprKind::kReduce:
      return changed ? jit::reduce(jit::ReduceOp(e->op), e->reduce_vars, e->reduce_extents, args[0],
                                   args[1])
                     : e;
    default:
      return e;
  }
}

// A member's value given its input values, loads renumbered to `fused`'s buffers.
std::optional<MapCapture> capture(LowerContext& member, const LowerFn& fn, std::vector<Expr> args,
                                  const std::vector<int>& source) {
  MapCapture cap;
  cap.args = std::move(args);
  member.set_capture(&cap);
  std::optional<jit::Kernel> k;
  try {
    k = fn(member);
  } catch (...) {
    member.set_capture(nullptr);
    throw;
  }
  member.set_capture(nullptr);
  if (!k || !cap.result) return std::nullopt;
  std::optional<Expr> r = renumber_loads(cap.result, [&](int b) {
    return b < int(source.size()) && source[size_t(b)] >= 0 ? source[size_t(b)] : -1;
  });
  if (!r) return std::nullopt;
  cap.result = *r;
  return cap;
}

const LowerFn* lowering_of(const LowerContext& ctx) {
  return Lowerings::global().find(ctx.node().domain, ctx.node().op_type);
}

}  // namespace

bool is_elementwise_lowering(LowerContext& ctx) {
  const LowerFn* fn = lowering_of(ctx);
  if (!fn || ctx.num_outputs() != 1) return false;
  std::vector<Expr> args;
  std::vector<int> source;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    args.push_back(ctx.has_input(i) ? jit::var("probe" + std::to_string(i), ctx.input(i).type)
                                    : nullptr);
    source.push_back(i);
  }
  return capture(ctx, *fn, std::move(args), source).has_value();
}

std::optional<jit::Kernel> lower_elementwise_chain(LowerContext& fused,
                                                   const std::vector<ChainMember>& members,
                                                   const std::string& label) {
  if (members.empty() || fused.num_outputs() != 1) return std::nullopt;
  const TensorArg& out = fused.output(0);
  std::vector<const LowerFn*> fns;
  for (const ChainMember& m : members) {
    const LowerFn* fn = lowering_of(*m.ctx);
    if (!fn || m.ctx->num_outputs() != 1 ||
        (&m == &members.back() && m.ctx->output(0).type != fused.output(0).type))
      return std::nullopt;
    if (m.ctx->output(0).concrete != out.concrete) return std::nullopt;
    fns.push_back(fn);
  }
  // Probe with placeholder variables: every member must be an elementwise map; the work per
  // element (for the parallel split) is the sum of theirs.
  int64_t work = 0;
  for (size_t k = 0; k < members.size(); ++k) {
    const ChainMember& m = members[k];
    std::vector<Expr> args;
    for (int i = 0; i < m.ctx->num_inputs(); ++i)
      args.push_back(
          m.ctx->has_input(i)
              ? jit::var("p" + std::to_string(k) + "_" + std::to_string(i), m.ctx->input(i).type)
              : nullptr);
    std::optional<MapCapture> cap = capture(*m.ctx, *fns[k], std::move(args), m.source);
    if (!cap) return std::nullopt;
    work += cap->work;
  }

  bool ok = true;
  std::vector<std::string> names;
  for (size_t k = 0; k < members.size(); ++k) names.push_back(fused.fresh_var("t"));
  Stmt body = loop_nest(
      fused, out.dims,
      [&](const std::vector<Expr>& idx) -> Stmt {
        // External inputs loaded once each, then every member's value in order.
        std::vector<std::pair<std::string, Expr>> lets;
        std::map<int, Expr> loaded;
        for (int b = 0; b < fused.num_inputs(); ++b) {
          if (!fused.has_input(b)) continue;
          std::string name = fused.fresh_var("x");
          lets.emplace_back(name, fused.load_input(b, fused.broadcast_index(b, idx)));
          loaded[b] = jit::var(name, fused.input(b).type);
        }
        Expr last;
        for (size_t k = 0; k < members.size() && ok; ++k) {
          const ChainMember& m = members[k];
          std::vector<Expr> args;
          for (int i = 0; i < m.ctx->num_inputs(); ++i) {
            int src = i < int(m.source.size()) ? m.source[size_t(i)] : ChainMember::kOmitted;
            if (src == ChainMember::kOmitted || !m.ctx->has_input(i))
              args.push_back(nullptr);
            else if (src >= 0)
              args.push_back(loaded.count(src) ? loaded[src] : nullptr);
            else
              args.push_back(
                  jit::var(names[size_t(-src - 1)], members[size_t(-src - 1)].ctx->output(0).type));
          }
          std::optional<MapCapture> cap = capture(*m.ctx, *fns[k], std::move(args), m.source);
          if (!cap) {
            ok = false;
            break;
          }
          last = cap->result;
          if (k + 1 < members.size()) lets.emplace_back(names[k], cap->result);
        }
        if (!ok) return jit::block({});
        Stmt s = fused.store_output(0, idx, last);
        for (size_t i = lets.size(); i-- > 0;) s = jit::let(lets[i].first, lets[i].second, s);
        return s;
      },
      true, work);
  if (!ok) return std::nullopt;
  return fused.finish(body, label);
}

}  // namespace kiln::kernels
