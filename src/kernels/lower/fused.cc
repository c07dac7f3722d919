// Elementwise chains fused into one loop nest.
//
// Each member's lowering runs in capture mode (MapCapture): instead of a kernel it returns its
// scalar function applied to the values of its inputs. Those values are let-bound variables: an
// external input is loaded once per element (at its broadcast index) and an earlier member's
// value is its variable, so intermediates live in registers. Loads a member makes by itself
// (Clip's bounds, read at fixed indices) name the member's buffers and are renumbered to the
// fused kernel's.
#include <algorithm>
#include <map>

#include "kernels/lower/lower.h"

namespace kiln::kernels {

namespace {

using jit::Expr;
using jit::ExprKind;
using jit::Stmt;

// `e` rebuilt bottom-up: each node, with its operands already rebuilt, is passed to `f`, which
// returns its replacement (nullopt: fail).
using ExprFn = std::function<std::optional<Expr>(const Expr&)>;
std::optional<Expr> rewrite(const Expr& e, const ExprFn& f) {
  if (!e) return e;
  std::vector<Expr> args;
  bool changed = false;
  for (const Expr& a : e->args) {
    std::optional<Expr> r = rewrite(a, f);
    if (!r) return std::nullopt;
    changed |= *r != a;
    args.push_back(*r);
  }
  std::vector<Expr> extents;
  for (const Expr& a : e->reduce_extents) {
    std::optional<Expr> r = rewrite(a, f);
    if (!r) return std::nullopt;
    changed |= *r != a;
    extents.push_back(*r);
  }
  Expr node = e;
  if (changed) {
    switch (e->kind) {
      case ExprKind::kLoad:
        node = jit::load(int(e->ival), e->type, std::move(args));
        break;
      case ExprKind::kUnary:
        node = jit::unary(jit::UnaryOp(e->op), args[0]);
        break;
      case ExprKind::kBinary:
        node = jit::binary(jit::BinaryOp(e->op), args[0], args[1]);
        break;
      case ExprKind::kCast:
        node = jit::cast(e->type, args[0]);
        break;
      case ExprKind::kSelect:
        node = jit::select(args[0], args[1], args[2]);
        break;
      case ExprKind::kReduce:
        node =
            jit::reduce(jit::ReduceOp(e->op), e->reduce_vars, std::move(extents), args[0], args[1]);
        break;
      default:
        break;
    }
  }
  return f(node);
}

// `e` with every Load's buffer renumbered through `buffer_of` (-1: fail).
std::optional<Expr> renumber_loads(const Expr& e, const std::function<int(int)>& buffer_of) {
  return rewrite(e, [&](const Expr& n) -> std::optional<Expr> {
    if (n->kind != ExprKind::kLoad) return n;
    int b = buffer_of(int(n->ival));
    if (b < 0) return std::nullopt;
    return b == int(n->ival) ? n : jit::load(b, n->type, n->args);
  });
}

// `e` with the variables named in `values` replaced by their expressions.
Expr substitute(const Expr& e, const std::map<std::string, Expr>& values) {
  return *rewrite(e, [&](const Expr& n) -> std::optional<Expr> {
    if (n->kind != ExprKind::kVar) return n;
    auto it = values.find(n->name);
    return it == values.end() ? n : it->second;
  });
}

// `s` with `expr` applied to every expression in it and store buffers renumbered by `buffer_of`.
std::optional<Stmt> rewrite_stmt(const Stmt& s, const ExprFn& expr,
                                 const std::function<int(int)>& buffer_of) {
  if (!s) return s;
  std::vector<Stmt> body;
  for (const Stmt& b : s->body) {
    std::optional<Stmt> r = rewrite_stmt(b, expr, buffer_of);
    if (!r) return std::nullopt;
    body.push_back(*r);
  }
  auto ex = [&](const Expr& e) { return rewrite(e, expr); };
  switch (s->kind) {
    case jit::StmtKind::kFor: {
      std::optional<Expr> extent = ex(s->extent);
      if (!extent) return std::nullopt;
      return jit::for_loop(s->var, *extent, s->loop, body[0], s->factor);
    }
    case jit::StmtKind::kStore: {
      std::vector<Expr> idx;
      for (const Expr& i : s->indices) {
        std::optional<Expr> r = ex(i);
        if (!r) return std::nullopt;
        idx.push_back(*r);
      }
      std::optional<Expr> value = ex(s->value);
      int b = buffer_of(s->buffer);
      if (!value || b < 0) return std::nullopt;
      return jit::store(b, std::move(idx), *value);
    }
    case jit::StmtKind::kLet: {
      std::optional<Expr> value = ex(s->value);
      if (!value) return std::nullopt;
      return jit::let(s->var, *value, body[0]);
    }
    case jit::StmtKind::kBlock:
      return jit::block(std::move(body));
    case jit::StmtKind::kIf: {
      std::optional<Expr> cond = ex(s->value);
      if (!cond) return std::nullopt;
      return jit::if_then(*cond, body[0], body.size() > 1 ? body[1] : nullptr);
    }
  }
  return std::nullopt;
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

namespace {

// Each member's lowering, when every member is an elementwise map over `fused`'s output shape
// (probed with placeholder variables); `work` gets the sum of their work per element.
std::optional<std::vector<const LowerFn*>> chain_lowerings(LowerContext& fused,
                                                           const std::vector<ChainMember>& members,
                                                           int64_t* work) {
  if (members.empty() || fused.num_outputs() != 1) return std::nullopt;
  const TensorArg& out = fused.output(0);
  std::vector<const LowerFn*> fns;
  *work = 0;
  for (size_t k = 0; k < members.size(); ++k) {
    const ChainMember& m = members[k];
    const LowerFn* fn = lowering_of(*m.ctx);
    if (!fn || m.ctx->num_outputs() != 1 ||
        (k + 1 == members.size() && m.ctx->output(0).type != out.type))
      return std::nullopt;
    if (m.ctx->output(0).concrete != out.concrete) return std::nullopt;
    std::vector<Expr> args;
    for (int i = 0; i < m.ctx->num_inputs(); ++i)
      args.push_back(
          m.ctx->has_input(i)
              ? jit::var("p" + std::to_string(k) + "_" + std::to_string(i), m.ctx->input(i).type)
              : nullptr);
    std::optional<MapCapture> cap = capture(*m.ctx, *fn, std::move(args), m.source);
    if (!cap) return std::nullopt;
    *work += cap->work;
    fns.push_back(fn);
  }
  return fns;
}

// The chain's value at one element, over the variables "__x<b>" (fused input b's value there);
// the members' own loads name `fused`'s buffers.
std::optional<Expr> chain_value(LowerContext& fused, const std::vector<ChainMember>& members,
                                const std::vector<const LowerFn*>& fns) {
  std::vector<Expr> results;
  for (size_t k = 0; k < members.size(); ++k) {
    const ChainMember& m = members[k];
    std::vector<Expr> args;
    std::map<std::string, Expr> values;
    for (int i = 0; i < m.ctx->num_inputs(); ++i) {
      int src = i < int(m.source.size()) ? m.source[size_t(i)] : ChainMember::kOmitted;
      if (src == ChainMember::kOmitted || !m.ctx->has_input(i)) {
        args.push_back(nullptr);
        continue;
      }
      std::string name = "__m" + std::to_string(k) + "_" + std::to_string(i);
      args.push_back(jit::var(name, m.ctx->input(i).type));
      if (src >= 0) {
        if (src >= fused.num_inputs() || !fused.has_input(src)) return std::nullopt;
        values[name] = jit::var("__x" + std::to_string(src), fused.input(src).type);
      } else {
        values[name] = results[size_t(-src - 1)];
      }
    }
    std::optional<MapCapture> cap = capture(*m.ctx, *fns[k], std::move(args), m.source);
    if (!cap) return std::nullopt;
    results.push_back(substitute(cap->result, values));
  }
  return results.back();
}

std::string print_dims(const std::vector<Expr>& dims) {
  std::string s;
  for (const Expr& d : dims) s += jit::print(d) + ";";
  return s;
}

}  // namespace

std::optional<jit::Kernel> inline_producer_chain(const jit::Kernel& consumer, int slot,
                                                 LowerContext& fused,
                                                 const std::vector<ChainMember>& members,
                                                 const std::string& label) {
  if (slot < 0 || slot >= int(consumer.buffers.size()) || consumer.buffers[size_t(slot)].output ||
      fused.num_outputs() != 1)
    return std::nullopt;
  const jit::BufferDecl& in = consumer.buffers[size_t(slot)];
  const TensorArg& out = fused.output(0);
  if (in.type != out.type || print_dims(in.dims) != print_dims(out.dims)) return std::nullopt;
  int64_t work = 0;
  std::optional<std::vector<const LowerFn*>> fns = chain_lowerings(fused, members, &work);
  if (!fns) return std::nullopt;
  std::optional<Expr> value = chain_value(fused, members, *fns);
  const int m = fused.num_inputs();
  if (value) value = renumber_loads(*value, [&](int b) { return b < m ? slot + b : -1; });
  if (!value) return std::nullopt;
  auto moved = [&](int b) { return b < slot ? b : b + m - 1; };
  ExprFn at_loads = [&](const Expr& n) -> std::optional<Expr> {
    if (n->kind != ExprKind::kLoad) return n;
    const int b = int(n->ival);
    if (b != slot) return moved(b) == b ? n : jit::load(moved(b), n->type, n->args);
    std::map<std::string, Expr> loads;
    for (int x = 0; x < m; ++x)
      loads["__x" + std::to_string(x)] =
          jit::load(slot + x, fused.input(x).type, fused.broadcast_index(x, n->args));
    return substitute(*value, loads);
  };
  std::optional<Stmt> body =
      rewrite_stmt(consumer.body, at_loads, [&](int b) { return b == slot ? -1 : moved(b); });
  if (!body) return std::nullopt;
  const jit::Kernel inputs = fused.finish(jit::block({}), label);  // the chain inputs' buffers
  jit::Kernel k;
  k.label = label;
  k.buffers.assign(consumer.buffers.begin(), consumer.buffers.begin() + slot);
  k.buffers.insert(k.buffers.end(), inputs.buffers.begin(), inputs.buffers.begin() + m);
  k.buffers.insert(k.buffers.end(), consumer.buffers.begin() + slot + 1, consumer.buffers.end());
  const int num_inputs = int(std::count_if(k.buffers.begin(), k.buffers.end(),
                                           [](const jit::BufferDecl& b) { return !b.output; }));
  for (int b = 0; b < int(k.buffers.size()); ++b)
    k.buffers[size_t(b)].name =
        b < num_inputs ? "x" + std::to_string(b) : "y" + std::to_string(b - num_inputs);
  k.num_params = std::max(consumer.num_params, inputs.num_params);
  k.body = *body;
  jit::validate(k);
  return k;
}

std::optional<jit::Kernel> lower_elementwise_chain(LowerContext& fused,
                                                   const std::vector<ChainMember>& members,
                                                   const std::string& label) {
  int64_t work = 0;
  std::optional<std::vector<const LowerFn*>> found = chain_lowerings(fused, members, &work);
  if (!found) return std::nullopt;
  const std::vector<const LowerFn*>& fns = *found;
  const TensorArg& out = fused.output(0);

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

std::optional<jit::Kernel> lower_elementwise_chain_nchwc(LowerContext& fused,
                                                         const std::vector<ChainMember>& members,
                                                         const std::string& label,
                                                         const std::vector<char>& blocked,
                                                         int64_t block) {
  if (fused.num_outputs() != 1 || int(blocked.size()) != fused.num_inputs() || block <= 0)
    return std::nullopt;
  const TensorArg& out = fused.output(0);
  if (out.rank() != 4 || out.type != jit::ScalarType::kF32) return std::nullopt;
  for (const Expr& d : out.dims)
    if (!d->is_int_imm()) return std::nullopt;
  const int64_t n = out.dims[0]->ival, c = out.dims[1]->ival, h = out.dims[2]->ival,
                w = out.dims[3]->ival, cblocks = (c + block - 1) / block;
  for (int b = 0; b < fused.num_inputs(); ++b)
    if (blocked[size_t(b)] && (!fused.has_input(b) || fused.input(b).type != out.type ||
                               print_dims(fused.input(b).dims) != print_dims(out.dims)))
      return std::nullopt;
  int64_t work = 0;
  std::optional<std::vector<const LowerFn*>> fns = chain_lowerings(fused, members, &work);
  if (!fns) return std::nullopt;
  std::optional<Expr> value = chain_value(fused, members, *fns);
  if (!value) return std::nullopt;

  const std::vector<Expr> blocked_dims = {jit::imm(n), jit::imm(cblocks), jit::imm(h), jit::imm(w),
                                          jit::imm(block)};
  Stmt body = loop_nest(
      fused, blocked_dims,
      [&](const std::vector<Expr>& idx) -> Stmt {
        // The logical channel of this lane; a padding lane (past C) reads channel C - 1 of the
        // NCHW inputs, so every load stays in bounds, and stores 0.
        Expr channel = idx[1] * block + idx[4];
        std::vector<Expr> nchw = {idx[0], jit::min(channel, jit::imm(c - 1)), idx[2], idx[3]};
        std::map<std::string, Expr> loads;
        for (int b = 0; b < fused.num_inputs(); ++b) {
          if (!fused.has_input(b)) continue;
          loads["__x" + std::to_string(b)] =
              blocked[size_t(b)] ? jit::load(b, out.type, idx)
                                 : fused.load_input(b, fused.broadcast_index(b, nchw));
        }
        Expr v = substitute(*value, loads);
        if (c % block != 0)
          v = jit::select(jit::binary(jit::BinaryOp::kLt, channel, jit::imm(c)), v,
                          jit::constant(0, out.type));
        return jit::store(fused.num_inputs(), idx, v);
      },
      true, work);
  jit::Kernel k = fused.finish(jit::block({}), label);
  auto blocked_decl = [&](jit::BufferDecl& d) {
    d.dims = blocked_dims;
    d.strides = jit::contiguous_strides(blocked_dims);
  };
  for (int b = 0; b < fused.num_inputs(); ++b)
    if (blocked[size_t(b)]) blocked_decl(k.buffers[size_t(b)]);
  blocked_decl(k.buffers.back());
  k.body = body;
  jit::validate(k);
  return k;
}

}  // namespace kiln::kernels
