// Shape ops: Reshape, Shape, Size, Squeeze, Unsqueeze, Flatten, Expand, Tile, ConstantOfShape,
// Range, EyeLike.
//
// Besides output shapes, these shape functions propagate the *values* of small int tensors as
// symbolic dims (InferContext::set_output_dims_value). Transformer exports compute their reshape
// targets at run time (Shape -> Gather -> Unsqueeze -> Concat -> Reshape); following the symbols
// through that chain is what lets the load-time shapes come out as [batch, seq, 4, 64] rather than
// unknown. At run time the same functions see concrete values, so they compute exact shapes and the
// kernels take their output dims from the pre-allocated outputs.
#include <algorithm>
#include <cmath>

#include "ir/onnx_tensor.h"
#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

using ir::Dim;

// Int tensors up to this many elements carry their values as dims; larger ones are data, and
// converting them at every run would only cost time.
constexpr int64_t kMaxDimsValueElements = 64;

// The value of a small int input as dims, when known.
std::optional<std::vector<Dim>> small_dims_value(const InferContext& ctx, int i) {
  if (!ctx.has_input(i) || !dtype_is_int(ctx.input_dtype(i))) return std::nullopt;
  const ir::Shape& s = ctx.input_shape(i);
  if (s.has_rank) {
    auto n = s.num_elements();
    if (n && *n > kMaxDimsValueElements) return std::nullopt;
  }
  auto v = ctx.input_dims_value(i);
  if (v && int64_t(v->size()) > kMaxDimsValueElements) return std::nullopt;
  return v;
}

// Forwards input 0's dims value to output 0 (element order unchanged: reshapes, squeezes).
void forward_dims_value(InferContext& ctx) {
  if (auto v = small_dims_value(ctx, 0)) ctx.set_output_dims_value(0, *v);
}

// A 1-d shape-like input (Reshape's shape, Expand's shape, ...) as dims. When its values are
// unknown but its length is, the dims are fresh symbols; nullopt when even the length is unknown.
std::optional<std::vector<Dim>> shape_input_dims(const InferContext& ctx, int i) {
  const ir::Shape& s = ctx.input_shape(i);
  if (s.has_rank && s.rank() != 1)
    ctx.fail("input " + std::to_string(i) + " (a shape) must be 1-d, got " + s.to_string());
  if (!dtype_is_int(ctx.input_dtype(i)))
    ctx.fail(std::string("input ") + std::to_string(i) + " (a shape) must be int64, got " +
             dtype_name(ctx.input_dtype(i)));
  if (auto v = ctx.input_dims_value(i)) return v;
  if (s.has_rank && s.dims[0].is_const()) {
    std::vector<Dim> dims;
    for (int64_t k = 0; k < s.dims[0].value; ++k) dims.push_back(ctx.fresh_dim());
    return dims;
  }
  return std::nullopt;
}

// Copies Tensor contents of the same element count (the data-movement kernels of reshapes).
void run_copy_reshaped(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  out.copy_from(ctx.input(0).reshaped(out.dims()));
}

// ---- Reshape ---------------------------------------------------------------------------------

// A product of dims split into a constant and symbolic factors, so that Reshape's -1 can cancel
// common symbols: [batch, seq, 256] -> [batch, seq, 4, -1] gives 64.
struct Factors {
  int64_t constant = 1;
  std::vector<std::string> symbols;
  bool unknown = false;
};

// Splits "a*b", "(a*b)*4" into factors; other expressions stay atomic.
void add_symbol_factors(const std::string& s, Factors& f) {
  std::vector<std::string> parts;
  int depth = 0;
  size_t start = 0;
  bool pure_product = true;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == '+' || c == '-' || c == '/')) pure_product = false;
    if (depth == 0 && c == '*') {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  if (!pure_product || parts.size() == 1) {
    // Atomic, but a parenthesized product "(a*b)" may still be split.
    if (pure_product && s.size() > 2 && s.front() == '(' && s.back() == ')') {
      std::string inner = s.substr(1, s.size() - 2);
      int d = 0;
      bool balanced = true;
      for (char c : inner) {
        if (c == '(') ++d;
        if (c == ')' && --d < 0) balanced = false;
      }
      if (balanced && d == 0) return add_symbol_factors(inner, f);
    }
    f.symbols.push_back(s);
    return;
  }
  for (const auto& p : parts) {
    bool digits =
        !p.empty() && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      f.constant *= std::stoll(p);
    } else {
      add_symbol_factors(p, f);
    }
  }
}

