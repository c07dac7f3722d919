// The lowering framework: LowerContext (buffers, constants, fresh names, kernel assembly), the
// registry of lowerings and the helpers every family shares (loop_nest, safe_load, product).
//
// loop_nest is where the basic CPU schedule lives: the outermost loops are fused into one parallel
// loop when the nest has enough work to pay for a task split (a long innermost loop under too few
// outer iterations is split into chunks that join them), and the innermost loop is vectorized
// with as many lanes as one native vector of the widest output element holds. The decisions read
// the concrete dims of this specialization (allowed for schedule choices); sizes in the IR only
// ever come from the dim Exprs.
#include "kernels/lower/lower.h"

#include <algorithm>
#include <unordered_set>

#include "jit/host_target.h"
#include "kiln/error.h"

namespace kiln::kernels {

using jit::Expr;
using jit::ExprKind;
using jit::Stmt;
using jit::StmtKind;

namespace {

[[noreturn]] void internal(const std::string& msg) {
  throw Error(ErrorCode::kInternal, "lowering: " + msg);
}

// Walks every expression reachable from a kernel once (shared subtrees are visited once) and
// records the greatest parameter index.
class ParamScanner {
 public:
  void expr(const Expr& e) {
    if (!e || !seen_.insert(e.get()).second) return;
    if (e->kind == ExprKind::kParam) max_param_ = std::max(max_param_, int(e->ival));
    for (const auto& a : e->args) expr(a);
    for (const auto& x : e->reduce_extents) expr(x);
  }
  void stmt(const Stmt& s) {
    if (!s) return;
    expr(s->extent);
    expr(s->value);
    for (const auto& i : s->indices) expr(i);
    for (const auto& b : s->body) stmt(b);
  }
  int num_params() const { return max_param_ + 1; }

 private:
  std::unordered_set<const jit::ExprNode*> seen_;
  int max_param_ = -1;
};

// A large stand-in for the size of a dim whose value cannot be estimated: it makes loop_nest choose
// the schedule for big tensors, whose parallel loops still run inline when small.
constexpr int64_t kUnknownExtent = int64_t(1) << 20;
// The fused parallel loop should offer at least this many iterations before more loops are fused.

int64_t sat_mul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  if (a > (int64_t(1) << 40) / std::max<int64_t>(b, 1)) return int64_t(1) << 40;
  return a * b;
}

}  // namespace

// ---- TensorArg / Schedule ----------------------------------------------------------------------

TensorArg TensorArg::fixed(jit::ScalarType t, const std::vector<int64_t>& dims) {
  TensorArg a;
  a.type = t;
  for (int64_t d : dims) a.dims.push_back(jit::imm(d));
  a.strides = jit::contiguous_strides(a.dims);
  a.concrete = dims;
  return a;
}

Schedule Schedule::for_host() {
  Schedule s;
  s.vector_lanes = jit::host_vector_lanes_f32();
  return s;
}

// ---- LowerContext ------------------------------------------------------------------------------

LowerContext::LowerContext(const ir::Node& node, std::vector<std::optional<TensorArg>> inputs,
                           std::vector<TensorArg> outputs, std::vector<const Tensor*> constants,
                           Schedule schedule)
    : node_(node),
      inputs_(std::move(inputs)),
      outputs_(std::move(outputs)),
      constants_(std::move(constants)),
      schedule_(schedule) {
  // Concrete dims may be left out when every dim is an immediate (they are then its values).
  auto check = [](TensorArg& a, const std::string& what) {
    if (a.concrete.empty() && !a.dims.empty() &&
        std::all_of(a.dims.begin(), a.dims.end(), [](const Expr& d) { return d->is_int_imm(); }))
      for (const auto& d : a.dims) a.concrete.push_back(d->ival);
    if (a.strides.size() != a.dims.size() || a.concrete.size() != a.dims.size())
      internal(what + ": dims, strides and concrete dims differ in rank");
  };
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i]) check(*inputs_[i], "input " + std::to_string(i));
  for (size_t o = 0; o < outputs_.size(); ++o) check(outputs_[o], "output " + std::to_string(o));
}

const TensorArg& LowerContext::input(int i) const {
  if (i < 0 || !has_input(i))
    internal(node_.op_type + ": input " + std::to_string(i) + " is absent");
  return *inputs_[size_t(i)];
}

const TensorArg& LowerContext::output(int o) const {
  if (o < 0 || o >= num_outputs())
    internal(node_.op_type + ": output " + std::to_string(o) + " out of range");
  return outputs_[size_t(o)];
}

const Tensor* LowerContext::constant(int i) const {
  if (i < 0 || size_t(i) >= constants_.size()) return nullptr;
  const Tensor* t = constants_[size_t(i)];
  return t && t->defined() ? t : nullptr;
}

