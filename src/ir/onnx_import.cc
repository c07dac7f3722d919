// ONNX ModelProto -> ir::Graph.
#include "ir/onnx_import.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <unordered_map>

#include "ir/onnx_tensor.h"
#include "kernels/registry.h"
#include "onnx/onnx_pb.h"

namespace kiln::ir {

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(ErrorCode::kIo, "'" + path + "' is a folder, not a model file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorCode::kIo, "cannot open '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw Error(ErrorCode::kIo, "cannot read '" + path + "'");
  return bytes;
}

namespace {

[[noreturn]] void invalid(const std::string& msg) { throw Error(ErrorCode::kInvalidModel, msg); }

// Name resolution for a graph being imported: local names, then the enclosing scope (which may
// in turn capture from its own parent).
struct Scope {
  Graph* graph;
  std::unordered_map<std::string, int> names;
  Scope* parent = nullptr;

  // Id of `name` in this graph, capturing it from enclosing scopes if needed; -1 if unknown.
  int resolve(const std::string& name) {
    auto it = names.find(name);
    if (it != names.end()) return it->second;
    if (!parent) return -1;
    int outer = parent->resolve(name);
    if (outer < 0) return -1;
    Value v;
    v.name = name;
    const Value& ov = parent->graph->values[size_t(outer)];
    v.kind = ov.kind;
    v.dtype = ov.dtype;
    v.shape = ov.shape;
    int id = graph->add_value(std::move(v));
    graph->captures.emplace_back(id, outer);
    names[name] = id;
    return id;
  }
};

class Importer {
 public:
  Importer(std::string base_dir, std::map<std::string, int64_t> opsets)
      : base_dir_(std::move(base_dir)), opsets_(std::move(opsets)) {}

  std::unique_ptr<Graph> import_graph(const onnx::GraphProto& gp, Scope* parent);

 private:
  void read_type(const onnx::TypeProto& tp, Value& v, Graph& g, const std::string& what);
  Attribute read_attribute(const onnx::AttributeProto& ap, Scope& scope, const std::string& where);
  void topo_sort(Graph& g);

