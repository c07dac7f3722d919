// Reductions and ops that work along one axis: Reduce* (Sum, Mean, Max, Min, Prod, L1, L2,
// LogSum, LogSumExp, SumSquare), ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax, CumSum/CumProd, TopK.
//
// Reductions accumulate in double for the float types and in 64-bit integers for the integer
// types, then convert once to the element type, so the reference is at least as accurate as
// numpy's float32 arithmetic. Empty reductions give the identity of the operation as ONNX
// (opset 18) specifies: 0 for sums, 1 for products, -inf / the lowest integer for max, +inf / the
// greatest integer for min, log(0) = -inf for LogSum and LogSumExp, NaN for a float mean.
// Max and min propagate NaN as numpy does. Axes come from the `axes` attribute before opset 13
// (ReduceSum) / 18 (the others) and from the optional second input since.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <type_traits>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

// ---------------------------------------------------------------------------------------------
// Reduce*

enum class Reduce { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

Reduce reduce_kind(const NodeAttrs& n) {
  static const std::map<std::string, Reduce> kKinds = {{"ReduceSum", Reduce::kSum},
                                                       {"ReduceMean", Reduce::kMean},
                                                       {"ReduceMax", Reduce::kMax},
                                                       {"ReduceMin", Reduce::kMin},
                                                       {"ReduceProd", Reduce::kProd},
                                                       {"ReduceL1", Reduce::kL1},
                                                       {"ReduceL2", Reduce::kL2},
                                                       {"ReduceLogSum", Reduce::kLogSum},
                                                       {"ReduceLogSumExp", Reduce::kLogSumExp},
                                                       {"ReduceSumSquare", Reduce::kSumSquare}};
  auto it = kKinds.find(n.op_type());
  if (it == kKinds.end()) n.fail("is not a reduction");
  return it->second;
}

// The opset from which the axes are the optional second input rather than an attribute.
bool axes_from_input(const NodeAttrs& n) {
  return n.opset() >= (n.op_type() == "ReduceSum" ? 13 : 18);
}

// Bool is allowed for ReduceMax/ReduceMin (opset 20); every other op takes numeric types.
void check_reduce_dtype(const NodeAttrs& n, DType t) {
  Reduce k = reduce_kind(n);
  if (t == DType::kBool && (k == Reduce::kMax || k == Reduce::kMin)) return;
  if (!dtype_is_float(t) && !dtype_is_int(t))
    n.unsupported(std::string("element type ") + dtype_name(t) + " is not supported");
}

// reduced[d]: whether axis d is reduced; an empty axis list reduces every axis.
std::vector<bool> reduced_mask(const NodeAttrs& n, const std::vector<int64_t>& axes, int rank) {
  std::vector<int> norm = normalize_axes(n, axes, rank);
  std::vector<bool> mask(size_t(rank), axes.empty());
  if (rank == 0) return mask;  // a scalar: axis 0 / -1 names the scalar itself
  for (int a : norm) mask[size_t(a)] = true;
  return mask;
}

void infer_reduce(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  check_reduce_dtype(ctx, dt);
  const ir::Shape& in = ctx.input_shape(0);
  bool keep = ctx.attr_int("keepdims", 1) != 0;
  bool from_input = axes_from_input(ctx);
  bool noop_empty = from_input && ctx.attr_int("noop_with_empty_axes", 0) != 0;
  std::optional<std::vector<int64_t>> axes;
  if (!from_input) {
    axes = ctx.attr_ints("axes");
  } else if (!ctx.has_input(1)) {
    axes = std::vector<int64_t>{};
  } else {
    axes = ctx.input_ints(1);
  }
  if (!in.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  int rank = in.rank();
  if (!axes) {
    // The axes are only known at run time: the rank is known when keepdims or when the number
    // of axes is.
    std::vector<ir::Dim> dims;
    if (keep) {
      for (const auto& d : in.dims)
        dims.push_back(d.is_const() && d.value == 1 ? d : ir::Dim::unknown());
      ctx.set_output(0, dt, ir::Shape(dims));
      return;
    }
    const ir::Shape& as = ctx.input_shape(1);
    if (as.has_rank && as.rank() == 1 && as.dims[0].is_const()) {
      int64_t n = as.dims[0].value;
      if (n == 0) {
        ctx.set_output(0, dt, noop_empty ? in : ir::Shape(std::vector<ir::Dim>{}));
        return;
      }
      if (n > rank) ctx.fail("has more axes than the input's rank " + std::to_string(rank));
      ctx.set_output(0, dt, ir::Shape(std::vector<ir::Dim>(size_t(rank - n), ir::Dim::unknown())));
      return;
    }
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  if (axes->empty() && noop_empty) {
    ctx.set_output(0, dt, in);
    return;
  }
  std::vector<bool> mask = reduced_mask(ctx, *axes, rank);
  std::vector<ir::Dim> dims;
  for (int d = 0; d < rank; ++d) {
    if (!mask[size_t(d)]) {
      dims.push_back(in.dims[size_t(d)]);
    } else if (keep) {
      dims.push_back(ir::Dim::constant(1));
    }
  }
  ctx.set_output(0, dt, ir::Shape(dims));
}

// Accumulator of element type T: double for floats, 64-bit integers for integers.
template <class T>
using Acc = std::conditional_t<kIsFloat<T>, double,
                               std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

template <class T, Reduce K>
Acc<T> reduce_init() {
  using A = Acc<T>;
  if constexpr (K == Reduce::kProd) return A(1);
  if constexpr (K == Reduce::kMax) {
    if constexpr (kIsFloat<T>)
      return -std::numeric_limits<double>::infinity();
    else
      return A(std::numeric_limits<T>::lowest());
  }
  if constexpr (K == Reduce::kMin) {
    if constexpr (kIsFloat<T>)
      return std::numeric_limits<double>::infinity();
    else
      return A(std::numeric_limits<T>::max());
  }
  return A(0);
}

// Folds every element of x into acc[output offset]; kd is x's dims with the reduced axes set to
// 1, so a broadcast walk gives each element's output offset. For LogSumExp, `shift` holds the
// per-output maximum (subtracted before exp for stability).
// Integer accumulation wraps (two's complement, as numpy and ONNX Runtime do) instead of
// overflowing, which would be undefined behaviour on signed types.
template <class A>
A wrap_add(A a, A b) {
  if constexpr (std::is_integral_v<A>)
    return A(std::make_unsigned_t<A>(a) + std::make_unsigned_t<A>(b));
  else
    return a + b;
}
template <class A>
A wrap_mul(A a, A b) {
  if constexpr (std::is_integral_v<A>)
    return A(std::make_unsigned_t<A>(a) * std::make_unsigned_t<A>(b));
  else
    return a * b;
}

template <class T, Reduce K>
void accumulate(const Tensor& x, const Dims& kd, std::vector<Acc<T>>& acc,
                const std::vector<double>* shift = nullptr) {
  const T* px = x.data<T>();
  BroadcastWalker w(x.dims(), {kd});
  for (int64_t i = 0; i < x.numel(); ++i, w.next()) {
    Acc<T> v = Acc<T>(to_compute(px[i]));
    Acc<T>& a = acc[size_t(w.offset(0))];
    if constexpr (K == Reduce::kSum || K == Reduce::kMean) {
      a = wrap_add(a, v);
    } else if constexpr (K == Reduce::kSumSquare || K == Reduce::kL2) {
      a = wrap_add(a, wrap_mul(v, v));
    } else if constexpr (K == Reduce::kProd) {
      a = wrap_mul(a, v);
    } else if constexpr (K == Reduce::kL1) {
      if constexpr (std::is_unsigned_v<Acc<T>>)
        a = wrap_add(a, v);
      else
        a = wrap_add(a, v < 0 ? wrap_mul(v, Acc<T>(-1)) : v);
    } else if constexpr (K == Reduce::kMax || K == Reduce::kMin) {
      if constexpr (kIsFloat<T>) {
        if (std::isnan(a)) continue;
        if (std::isnan(v)) {
          a = v;
          continue;
        }
      }
      if (K == Reduce::kMax ? v > a : v < a) a = v;
    } else if constexpr (K == Reduce::kLogSum) {
      a += v;
    } else if constexpr (K == Reduce::kLogSumExp) {
      double m = (*shift)[size_t(w.offset(0))];
      a += Acc<T>(std::exp(double(v) - m));
    }
  }
}

template <class T, Reduce K>
void reduce_typed(const Tensor& x, const Dims& kd, int64_t count, Tensor& y) {
  T* py = y.data<T>();
  size_t n = size_t(y.numel());
  if constexpr (K == Reduce::kLogSumExp) {
    // Two passes: the maximum, then log(sum(exp(x - max))) + max; computed in double for every
    // element type (the result of exp is not an integer anyway).
    std::vector<Acc<double>> mx(n, reduce_init<double, Reduce::kMax>());
    Tensor xd(DType::kF64, x.dims());
    double* pxd = xd.data<double>();
    const T* px = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) pxd[i] = double(to_compute(px[i]));
    accumulate<double, Reduce::kMax>(xd, kd, mx);
    std::vector<double> shift(n);
    for (size_t j = 0; j < n; ++j) shift[j] = std::isfinite(mx[j]) ? mx[j] : 0.0;
    std::vector<double> acc(n, 0.0);
    accumulate<double, Reduce::kLogSumExp>(xd, kd, acc, &shift);
    for (size_t j = 0; j < n; ++j) {
      // An all -inf (or empty) slice gives log(0) = -inf; +inf and NaN propagate through max.
      double r = std::isfinite(mx[j]) ? std::log(acc[j]) + shift[j]
                                      : (std::isnan(mx[j]) || mx[j] > 0 ? mx[j] : std::log(0.0));
      py[j] = from_compute<T>(Compute<T>(r));
    }
    return;
  } else {
    std::vector<Acc<T>> acc(n, reduce_init<T, K>());
    accumulate<T, K>(x, kd, acc);
    for (size_t j = 0; j < n; ++j) {
      Acc<T> a = acc[j];
      if constexpr (K == Reduce::kMean) {
        if constexpr (kIsFloat<T>) {
          py[j] = from_compute<T>(Compute<T>(a / double(count)));  // 0/0 = NaN when empty
        } else {
          py[j] = count == 0 ? T(0) : T(a / Acc<T>(count));
        }
      } else if constexpr (K == Reduce::kL2) {
        py[j] = from_compute<T>(Compute<T>(std::sqrt(double(a))));
      } else if constexpr (K == Reduce::kLogSum) {
        py[j] = from_compute<T>(Compute<T>(std::log(double(a))));
      } else {
        py[j] = from_compute<T>(Compute<T>(a));
      }
    }
  }
}

template <class T>
void reduce_dispatch(Reduce k, const Tensor& x, const Dims& kd, int64_t count, Tensor& y) {
  switch (k) {
    case Reduce::kSum:
      return reduce_typed<T, Reduce::kSum>(x, kd, count, y);
    case Reduce::kMean:
      return reduce_typed<T, Reduce::kMean>(x, kd, count, y);
    case Reduce::kMax:
      return reduce_typed<T, Reduce::kMax>(x, kd, count, y);
    case Reduce::kMin:
      return reduce_typed<T, Reduce::kMin>(x, kd, count, y);
    case Reduce::kProd:
      return reduce_typed<T, Reduce::kProd>(x, kd, count, y);
    case Reduce::kL1:
      return reduce_typed<T, Reduce::kL1>(x, kd, count, y);
    case Reduce::kL2:
      return reduce_typed<T, Reduce::kL2>(x, kd, count, y);
    case Reduce::kLogSum:
      return reduce_typed<T, Reduce::kLogSum>(x, kd, count, y);
    case Reduce::kLogSumExp:
      return reduce_typed<T, Reduce::kLogSumExp>(x, kd, count, y);
    case Reduce::kSumSquare:
      return reduce_typed<T, Reduce::kSumSquare>(x, kd, count, y);
  }
}

// ReduceMax over bool is "any", ReduceMin is "all".
void reduce_bool(Reduce k, const Tensor& x, const Dims& kd, Tensor& y) {
  bool init = k == Reduce::kMin;
  bool* py = y.data<bool>();
  for (int64_t j = 0; j < y.numel(); ++j) py[j] = init;
  const bool* px = x.data<bool>();
  BroadcastWalker w(x.dims(), {kd});
  for (int64_t i = 0; i < x.numel(); ++i, w.next()) {
    bool& a = py[w.offset(0)];
    a = k == Reduce::kMax ? (a || px[i]) : (a && px[i]);
  }
}

std::vector<int64_t> tensor_ints(const Tensor& t) {
  std::vector<int64_t> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.element_as_int(i);
  return v;
}

void run_reduce(KernelContext& ctx) {
  Reduce k = reduce_kind(ctx);
  const Tensor& x = ctx.input(0);
  check_reduce_dtype(ctx, x.dtype());
  bool keep = ctx.attr_int("keepdims", 1) != 0;
  bool from_input = axes_from_input(ctx);
  std::vector<int64_t> axes;
  if (!from_input) {
    axes = ctx.attr_ints("axes");
  } else if (ctx.has_input(1)) {
    if (!dtype_is_int(ctx.input(1).dtype())) ctx.fail("axes must be an integer tensor");
    axes = tensor_ints(ctx.input(1));
  }
  if (axes.empty() && from_input && ctx.attr_int("noop_with_empty_axes", 0) != 0) {
    ctx.set_output(0, x);
    return;
  }
  int rank = x.rank();
  std::vector<bool> mask = reduced_mask(ctx, axes, rank);
  Dims kd = x.dims(), out;
  int64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    if (mask[size_t(d)]) {
      count *= kd[size_t(d)];
      kd[size_t(d)] = 1;
      if (keep) out.push_back(1);
    } else {
      out.push_back(kd[size_t(d)]);
    }
  }
  Tensor& y = ctx.output(0, x.dtype(), out);
  if (x.dtype() == DType::kBool) return reduce_bool(k, x, kd, y);
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce_dispatch<T>(k, x, kd, count, y);
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers for ops along one axis: the tensor seen as [outer, n, inner].

struct AxisLayout {
  int64_t outer = 1, n = 1, inner = 1;
};

AxisLayout axis_layout(const Dims& d, int axis) {
  AxisLayout l;
  for (int i = 0; i < int(d.size()); ++i) {
    if (i < axis)
      l.outer *= d[size_t(i)];
    else if (i == axis)
      l.n = d[size_t(i)];
    else
      l.inner *= d[size_t(i)];
  }
  return l;
}

// ---------------------------------------------------------------------------------------------
// ArgMax / ArgMin

int arg_axis(const NodeAttrs& n, int rank) {
  if (rank == 0) n.fail("needs an input of rank >= 1");
  return normalize_axis(n, n.attr_int("axis", 0), rank);
}

void infer_arg(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt) && !dtype_is_int(dt))
    ctx.unsupported(std::string("element type ") + dtype_name(dt) + " is not supported");
  const ir::Shape& in = ctx.input_shape(0);
  if (!in.has_rank) {
    ctx.set_output(0, DType::kI64, ir::Shape::unranked());
    return;
  }
  int axis = arg_axis(ctx, in.rank());
  if (in.dims[size_t(axis)].is_const() && in.dims[size_t(axis)].value == 0)
    ctx.fail("cannot select along axis " + std::to_string(axis) + " of size 0");
  std::vector<ir::Dim> dims = in.dims;
  if (ctx.attr_int("keepdims", 1) != 0) {
    dims[size_t(axis)] = ir::Dim::constant(1);
  } else {
    dims.erase(dims.begin() + axis);
  }
  ctx.set_output(0, DType::kI64, ir::Shape(dims));
}

