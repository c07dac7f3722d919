// Reshape-chain collapsing and Transpose composition.
#include "ir/passes/collapse_reshape_chains.h"

#include "ir/passes/graph_edit.h"
#include "kernels/registry.h"

namespace kiln::ir::passes {
namespace {

bool is_view(const Node& n) {
  return n.domain.empty() && n.outputs.size() == 1 && !n.inputs.empty() && n.inputs[0] >= 0 &&
         (n.op_type == "Reshape" || n.op_type == "Flatten" || n.op_type == "Squeeze" ||
          n.op_type == "Unsqueeze");
}

std::vector<int64_t> perm_of(const Graph& g, const Node& n) {
  std::vector<int64_t> p = kernels::NodeAttrs(n).attr_ints("perm");
  if (p.empty()) {
    int r = g.values[size_t(n.inputs[0])].shape.rank();
    for (int i = r - 1; i >= 0; --i) p.push_back(i);
  }
  return p;
}

}  // namespace

int collapse_view_chains(Graph& g, std::vector<char>& dead) {
  dead.assign(g.nodes.size(), 0);
  if (g.opset("") < 5) return 0;  // Reshape takes its shape as an input from opset 5
  auto uses = consumers(g);
  int changed = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    Node& n = g.nodes[ni];
    if (is_view(n)) {
      int src = n.inputs[0];
      int pi = g.values[size_t(src)].producer;
      if (pi < 0 || !is_view(g.nodes[size_t(pi)]) || sole_reader(g, uses, src) != int(ni)) continue;
      const Shape& out = g.values[size_t(n.outputs[0])].shape;
      if (!out.is_concrete()) continue;
      std::vector<int64_t> dims = out.concrete();
      bool zero = false;
      for (int64_t d : dims) zero |= d == 0;
      if (zero && g.opset("") < 14) continue;
      Tensor shape(DType::kI64, {int64_t(dims.size())});
      for (size_t i = 0; i < dims.size(); ++i) shape.data<int64_t>()[i] = dims[i];
      int sid = add_constant(g, n.name + ".shape", shape);
      Node& r = g.nodes[ni];
      r.op_type = "Reshape";
      r.inputs = {g.nodes[size_t(pi)].inputs[0], sid};
      r.attrs.clear();
      if (zero) set_int_attr(r, "allowzero", 1);
      set_schema(r, int(g.opset("")));
      dead[size_t(pi)] = 1;
      changed++;
      uses = consumers(g);
      continue;
    }
    if (!n.domain.empty() || n.op_type != "Transpose" || n.inputs.empty() || n.inputs[0] < 0)
      continue;
    int src = n.inputs[0];
    const Node* inner = producer_of(g, src, "Transpose");
    if (!inner || sole_reader(g, uses, src) != int(ni)) continue;
    if (!g.values[size_t(inner->inputs[0])].shape.has_rank) continue;
    std::vector<int64_t> p1 = perm_of(g, *inner), p2 = perm_of(g, n), p(p2.size());
    if (p1.size() != p2.size()) continue;
    bool identity = true;
    for (size_t i = 0; i < p2.size(); ++i) {
      p[i] = p1[size_t(p2[i])];
      identity &= p[i] == int64_t(i);
    }
    int x = inner->inputs[0];
    int pi = g.values[size_t(src)].producer;
    if (identity && !is_graph_output(g, n.outputs[0])) {
      replace_uses(g, n.outputs[0], x);
      dead[ni] = 1;
    } else {
      set_ints_attr(n, "perm", p);
      n.inputs[0] = x;
    }
    dead[size_t(pi)] = 1;
    changed++;
    uses = consumers(g);
  }
  return changed;
}

bool collapse_reshape_chains(Graph& g, int* rewrites) {
  std::vector<char> dead;
  int changed = collapse_view_chains(g, dead);
  return finish_pass(g, dead, changed, rewrites);
}

}  // namespace kiln::ir::passes
