// Internal to the plan builder: lowering the nodes and fused groups of a specialized graph to
// kernel IR (kernels/lower), with the dims a specialization leaves dynamic as kernel params.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/plan.h"
#include "kernels/lower/lower.h"

namespace kiln::engine {

// Builds TensorArgs for a node, assigning kernel parameters to dynamic dims.
class ArgBuilder {
 public:
  ArgBuilder(const ir::Graph& symbolic, const DimPolicy& policy)
      : symbolic_(symbolic), policy_(policy) {}

  kernels::TensorArg arg(int value, jit::ScalarType type, const Dims& dims) {
    kernels::TensorArg a;
    a.type = type;
    a.concrete = dims;
    const ir::Value& sv = symbolic_.values[size_t(value)];
    for (size_t d = 0; d < dims.size(); ++d) {
      int64_t c = dims[d];
      ir::Dim sd = sv.shape.has_rank && sv.shape.rank() == int(dims.size()) ? sv.shape.dims[d]
                                                                            : ir::Dim::unknown();
      if (c <= 1 || !policy_.is_dynamic(sd)) {
        a.dims.push_back(jit::imm(c));
        continue;
      }
      std::string key =
          sd.is_symbol() ? sd.symbol : "v" + std::to_string(value) + ":" + std::to_string(d);
      key += "=" + std::to_string(c);
      auto it = params_.find(key);
      if (it == params_.end()) {
        it = params_.emplace(key, int(values_.size())).first;
        values_.push_back(c);
      }
      a.dims.push_back(jit::param(it->second));
      // Schedules are chosen from `concrete`; a parameter dim shows the same representative
      // value in every specialization, so the kernel's IR (and its cache key) does not depend
      // on this shape's value.
      a.concrete[d] = kernels::kRepresentativeDynamicDim;
    }
    a.strides = jit::contiguous_strides(a.dims);
    return a;
  }
  const std::vector<int64_t>& param_values() const { return values_; }

 private:
  const ir::Graph& symbolic_;
  const DimPolicy& policy_;
  std::map<std::string, int> params_;
  std::vector<int64_t> values_;
};

// The lowering contexts of an elementwise chain: one for the whole chain (its external inputs,
// then the last member's output) and one per member. Not movable: the contexts refer to
// fused_node.
struct ChainContexts {
  ir::Node fused_node;
  std::unique_ptr<kernels::LowerContext> fused;
  std::vector<std::unique_ptr<kernels::LowerContext>> ctxs;
  std::vector<kernels::ChainMember> members;
  std::vector<int> inputs;  // value ids of the external inputs, in fused buffer order
  std::string label;        // "Mul+Sigmoid"
};
std::unique_ptr<ChainContexts> chain_contexts(const ir::Graph& g, const std::vector<int>& nodes,
                                              ArgBuilder& ab, const PlanOptions& options);

// A fused kernel with its parameter values and its inputs (value ids, in buffer order).
struct FusedKernel {
  jit::Kernel kernel;
  std::vector<int64_t> params;
  std::vector<int> inputs;
};

/// The lowered kernel for node `n` of the specialized graph `g` (params in *params), or nullopt.
std::optional<jit::Kernel> lower_node(const ir::Graph& g, const ir::Graph& symbolic,
                                      const ir::Node& n, const PlanOptions& options,
                                      std::vector<int64_t>* params);
/// One loop nest for an elementwise chain (see fuse.h).
std::optional<FusedKernel> lower_chain(const ir::Graph& g, const ir::Graph& symbolic,
                                       const std::vector<int>& nodes, const PlanOptions& options);
/// A kProducer group (fuse.h): the consumer (the last node) lowered alone, then its loads of
/// input `slot` replaced by the chain (the other nodes).
std::optional<FusedKernel> lower_with_producer(const ir::Graph& g, const ir::Graph& symbolic,
                                               const std::vector<int>& nodes, int slot,
                                               const PlanOptions& options);
/// Whether node n lowers to an elementwise map (a chain member).
bool lowers_elementwise(const ir::Graph& g, const ir::Graph& symbolic, const ir::Node& n,
                        const PlanOptions& options);

}  // namespace kiln::engine