  std::string base_dir_;
  std::map<std::string, int64_t> opsets_;
};

void Importer::read_type(const onnx::TypeProto& tp, Value& v, Graph& g, const std::string& what) {
  const onnx::TypeProto* t = &tp;
  if (t->has_optional_type()) {
    v.kind = ValueKind::kOptional;
    t = &t->optional_type().elem_type();
  }
  if (t->has_sequence_type()) {
    v.kind = ValueKind::kSequence;
    t = &t->sequence_type().elem_type();
  } else if (t->has_map_type()) {
    v.kind = ValueKind::kMap;
    return;
  }
  if (!t->has_tensor_type()) {
    if (v.kind == ValueKind::kTensor) v.kind = ValueKind::kUnknown;
    return;
  }
  const auto& tt = t->tensor_type();
  int32_t et = tt.elem_type();
  if (et == 0) {
    v.dtype = DType::kUndefined;
  } else if (auto dt = dtype_from_onnx(et)) {
    v.dtype = *dt;
  } else {
    throw Error(ErrorCode::kUnsupported, what + ": element type " + std::to_string(et) +
                                             " (TensorProto.DataType) is not supported");
  }
  if (!tt.has_shape()) return;
  std::vector<Dim> dims;
  for (const auto& d : tt.shape().dim()) {
    if (d.has_dim_value()) {
      if (d.dim_value() < 0)
        invalid(what + ": negative dimension " + std::to_string(d.dim_value()));
      dims.push_back(Dim::constant(d.dim_value()));
    } else if (d.has_dim_param() && !d.dim_param().empty()) {
      dims.push_back(Dim::sym(d.dim_param()));
    } else {
      dims.push_back(Dim::sym(g.fresh_symbol()));
    }
  }
  v.shape = Shape(std::move(dims));
}

Attribute Importer::read_attribute(const onnx::AttributeProto& ap, Scope& scope,
                                   const std::string& where) {
  Attribute a;
  using AP = onnx::AttributeProto;
  std::string what = where + " attribute '" + ap.name() + "'";
  AP::AttributeType type = ap.type();
  if (type == AP::UNDEFINED) {  // old exporters leave type unset: infer it from the set field
    if (ap.has_f())
      type = AP::FLOAT;
    else if (ap.has_i())
      type = AP::INT;
    else if (ap.has_s())
      type = AP::STRING;
    else if (ap.has_t())
      type = AP::TENSOR;
    else if (ap.has_g())
      type = AP::GRAPH;
    else if (ap.floats_size())
      type = AP::FLOATS;
    else if (ap.ints_size())
      type = AP::INTS;
    else if (ap.strings_size())
      type = AP::STRINGS;
    else if (ap.tensors_size())
      type = AP::TENSORS;
    else if (ap.graphs_size())
      type = AP::GRAPHS;
    else
      invalid(what + " has no type and no value");
  }
  switch (type) {
    case AP::FLOAT:
      a.kind = Attribute::Kind::kFloat;
      a.f = ap.f();
      break;
    case AP::INT:
      a.kind = Attribute::Kind::kInt;
      a.i = ap.i();
      break;
    case AP::STRING:
      a.kind = Attribute::Kind::kString;
      a.s = ap.s();
      break;
    case AP::TENSOR:
      a.kind = Attribute::Kind::kTensor;
      a.t = tensor_from_proto(ap.t(), base_dir_, what);
      break;
    case AP::GRAPH: {
      a.kind = Attribute::Kind::kGraph;
      a.g = import_graph(ap.g(), &scope);
      break;
    }
    case AP::FLOATS:
      a.kind = Attribute::Kind::kFloats;
      a.floats.assign(ap.floats().begin(), ap.floats().end());
      break;
    case AP::INTS:
      a.kind = Attribute::Kind::kInts;
      a.ints.assign(ap.ints().begin(), ap.ints().end());
      break;
    case AP::STRINGS:
      a.kind = Attribute::Kind::kStrings;
      a.strings.assign(ap.strings().begin(), ap.strings().end());
      break;
    case AP::TENSORS:
      a.kind = Attribute::Kind::kTensors;
      for (const auto& t : ap.tensors()) a.tensors.push_back(tensor_from_proto(t, base_dir_, what));
      break;
    case AP::GRAPHS:
      a.kind = Attribute::Kind::kGraphs;
      for (const auto& gp : ap.graphs()) a.graphs.push_back(import_graph(gp, &scope));
      break;
    case AP::TYPE_PROTO:
      a.kind = Attribute::Kind::kTypeProto;
      break;
    case AP::TYPE_PROTOS:
      a.kind = Attribute::Kind::kTypeProtos;
      break;
    case AP::SPARSE_TENSOR:
      a.kind = Attribute::Kind::kSparseTensor;
      break;
    case AP::SPARSE_TENSORS:
      a.kind = Attribute::Kind::kSparseTensors;
      break;
    default:
      invalid(what + " has unknown type " + std::to_string(int(ap.type())));
  }
  return a;
}

// Kahn's algorithm, stable: nodes already in order stay in order. Implicit inputs count as
// dependencies. A cycle is an error naming a node on it.
void Importer::topo_sort(Graph& g) {
  size_t n = g.nodes.size();
  std::vector<int> producer(g.values.size(), -1);
  for (size_t i = 0; i < n; ++i)
    for (int o : g.nodes[i].outputs) producer[size_t(o)] = int(i);
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (size_t i = 0; i < n; ++i) {
    std::set<int> deps;
    auto add = [&](int v) {
      if (v >= 0 && producer[size_t(v)] >= 0) deps.insert(producer[size_t(v)]);
    };
    for (int v : g.nodes[i].inputs) add(v);
    for (int v : g.nodes[i].implicit_inputs) add(v);
    for (int d : deps) {
      if (d == int(i))
        invalid("node '" + g.nodes[i].name + "' (" + g.nodes[i].op_type +
                ") consumes its own output");
      users[size_t(d)].push_back(int(i));
    }
    pending[i] = int(deps.size());
  }
  std::vector<int> order;
  std::set<int> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.insert(int(i));
  while (!ready.empty()) {
    int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (int u : users[size_t(i)])
      if (--pending[size_t(u)] == 0) ready.insert(u);
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (pending[i] > 0)
        invalid("graph '" + g.name + "' has a cycle through node '" + g.nodes[i].name + "' (" +
                g.nodes[i].op_type + ")");
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(g.nodes[size_t(i)]));
  g.nodes = std::move(sorted);
  for (size_t i = 0; i < n; ++i)
    for (int o : g.nodes[i].outputs) g.values[size_t(o)].producer = int(i);
}

std::unique_ptr<Graph> Importer::import_graph(const onnx::GraphProto& gp, Scope* parent) {
  auto g = std::make_unique<Graph>();
  g->name = gp.name();
  g->opsets = opsets_;
  Scope scope{g.get(), {}, parent};

  auto define = [&](const std::string& name, const std::string& what) -> int {
    if (name.empty()) invalid(what + " has an empty name");
    if (scope.names.count(name)) invalid("value '" + name + "' is defined twice (" + what + ")");
    Value v;
    v.name = name;
    int id = g->add_value(std::move(v));
    scope.names[name] = id;
    return id;
  };

  // Initializers first, so graph inputs of the same name become overridable defaults.
  for (const auto& init : gp.initializer()) {
    std::string what = "initializer '" + init.name() + "'";
    int id = define(init.name(), what);
    Value& v = g->values[size_t(id)];
    v.constant = tensor_from_proto(init, base_dir_, what);
    v.dtype = v.constant.dtype();
    v.shape = Shape::of(v.constant.dims());
  }
  if (gp.sparse_initializer_size())
    throw Error(ErrorCode::kUnsupported,
                "graph '" + gp.name() + "': sparse initializers are not supported");
  for (const auto& in : gp.input()) {
    std::string what = "graph input '" + in.name() + "'";
    auto it = scope.names.find(in.name());
    int id = it != scope.names.end() ? it->second : define(in.name(), what);
    Value& v = g->values[size_t(id)];
    if (v.constant.defined()) {
      Value declared;
      if (in.has_type()) read_type(in.type(), declared, *g, what);
      if (declared.dtype != DType::kUndefined && declared.dtype != v.dtype)
        invalid(what + " is declared " + dtype_name(declared.dtype) + " but its initializer is " +
                dtype_name(v.dtype));
      // Keep a declared symbolic shape: the default may be overridden at another shape.
      if (declared.shape.has_rank) v.shape = declared.shape;
    } else if (in.has_type()) {
      read_type(in.type(), v, *g, what);
    }
    v.is_graph_input = true;
    g->inputs.push_back(id);
  }
  // Node outputs, so that nodes out of order and subgraph captures resolve.
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    for (const auto& o : np.output()) {
      if (o.empty()) continue;
      define(o, "output of node '" + np.name() + "' (" + np.op_type() + ")");
    }
  }
  const auto& registry = kernels::Registry::global();
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    Node n;
    n.op_type = np.op_type();
    n.domain = kernels::canonical_domain(np.domain());
    n.name = np.name().empty() ? np.op_type() + "_" + std::to_string(i) : np.name();
    std::string where = "node '" + n.name + "' (" + qualified_op(n.domain, n.op_type) + ")";
    if (n.op_type.empty()) invalid("node " + std::to_string(i) + " has no op_type");
    int64_t opset = g->opset(n.domain);
    if (opset == 0)
      invalid(where + ": domain '" + (n.domain.empty() ? std::string("ai.onnx") : n.domain) +
              "' is not in the model's opset imports");
    n.opset = int(opset);
    n.schema = registry.find(n.domain, n.op_type, opset);
    if (!n.schema)
      throw Error(ErrorCode::kUnsupported,
                  "unsupported operator '" + n.op_type + "' (domain '" +
                      (n.domain.empty() ? std::string("ai.onnx") : n.domain) + "', opset " +
                      std::to_string(opset) + ") at node '" + n.name + "'");
    for (const auto& in : np.input()) {
      if (in.empty()) {
        n.inputs.push_back(-1);
        continue;
      }
      int id = scope.resolve(in);
      if (id < 0)
        invalid(where + ": input '" + in +
                "' is not produced by any node, initializer or graph input");
      n.inputs.push_back(id);
    }
    for (const auto& o : np.output()) n.outputs.push_back(o.empty() ? -1 : scope.names.at(o));
    for (const auto& ap : np.attribute()) {
      if (ap.name().empty()) invalid(where + " has an attribute without a name");
      if (n.attrs.count(ap.name())) invalid(where + ": attribute '" + ap.name() + "' given twice");
      n.attrs[ap.name()] = read_attribute(ap, scope, where);
    }
    // Implicit inputs: every capture of this node's subgraphs, as ids in this graph.
    std::set<int> implicit;
    for (auto& [name, a] : n.attrs) {
      for (const auto& sg : a.graphs)
        for (auto& c : sg->captures) implicit.insert(c.second);
      if (a.g)
        for (auto& c : a.g->captures) implicit.insert(c.second);
    }
    n.implicit_inputs.assign(implicit.begin(), implicit.end());
    g->nodes.push_back(std::move(n));
  }
  // Outputs that are declared but unnamed in the node list: make them placeholders so the
  // executor can report them. Node outputs "" (omitted) are given fresh values.
  for (auto& n : g->nodes)
    for (auto& o : n.outputs)
      if (o < 0) {
        Value v;
        v.name = "";
        o = g->add_value(std::move(v));
      }
  for (const auto& out : gp.output()) {
    int id = scope.resolve(out.name());
    if (id < 0)
      invalid("graph output '" + out.name() +
              "' is not produced by any node, initializer or graph input");
    if (out.has_type()) {
      Value declared;
      read_type(out.type(), declared, *g, "graph output '" + out.name() + "'");
      Value& v = g->values[size_t(id)];
      if (v.dtype == DType::kUndefined) v.dtype = declared.dtype;
      if (v.kind == ValueKind::kTensor) v.kind = declared.kind;
      if (!v.shape.has_rank) v.shape = declared.shape;
    }
    g->outputs.push_back(id);
  }
  for (const auto& vi : gp.value_info()) {
    auto it = scope.names.find(vi.name());
    if (it == scope.names.end() || !vi.has_type()) continue;
    Value& v = g->values[size_t(it->second)];
    if (v.producer < 0 && !v.is_graph_input && !v.constant.defined() &&
        v.dtype == DType::kUndefined) {
      read_type(vi.type(), v, *g, "value '" + vi.name() + "'");
    }
  }
  topo_sort(*g);
  // Values produced nowhere (no producer, not input, not initializer, not captured) that are
  // used: caught above by resolve; a node output that is also a graph input is a conflict.
  for (int in : g->inputs)
    if (g->values[size_t(in)].producer >= 0)
      invalid("graph input '" + g->values[size_t(in)].name + "' is also produced by a node");
  return g;
}

}  // namespace

