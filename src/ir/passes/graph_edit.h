// Editing helpers shared by the graph passes (kiln::ir::passes).
//
// Passes never erase from Graph::nodes or Graph::values while they walk them: they mark nodes
// dead and rewire uses, then sweep() drops the dead nodes and compacts the values nobody refers
// to, renumbering every id (node inputs/outputs, implicit inputs, graph inputs/outputs, value
// producers and the parent ids of subgraph captures). A "constant" here is an initializer that the
// caller cannot override: data known at load, no producer, not a graph input.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Whether value `id` is a non-overridable initializer (safe to read, fold and rewrite).
bool is_constant(const Graph& g, int id);
/// Whether value `id` is one of the graph's outputs.
bool is_graph_output(const Graph& g, int id);
/// Whether the node is a default-domain op computing the same function of its inputs every time
/// with a reference kernel: not Random*, Multinomial, Bernoulli or Dropout, no subgraph.
bool is_pure(const Node& n);
bool has_subgraph(const Node& n);

/// For each value: the nodes that read it (inputs or implicit inputs), in node order, counting a
/// node once per input slot.
std::vector<std::vector<int>> consumers(const Graph& g);
/// Number of reads of a value plus one if it is a graph output (a value a rewrite may absorb
/// only when this is 1).
int use_count(const Graph& g, const std::vector<std::vector<int>>& uses, int id);

/// The node reading `id`, when exactly one input slot of one node reads it and it is not a graph
/// output; else -1.
int sole_reader(const Graph& g, const std::vector<std::vector<int>>& uses, int id);
/// For a two-input default-domain `op` node reading `id` on either side: the other input; else -1.
int other_input(const Node& n, const std::string& op, int id);
/// Whether float constant `id` is a scalar (or all-equal) close to `want` (relative 1e-4).
bool constant_near(const Graph& g, int id, double want);

/// The node producing `id` if it is a default-domain `op` node, else nullptr.
const Node* producer_of(const Graph& g, int id, const std::string& op);

/// Replaces every read of value `from` by `to` (node inputs, implicit inputs, subgraph captures),
/// skipping node `except` (-1: none). Graph outputs are not touched.
void replace_uses(Graph& g, int from, int to, int except = -1);

/// Adds an initializer named after `hint` (made unique) and returns its id.
int add_constant(Graph& g, const std::string& hint, Tensor t);
/// A name not used by any value of `g`, starting from `hint`.
std::string unique_name(const Graph& g, const std::string& hint);

/// Resolves the registry schema of (domain, op) at `opset` into the node; false when none.
bool set_schema(Node& n, int opset);

/// Sets attribute `name` of `n`, replacing any value it had.
void set_int_attr(Node& n, const std::string& name, int64_t v);
void set_float_attr(Node& n, const std::string& name, float v);
void set_string_attr(Node& n, const std::string& name, const std::string& v);
void set_ints_attr(Node& n, const std::string& name, const std::vector<int64_t>& v);

/// The end of a rewriting pass: when it made `count` > 0 rewrites, sweeps the `dead` nodes and
/// adds `count` to *rewrites (when given). Returns whether the graph changed.
bool finish_pass(Graph& g, const std::vector<char>& dead, int count, int* rewrites);

/// Removes the nodes flagged in `dead` (same size as g.nodes), then compacts values that no node,
/// graph input/output or subgraph capture refers to. Producers are recomputed.
void sweep(Graph& g, const std::vector<char>& dead);

/// A scalar or every-element-equal float constant's value, if `id` is such a constant.
std::optional<double> constant_scalar(const Graph& g, int id);
/// The elements of an integer constant, when `id` is one.
std::optional<std::vector<int64_t>> constant_ints(const Graph& g, int id);

}  // namespace kiln::ir::passes
