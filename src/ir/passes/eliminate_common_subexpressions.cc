// Common subexpression elimination: one forward walk with a table of node keys. Inputs are
// canonicalized as the walk goes, so chains of duplicates merge in one pass.
#include "ir/passes/eliminate_common_subexpressions.h"

#include <cstring>
#include <map>
#include <sstream>

#include "ir/passes/graph_edit.h"

namespace kiln::ir::passes {
namespace {

constexpr int64_t kMaxMergeElements = 4096;

std::string tensor_key(const Tensor& t) {
  std::string s = std::string(dtype_name(t.dtype())) + dims_to_string(t.dims()) + ":";
  s.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return s;
}

// The node's identity as a string, or "" when it must not be merged.
std::string node_key(const Node& n) {
  std::ostringstream os;
  os << n.domain << "::" << n.op_type << "@" << n.opset << "(";
  for (int id : n.inputs) os << id << ",";
  os << ")" << n.outputs.size() << "{";
  for (const auto& [name, a] : n.attrs) {
    os << name << ":" << int(a.kind) << "=";
    switch (a.kind) {
      case Attribute::Kind::kFloat: {
        uint32_t bits;
        std::memcpy(&bits, &a.f, 4);  // bitwise, so -0 and NaN payloads stay distinct
        os << bits;
        break;
      }
      case Attribute::Kind::kInt:
        os << a.i;
        break;
      case Attribute::Kind::kString:
        os << a.s.size() << ":" << a.s;
        break;
      case Attribute::Kind::kInts:
        for (int64_t x : a.ints) os << x << ",";
        break;
      case Attribute::Kind::kFloats:
        for (float x : a.floats) {
          uint32_t bits;
          std::memcpy(&bits, &x, 4);
          os << bits << ",";
        }
        break;
      case Attribute::Kind::kStrings:
        for (const auto& x : a.strings) os << x.size() << ":" << x << ",";
        break;
      case Attribute::Kind::kTensor:
        os << tensor_key(a.t);
        break;
      default:
        return "";  // graphs, type protos, sparse tensors: not compared
    }
    os << ";";
  }
  os << "}";
  return os.str();
}

}  // namespace

bool eliminate_common_subexpressions(Graph& g, int* rewrites) {
  int merged = 0;
  // Identical small initializers first, so nodes reading them then compare equal.
  std::map<std::string, int> seen_constants;
  std::vector<char> read(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int id : n.inputs)
      if (id >= 0) read[size_t(id)] = 1;
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (!read[v] || !is_constant(g, int(v)) || is_graph_output(g, int(v))) continue;
    const Tensor& t = g.values[v].constant;
    if (t.numel() > kMaxMergeElements) continue;
    auto [it, fresh] = seen_constants.emplace(tensor_key(t), int(v));
    if (fresh) continue;
    replace_uses(g, int(v), it->second);
    merged++;
  }
  std::map<std::string, int> seen_nodes;
  std::vector<char> dead(g.nodes.size(), 0);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    if (!is_pure(n) || !n.implicit_inputs.empty() || n.outputs.empty()) continue;
    std::string key = node_key(n);
    if (key.empty()) continue;
    auto [it, fresh] = seen_nodes.emplace(key, int(ni));
    if (fresh) continue;
    const Node& first = g.nodes[size_t(it->second)];
    bool mergeable = true;
    for (size_t k = 0; k < n.outputs.size(); ++k)
      mergeable &=
          !is_graph_output(g, n.outputs[k]) && (g.values[size_t(n.outputs[k])].name.empty() ||
                                                !g.values[size_t(first.outputs[k])].name.empty());
    if (!mergeable) continue;
    for (size_t k = 0; k < n.outputs.size(); ++k) replace_uses(g, n.outputs[k], first.outputs[k]);
    dead[ni] = 1;
    merged++;
  }
  return finish_pass(g, dead, merged, rewrites);
}

}  // namespace kiln::ir::passes