template <class T>
void arg_typed(const Tensor& x, const AxisLayout& l, bool is_max, bool last, int64_t* py) {
  const T* px = x.data<T>();
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t i = 0; i < l.inner; ++i) {
      const T* row = px + o * l.n * l.inner + i;
      int64_t best = 0;
      auto bv = to_compute(row[0]);
      for (int64_t j = 1; j < l.n; ++j) {
        auto v = to_compute(row[j * l.inner]);
        bool better;
        if constexpr (kIsFloat<T>) {
          // numpy: the first NaN wins.
          if (std::isnan(bv)) continue;
          if (std::isnan(v)) {
            best = j;
            bv = v;
            continue;
          }
        }
        better = is_max ? (v > bv || (last && v == bv)) : (v < bv || (last && v == bv));
        if (better) {
          best = j;
          bv = v;
        }
      }
      py[o * l.inner + i] = best;
    }
  }
}

void run_arg(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int axis = arg_axis(ctx, x.rank());
  AxisLayout l = axis_layout(x.dims(), axis);
  if (l.n == 0)
    ctx.fail("cannot select along axis " + std::to_string(axis) + " of size 0",
             ErrorCode::kInvalidArgument);
  Dims out = x.dims();
  if (ctx.attr_int("keepdims", 1) != 0) {
    out[size_t(axis)] = 1;
  } else {
    out.erase(out.begin() + axis);
  }
  Tensor& y = ctx.output(0, DType::kI64, out);
  bool is_max = ctx.op_type() == "ArgMax";
  bool last = ctx.attr_int("select_last_index", 0) != 0;
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    arg_typed<T>(x, l, is_max, last, y.data<int64_t>());
  });
}

