// Dims, symbolic dim arithmetic and shapes.
#include "ir/shape.h"

namespace kiln::ir {

std::string Dim::to_string() const {
  if (is_const()) return std::to_string(value);
  if (is_symbol()) return symbol;
  return "?";
}

namespace {
// Wraps compound expressions in parentheses so "a+b" times "c" prints "(a+b)*c".
std::string operand(const Dim& d) {
  std::string s = d.to_string();
  if (s.find_first_of("+-*/") != std::string::npos) return "(" + s + ")";
  return s;
}
Dim symbolic(const Dim& a, const char* op, const Dim& b) {
  if (a.is_unknown() || b.is_unknown()) return Dim::unknown();
  return Dim::sym(operand(a) + op + operand(b));
}
}  // namespace

Dim dim_add(const Dim& a, const Dim& b) {
  if (a.is_const() && b.is_const()) return Dim::constant(a.value + b.value);
  if (a.is_const() && a.value == 0) return b;
  if (b.is_const() && b.value == 0) return a;
  return symbolic(a, "+", b);
}
Dim dim_sub(const Dim& a, const Dim& b) {
  if (a.is_const() && b.is_const()) return Dim::constant(a.value - b.value);
  if (b.is_const() && b.value == 0) return a;
  if (a.known_equal(b)) return Dim::constant(0);
  return symbolic(a, "-", b);
}
Dim dim_mul(const Dim& a, const Dim& b) {
  if (a.is_const() && b.is_const()) return Dim::constant(a.value * b.value);
  if ((a.is_const() && a.value == 0) || (b.is_const() && b.value == 0)) return Dim::constant(0);
  if (a.is_const() && a.value == 1) return b;
  if (b.is_const() && b.value == 1) return a;
  return symbolic(a, "*", b);
}
Dim dim_div(const Dim& a, const Dim& b) {
  if (a.is_const() && b.is_const() && b.value != 0) return Dim::constant(a.value / b.value);
  if (b.is_const() && b.value == 1) return a;
  if (a.known_equal(b) && !a.is_unknown()) return Dim::constant(1);
  return symbolic(a, "/", b);
}
Dim dim_ceil_div(const Dim& a, const Dim& b) {
  if (a.is_const() && b.is_const() && b.value != 0)
    return Dim::constant((a.value + b.value - 1) / b.value);
  if (b.is_const() && b.value == 1) return a;
  if (a.is_unknown() || b.is_unknown()) return Dim::unknown();
  return Dim::sym("ceil(" + a.to_string() + "/" + b.to_string() + ")");
}

Shape Shape::of(const std::vector<int64_t>& d) {
  std::vector<Dim> dims;
  dims.reserve(d.size());
  for (int64_t v : d) dims.push_back(Dim::constant(v));
  return Shape(std::move(dims));
}

bool Shape::is_concrete() const {
  if (!has_rank) return false;
  for (const auto& d : dims)
    if (!d.is_const()) return false;
  return true;
}

std::vector<int64_t> Shape::concrete() const {
  std::vector<int64_t> out;
  out.reserve(dims.size());
  for (const auto& d : dims) out.push_back(d.value);
  return out;
}

std::optional<int64_t> Shape::num_elements() const {
  if (!is_concrete()) return std::nullopt;
  int64_t n = 1;
  for (const auto& d : dims) n *= d.value;
  return n;
}

std::string Shape::to_string() const {
  if (!has_rank) return "(unranked)";
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + dims[i].to_string();
  return s + "]";
}

}  // namespace kiln::ir