Factors factors_of(const std::vector<Dim>& dims) {
  Factors f;
  for (const auto& d : dims) {
    if (d.is_const()) {
      f.constant *= d.value;
    } else if (d.is_symbol()) {
      add_symbol_factors(d.symbol, f);
    } else {
      f.unknown = true;
    }
  }
  return f;
}

Dim product(const std::vector<Dim>& dims) {
  Dim p = Dim::constant(1);
  for (const auto& d : dims) p = dim_mul(p, d);
  return p;
}

// The dim that Reshape's -1 stands for: total(in) / product(known out dims).
Dim infer_minus_one(const InferContext& ctx, const ir::Shape& in, const std::vector<Dim>& known) {
  if (!in.has_rank) return ctx.fresh_dim();
  Factors fi = factors_of(in.dims), fo = factors_of(known);
  if (fi.unknown || fo.unknown) return ctx.fresh_dim();
  if (fo.constant == 0) {
    ctx.fail("cannot infer the -1 dim of shape with a 0 dim: the size is ambiguous");
  }
  for (const auto& s : fo.symbols) {
    auto it = std::find(fi.symbols.begin(), fi.symbols.end(), s);
    if (it == fi.symbols.end()) {
      return fi.symbols.empty() ? ctx.fresh_dim() : dim_div(product(in.dims), product(known));
    }
    fi.symbols.erase(it);
  }
  if (fi.constant % fo.constant != 0) {
    if (fi.symbols.empty())
      ctx.fail("input " + in.to_string() + " has " + std::to_string(fi.constant) +
               " elements, not divisible by the " + std::to_string(fo.constant) +
               " of the other dims of the target shape");
    return dim_div(product(in.dims), product(known));
  }
  Dim out = Dim::constant(1);
  for (const auto& s : fi.symbols) out = dim_mul(out, Dim::sym(s));
  return dim_mul(out, Dim::constant(fi.constant / fo.constant));
}

ir::Shape reshape_output(const InferContext& ctx, const ir::Shape& in, std::vector<Dim> target,
                         bool allowzero) {
  int minus_one = -1;
  bool has_zero = false;
  for (size_t i = 0; i < target.size(); ++i) {
    Dim& d = target[i];
    if (!d.is_const()) continue;
    if (d.value == -1) {
      if (minus_one >= 0) ctx.fail("target shape has more than one -1");
      minus_one = int(i);
    } else if (d.value < -1) {
      ctx.fail("target shape has invalid dim " + std::to_string(d.value));
    } else if (d.value == 0) {
      has_zero = true;
      if (allowzero) continue;
      if (!in.has_rank) {
        d = ctx.fresh_dim();
      } else if (int(i) >= in.rank()) {
        ctx.fail("target dim " + std::to_string(i) + " is 0 (copy the input dim) but the input " +
                 in.to_string() + " has rank " + std::to_string(in.rank()));
      } else {
        d = in.dims[i];
      }
    }
  }
  if (allowzero && has_zero && minus_one >= 0)
    ctx.fail("target shape has both 0 and -1 with allowzero=1");
  if (minus_one >= 0) {
    std::vector<Dim> known;
    for (size_t i = 0; i < target.size(); ++i)
      if (int(i) != minus_one) known.push_back(target[i]);
    target[size_t(minus_one)] = infer_minus_one(ctx, in, known);
  } else if (in.has_rank) {
    Dim a = product(in.dims), b = product(target);
    if (a.known_different(b))
      ctx.fail("cannot reshape " + in.to_string() + " (" + std::to_string(a.value) +
               " elements) to " + ir::Shape(target).to_string() + " (" + std::to_string(b.value) +
               " elements)");
  }
  return ir::Shape(std::move(target));
}

void infer_reshape(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  std::optional<std::vector<Dim>> target;
  if (ctx.opset() < 5) {
    std::vector<Dim> dims;
    for (int64_t v : ctx.required_ints("shape")) dims.push_back(Dim::constant(v));
    target = dims;
  } else {
    target = shape_input_dims(ctx, 1);
  }
  if (!target) {
    ctx.set_output(0, ctx.input_dtype(0), ir::Shape::unranked());
  } else {
    bool allowzero = ctx.opset() >= 14 && ctx.attr_int("allowzero", 0) != 0;
    ctx.set_output(0, ctx.input_dtype(0), reshape_output(ctx, in, *target, allowzero));
  }
  forward_dims_value(ctx);
}

