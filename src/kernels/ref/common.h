// Helpers shared by the reference kernels: dtype dispatch, compute types for 16-bit floats,
// broadcasting, axis normalization and shape-function building blocks.
//
// Broadcasting follows numpy (ONNX multidirectional broadcasting): shapes are right-aligned, a
// dim of 1 stretches. Negative axes count from the end and must lie in [-rank, rank).
#pragma once

#include <utility>

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/registry.h"

namespace kiln::kernels {

template <class T>
struct TypeTag {
  using type = T;
};

/// Arithmetic type for T: float for the 16-bit floats, T otherwise.
template <class T>
using Compute =
    std::conditional_t<std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>, float, T>;

template <class T>
inline Compute<T> to_compute(T v) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return float(v);
  } else {
    return v;
  }
}
template <class T, class C>
inline T from_compute(C v) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return T(float(v));
  } else {
    return static_cast<T>(v);
  }
}

template <class T>
constexpr bool kIsFloat =
    std::is_floating_point_v<T> || std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

/// Calls f(TypeTag<T>{}) for the C++ type of `t` among the float types (f16, bf16, f32, f64);
/// fails with kUnsupported otherwise.
template <class F>
decltype(auto) dispatch_float(DType t, const NodeAttrs& ctx, F&& f) {
  switch (t) {
    case DType::kF32:
      return f(TypeTag<float>{});
    case DType::kF64:
      return f(TypeTag<double>{});
    case DType::kF16:
      return f(TypeTag<Float16>{});
    case DType::kBF16:
      return f(TypeTag<BFloat16>{});
    default:
      ctx.unsupported(std::string("element type ") + dtype_name(t) + " is not supported");
  }
}

/// Integer types (signed and unsigned, not bool).
template <class F>
decltype(auto) dispatch_int(DType t, const NodeAttrs& ctx, F&& f) {
  switch (t) {
    case DType::kI8:
      return f(TypeTag<int8_t>{});
    case DType::kI16:
      return f(TypeTag<int16_t>{});
    case DType::kI32:
      return f(TypeTag<int32_t>{});
    case DType::kI64:
      return f(TypeTag<int64_t>{});
    case DType::kU8:
      return f(TypeTag<uint8_t>{});
    case DType::kU16:
      return f(TypeTag<uint16_t>{});
    case DType::kU32:
      return f(TypeTag<uint32_t>{});
    case DType::kU64:
      return f(TypeTag<uint64_t>{});
    default:
      ctx.unsupported(std::string("element type ") + dtype_name(t) + " is not supported");
  }
}

/// Float and integer types (not bool, not string).
template <class F>
decltype(auto) dispatch_numeric(DType t, const NodeAttrs& ctx, F&& f) {
  if (dtype_is_float(t)) return dispatch_float(t, ctx, f);
  return dispatch_int(t, ctx, f);
}

/// Every type including bool and string (for data movement ops).
template <class F>
decltype(auto) dispatch_all(DType t, const NodeAttrs& ctx, F&& f) {
  if (t == DType::kBool) return f(TypeTag<bool>{});
  if (t == DType::kString) return f(TypeTag<std::string>{});
  return dispatch_numeric(t, ctx, f);
}

/// Row-major strides of dims.
std::vector<int64_t> strides_of(const Dims& dims);

/// Numpy broadcast of two concrete shapes; fail()s when they do not broadcast.
Dims broadcast_dims(const NodeAttrs& ctx, const Dims& a, const Dims& b);
/// Strides of `in` as seen from a broadcast output of rank out_rank (0 where broadcast).
std::vector<int64_t> broadcast_strides(const Dims& in, size_t out_rank);

/// Walks the elements of an output shape, keeping the flat offsets of several broadcast inputs.
class BroadcastWalker {
 public:
  BroadcastWalker(const Dims& out, const std::vector<Dims>& inputs);
  int64_t size() const { return size_; }
  /// Offsets of each input for the current output element.
  const std::vector<int64_t>& offsets() const { return offsets_; }
  int64_t offset(size_t input) const { return offsets_[input]; }
  void next();

 private:
  Dims out_;
  std::vector<std::vector<int64_t>> strides_;
  std::vector<int64_t> index_;
  std::vector<int64_t> offsets_;
  int64_t size_;
};

/// Symbolic broadcast for shape functions; fail()s on two different constants (neither 1).
ir::Shape broadcast_shapes(const NodeAttrs& ctx, const std::vector<ir::Shape>& shapes);

/// Normalizes `axis` into [0, rank); fail()s when out of range.
int normalize_axis(const NodeAttrs& ctx, int64_t axis, int rank);
std::vector<int> normalize_axes(const NodeAttrs& ctx, const std::vector<int64_t>& axes, int rank);

/// Converts concrete dims to an IR shape.
ir::Shape to_shape(const Dims& d);

/// Shape function for ops whose single output has input 0's dtype and shape.
void infer_same_as_input0(InferContext& ctx);

/// The elements of a float tensor (f16, bf16, f32, f64) as doubles.
std::vector<double> to_doubles(const NodeAttrs& ctx, const Tensor& t);
/// Stores doubles into a float or integer tensor of v.size() elements (integers truncate, as
/// numpy's astype does).
void store_doubles(const NodeAttrs& ctx, const std::vector<double>& v, const Tensor& t);

/// Copies elements between tensors of the same dtype (any type, strings too).
void copy_elements(const Tensor& src, int64_t src_offset, const Tensor& dst, int64_t dst_offset,
                   int64_t count);

/// Slice semantics for one dim of `dim` elements: the effective start (after negative wrap and
/// clamping) and the number of elements taken with `step` (non-zero).
std::pair<int64_t, int64_t> slice_range(int64_t dim, int64_t start, int64_t end, int64_t step);

}  // namespace kiln::kernels
