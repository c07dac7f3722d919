// Convolution reference kernels: Conv, ConvTranspose and ConvInteger, for any number of spatial
// dims (1-D, 2-D, 3-D, ...), with groups, strides, dilations, explicit pads and auto_pad.
//
// Geometry (per spatial dim, effective kernel dk = (k - 1) * dilation + 1):
//   Conv:          out = floor((in + pad_begin + pad_end - dk) / stride) + 1; SAME_* gives
//                  out = ceil(in / stride), the total padding split evenly with the odd pixel
//                  at the end (SAME_UPPER) or at the beginning (SAME_LOWER); VALID pads nothing.
//   ConvTranspose: out = stride * (in - 1) + output_padding + dk - pad_begin - pad_end, or the
//                  output_shape attribute; SAME_* gives out = in * stride.
// Both kernels walk, per (batch, output channel), every (input channel, kernel position) and then
// every row of the output (Conv) or input (ConvTranspose); the innermost loop runs along the last
// spatial dim over the range where the tap is in bounds, so no per-element bounds checks or index
// arithmetic happen. Products accumulate in float (f16/bf16/f32) or double (f64) per output
// plane. ConvInteger subtracts the zero points into int64 operands and reuses the same loops
// (padding then contributes the zero point, i.e. zero after centering).
#include <algorithm>
#include <string>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

// Floor division for a positive divisor.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The attributes shared by Conv, ConvTranspose and ConvInteger, validated for `r` spatial dims.
struct ConvAttrs {
  std::string auto_pad;
  int64_t group = 1;
  std::vector<int64_t> kernel;  // -1 where unknown (symbolic W at load time)
  std::vector<int64_t> strides, dilations, pads, output_padding, output_shape;
};

ConvAttrs read_conv_attrs(const NodeAttrs& ctx, int r, const std::vector<ir::Dim>& w_spatial) {
  ConvAttrs a;
  auto sized = [&](const char* name, std::vector<int64_t> v, size_t n, int64_t min) {
    if (v.size() != n)
      ctx.fail(std::string(name) + " has " + std::to_string(v.size()) + " values, expected " +
               std::to_string(n));
    for (int64_t x : v)
      if (x < min)
        ctx.fail(std::string(name) + " value " + std::to_string(x) +
                 " must be >= " + std::to_string(min));
    return v;
  };
  const size_t n = size_t(r);
  a.auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  if (a.auto_pad != "NOTSET" && a.auto_pad != "SAME_UPPER" && a.auto_pad != "SAME_LOWER" &&
      a.auto_pad != "VALID")
    ctx.fail("auto_pad '" + a.auto_pad + "' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID");
  a.group = ctx.attr_int("group", 1);
  if (a.group < 1) ctx.fail("group must be >= 1, got " + std::to_string(a.group));
  a.strides = sized("strides", ctx.attr_ints("strides", std::vector<int64_t>(n, 1)), n, 1);
  a.dilations = sized("dilations", ctx.attr_ints("dilations", std::vector<int64_t>(n, 1)), n, 1);
  a.pads = sized("pads", ctx.attr_ints("pads", std::vector<int64_t>(2 * n, 0)), 2 * n, 0);
  if (a.auto_pad == "VALID") std::fill(a.pads.begin(), a.pads.end(), 0);
  a.output_padding =
      sized("output_padding", ctx.attr_ints("output_padding", std::vector<int64_t>(n, 0)), n, 0);
  if (ctx.has_attr("output_shape")) {
    auto os = ctx.attr_ints("output_shape");
    // Some exporters give the full output shape (N, C, spatial...): keep the spatial part.
    if (os.size() == n + 2) os.erase(os.begin(), os.begin() + 2);
    a.output_shape = sized("output_shape", os, n, 0);
  }
  for (const auto& d : w_spatial)
    if (d.is_const() && d.value < 1) ctx.fail("W has an empty kernel dim");
  if (w_spatial.size() != n)
    ctx.fail("W has " + std::to_string(w_spatial.size()) + " spatial dims, X has " +
             std::to_string(n));
  if (ctx.has_attr("kernel_shape")) {
    a.kernel = sized("kernel_shape", ctx.attr_ints("kernel_shape"), n, 1);
    for (size_t i = 0; i < n; ++i)
      if (w_spatial[i].is_const() && w_spatial[i].value != a.kernel[i])
        ctx.fail("kernel_shape " + std::to_string(a.kernel[i]) + " differs from W's dim " +
                 std::to_string(w_spatial[i].value) + " (spatial axis " + std::to_string(i) + ")");
  } else {
    for (size_t i = 0; i < n; ++i)
      a.kernel.push_back(w_spatial[i].is_const() ? w_spatial[i].value : -1);
  }
  return a;
}