// ---- Shape, Size -----------------------------------------------------------------------------

void infer_shape(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  bool has_range = ctx.opset() >= 15 && (ctx.has_attr("start") || ctx.has_attr("end"));
  if (!in.has_rank) {
    ctx.set_output(0, DType::kI64, ir::Shape({ctx.fresh_dim()}));
    return;
  }
  int64_t r = in.rank();
  int64_t start = 0, end = r;
  if (has_range) {
    start = ctx.attr_int("start", 0);
    end = ctx.attr_int("end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, 0, r);
  }
  std::vector<Dim> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(in.dims[size_t(i)]);
  ctx.set_output(0, DType::kI64, ir::Shape::of({int64_t(dims.size())}));
  ctx.set_output_dims_value(0, std::move(dims));
}

void run_shape(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  const Dims& d = ctx.input(0).dims();
  int64_t r = int64_t(d.size());
  int64_t start = 0;
  if (ctx.opset() >= 15 && ctx.has_attr("start")) {
    start = ctx.attr_int("start", 0);
    if (start < 0) start += r;
    start = std::clamp<int64_t>(start, 0, r);
  }
  int64_t* o = out.data<int64_t>();
  for (int64_t i = 0; i < out.numel(); ++i) o[i] = d[size_t(start + i)];
}

void infer_size(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  ctx.set_output(0, DType::kI64, ir::Shape(std::vector<Dim>{}));
  if (in.has_rank) ctx.set_output_dims_value(0, {product(in.dims)});
}

void run_size(KernelContext& ctx) { ctx.output(0).data<int64_t>()[0] = ctx.input(0).numel(); }

// ---- Squeeze, Unsqueeze, Flatten -------------------------------------------------------------

// The axes of Squeeze/Unsqueeze: an attribute before opset 13, an optional input since.
// Returns nullopt when they are given but unknown (load time); *count receives their number
// when known (-1 otherwise).
std::optional<std::vector<int64_t>> squeeze_axes(const InferContext& ctx, bool* given,
                                                 int64_t* count) {
  *count = -1;
  if (ctx.opset() < 13) {
    auto a = ctx.attr_ints("axes");
    *given = !a.empty();
    *count = int64_t(a.size());
    return a;
  }
  *given = ctx.has_input(1);
  if (!*given) return std::vector<int64_t>{};
  if (ctx.input_shape(1).num_elements() == 0) {
    // An empty axes tensor is the same as none given.
    *given = false;
    *count = 0;
    return std::vector<int64_t>{};
  }
  const ir::Shape& s = ctx.input_shape(1);
  if (s.has_rank && s.rank() > 1) ctx.fail("axes must be a 1-d tensor, got " + s.to_string());
  if (s.has_rank && s.rank() == 1 && s.dims[0].is_const()) *count = s.dims[0].value;
  if (s.has_rank && s.rank() == 0) *count = 1;
  auto v = ctx.input_ints(1);
  if (v) *count = int64_t(v->size());
  return v;
}

void infer_squeeze(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  DType dt = ctx.input_dtype(0);
  bool given = false;
  int64_t count = -1;
  auto axes = squeeze_axes(ctx, &given, &count);
  if (!in.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  if (!axes) {
    if (count < 0) {
      ctx.set_output(0, dt, ir::Shape::unranked());
    } else {
      std::vector<Dim> dims;
      for (int64_t i = 0; i < in.rank() - count; ++i) dims.push_back(ctx.fresh_dim());
      ctx.set_output(0, dt, ir::Shape(std::move(dims)));
    }
    forward_dims_value(ctx);
    return;
  }
  std::vector<Dim> dims;
  if (!given) {
    // Every dim of size 1; a non-constant dim might be 1 or not, so the rank is unknown.
    for (const auto& d : in.dims) {
      if (!d.is_const()) {
        ctx.set_output(0, dt, ir::Shape::unranked());
        forward_dims_value(ctx);
        return;
      }
      if (d.value != 1) dims.push_back(d);
    }
  } else {
    auto ax = normalize_axes(ctx, *axes, in.rank());
    std::vector<bool> drop(size_t(in.rank()), false);
    for (int a : ax) {
      const Dim& d = in.dims[size_t(a)];
      if (d.known_different(Dim::constant(1)))
        ctx.fail("cannot squeeze axis " + std::to_string(a) + " of size " + d.to_string() +
                 " (input " + in.to_string() + "); squeezed dims must be 1");
      drop[size_t(a)] = true;
    }
    for (size_t i = 0; i < in.dims.size(); ++i)
      if (!drop[i]) dims.push_back(in.dims[i]);
  }
  ctx.set_output(0, dt, ir::Shape(std::move(dims)));
  forward_dims_value(ctx);
}

void infer_unsqueeze(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  DType dt = ctx.input_dtype(0);
  bool given = false;
  int64_t count = -1;
  bool required_present = ctx.opset() < 13 ? ctx.has_attr("axes") : ctx.has_input(1);
  if (!required_present) ctx.fail("axes are required");
  auto axes = squeeze_axes(ctx, &given, &count);
  if (!in.has_rank || count < 0) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    forward_dims_value(ctx);
    return;
  }
  int out_rank = in.rank() + int(count);
  if (!axes) {
    std::vector<Dim> dims;
    for (int i = 0; i < out_rank; ++i) dims.push_back(ctx.fresh_dim());
    ctx.set_output(0, dt, ir::Shape(std::move(dims)));
    forward_dims_value(ctx);
    return;
  }
  auto ax = normalize_axes(ctx, *axes, out_rank);
  std::vector<bool> inserted(size_t(out_rank), false);
  for (int a : ax) inserted[size_t(a)] = true;
  std::vector<Dim> dims;
  size_t k = 0;
  for (int i = 0; i < out_rank; ++i)
    dims.push_back(inserted[size_t(i)] ? Dim::constant(1) : in.dims[k++]);
  ctx.set_output(0, dt, ir::Shape(std::move(dims)));
  forward_dims_value(ctx);
}

void infer_flatten(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  DType dt = ctx.input_dtype(0);
  int64_t axis = ctx.attr_int("axis", 1);
  if (!in.has_rank) {
    ctx.set_output(0, dt, ir::Shape({ctx.fresh_dim(), ctx.fresh_dim()}));
    return;
  }
  int r = in.rank();
  if (axis < -r || axis > r)
    ctx.fail("axis " + std::to_string(axis) + " is out of range [" + std::to_string(-r) + ", " +
             std::to_string(r) + "] for input " + in.to_string());
  if (axis < 0) axis += r;
  std::vector<Dim> outer(in.dims.begin(), in.dims.begin() + axis);
  std::vector<Dim> inner(in.dims.begin() + axis, in.dims.end());
  ctx.set_output(0, dt, ir::Shape({product(outer), product(inner)}));
  forward_dims_value(ctx);
}

// ---- Expand, Tile ----------------------------------------------------------------------------

void infer_expand(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  DType dt = ctx.input_dtype(0);
  auto target = shape_input_dims(ctx, 1);
  if (!in.has_rank || !target) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  for (const auto& d : *target)
    if (d.is_const() && d.value < 0) ctx.fail("shape has negative dim " + std::to_string(d.value));
  ctx.set_output(0, dt, broadcast_shapes(ctx, {in, ir::Shape(*target)}));
}

template <class T>
void expand_typed(const Tensor& in, const Tensor& out) {
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  BroadcastWalker w(out.dims(), {in.dims()});
  for (int64_t i = 0; i < w.size(); ++i, w.next()) dst[i] = src[w.offset(0)];
}

void run_expand(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  dispatch_all(in.dtype(), ctx,
               [&](auto tag) { expand_typed<typename decltype(tag)::type>(in, out); });
}

void infer_tile(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  DType dt = ctx.input_dtype(0);
  auto reps = shape_input_dims(ctx, 1);
  if (!in.has_rank) {
    if (reps) {
      std::vector<Dim> dims;
      for (size_t i = 0; i < reps->size(); ++i) dims.push_back(ctx.fresh_dim());
      ctx.set_output(0, dt, ir::Shape(std::move(dims)));
    } else {
      ctx.set_output(0, dt, ir::Shape::unranked());
    }
    return;
  }
  std::vector<Dim> dims;
  if (reps) {
    if (int(reps->size()) != in.rank())
      ctx.fail("repeats has " + std::to_string(reps->size()) +
               " elements, expected the input rank " + std::to_string(in.rank()));
    for (size_t i = 0; i < reps->size(); ++i) {
      const Dim& r = (*reps)[i];
      if (r.is_const() && r.value < 0)
        ctx.fail("repeats has negative value " + std::to_string(r.value));
      dims.push_back(dim_mul(in.dims[i], r));
    }
  } else {
    for (int i = 0; i < in.rank(); ++i) dims.push_back(ctx.fresh_dim());
  }
  ctx.set_output(0, dt, ir::Shape(std::move(dims)));
}

template <class T>
void tile_typed(const Tensor& in, const Tensor& out) {
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  const Dims& id = in.dims();
  const Dims& od = out.dims();
  auto is = strides_of(id);
  std::vector<int64_t> idx(od.size(), 0);
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < od.size(); ++d) off += (idx[d] % id[d]) * is[d];
    dst[i] = src[off];
    for (int d = int(od.size()) - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < od[size_t(d)]) break;
      idx[size_t(d)] = 0;
    }
  }
}

