// Quantization ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearConv, plus
// BitCast and NonMaxSuppression (small ops with no better home).
//
// Quantization granularity follows the shape of the scale (ONNX opsets 10..25): a one-element
// scale is per-tensor, a 1-d scale is per-axis (length x.shape[axis]), and a scale of x's rank
// with block_size > 0 is blocked (scale.shape[axis] == ceil(x.shape[axis] / block_size), other
// dims equal). Zero points have the scale's shape. Quantization rounds half to even and
// saturates to the target type's range; the division happens in the type numpy's promotion
// would use (float unless a double is involved, rounded to a 16-bit float when both operands
// are that type, or in the `precision` type when given), so results match the ONNX reference
// bit for bit. Float8/int4/int2 element types do not exist in Kiln and are reported unsupported.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ir/onnx_tensor.h"
#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

using ir::Dim;

// ---- Quantization parameters ------------------------------------------------------------------

bool is_quant_type(DType t) {
  return t == DType::kU8 || t == DType::kI8 || t == DType::kU16 || t == DType::kI16 ||
         t == DType::kI32;
}

void quant_range(DType t, double* lo, double* hi) {
  switch (t) {
    case DType::kU8:
      *lo = 0;
      *hi = 255;
      return;
    case DType::kI8:
      *lo = -128;
      *hi = 127;
      return;
    case DType::kU16:
      *lo = 0;
      *hi = 65535;
      return;
    case DType::kI16:
      *lo = -32768;
      *hi = 32767;
      return;
    default:
      *lo = -2147483648.0;
      *hi = 2147483647.0;
      return;
  }
}

// A DType from an ONNX type number attribute; 0 means "not given".
DType dtype_attr(const NodeAttrs& ctx, const char* name) {
  int64_t v = ctx.attr_int(name, 0);
  if (v == 0) return DType::kUndefined;
  auto t = ir::dtype_from_onnx(v);
  if (!t) ctx.unsupported(std::string(name) + " " + std::to_string(v) + " is not a supported type");
  return *t;
}

// Output type of QuantizeLinear: the zero point's, else output_dtype, else uint8.
DType quantize_out_type(const NodeAttrs& ctx, bool has_zp, DType zp_type) {
  DType attr = dtype_attr(ctx, "output_dtype");
  DType t = has_zp ? zp_type : (attr != DType::kUndefined ? attr : DType::kU8);
  if (has_zp && attr != DType::kUndefined && attr != zp_type)
    ctx.fail(std::string("output_dtype ") + dtype_name(attr) + " differs from the zero point's " +
             dtype_name(zp_type));
  if (!is_quant_type(t))
    ctx.unsupported(std::string("quantized type ") + dtype_name(t) + " is not supported");
  return t;
}

// Which scale / zero-point element serves each element of x.
struct QuantLayout {
  int64_t axis_len = 1;  // x.shape[axis]
  int64_t inner = 1;     // elements after the axis
  int64_t blocks = 1;    // scale.shape[axis] (blocked)
  int64_t block = 0;     // block_size (blocked), 0 otherwise
  enum { kTensor, kAxis, kBlocked } mode = kTensor;

  int64_t index(int64_t i) const {
    if (mode == kTensor) return 0;
    int64_t a = (i / inner) % axis_len;
    if (mode == kAxis) return a;
    int64_t outer = i / (inner * axis_len);
    return (outer * blocks + a / block) * inner + i % inner;
  }
};

