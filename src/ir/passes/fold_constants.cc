// Constant folding with the reference kernels, forward in topological order so chains fold in one
// pass (a folded output is an initializer by the time its readers are visited).
#include "ir/passes/fold_constants.h"

#include "ir/passes/graph_edit.h"
#include "kernels/registry.h"

namespace kiln::ir::passes {
namespace {

constexpr int64_t kMaxFoldElements = int64_t(1) << 24;

// Evaluates node `n` on its constant inputs; false when it must stay a node.
bool evaluate(const Graph& g, const Node& n, std::vector<Tensor>& outs) {
  std::vector<kernels::InputInfo> infos(n.inputs.size());
  std::vector<const Tensor*> ins(n.inputs.size(), nullptr);
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    int id = n.inputs[k];
    if (id < 0) continue;
    const Tensor& t = g.values[size_t(id)].constant;
    ins[k] = &t;
    infos[k].present = true;
    infos[k].dtype = t.dtype();
    infos[k].shape = Shape::of(t.dims());
    infos[k].value = &t;
  }
  try {
    kernels::InferContext ictx(n, std::move(infos), true, [] { return Dim::unknown(); });
    n.schema->infer(ictx);
    outs.assign(n.outputs.size(), Tensor());
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const auto& o = ictx.outputs()[k];
      if (!o.set || !o.shape.is_concrete() || o.dtype == DType::kUndefined) return false;
      if (*o.shape.num_elements() > kMaxFoldElements) return false;
      outs[k] = Tensor(o.dtype, o.shape.concrete());
    }
    kernels::SubgraphRunner runner = [](const Graph&, const std::vector<Tensor>&) {
      return std::vector<Tensor>();
    };
    kernels::KernelContext kctx(n, std::move(ins), &outs, std::move(runner));
    n.schema->kernel(kctx);
  } catch (const Error&) {
    return false;  // left for the run to report, where it matters
  }
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    const Value& v = g.values[size_t(n.outputs[k])];
    const Tensor& t = outs[k];
    if (!t.defined() || (v.dtype != DType::kUndefined && v.dtype != t.dtype())) return false;
    if (v.shape.has_rank) {
      if (v.shape.rank() != t.rank()) return false;
      for (int d = 0; d < t.rank(); ++d)
        if (v.shape.dims[size_t(d)].known_different(Dim::constant(t.dims()[size_t(d)])))
          return false;
    }
  }
  return true;
}

}  // namespace

bool fold_constants(Graph& g, int* rewrites) {
  std::vector<char> dead(g.nodes.size(), 0);
  int folded = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    if (!is_pure(n) || n.outputs.empty() || !n.implicit_inputs.empty()) continue;
    bool all_const = true;
    for (int id : n.inputs) all_const &= id < 0 || is_constant(g, id);
    for (int id : n.outputs)
      all_const &= id >= 0 && g.values[size_t(id)].kind == ValueKind::kTensor &&
                   !g.values[size_t(id)].name.empty();
    if (!all_const) continue;
    std::vector<Tensor> outs;
    if (!evaluate(g, n, outs)) continue;
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      Value& v = g.values[size_t(n.outputs[k])];
      v.constant = outs[k];
      v.dtype = outs[k].dtype();
      v.shape = Shape::of(outs[k].dims());
      v.producer = -1;
    }
    dead[ni] = 1;
    folded++;
  }
  return finish_pass(g, dead, folded, rewrites);
}

}  // namespace kiln::ir::passes