// ---------------------------------------------------------------------------------------------
// Softmax, LogSoftmax, Hardmax

// Before opset 13 the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])] (default axis 1;
// axis == rank is allowed as for Flatten); since 13 the op works along one axis (default -1).
AxisLayout softmax_layout(const NodeAttrs& n, const Dims& d) {
  int rank = int(d.size());
  if (n.opset() < 13) {
    int64_t axis = n.attr_int("axis", 1);
    if (axis < -rank || axis > rank)
      n.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
    if (axis < 0) axis += rank;
    AxisLayout l;
    for (int i = 0; i < rank; ++i) (i < axis ? l.outer : l.n) *= d[size_t(i)];
    return l;
  }
  if (rank == 0) {
    normalize_axis(n, n.attr_int("axis", -1), rank);
    return AxisLayout{};
  }
  return axis_layout(d, normalize_axis(n, n.attr_int("axis", -1), rank));
}

void infer_softmax(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt))
    ctx.unsupported(std::string("element type ") + dtype_name(dt) + " is not supported");
  const ir::Shape& in = ctx.input_shape(0);
  if (in.has_rank) softmax_layout(ctx, Dims(size_t(in.rank()), 1));  // validates the axis
  infer_same_as_input0(ctx);
}

enum class SoftKind { kSoftmax, kLogSoftmax, kHardmax };

