// Editing helpers shared by the graph passes.
#include "ir/passes/graph_edit.h"

#include <cmath>
#include <set>

#include "kernels/registry.h"

namespace kiln::ir::passes {

bool is_constant(const Graph& g, int id) {
  if (id < 0) return false;
  const Value& v = g.values[size_t(id)];
  if (!v.constant.defined() || v.is_graph_input || v.producer >= 0) return false;
  for (auto [local, outer] : g.captures)
    if (local == id) return false;
  return v.kind == ValueKind::kTensor;
}

bool is_graph_output(const Graph& g, int id) {
  for (int o : g.outputs)
    if (o == id) return true;
  return false;
}

bool has_subgraph(const Node& n) {
  for (const auto& [name, a] : n.attrs)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

bool is_pure(const Node& n) {
  static const std::set<std::string> random = {
      "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
      "Multinomial",  "Bernoulli",     "Dropout"};
  return n.domain.empty() && !random.count(n.op_type) && !has_subgraph(n) && n.schema &&
         n.schema->kernel;
}

std::vector<std::vector<int>> consumers(const Graph& g) {
  std::vector<std::vector<int>> uses(g.values.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (int v : g.nodes[i].inputs)
      if (v >= 0) uses[size_t(v)].push_back(int(i));
    for (int v : g.nodes[i].implicit_inputs)
      if (v >= 0) uses[size_t(v)].push_back(int(i));
  }
  return uses;
}

int use_count(const Graph& g, const std::vector<std::vector<int>>& uses, int id) {
  return int(uses[size_t(id)].size()) + (is_graph_output(g, id) ? 1 : 0);
}

int sole_reader(const Graph& g, const std::vector<std::vector<int>>& uses, int id) {
  if (id < 0 || uses[size_t(id)].size() != 1 || is_graph_output(g, id)) return -1;
  return uses[size_t(id)][0];
}

int other_input(const Node& n, const std::string& op, int id) {
  if (!n.domain.empty() || n.op_type != op || n.inputs.size() != 2) return -1;
  if (n.inputs[0] == id) return n.inputs[1];
  if (n.inputs[1] == id) return n.inputs[0];
  return -1;
}

bool constant_near(const Graph& g, int id, double want) {
  auto c = constant_scalar(g, id);
  return c && std::abs(*c - want) <= 1e-4 * std::abs(want);
}

const Node* producer_of(const Graph& g, int id, const std::string& op) {
  if (id < 0) return nullptr;
  int p = g.values[size_t(id)].producer;
  if (p < 0) return nullptr;
  const Node& n = g.nodes[size_t(p)];
  return n.domain.empty() && n.op_type == op ? &n : nullptr;
}

namespace {
void replace_in_subgraphs(Node& n, int from, int to) {
  for (auto& [name, a] : n.attrs) {
    if (a.g)
      for (auto& c : a.g->captures)
        if (c.second == from) c.second = to;
    for (auto& sg : a.graphs)
      for (auto& c : sg->captures)
        if (c.second == from) c.second = to;
  }
}
}  // namespace

void replace_uses(Graph& g, int from, int to, int except) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (int(i) == except) continue;
    Node& n = g.nodes[i];
    for (int& v : n.inputs)
      if (v == from) v = to;
    bool implicit = false;
    for (int& v : n.implicit_inputs)
      if (v == from) v = to, implicit = true;
    if (implicit) replace_in_subgraphs(n, from, to);
  }
}

std::string unique_name(const Graph& g, const std::string& hint) {
  std::set<std::string> names;
  for (const auto& v : g.values) names.insert(v.name);
  if (!names.count(hint)) return hint;
  for (int i = 1;; ++i) {
    std::string s = hint + "_" + std::to_string(i);
    if (!names.count(s)) return s;
  }
}

int add_constant(Graph& g, const std::string& hint, Tensor t) {
  Value v;
  v.name = unique_name(g, hint);
  v.dtype = t.dtype();
  v.shape = Shape::of(t.dims());
  v.constant = std::move(t);
  return g.add_value(std::move(v));
}

bool set_schema(Node& n, int opset) {
  const auto* s = kernels::Registry::global().find(n.domain, n.op_type, opset);
  if (!s) return false;
  n.opset = opset;
  n.schema = s;
  return true;
}

void set_int_attr(Node& n, const std::string& name, int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  n.attrs[name] = std::move(a);
}

void set_float_attr(Node& n, const std::string& name, float v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = v;
  n.attrs[name] = std::move(a);
}

void set_string_attr(Node& n, const std::string& name, const std::string& v) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = v;
  n.attrs[name] = std::move(a);
}

void set_ints_attr(Node& n, const std::string& name, const std::vector<int64_t>& v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = v;
  n.attrs[name] = std::move(a);
}

bool finish_pass(Graph& g, const std::vector<char>& dead, int count, int* rewrites) {
  if (count == 0) return false;
  sweep(g, dead);
  if (rewrites) *rewrites += count;
  return true;
}

void sweep(Graph& g, const std::vector<char>& dead) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);

  std::vector<char> used(g.values.size(), 0);
  auto mark = [&](int id) {
    if (id >= 0) used[size_t(id)] = 1;
  };
  for (int id : g.inputs) mark(id);
  for (int id : g.outputs) mark(id);
  for (auto [local, outer] : g.captures) mark(local);
  for (const Node& n : g.nodes) {
    for (int id : n.inputs) mark(id);
    for (int id : n.outputs) mark(id);
    for (int id : n.implicit_inputs) mark(id);
  }
  std::vector<int> remap(g.values.size(), -1);
  std::vector<Value> values;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (used[v]) {
      remap[v] = int(values.size());
      values.push_back(std::move(g.values[v]));
    }
  g.values = std::move(values);
  auto re = [&](int& id) {
    if (id >= 0) id = remap[size_t(id)];
  };
  for (int& id : g.inputs) re(id);
  for (int& id : g.outputs) re(id);
  for (auto& c : g.captures) re(c.first);
  for (Node& n : g.nodes) {
    for (int& id : n.inputs) re(id);
    for (int& id : n.outputs) re(id);
    for (int& id : n.implicit_inputs) re(id);
    for (auto& [name, a] : n.attrs) {
      if (a.g)
        for (auto& c : a.g->captures) re(c.second);
      for (auto& sg : a.graphs)
        for (auto& c : sg->captures) re(c.second);
    }
  }
  for (Value& v : g.values) v.producer = -1;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int id : g.nodes[i].outputs)
      if (id >= 0) g.values[size_t(id)].producer = int(i);
}

std::optional<double> constant_scalar(const Graph& g, int id) {
  if (!is_constant(g, id)) return std::nullopt;
  const Tensor& t = g.values[size_t(id)].constant;
  if (t.numel() < 1 || !dtype_is_float(t.dtype())) return std::nullopt;
  double x = t.element_as_double(0);
  for (int64_t i = 1; i < t.numel(); ++i)
    if (t.element_as_double(i) != x) return std::nullopt;
  return x;
}

std::optional<std::vector<int64_t>> constant_ints(const Graph& g, int id) {
  if (!is_constant(g, id)) return std::nullopt;
  const Tensor& t = g.values[size_t(id)].constant;
  if (t.dtype() != DType::kI64 && t.dtype() != DType::kI32) return std::nullopt;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < t.numel(); ++i) out.push_back(t.element_as_int(i));
  return out;
}

}  // namespace kiln::ir::passes