// in + c for a constant c of either sign (prints "h-2", not "h+-2").
ir::Dim dim_plus(const ir::Dim& in, int64_t c) {
  return c >= 0 ? dim_add(in, ir::Dim::constant(c)) : dim_sub(in, ir::Dim::constant(-c));
}

// One spatial dim of the output and the padding before it (valid when the dim is concrete).
struct SpatialDim {
  ir::Dim out;
  int64_t pad_begin = 0;
};

SpatialDim conv_dim(const NodeAttrs& ctx, const ConvAttrs& a, size_t i, const ir::Dim& in) {
  const int64_t k = a.kernel[i], s = a.strides[i], d = a.dilations[i];
  if (k < 0) return {ir::Dim::unknown(), 0};
  const int64_t dk = (k - 1) * d + 1;
  if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
    if (!in.is_const()) return {dim_ceil_div(in, ir::Dim::constant(s)), 0};
    int64_t out = (in.value + s - 1) / s;
    int64_t total = std::max<int64_t>(0, (out - 1) * s + dk - in.value);
    int64_t pb = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    return {ir::Dim::constant(out), pb};
  }
  const int64_t pb = a.pads[i], pe = a.pads[i + a.kernel.size()];
  if (!in.is_const()) {
    if (s == 1) return {dim_plus(in, pb + pe - dk + 1), pb};
    return {
        dim_add(dim_div(dim_plus(in, pb + pe - dk), ir::Dim::constant(s)), ir::Dim::constant(1)),
        pb};
  }
  int64_t span = in.value + pb + pe - dk;
  if (span < 0)
    ctx.fail("spatial axis " + std::to_string(i) + ": padded input " +
             std::to_string(in.value + pb + pe) + " is smaller than the dilated kernel " +
             std::to_string(dk));
  return {ir::Dim::constant(span / s + 1), pb};
}

SpatialDim conv_transpose_dim(const NodeAttrs& ctx, const ConvAttrs& a, size_t i,
                              const ir::Dim& in) {
  const int64_t k = a.kernel[i], s = a.strides[i], d = a.dilations[i];
  const int64_t op = a.output_padding[i];
  if (k < 0) return {ir::Dim::unknown(), 0};
  const int64_t dk = (k - 1) * d + 1;
  const bool same = a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER";
  if (!a.output_shape.empty() || same) {
    ir::Dim out = !a.output_shape.empty() ? ir::Dim::constant(a.output_shape[i])
                                          : dim_mul(in, ir::Dim::constant(s));
    if (!in.is_const() || !out.is_const()) return {out, 0};
    if (!same) return {out, a.pads[i]};  // the ONNX reference keeps explicit (or zero) pads
    int64_t total = s * (in.value - 1) + op + dk - out.value;
    int64_t pb = a.auto_pad == "SAME_UPPER" ? floor_div(total, 2) : total - floor_div(total, 2);
    return {out, pb};
  }
  const int64_t pb = a.pads[i], pe = a.pads[i + a.kernel.size()];
  if (!in.is_const())
    return {dim_plus(dim_mul(dim_sub(in, ir::Dim::constant(1)), ir::Dim::constant(s)),
                     op + dk - pb - pe),
            pb};
  int64_t out = s * (in.value - 1) + op + dk - pb - pe;
  if (out < 0)
    ctx.fail("spatial axis " + std::to_string(i) + ": pads make the output size negative (" +
             std::to_string(out) + ")");
  return {ir::Dim::constant(out), pb};
}