void run_tile(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  dispatch_all(in.dtype(), ctx,
               [&](auto tag) { tile_typed<typename decltype(tag)::type>(in, out); });
}

// ---- ConstantOfShape, Range, EyeLike ---------------------------------------------------------

Tensor constant_of_shape_value(const NodeAttrs& ctx) {
  const Tensor* v = ctx.attr_tensor("value");
  if (!v) return Tensor::scalar<float>(0.0f);
  if (v->numel() != 1)
    ctx.fail("attribute 'value' must hold one element, got " + std::to_string(v->numel()));
  return *v;
}

void infer_constant_of_shape(InferContext& ctx) {
  Tensor v = constant_of_shape_value(ctx);
  auto target = shape_input_dims(ctx, 0);
  if (!target) {
    ctx.set_output(0, v.dtype(), ir::Shape::unranked());
    return;
  }
  for (const auto& d : *target)
    if (d.is_const() && d.value < 0) ctx.fail("shape has negative dim " + std::to_string(d.value));
  ctx.set_output(0, v.dtype(), ir::Shape(*target));
  // A small int fill (ConstantOfShape([n], 1) in Expand-shape arithmetic) is a dims value.
  auto n = ir::Shape(*target).num_elements();
  if (dtype_is_int(v.dtype()) && n && *n <= kMaxDimsValueElements)
    ctx.set_output_dims_value(0, std::vector<Dim>(size_t(*n), Dim::constant(v.element_as_int(0))));
}

