// The operator registry: for each (domain, op, opset range) a shape function and a reference
// kernel, plus the op's fusion pattern kind.
//
// Shape functions run twice in a model's life: at load, on symbolic shapes (dims may be symbols;
// input values are known only for constants and small shape-like int tensors), and at run time on
// concrete shapes with every input value known. The same code serves both, so a shape function
// must handle symbolic dims: compare dims with Dim::known_different, build dims with dim_add & co.
// Reference kernels are plain, obviously correct C++: the spec every fast kernel is tested against.
// Both report user errors through NodeAttrs::fail, which names the node.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/error.h"
#include "kiln/tensor.h"

namespace kiln::kernels {

/// What the fusion pass needs to know of an op (TVM's OpPatternKind).
enum class PatternKind {
  kElementwise,
  kBroadcast,
  kInjective,
  kReduction,
  kOutEwiseFusable,
  kOpaque
};

/// Attribute access and error reporting for one node; shared by both contexts.
class NodeAttrs {
 public:
  explicit NodeAttrs(const ir::Node& node) : node_(&node) {}
  const ir::Node& node() const { return *node_; }
  int opset() const { return node_->opset; }
  const std::string& op_type() const { return node_->op_type; }

  bool has_attr(const std::string& name) const { return node_->attrs.count(name) != 0; }
  const ir::Attribute* attr(const std::string& name) const;
  int64_t attr_int(const std::string& name, int64_t def) const;
  float attr_float(const std::string& name, float def) const;
  std::string attr_string(const std::string& name, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& name,
                                 const std::vector<int64_t>& def = {}) const;
  std::vector<float> attr_floats(const std::string& name, const std::vector<float>& def = {}) const;
  std::vector<std::string> attr_strings(const std::string& name) const;
  /// Tensor / graph attributes; nullptr when absent.
  const Tensor* attr_tensor(const std::string& name) const;
  const ir::Graph* attr_graph(const std::string& name) const;
  /// Required attributes: fail() when absent.
  int64_t required_int(const std::string& name) const;
  std::vector<int64_t> required_ints(const std::string& name) const;
  const ir::Graph& required_graph(const std::string& name) const;

  /// "node 'conv1' (Conv)"
  std::string where() const;
  /// Throws kiln::Error(code, where() + ": " + msg).
  [[noreturn]] void fail(const std::string& msg, ErrorCode code = ErrorCode::kInvalidModel) const;
  [[noreturn]] void unsupported(const std::string& msg) const {
    fail(msg, ErrorCode::kUnsupported);
  }

 private:
  const ir::Node* node_;
};

/// What shape inference knows about one input.
struct InputInfo {
  bool present = false;
  DType dtype = DType::kUndefined;
  ir::Shape shape;
  const Tensor* value = nullptr;  // data, when known
  const std::optional<std::vector<ir::Dim>>* dims_value = nullptr;
};

/// What a shape function decided about one output.
struct OutputInfo {
  bool set = false;
  DType dtype = DType::kUndefined;
  ir::Shape shape;
  std::optional<std::vector<ir::Dim>> dims_value;
  Tensor value;  // the output's data, when the shape function knows it (Constant)
};

class InferContext : public NodeAttrs {
 public:
  InferContext(const ir::Node& node, std::vector<InputInfo> inputs, bool runtime,
               std::function<ir::Dim()> fresh_dim)
      : NodeAttrs(node),
        inputs_(std::move(inputs)),
        outputs_(node.outputs.size()),
        runtime_(runtime),
        fresh_dim_(std::move(fresh_dim)) {}

  /// True when shapes are concrete and every input value is known (run time).
  bool is_runtime() const { return runtime_; }

  int num_inputs() const { return int(inputs_.size()); }
  bool has_input(int i) const { return i >= 0 && i < num_inputs() && inputs_[i].present; }
  /// fail()s when input i is missing.
  DType input_dtype(int i) const;
  const ir::Shape& input_shape(int i) const;
  /// The input's data when known (constants at load; always at run time), else nullptr.
  const Tensor* input_value(int i) const;
  /// The elements of an integer input as dims (constants or symbols), when known.
  std::optional<std::vector<ir::Dim>> input_dims_value(int i) const;
  /// The elements of an integer input, when all are known constants.
  std::optional<std::vector<int64_t>> input_ints(int i) const;
  /// fail()s unless the input has a known rank; returns it.
  int input_rank(int i) const;