// Shape inference shared by the three ops. `transpose`: W is (C, M/group, k...), else
// (M, C/group, k...). Returns false (after setting an unranked output) when ranks are unknown.
void infer_conv_like(InferContext& ctx, bool transpose, DType out_dtype) {
  const ir::Shape& x = ctx.input_shape(0);
  const ir::Shape& w = ctx.input_shape(1);
  if (!x.has_rank && !w.has_rank) {
    ctx.set_output(0, out_dtype, ir::Shape::unranked());
    return;
  }
  const int rank = x.has_rank ? x.rank() : w.rank();
  if (rank < 3)
    ctx.fail("X must have rank >= 3 (N, C, spatial...), got rank " + std::to_string(rank));
  if (x.has_rank && w.has_rank && w.rank() != rank)
    ctx.fail("W " + w.to_string() + " and X " + x.to_string() + " have different ranks");
  const int r = rank - 2;
  auto dim_or_unknown = [](const ir::Shape& s, int i) {
    return s.has_rank ? s.dims[size_t(i)] : ir::Dim::unknown();
  };
  std::vector<ir::Dim> w_spatial;
  for (int i = 0; i < r; ++i) w_spatial.push_back(dim_or_unknown(w, i + 2));
  ConvAttrs a = read_conv_attrs(ctx, r, w_spatial);
  const ir::Dim c = dim_or_unknown(x, 1), w0 = dim_or_unknown(w, 0), w1 = dim_or_unknown(w, 1);
  const ir::Dim g = ir::Dim::constant(a.group);
  ir::Dim m;
  if (transpose) {
    if (c.known_different(w0))
      ctx.fail("X has " + c.to_string() + " channels but W " + w.to_string() + " expects " +
               w0.to_string());
    m = dim_mul(w1, g);
  } else {
    if (c.known_different(dim_mul(w1, g)))
      ctx.fail("X has " + c.to_string() + " channels but W " + w.to_string() + " with group " +
               std::to_string(a.group) + " expects " + dim_mul(w1, g).to_string());
    if (w0.is_const() && w0.value % a.group != 0)
      ctx.fail("W's output channels " + w0.to_string() + " are not divisible by group " +
               std::to_string(a.group));
    m = w0;
  }
  if (ctx.has_input(2) && !ctx.op_type().ends_with("Integer")) {
    const ir::Shape& b = ctx.input_shape(2);
    if (b.has_rank && (b.rank() != 1 || b.dims[0].known_different(m)))
      ctx.fail("bias B " + b.to_string() + " must be 1-D with " + m.to_string() + " elements");
  }
  std::vector<ir::Dim> out{dim_or_unknown(x, 0), m};
  for (int i = 0; i < r; ++i) {
    ir::Dim in = dim_or_unknown(x, i + 2);
    out.push_back(transpose ? conv_transpose_dim(ctx, a, size_t(i), in).out
                            : conv_dim(ctx, a, size_t(i), in).out);
  }
  ctx.set_output(0, out_dtype, ir::Shape(std::move(out)));
}

// Concrete geometry of one call.
struct ConvGeom {
  int64_t N = 0, C = 0, M = 0, group = 1;
  Dims in, out, kernel, strides, dilations, pad_begin;  // spatial
  Dims out_dims;                                        // full (N, M, out...)
};

