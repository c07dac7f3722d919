// Helpers for op tests: run one node through shape inference and the reference executor, and
// compare tensors.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "ir/graph.h"
#include "ir/shape_inference.h"
#include "kernels/registry.h"
#include "kiln/session.h"
#include "kiln/tensor.h"

namespace kiln::testing {

/// Attribute builders.
inline ir::Attribute attr_int(int64_t v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kInt;
  a.i = v;
  return a;
}
inline ir::Attribute attr_float(float v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kFloat;
  a.f = v;
  return a;
}
inline ir::Attribute attr_string(std::string v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kString;
  a.s = std::move(v);
  return a;
}
inline ir::Attribute attr_ints(std::vector<int64_t> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}
inline ir::Attribute attr_floats(std::vector<float> v) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kFloats;
  a.floats = std::move(v);
  return a;
}
inline ir::Attribute attr_tensor(Tensor t) {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kTensor;
  a.t = std::move(t);
  return a;
}

struct OpCall {
  std::string op;
  std::vector<Tensor> inputs;  // an undefined tensor = omitted optional input
  std::map<std::string, ir::Attribute> attrs;
  int opset = 18;
  int num_outputs = 1;
  std::string domain;
  /// Inputs given as graph inputs (true) or as initializers (constants, false).
  bool inputs_as_graph_inputs = true;
  /// When not empty: the (symbolic) shapes the graph inputs are declared with, one per input, so
  /// load-time inference can be tested on symbols (make_op_graph); runs still use the tensors.
  std::vector<ir::Shape> input_shapes;
};

/// Builds a graph (or a subgraph for If/Loop/Scan) value by value and node by node.
struct GraphBuilder {
  std::shared_ptr<ir::Graph> g = std::make_shared<ir::Graph>();
  int opset;

  explicit GraphBuilder(const std::string& name = "test", int opset_version = 18);
  /// A graph input with concrete dims, or with dims that may be symbols.
  int input(const std::string& name, DType dtype, const std::vector<int64_t>& dims);
  int symbolic_input(const std::string& name, DType dtype, std::vector<ir::Dim> dims);
  /// An initializer.
  int constant(const std::string& name, Tensor t);
  /// A node of the default domain with one output; throws when the op is not registered.
  int node(const std::string& op, std::vector<int> inputs,
           std::map<std::string, ir::Attribute> attrs = {});
  void output(int id) { g->outputs.push_back(id); }
  /// Sets the outputs and runs load-time shape inference.
  void finish(std::vector<int> outputs);
  const ir::Shape& shape(int id) const { return g->values[size_t(id)].shape; }
  /// The graph as a graph attribute (a branch or body).
  ir::Attribute attr() const;
};

/// Builds a one-node graph for `call` (inputs typed with their concrete shapes).
std::unique_ptr<ir::Graph> make_op_graph(const OpCall& call);
/// Runs the op through shape inference (load-time) and the executor; returns its outputs.
std::vector<Tensor> run_op(const OpCall& call);

/// Load-time output shapes of a one-node graph whose inputs are declared with (dtype, symbolic
/// shape) and carry no data: what shape inference makes of symbols.
std::vector<ir::Shape> infer_symbolic_shapes(const std::string& op,
                                             const std::vector<std::pair<DType, ir::Shape>>& inputs,
                                             const std::map<std::string, ir::Attribute>& attrs = {},
                                             int opset = 18, int num_outputs = 1);

/// Float comparison |got-want| <= atol + rtol*|want| (NaN equals NaN); exact for the rest.
::testing::AssertionResult tensors_near(const Tensor& got, const Tensor& want, double atol = 1e-5,
                                        double rtol = 1e-4);

/// Deterministic uniform random tensor in [lo, hi).
Tensor random_tensor(DType t, const Dims& dims, double lo = -1, double hi = 1, uint64_t seed = 1);

/// A session on serialized model bytes.
Session session_from_bytes(const std::string& bytes, const SessionOptions& options = {});
/// A session on model bytes with the JIT on (at optimization `level`) or off (the reference
/// executor).
Session session_at_level(const std::string& bytes, bool jit, int level = 3);

/// How many times `needle` occurs in `text` (steps of a plan_text, say).
size_t count_of(const std::string& text, const std::string& needle);

/// The session's plan for `shapes` (Session::describe_plan), one line per step, as one string.
std::string plan_text(const Session& s, const std::map<std::string, Dims>& shapes);

/// Every output of `want` is in `got` with its dims, each float element within
/// rel_tol * max(1e-3, max |want|) (ASSERTs: the first mismatch ends the check).
void expect_outputs_near(const TensorMap& got, const TensorMap& want, double rel_tol);

template <class T>
Tensor make(Dims dims, std::vector<T> values) {
  return Tensor::from_vector<T>(std::move(dims), values);
}

}  // namespace kiln::testing
