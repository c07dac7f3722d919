// The exact printer of the kernel IR and its structural hash (kir.h).
#include <cmath>
#include <cstdio>
#include <string>

#include "jit/kir.h"

namespace kiln::jit {

namespace {

std::string format_float(double v, ScalarType t) {
  std::string s;
  if (std::isnan(v)) {
    s = "nan";
  } else if (std::isinf(v)) {
    s = v < 0 ? "-inf" : "inf";
  } else {
    char buf[64];
    // 9 significant digits round-trip any float, 17 any double.
    if (t == ScalarType::kF32) {
      std::snprintf(buf, sizeof buf, "%.9g", double(float(v)));
    } else {
      std::snprintf(buf, sizeof buf, "%.17g", v);
    }
    s = buf;
  }
  return s + type_name(t);
}

std::string format_int(int64_t v, ScalarType t) {
  if (t == ScalarType::kBool) return v ? "true" : "false";
  std::string s = t == ScalarType::kU64 ? std::to_string(uint64_t(v)) : std::to_string(v);
  if (t != ScalarType::kI64) s += type_name(t);  // i64, the index type, is unmarked
  return s;
}

void print_list(std::string& out, const std::vector<Expr>& es) {
  for (size_t i = 0; i < es.size(); ++i) {
    if (i) out += ", ";
    out += print(es[i]);
  }
}

void print_expr(std::string& out, const Expr& e) {
  if (!e) {
    out += "<null>";
    return;
  }
  switch (e->kind) {
    case ExprKind::kIntImm:
      out += format_int(e->ival, e->type);
      return;
    case ExprKind::kFloatImm:
      out += format_float(e->fval, e->type);
      return;
    case ExprKind::kVar:
      out += e->name;
      return;
    case ExprKind::kParam:
      out += "p" + std::to_string(e->ival);
      return;
    case ExprKind::kUnary:
      out += unary_name(UnaryOp(e->op));
      out += "(";
      print_expr(out, e->args.at(0));
      out += ")";
      return;
    case ExprKind::kBinary: {
      BinaryOp op = BinaryOp(e->op);
      if (op == BinaryOp::kMin || op == BinaryOp::kMax || op == BinaryOp::kPow) {
        out += binary_name(op);
        out += "(";
        print_expr(out, e->args.at(0));
        out += ", ";
        print_expr(out, e->args.at(1));
        out += ")";
      } else {
        out += "(";
        print_expr(out, e->args.at(0));
        out += " ";
        out += binary_name(op);
        out += " ";
        print_expr(out, e->args.at(1));
        out += ")";
      }
      return;
    }
    case ExprKind::kCast:
      out += type_name(e->type);
      out += "(";
      print_expr(out, e->args.at(0));
      out += ")";
      return;
    case ExprKind::kSelect:
      out += "select(";
      print_list(out, e->args);
      out += ")";
      return;
    case ExprKind::kLoad:
      out += "b" + std::to_string(e->ival) + "[";
      print_list(out, e->args);
      out += "]";
      return;
    case ExprKind::kReduce:
      out += reduce_name(ReduceOp(e->op));
      out += "(";
      for (size_t i = 0; i < e->reduce_vars.size(); ++i) {
        if (i) out += ", ";
        out += e->reduce_vars[i] + " in 0..";
        print_expr(out, e->reduce_extents.at(i));
      }
      out += "; init ";
      print_expr(out, e->args.at(0));
      out += "; ";
      print_expr(out, e->args.at(1));
      out += ")";
      return;
  }
  out += "<invalid expr>";
}

void print_stmt(std::string& out, const Stmt& s, int indent) {
  std::string pad(size_t(2 * indent), ' ');
  if (!s) {
    out += pad + "<null>\n";
    return;
  }
  switch (s->kind) {
    case StmtKind::kFor: {
      out += pad;
      std::string factor = s->factor ? std::to_string(s->factor) : "auto";
      switch (s->loop) {
        case LoopKind::kSerial:
          if (s->factor) out += "serial(" + factor + ") ";
          break;
        case LoopKind::kParallel:
          out += "parallel(grain " + factor + ") ";
          break;
        case LoopKind::kVectorized:
          out += "vectorized(" + factor + ") ";
          break;
        case LoopKind::kUnrolled:
          out += "unrolled(" + factor + ") ";
          break;
      }
      out += "for " + s->var + " in 0..";
      print_expr(out, s->extent);
      out += " {\n";
      for (const Stmt& b : s->body) print_stmt(out, b, indent + 1);
      out += pad + "}\n";
      return;
    }
    case StmtKind::kStore:
      out += pad + "b" + std::to_string(s->buffer) + "[";
      print_list(out, s->indices);
      out += "] = ";
      print_expr(out, s->value);
      out += "\n";
      return;
    case StmtKind::kLet:
      out += pad + "let " + s->var + ": " + (s->value ? type_name(s->value->type) : "?") + " = ";
      print_expr(out, s->value);
      out += " {\n";
      for (const Stmt& b : s->body) print_stmt(out, b, indent + 1);
      out += pad + "}\n";
      return;
    case StmtKind::kBlock:
      for (const Stmt& b : s->body) print_stmt(out, b, indent);
      return;
    case StmtKind::kIf:
      out += pad + "if ";
      print_expr(out, s->value);
      out += " {\n";
      if (!s->body.empty()) print_stmt(out, s->body[0], indent + 1);
      if (s->body.size() > 1) {
        out += pad + "} else {\n";
        print_stmt(out, s->body[1], indent + 1);
      }
      out += pad + "}\n";
      return;
  }
  out += pad + "<invalid stmt>\n";
}

/// Everything but the label line: what the structural hash covers.
std::string print_unlabeled(const Kernel& k) {
  std::string out = "kernel(";
  for (size_t b = 0; b < k.buffers.size(); ++b) {
    const BufferDecl& d = k.buffers[b];
    if (b) out += ", ";
    out += "b" + std::to_string(b) + (d.output ? " out: " : ": ") + type_name(d.type) + "[";
    print_list(out, d.dims);
    out += "] strides [";
    print_list(out, d.strides);
    out += "] align " + std::to_string(d.align);
  }
  out += "; params " + std::to_string(k.num_params) + ") {\n";
  print_stmt(out, k.body, 1);
  out += "}\n";
  return out;
}

/// A second, independent 64-bit hash: multiply-rotate over 8-byte words, then a
/// murmur3 finalizer.
uint64_t mix_hash(const std::string& s) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ s.size();
  for (size_t i = 0; i < s.size(); i += 8) {
    uint64_t w = 0;
    for (size_t j = 0; j < 8 && i + j < s.size(); ++j) w |= uint64_t(uint8_t(s[i + j])) << (8 * j);
    w *= 0x87c37b91114253d5ull;
    w = (w << 31) | (w >> 33);
    w *= 0x4cf5ad432745937full;
    h ^= w;
    h = ((h << 27) | (h >> 37)) * 5 + 0x52dce729;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace

std::string print(const Expr& e) {
  std::string out;
  print_expr(out, e);
  return out;
}

std::string print(const Stmt& s, int indent) {
  std::string out;
  print_stmt(out, s, indent);
  return out;
}

std::string print(const Kernel& k) {
  std::string label = k.label;
  for (char& c : label) {
    if (c == '\n' || c == '\r') c = ' ';  // the label stays one comment line
  }
  return "// " + label + "\n" + print_unlabeled(k);
}

uint64_t fnv1a64(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string structural_hash(const Kernel& k) {
  std::string text = print_unlabeled(k);
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", (unsigned long long)fnv1a64(text),
                (unsigned long long)mix_hash(text));
  return buf;
}

}  // namespace kiln::jit
