// Fusion group formation (see fuse.h).
#include "engine/fuse.h"

#include "engine/fuse_internal.h"

#include <algorithm>

namespace kiln::engine {

namespace {

bool is_op(const ir::Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

bool same_concrete_shape(const ir::Graph& g, int a, int b) {
  const ir::Value& x = g.values[size_t(a)];
  const ir::Value& y = g.values[size_t(b)];
  return x.dtype == y.dtype && x.shape.is_concrete() && y.shape.is_concrete() &&
         x.shape.concrete() == y.shape.concrete();
}

// A constant of N elements laid out along the last dim only ([N], [1,N], ...).
bool is_row_bias(const ir::Graph& g, int v, int64_t n) {
  const ir::Value& b = g.values[size_t(v)];
  if (!b.constant.defined() || b.dtype != DType::kF32) return false;
  const Dims& d = b.constant.dims();
  if (d.empty() || d.back() != n) return false;
  for (size_t i = 0; i + 1 < d.size(); ++i)
    if (d[i] != 1) return false;
  return true;
}

// When value v is read by exactly a Sigmoid(v) and a Mul of v by that Sigmoid's output (and
// neither v nor the sigmoid is a graph output): those two nodes; else {-1, -1}.
std::pair<int, int> silu_of(const ir::Graph& g, const GroupContext& ctx, int v) {
  const std::vector<int>& rs = ctx.readers(v);
  if (ctx.is_graph_output(v) || rs.size() != 2) return {-1, -1};
  for (int k = 0; k < 2; ++k) {
    const ir::Node& s = g.nodes[size_t(rs[size_t(k)])];
    const ir::Node& m = g.nodes[size_t(rs[size_t(1 - k)])];
    if (!is_op(s, "Sigmoid") || s.outputs.size() != 1 || !is_op(m, "Mul") || m.inputs.size() != 2 ||
        m.outputs.size() != 1 || ctx.sole_reader(s.outputs[0]) != rs[size_t(1 - k)] ||
        !same_concrete_shape(g, m.outputs[0], v))
      continue;
    if ((m.inputs[0] == v && m.inputs[1] == s.outputs[0]) ||
        (m.inputs[1] == v && m.inputs[0] == s.outputs[0]))
      return {rs[size_t(k)], rs[size_t(1 - k)]};
  }
  return {-1, -1};
}

}  // namespace

GroupContext::GroupContext(const ir::Graph& g, const std::vector<char>& live)
    : readers_(g.values.size()), graph_out_(g.values.size(), 0) {
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    if (!live[ni]) continue;
    for (int id : g.nodes[ni].inputs)
      if (id >= 0 && (readers_[size_t(id)].empty() || readers_[size_t(id)].back() != int(ni)))
        readers_[size_t(id)].push_back(int(ni));
  }
  for (int id : g.outputs) graph_out_[size_t(id)] = 1;
}

std::vector<FusionGroup> form_groups(const ir::Graph& g, const std::vector<char>& live,
                                     int opt_level, const FusionHooks& hooks) {
  const size_t nn = g.nodes.size();
  GroupContext ctx(g, live);
  auto sole_reader = [&](int v) { return ctx.sole_reader(v); };

  std::vector<FusionGroup> groups;
  std::vector<int> group_of(nn, -1);
  if (opt_level >= 3 && hooks.epilogue_anchor)
    form_attention_groups(g, live, ctx, groups, group_of);
  auto claim = [&](int node, int group) {
    group_of[size_t(node)] = group;
    groups[size_t(group)].nodes.push_back(node);
  };

  // Native kernels with their epilogues.
  if (opt_level >= 3 && hooks.epilogue_anchor) {
    for (size_t ni = 0; ni < nn; ++ni) {
      if (!live[ni] || group_of[ni] >= 0 || !hooks.epilogue_anchor(int(ni))) continue;
      const ir::Node& anchor = g.nodes[ni];
      int gi = int(groups.size());
      groups.push_back({});
      groups.back().kind = FusionGroup::Kind::kEpilogue;
      claim(int(ni), gi);
      const bool matmul = !is_op(anchor, "Conv");
      int cur = anchor.outputs[0];
      for (;;) {
        FusionGroup& grp = groups[size_t(gi)];
        if (grp.activation < 0) {  // cur * Sigmoid(cur): SiLU, from its two readers
          auto [sigmoid, mul] = silu_of(g, ctx, cur);
          if (mul >= 0 && group_of[size_t(sigmoid)] < 0 && group_of[size_t(mul)] < 0 &&
              hooks.epilogue_activation && hooks.epilogue_activation(mul)) {
            claim(sigmoid, gi);
            claim(mul, gi);
            groups[size_t(gi)].activation = mul;
            break;
          }
        }
        int r = sole_reader(cur);
        if (r < 0 || group_of[size_t(r)] >= 0) break;
        const ir::Node& n = g.nodes[size_t(r)];
        if (is_op(n, "Add") && n.inputs.size() == 2 && n.outputs.size() == 1 &&
            grp.activation < 0) {
          int other = n.inputs[0] == cur ? n.inputs[1] : n.inputs[0];
          if (other < 0 || other == cur) break;
          const ir::Value& cv = g.values[size_t(cur)];
          if (matmul && grp.bias_add < 0 && grp.residual_add < 0 && cv.shape.is_concrete() &&
              !cv.shape.concrete().empty() && is_row_bias(g, other, cv.shape.concrete().back()) &&
              same_concrete_shape(g, n.outputs[0], cur)) {
            grp.bias_add = r;
          } else if (grp.residual_add < 0 && same_concrete_shape(g, other, cur) &&
                     same_concrete_shape(g, n.outputs[0], cur)) {
            grp.residual_add = r;
            grp.residual = other;
          } else {
            break;
          }
          claim(r, gi);
          cur = n.outputs[0];
          continue;
        }
        if (grp.activation < 0 && hooks.epilogue_activation && hooks.epilogue_activation(r) &&
            same_concrete_shape(g, n.outputs[0], cur)) {
          grp.activation = r;
          claim(r, gi);
        }
        break;
      }
    }
  }

  // Elementwise chains.
  if (opt_level >= 2 && hooks.elementwise) {
    for (size_t ni = 0; ni < nn; ++ni) {
      if (!live[ni] || group_of[ni] >= 0) continue;
      const ir::Node& n = g.nodes[ni];
      if (n.outputs.size() != 1 || !hooks.elementwise(int(ni))) continue;
      int join = -1;
      for (int id : n.inputs) {
        if (id < 0) continue;
        int p = g.values[size_t(id)].producer;
        if (p < 0 || group_of[size_t(p)] < 0) continue;
        FusionGroup& cand = groups[size_t(group_of[size_t(p)])];
        if (cand.kind != FusionGroup::Kind::kChain || cand.nodes.back() != p) continue;
        if (sole_reader(id) != int(ni)) continue;
        const ir::Shape& is = g.values[size_t(id)].shape;  // types may change along a chain
        const ir::Shape& os = g.values[size_t(n.outputs[0])].shape;
        if (!is.is_concrete() || !os.is_concrete() || is.concrete() != os.concrete()) continue;
        join = group_of[size_t(p)];
        break;
      }
      if (join < 0) {
        join = int(groups.size());
        groups.push_back({});
        groups.back().kind = FusionGroup::Kind::kChain;
      }
      claim(int(ni), join);
    }
  }

  for (size_t ni = 0; ni < nn; ++ni) {
    if (!live[ni] || group_of[ni] >= 0) continue;
    groups.push_back({});
    claim(int(ni), int(groups.size()) - 1);
  }
  for (FusionGroup& grp : groups)
    if (grp.kind == FusionGroup::Kind::kChain && grp.nodes.size() == 1)
      grp.kind = FusionGroup::Kind::kSingle;

  // Producer chains fused into their consumer's loads.
  if (opt_level >= 2 && hooks.elementwise && hooks.load_reads) {
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      if (groups[gi].kind != FusionGroup::Kind::kSingle) continue;
      const int c = groups[gi].nodes[0];
      const int reads = hooks.load_reads(c);
      if (reads <= 0) continue;
      const ir::Node& cn = g.nodes[size_t(c)];
      for (size_t slot = 0; slot < cn.inputs.size(); ++slot) {
        const int id = cn.inputs[slot];
        if (id < 0 || std::count(cn.inputs.begin(), cn.inputs.end(), id) != 1 ||
            sole_reader(id) != c)
          continue;
        const int p = g.values[size_t(id)].producer;
        if (p < 0 || group_of[size_t(p)] < 0) continue;
        FusionGroup& pg = groups[size_t(group_of[size_t(p)])];
        const bool elementwise = pg.kind == FusionGroup::Kind::kChain ||
                                 (pg.kind == FusionGroup::Kind::kSingle && hooks.elementwise(p));
        if (!elementwise || pg.nodes.back() != p || (reads > 1 && pg.nodes.size() > 2)) continue;
        FusionGroup& cg = groups[gi];
        std::vector<int> nodes = std::move(pg.nodes);
        pg.nodes.clear();
        for (int n : nodes) group_of[size_t(n)] = int(gi);
        nodes.push_back(c);
        cg.nodes = std::move(nodes);
        cg.kind = FusionGroup::Kind::kProducer;
        cg.producer_slot = int(slot);
        break;
      }
    }
    groups.erase(std::remove_if(groups.begin(), groups.end(),
                                [](const FusionGroup& grp) { return grp.nodes.empty(); }),
                 groups.end());
  }
  std::stable_sort(groups.begin(), groups.end(), [](const FusionGroup& a, const FusionGroup& b) {
    return a.nodes.back() < b.nodes.back();
  });
  return groups;
}

}  // namespace kiln::engine
