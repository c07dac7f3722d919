// Symbolic shapes of the graph IR.
//
// A Dim is a constant (non-negative in shapes; any int64 inside a shape-like int value), a named
// symbol ("batch", or an expression such as "seq*4" built by the arithmetic helpers below), or
// unknown. Two dims are known equal when both are the same constant or the same symbol; a symbol
// and a constant are never judged unequal at load time (the symbol may take that value at run
// time). A Shape either has a known rank or not.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::ir {

struct Dim {
  int64_t value = 0;   // meaningful when is_const() (may be negative inside int values)
  std::string symbol;  // non-empty: symbolic
  bool known = false;  // a constant

  static Dim constant(int64_t v) { return Dim{v, {}, true}; }
  static Dim sym(std::string name) { return Dim{0, std::move(name), false}; }
  static Dim unknown() { return Dim{}; }

  bool is_const() const { return known; }
  bool is_symbol() const { return !known && !symbol.empty(); }
  bool is_unknown() const { return !known && symbol.empty(); }
  /// Same constant or same symbol.
  bool known_equal(const Dim& o) const {
    return (is_const() && o.is_const() && value == o.value) ||
           (is_symbol() && o.is_symbol() && symbol == o.symbol);
  }
  /// Both constants and different.
  bool known_different(const Dim& o) const {
    return is_const() && o.is_const() && value != o.value;
  }
  std::string to_string() const;
  bool operator==(const Dim& o) const {
    return known == o.known && value == o.value && symbol == o.symbol;
  }
};

/// Arithmetic on dims: exact on constants, a symbolic expression otherwise, unknown when an
/// operand is unknown.
Dim dim_add(const Dim& a, const Dim& b);
Dim dim_sub(const Dim& a, const Dim& b);
Dim dim_mul(const Dim& a, const Dim& b);
Dim dim_div(const Dim& a, const Dim& b);  // floor division of non-negative dims
Dim dim_ceil_div(const Dim& a, const Dim& b);

struct Shape {
  bool has_rank = false;
  std::vector<Dim> dims;

  Shape() = default;
  explicit Shape(std::vector<Dim> d) : has_rank(true), dims(std::move(d)) {}
  static Shape unranked() { return Shape(); }
  static Shape of(const std::vector<int64_t>& d);

  int rank() const { return int(dims.size()); }
  /// All dims are constants (and the rank is known).
  bool is_concrete() const;
  /// The constant dims; only valid when is_concrete().
  std::vector<int64_t> concrete() const;
  /// Product of the dims when all are constant.
  std::optional<int64_t> num_elements() const;
  /// "[batch,3,224,224]" or "[?]"-style for unknowns; "(unranked)" without a rank.
  std::string to_string() const;
  bool operator==(const Shape& o) const { return has_rank == o.has_rank && dims == o.dims; }
};

}  // namespace kiln::ir
