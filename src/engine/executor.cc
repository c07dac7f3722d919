// Reference executor.
#include "engine/executor.h"

#include "kernels/registry.h"

namespace kiln::engine {

namespace {
void collect_subgraphs(const ir::Graph& g, std::vector<const ir::Graph*>& out) {
  for (const auto& n : g.nodes)
    for (const auto& [name, a] : n.attrs) {
      if (a.g) out.push_back(a.g.get());
      for (const auto& sg : a.graphs) out.push_back(sg.get());
    }
}
}  // namespace

Executor::Executor(const ir::Graph& graph) : graph_(graph) {
  std::vector<int> last_use(graph.values.size(), -1);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (int v : graph.nodes[i].inputs)
      if (v >= 0) last_use[size_t(v)] = int(i);
    for (int v : graph.nodes[i].implicit_inputs) last_use[size_t(v)] = int(i);
  }
  for (int v : graph.outputs) last_use[size_t(v)] = int(graph.nodes.size());  // never released
  release_after_.resize(graph.nodes.size());
  for (size_t v = 0; v < last_use.size(); ++v)
    if (last_use[v] >= 0 && last_use[v] < int(graph.nodes.size()))
      release_after_[size_t(last_use[v])].push_back(int(v));
  std::vector<const ir::Graph*> subs;
  collect_subgraphs(graph, subs);
  for (const ir::Graph* sg : subs) subgraphs_[sg] = std::make_unique<Executor>(*sg);
}

Executor::~Executor() = default;

const Executor& Executor::sub_executor(const ir::Graph& g) const {
  auto it = subgraphs_.find(&g);
  if (it == subgraphs_.end())
    throw Error(ErrorCode::kInternal, "subgraph '" + g.name + "' has no executor");
  return *it->second;
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs,
                                  const std::vector<Tensor>& captures,
                                  const std::vector<Tensor>* preset_outputs) const {
  const ir::Graph& g = graph_;
  std::vector<Tensor> env(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].constant.defined() && g.values[v].producer < 0) env[v] = g.values[v].constant;
  if (inputs.size() > g.inputs.size())
    throw Error(ErrorCode::kInvalidArgument, "graph '" + g.name + "' takes " +
                                                 std::to_string(g.inputs.size()) + " inputs, got " +
                                                 std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined()) env[size_t(g.inputs[i])] = inputs[i];
  if (captures.size() != g.captures.size())
    throw Error(ErrorCode::kInternal, "subgraph '" + g.name + "' capture count mismatch");
  for (size_t i = 0; i < captures.size(); ++i) env[size_t(g.captures[i].first)] = captures[i];
  for (size_t i = 0; i < g.inputs.size(); ++i)
    if (!env[size_t(g.inputs[i])].defined())
      throw Error(ErrorCode::kInvalidArgument,
                  "input '" + g.values[size_t(g.inputs[i])].name + "' is missing");

  // Graph output slots that the caller provided, by value id.
  std::map<int, const Tensor*> preset;
  if (preset_outputs)
    for (size_t i = 0; i < g.outputs.size() && i < preset_outputs->size(); ++i)
      if ((*preset_outputs)[i].defined()) preset[g.outputs[i]] = &(*preset_outputs)[i];

  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const ir::Node& n = g.nodes[ni];
    std::vector<kernels::InputInfo> infos(n.inputs.size());
    std::vector<const Tensor*> ins(n.inputs.size(), nullptr);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      int id = n.inputs[k];
      if (id < 0) continue;
      const Tensor& t = env[size_t(id)];
      if (!t.defined())
        throw Error(ErrorCode::kInternal, "node '" + n.name + "': input '" +
                                              g.values[size_t(id)].name + "' has no value");
      ins[k] = &t;
      infos[k].present = true;
      infos[k].dtype = t.dtype();
      infos[k].shape = ir::Shape::of(t.dims());
      infos[k].value = &t;
    }
    kernels::InferContext ictx(n, std::move(infos), true, [] { return ir::Dim::unknown(); });
    n.schema->infer(ictx);

    std::vector<Tensor> outs(n.outputs.size());
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const auto& o = ictx.outputs()[k];
      if (!o.set || !o.shape.is_concrete() || o.dtype == DType::kUndefined) continue;
      Dims dims = o.shape.concrete();
      auto p = preset.find(n.outputs[k]);
      if (p != preset.end() && p->second->dtype() == o.dtype && p->second->dims() == dims)
        outs[k] = *p->second;
      else
        outs[k] = Tensor(o.dtype, dims);
    }
    kernels::SubgraphRunner runner = [&](const ir::Graph& sg,
                                         const std::vector<Tensor>& sg_inputs) {
      std::vector<Tensor> caps;
      caps.reserve(sg.captures.size());
      for (auto [local, outer] : sg.captures) caps.push_back(env[size_t(outer)]);
      return sub_executor(sg).run(sg_inputs, caps);
    };
    kernels::KernelContext kctx(n, std::move(ins), &outs, std::move(runner));
    n.schema->kernel(kctx);

    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const auto& o = ictx.outputs()[k];
      Tensor& t = outs[k];
      const std::string& vname = g.values[size_t(n.outputs[k])].name;
      if (!t.defined()) {
        if (vname.empty()) continue;  // an omitted optional output
        throw Error(ErrorCode::kInternal,
                    kctx.where() + ": kernel did not produce output '" + vname + "'");
      }
      if (o.set && o.dtype != DType::kUndefined && t.dtype() != o.dtype)
        throw Error(ErrorCode::kInternal, kctx.where() + ": kernel produced " +
                                              dtype_name(t.dtype()) + " for output '" + vname +
                                              "', shape function said " + dtype_name(o.dtype));
      if (o.set && o.shape.is_concrete() && t.dims() != o.shape.concrete())
        throw Error(ErrorCode::kInternal, kctx.where() + ": kernel produced " +
                                              dims_to_string(t.dims()) + " for output '" + vname +
                                              "', shape function said " + o.shape.to_string());
      env[size_t(n.outputs[k])] = std::move(t);
    }
    for (int v : release_after_[ni]) env[size_t(v)] = Tensor();
  }

  std::vector<Tensor> result;
  result.reserve(g.outputs.size());
  for (int id : g.outputs) {
    if (!env[size_t(id)].defined())
      throw Error(ErrorCode::kInternal,
                  "graph output '" + g.values[size_t(id)].name + "' was not computed");
    result.push_back(env[size_t(id)]);
  }
  return result;
}

}  // namespace kiln::engine