  int num_outputs() const { return int(outputs_.size()); }
  void set_output(int i, DType dtype, ir::Shape shape);
  /// Symbolic elements of a small int output (Shape, Gather on shapes, Concat, ...).
  void set_output_dims_value(int i, std::vector<ir::Dim> v);
  /// The output's data when known without running the kernel (Constant); sets dtype and shape.
  void set_output_value(int i, Tensor value);
  /// A fresh unknown-valued symbol for data-dependent dims (NonZero, Unique, ...).
  ir::Dim fresh_dim() const { return fresh_dim_(); }

  const std::vector<OutputInfo>& outputs() const { return outputs_; }

 private:
  const InputInfo& in(int i) const;
  std::vector<InputInfo> inputs_;
  std::vector<OutputInfo> outputs_;
  bool runtime_;
  std::function<ir::Dim()> fresh_dim_;
};

/// Runs a subgraph with explicit inputs; captured outer values are supplied by the executor.
using SubgraphRunner =
    std::function<std::vector<Tensor>(const ir::Graph&, const std::vector<Tensor>&)>;

class KernelContext : public NodeAttrs {
 public:
  KernelContext(const ir::Node& node, std::vector<const Tensor*> inputs,
                std::vector<Tensor>* outputs, SubgraphRunner runner)
      : NodeAttrs(node),
        inputs_(std::move(inputs)),
        outputs_(outputs),
        runner_(std::move(runner)) {}

  int num_inputs() const { return int(inputs_.size()); }
  bool has_input(int i) const { return i >= 0 && i < num_inputs() && inputs_[i] != nullptr; }
  /// fail()s when input i is missing.
  const Tensor& input(int i) const;

  int num_outputs() const { return int(outputs_->size()); }
  /// The output as pre-allocated from the inferred shape (fail()s if the shape was not inferred).
  Tensor& output(int i);
  /// The output with exactly this dtype and dims: the pre-allocated one when it matches,
  /// otherwise a new owning tensor.
  Tensor& output(int i, DType dtype, const Dims& dims);
  /// Sets the output to an existing tensor (e.g. Identity, or a reshaped view of an input).
  void set_output(int i, Tensor t);

  /// Runs a subgraph (If/Loop/Scan bodies) on explicit inputs.
  std::vector<Tensor> run_subgraph(const ir::Graph& g, const std::vector<Tensor>& inputs) const;

 private:
  std::vector<const Tensor*> inputs_;
  std::vector<Tensor>* outputs_;
  SubgraphRunner runner_;
};

using ShapeFn = void (*)(InferContext&);
using KernelFn = void (*)(KernelContext&);
/// Types a subgraph's untyped inputs from its node before the subgraph is inferred (Loop/Scan
/// bodies of function-expanded models declare no input types).
using SeedSubgraphFn = void (*)(const ir::Graph& parent, const ir::Node& node,
                                const std::string& attr_name, ir::Graph& sub);

struct OpSchema {
  std::string domain;  // "" for ai.onnx
  std::string op;
  int since_version = 1;  // this entry serves opsets >= since_version (until the next entry)
  PatternKind pattern = PatternKind::kOpaque;
  ShapeFn infer = nullptr;
  KernelFn kernel = nullptr;
  SeedSubgraphFn seed_subgraph = nullptr;  // ops with subgraph attributes only
};

class Registry {
 public:
  /// The registry with every op family registered (built once, thread-safe).
  static const Registry& global();

  void add(OpSchema schema);
  /// The entry with the greatest since_version <= opset, or nullptr.
  const OpSchema* find(const std::string& domain, const std::string& op, int64_t opset) const;
  /// True when some opset of (domain, op) is registered.
  bool knows(const std::string& domain, const std::string& op) const;
  std::vector<const OpSchema*> all() const;

 private:
  std::map<std::pair<std::string, std::string>, std::vector<OpSchema>> ops_;
};

/// Normalizes "ai.onnx" to "".
std::string canonical_domain(const std::string& domain);

}  // namespace kiln::kernels
