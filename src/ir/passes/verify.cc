// Graph verifier.
#include "ir/passes/verify.h"

#include "ir/shape_inference.h"
#include "kiln/error.h"

namespace kiln::ir::passes {

std::vector<std::string> interface_names(const Graph& g) {
  std::vector<std::string> names;
  for (int id : g.inputs) names.push_back("in:" + g.values[size_t(id)].name);
  for (int id : g.outputs) names.push_back("out:" + g.values[size_t(id)].name);
  return names;
}

void verify(const Graph& g, const std::vector<std::string>& interface, const std::string& pass) {
  auto fail = [&pass](const std::string& msg) {
    throw Error(ErrorCode::kInternal, "after graph pass " + pass + ": " + msg + " (a Kiln bug)");
  };
  if (interface_names(g) != interface) fail("graph inputs or outputs changed");
  std::vector<char> defined(g.values.size(), 0);
  auto valid = [&g](int id) { return id >= 0 && size_t(id) < g.values.size(); };
  for (int id : g.inputs) {
    if (!valid(id)) fail("graph input id out of range");
    defined[size_t(id)] = 1;
  }
  for (auto [local, outer] : g.captures) {
    if (!valid(local)) fail("capture id out of range");
    defined[size_t(local)] = 1;
  }
  for (size_t v = 0; v < g.values.size(); ++v) {
    const Value& val = g.values[v];
    if (val.producer < 0 && val.constant.defined()) defined[v] = 1;
    if (val.producer >= int(g.nodes.size())) fail("value '" + val.name + "' has a bad producer");
  }
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    if (!n.schema) fail("node '" + n.name + "' has no schema");
    for (int id : n.inputs) {
      if (id < 0) continue;
      if (!valid(id)) fail("node '" + n.name + "' reads an id out of range");
      if (!defined[size_t(id)])
        fail("node '" + n.name + "' reads '" + g.values[size_t(id)].name +
             "' before it is defined");
    }
    for (int id : n.implicit_inputs)
      if (!valid(id) || !defined[size_t(id)])
        fail("node '" + n.name + "' captures a value not defined before it");
    for (int id : n.outputs) {
      if (!valid(id)) fail("node '" + n.name + "' writes an id out of range");
      if (defined[size_t(id)])
        fail("value '" + g.values[size_t(id)].name + "' is defined twice (node '" + n.name + "')");
      if (g.values[size_t(id)].producer != int(ni))
        fail("value '" + g.values[size_t(id)].name + "' has a stale producer");
      defined[size_t(id)] = 1;
    }
  }
  for (int id : g.outputs)
    if (!valid(id) || !defined[size_t(id)]) fail("a graph output is not computed");
  Graph copy = g;
  try {
    infer_shapes(copy);
  } catch (const Error& e) {
    fail(std::string("shape inference fails: ") + e.what());
  }
}

}  // namespace kiln::ir::passes