// Validates the scale (and zero point) against x and describes the mapping.
QuantLayout quant_layout(const NodeAttrs& ctx, const Tensor& x, const Tensor& scale,
                         const Tensor* zp) {
  if (zp && zp->dims() != scale.dims())
    ctx.fail("zero point " + dims_to_string(zp->dims()) + " must have the scale's shape " +
                 dims_to_string(scale.dims()),
             ErrorCode::kInvalidArgument);
  QuantLayout q;
  int64_t block = ctx.attr_int("block_size", 0);
  if (block < 0) ctx.fail("block_size must be >= 0");
  if (scale.numel() == 1 && block == 0 && scale.rank() <= 1) return q;
  int axis = normalize_axis(ctx, ctx.attr_int("axis", 1), x.rank());
  q.axis_len = x.dim(axis);
  for (int i = axis + 1; i < x.rank(); ++i) q.inner *= x.dim(i);
  if (block == 0) {
    if (scale.rank() != 1 || scale.dim(0) != q.axis_len)
      ctx.fail("scale " + dims_to_string(scale.dims()) + " must be a scalar or 1-d of length " +
                   std::to_string(q.axis_len) + " (x.shape[" + std::to_string(axis) + "])",
               ErrorCode::kInvalidArgument);
    q.mode = QuantLayout::kAxis;
    return q;
  }
  bool ok = scale.rank() == x.rank();
  for (int i = 0; ok && i < x.rank(); ++i)
    ok = i == axis ? scale.dim(i) == (x.dim(i) + block - 1) / block : scale.dim(i) == x.dim(i);
  if (!ok)
    ctx.fail("blocked scale " + dims_to_string(scale.dims()) + " does not fit x " +
                 dims_to_string(x.dims()) + " with block_size " + std::to_string(block) +
                 " on axis " + std::to_string(axis),
             ErrorCode::kInvalidArgument);
  q.mode = QuantLayout::kBlocked;
  q.block = block;
  q.blocks = scale.dim(axis);
  return q;
}

// Load-time check of the scale shape where it is known.
void infer_quant_common(InferContext& ctx, DType out) {
  const ir::Shape& x = ctx.input_shape(0);
  const ir::Shape& s = ctx.input_shape(1);
  if (ctx.has_input(2)) {
    const ir::Shape& z = ctx.input_shape(2);
    bool bad = s.has_rank && z.has_rank && s.rank() != z.rank();
    for (int i = 0; !bad && s.has_rank && z.has_rank && i < s.rank(); ++i)
      bad = s.dims[size_t(i)].known_different(z.dims[size_t(i)]);
    if (bad)
      ctx.fail("zero point " + z.to_string() + " must have the scale's shape " + s.to_string());
  }
  int64_t block = ctx.attr_int("block_size", 0);
  if (x.has_rank && s.has_rank && block == 0 && s.rank() == 1) {
    int axis = normalize_axis(ctx, ctx.attr_int("axis", 1), x.rank());
    const Dim& n = s.dims[0];
    if (n.known_different(Dim::constant(1)) && n.known_different(x.dims[size_t(axis)]))
      ctx.fail("scale " + s.to_string() + " must be a scalar or have x.shape[" +
               std::to_string(axis) + "] = " + x.dims[size_t(axis)].to_string() + " entries");
  } else if (s.has_rank && block == 0 && s.rank() > 1) {
    ctx.fail("scale " + s.to_string() + " must be a scalar or 1-d without block_size");
  }
  ctx.set_output(0, out, x);
}

// Reads every element of a small tensor (scale, zero point) as double.
std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.element_as_double(i);
  return v;
}

// Rounds v through a float type (what storing it in that type would give).
double round_through(DType t, double v) {
  switch (t) {
    case DType::kF16:
      return double(float(Float16(float(v))));
    case DType::kBF16:
      return double(float(BFloat16(float(v))));
    case DType::kF32:
      return double(float(v));
    default:
      return v;
  }
}

// ---- QuantizeLinear -----------------------------------------------------------------------------

void infer_quantize(InferContext& ctx) {
  DType xt = ctx.input_dtype(0);
  if (!dtype_is_float(xt) && xt != DType::kI32)
    ctx.unsupported(std::string("input type ") + dtype_name(xt) + " is not supported");
  if (!dtype_is_float(ctx.input_dtype(1))) ctx.fail("y_scale must be a float tensor");
  bool has_zp = ctx.has_input(2);
  infer_quant_common(
      ctx, quantize_out_type(ctx, has_zp, has_zp ? ctx.input_dtype(2) : DType::kUndefined));
}

