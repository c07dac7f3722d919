// GELU pattern matching, anchored at the Erf or Tanh node and walked outwards.
#include "ir/passes/fuse_gelu.h"

#include <algorithm>
#include <cmath>

#include "ir/passes/graph_edit.h"
#include "kernels/registry.h"
#include "kiln/error.h"

namespace kiln::ir::passes {
namespace {

struct Match {
  int x = -1;
  std::vector<int> nodes;  // every node of the pattern but the last
  int last = -1;
};

class GeluMatcher {
 public:
  GeluMatcher(const Graph& g, const std::vector<std::vector<int>>& uses) : g_(g), uses_(uses) {}

  std::optional<Match> match(int ni) {
    m_ = Match();
    const Node& n = g_.nodes[size_t(ni)];
    if (!n.domain.empty() || n.inputs.size() != 1 || n.outputs.size() != 1) return std::nullopt;
    bool ok = n.op_type == "Erf" ? match_erf_arg(n.inputs[0])
                                 : n.op_type == "Tanh" && match_tanh_arg(n.inputs[0]);
    if (!ok) return std::nullopt;
    m_.nodes.push_back(ni);
    if (!match_tail(n.outputs[0])) return std::nullopt;
    return m_;
  }

 private:
  // The node producing `id` when it is read only by the pattern.
  const Node* inner(int id, const char* op) {
    if (sole_reader(g_, uses_, id) < 0) return nullptr;
    const Node* p = producer_of(g_, id, op);
    if (p) m_.nodes.push_back(g_.values[size_t(id)].producer);
    return p;
  }

  // x / sqrt(2) or x * (1/sqrt(2)).
  bool match_erf_arg(int t) {
    if (const Node* d = inner(t, "Div")) {
      m_.x = d->inputs[0];
      return constant_near(g_, d->inputs[1], std::sqrt(2.0));
    }
    const Node* p = inner(t, "Mul");
    return p && take_x_times(*p, std::sqrt(0.5));
  }

  // Sets x from Mul(x, c) with c near `want`.
  bool take_x_times(const Node& mul, double want) {
    for (int side = 0; side < 2; ++side)
      if (constant_near(g_, mul.inputs[size_t(1 - side)], want)) {
        m_.x = mul.inputs[size_t(side)];
        return true;
      }
    return false;
  }

  // sqrt(2/pi) * (x + 0.044715 * x^3).
  bool match_tanh_arg(int s) {
    const Node* outer = inner(s, "Mul");
    if (!outer) return false;
    int r = -1;
    for (int side = 0; side < 2; ++side)
      if (constant_near(g_, outer->inputs[size_t(1 - side)], 0.7978845608028654))
        r = outer->inputs[size_t(side)];
    const Node* add = r >= 0 ? inner(r, "Add") : nullptr;
    if (!add) return false;
    for (int side = 0; side < 2; ++side) {
      int x = add->inputs[size_t(side)], q = add->inputs[size_t(1 - side)];
      size_t mark = m_.nodes.size();
      const Node* cubic = inner(q, "Mul");
      if (cubic) {
        for (int cs = 0; cs < 2; ++cs)
          if (constant_near(g_, cubic->inputs[size_t(1 - cs)], 0.044715) &&
              is_cube(cubic->inputs[size_t(cs)], x)) {
            m_.x = x;
            return true;
          }
      }
      m_.nodes.resize(mark);
    }
    return false;
  }

  // Whether `id` is x^3: Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x).
  bool is_cube(int id, int x) {
    if (const Node* p = producer_of(g_, id, "Pow")) {
      if (sole_reader(g_, uses_, id) < 0 || p->inputs[0] != x) return false;
      if (!constant_near(g_, p->inputs[1], 3.0) &&
          constant_ints(g_, p->inputs[1]) != std::optional(std::vector<int64_t>{3}))
        return false;
      m_.nodes.push_back(g_.values[size_t(id)].producer);
      return true;
    }
    const Node* m = inner(id, "Mul");
    if (!m) return false;
    int sq = other_input(*m, "Mul", x);
    if (sq < 0) return false;
    const Node* s = inner(sq, "Mul");
    return s && s->inputs[0] == x && s->inputs[1] == x;
  }

  // a = 1 + e, then x * a * 0.5 in any association.
  bool match_tail(int e) {
    int ai = sole_reader(g_, uses_, e);
    if (ai < 0) return false;
    const Node& add = g_.nodes[size_t(ai)];
    int one = other_input(add, "Add", e);
    if (one < 0 || !constant_near(g_, one, 1.0)) return false;
    m_.nodes.push_back(ai);
    int a = add.outputs[0];
    int mi = sole_reader(g_, uses_, a);
    if (mi < 0) return false;
    const Node& mul = g_.nodes[size_t(mi)];
    int o = other_input(mul, "Mul", a);
    if (o < 0) return false;
    if (o == m_.x || constant_near(g_, o, 0.5)) {  // (x*a)*0.5 or (a*0.5)*x
      int fi = sole_reader(g_, uses_, mul.outputs[0]);
      if (fi < 0) return false;
      int f = other_input(g_.nodes[size_t(fi)], "Mul", mul.outputs[0]);
      if (f < 0 || !(o == m_.x ? constant_near(g_, f, 0.5) : f == m_.x)) return false;
      m_.nodes.push_back(mi);
      m_.last = fi;
      return true;
    }
    const Node* half = inner(o, "Mul");  // (x*0.5)*a
    if (!half || other_input(*half, "Mul", m_.x) < 0 ||
        !constant_near(g_, other_input(*half, "Mul", m_.x), 0.5))
      return false;
    m_.last = mi;
    return true;
  }

  const Graph& g_;
  const std::vector<std::vector<int>>& uses_;
  Match m_;
};

}  // namespace

bool fuse_gelu(Graph& g, int* rewrites) {
  if (!kernels::Registry::global().find("", "Gelu", 20)) return false;
  auto uses = consumers(g);
  std::vector<char> dead(g.nodes.size(), 0);
  int fused = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    if (n.op_type != "Erf" && n.op_type != "Tanh") continue;
    GeluMatcher matcher(g, uses);
    auto m = matcher.match(int(ni));
    if (!m || m->x < 0) continue;
    const Value& xv = g.values[size_t(m->x)];
    if (!dtype_is_float(xv.dtype)) continue;
    bool clash = dead[size_t(m->last)] != 0;
    for (int k : m->nodes) clash |= dead[size_t(k)] != 0;
    if (clash) continue;
    Node& last = g.nodes[size_t(m->last)];
    last.op_type = "Gelu";
    last.inputs = {m->x};
    last.attrs.clear();
    if (n.op_type == "Tanh") set_string_attr(last, "approximate", "tanh");
    if (!set_schema(last, std::max<int>(20, int(g.opset("")))))
      throw Error(ErrorCode::kInternal, "Gelu-20 vanished");
    for (int k : m->nodes) dead[size_t(k)] = 1;
    fused++;
    uses = consumers(g);
  }
  return finish_pass(g, dead, fused, rewrites);
}

}  // namespace kiln::ir::passes