ConvGeom conv_geom(const KernelContext& ctx, const Tensor& x, const Tensor& w, bool transpose) {
  if (x.rank() < 3)
    ctx.fail("X must have rank >= 3 (N, C, spatial...), got " + dims_to_string(x.dims()));
  if (w.rank() != x.rank())
    ctx.fail("W " + dims_to_string(w.dims()) + " and X " + dims_to_string(x.dims()) +
             " have different ranks");
  const int r = x.rank() - 2;
  std::vector<ir::Dim> w_spatial;
  for (int i = 0; i < r; ++i) w_spatial.push_back(ir::Dim::constant(w.dim(i + 2)));
  ConvAttrs a = read_conv_attrs(ctx, r, w_spatial);
  ConvGeom g;
  g.N = x.dim(0);
  g.C = x.dim(1);
  g.group = a.group;
  if (g.C % g.group != 0)
    ctx.fail("X's " + std::to_string(g.C) + " channels are not divisible by group " +
                 std::to_string(g.group),
             ErrorCode::kInvalidArgument);
  if (transpose) {
    if (w.dim(0) != g.C)
      ctx.fail("X has " + std::to_string(g.C) + " channels but W " + dims_to_string(w.dims()) +
                   " expects " + std::to_string(w.dim(0)),
               ErrorCode::kInvalidArgument);
    g.M = w.dim(1) * g.group;
  } else {
    if (w.dim(1) * g.group != g.C || w.dim(0) % g.group != 0)
      ctx.fail("X has " + std::to_string(g.C) + " channels but W " + dims_to_string(w.dims()) +
                   " with group " + std::to_string(g.group) + " expects " +
                   std::to_string(w.dim(1) * g.group),
               ErrorCode::kInvalidArgument);
    g.M = w.dim(0);
  }
  g.out_dims = {g.N, g.M};
  for (int i = 0; i < r; ++i) {
    ir::Dim in = ir::Dim::constant(x.dim(i + 2));
    SpatialDim sd =
        transpose ? conv_transpose_dim(ctx, a, size_t(i), in) : conv_dim(ctx, a, size_t(i), in);
    g.in.push_back(x.dim(i + 2));
    g.out.push_back(sd.out.value);
    g.out_dims.push_back(sd.out.value);
    g.pad_begin.push_back(sd.pad_begin);
  }
  g.kernel = a.kernel;
  g.strides = a.strides;
  g.dilations = a.dilations;
  return g;
}

// Odometer over a multi-index with the given bounds (last fastest); false after the last one.
bool next_index(std::vector<int64_t>& idx, const Dims& bound) {
  for (int d = int(idx.size()) - 1; d >= 0; --d) {
    if (++idx[size_t(d)] < bound[size_t(d)]) return true;
    idx[size_t(d)] = 0;
  }
  return false;
}

// Range [lo, hi) of j in [0, n) such that j * s + off lies in [0, limit).
void tap_range(int64_t off, int64_t s, int64_t limit, int64_t n, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = limit - 1 - off < 0 ? 0 : std::min(n, (limit - 1 - off) / s + 1);
}