void run_quantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  DType out_t = quantize_out_type(ctx, zp != nullptr, zp ? zp->dtype() : DType::kUndefined);
  QuantLayout q = quant_layout(ctx, x, scale, zp);
  std::vector<double> s = as_doubles(scale);
  std::vector<double> z = zp ? as_doubles(*zp) : std::vector<double>(s.size(), 0.0);
  // The type the division is carried out in (see the file comment).
  DType prec = dtype_attr(ctx, "precision");
  DType st = scale.dtype(), xt = x.dtype();
  if (prec == DType::kUndefined) {
    if (xt == DType::kF64 || st == DType::kF64 || xt == DType::kI32)
      prec = DType::kF64;
    else if (xt == st)
      prec = xt;
    else
      prec = DType::kF32;
  } else if (!dtype_is_float(prec)) {
    ctx.fail(std::string("precision must be a float type, got ") + dtype_name(prec));
  }
  double lo, hi;
  quant_range(out_t, &lo, &hi);
  Tensor& out = ctx.output(0, out_t, x.dims());
  dispatch_numeric(xt, ctx, [&](auto xtag) {
    using X = typename decltype(xtag)::type;
    if constexpr (!std::is_same_v<X, int32_t> && !kIsFloat<X>) {
      ctx.unsupported(std::string("input type ") + dtype_name(xt) + " is not supported");
    } else {
      const X* xp = x.data<X>();
      dispatch_int(out_t, ctx, [&](auto otag) {
        using O = typename decltype(otag)::type;
        O* o = out.data<O>();
        for (int64_t i = 0; i < x.numel(); ++i) {
          int64_t k = q.index(i);
          double xv = round_through(prec, double(to_compute(xp[i])));
          double sv = round_through(prec, s[size_t(k)]);
          double v = prec == DType::kF64 ? xv / sv : double(float(xv) / float(sv));
          v = round_through(prec, v);
          if (std::isnan(v)) v = 0;
          v = std::nearbyint(v) + z[size_t(k)];
          o[i] = O(std::clamp(v, lo, hi));
        }
      });
    }
  });
}

// ---- DequantizeLinear ---------------------------------------------------------------------------

DType dequantize_out_type(const NodeAttrs& ctx, DType scale_t) {
  DType t = dtype_attr(ctx, "output_dtype");
  if (t == DType::kUndefined) t = scale_t;
  if (!dtype_is_float(t)) ctx.fail(std::string("output type must be float, got ") + dtype_name(t));
  return t;
}

void infer_dequantize(InferContext& ctx) {
  DType xt = ctx.input_dtype(0);
  if (!is_quant_type(xt))
    ctx.unsupported(std::string("quantized type ") + dtype_name(xt) + " is not supported");
  if (ctx.has_input(2) && ctx.input_dtype(2) != xt)
    ctx.fail(std::string("zero point type ") + dtype_name(ctx.input_dtype(2)) +
             " differs from x's " + dtype_name(xt));
  if (!dtype_is_float(ctx.input_dtype(1))) ctx.fail("x_scale must be a float tensor");
  infer_quant_common(ctx, dequantize_out_type(ctx, ctx.input_dtype(1)));
}

void run_dequantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (zp && zp->dtype() != x.dtype())
    ctx.fail("zero point type differs from x's", ErrorCode::kInvalidArgument);
  DType out_t = dequantize_out_type(ctx, scale.dtype());
  QuantLayout q = quant_layout(ctx, x, scale, zp);
  std::vector<double> s = as_doubles(scale);
  std::vector<double> z = zp ? as_doubles(*zp) : std::vector<double>(s.size(), 0.0);
  // The reference multiplies in float32 unless the scale is double.
  bool in_double = scale.dtype() == DType::kF64;
  Tensor& out = ctx.output(0, out_t, x.dims());
  dispatch_int(x.dtype(), ctx, [&](auto xtag) {
    using X = typename decltype(xtag)::type;
    const X* xp = x.data<X>();
    dispatch_float(out_t, ctx, [&](auto otag) {
      using O = typename decltype(otag)::type;
      O* o = out.data<O>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        int64_t k = q.index(i);
        double d = double(xp[i]) - z[size_t(k)];
        double v = in_double ? d * s[size_t(k)] : double(float(d) * float(s[size_t(k)]));
        o[i] = from_compute<O>(Compute<O>(v));
      }
    });
  });
}

// ---- DynamicQuantizeLinear ----------------------------------------------------------------------

void infer_dynamic_quantize(InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kF32)
    ctx.unsupported(std::string("input type ") + dtype_name(ctx.input_dtype(0)) +
                    " is not supported (float only)");
  ctx.set_output(0, DType::kU8, ctx.input_shape(0));
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kF32, ir::Shape(std::vector<Dim>{}));
  if (ctx.num_outputs() > 2) ctx.set_output(2, DType::kU8, ir::Shape(std::vector<Dim>{}));
}

