// The compact graph printer.
#include "ir/passes/to_text.h"

#include <sstream>

namespace kiln::ir::passes {
namespace {

std::string attr_text(const Attribute& a) {
  std::ostringstream os;
  auto list = [&os](const auto& xs) {
    os << "[";
    for (size_t i = 0; i < xs.size(); ++i) os << (i ? "," : "") << xs[i];
    os << "]";
  };
  switch (a.kind) {
    case Attribute::Kind::kFloat:
      os << a.f;
      break;
    case Attribute::Kind::kInt:
      os << a.i;
      break;
    case Attribute::Kind::kString:
      os << '"' << a.s << '"';
      break;
    case Attribute::Kind::kInts:
      list(a.ints);
      break;
    case Attribute::Kind::kFloats:
      list(a.floats);
      break;
    case Attribute::Kind::kStrings:
      list(a.strings);
      break;
    case Attribute::Kind::kTensor:
      os << dtype_name(a.t.dtype()) << dims_to_string(a.t.dims());
      break;
    default:
      os << "<" << attribute_kind_name(a.kind) << ">";
  }
  return os.str();
}

std::string type_text(const Value& v) {
  return std::string(dtype_name(v.dtype)) + v.shape.to_string();
}

std::string values_text(const Tensor& t) {
  std::ostringstream os;
  int64_t n = std::min<int64_t>(t.numel(), 4);
  for (int64_t i = 0; i < n; ++i) os << (i ? ", " : "") << t.element_as_double(i);
  if (t.numel() > n) os << ", ...";
  return os.str();
}

}  // namespace

std::string to_text(const Graph& g) {
  std::ostringstream os;
  std::vector<char> read(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int id : n.inputs)
      if (id >= 0) read[size_t(id)] = 1;
  for (int id : g.outputs) read[size_t(id)] = 1;
  for (int id : g.inputs)
    os << "in " << g.values[size_t(id)].name << ": " << type_text(g.values[size_t(id)]) << "\n";
  for (size_t id = 0; id < g.values.size(); ++id) {
    const Value& v = g.values[id];
    if (!read[id] || v.is_graph_input || v.producer >= 0 || !v.constant.defined()) continue;
    os << "const " << v.name << ": " << type_text(v) << " = " << values_text(v.constant) << "\n";
  }
  for (const Node& n : g.nodes) {
    for (size_t i = 0; i < n.outputs.size(); ++i)
      os << (i ? ", " : "") << (n.outputs[i] < 0 ? "_" : g.values[size_t(n.outputs[i])].name);
    os << " = " << qualified_op(n.domain, n.op_type);
    if (n.opset != g.opset(n.domain)) os << "@" << n.opset;
    os << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i)
      os << (i ? ", " : "") << (n.inputs[i] < 0 ? "_" : g.values[size_t(n.inputs[i])].name);
    os << ")";
    if (!n.attrs.empty()) {
      os << " {";
      bool first = true;
      for (const auto& [name, a] : n.attrs) {
        os << (first ? "" : ", ") << name << "=" << attr_text(a);
        first = false;
      }
      os << "}";
    }
    os << "\n";
  }
  os << "out ";
  for (size_t i = 0; i < g.outputs.size(); ++i)
    os << (i ? ", " : "") << g.values[size_t(g.outputs[i])].name;
  os << "\n";
  return os.str();
}

}  // namespace kiln::ir::passes
