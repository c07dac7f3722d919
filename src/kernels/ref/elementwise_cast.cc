// Cast, CastLike and Where.
//
// Cast converts between every supported element type (not float8/int4/int2, which Kiln does not
// support). Conversions: float -> int truncates toward zero (out-of-range values are defined by
// ew::float_to_int); int -> int wraps; anything -> bool is `!= 0` (NaN is true); bool -> number
// is 0/1. Strings parse as decimal or scientific numbers, "INF", "-INF" and "NaN" (any case), and
// numbers print as the shortest text that reads back exactly, "INF"/"-INF"/"NaN" for the
// specials. The saturate attribute only concerns float8 targets and is ignored.
// Cast between integer types keeps small shape tensors' symbolic dims values.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <string>

#include "ir/onnx_tensor.h"
#include "kernels/ref/elementwise.h"

namespace kiln::kernels {
namespace {

DType cast_target(const NodeAttrs& ctx) {
  int64_t to = ctx.required_int("to");
  auto dt = ir::dtype_from_onnx(to);
  if (!dt)
    ctx.unsupported("cast to ONNX element type " + std::to_string(to) +
                    " is not supported (float8, int4 and int2 types are not)");
  return *dt;
}

template <class T>
std::string format_number(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "1" : "0";
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else {
    auto c = to_compute(v);
    if (std::isnan(c)) return "NaN";
    if (std::isinf(c)) return c > 0 ? "INF" : "-INF";
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), c);
    return std::string(buf, res.ptr);
  }
}

template <class To>
To parse_string(const NodeAttrs& ctx, const std::string& s) {
  const char* begin = s.c_str();
  char* end = nullptr;
  auto bad = [&]() -> To {
    ctx.fail("cannot convert string \"" + s + "\" to " + dtype_name(DTypeOf<To>::value),
             ErrorCode::kInvalidArgument);
  };
  if constexpr (std::is_same_v<To, bool>) {
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  if constexpr (std::is_integral_v<To> && !std::is_same_v<To, bool>) {
    // Exact for integers beyond double's precision; "1.5" or "1e3" fall back to the float path.
    errno = 0;
    if constexpr (std::is_signed_v<To>) {
      long long v = std::strtoll(begin, &end, 10);
      if (end != begin && *end == '\0' && errno == 0) return To(v);
    } else {
      unsigned long long v = std::strtoull(begin, &end, 10);
      if (end != begin && *end == '\0' && errno == 0 && s.find('-') == std::string::npos)
        return To(v);
    }
  }
  double d = std::strtod(begin, &end);
  if (s.empty() || end == begin || *end != '\0') return bad();
  if constexpr (std::is_same_v<To, bool>) {
    return d != 0;
  } else if constexpr (std::is_integral_v<To>) {
    return ew::float_to_int<To>(d);
  } else {
    return from_compute<To>(Compute<To>(d));
  }
}

// One element From -> To (neither is a string).
template <class To, class From>
To convert_number(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return to_compute(v) != 0;
  } else if constexpr (std::is_same_v<From, bool>) {
    return from_compute<To>(Compute<To>(v ? 1 : 0));
  } else if constexpr (std::is_integral_v<To>) {
    if constexpr (std::is_integral_v<From>) {
      return To(v);  // modulo 2^bits
    } else {
      return ew::float_to_int<To>(double(to_compute(v)));
    }
  } else if constexpr (std::is_same_v<To, float> || std::is_same_v<To, double>) {
    return To(to_compute(v));
  } else {
    // f16/bf16: through float (a double input rounds twice; off by one ulp at worst).
    return To(float(to_compute(v)));
  }
}

void cast_tensor(const NodeAttrs& ctx, const Tensor& x, const Tensor& y) {
  dispatch_all(x.dtype(), ctx, [&](auto from_tag) {
    using From = typename decltype(from_tag)::type;
    dispatch_all(y.dtype(), ctx, [&](auto to_tag) {
      using To = typename decltype(to_tag)::type;
      if constexpr (std::is_same_v<From, std::string> && std::is_same_v<To, std::string>) {
        ew::map_unary<From, To>(x, y, [](const From& v) { return v; });
      } else if constexpr (std::is_same_v<From, std::string>) {
        ew::map_unary<From, To>(x, y, [&](const From& v) { return parse_string<To>(ctx, v); });
      } else if constexpr (std::is_same_v<To, std::string>) {
        ew::map_unary<From, To>(x, y, [](From v) { return format_number(v); });
      } else {
        ew::map_unary<From, To>(x, y, [](From v) { return convert_number<To>(v); });
      }
    });
  });
}