// uint8 asymmetric quantization over the range [min(0, min x), max(0, max x)], in float32
// arithmetic as the ONNX reference does it.
void run_dynamic_quantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::kF32) ctx.unsupported("input must be float");
  const float* p = x.data<float>();
  float mx = 0, mn = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    mx = std::max(mx, p[i]);
    mn = std::min(mn, p[i]);
  }
  float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
  float zp = std::nearbyint(std::clamp(0.0f - mn / scale, 0.0f, 255.0f));
  Tensor& y = ctx.output(0, DType::kU8, x.dims());
  uint8_t* o = y.data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = std::nearbyint(p[i] / scale) + zp;
    if (std::isnan(v)) v = zp;
    o[i] = uint8_t(std::clamp(v, 0.0f, 255.0f));
  }
  if (ctx.num_outputs() > 1) ctx.output(1, DType::kF32, {}).data<float>()[0] = scale;
  if (ctx.num_outputs() > 2) ctx.output(2, DType::kU8, {}).data<uint8_t>()[0] = uint8_t(zp);
}

// ---- QLinearConv --------------------------------------------------------------------------------
// Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B (int32).
// The integer convolution sum((x - x_zp) * (w - w_zp)) + B is requantized with
// x_scale * w_scale[m] / y_scale, rounded half to even and saturated to y's type.

struct ConvGeometry {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends
  std::string auto_pad;
  int64_t group = 1;
};

ConvGeometry conv_geometry(const NodeAttrs& ctx, int spatial) {
  ConvGeometry g;
  size_t n = size_t(spatial);
  g.kernel = ctx.attr_ints("kernel_shape");
  g.strides = ctx.attr_ints("strides", std::vector<int64_t>(n, 1));
  g.dilations = ctx.attr_ints("dilations", std::vector<int64_t>(n, 1));
  g.pads = ctx.attr_ints("pads", std::vector<int64_t>(2 * n, 0));
  g.auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  g.group = ctx.attr_int("group", 1);
  if (g.auto_pad != "NOTSET" && g.auto_pad != "SAME_UPPER" && g.auto_pad != "SAME_LOWER" &&
      g.auto_pad != "VALID")
    ctx.fail("auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got " + g.auto_pad);
  if (g.strides.size() != n || g.dilations.size() != n || g.pads.size() != 2 * n ||
      (!g.kernel.empty() && g.kernel.size() != n))
    ctx.fail("strides, dilations, kernel_shape and pads must match the " + std::to_string(n) +
             " spatial dims");
  for (size_t i = 0; i < n; ++i)
    if (g.strides[i] < 1 || g.dilations[i] < 1 || g.pads[i] < 0 || g.pads[i + n] < 0)
      ctx.fail("strides and dilations must be >= 1 and pads >= 0");
  if (g.group < 1) ctx.fail("group must be >= 1");
  return g;
}

// Output spatial dim i (symbolic); fills the pads actually used when everything is concrete.
Dim conv_out_dim(ConvGeometry& g, size_t i, size_t n, const Dim& in, const Dim& k) {
  if (g.auto_pad == "SAME_UPPER" || g.auto_pad == "SAME_LOWER") {
    Dim out = dim_ceil_div(in, Dim::constant(g.strides[i]));
    if (out.is_const() && k.is_const() && in.is_const()) {
      int64_t eff = g.dilations[i] * (k.value - 1) + 1;
      int64_t total = std::max<int64_t>(0, (out.value - 1) * g.strides[i] + eff - in.value);
      int64_t small = total / 2;
      g.pads[i] = g.auto_pad == "SAME_UPPER" ? small : total - small;
      g.pads[i + n] = total - g.pads[i];
    }
    return out;
  }
  if (g.auto_pad == "VALID") g.pads[i] = g.pads[i + n] = 0;
  if (!k.is_const()) return Dim::unknown();
  int64_t eff = g.dilations[i] * (k.value - 1) + 1;
  Dim padded = dim_add(in, Dim::constant(g.pads[i] + g.pads[i + n]));
  if (padded.is_const() && padded.value < eff) return Dim::constant(-1);  // caller fails
  return dim_add(dim_div(dim_sub(padded, Dim::constant(eff)), Dim::constant(g.strides[i])),
                 Dim::constant(1));
}

