// The reference executor: runs a graph node by node with the registry's reference kernels.
//
// Each run works on its own value table, so one Executor may run on many threads at once. For
// every node it infers concrete output shapes from the actual inputs (the same shape functions as
// at load time), allocates the outputs (or uses caller-provided output tensors), runs the kernel,
// checks the kernel honoured the inferred types and shapes, and releases values after their last
// use. Subgraphs (If/Loop/Scan bodies) get executors of their own, built once.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::engine {

class Executor {
 public:
  explicit Executor(const ir::Graph& graph);
  ~Executor();

  /// `inputs` is aligned with graph.inputs (an undefined tensor takes the initializer default);
  /// `captures` with graph.captures; `preset_outputs`, when given, is aligned with graph.outputs
  /// and holds caller tensors to write into (undefined: allocate). Returns the graph outputs.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, const std::vector<Tensor>& captures,
                          const std::vector<Tensor>* preset_outputs = nullptr) const;

  const ir::Graph& graph() const { return graph_; }

 private:
  const Executor& sub_executor(const ir::Graph& g) const;

  const ir::Graph& graph_;
  std::vector<std::vector<int>> release_after_;  // per node: values whose last use it is
  std::map<const ir::Graph*, std::unique_ptr<Executor>> subgraphs_;
};

}  // namespace kiln::engine
