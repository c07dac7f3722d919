// Attention pattern matching for the fusion pass (see fuse.h, kAttention).
#include <algorithm>
#include <cmath>
#include <set>

#include "engine/fuse.h"
#include "engine/fuse_internal.h"
#include "kernels/registry.h"

namespace kiln::engine {

namespace {

using kernels::StridedView;

bool is_op(const ir::Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

std::vector<int64_t> contiguous(const Dims& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

// numpy's no-copy reshape of a strided view: new strides when the new dims regroup the old ones
// without crossing a non-contiguous boundary; false otherwise.
bool reshape_strides(const Dims& od, const std::vector<int64_t>& os, const Dims& nd,
                     std::vector<int64_t>* ns) {
  Dims d;
  std::vector<int64_t> s;
  for (size_t i = 0; i < od.size(); ++i)
    if (od[i] != 1) {
      d.push_back(od[i]);
      s.push_back(os[i]);
    }
  ns->assign(nd.size(), 0);
  size_t oi = 0, oj = 1, ni = 0, nj = 1;
  const size_t on = d.size(), nn = nd.size();
  while (ni < nn && oi < on) {
    int64_t np = nd[ni], op = d[oi];
    while (np != op) {
      if (np < op) {
        np *= nd[nj++];
      } else {
        op *= d[oj++];
      }
      if (nj > nn + 1 || oj > on + 1) return false;
    }
    for (size_t k = oi; k + 1 < oj; ++k)
      if (s[k] != d[k + 1] * s[k + 1]) return false;
    (*ns)[nj - 1] = s[oj - 1];
    for (size_t k = nj - 1; k > ni; --k) (*ns)[k - 1] = (*ns)[k] * nd[k];
    ni = nj++;
    oi = oj++;
  }
  // Trailing ones (and everything, for a view of one element).
  for (size_t k = 0; k < nn; ++k)
    if (nd[k] == 1) (*ns)[k] = k + 1 < nn ? (*ns)[k + 1] * nd[k + 1] : 1;
  return ni == nn || std::all_of(nd.begin() + long(ni), nd.end(), [](int64_t x) { return x == 1; });
}

struct Resolver {
  const ir::Graph& g;
  const std::vector<char>& live;
  std::set<int> absorbed;  // nodes read through

  // The view of value v, walking back through re-indexing nodes.
  StridedView resolve(int v) {
    const ir::Value& val = g.values[size_t(v)];
    StridedView plain{v, 0, val.shape.concrete(), contiguous(val.shape.concrete())};
    int p = val.producer;
    if (p < 0 || !live[size_t(p)] || val.constant.defined()) return plain;
    const ir::Node& n = g.nodes[size_t(p)];
    if (!n.domain.empty() || n.inputs.empty() || n.inputs[0] < 0) return plain;
    const int in = n.inputs[0];
    if (!g.values[size_t(in)].shape.is_concrete() || g.values[size_t(in)].dtype != DType::kF32)
      return plain;
    if (n.op_type == "Transpose") {
      std::vector<int64_t> perm = kernels::NodeAttrs(n).attr_ints("perm", {});
      StridedView src = resolve(in);
      if (perm.size() != src.dims.size()) return plain;
      StridedView out{src.value, src.offset, {}, {}};
      for (int64_t a : perm) {
        if (a < 0 || size_t(a) >= src.dims.size()) return plain;
        out.dims.push_back(src.dims[size_t(a)]);
        out.strides.push_back(src.strides[size_t(a)]);
      }
      absorbed.insert(p);
      return out;
    }
    if (n.op_type == "Reshape" || n.op_type == "Squeeze" || n.op_type == "Unsqueeze" ||
        n.op_type == "Flatten") {
      StridedView src = resolve(in);
      std::vector<int64_t> ns;
      if (!reshape_strides(src.dims, src.strides, plain.dims, &ns)) return plain;
      absorbed.insert(p);
      return {src.value, src.offset, plain.dims, ns};
    }
    if (n.op_type == "Split") {
      const Dims id = g.values[size_t(in)].shape.concrete();
      int64_t axis = kernels::NodeAttrs(n).attr_int("axis", 0);
      if (axis < 0) axis += int64_t(id.size());
      if (axis < 0 || size_t(axis) >= id.size()) return plain;
      int64_t start = 0;
      size_t k = 0;
      for (; k < n.outputs.size() && n.outputs[k] != v; ++k) {
        const ir::Value& o = g.values[size_t(n.outputs[k])];
        if (!o.shape.is_concrete()) return plain;
        start += o.shape.concrete()[size_t(axis)];
      }
      StridedView src = resolve(in);
      if (src.dims != id) return plain;
      absorbed.insert(p);
      return {src.value, src.offset + start * src.strides[size_t(axis)], plain.dims, src.strides};
    }
    return plain;
  }
};

// Dims and strides padded to rank 4 at the front.
bool to_rank4(StridedView& v) {
  if (v.dims.size() > 4 || v.dims.size() < 2) return false;
  while (v.dims.size() < 4) {
    v.dims.insert(v.dims.begin(), 1);
    v.strides.insert(v.strides.begin(), 0);
  }
  return true;
}

std::optional<float> scalar_constant(const ir::Graph& g, int v) {
  if (v < 0) return std::nullopt;
  const Tensor& t = g.values[size_t(v)].constant;
  if (!t.defined() || t.dtype() != DType::kF32 || t.numel() != 1) return std::nullopt;
  return t.data<float>()[0];
}

}  // namespace

void form_attention_groups(const ir::Graph& g, const std::vector<char>& live,
                           const GroupContext& ctx, std::vector<FusionGroup>& groups,
                           std::vector<int>& group_of) {
  for (size_t si = 0; si < g.nodes.size(); ++si) {
    if (!live[si] || group_of[si] >= 0) continue;
    const ir::Node& sm = g.nodes[si];
    if (!is_op(sm, "Softmax") || sm.inputs.empty() || sm.inputs[0] < 0) continue;
    const ir::Value& sv = g.values[size_t(sm.inputs[0])];
    if (sv.dtype != DType::kF32 || !sv.shape.is_concrete()) continue;
    const int rank = sv.shape.rank();
    int64_t axis = kernels::NodeAttrs(sm).attr_int("axis", sm.opset < 13 ? 1 : -1);
    if (axis < 0) axis += rank;
    if (axis != rank - 1 || rank < 2 || rank > 4) continue;

    std::vector<int> nodes = {int(si)};
    kernels::AttentionSpec spec;
    auto free_node = [&](int v) -> int {  // the producer of v when v's only reader is in nodes
      int p = g.values[size_t(v)].producer;
      int r = ctx.sole_reader(v);
      if (p < 0 || !live[size_t(p)] || group_of[size_t(p)] >= 0 || r < 0) return -1;
      return std::find(nodes.begin(), nodes.end(), r) != nodes.end() ? p : -1;
    };
    int x = sm.inputs[0];
    // Mask.
    if (int p = free_node(x); p >= 0) {
      const ir::Node& n = g.nodes[size_t(p)];
      if (is_op(n, "Where") && n.inputs.size() == 3) {
        auto f1 = scalar_constant(g, n.inputs[1]), f2 = scalar_constant(g, n.inputs[2]);
        const ir::Value& cond = g.values[size_t(n.inputs[0])];
        if (cond.dtype == DType::kBool && cond.shape.is_concrete() && (f1 || f2) && !(f1 && f2)) {
          spec.mask_kind = kernels::AttentionSpec::kWhere;
          spec.mask = n.inputs[0];
          spec.keep_when_true = f2.has_value();
          spec.fill = f2 ? *f2 : *f1;
          x = f2 ? n.inputs[1] : n.inputs[2];
          nodes.push_back(p);
        }
      } else if (is_op(n, "Add") && n.inputs.size() == 2) {
        for (int k = 0; k < 2; ++k) {
          int other = n.inputs[size_t(1 - k)], scores = n.inputs[size_t(k)];
          int sp = g.values[size_t(scores)].producer;
          const ir::Value& mv = g.values[size_t(other)];
          if (sp < 0 || mv.dtype != DType::kF32 || !mv.shape.is_concrete() ||
              g.values[size_t(scores)].shape.concrete() != sv.shape.concrete())
            continue;
          const std::string& op = g.nodes[size_t(sp)].op_type;
          if (op != "MatMul" && op != "Div" && op != "Mul") continue;
          spec.mask_kind = kernels::AttentionSpec::kAdd;
          spec.mask = other;
          x = scores;
          nodes.push_back(p);
          break;
        }
      }
    }
    // Scale.
    if (int p = free_node(x); p >= 0) {
      const ir::Node& n = g.nodes[size_t(p)];
      if ((is_op(n, "Div") || is_op(n, "Mul")) && n.inputs.size() == 2) {
        auto c = scalar_constant(g, n.inputs[1]);
        if (c && *c != 0 && std::isfinite(*c)) {
          spec.scale = is_op(n, "Div") ? 1.0f / *c : *c;
          x = n.inputs[0];
          nodes.push_back(p);
        }
      }
    }
    // Scores and the weighted sum.
    int mm1 = free_node(x);
    if (mm1 < 0 || !is_op(g.nodes[size_t(mm1)], "MatMul")) continue;
    nodes.push_back(mm1);
    const ir::Node& m1 = g.nodes[size_t(mm1)];
    int mm2 = ctx.sole_reader(sm.outputs[0]);
    if (mm2 < 0 || group_of[size_t(mm2)] >= 0 || !is_op(g.nodes[size_t(mm2)], "MatMul") ||
        g.nodes[size_t(mm2)].inputs[0] != sm.outputs[0])
      continue;
    const ir::Node& m2 = g.nodes[size_t(mm2)];
    int out = m2.outputs[0];
    nodes.push_back(mm2);
    bool ok = true;
    for (int v : {m1.inputs[0], m1.inputs[1], m2.inputs[1], out}) {
      const ir::Value& val = g.values[size_t(v)];
      ok &=
          v >= 0 && val.dtype == DType::kF32 && val.shape.is_concrete() && val.shape.rank() == rank;
    }
    if (!ok) continue;
    spec.out_strides = contiguous(g.values[size_t(out)].shape.concrete());
    if (int t = ctx.sole_reader(out);
        t >= 0 && group_of[size_t(t)] < 0 && rank == 4 && is_op(g.nodes[size_t(t)], "Transpose") &&
        kernels::NodeAttrs(g.nodes[size_t(t)]).attr_ints("perm", {}) ==
            std::vector<int64_t>{0, 2, 1, 3}) {
      // Written straight into the transposed layout.
      std::vector<int64_t> ts =
          contiguous(g.values[size_t(g.nodes[size_t(t)].outputs[0])].shape.concrete());
      spec.out_strides = {ts[0], ts[2], ts[1], ts[3]};
      nodes.push_back(t);
    }
    // Q, Kᵀ and V through strides where the nodes making them only re-index.
    Resolver res{g, live, {}};
    spec.q = res.resolve(m1.inputs[0]);
    spec.kt = res.resolve(m1.inputs[1]);
    spec.v = res.resolve(m2.inputs[1]);
    std::set<int> members(nodes.begin(), nodes.end());
    members.insert(res.absorbed.begin(), res.absorbed.end());
    bool absorb = true;
    for (int a : res.absorbed) {
      absorb &= group_of[size_t(a)] < 0;
      for (int o : g.nodes[size_t(a)].outputs)
        for (int r : ctx.readers(o)) absorb &= members.count(r) != 0 && !ctx.is_graph_output(o);
    }
    if (!absorb) {
      std::vector<char> none(g.nodes.size(), 0);
      Resolver direct{g, none, {}};
      spec.q = direct.resolve(m1.inputs[0]);
      spec.kt = direct.resolve(m1.inputs[1]);
      spec.v = direct.resolve(m2.inputs[1]);
      members = std::set<int>(nodes.begin(), nodes.end());
    }
    if (!to_rank4(spec.q) || !to_rank4(spec.kt) || !to_rank4(spec.v)) continue;
    while (spec.out_strides.size() < 4) spec.out_strides.insert(spec.out_strides.begin(), 0);
    if (spec.mask_kind != kernels::AttentionSpec::kNone) {
      Dims md = g.values[size_t(spec.mask)].shape.concrete();
      std::vector<int64_t> ms = contiguous(md);
      Dims scores = sv.shape.concrete();
      while (scores.size() < 4) scores.insert(scores.begin(), 1);
      if (md.size() > 4) continue;
      spec.mask_strides.assign(4, 0);
      for (size_t k = 0; k < md.size(); ++k) {
        size_t d = 4 - md.size() + k;
        if (md[k] == scores[d])
          spec.mask_strides[d] = scores[d] == 1 ? 0 : ms[k];
        else if (md[k] != 1)
          ok = false;
      }
      if (!ok) continue;
    }
    if (!kernels::make_native_attention(spec)) continue;
    int gi = int(groups.size());
    groups.push_back({});
    groups.back().kind = FusionGroup::Kind::kAttention;
    groups.back().attention = spec;
    std::vector<int> ordered(members.begin(), members.end());  // node ids are run order
    for (int n : ordered) {
      group_of[size_t(n)] = gi;
      groups.back().nodes.push_back(n);
    }
  }
}

}  // namespace kiln::engine
