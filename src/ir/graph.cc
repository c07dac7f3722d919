// Graph helpers and the text listing.
#include "ir/graph.h"

#include <sstream>

namespace kiln::ir {

const char* attribute_kind_name(Attribute::Kind k) {
  switch (k) {
    case Attribute::Kind::kFloat:
      return "float";
    case Attribute::Kind::kInt:
      return "int";
    case Attribute::Kind::kString:
      return "string";
    case Attribute::Kind::kTensor:
      return "tensor";
    case Attribute::Kind::kGraph:
      return "graph";
    case Attribute::Kind::kFloats:
      return "floats";
    case Attribute::Kind::kInts:
      return "ints";
    case Attribute::Kind::kStrings:
      return "strings";
    case Attribute::Kind::kTensors:
      return "tensors";
    case Attribute::Kind::kGraphs:
      return "graphs";
    case Attribute::Kind::kTypeProto:
      return "type_proto";
    case Attribute::Kind::kTypeProtos:
      return "type_protos";
    case Attribute::Kind::kSparseTensor:
      return "sparse_tensor";
    case Attribute::Kind::kSparseTensors:
      return "sparse_tensors";
  }
  return "?";
}

std::string qualified_op(const std::string& domain, const std::string& op) {
  if (domain.empty() || domain == "ai.onnx") return op;
  return domain + "::" + op;
}

int Graph::add_value(Value v) {
  values.push_back(std::move(v));
  return int(values.size()) - 1;
}

int Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return int(i);
  return -1;
}

std::string Graph::fresh_symbol(const std::string& hint) {
  return hint + "__" + std::to_string(next_symbol++);
}

int64_t Graph::opset(const std::string& domain) const {
  auto it = opsets.find(domain == "ai.onnx" ? "" : domain);
  return it == opsets.end() ? 0 : it->second;
}

namespace {
std::string type_string(const Value& v) {
  if (v.kind == ValueKind::kSequence) return std::string("seq<") + dtype_name(v.dtype) + ">";
  return std::string(dtype_name(v.dtype)) + v.shape.to_string();
}
}  // namespace

std::string Graph::to_string() const {
  std::ostringstream os;
  os << "graph " << name << " (";
  for (size_t i = 0; i < inputs.size(); ++i)
    os << (i ? ", " : "") << values[inputs[i]].name << ": " << type_string(values[inputs[i]]);
  os << ")\n";
  for (const Node& n : nodes) {
    os << "  ";
    for (size_t i = 0; i < n.outputs.size(); ++i)
      os << (i ? ", " : "") << values[n.outputs[i]].name << ": "
         << type_string(values[n.outputs[i]]);
    os << " = " << qualified_op(n.domain, n.op_type) << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i)
      os << (i ? ", " : "") << (n.inputs[i] < 0 ? "" : values[n.inputs[i]].name);
    os << ")\n";
  }
  os << "  return ";
  for (size_t i = 0; i < outputs.size(); ++i) os << (i ? ", " : "") << values[outputs[i]].name;
  os << "\n";
  return os.str();
}

}  // namespace kiln::ir