template <class T>
void softmax_typed(const Tensor& x, const AxisLayout& l, SoftKind kind, Tensor& y) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  std::vector<double> buf(size_t(l.n));
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t i = 0; i < l.inner; ++i) {
      int64_t base = o * l.n * l.inner + i;
      if (l.n == 0) continue;
      double mx = -std::numeric_limits<double>::infinity();
      int64_t arg = 0;
      for (int64_t j = 0; j < l.n; ++j) {
        buf[size_t(j)] = double(to_compute(px[base + j * l.inner]));
        if (j == 0 || buf[size_t(j)] > mx) {  // ties: the first maximum wins (Hardmax)
          mx = buf[size_t(j)];
          arg = j;
        }
      }
      if (kind == SoftKind::kHardmax) {
        for (int64_t j = 0; j < l.n; ++j)
          py[base + j * l.inner] = from_compute<T>(Compute<T>(j == arg ? 1 : 0));
        continue;
      }
      double sum = 0;
      for (int64_t j = 0; j < l.n; ++j) sum += std::exp(buf[size_t(j)] - mx);
      double log_sum = std::log(sum);
      for (int64_t j = 0; j < l.n; ++j) {
        double v = kind == SoftKind::kSoftmax ? std::exp(buf[size_t(j)] - mx) / sum
                                              : buf[size_t(j)] - mx - log_sum;
        py[base + j * l.inner] = from_compute<T>(Compute<T>(v));
      }
    }
  }
}