std::optional<std::vector<int64_t>> LowerContext::constant_ints(int i) const {
  const Tensor* t = constant(i);
  if (!t || (t->dtype() != DType::kI32 && t->dtype() != DType::kI64)) return std::nullopt;
  std::vector<int64_t> v(size_t(t->numel()));
  for (int64_t k = 0; k < t->numel(); ++k) v[size_t(k)] = t->element_as_int(k);
  return v;
}

std::string LowerContext::fresh_var(const std::string& hint) {
  // var_counters_ holds the next counter per hint and, under a "#" prefix, every name handed out,
  // so hints that end in digits ("i1" + "0" vs "i" + "10") never produce a name twice.
  int& next = var_counters_[hint];
  for (;;) {
    std::string name = hint + std::to_string(next++);
    if (var_counters_.emplace("#" + name, 1).second) return name;
  }
}

Expr LowerContext::load_input(int i, const std::vector<Expr>& idx) const {
  const TensorArg& a = input(i);
  if (int(idx.size()) != a.rank())
    internal(node_.op_type + ": load of input " + std::to_string(i) + " with " +
             std::to_string(idx.size()) + " indices, rank " + std::to_string(a.rank()));
  return jit::load(input_buffer(i), a.type, idx);
}

Stmt LowerContext::store_output(int o, const std::vector<Expr>& idx, Expr value) const {
  const TensorArg& a = output(o);
  if (int(idx.size()) != a.rank())
    internal(node_.op_type + ": store of output " + std::to_string(o) + " with " +
             std::to_string(idx.size()) + " indices, rank " + std::to_string(a.rank()));
  if (value->type != a.type)
    internal(node_.op_type + ": store of a " + jit::type_name(value->type) + " into a " +
             jit::type_name(a.type) + " output");
  return jit::store(output_buffer(o), idx, std::move(value));
}

std::vector<Expr> LowerContext::broadcast_index(int i, const std::vector<Expr>& out_idx) const {
  const TensorArg& a = input(i);
  if (a.rank() > int(out_idx.size()))
    internal(node_.op_type + ": input " + std::to_string(i) + " has a higher rank than the index");
  size_t off = out_idx.size() - size_t(a.rank());
  std::vector<Expr> idx;
  for (int d = 0; d < a.rank(); ++d)
    idx.push_back(a.dims[size_t(d)]->is_int_imm(1) ? jit::imm(0) : out_idx[off + size_t(d)]);
  return idx;
}

jit::Kernel LowerContext::finish(Stmt body, const std::string& label) const {
  jit::Kernel k;
  k.label = label;
  ParamScanner scan;
  auto decl = [&](const TensorArg& a, const std::string& name, bool output) {
    jit::BufferDecl b;
    b.name = name;
    b.type = a.type;
    b.dims = a.dims;
    b.strides = a.strides;
    // Tensors of the engine are 64-byte aligned, but an arg may be a view into another tensor: only
    // the element alignment is guaranteed (alignment is a performance hint to LLVM).
    b.align = jit::type_bytes(a.type);
    b.output = output;
    for (const auto& e : b.dims) scan.expr(e);
    for (const auto& e : b.strides) scan.expr(e);
    k.buffers.push_back(std::move(b));
  };
  for (int i = 0; i < num_inputs(); ++i) {
    if (inputs_[size_t(i)]) {
      decl(*inputs_[size_t(i)], "x" + std::to_string(i), false);
    } else {
      jit::BufferDecl b;  // an omitted optional input: never accessed
      b.name = "x" + std::to_string(i);
      b.type = jit::ScalarType::kU8;
      k.buffers.push_back(std::move(b));
    }
  }
  for (int o = 0; o < num_outputs(); ++o) decl(outputs_[size_t(o)], "y" + std::to_string(o), true);
  scan.stmt(body);
  k.num_params = scan.num_params();
  k.body = std::move(body);
  jit::validate(k);
  return k;
}

