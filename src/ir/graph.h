// The graph IR: an ONNX model as plain data.
//
// Values and nodes live in vectors and refer to each other by integer ids; names are kept for
// humans and for ONNX. Nodes are stored in a topological order (the importer sorts them). A value
// is produced by at most one node, or is a graph input, an initializer (value.constant holds its
// data), or a capture from an enclosing graph (subgraphs of If/Loop/Scan). A node input id of -1
// is an omitted optional input.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/shape.h"
#include "kiln/tensor.h"

namespace kiln::kernels {
struct OpSchema;
}

namespace kiln::ir {

struct Graph;

/// An ONNX attribute of any kind.
struct Attribute {
  enum class Kind {
    kFloat,
    kInt,
    kString,
    kTensor,
    kGraph,
    kFloats,
    kInts,
    kStrings,
    kTensors,
    kGraphs,
    kTypeProto,
    kTypeProtos,
    kSparseTensor,
    kSparseTensors
  };
  Kind kind = Kind::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
};
const char* attribute_kind_name(Attribute::Kind k);

/// The kind of data a value carries. Only tensors are executed today.
enum class ValueKind { kTensor, kSequence, kOptional, kMap, kUnknown };

struct Value {
  std::string name;
  ValueKind kind = ValueKind::kTensor;
  DType dtype = DType::kUndefined;
  Shape shape;
  int producer = -1;  // node id, or -1
  Tensor constant;    // initializer or Constant data (defined() when known at load time)
  bool is_graph_input = false;
  /// For small integer tensors whose elements are known symbolically (Shape→Gather→Concat chains):
  /// the elements as dims. Filled by shape inference.
  std::optional<std::vector<Dim>> dims_value;
};

struct Node {
  std::string name;  // may be empty in the model; the importer names it "<op>_<id>"
  std::string op_type;
  std::string domain;  // "" for ai.onnx
  int opset = 0;       // the opset version of the node's domain
  std::vector<int> inputs;
  std::vector<int> outputs;
  std::map<std::string, Attribute> attrs;
  /// Values of enclosing scopes used by this node's subgraphs (ids in this graph).
  std::vector<int> implicit_inputs;
  const kernels::OpSchema* schema = nullptr;  // resolved at import
};

struct Graph {
  std::string name;
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;   // declared inputs, in order (may have constants: defaults)
  std::vector<int> outputs;  // declared outputs, in order
  std::map<std::string, int64_t> opsets;  // domain -> version
  /// For a subgraph: values captured from the enclosing graph, as (id here, id in parent).
  std::vector<std::pair<int, int>> captures;
  /// Counter for fresh symbol names ("unk__3").
  int next_symbol = 0;

  int add_value(Value v);
  /// Id of the value named `name`, or -1.
  int find_value(const std::string& name) const;
  std::string fresh_symbol(const std::string& hint = "unk");
  /// Opset of a domain ("" and "ai.onnx" are the same); 0 when not imported.
  int64_t opset(const std::string& domain) const;
  /// Human-readable listing of the whole graph (for `kiln info --graph` and tests).
  std::string to_string() const;
};

/// "Add" for ai.onnx, otherwise "domain::op".
std::string qualified_op(const std::string& domain, const std::string& op);

}  // namespace kiln::ir
