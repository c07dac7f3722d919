// Data-movement ops, part 2: Slice, Pad and CenterCropPad — the ops that take a window of the
// input along some axes, cropping and/or padding it.
//
// Slice clamps starts and ends as the ONNX spec says (into [0, dim] for positive steps, into
// [-1, dim-1] for negative ones) so any int64 (INT64_MAX, INT64_MIN) is a valid bound. Pad with
// negative pads crops first and then pads what is left; reflect/edge/wrap take their source
// elements from the cropped extent. Reflect follows numpy (repeats the reflection when the pad
// is wider than the input).
#include <algorithm>
#include <limits>

#include "kernels/ref/movement_util.h"

namespace kiln::kernels {
namespace {

// An optional int input: absent, present with a known value, or present but not known yet.
struct IntInput {
  bool present = false;
  std::optional<std::vector<int64_t>> value;
};

IntInput int_input(const InferContext& ctx, int i) {
  if (!ctx.has_input(i)) return {};
  return {true, ctx.input_ints(i)};
}

IntInput int_input(const KernelContext& ctx, int i) {
  if (!ctx.has_input(i)) return {};
  const Tensor& t = ctx.input(i);
  if (!dtype_is_int(t.dtype()))
    ctx.fail("input " + std::to_string(i) + " must be an integer tensor, got " +
             dtype_name(t.dtype()));
  std::vector<int64_t> v(size_t(t.numel()));
  for (int64_t k = 0; k < t.numel(); ++k) v[size_t(k)] = t.element_as_int(k);
  return {true, std::move(v)};
}

// ---- Slice -----------------------------------------------------------------------------------

struct SliceParams {
  std::optional<std::vector<int>> axes;  // normalized; nullopt when not known yet
  std::optional<std::vector<int64_t>> starts, ends, steps;
};

template <class Ctx>
SliceParams slice_params(const Ctx& ctx, int rank) {
  SliceParams p;
  std::optional<std::vector<int64_t>> axes;
  if (ctx.opset() < 10) {
    p.starts = ctx.required_ints("starts");
    p.ends = ctx.required_ints("ends");
    if (ctx.has_attr("axes")) axes = ctx.attr_ints("axes");
    p.steps = std::vector<int64_t>(p.starts->size(), 1);
  } else {
    p.starts = int_input(ctx, 1).value;
    p.ends = int_input(ctx, 2).value;
    IntInput a = int_input(ctx, 3), s = int_input(ctx, 4);
    if (a.present && !a.value) return SliceParams{std::nullopt, p.starts, p.ends, s.value};
    axes = a.value;
    if (s.present) {
      p.steps = s.value;
    } else if (p.starts) {
      p.steps = std::vector<int64_t>(p.starts->size(), 1);
    }
  }
  if (!axes && p.starts) {
    axes.emplace();
    for (size_t i = 0; i < p.starts->size(); ++i) axes->push_back(int64_t(i));
  }
  if (axes) {
    p.axes = normalize_axes(ctx, *axes, rank);
    size_t n = axes->size();
    if ((p.starts && p.starts->size() != n) || (p.ends && p.ends->size() != n) ||
        (p.steps && p.steps->size() != n))
      ctx.fail("starts, ends, axes and steps must have the same length");
  }
  if (p.steps)
    for (int64_t s : *p.steps)
      if (s == 0) ctx.fail("slice steps must not be 0");
  return p;
}

void infer_slice(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  const ir::Shape& in = ctx.input_shape(0);
  if (!in.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  int rank = in.rank();
  SliceParams p = slice_params(ctx, rank);
  std::vector<ir::Dim> out = in.dims;
  if (!p.axes) {
    for (auto& d : out) d = ctx.fresh_dim();
    ctx.set_output(0, dt, ir::Shape(std::move(out)));
    return;
  }
  // Symbolic ends (e.g. Shape(x)[1]) let x[0:seq] keep the dim "seq".
  std::optional<std::vector<ir::Dim>> sym_ends;
  if (ctx.opset() >= 10) sym_ends = ctx.input_dims_value(2);
  constexpr int64_t kToEnd = std::numeric_limits<int32_t>::max();
  for (size_t i = 0; i < p.axes->size(); ++i) {
    size_t ax = size_t((*p.axes)[i]);
    const ir::Dim dim = in.dims[ax];
    if (p.starts && p.ends && p.steps && dim.is_const()) {
      out[ax] = ir::Dim::constant(
          slice_range(dim.value, (*p.starts)[i], (*p.ends)[i], (*p.steps)[i]).second);
      continue;
    }
    bool whole = p.starts && p.steps && (*p.starts)[i] == 0 && (*p.steps)[i] == 1 &&
                 ((p.ends && (*p.ends)[i] >= kToEnd) ||
                  (sym_ends && i < sym_ends->size() && (*sym_ends)[i].known_equal(dim)));
    out[ax] = whole ? dim : ctx.fresh_dim();
  }
  ctx.set_output(0, dt, ir::Shape(out));

  // Slicing a shape tensor slices its symbolic elements.
  if (rank == 1 && dtype_is_int(dt) && p.starts && p.ends && p.steps) {
    auto dv = ctx.input_dims_value(0);
    if (!dv) return;
    auto [start, count] =
        slice_range(int64_t(dv->size()), (*p.starts)[0], (*p.ends)[0], (*p.steps)[0]);
    std::vector<ir::Dim> v;
    for (int64_t k = 0; k < count; ++k) v.push_back((*dv)[size_t(start + k * (*p.steps)[0])]);
    ctx.set_output_dims_value(0, std::move(v));
  }
}

void run_slice(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int rank = x.rank();
  SliceParams p = slice_params(ctx, rank);
  if (!p.axes || !p.starts || !p.ends || !p.steps) ctx.fail("starts and ends are required");
  auto strides = strides_of(x.dims());
  Dims out = x.dims();
  std::vector<int64_t> src_strides = strides;
  int64_t base = 0;
  for (size_t i = 0; i < p.axes->size(); ++i) {
    size_t ax = size_t((*p.axes)[i]);
    int64_t step = (*p.steps)[i];
    auto [start, count] = slice_range(x.dims()[ax], (*p.starts)[i], (*p.ends)[i], step);
    out[ax] = count;
    if (count > 0) base += start * strides[ax];
    // With one element the step is never taken (and may be huge enough to overflow).
    src_strides[ax] = count > 1 ? strides[ax] * step : 0;
  }
  const Tensor& y = ctx.output(0, x.dtype(), out);
  movement::strided_copy(ctx, x, base, src_strides, out, y);
}

// ---- Pad and CenterCropPad -------------------------------------------------------------------

// Copies src into dst (dims `out`): along each axis d, output index o reads input index
// maps[d][o], or `fill` (a 0-d tensor of the same dtype) where any map gives -1.
void pad_copy(const NodeAttrs& ctx, const Tensor& src,
              const std::vector<std::vector<int64_t>>& maps, const Dims& out, const Tensor& dst,
              const Tensor& fill) {
  dispatch_all(src.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* s = src.data<T>();
    T* d = dst.data<T>();
    const T f = fill.data<T>()[0];
    int64_t n = num_elements(out);
    if (n == 0) return;
    size_t r = out.size();
    if (r == 0) {
      d[0] = s[0];
      return;
    }
    auto st = strides_of(src.dims());
    const auto& inner_map = maps[r - 1];
    int64_t inner = out[r - 1];
    std::vector<int64_t> idx(r, 0);
    for (int64_t o = 0; o < n; o += inner) {
      bool valid = true;
      int64_t off = 0;
      for (size_t k = 0; k + 1 < r; ++k) {
        int64_t m = maps[k][size_t(idx[k])];
        if (m < 0) valid = false;
        off += m * st[k];
      }
      for (int64_t i = 0; i < inner; ++i) {
        int64_t m = inner_map[size_t(i)];
        d[o + i] = valid && m >= 0 ? s[off + m] : f;
      }
      for (int k = int(r) - 2; k >= 0; --k) {
        if (++idx[size_t(k)] < out[size_t(k)]) break;
        idx[size_t(k)] = 0;
      }
    }
  });
}

std::vector<int64_t> identity_map(int64_t n) {
  std::vector<int64_t> m(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) m[size_t(i)] = i;
  return m;
}

struct PadParams {
  std::optional<std::vector<int64_t>> begin, end;  // per dim of the input; nullopt: unknown
  std::optional<std::vector<int>> axes;            // the padded axes; nullopt: unknown
};

template <class Ctx>
PadParams pad_params(const Ctx& ctx, int rank) {
  PadParams p;
  std::optional<std::vector<int64_t>> pads;
  std::optional<std::vector<int64_t>> axes;
  if (ctx.opset() < 11) {
    pads = ctx.required_ints(ctx.opset() < 2 ? "paddings" : "pads");
  } else {
    pads = int_input(ctx, 1).value;
    if (ctx.opset() >= 18) {
      IntInput a = int_input(ctx, 3);
      if (a.present && !a.value) return p;
      axes = a.value;
    }
  }
  if (!axes) {
    axes.emplace();
    for (int d = 0; d < rank; ++d) axes->push_back(d);
  }
  p.axes = normalize_axes(ctx, *axes, rank);
  if (!pads) return p;
  size_t n = p.axes->size();
  if (pads->size() != 2 * n)
    ctx.fail("pads has " + std::to_string(pads->size()) + " entries, expected " +
             std::to_string(2 * n) + " (begin and end for each of " + std::to_string(n) + " axes)");
  constexpr int64_t kMaxPad = int64_t(1) << 40;
  for (int64_t v : *pads)
    if (v > kMaxPad || v < -kMaxPad) ctx.fail("pad " + std::to_string(v) + " is out of range");
  p.begin.emplace(size_t(rank), 0);
  p.end.emplace(size_t(rank), 0);
  for (size_t i = 0; i < n; ++i) {
    (*p.begin)[size_t((*p.axes)[i])] = (*pads)[i];
    (*p.end)[size_t((*p.axes)[i])] = (*pads)[n + i];
  }
  return p;
}

std::string pad_mode(const NodeAttrs& ctx) {
  std::string mode = ctx.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    ctx.fail("mode must be constant, reflect, edge or wrap, got '" + mode + "'");
  return mode;
}

void infer_pad(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  const ir::Shape& in = ctx.input_shape(0);
  pad_mode(ctx);
  if (!in.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  PadParams p = pad_params(ctx, in.rank());
  std::vector<ir::Dim> out = in.dims;
  if (!p.axes) {
    for (auto& d : out) d = ctx.fresh_dim();
  } else if (!p.begin) {
    for (int a : *p.axes) out[size_t(a)] = ctx.fresh_dim();
  } else {
    for (size_t d = 0; d < out.size(); ++d) {
      int64_t add = (*p.begin)[d] + (*p.end)[d];
      if (add == 0) continue;
      out[d] = ir::dim_add(out[d], ir::Dim::constant(add));
      if (out[d].is_const() && out[d].value < 0)
        ctx.fail("pads " + std::to_string((*p.begin)[d]) + ", " + std::to_string((*p.end)[d]) +
                 " crop more than the " + in.dims[d].to_string() + " elements of dim " +
                 std::to_string(d));
    }
  }
  ctx.set_output(0, dt, ir::Shape(std::move(out)));
}

// The fill value of constant padding as a 0-d tensor of the data's dtype.
Tensor pad_fill(const KernelContext& ctx, DType dt) {
  Tensor fill(dt, {});
  if (ctx.opset() >= 11) {
    if (ctx.has_input(2) && ctx.input(2).numel() > 0) {
      const Tensor& v = ctx.input(2);
      if (v.dtype() != dt)
        ctx.fail(std::string("constant_value is ") + dtype_name(v.dtype()) + ", data is " +
                 dtype_name(dt));
      copy_elements(v, 0, fill, 0, 1);
    }
    return fill;
  }
  float value = ctx.attr_float("value", 0.0f);
  dispatch_all(dt, ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      fill.data<bool>()[0] = value != 0;
    } else if constexpr (!std::is_same_v<T, std::string>) {
      fill.data<T>()[0] = from_compute<T>(value);
    }
  });
  return fill;
}

// Input index for each output index along one axis of `dim` elements padded by (b, e).
std::vector<int64_t> pad_map(const KernelContext& ctx, int64_t dim, int64_t b, int64_t e,
                             const std::string& mode) {
  int64_t lo = std::max<int64_t>(0, -b), hi = dim - std::max<int64_t>(0, -e);
  int64_t n = hi - lo, pb = std::max<int64_t>(0, b), pe = std::max<int64_t>(0, e);
  if (n < 0 || n + pb + pe < 0)
    ctx.fail("pads " + std::to_string(b) + ", " + std::to_string(e) + " crop more than the " +
                 std::to_string(dim) + " elements of a dim",
             ErrorCode::kInvalidArgument);
  if (n == 0 && mode != "constant" && pb + pe > 0)
    ctx.fail("cannot " + mode + "-pad an empty dim", ErrorCode::kInvalidArgument);
  std::vector<int64_t> m(size_t(n + pb + pe));
  for (int64_t o = 0; o < int64_t(m.size()); ++o) {
    int64_t i = o - pb;
    if (i < 0 || i >= n) {
      if (mode == "constant") {
        m[size_t(o)] = -1;
        continue;
      }
      if (mode == "edge") {
        i = std::clamp<int64_t>(i, 0, n - 1);
      } else if (mode == "wrap") {
        i = ((i % n) + n) % n;
      } else if (n == 1) {  // reflect of a single element repeats it
        i = 0;
      } else {
        int64_t period = 2 * (n - 1);
        i = ((i % period) + period) % period;
        if (i >= n) i = period - i;
      }
    }
    m[size_t(o)] = lo + i;
  }
  return m;
}

void run_pad(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  std::string mode = pad_mode(ctx);
  PadParams p = pad_params(ctx, x.rank());
  if (!p.begin) ctx.fail("pads are required");
  std::vector<std::vector<int64_t>> maps;
  Dims out;
  for (int d = 0; d < x.rank(); ++d) {
    maps.push_back(
        pad_map(ctx, x.dims()[size_t(d)], (*p.begin)[size_t(d)], (*p.end)[size_t(d)], mode));
    out.push_back(int64_t(maps.back().size()));
  }
  const Tensor& y = ctx.output(0, x.dtype(), out);
  pad_copy(ctx, x, maps, out, y, pad_fill(ctx, x.dtype()));
}

std::vector<int> crop_axes(const NodeAttrs& ctx, int rank) {
  if (!ctx.has_attr("axes")) {
    std::vector<int> all;
    for (int d = 0; d < rank; ++d) all.push_back(d);
    return all;
  }
  return normalize_axes(ctx, ctx.attr_ints("axes"), rank);
}

void infer_center_crop_pad(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  const ir::Shape& in = ctx.input_shape(0);
  if (!in.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  auto axes = crop_axes(ctx, in.rank());
  std::vector<ir::Dim> out = in.dims;
  auto shape = ctx.input_dims_value(1);
  if (shape && shape->size() != axes.size())
    ctx.fail("shape has " + std::to_string(shape->size()) + " entries for " +
             std::to_string(axes.size()) + " axes");
  for (size_t i = 0; i < axes.size(); ++i) {
    ir::Dim d = shape ? (*shape)[i] : ctx.fresh_dim();
    if (d.is_const() && d.value < 0) ctx.fail("shape entries must be non-negative");
    out[size_t(axes[i])] = d;
  }
  ctx.set_output(0, dt, ir::Shape(std::move(out)));
}

void run_center_crop_pad(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  auto axes = crop_axes(ctx, x.rank());
  auto shape = *int_input(ctx, 1).value;
  if (shape.size() != axes.size())
    ctx.fail("shape has " + std::to_string(shape.size()) + " entries for " +
             std::to_string(axes.size()) + " axes");
  std::vector<std::vector<int64_t>> maps;
  Dims out = x.dims();
  for (int d = 0; d < x.rank(); ++d) maps.push_back(identity_map(out[size_t(d)]));
  for (size_t i = 0; i < axes.size(); ++i) {
    size_t ax = size_t(axes[i]);
    int64_t dim = x.dims()[ax], target = shape[i];
    if (target < 0) ctx.fail("shape entries must be non-negative", ErrorCode::kInvalidArgument);
    // Crop keeps the centre (the extra element of an odd difference is dropped at the end);
    // pad puts the extra zero at the end too.
    int64_t off = target <= dim ? (dim - target) / 2 : -((target - dim) / 2);
    auto& m = maps[ax];
    m.assign(size_t(target), -1);
    for (int64_t o = 0; o < target; ++o)
      if (o + off >= 0 && o + off < dim) m[size_t(o)] = o + off;
    out[ax] = target;
  }
  const Tensor& y = ctx.output(0, x.dtype(), out);
  pad_copy(ctx, x, maps, out, y, Tensor(x.dtype(), {}));
}

}  // namespace

void register_movement_slice_pad_ops(Registry& r) {
  r.add({"", "Slice", 1, PatternKind::kInjective, infer_slice, run_slice});
  r.add({"", "Pad", 1, PatternKind::kInjective, infer_pad, run_pad});
  r.add({"", "CenterCropPad", 18, PatternKind::kInjective, infer_center_crop_pad,
         run_center_crop_pad});
}

}  // namespace kiln::kernels
