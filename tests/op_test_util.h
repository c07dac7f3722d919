// Helpers for op tests: run one node through shape inference and the reference executor, and
// compare tensors.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "ir/graph.h"
#include "ir/shape_inference.h"
#include "kernels/registry.h"
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

template <class T>
Tensor make(Dims dims, std::vector<T> values) {
  return Tensor::from_vector<T>(std::move(dims), values);
}

}  // namespace kiln::testing
