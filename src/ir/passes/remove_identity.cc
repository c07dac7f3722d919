// Removal of nodes that copy their input (see the header for the list and the proofs used).
#include "ir/passes/remove_identity.h"

#include "ir/passes/graph_edit.h"
#include "kernels/registry.h"

namespace kiln::ir::passes {
namespace {

bool same_shape(const Shape& a, const Shape& b) {
  if (!a.has_rank || !b.has_rank || a.rank() != b.rank()) return false;
  for (int d = 0; d < a.rank(); ++d)
    if (!a.dims[size_t(d)].known_equal(b.dims[size_t(d)])) return false;
  return true;
}

bool all_equal(const std::optional<std::vector<int64_t>>& v, int64_t x) {
  if (!v) return false;
  for (int64_t e : *v)
    if (e != x) return false;
  return true;
}

bool unused(const Graph& g, const std::vector<std::vector<int>>& uses, int id) {
  return id < 0 || use_count(g, uses, id) == 0;
}

// Whether node `n` returns its first input unchanged.
bool is_copy(const Graph& g, const Node& n, const std::vector<std::vector<int>>& uses) {
  if (!n.domain.empty() || n.inputs.empty() || n.inputs[0] < 0 || n.outputs.empty()) return false;
  const Value& in = g.values[size_t(n.inputs[0])];
  const Value& out = g.values[size_t(n.outputs[0])];
  if (in.kind != ValueKind::kTensor || out.kind != ValueKind::kTensor) return false;
  if (in.dtype == DType::kUndefined || in.dtype != out.dtype) return false;
  kernels::NodeAttrs attrs(n);
  const std::string& op = n.op_type;
  if (op == "Identity") return n.outputs.size() == 1;
  if (op == "Dropout") {
    for (size_t k = 1; k < n.outputs.size(); ++k)
      if (!unused(g, uses, n.outputs[k])) return false;
    if (n.opset < 7 && attrs.attr_int("is_test", 0) == 0) return false;
    if (n.inputs.size() < 3 || n.inputs[2] < 0) return true;
    auto training = constant_ints(g, n.inputs[2]);
    if (!training) {  // bool constants
      if (!is_constant(g, n.inputs[2])) return false;
      const Tensor& t = g.values[size_t(n.inputs[2])].constant;
      return t.numel() == 1 && t.element_as_int(0) == 0;
    }
    return all_equal(training, 0) && training->size() == 1;
  }
  if (n.outputs.size() != 1) return false;
  if (op == "Cast") return attrs.has_attr("to") && in.dtype == out.dtype;
  if (op == "Reshape" || op == "Expand") return same_shape(in.shape, out.shape);
  if (op == "Transpose") {
    if (!in.shape.has_rank) return false;
    std::vector<int64_t> perm = attrs.attr_ints("perm");
    if (perm.empty()) return in.shape.rank() <= 1;
    for (size_t i = 0; i < perm.size(); ++i)
      if (perm[i] != int64_t(i)) return false;
    return true;
  }
  if (op == "Slice") {
    if (!same_shape(in.shape, out.shape)) return false;
    if (n.opset < 10) return true;  // no steps before opset 10
    return n.inputs.size() < 5 || n.inputs[4] < 0 || all_equal(constant_ints(g, n.inputs[4]), 1);
  }
  if (op == "Pad") {
    if (!same_shape(in.shape, out.shape)) return false;
    if (n.opset < 11) return all_equal(attrs.attr_ints("pads"), 0);
    return n.inputs.size() >= 2 && all_equal(constant_ints(g, n.inputs[1]), 0);
  }
  return false;
}

}  // namespace

bool remove_identity(Graph& g, int* rewrites) {
  auto uses = consumers(g);
  std::vector<char> dead(g.nodes.size(), 0);
  int removed = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    if (!is_copy(g, n, uses)) continue;
    int in = n.inputs[0], out = n.outputs[0];
    if (!is_graph_output(g, out)) {
      replace_uses(g, out, in);
    } else {
      // Keep the output's name: the input's producer writes `out` itself.
      const Value& iv = g.values[size_t(in)];
      if (iv.producer < 0 || dead[size_t(iv.producer)] || is_graph_output(g, in) ||
          iv.is_graph_input)
        continue;
      Node& p = g.nodes[size_t(iv.producer)];
      for (int& o : p.outputs)
        if (o == in) o = out;
      g.values[size_t(out)].producer = iv.producer;
      replace_uses(g, in, out, int(ni));
      g.values[size_t(in)].producer = -1;
    }
    uses = consumers(g);
    dead[ni] = 1;
    removed++;
  }
  return finish_pass(g, dead, removed, rewrites);
}

}  // namespace kiln::ir::passes