void run_constant_of_shape(KernelContext& ctx) {
  Tensor v = constant_of_shape_value(ctx);
  Tensor& out = ctx.output(0);
  dispatch_all(v.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T x = v.data<T>()[0];
    T* o = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = x;
  });
}

void check_range_input(const NodeAttrs& ctx, const char* name, const Tensor& t, DType dt) {
  if (t.numel() != 1)
    ctx.fail(std::string(name) + " must be a scalar, got " + dims_to_string(t.dims()),
             ErrorCode::kInvalidArgument);
  if (t.dtype() != dt) ctx.fail(std::string(name) + " must have the type of start");
}

// Number of elements of Range: max(ceil((limit - start) / delta), 0), exact for integers.
int64_t range_count(const NodeAttrs& ctx, const Tensor& s, const Tensor& l, const Tensor& d) {
  if (dtype_is_int(s.dtype())) {
    int64_t a = s.element_as_int(0), b = l.element_as_int(0), step = d.element_as_int(0);
    if (step == 0) ctx.fail("delta must not be 0", ErrorCode::kInvalidArgument);
    int64_t diff = b - a;
    if (step > 0) return diff <= 0 ? 0 : (diff + step - 1) / step;
    return diff >= 0 ? 0 : (-diff + -step - 1) / -step;
  }
  double a = s.element_as_double(0), b = l.element_as_double(0), step = d.element_as_double(0);
  if (step == 0) ctx.fail("delta must not be 0", ErrorCode::kInvalidArgument);
  double n = std::ceil((b - a) / step);
  if (!(n > 0)) return 0;
  if (n > 1e15) ctx.fail("Range output is too large", ErrorCode::kInvalidArgument);
  return int64_t(n);
}

