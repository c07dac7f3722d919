// Dead code elimination: a backward liveness walk from the graph outputs.
#include "ir/passes/eliminate_dead_code.h"

#include "ir/passes/graph_edit.h"

namespace kiln::ir::passes {

bool eliminate_dead_code(Graph& g, int* rewrites) {
  std::vector<char> needed(g.values.size(), 0), dead(g.nodes.size(), 0);
  for (int id : g.outputs) needed[size_t(id)] = 1;
  int removed = 0;
  for (size_t ni = g.nodes.size(); ni-- > 0;) {
    const Node& n = g.nodes[ni];
    bool live = false;
    for (int id : n.outputs) live |= id >= 0 && needed[size_t(id)];
    if (!live) {
      dead[ni] = 1;
      removed++;
      continue;
    }
    for (int id : n.inputs)
      if (id >= 0) needed[size_t(id)] = 1;
    for (int id : n.implicit_inputs) needed[size_t(id)] = 1;
  }
  // Initializers nobody reads (graph inputs with defaults stay: they are part of the interface).
  for (size_t v = 0; v < g.values.size(); ++v) {
    const Value& val = g.values[v];
    if (!needed[v] && val.producer < 0 && !val.is_graph_input && val.constant.defined()) {
      bool captured = false;
      for (auto [local, outer] : g.captures) captured |= local == int(v);
      if (!captured) removed++;
    }
  }
  return finish_pass(g, dead, removed, rewrites);
}

}  // namespace kiln::ir::passes