void infer_qlinear_conv(InferContext& ctx) {
  DType xt = ctx.input_dtype(0);
  if (xt != DType::kU8 && xt != DType::kI8)
    ctx.unsupported(std::string("x type ") + dtype_name(xt) + " is not supported");
  DType wt = ctx.input_dtype(3);
  if (wt != DType::kU8 && wt != DType::kI8)
    ctx.unsupported(std::string("w type ") + dtype_name(wt) + " is not supported");
  DType yt = ctx.has_input(7) ? ctx.input_dtype(7) : xt;
  if (yt != DType::kU8 && yt != DType::kI8)
    ctx.unsupported(std::string("y type ") + dtype_name(yt) + " is not supported");
  const ir::Shape& x = ctx.input_shape(0);
  const ir::Shape& w = ctx.input_shape(3);
  if (!x.has_rank) {
    ctx.set_output(0, yt, ir::Shape::unranked());
    return;
  }
  if (x.rank() < 3) ctx.fail("x must be [N, C, spatial...], got " + x.to_string());
  if (w.has_rank && w.rank() != x.rank())
    ctx.fail("w " + w.to_string() + " must have x's rank " + std::to_string(x.rank()));
  size_t n = size_t(x.rank() - 2);
  ConvGeometry g = conv_geometry(ctx, int(n));
  if (w.has_rank) {
    Dim cin = dim_mul(w.dims[1], Dim::constant(g.group));
    if (cin.known_different(x.dims[1]))
      ctx.fail("w " + w.to_string() + " with group " + std::to_string(g.group) +
               " does not match x's " + x.dims[1].to_string() + " channels");
    if (w.dims[0].is_const() && w.dims[0].value % g.group != 0)
      ctx.fail("output channels " + w.dims[0].to_string() + " are not divisible by group");
  }
  std::vector<Dim> out{x.dims[0], w.has_rank ? w.dims[0] : ctx.fresh_dim()};
  for (size_t i = 0; i < n; ++i) {
    Dim k = !g.kernel.empty() ? Dim::constant(g.kernel[i])
                              : (w.has_rank ? w.dims[i + 2] : Dim::unknown());
    Dim o = conv_out_dim(g, i, n, x.dims[i + 2], k);
    if (o.is_const() && o.value < 0)
      ctx.fail("kernel is larger than the padded input " + x.to_string());
    out.push_back(o.is_unknown() ? ctx.fresh_dim() : o);
  }
  ctx.set_output(0, yt, ir::Shape(std::move(out)));
}

// A per-tensor (1 element) or per-output-channel (m elements) parameter, as doubles.
std::vector<double> per_channel(const KernelContext& ctx, int input, int64_t m, const char* what,
                                double def) {
  if (!ctx.has_input(input)) return std::vector<double>(size_t(m), def);
  const Tensor& t = ctx.input(input);
  if (t.numel() == 1) return std::vector<double>(size_t(m), t.element_as_double(0));
  if (t.rank() != 1 || t.numel() != m)
    ctx.fail(std::string(what) + " " + dims_to_string(t.dims()) + " must be a scalar or [" +
                 std::to_string(m) + "]",
             ErrorCode::kInvalidArgument);
  return as_doubles(t);
}

double scalar_param(const KernelContext& ctx, int input, const char* what, double def) {
  if (!ctx.has_input(input)) return def;
  const Tensor& t = ctx.input(input);
  if (t.numel() != 1)
    ctx.fail(std::string(what) + " must be a scalar, got " + dims_to_string(t.dims()),
             ErrorCode::kInvalidArgument);
  return t.element_as_double(0);
}