void run_softmax(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  AxisLayout l = softmax_layout(ctx, x.dims());
  SoftKind kind = ctx.op_type() == "Softmax"      ? SoftKind::kSoftmax
                  : ctx.op_type() == "LogSoftmax" ? SoftKind::kLogSoftmax
                                                  : SoftKind::kHardmax;
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_typed<T>(x, l, kind, y);
  });
}

// ---------------------------------------------------------------------------------------------
// CumSum, CumProd

std::optional<int64_t> scalar_axis(const NodeAttrs& n, std::optional<std::vector<int64_t>> v) {
  if (!v) return std::nullopt;
  if (v->size() != 1)
    n.fail("axis input must hold exactly one value, got " + std::to_string(v->size()));
  return (*v)[0];
}

void infer_cumulative(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt) && !dtype_is_int(dt))
    ctx.unsupported(std::string("element type ") + dtype_name(dt) + " is not supported");
  const ir::Shape& in = ctx.input_shape(0);
  auto axis = scalar_axis(ctx, ctx.input_ints(1));
  if (axis && in.has_rank) normalize_axis(ctx, *axis, in.rank());
  infer_same_as_input0(ctx);
}

template <class T>
void cumulative_typed(const Tensor& x, const AxisLayout& l, bool prod, bool exclusive, bool reverse,
                      Tensor& y) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t i = 0; i < l.inner; ++i) {
      int64_t base = o * l.n * l.inner + i;
      Compute<T> acc = Compute<T>(prod ? 1 : 0);
      for (int64_t s = 0; s < l.n; ++s) {
        int64_t j = reverse ? l.n - 1 - s : s;
        int64_t at = base + j * l.inner;
        Compute<T> v = to_compute(px[at]);
        if (exclusive) py[at] = from_compute<T>(acc);
        acc = prod ? Compute<T>(acc * v) : Compute<T>(acc + v);
        if (!exclusive) py[at] = from_compute<T>(acc);
      }
    }
  }
}