std::unique_ptr<Graph> import_onnx(std::span<const uint8_t> bytes, const std::string& base_dir) {
  if (bytes.empty()) invalid("the model is empty (0 bytes)");
  if (bytes.size() > size_t(std::numeric_limits<int>::max()))
    throw Error(ErrorCode::kUnsupported,
                "models over 2 GiB must keep their weights in external data");
  onnx::ModelProto mp;
  if (!mp.ParseFromArray(bytes.data(), int(bytes.size())))
    invalid("not a valid ONNX model: the protobuf cannot be parsed (truncated or corrupt file?)");
  if (!mp.has_graph()) invalid("not a valid ONNX model: it has no graph");
  if (!mp.has_ir_version()) invalid("not a valid ONNX model: it has no ir_version");
  std::map<std::string, int64_t> opsets;
  for (const auto& op : mp.opset_import())
    opsets[kernels::canonical_domain(op.domain())] = op.version();
  if (opsets.empty()) opsets[""] = 1;  // IR v2 models without opset imports
  if (opsets.count("") && opsets[""] < 1)
    invalid("invalid ai.onnx opset " + std::to_string(opsets[""]));
  Importer importer(base_dir, opsets);
  return importer.import_graph(mp.graph(), nullptr);
}

}  // namespace kiln::ir
