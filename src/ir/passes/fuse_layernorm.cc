// Layer normalization pattern matching, anchored at the first ReduceMean.
#include "ir/passes/fuse_layernorm.h"

#include <algorithm>
#include <set>

#include "ir/passes/graph_edit.h"
#include "kernels/registry.h"
#include "kiln/error.h"

namespace kiln::ir::passes {
namespace {

// The first axis of a ReduceMean over the trailing axes of a rank-`rank` input with keepdims, or
// -1 when it is something else.
int trailing_axis(const Graph& g, const Node& n, int rank) {
  if (!n.domain.empty() || n.op_type != "ReduceMean" || n.outputs.size() != 1) return -1;
  kernels::NodeAttrs attrs(n);
  if (attrs.attr_int("keepdims", 1) != 1) return -1;
  std::vector<int64_t> axes;
  if (n.opset >= 18) {
    if (n.inputs.size() < 2 || n.inputs[1] < 0) return -1;
    auto c = constant_ints(g, n.inputs[1]);
    if (!c) return -1;
    axes = *c;
  } else {
    axes = attrs.attr_ints("axes");
  }
  if (axes.empty()) return -1;
  std::set<int64_t> norm;
  for (int64_t a : axes) norm.insert(a < 0 ? a + rank : a);
  int first = int(*norm.begin());
  if (first < 0 || *norm.rbegin() != rank - 1 || int(norm.size()) != rank - first) return -1;
  return first;
}

// The unique reader nodes of `id` (a node reading it twice counts once); empty if a graph output.
std::vector<int> readers(const Graph& g, const std::vector<std::vector<int>>& uses, int id) {
  if (is_graph_output(g, id)) return {};
  std::vector<int> r = uses[size_t(id)];
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  return r;
}

// `id` as a constant f32 gamma/beta over the normalized dims `norm`, reshaped to drop leading
// ones; nullopt when it does not fit.
std::optional<Tensor> affine_param(const Graph& g, int id, const std::vector<Dim>& norm) {
  if (!is_constant(g, id)) return std::nullopt;
  Tensor t = g.values[size_t(id)].constant;
  if (t.dtype() != DType::kF32) return std::nullopt;
  Dims dims = t.dims();
  while (dims.size() > norm.size() && dims.front() == 1) dims.erase(dims.begin());
  if (dims.size() > norm.size()) return std::nullopt;
  for (size_t d = 0; d < dims.size(); ++d) {
    const Dim& xd = norm[norm.size() - dims.size() + d];
    if (dims[d] != 1 && !xd.known_equal(Dim::constant(dims[d]))) return std::nullopt;
  }
  return t.reshaped(dims);
}

}  // namespace

bool fuse_layernorm(Graph& g, int* rewrites) {
  if (!kernels::Registry::global().find("", "LayerNormalization", 17)) return false;
  auto uses = consumers(g);
  std::vector<char> dead(g.nodes.size(), 0);
  int fused = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& mean = g.nodes[ni];
    if (mean.op_type != "ReduceMean" || mean.inputs.empty() || mean.inputs[0] < 0) continue;
    int x = mean.inputs[0];
    const Value& xv = g.values[size_t(x)];
    if (xv.dtype != DType::kF32 || !xv.shape.has_rank || xv.shape.rank() < 1) continue;
    int rank = xv.shape.rank();
    int axis = trailing_axis(g, mean, rank);
    if (axis < 0) continue;
    std::vector<int> nodes = {int(ni)};
    auto next = [&](int id, const char* op) -> const Node* {
      int r = sole_reader(g, uses, id);
      if (r < 0 || g.nodes[size_t(r)].op_type != op || !g.nodes[size_t(r)].domain.empty())
        return nullptr;
      nodes.push_back(r);
      return &g.nodes[size_t(r)];
    };
    const Node* sub = next(mean.outputs[0], "Sub");
    if (!sub || sub->inputs[0] != x) continue;
    int d = sub->outputs[0];
    std::vector<int> dr = readers(g, uses, d);
    if (dr.size() != 2) continue;
    const Node* sq = nullptr;
    const Node* div = nullptr;
    for (int r : dr) {
      const Node& c = g.nodes[size_t(r)];
      if (c.op_type == "Div" && c.inputs[0] == d && c.inputs[1] != d) div = &c;
      if (c.op_type == "Mul" && c.inputs[0] == d && c.inputs[1] == d) sq = &c;
      if (c.op_type == "Pow" && c.inputs[0] == d && constant_near(g, c.inputs[1], 2.0)) sq = &c;
    }
    if (!sq || !div) continue;
    nodes.push_back(g.values[size_t(sq->outputs[0])].producer);
    int var_i = sole_reader(g, uses, sq->outputs[0]);
    if (var_i < 0 || trailing_axis(g, g.nodes[size_t(var_i)], rank) != axis) continue;
    nodes.push_back(var_i);
    const Node* add = next(g.nodes[size_t(var_i)].outputs[0], "Add");
    if (!add) continue;
    auto eps = constant_scalar(g, other_input(*add, "Add", g.nodes[size_t(var_i)].outputs[0]));
    if (!eps || *eps < 0) continue;
    const Node* root = next(add->outputs[0], "Sqrt");
    if (!root ||
        sole_reader(g, uses, root->outputs[0]) != g.values[size_t(div->outputs[0])].producer)
      continue;
    int last = g.values[size_t(div->outputs[0])].producer;
    std::vector<Dim> norm(xv.shape.dims.begin() + axis, xv.shape.dims.end());
    std::optional<Tensor> gamma, beta;
    int out = div->outputs[0];
    if (int r = sole_reader(g, uses, out); r >= 0) {
      int gid = other_input(g.nodes[size_t(r)], "Mul", out);
      if (gid >= 0 && (gamma = affine_param(g, gid, norm))) {
        nodes.push_back(last);
        last = r;
        out = g.nodes[size_t(r)].outputs[0];
        int r2 = sole_reader(g, uses, out);
        int bid = r2 >= 0 ? other_input(g.nodes[size_t(r2)], "Add", out) : -1;
        if (bid >= 0 && (beta = affine_param(g, bid, norm))) {
          nodes.push_back(last);
          last = r2;
          out = g.nodes[size_t(r2)].outputs[0];
        }
      }
    }
    if (!gamma) {
      bool concrete = true;
      Dims nd;
      for (const Dim& dd : norm) {
        concrete &= dd.is_const();
        nd.push_back(dd.value);
      }
      if (!concrete) continue;
      gamma = Tensor(DType::kF32, nd);
      std::fill_n(gamma->data<float>(), gamma->numel(), 1.0f);
    }
    bool clash = false;
    for (int k : nodes) clash |= dead[size_t(k)] != 0;
    if (clash || dead[size_t(last)]) continue;
    std::string base = g.nodes[size_t(last)].name;
    int gid = add_constant(g, base + ".ln_scale", *gamma);
    int bid = beta ? add_constant(g, base + ".ln_bias", *beta) : -1;
    Node& ln = g.nodes[size_t(last)];
    ln.op_type = "LayerNormalization";
    ln.inputs = {x, gid};
    if (bid >= 0) ln.inputs.push_back(bid);
    ln.attrs.clear();
    set_int_attr(ln, "axis", axis);
    set_float_attr(ln, "epsilon", float(*eps));
    if (!set_schema(ln, std::max<int>(17, int(g.opset("")))))
      throw Error(ErrorCode::kInternal, "LayerNormalization-17 vanished");
    for (int k : nodes) dead[size_t(k)] = 1;
    dead[size_t(last)] = 0;
    fused++;
    uses = consumers(g);
  }
  return finish_pass(g, dead, fused, rewrites);
}

}  // namespace kiln::ir::passes
