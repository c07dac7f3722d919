// The whole-kernel validator of the kernel IR (kir.h: validate()).
#include <map>
#include <set>
#include <string>

#include "jit/kir.h"
#include "jit/kir_internal.h"

namespace kiln::jit {

using detail::brief;
using detail::check_i64;
using detail::fail;
using detail::is_valid_type;

namespace {

class Validator {
 public:
  explicit Validator(const Kernel& k) : k_(k) {}

  void run() {
    if (k_.num_params < 0) fail("negative num_params " + std::to_string(k_.num_params));
    for (size_t b = 0; b < k_.buffers.size(); ++b) check_buffer(int(b));
    if (!k_.body) fail("kernel without a body");
    stmt(k_.body, /*top_level=*/true);
  }

 private:
  void check_buffer(int b) {
    const BufferDecl& d = k_.buffers[size_t(b)];
    std::string where = "buffer b" + std::to_string(b);
    if (!is_valid_type(d.type)) fail(where + ": invalid type");
    if (d.dims.size() != d.strides.size()) {
      fail(where + ": " + std::to_string(d.dims.size()) + " dims but " +
           std::to_string(d.strides.size()) + " strides");
    }
    if (d.align < 1 || (d.align & (d.align - 1)) != 0) {
      fail(where + ": align " + std::to_string(d.align) + " is not a power of two");
    }
    for (size_t i = 0; i < d.dims.size(); ++i) {
      shape_expr(d.dims[i], where + " dim " + std::to_string(i));
      shape_expr(d.strides[i], where + " stride " + std::to_string(i));
    }
  }

  /// Dims and strides: i64 expressions over immediates and params only.
  void shape_expr(const Expr& e, const std::string& what) {
    check_i64(e, what);
    shape_operand(e, what);
  }
  void shape_operand(const Expr& e, const std::string& what) {
    if (!e) fail(what + " contains a null expression");
    switch (e->kind) {
      case ExprKind::kVar:
      case ExprKind::kLoad:
      case ExprKind::kReduce:
        fail(what + " may use only immediates and params, not " + brief(e));
      case ExprKind::kParam:
        check_param(e);
        break;
      default:
        break;
    }
    for (const Expr& a : e->args) shape_operand(a, what);
  }

  void check_param(const Expr& e) {
    if (e->ival >= k_.num_params) {
      fail("param p" + std::to_string(e->ival) + " used but the kernel has " +
           std::to_string(k_.num_params) + " params");
    }
  }

  const BufferDecl& buffer(int b, const char* what) {
    if (b < 0 || size_t(b) >= k_.buffers.size()) {
      fail(std::string(what) + " b" + std::to_string(b) + ": the kernel has " +
           std::to_string(k_.buffers.size()) + " buffers");
    }
    return k_.buffers[size_t(b)];
  }

  void bind(const std::string& name, ScalarType t) {
    if (!scope_.emplace(name, Bound{t}).second) {
      fail("variable '" + name + "' is bound again inside its own scope");
    }
  }
  void unbind(const std::string& name) { scope_.erase(name); }

  void expr(const Expr& e) {
    if (!e) fail("null expression");
    switch (e->kind) {
      case ExprKind::kIntImm:
      case ExprKind::kFloatImm:
        return;
      case ExprKind::kVar: {
        auto it = scope_.find(e->name);
        if (it == scope_.end()) fail("variable '" + e->name + "' used out of scope");
        if (it->second.type != e->type) {
          fail("variable '" + e->name + "' is " + type_name(it->second.type) + " but used as " +
               type_name(e->type));
        }
        return;
      }
      case ExprKind::kParam:
        check_param(e);
        return;
      case ExprKind::kLoad: {
        const BufferDecl& d = buffer(int(e->ival), "load from");
        if (d.type != e->type) {
          fail("load of b" + std::to_string(e->ival) + " as " + type_name(e->type) +
               " but the buffer is " + type_name(d.type));
        }
        check_rank(d, e->args.size(), int(e->ival), "load from");
        for (const Expr& a : e->args) {
          check_i64(a, "index of b" + std::to_string(e->ival));
          expr(a);
        }
        return;
      }
      case ExprKind::kReduce: {
        expr(e->args[0]);
        for (const Expr& x : e->reduce_extents) expr(x);
        for (const std::string& v : e->reduce_vars) bind(v, ScalarType::kI64);
        expr(e->args[1]);
        for (const std::string& v : e->reduce_vars) unbind(v);
        return;
      }
      default:
        for (const Expr& a : e->args) expr(a);
        return;
    }
  }

  void check_rank(const BufferDecl& d, size_t n, int b, const char* what) {
    if (n != d.dims.size()) {
      fail(std::string(what) + " b" + std::to_string(b) + " with " + std::to_string(n) +
           " indices, but its rank is " + std::to_string(d.dims.size()));
    }
  }

  /// top_level: not inside a For or Let (only Blocks and Ifs), where parallel
  /// loops may go.
  void stmt(const Stmt& s, bool top_level) {
    if (!s) fail("null statement");
    switch (s->kind) {
      case StmtKind::kFor:
        if (s->loop == LoopKind::kParallel && !top_level) {
          fail("parallel loop '" + s->var + "' is nested inside a loop or let");
        }
        check_i64(s->extent, "extent of loop '" + s->var + "'");
        expr(s->extent);
        bind(s->var, ScalarType::kI64);
        stmt(s->body.at(0), false);
        unbind(s->var);
        return;
      case StmtKind::kStore: {
        const BufferDecl& d = buffer(s->buffer, "store to");
        if (!d.output) fail("store to b" + std::to_string(s->buffer) + ", which is not an output");
        check_rank(d, s->indices.size(), s->buffer, "store to");
        for (const Expr& a : s->indices) {
          check_i64(a, "index of b" + std::to_string(s->buffer));
          expr(a);
        }
        expr(s->value);
        if (s->value->type != d.type) {
          fail("store of a " + std::string(type_name(s->value->type)) + " value to b" +
               std::to_string(s->buffer) + " of type " + type_name(d.type));
        }
        return;
      }
      case StmtKind::kLet:
        expr(s->value);
        bind(s->var, s->value->type);
        stmt(s->body.at(0), false);
        unbind(s->var);
        return;
      case StmtKind::kBlock:
        for (const Stmt& b : s->body) stmt(b, top_level);
        return;
      case StmtKind::kIf:
        if (!s->value || s->value->type != ScalarType::kBool) fail("if condition is not bool");
        expr(s->value);
        for (const Stmt& b : s->body) stmt(b, top_level);
        return;
    }
    fail("invalid statement kind");
  }

  // A local wrapper type, so the map's instantiation stays internal to this file (a map of the
  // enum itself would be exported from libkiln.so as a std:: template instance).
  struct Bound {
    ScalarType type;
  };
  const Kernel& k_;
  std::map<std::string, Bound> scope_;
};

}  // namespace

void validate(const Kernel& k) { Validator(k).run(); }

}  // namespace kiln::jit