std::optional<int64_t> concrete_value(const LowerContext& ctx, const Expr& e) {
  if (!e) return std::nullopt;
  switch (e->kind) {
    case ExprKind::kIntImm:
      return e->ival;
    case ExprKind::kParam: {
      auto find = [&](const TensorArg& a) -> std::optional<int64_t> {
        for (size_t d = 0; d < a.dims.size(); ++d)
          if (a.dims[d]->kind == ExprKind::kParam && a.dims[d]->ival == e->ival)
            return a.concrete[d];
        return std::nullopt;
      };
      for (int i = 0; i < ctx.num_inputs(); ++i)
        if (ctx.has_input(i))
          if (auto v = find(ctx.input(i))) return v;
      for (int o = 0; o < ctx.num_outputs(); ++o)
        if (auto v = find(ctx.output(o))) return v;
      return std::nullopt;
    }
    case ExprKind::kBinary: {
      auto a = concrete_value(ctx, e->args[0]);
      auto b = concrete_value(ctx, e->args[1]);
      if (!a || !b) return std::nullopt;
      switch (jit::BinaryOp(e->op)) {
        case jit::BinaryOp::kAdd:
          return *a + *b;
        case jit::BinaryOp::kSub:
          return *a - *b;
        case jit::BinaryOp::kMul:
          return sat_mul(*a, *b);
        case jit::BinaryOp::kDiv:
          return *b == 0 ? 0 : *a / *b;
        case jit::BinaryOp::kMod:
          return *b == 0 ? 0 : *a % *b;
        case jit::BinaryOp::kMin:
          return std::min(*a, *b);
        case jit::BinaryOp::kMax:
          return std::max(*a, *b);
        default:
          return std::nullopt;
      }
    }
    default:
      return std::nullopt;
  }
}

int vector_factor(const LowerContext& ctx) {
  if (!ctx.schedule().vectorize) return 1;
  int bytes = 1;
  for (int o = 0; o < ctx.num_outputs(); ++o)
    bytes = std::max(bytes, jit::type_bytes(ctx.output(o).type));
  int lanes = ctx.schedule().vector_lanes * 4 / bytes;
  return std::clamp(lanes, 1, 64);
}

// ---- Lowerings ---------------------------------------------------------------------------------

const Lowerings& Lowerings::global() {
  static const Lowerings instance = [] {
    Lowerings l;
    register_elementwise_lowerings(l);
    register_reduction_lowerings(l);
    register_movement_lowerings(l);
    register_pool_lowerings(l);
    register_linalg_lowerings(l);
    return l;
  }();
  return instance;
}

void Lowerings::add(const std::string& domain, const std::string& op, LowerFn fn) {
  auto key = std::make_pair(canonical_domain(domain), op);
  if (fns_.count(key)) internal("two lowerings registered for " + op);
  fns_.emplace(std::move(key), std::move(fn));
}

const LowerFn* Lowerings::find(const std::string& domain, const std::string& op) const {
  auto it = fns_.find({canonical_domain(domain), op});
  return it == fns_.end() ? nullptr : &it->second;
}

std::vector<std::string> Lowerings::ops() const {
  std::vector<std::string> out;
  for (const auto& [key, fn] : fns_)
    out.push_back(key.first.empty() ? key.second : key.first + "." + key.second);
  return out;
}

// ---- Helpers -----------------------------------------------------------------------------------

