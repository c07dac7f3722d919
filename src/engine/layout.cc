// The blocked-layout pass (layout.h).
#include "engine/layout.h"

#include <algorithm>
#include <optional>
#include <set>

#include "engine/env.h"
#include "kernels/fast/gemm.h"
#include "kernels/fast/nchwc.h"

namespace kiln::engine {

namespace {

enum class Role { kNone, kConv, kPool, kGlobalPool, kConcat, kElementwise };

struct Candidate {
  Role role = Role::kNone;
  bool blocked_out = false;  // writes its output blocked
  bool blocked_in = false;   // pools/concats/elementwise: runs on blocked inputs
  std::set<int> full;        // elementwise: the inputs of the output's dims (read blocked)
  std::optional<BlockedKernel> relowered;  // elementwise: its blocked kernel
};

bool is_4d_f32(const ir::Graph& g, int id) {
  if (id < 0) return false;
  const ir::Value& v = g.values[size_t(id)];
  return v.dtype == DType::kF32 && v.shape.is_concrete() && v.shape.rank() == 4;
}

}  // namespace

namespace {

// A blocked convolution (no residual) whose output only a blocked pool or a blocked depthwise
// conv (no residual) reads runs with it as one step (fast::ConvPoolNchwc, ConvDwNchwc): its
// output never goes to memory. KILN_CONV_POOL=0 keeps all apart, KILN_CONV_DEPTHWISE=0 the
// depthwise pairs.
void fuse_blocked_pairs(Plan& plan, const ir::Graph& g, std::vector<PlanStep>& steps,
                        const std::vector<std::pair<size_t, bool>>& convs,
                        kernels::WeightCache* weights) {
  static const bool enabled = env_flag("KILN_CONV_POOL", true);
  static const bool conv_dw = env_flag("KILN_CONV_DEPTHWISE", true);
  if (!enabled || convs.empty()) return;
  std::vector<int> readers(g.values.size(), 0), reader(g.values.size(), -1);
  for (size_t i = 0; i < steps.size(); ++i)
    for (int v : steps[i].inputs)
      if (v >= 0) {
        readers[size_t(v)]++;
        reader[size_t(v)] = int(i);
      }
  std::vector<char> drop(steps.size(), 0);
  for (const auto& [ci, x_blocked] : convs) {
    PlanStep& cs = steps[ci];
    if (cs.kind != PlanStep::Kind::kNative || cs.outputs.size() != 1 ||
        (cs.inputs.size() > 1 && cs.inputs[1] >= 0))
      continue;
    const int y = cs.outputs[0];
    if (readers[size_t(y)] != 1) continue;
    PlanStep& ps = steps[size_t(reader[size_t(y)])];
    if (ps.kind != PlanStep::Kind::kNative || !ps.native || ps.inputs.empty() ||
        ps.inputs[0] != y || !cs.native || cs.native->kind() != kernels::NativeKind::kBlockedConv)
      continue;
    std::shared_ptr<const kernels::NativeOp> op;
    const kernels::NativeKind reads = ps.native->kind();
    if (reads == kernels::NativeKind::kBlockedPool && ps.fused.size() == 1 &&
        ps.inputs.size() == 1) {
      op = kernels::make_nchwc_conv_pool(g, cs.epilogue, x_blocked, g.nodes[size_t(ps.fused[0])],
                                         weights);
    } else if (reads == kernels::NativeKind::kBlockedDepthwise &&
               (ps.inputs.size() < 2 || ps.inputs[1] < 0) && conv_dw) {
      op = kernels::make_nchwc_conv_depthwise(g, cs.epilogue, x_blocked, ps.epilogue, weights);
    }
    if (!op) continue;
    cs.native = op;
    cs.kernel_label = op->describe();
    cs.outputs = ps.outputs;
    cs.fused.insert(cs.fused.end(), ps.fused.begin(), ps.fused.end());
    plan.scratch_bytes = std::max(plan.scratch_bytes, int64_t(op->scratch_bytes()));
    drop[size_t(reader[size_t(y)])] = 1;
    plan.native_steps--;
  }
  std::vector<PlanStep> kept;
  for (size_t i = 0; i < steps.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(steps[i]));
  steps = std::move(kept);
}

}  // namespace

void apply_nchwc_layout(Plan& plan, ir::Graph& g, kernels::WeightCache* weights,
                        const BlockedElementwise& relower, bool winograd) {
  if (!kernels::fast::available()) return;
  const int64_t cb = kernels::fast::nchwc_block();
  std::vector<PlanStep>& steps = plan.steps;
  const size_t nsteps = steps.size();

  // Candidates and who reads each value.
  std::vector<Candidate> cand(nsteps);
  std::vector<int> producer(g.values.size(), -1);
  std::vector<std::vector<int>> consumers(g.values.size());
  bool any_conv = false;
  for (size_t i = 0; i < nsteps; ++i) {
    const PlanStep& s = steps[i];
    for (int v : s.outputs)
      if (v >= 0) producer[size_t(v)] = int(i);
    for (int v : s.inputs)
      if (v >= 0) consumers[size_t(v)].push_back(int(i));
    if (s.kind == PlanStep::Kind::kNative && s.epilogue.anchor >= 0 &&
        kernels::nchwc_conv_eligible(g, s.epilogue) && is_4d_f32(g, s.outputs[0])) {
      cand[i].role = Role::kConv;
      any_conv = true;
      continue;
    }
    if (s.kind == PlanStep::Kind::kKernel && s.elementwise && s.outputs.size() == 1 &&
        is_4d_f32(g, s.outputs[0])) {
      const Dims dims = g.values[size_t(s.outputs[0])].shape.concrete();
      for (int v : s.inputs)
        if (is_4d_f32(g, v) && g.values[size_t(v)].shape.concrete() == dims) cand[i].full.insert(v);
      if (!cand[i].full.empty()) cand[i].role = Role::kElementwise;
      continue;
    }
    if (s.fused.size() != 1 || s.kind == PlanStep::Kind::kView) continue;
    const ir::Node& n = g.nodes[size_t(s.fused[0])];
    if (!n.domain.empty() || s.inputs != n.inputs || s.outputs != n.outputs) continue;
    Role r = n.op_type == "MaxPool" || n.op_type == "AveragePool" ? Role::kPool
             : n.op_type == "GlobalAveragePool"                   ? Role::kGlobalPool
             : n.op_type == "Concat"                              ? Role::kConcat
                                                                  : Role::kNone;
    if (r != Role::kNone && kernels::make_nchwc_single(g, n, cb)) cand[i].role = r;
  }
  if (!any_conv) return;
  for (size_t i = 0; i < nsteps; ++i)
    if (cand[i].role == Role::kElementwise) {
      if (relower) cand[i].relowered = relower(steps[i], cand[i].full);
      if (!cand[i].relowered) cand[i].role = Role::kNone;
    }

  // Which steps produce blocked values, to a fixed point: convolutions start blocked; a pool or
  // concat runs blocked when all its inputs are; a convolution stays blocked only while some
  // consumer reads blocked data.
  auto value_blocked = [&](int v) {
    return v >= 0 && producer[size_t(v)] >= 0 && cand[size_t(producer[size_t(v)])].blocked_out;
  };
  // How step `reader` uses value v when v is blocked. A convolution reads its input in either
  // layout (so blocked, when it is), and its residual in its own output's layout; a pool or
  // concat reads blocked data when it runs blocked, and so does an elementwise step for its
  // inputs of the output's dims; every other step needs NCHW.
  auto reads_blocked = [&](int reader, int v) {
    const Candidate& r = cand[size_t(reader)];
    const PlanStep& s = steps[size_t(reader)];
    if (r.role == Role::kConv)
      return s.inputs[0] == v || (s.inputs.size() > 1 && s.inputs[1] == v && r.blocked_out);
    if (r.role == Role::kElementwise) return r.blocked_in && r.full.count(v) != 0;
    return r.blocked_in;
  };
  auto needs_nchw = [&](int reader, int v) {
    const Candidate& r = cand[size_t(reader)];
    const PlanStep& s = steps[size_t(reader)];
    if (r.role == Role::kConv)  // x + conv(x) reads x both ways
      return s.inputs.size() > 1 && s.inputs[1] == v && !r.blocked_out;
    if (r.role == Role::kElementwise) return !(r.blocked_in && r.full.count(v) != 0);
    return !r.blocked_in;
  };
  for (size_t i = 0; i < nsteps; ++i) cand[i].blocked_out = cand[i].role == Role::kConv;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < nsteps; ++i) {
      Candidate& c = cand[i];
      if (c.role == Role::kPool || c.role == Role::kConcat || c.role == Role::kGlobalPool) {
        bool all = true;
        for (int v : steps[i].inputs) all &= value_blocked(v);
        if (all != c.blocked_in) changed = true;
        c.blocked_in = all;
        c.blocked_out = all && c.role != Role::kGlobalPool;
      }
      if (c.role == Role::kElementwise) {
        bool all = true;
        for (int v : c.full) all &= value_blocked(v);
        if (all != c.blocked_in) changed = true;
        c.blocked_in = c.blocked_out = all;
      }
    }
    for (size_t i = 0; i < nsteps; ++i) {
      Candidate& c = cand[i];
      if (c.role != Role::kConv || !c.blocked_out) continue;
      const int v = steps[i].outputs[0];
      bool wanted = false;
      for (int reader : consumers[size_t(v)]) wanted |= reads_blocked(reader, v);
      if (!wanted) {
        c.blocked_out = false;
        changed = true;
      }
    }
  }

  // New values for blocked data, and the rewritten step list.
  std::vector<int> blocked_id(g.values.size(), -1);
  auto blocked_value = [&](int v) {
    if (blocked_id[size_t(v)] < 0) {
      const ir::Value& src = g.values[size_t(v)];
      const Dims d = src.shape.concrete();
      ir::Value b;
      b.name = src.name + "@nchwc";
      b.dtype = DType::kF32;
      b.shape = ir::Shape::of({d[0], kernels::fast::nchwc_blocks(d[1], cb), d[2], d[3], cb});
      g.values.push_back(std::move(b));
      blocked_id[size_t(v)] = int(g.values.size()) - 1;
    }
    return blocked_id[size_t(v)];
  };
  // A reorder step shown beside `node`; its NCHW side is `from` (to_blocked) or `to`.
  auto reorder_step = [&](int node, int from, int to, bool to_blocked) {
    PlanStep r;
    r.kind = PlanStep::Kind::kNative;
    r.node = node;
    r.inputs = {from};
    r.outputs = {to};
    r.native = kernels::make_nchwc_reorder(
        g.values[size_t(to_blocked ? from : to)].shape.concrete(), to_blocked, cb);
    r.kernel_label = r.native->describe();
    plan.native_steps++;
    return r;
  };
  std::vector<char> is_graph_output(g.values.size(), 0);
  for (int v : g.outputs) is_graph_output[size_t(v)] = 1;

  std::vector<PlanStep> out;
  out.reserve(nsteps * 2);
  std::vector<std::pair<size_t, bool>> convs;  // blocked-output conv steps in `out`, x blocked
  for (size_t i = 0; i < nsteps; ++i) {
    PlanStep s = std::move(steps[i]);
    const Candidate& c = cand[i];
    if (c.role == Role::kConv) {
      const int x = s.inputs[0];
      const bool x_blocked = value_blocked(x);
      if (c.blocked_out) convs.emplace_back(out.size(), x_blocked);
      int residual = s.inputs.size() > 1 ? s.inputs[1] : -1;
      if (residual >= 0 && c.blocked_out != value_blocked(residual)) {
        if (c.blocked_out) {  // an NCHW residual of a blocked output: convert it first
          const int rb = blocked_value(residual);
          out.push_back(reorder_step(s.node, residual, rb, true));
          residual = rb;
        }
        // (a blocked residual of an NCHW output reads the NCHW copy made after its producer)
      } else if (residual >= 0 && c.blocked_out) {
        residual = blocked_value(residual);
      }
      s.native =
          kernels::make_nchwc_conv(g, s.epilogue, x_blocked, c.blocked_out, weights, winograd);
      if (!s.native)  // eligible was checked above: the layouts below assume this kernel
        throw Error(ErrorCode::kInternal,
                    "no blocked kernel for node '" + g.nodes[size_t(s.node)].name + "'");
      s.inputs = {x_blocked ? blocked_value(x) : x, residual};
      s.kernel_label = s.native->describe();
      plan.scratch_bytes = std::max(plan.scratch_bytes, int64_t(s.native->scratch_bytes()));
    } else if (c.blocked_in && c.role == Role::kElementwise) {
      BlockedKernel& bk = *cand[i].relowered;
      s.inputs = bk.inputs;
      s.in_place_input = -1;
      for (size_t k = 0; k < s.inputs.size(); ++k)
        if (c.full.count(s.inputs[k])) {
          s.inputs[k] = blocked_value(s.inputs[k]);
          if (s.in_place_input < 0) s.in_place_input = int(k);
        }
      s.kernel_label = bk.kernel.label;
      s.ir = std::make_shared<const jit::Kernel>(std::move(bk.kernel));
      s.kernel.reset();
      s.kernel_key.clear();
      s.params.clear();
      s.blocked_io = true;
    } else if (c.blocked_in) {
      const ir::Node& n = g.nodes[size_t(s.fused[0])];
      if (s.kind != PlanStep::Kind::kNative) plan.native_steps++;
      s.kind = PlanStep::Kind::kNative;
      s.native = kernels::make_nchwc_single(g, n, cb);
      s.kernel_label = s.native->describe();
      s.kernel.reset();
      s.ir.reset();
      s.kernel_key.clear();
      s.params.clear();
      s.in_place_input = -1;
      for (int& v : s.inputs) v = blocked_value(v);
    }
    const int y = s.outputs[0];
    if (c.blocked_out) {
      const int yb = blocked_value(y);
      s.outputs = {yb};
      const int node = s.node;
      out.push_back(std::move(s));
      bool nchw_needed = is_graph_output[size_t(y)] != 0;
      for (int reader : consumers[size_t(y)]) nchw_needed |= needs_nchw(reader, y);
      if (nchw_needed) out.push_back(reorder_step(node, yb, y, false));
    } else {
      out.push_back(std::move(s));
    }
  }
  fuse_blocked_pairs(plan, g, out, convs, weights);
  steps = std::move(out);
}

}  // namespace kiln::engine