void run_qlinear_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(3);
  if (x.rank() < 3 || w.rank() != x.rank())
    ctx.fail("x " + dims_to_string(x.dims()) + " and w " + dims_to_string(w.dims()) +
                 " must be [N, C, spatial...] and [M, C/group, kernel...]",
             ErrorCode::kInvalidArgument);
  size_t n = size_t(x.rank() - 2);
  ConvGeometry g = conv_geometry(ctx, int(n));
  int64_t batch = x.dim(0), c = x.dim(1), m = w.dim(0), cg = w.dim(1);
  if (cg * g.group != c || m % g.group != 0)
    ctx.fail("w " + dims_to_string(w.dims()) + " with group " + std::to_string(g.group) +
                 " does not match x " + dims_to_string(x.dims()),
             ErrorCode::kInvalidArgument);
  Dims out_dims{batch, m};
  Dims in_sp(x.dims().begin() + 2, x.dims().end());
  Dims k_sp(w.dims().begin() + 2, w.dims().end());
  for (size_t i = 0; i < n; ++i) {
    if (k_sp[i] < 1) ctx.fail("w has an empty kernel dim", ErrorCode::kInvalidArgument);
    if (!g.kernel.empty() && g.kernel[i] != k_sp[i])
      ctx.fail("kernel_shape does not match w", ErrorCode::kInvalidArgument);
    Dim o = conv_out_dim(g, i, n, Dim::constant(in_sp[i]), Dim::constant(k_sp[i]));
    if (o.value < 0)
      ctx.fail("kernel is larger than the padded input", ErrorCode::kInvalidArgument);
    out_dims.push_back(o.value);
  }
  double x_scale = scalar_param(ctx, 1, "x_scale", 1);
  double x_zp = scalar_param(ctx, 2, "x_zero_point", 0);
  double y_scale = scalar_param(ctx, 6, "y_scale", 1);
  double y_zp = scalar_param(ctx, 7, "y_zero_point", 0);
  std::vector<double> w_scale = per_channel(ctx, 4, m, "w_scale", 1);
  std::vector<double> w_zp = per_channel(ctx, 5, m, "w_zero_point", 0);
  std::vector<double> bias = per_channel(ctx, 8, m, "B", 0);
  if (ctx.has_input(8) && ctx.input(8).numel() != m)
    ctx.fail("B must have " + std::to_string(m) + " entries", ErrorCode::kInvalidArgument);
  DType yt = ctx.has_input(7) ? ctx.input(7).dtype() : x.dtype();
  double lo, hi;
  quant_range(yt, &lo, &hi);

  // Zero-point-shifted copies of x and w as int32.
  std::vector<int32_t> xi(size_t(x.numel())), wi(size_t(w.numel()));
  for (int64_t i = 0; i < x.numel(); ++i)
    xi[size_t(i)] = int32_t(x.element_as_int(i) - int64_t(x_zp));
  int64_t w_per_m = w.numel() / std::max<int64_t>(m, 1);
  for (int64_t i = 0; i < w.numel(); ++i)
    wi[size_t(i)] = int32_t(w.element_as_int(i) - int64_t(w_zp[size_t(i / w_per_m)]));

  int64_t in_size = num_elements(in_sp), k_size = num_elements(k_sp);
  Dims o_sp(out_dims.begin() + 2, out_dims.end());
  int64_t out_size = num_elements(o_sp);
  auto in_strides = strides_of(in_sp);
  // Kernel taps as (spatial offsets) for the index walk below.
  std::vector<std::vector<int64_t>> taps(static_cast<size_t>(k_size), std::vector<int64_t>(n));
  for (int64_t t = 0; t < k_size; ++t) {
    int64_t rest = t;
    for (size_t i = n; i-- > 0;) {
      taps[size_t(t)][i] = (rest % k_sp[i]) * g.dilations[i];
      rest /= k_sp[i];
    }
  }
  Tensor& out = ctx.output(0, yt, out_dims);
  int64_t mg = m / g.group;
  std::vector<int64_t> opos(n), base(n);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t oc = 0; oc < m; ++oc) {
      int64_t grp = oc / mg;
      double mult = double(float(float(x_scale) * float(w_scale[size_t(oc)])) / float(y_scale));
      for (int64_t op = 0; op < out_size; ++op) {
        int64_t rest = op;
        for (size_t i = n; i-- > 0;) {
          opos[i] = rest % o_sp[i];
          rest /= o_sp[i];
          base[i] = opos[i] * g.strides[i] - g.pads[i];
        }
        int64_t acc = 0;
        for (int64_t t = 0; t < k_size; ++t) {
          int64_t off = 0;
          bool inside = true;
          for (size_t i = 0; i < n && inside; ++i) {
            int64_t p = base[i] + taps[size_t(t)][i];
            inside = p >= 0 && p < in_sp[i];
            off += p * in_strides[i];
          }
          if (!inside) continue;
          for (int64_t ci = 0; ci < cg; ++ci) {
            int64_t xc = grp * cg + ci;
            acc += int64_t(xi[size_t((b * c + xc) * in_size + off)]) *
                   wi[size_t((oc * cg + ci) * k_size + t)];
          }
        }
        double v = double(acc + int64_t(bias[size_t(oc)])) * mult + y_zp;
        if (std::isnan(v)) v = y_zp;  // a zero or NaN scale; keep the cast below defined
        v = std::nearbyint(std::clamp(v, lo, hi));
        int64_t flat = (b * m + oc) * out_size + op;
        if (yt == DType::kU8)
          out.data<uint8_t>()[flat] = uint8_t(v);
        else
          out.data<int8_t>()[flat] = int8_t(v);
      }
    }
  }
}

