// Lowering a specialized graph's nodes and fused groups to kernel IR (plan_lower.h).
#include "engine/plan_lower.h"

#include <set>

#include "kernels/registry.h"

namespace kiln::engine {

namespace {

// A node's inputs and outputs as kernel arguments (dims through `ab`), or nullopt when some
// tensor has a type or shape the JIT does not handle.
struct NodeArgs {
  std::vector<std::optional<kernels::TensorArg>> ins;
  std::vector<kernels::TensorArg> outs;
  std::vector<const Tensor*> consts;
};
std::optional<NodeArgs> node_args(const ir::Graph& g, const ir::Node& n, ArgBuilder& ab) {
  NodeArgs a;
  for (int id : n.inputs) {
    if (id < 0) {
      a.ins.emplace_back();
      a.consts.push_back(nullptr);
      continue;
    }
    const ir::Value& v = g.values[size_t(id)];
    auto t = jit::scalar_type_of(v.dtype);
    if (!t || !v.shape.is_concrete()) return std::nullopt;
    a.ins.emplace_back(ab.arg(id, *t, v.shape.concrete()));
    a.consts.push_back(v.constant.defined() ? &v.constant : nullptr);
  }
  for (int id : n.outputs) {
    const ir::Value& v = g.values[size_t(id)];
    auto t = jit::scalar_type_of(v.dtype);
    if (!t || !v.shape.is_concrete()) return std::nullopt;
    a.outs.push_back(ab.arg(id, *t, v.shape.concrete()));
  }
  return a;
}

std::unique_ptr<kernels::LowerContext> node_context(const ir::Graph& g, const ir::Node& n,
                                                    ArgBuilder& ab, const PlanOptions& options) {
  std::optional<NodeArgs> a = node_args(g, n, ab);
  if (!a) return nullptr;
  return std::make_unique<kernels::LowerContext>(n, std::move(a->ins), std::move(a->outs),
                                                 std::move(a->consts), options.schedule);
}

void check_params(const ir::Node& n, const jit::Kernel& k, const std::vector<int64_t>& params) {
  if (k.num_params > int(params.size()))
    throw Error(ErrorCode::kInternal, "lowering of node '" + n.name + "' uses " +
                                          std::to_string(k.num_params) + " params, " +
                                          std::to_string(params.size()) + " bound");
}

}  // namespace

// The lowered kernel for node `n` of the specialized graph, or nullopt.
std::optional<jit::Kernel> lower_node(const ir::Graph& g, const ir::Graph& symbolic,
                                      const ir::Node& n, const PlanOptions& options,
                                      std::vector<int64_t>* params) {
  const kernels::LowerFn* fn = kernels::Lowerings::global().find(n.domain, n.op_type);
  if (!fn) return std::nullopt;
  ArgBuilder ab(symbolic, options.policy);
  auto ctx = node_context(g, n, ab, options);
  if (!ctx) return std::nullopt;
  std::optional<jit::Kernel> k = (*fn)(*ctx);
  if (k) {
    *params = ab.param_values();
    check_params(n, *k, *params);
  }
  return k;
}

std::unique_ptr<ChainContexts> chain_contexts(const ir::Graph& g, const std::vector<int>& nodes,
                                              ArgBuilder& ab, const PlanOptions& options) {
  auto cc = std::make_unique<ChainContexts>();
  std::set<int> inside;
  for (int ni : nodes) inside.insert(g.nodes[size_t(ni)].outputs[0]);
  std::map<int, int> ext;  // value id -> fused input slot
  for (int ni : nodes)
    for (int id : g.nodes[size_t(ni)].inputs)
      if (id >= 0 && !inside.count(id) && !ext.count(id)) {
        ext[id] = int(cc->inputs.size());
        cc->inputs.push_back(id);
      }
  const ir::Node& last = g.nodes[size_t(nodes.back())];
  cc->fused_node.name = last.name;
  cc->fused_node.op_type = "FusedElementwise";
  cc->fused_node.inputs = cc->inputs;
  cc->fused_node.outputs = {last.outputs[0]};
  cc->fused_node.opset = last.opset;
  cc->fused = node_context(g, cc->fused_node, ab, options);
  if (!cc->fused) return nullptr;
  std::map<int, int> member_of;  // output value -> member index
  for (int ni : nodes) {
    const ir::Node& n = g.nodes[size_t(ni)];
    cc->ctxs.push_back(node_context(g, n, ab, options));
    if (!cc->ctxs.back()) return nullptr;
    kernels::ChainMember m;
    m.ctx = cc->ctxs.back().get();
    for (int id : n.inputs) {
      if (id < 0)
        m.source.push_back(kernels::ChainMember::kOmitted);
      else if (member_of.count(id))
        m.source.push_back(-(member_of[id] + 1));
      else
        m.source.push_back(ext[id]);
    }
    member_of[n.outputs[0]] = int(cc->members.size());
    cc->members.push_back(std::move(m));
    cc->label += (cc->label.empty() ? "" : "+") + n.op_type;
  }
  return cc;
}

// One loop nest for an elementwise chain (see fuse.h).
std::optional<FusedKernel> lower_chain(const ir::Graph& g, const ir::Graph& symbolic,
                                       const std::vector<int>& nodes, const PlanOptions& options) {
  ArgBuilder ab(symbolic, options.policy);
  std::unique_ptr<ChainContexts> cc = chain_contexts(g, nodes, ab, options);
  if (!cc) return std::nullopt;
  std::optional<jit::Kernel> k =
      kernels::lower_elementwise_chain(*cc->fused, cc->members, cc->label);
  if (!k) return std::nullopt;
  FusedKernel fk{std::move(*k), ab.param_values(), cc->inputs};
  check_params(g.nodes[size_t(nodes.back())], fk.kernel, fk.params);
  return fk;
}

// A kProducer group (fuse.h): the consumer (the last node) lowered alone, then its loads of input
// `slot` replaced by the chain (the other nodes).
std::optional<FusedKernel> lower_with_producer(const ir::Graph& g, const ir::Graph& symbolic,
                                               const std::vector<int>& nodes, int slot,
                                               const PlanOptions& options) {
  const ir::Node& n = g.nodes[size_t(nodes.back())];
  const kernels::LowerFn* fn = kernels::Lowerings::global().find(n.domain, n.op_type);
  if (!fn) return std::nullopt;
  ArgBuilder ab(symbolic, options.policy);
  std::unique_ptr<ChainContexts> cc =
      chain_contexts(g, std::vector<int>(nodes.begin(), nodes.end() - 1), ab, options);
  if (!cc) return std::nullopt;
  auto ctx = node_context(g, n, ab, options);
  if (!ctx) return std::nullopt;
  std::optional<jit::Kernel> consumer = (*fn)(*ctx);
  if (!consumer) return std::nullopt;
  std::optional<jit::Kernel> k = kernels::inline_producer_chain(
      *consumer, slot, *cc->fused, cc->members, cc->label + "+" + consumer->label);
  if (!k) return std::nullopt;
  FusedKernel fk{std::move(*k), ab.param_values(), {}};
  fk.inputs.assign(n.inputs.begin(), n.inputs.begin() + slot);
  fk.inputs.insert(fk.inputs.end(), cc->inputs.begin(), cc->inputs.end());
  fk.inputs.insert(fk.inputs.end(), n.inputs.begin() + slot + 1, n.inputs.end());
  check_params(n, fk.kernel, fk.params);
  return fk;
}

// Whether node n lowers to an elementwise map (a chain member).
bool lowers_elementwise(const ir::Graph& g, const ir::Graph& symbolic, const ir::Node& n,
                        const PlanOptions& options) {
  if (n.outputs.size() != 1 || !kernels::Lowerings::global().find(n.domain, n.op_type))
    return false;
  ArgBuilder ab(symbolic, options.policy);
  auto ctx = node_context(g, n, ab, options);
  try {
    return ctx && kernels::is_elementwise_lowering(*ctx);
  } catch (const Error&) {
    return false;
  }
}

}  // namespace kiln::engine