void run_cumulative(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& a = ctx.input(1);
  if (!dtype_is_int(a.dtype())) ctx.fail("axis must be an int32 or int64 tensor");
  int64_t axis = *scalar_axis(ctx, tensor_ints(a));
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  if (x.rank() == 0) {
    normalize_axis(ctx, axis, 0);
    // A scalar is a sequence of one element.
    AxisLayout l;
    dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cumulative_typed<T>(x, l, ctx.op_type() == "CumProd", ctx.attr_int("exclusive", 0) != 0,
                          false, y);
    });
    return;
  }
  AxisLayout l = axis_layout(x.dims(), normalize_axis(ctx, axis, x.rank()));
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    cumulative_typed<T>(x, l, ctx.op_type() == "CumProd", ctx.attr_int("exclusive", 0) != 0,
                        ctx.attr_int("reverse", 0) != 0, y);
  });
}

// ---------------------------------------------------------------------------------------------
// TopK: k is an attribute before opset 10 and the second input since; `largest` and `sorted`
// exist since 11. Ties keep the lower index first; NaN counts as greater than every number (as
// numpy's sort orders it). The result is always sorted, which `sorted=0` permits.

void check_k(const NodeAttrs& n, int64_t k, const ir::Dim& d) {
  if (k < 0) n.fail("k must be >= 0, got " + std::to_string(k));
  if (d.is_const() && k > d.value)
    n.fail("k = " + std::to_string(k) + " is larger than the axis size " + std::to_string(d.value));
}