// Int -> int casts of shape tensors keep their (symbolic) values; constants wrap to the target.
void propagate_int_cast(InferContext& ctx, DType to) {
  if (!dtype_is_int(ctx.input_dtype(0)) || !dtype_is_int(to)) return;
  const ir::Shape& s = ctx.input_shape(0);
  if (!s.has_rank || s.rank() > 1) return;
  auto count = s.num_elements();
  if (count && *count > 64) return;
  auto v = ctx.input_dims_value(0);
  if (!v || v->size() > 64) return;
  for (auto& d : *v) {
    if (!d.is_const()) continue;
    d.value = dispatch_int(to, ctx, [&](auto tag) {
      using T = typename decltype(tag)::type;
      return int64_t(T(d.value));
    });
  }
  ctx.set_output_dims_value(0, std::move(*v));
}

void infer_cast(InferContext& ctx) {
  DType to = cast_target(ctx);
  ctx.set_output(0, to, ctx.input_shape(0));
  propagate_int_cast(ctx, to);
}
void run_cast(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  cast_tensor(ctx, x, ctx.output(0, cast_target(ctx), x.dims()));
}

void infer_cast_like(InferContext& ctx) {
  DType to = ctx.input_dtype(1);
  ctx.set_output(0, to, ctx.input_shape(0));
  propagate_int_cast(ctx, to);
}
void run_cast_like(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  cast_tensor(ctx, x, ctx.output(0, ctx.input(1).dtype(), x.dims()));
}

// Where(cond, X, Y): three-way broadcast; X and Y share a type.
void infer_where(InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kBool && ctx.input_dtype(0) != DType::kUndefined)
    ctx.fail(std::string("condition must be bool, not ") + dtype_name(ctx.input_dtype(0)));
  ew::check_same_dtypes(ctx, 1, 2);
  ew::infer_broadcast(ctx, ctx.input_dtype(1));
  // Shape arithmetic such as Where(Equal(shape, -1), ones, shape) with a known condition.
  const Tensor* cond = ctx.input_value(0);
  if (!cond || cond->dtype() != DType::kBool || cond->rank() > 1 || cond->numel() > 64 ||
      !dtype_is_int(ctx.input_dtype(1)))
    return;
  for (int i = 1; i <= 2; ++i) {
    auto count = ctx.input_shape(i).num_elements();
    if (count && *count > 64) return;
  }
  auto x = ctx.input_dims_value(1), y = ctx.input_dims_value(2);
  const ir::Shape &xs = ctx.input_shape(1), &ys = ctx.input_shape(2);
  if (!x || !y || !xs.has_rank || !ys.has_rank || xs.rank() > 1 || ys.rank() > 1) return;
  size_t n = std::max({size_t(cond->numel()), x->size(), y->size()});
  for (size_t m : {size_t(cond->numel()), x->size(), y->size()})
    if (m != 1 && m != n) return;
  if (n == 0 || n > 64) return;
  std::vector<ir::Dim> out;
  const bool* c = cond->data<bool>();
  for (size_t k = 0; k < n; ++k) {
    bool take_x = c[cond->numel() == 1 ? 0 : k];
    out.push_back(take_x ? (*x)[x->size() == 1 ? 0 : k] : (*y)[y->size() == 1 ? 0 : k]);
  }
  ctx.set_output_dims_value(0, std::move(out));
}

void run_where(KernelContext& ctx) {
  const Tensor& c = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& y = ctx.input(2);
  if (c.dtype() != DType::kBool) ctx.fail("condition must be bool");
  if (x.dtype() != y.dtype()) ctx.fail("X and Y have different types");
  const Tensor& out = ctx.output(0, x.dtype(), ew::broadcast_inputs(ctx, 0, 2));
  dispatch_all(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool* pc = c.data<bool>();
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    T* po = out.data<T>();
    BroadcastWalker w(out.dims(), {c.dims(), x.dims(), y.dims()});
    for (int64_t i = 0; i < out.numel(); ++i, w.next())
      po[i] = pc[w.offset(0)] ? px[w.offset(1)] : py[w.offset(2)];
  });
}

}  // namespace

void register_elementwise_cast_ops(Registry& r) {
  r.add({"", "Cast", 1, PatternKind::kElementwise, infer_cast, run_cast});
  r.add({"", "CastLike", 15, PatternKind::kElementwise, infer_cast_like, run_cast_like});
  r.add({"", "Where", 9, PatternKind::kBroadcast, infer_where, run_where});
}

}  // namespace kiln::kernels