jit::Stmt loop_nest(LowerContext& ctx, const std::vector<Expr>& dims,
                    const std::function<Stmt(const std::vector<Expr>&)>& body, bool vectorize,
                    int64_t work_per_element, bool top_level) {
  const size_t n = dims.size();
  std::vector<Expr> idx(n);
  // Dims of extent 1 need no loop: their index is 0.
  std::vector<size_t> loops;
  for (size_t d = 0; d < n; ++d) {
    if (dims[d]->is_int_imm(1))
      idx[d] = jit::imm(0);
    else
      loops.push_back(d);
  }
  if (loops.empty()) return body(idx);

  std::vector<int64_t> est(n);
  int64_t total = 1;
  for (size_t d : loops) {
    auto v = concrete_value(ctx, dims[d]);
    est[d] = v ? std::max<int64_t>(*v, 0) : kUnknownExtent;
    total = sat_mul(total, est[d]);
  }
  const int64_t work = std::max<int64_t>(work_per_element, 1);
  const int64_t grain = std::max<int64_t>(ctx.schedule().parallel_grain, 1);
  const bool parallel = top_level && sat_mul(total, work) >= grain;

  // The innermost loop: vectorized when asked and long enough for whole vectors.
  const size_t inner = loops.back();
  int64_t vf = 0;
  if (vectorize) {
    vf = vector_factor(ctx);
    if (est[inner] < 4) {
      vf = 0;
    } else {
      while (vf > est[inner]) vf /= 2;
    }
  }
  auto inner_kind = [&] { return vf > 1 ? jit::LoopKind::kVectorized : jit::LoopKind::kSerial; };
  auto inner_factor = [&] { return vf > 1 ? vf : 0; };

  for (size_t d : loops) idx[d] = jit::var(ctx.fresh_var("i"));

  if (!parallel) {
    Stmt s = body(idx);
    for (size_t k = loops.size(); k-- > 0;) {
      size_t d = loops[k];
      bool innermost = k + 1 == loops.size();
      s = jit::for_loop(idx[d]->name, dims[d], innermost ? inner_kind() : jit::LoopKind::kSerial, s,
                        innermost ? inner_factor() : 0);
    }
    return s;
  }

  // Fuse the outer loops (never the innermost) into the parallel loop: as many as it takes to reach
  // the schedule's min_parallel_iterations.
  const int64_t min_iterations = ctx.schedule().min_parallel_iterations;
  size_t p = 0;
  int64_t outer = 1;
  while (p + 1 < loops.size() && outer < min_iterations) outer = sat_mul(outer, est[loops[p++]]);
  // Still too few iterations (one long dim, or short outer dims): the innermost loop is split into
  // chunks of whole vectors, each chunk one parallel iteration of at least a grain of work.
  // Without a vector loop to keep, the innermost loop is fused into the parallel loop instead.
  int64_t chunk = 0;
  if (p + 1 == loops.size() && outer < min_iterations) {
    if (vf > 1) {
      chunk = ((grain + work - 1) / work + vf - 1) / vf * vf;
      if (dims[inner]->is_int_imm() && dims[inner]->ival <= chunk) chunk = 0;  // one chunk
    } else {
      p = loops.size();
    }
  }
  if (p == 0 && chunk == 0)  // a single loop of at most one chunk
    return jit::for_loop(idx[inner]->name, dims[inner], inner_kind(), body(idx), inner_factor());

  std::vector<Expr> at = idx;
  std::string c;  // the chunk index, when the innermost loop is split
  if (chunk) {
    c = ctx.fresh_var("c");
    at[inner] = jit::var(c) * chunk + idx[inner];
  }
  Stmt s = body(at);
  for (size_t k = loops.size(); k-- > p;) {
    size_t d = loops[k];
    bool innermost = k + 1 == loops.size();
    Expr extent = dims[d];
    if (innermost && chunk) extent = jit::min(jit::imm(chunk), dims[d] - jit::var(c) * chunk);
    s = jit::for_loop(idx[d]->name, extent, innermost ? inner_kind() : jit::LoopKind::kSerial, s,
                      innermost ? inner_factor() : 0);
  }
  int64_t per_iter = chunk ? sat_mul(chunk, work) : work;
  for (size_t k = p; k < loops.size() && !chunk; ++k) per_iter = sat_mul(per_iter, est[loops[k]]);
  int64_t min_iters = std::max<int64_t>((grain + per_iter - 1) / std::max<int64_t>(per_iter, 1), 1);

  if (p == 1 && !chunk)
    return jit::for_loop(idx[loops[0]]->name, dims[loops[0]], jit::LoopKind::kParallel, s,
                         min_iters);
  // Fused: f runs over the outer dims (and the chunks, fastest); each index is recovered by div/mod
  // and bound with a Let inside the parallel loop.
  std::vector<Expr> fused;
  std::vector<std::string> names;
  for (size_t k = 0; k < p; ++k) {
    fused.push_back(dims[loops[k]]);
    names.push_back(idx[loops[k]]->name);
  }
  if (chunk) {
    fused.push_back((dims[inner] + (chunk - 1)) / chunk);
    names.push_back(c);
  }
  if (fused.size() == 1)
    return jit::for_loop(names[0], fused[0], jit::LoopKind::kParallel, s, min_iters);
  std::string f = ctx.fresh_var("f");
  Expr fv = jit::var(f);
  Expr stride = jit::imm(1);
  for (size_t k = fused.size(); k-- > 0;) {
    Expr v = stride->is_int_imm(1) ? fv : fv / stride;
    if (k != 0) v = v % fused[k];
    s = jit::let(names[k], v, s);
    stride = stride * fused[k];
  }
  return jit::for_loop(f, product(fused), jit::LoopKind::kParallel, s, min_iters);
}

Expr safe_load(const LowerContext& ctx, int input, const std::vector<Expr>& idx, Expr valid,
               Expr fallback) {
  const TensorArg& a = ctx.input(input);
  if (int(idx.size()) != a.rank()) internal("safe_load: index count differs from the rank");
  // An empty buffer has no element to clamp to; the load can only ever be invalid.
  for (const auto& d : a.dims)
    if (d->is_int_imm(0)) return fallback;
  std::vector<Expr> clamped;
  for (size_t d = 0; d < idx.size(); ++d) {
    if (a.dims[d]->is_int_imm(1)) {
      clamped.push_back(jit::imm(0));
    } else {
      clamped.push_back(jit::max(jit::min(idx[d], a.dims[d] - 1), jit::imm(0)));
    }
  }
  return jit::select(std::move(valid), ctx.load_input(input, clamped), std::move(fallback));
}

Expr product(const std::vector<Expr>& dims, size_t begin, size_t end) {
  Expr p = jit::imm(1);
  end = std::min(end, dims.size());
  for (size_t d = begin; d < end; ++d) p = p * dims[d];
  return p;
}

}  // namespace kiln::kernels