// ---- BitCast ------------------------------------------------------------------------------------

DType bitcast_target(const NodeAttrs& ctx, DType from) {
  DType to = dtype_attr(ctx, "to");
  if (to == DType::kUndefined) ctx.fail("attribute 'to' is required");
  if (from == DType::kString || to == DType::kString) ctx.fail("BitCast does not take strings");
  if (dtype_size(from) != dtype_size(to))
    ctx.fail(std::string("cannot bitcast ") + dtype_name(from) + " to " + dtype_name(to) +
             ": sizes differ");
  return to;
}

void infer_bitcast(InferContext& ctx) {
  ctx.set_output(0, bitcast_target(ctx, ctx.input_dtype(0)), ctx.input_shape(0));
}

void run_bitcast(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  DType to = bitcast_target(ctx, x.dtype());
  Tensor& out = ctx.output(0, to, x.dims());
  if (out.raw_data() != x.raw_data() && x.nbytes() > 0)
    std::memmove(out.raw_data(), x.raw_data(), x.nbytes());
  // A C++ bool must hold 0 or 1: map any non-zero byte to true.
  if (to == DType::kBool) {
    auto* b = static_cast<uint8_t*>(out.raw_data());
    for (int64_t i = 0; i < out.numel(); ++i) b[i] = b[i] != 0;
  }
}

// ---- NonMaxSuppression --------------------------------------------------------------------------

void infer_nms(InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kF32 || ctx.input_dtype(1) != DType::kF32)
    ctx.unsupported("boxes and scores must be float");
  const ir::Shape& b = ctx.input_shape(0);
  const ir::Shape& s = ctx.input_shape(1);
  if (b.has_rank && (b.rank() != 3 || b.dims[2].known_different(Dim::constant(4))))
    ctx.fail("boxes must be [num_batches, spatial_dimension, 4], got " + b.to_string());
  if (s.has_rank && s.rank() != 3)
    ctx.fail("scores must be [batches, classes, boxes], got " + s.to_string());
  if (b.has_rank && s.has_rank &&
      (b.dims[0].known_different(s.dims[0]) || b.dims[1].known_different(s.dims[2])))
    ctx.fail("boxes " + b.to_string() + " and scores " + s.to_string() + " do not match");
  int64_t cpb = ctx.attr_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) ctx.fail("center_point_box must be 0 or 1");
  ctx.set_output(0, DType::kI64, ir::Shape({ctx.fresh_dim(), Dim::constant(3)}));
}

struct Box {
  float x1, y1, x2, y2;
};

Box box_at(const float* p, bool center) {
  if (center) {
    float xc = p[0], yc = p[1], w = p[2], h = p[3];
    return {xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2};
  }
  // [y1, x1, y2, x2], either corner order.
  return {std::min(p[1], p[3]), std::min(p[0], p[2]), std::max(p[1], p[3]), std::max(p[0], p[2])};
}

