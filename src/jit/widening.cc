// The widening legality check (see widening.h): one walk over the loop body tracking which
// variables vary across lanes and which indices each buffer is loaded and stored at.
#include "jit/widening.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace kiln::jit {

namespace {

class WidenCheck {
 public:
  explicit WidenCheck(const std::string& var) { vars_.push_back({var, true}); }

  bool run(const Stmt& s) {
    stmt(s);
    for (const auto& [buf, idx] : stores_) {
      // Read-modify-write of one buffer: one element per lane, the same one it loads, and distinct
      // lanes touch distinct elements (an index linear in the loop variable).
      auto it = loads_.find(buf);
      if (it == loads_.end()) continue;
      if (idx.size() != 1 || it->second != idx || !rmw_linear_[buf]) return false;
    }
    return ok_;
  }

  /// The widest element (bits) the body loads or stores; 32 if it accesses no memory.
  int max_bits() const { return max_bits_ ? max_bits_ : 32; }

 private:
  enum class Lin { kConst, kLinear, kOther };

  bool varies(const Expr& e) {
    if (!e) return false;
    if (e->kind == ExprKind::kVar) {
      for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
        if (it->first == e->name) return it->second;
      return false;
    }
    if (e->kind == ExprKind::kReduce) {
      if (varies(e->args[0])) return true;
      for (const auto& v : e->reduce_vars) vars_.push_back({v, false});
      bool r = varies(e->args[1]);
      vars_.resize(vars_.size() - e->reduce_vars.size());
      return r;
    }
    for (const Expr& a : e->args)
      if (varies(a)) return true;
    return false;
  }

  /// How an index depends on the widened variable (only the loop variable itself is linear).
  Lin linearity(const Expr& e) {
    if (!varies(e)) return Lin::kConst;
    if (e->kind == ExprKind::kVar)
      return vars_.front().first == e->name ? Lin::kLinear : Lin::kOther;
    if (e->kind == ExprKind::kBinary) {
      Lin a = linearity(e->args[0]), b = linearity(e->args[1]);
      switch (BinaryOp(e->op)) {
        case BinaryOp::kAdd:
        case BinaryOp::kSub:
          return std::max(a, b);
        case BinaryOp::kMul:
          if (a == Lin::kConst || b == Lin::kConst) return std::max(a, b);
          return Lin::kOther;
        default:
          return Lin::kOther;
      }
    }
    return Lin::kOther;
  }

  std::string key(const std::vector<Expr>& indices) {
    std::string k;
    for (const Expr& e : indices) k += print(e) + ";";
    return k;
  }

  void note_bits(ScalarType t) { max_bits_ = std::max(max_bits_, type_bytes(t) * 8); }

  void expr(const Expr& e) {
    if (!e || !ok_) return;
    if (e->kind == ExprKind::kLoad) {
      note_bits(e->type);
      loads_[int(e->ival)].insert(key(e->args));
    }
    if (e->kind == ExprKind::kReduce) {
      expr(e->args[0]);
      for (size_t i = 0; i < e->reduce_vars.size(); ++i) {
        if (varies(e->reduce_extents[i])) ok_ = false;
        expr(e->reduce_extents[i]);
        vars_.push_back({e->reduce_vars[i], false});
      }
      expr(e->args[1]);
      vars_.resize(vars_.size() - e->reduce_vars.size());
      return;
    }
    for (const Expr& a : e->args) expr(a);
  }

  void stmt(const Stmt& s) {
    if (!s || !ok_) return;
    switch (s->kind) {
      case StmtKind::kFor:
        if (varies(s->extent)) ok_ = false;
        expr(s->extent);
        vars_.push_back({s->var, false});
        stmt(s->body[0]);
        vars_.pop_back();
        break;
      case StmtKind::kStore: {
        note_bits(s->value->type);
        expr(s->value);
        bool any = false, linear = false, other = false;
        for (const Expr& i : s->indices) {
          expr(i);
          Lin l = linearity(i);
          any = any || l != Lin::kConst;
          linear = linear || l == Lin::kLinear;
          other = other || l == Lin::kOther;
        }
        // A store every lane makes to the same element is a loop-carried dependence.
        if (!any) ok_ = false;
        stores_[s->buffer].insert(key(s->indices));
        bool lin = linear && !other;
        auto [it, fresh] = rmw_linear_.insert({s->buffer, lin});
        if (!fresh) it->second = it->second && lin;
        break;
      }
      case StmtKind::kLet:
        expr(s->value);
        vars_.push_back({s->var, varies(s->value)});
        stmt(s->body[0]);
        vars_.pop_back();
        break;
      case StmtKind::kBlock:
        for (const Stmt& c : s->body) stmt(c);
        break;
      case StmtKind::kIf:
        expr(s->value);
        for (const Stmt& c : s->body) stmt(c);
        break;
    }
  }

  std::vector<std::pair<std::string, bool>> vars_;  // name, varies; [0] is the loop variable
  std::map<int, std::set<std::string>> loads_, stores_;
  std::map<int, bool> rmw_linear_;
  int max_bits_ = 0;
  bool ok_ = true;
};

}  // namespace

Widening check_widening(const std::string& var, const Stmt& body) {
  WidenCheck check(var);
  Widening w;
  w.ok = check.run(body);
  w.max_bits = check.max_bits();
  return w;
}

}  // namespace kiln::jit