void infer_range(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  for (int i = 1; i < 3; ++i)
    if (ctx.input_dtype(i) != dt)
      ctx.fail("start, limit and delta must have the same type, got " +
               std::string(dtype_name(dt)) + " and " + dtype_name(ctx.input_dtype(i)));
  if (!dtype_is_float(dt) && !dtype_is_int(dt))
    ctx.unsupported(std::string("element type ") + dtype_name(dt) + " is not supported");
  const Tensor* s = ctx.input_value(0);
  const Tensor* l = ctx.input_value(1);
  const Tensor* d = ctx.input_value(2);
  if (s && l && d) {
    check_range_input(ctx, "start", *s, dt);
    check_range_input(ctx, "limit", *l, dt);
    check_range_input(ctx, "delta", *d, dt);
    int64_t n = range_count(ctx, *s, *l, *d);
    ctx.set_output(0, dt, ir::Shape::of({n}));
    if (dtype_is_int(dt) && n <= kMaxDimsValueElements) {
      std::vector<Dim> v;
      for (int64_t i = 0; i < n; ++i)
        v.push_back(Dim::constant(s->element_as_int(0) + i * d->element_as_int(0)));
      ctx.set_output_dims_value(0, std::move(v));
    }
    return;
  }
  // Range(0, n, 1) over a symbolic n is common (position ids): its length is n - start.
  Dim n = ctx.fresh_dim();
  if (dtype_is_int(dt)) {
    auto sv = ctx.input_dims_value(0), lv = ctx.input_dims_value(1);
    auto dv = ctx.input_ints(2);
    if (sv && lv && dv && sv->size() == 1 && lv->size() == 1 && dv->size() == 1 && (*dv)[0] == 1 &&
        (*sv)[0].is_const() && (*sv)[0].value == 0)
      n = (*lv)[0];
  }
  ctx.set_output(0, dt, ir::Shape({n}));
}

void run_range(KernelContext& ctx) {
  const Tensor& s = ctx.input(0);
  const Tensor& d = ctx.input(2);
  Tensor& out = ctx.output(0);
  dispatch_numeric(s.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    if constexpr (kIsFloat<T>) {
      double a = s.element_as_double(0), step = d.element_as_double(0);
      for (int64_t i = 0; i < out.numel(); ++i) o[i] = from_compute<T>(a + double(i) * step);
    } else {
      int64_t a = s.element_as_int(0), step = d.element_as_int(0);
      for (int64_t i = 0; i < out.numel(); ++i) o[i] = static_cast<T>(a + i * step);
    }
  });
}

DType eye_like_dtype(const NodeAttrs& ctx, DType input) {
  if (!ctx.has_attr("dtype")) return input;
  int64_t v = ctx.attr_int("dtype", 0);
  auto t = ir::dtype_from_onnx(v);
  if (!t || *t == DType::kString)
    ctx.unsupported("dtype " + std::to_string(v) + " is not supported");
  return *t;
}

void infer_eye_like(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  if (in.has_rank && in.rank() != 2) ctx.fail("input must be 2-d, got " + in.to_string());
  ctx.set_output(0, eye_like_dtype(ctx, ctx.input_dtype(0)),
                 in.has_rank ? in : ir::Shape({ctx.fresh_dim(), ctx.fresh_dim()}));
}

void run_eye_like(KernelContext& ctx) {
  Tensor& out = ctx.output(0);
  int64_t k = ctx.attr_int("k", 0);
  int64_t rows = out.dim(0), cols = out.dim(1);
  dispatch_all(out.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, std::string>) {
      ctx.unsupported("string output is not supported");
    } else {
      T* o = out.data<T>();
      for (int64_t i = 0; i < rows * cols; ++i) o[i] = from_compute<T>(0);
      for (int64_t i = 0; i < rows; ++i) {
        int64_t j = i + k;
        if (j >= 0 && j < cols) o[i * cols + j] = from_compute<T>(1);
      }
    }
  });
}

}  // namespace

void register_shape_ops(Registry& r) {
  r.add({"", "Reshape", 1, PatternKind::kInjective, infer_reshape, run_copy_reshaped});
  r.add({"", "Shape", 1, PatternKind::kOpaque, infer_shape, run_shape});
  r.add({"", "Size", 1, PatternKind::kOpaque, infer_size, run_size});
  r.add({"", "Squeeze", 1, PatternKind::kInjective, infer_squeeze, run_copy_reshaped});
  r.add({"", "Unsqueeze", 1, PatternKind::kInjective, infer_unsqueeze, run_copy_reshaped});
  r.add({"", "Flatten", 1, PatternKind::kInjective, infer_flatten, run_copy_reshaped});
  r.add({"", "Expand", 8, PatternKind::kBroadcast, infer_expand, run_expand});
  r.add({"", "Tile", 6, PatternKind::kInjective, infer_tile, run_tile});
  r.add({"", "ConstantOfShape", 9, PatternKind::kOpaque, infer_constant_of_shape,
         run_constant_of_shape});
  r.add({"", "Range", 11, PatternKind::kOpaque, infer_range, run_range});
  r.add({"", "EyeLike", 9, PatternKind::kOpaque, infer_eye_like, run_eye_like});
}

}  // namespace kiln::kernels