// Conv (and transposed conv) over Acc arrays; y_plane(n, m) receives the finished plane.
// Conv:      out[o] += x[o * s + k * d - pb] * w[k]   (rows of the output drive the loop)
// Transpose: out[i * s + k * d - pb] += x[i] * w[k]   (rows of the input drive the loop)
template <class A, class Emit>
void conv_planes(const ConvGeom& g, bool transpose, const A* x, const A* w, const A* bias,
                 Emit&& emit) {
  const size_t r = g.in.size();
  const int64_t in_size = num_elements(g.in), out_size = num_elements(g.out);
  const int64_t ksize = num_elements(g.kernel);
  const int64_t cg = g.C / g.group, mg = g.M / g.group;
  // "Driver" is the tensor whose rows the loop walks; "other" is written (transpose) or read.
  const Dims& drv = transpose ? g.in : g.out;
  const Dims& oth = transpose ? g.out : g.in;
  const auto oth_strides = strides_of(oth);
  const int64_t drv_last = drv[r - 1], oth_last = oth[r - 1];
  const int64_t s_last = g.strides[r - 1];
  Dims drv_outer(drv.begin(), drv.end() - 1);
  if (num_elements(drv) == 0) {
    // Nothing to walk: every output plane is just the bias.
    std::vector<A> acc(static_cast<size_t>(out_size));
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t oc = 0; oc < g.M; ++oc) {
        std::fill(acc.begin(), acc.end(), bias ? bias[oc] : A(0));
        emit(n, oc, acc.data());
      }
    return;
  }
  std::vector<A> acc(static_cast<size_t>(out_size));
  std::vector<int64_t> kidx(r), didx(r - 1);
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oc = 0; oc < g.M; ++oc) {
      const int64_t gi = oc / mg, m = oc % mg;
      std::fill(acc.begin(), acc.end(), bias ? bias[oc] : A(0));
      for (int64_t c = 0; c < cg; ++c) {
        const int64_t ic = gi * cg + c;
        const A* xp = x + (n * g.C + ic) * in_size;
        const A* wk = transpose ? w + (ic * mg + m) * ksize : w + (oc * cg + c) * ksize;
        std::fill(kidx.begin(), kidx.end(), 0);
        for (int64_t kp = 0; kp < ksize; ++kp, next_index(kidx, g.kernel)) {
          const A wv = wk[kp];
          const int64_t off_last = kidx[r - 1] * g.dilations[r - 1] - g.pad_begin[r - 1];
          int64_t lo, hi;
          tap_range(off_last, s_last, oth_last, drv_last, lo, hi);
          if (lo >= hi) continue;
          std::fill(didx.begin(), didx.end(), 0);
          int64_t row = 0;
          do {
            // The other tensor's row for this driver row and kernel position, if in bounds.
            int64_t oth_off = 0;
            bool inside = true;
            for (size_t dd = 0; dd + 1 < r; ++dd) {
              int64_t p = didx[dd] * g.strides[dd] + kidx[dd] * g.dilations[dd] - g.pad_begin[dd];
              if (p < 0 || p >= oth[dd]) {
                inside = false;
                break;
              }
              oth_off += p * oth_strides[dd];
            }
            if (inside) {
              if (!transpose) {
                A* out_row = acc.data() + row * drv_last;
                const A* in_row = xp + oth_off;
                if (s_last == 1) {
                  for (int64_t j = lo; j < hi; ++j) out_row[j] += wv * in_row[j + off_last];
                } else {
                  for (int64_t j = lo; j < hi; ++j)
                    out_row[j] += wv * in_row[j * s_last + off_last];
                }
              } else {
                A* out_row = acc.data() + oth_off;
                const A* in_row = xp + row * drv_last;
                for (int64_t j = lo; j < hi; ++j) out_row[j * s_last + off_last] += wv * in_row[j];
              }
            }
            ++row;
          } while (next_index(didx, drv_outer));
        }
      }
      emit(n, oc, acc.data());
    }
  }
}

// Elements as Acc: borrowed when already that type, else converted once.
template <class A, class T>
const A* as_acc(const Tensor& t, std::vector<A>& storage) {
  const T* p = t.data<T>();
  if constexpr (std::is_same_v<T, A>) {
    return p;
  } else {
    storage.resize(size_t(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) storage[size_t(i)] = A(to_compute(p[i]));
    return storage.data();
  }
}

void run_conv_float(KernelContext& ctx, bool transpose) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (w.dtype() != x.dtype()) ctx.fail("X and W have different types");
  ConvGeom g = conv_geom(ctx, x, w, transpose);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (b && (b->dtype() != x.dtype() || b->rank() != 1 || b->dim(0) != g.M))
    ctx.fail("bias B " + dims_to_string(b->dims()) + " must be 1-D with " + std::to_string(g.M) +
                 " elements of X's type",
             ErrorCode::kInvalidArgument);
  Tensor& y = ctx.output(0, x.dtype(), g.out_dims);
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = Compute<T>;
    std::vector<A> xs, ws, bs;
    const A* xa = as_acc<A, T>(x, xs);
    const A* wa = as_acc<A, T>(w, ws);
    const A* ba = b ? as_acc<A, T>(*b, bs) : nullptr;
    T* yp = y.data<T>();
    const int64_t plane = num_elements(g.out);
    conv_planes<A>(g, transpose, xa, wa, ba, [&](int64_t n, int64_t oc, const A* acc) {
      T* dst = yp + (n * g.M + oc) * plane;
      for (int64_t i = 0; i < plane; ++i) dst[i] = from_compute<T>(acc[i]);
    });
  });
}