void infer_topk(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt) && !dtype_is_int(dt))
    ctx.unsupported(std::string("element type ") + dtype_name(dt) + " is not supported");
  const ir::Shape& in = ctx.input_shape(0);
  std::optional<int64_t> k;
  if (ctx.opset() < 10) {
    k = ctx.required_int("k");
  } else {
    auto v = ctx.input_ints(1);
    if (v) {
      if (v->size() != 1) ctx.fail("K must hold exactly one value");
      k = (*v)[0];
    }
  }
  if (!in.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    ctx.set_output(1, DType::kI64, ir::Shape::unranked());
    return;
  }
  if (in.rank() == 0) ctx.fail("needs an input of rank >= 1");
  int axis = normalize_axis(ctx, ctx.attr_int("axis", -1), in.rank());
  std::vector<ir::Dim> dims = in.dims;
  if (k) {
    check_k(ctx, *k, dims[size_t(axis)]);
    dims[size_t(axis)] = ir::Dim::constant(*k);
  } else {
    dims[size_t(axis)] = ctx.fresh_dim();
  }
  ctx.set_output(0, dt, ir::Shape(dims));
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kI64, ir::Shape(dims));
}

template <class T>
void topk_typed(const Tensor& x, const AxisLayout& l, int64_t k, bool largest, Tensor& values,
                int64_t* indices) {
  const T* px = x.data<T>();
  T* pv = values.data<T>();
  std::vector<int64_t> idx(size_t(l.n));
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t i = 0; i < l.inner; ++i) {
      const T* row = px + o * l.n * l.inner + i;
      auto at = [&](int64_t j) { return to_compute(row[j * l.inner]); };
      // Strict weak order: "a comes before b" in the output.
      auto before = [&](int64_t a, int64_t b) {
        auto va = at(a), vb = at(b);
        if constexpr (kIsFloat<T>) {
          bool na = std::isnan(va), nb = std::isnan(vb);
          if (na != nb) return largest ? na : nb;
          if (na) return a < b;
        }
        if (va != vb) return largest ? va > vb : va < vb;
        return a < b;
      };
      std::iota(idx.begin(), idx.end(), int64_t(0));
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
      for (int64_t j = 0; j < k; ++j) {
        int64_t out = o * k * l.inner + j * l.inner + i;
        pv[out] = row[idx[size_t(j)] * l.inner];
        if (indices) indices[out] = idx[size_t(j)];
      }
    }
  }
}

void run_topk(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() == 0) ctx.fail("needs an input of rank >= 1");
  int64_t k;
  if (ctx.opset() < 10) {
    k = ctx.required_int("k");
  } else {
    const Tensor& kt = ctx.input(1);
    if (!dtype_is_int(kt.dtype()) || kt.numel() != 1)
      ctx.fail("K must be an int64 tensor holding exactly one value", ErrorCode::kInvalidArgument);
    k = kt.element_as_int(0);
  }
  int axis = normalize_axis(ctx, ctx.attr_int("axis", -1), x.rank());
  AxisLayout l = axis_layout(x.dims(), axis);
  if (k < 0 || k > l.n)
    ctx.fail("k = " + std::to_string(k) + " is out of range for axis size " + std::to_string(l.n),
             ErrorCode::kInvalidArgument);
  bool largest = ctx.opset() < 11 || ctx.attr_int("largest", 1) != 0;
  Dims out = x.dims();
  out[size_t(axis)] = k;
  Tensor& values = ctx.output(0, x.dtype(), out);
  int64_t* indices =
      ctx.num_outputs() > 1 ? ctx.output(1, DType::kI64, out).data<int64_t>() : nullptr;
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    topk_typed<T>(x, l, k, largest, values, indices);
  });
}

}  // namespace

void register_reduction_ops(Registry& r) {
  for (const char* op :
       {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"})
    r.add({"", op, 1, PatternKind::kReduction, infer_reduce, run_reduce});
  r.add({"", "ArgMax", 1, PatternKind::kReduction, infer_arg, run_arg});
  r.add({"", "ArgMin", 1, PatternKind::kReduction, infer_arg, run_arg});
  for (const char* op : {"Softmax", "LogSoftmax", "Hardmax"})
    r.add({"", op, 1, PatternKind::kOpaque, infer_softmax, run_softmax});
  r.add({"", "CumSum", 11, PatternKind::kOpaque, infer_cumulative, run_cumulative});
  r.add({"", "CumProd", 26, PatternKind::kOpaque, infer_cumulative, run_cumulative});
  r.add({"", "TopK", 1, PatternKind::kOpaque, infer_topk, run_topk});
}

}  // namespace kiln::kernels