// True when the IoU of a and b exceeds the threshold (degenerate boxes never suppress).
bool suppresses(const Box& a, const Box& b, float threshold) {
  float ix1 = std::max(a.x1, b.x1), iy1 = std::max(a.y1, b.y1);
  float ix2 = std::min(a.x2, b.x2), iy2 = std::min(a.y2, b.y2);
  if (ix2 <= ix1 || iy2 <= iy1) return false;
  float inter = (ix2 - ix1) * (iy2 - iy1);
  float area_a = (a.x2 - a.x1) * (a.y2 - a.y1), area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
  float uni = area_a + area_b - inter;
  if (area_a <= 0 || area_b <= 0 || uni <= 0) return false;
  return inter / uni > threshold;
}

void run_nms(KernelContext& ctx) {
  const Tensor& boxes = ctx.input(0);
  const Tensor& scores = ctx.input(1);
  if (boxes.rank() != 3 || boxes.dim(2) != 4 || scores.rank() != 3 ||
      boxes.dim(0) != scores.dim(0) || boxes.dim(1) != scores.dim(2))
    ctx.fail("boxes " + dims_to_string(boxes.dims()) + " and scores " +
                 dims_to_string(scores.dims()) + " must be [B, N, 4] and [B, C, N]",
             ErrorCode::kInvalidArgument);
  auto scalar = [&](int i, const char* what) -> const Tensor* {
    if (!ctx.has_input(i)) return nullptr;
    const Tensor& t = ctx.input(i);
    if (t.numel() == 0) return nullptr;
    if (t.numel() != 1)
      ctx.fail(std::string(what) + " must be a scalar", ErrorCode::kInvalidArgument);
    return &t;
  };
  const Tensor* max_t = scalar(2, "max_output_boxes_per_class");
  const Tensor* iou_t = scalar(3, "iou_threshold");
  const Tensor* score_t = scalar(4, "score_threshold");
  int64_t max_out = max_t ? std::max<int64_t>(0, max_t->element_as_int(0)) : 0;
  float iou = iou_t ? float(iou_t->element_as_double(0)) : 0.0f;
  float min_score = score_t ? float(score_t->element_as_double(0)) : 0.0f;
  bool center = ctx.attr_int("center_point_box", 0) == 1;
  int64_t nb = boxes.dim(0), nbox = boxes.dim(1), nc = scores.dim(1);
  const float* bp = boxes.data<float>();
  const float* sp = scores.data<float>();
  std::vector<int64_t> sel;  // triples
  std::vector<int64_t> order;
  std::vector<Box> kept;
  for (int64_t b = 0; b < nb && max_out > 0; ++b) {
    for (int64_t c = 0; c < nc; ++c) {
      const float* s = sp + (b * nc + c) * nbox;
      order.clear();
      for (int64_t i = 0; i < nbox; ++i)
        if (!score_t || s[i] > min_score) order.push_back(i);
      // Highest score first; equal scores keep the lower index first.
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t bb) { return s[a] > s[bb]; });
      kept.clear();
      for (int64_t i : order) {
        if (int64_t(kept.size()) >= max_out) break;
        Box bx = box_at(bp + (b * nbox + i) * 4, center);
        bool drop = false;
        for (const Box& k : kept)
          if (suppresses(k, bx, iou)) {
            drop = true;
            break;
          }
        if (drop) continue;
        kept.push_back(bx);
        sel.insert(sel.end(), {b, c, i});
      }
    }
  }
  int64_t count = int64_t(sel.size() / 3);
  Tensor& out = ctx.output(0, DType::kI64, {count, 3});
  std::copy(sel.begin(), sel.end(), out.data<int64_t>());
}

}  // namespace

void register_quantize_ops(Registry& r) {
  r.add({"", "QuantizeLinear", 10, PatternKind::kOpaque, infer_quantize, run_quantize});
  r.add({"", "DequantizeLinear", 10, PatternKind::kOpaque, infer_dequantize, run_dequantize});
  r.add({"", "DynamicQuantizeLinear", 11, PatternKind::kOpaque, infer_dynamic_quantize,
         run_dynamic_quantize});
  r.add({"", "QLinearConv", 10, PatternKind::kOpaque, infer_qlinear_conv, run_qlinear_conv});
  r.add({"", "BitCast", 26, PatternKind::kOpaque, infer_bitcast, run_bitcast});
  r.add({"", "NonMaxSuppression", 10, PatternKind::kOpaque, infer_nms, run_nms});
}

}  // namespace kiln::kernels