void infer_conv(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t) ctx.fail("X and W have different types");
  infer_conv_like(ctx, false, t);
}
void run_conv(KernelContext& ctx) { run_conv_float(ctx, false); }

void infer_conv_transpose(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t) ctx.fail("X and W have different types");
  infer_conv_like(ctx, true, t);
}
void run_conv_transpose(KernelContext& ctx) { run_conv_float(ctx, true); }

// ConvInteger: y = conv(x - x_zero_point, w - w_zero_point) in int32; w_zero_point may be
// per output channel.
void infer_conv_integer(InferContext& ctx) { infer_conv_like(ctx, false, DType::kI32); }

void run_conv_integer(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  for (const Tensor* t : {&x, &w})
    if (t->dtype() != DType::kU8 && t->dtype() != DType::kI8)
      ctx.unsupported(std::string("ConvInteger inputs must be uint8 or int8, got ") +
                      dtype_name(t->dtype()));
  ConvGeom g = conv_geom(ctx, x, w, false);
  int64_t xz = 0;
  if (ctx.has_input(2)) {
    const Tensor& z = ctx.input(2);
    if (z.numel() != 1 || z.dtype() != x.dtype())
      ctx.fail("x_zero_point must be a scalar of x's type", ErrorCode::kInvalidArgument);
    xz = z.element_as_int(0);
  }
  std::vector<int64_t> wz(size_t(g.M), 0);
  if (ctx.has_input(3)) {
    const Tensor& z = ctx.input(3);
    if (z.dtype() != w.dtype() || (z.numel() != 1 && z.numel() != g.M))
      ctx.fail("w_zero_point must be a scalar or have one value per output channel (" +
                   std::to_string(g.M) + ") of w's type",
               ErrorCode::kInvalidArgument);
    for (int64_t m = 0; m < g.M; ++m) wz[size_t(m)] = z.element_as_int(z.numel() == 1 ? 0 : m);
  }
  std::vector<int64_t> xc(size_t(x.numel())), wc(size_t(w.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) xc[size_t(i)] = x.element_as_int(i) - xz;
  const int64_t per_m = g.M ? w.numel() / g.M : 0;
  for (int64_t i = 0; i < w.numel(); ++i)
    wc[size_t(i)] = w.element_as_int(i) - wz[size_t(i / per_m)];
  Tensor& y = ctx.output(0, DType::kI32, g.out_dims);
  int32_t* yp = y.data<int32_t>();
  const int64_t plane = num_elements(g.out);
  conv_planes<int64_t>(g, false, xc.data(), wc.data(), nullptr,
                       [&](int64_t n, int64_t oc, const int64_t* acc) {
                         int32_t* dst = yp + (n * g.M + oc) * plane;
                         for (int64_t i = 0; i < plane; ++i) dst[i] = static_cast<int32_t>(acc[i]);
                       });
}

}  // namespace

void register_conv_ops(Registry& r) {
  r.add({"", "Conv", 1, PatternKind::kOutEwiseFusable, infer_conv, run_conv});
  r.add({"", "ConvTranspose", 1, PatternKind::kOutEwiseFusable, infer_conv_transpose,
         run_conv_transpose});
  r.add({"", "ConvInteger", 10, PatternKind::kOpaque, infer_conv_integer, run_conv_integer});
}

}  // namespace kiln::kernels
