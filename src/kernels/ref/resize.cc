// Resizing ops: Resize (opsets 10-19+), Upsample (opsets 7-9) and GridSample (16+).
//
// Resize follows the ONNX reference implementation, which the node tests are generated from:
// each axis maps an output coordinate x to an input coordinate x_original through
// coordinate_transformation_mode, where "length_resized" is the real-valued in_len * scale (not the
// rounded output length; this matters for scales like 0.6). Interpolation is separable: per axis,
// each output index gets a few (input index, weight) taps; indices past the edge repeat the edge
// value (or get weight 0 with exclude_outside). The taps around x_original are floor(x_original)
// and up, except that an integral x_original counts as ratio 1 from the pixel on its left.
// Antialias widens the linear/cubic filters by 1/scale when downsampling. tf_crop_and_resize
// writes extrapolation_value wherever any axis's x_original falls outside [0, len-1].
// Opset 10 Resize and Upsample use asymmetric coordinates, and their nearest mode rounds down when
// upsampling and up when downsampling (ONNX Runtime's pre-11 behaviour).
//
// Linear and cubic run axis by axis on a double buffer; nearest is a pure gather and so serves
// every element type, strings and bools included.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

struct ResizeAttrs {
  std::string mode = "nearest";
  std::string ctm = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0;
  bool antialias = false;
  bool legacy = false;  // Upsample and Resize-10
  std::vector<int64_t> axes;
  std::string policy = "stretch";
};

bool is_upsample(const NodeAttrs& n) { return n.op_type() == "Upsample"; }

ResizeAttrs read_resize_attrs(const NodeAttrs& n) {
  ResizeAttrs a;
  a.mode = n.attr_string("mode", "nearest");
  if (a.mode == "bilinear" || a.mode == "trilinear") a.mode = "linear";  // Upsample-7 spelling
  if (a.mode != "nearest" && a.mode != "linear" && a.mode != "cubic")
    n.fail("unknown mode '" + a.mode + "'");
  a.legacy = is_upsample(n) || n.opset() < 11;
  if (a.legacy) {
    if (a.mode == "cubic") n.fail("cubic mode needs opset 11");
    a.ctm = "asymmetric";
    return a;
  }
  a.ctm = n.attr_string("coordinate_transformation_mode", "half_pixel");
  static const char* kModes[] = {
      "half_pixel",         "pytorch_half_pixel",   "align_corners",       "asymmetric",
      "tf_crop_and_resize", "tf_half_pixel_for_nn", "half_pixel_symmetric"};
  if (std::find(std::begin(kModes), std::end(kModes), a.ctm) == std::end(kModes))
    n.fail("unknown coordinate_transformation_mode '" + a.ctm + "'");
  a.nearest_mode = n.attr_string("nearest_mode", "round_prefer_floor");
  if (a.nearest_mode != "round_prefer_floor" && a.nearest_mode != "round_prefer_ceil" &&
      a.nearest_mode != "floor" && a.nearest_mode != "ceil")
    n.fail("unknown nearest_mode '" + a.nearest_mode + "'");
  a.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  a.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
  a.extrapolation = n.attr_float("extrapolation_value", 0.0f);
  a.antialias = n.attr_int("antialias", 0) != 0;
  a.axes = n.attr_ints("axes");
  a.policy = n.attr_string("keep_aspect_ratio_policy", "stretch");
  if (a.policy != "stretch" && a.policy != "not_larger" && a.policy != "not_smaller")
    n.fail("unknown keep_aspect_ratio_policy '" + a.policy + "'");
  return a;
}

// Input slots of roi / scales / sizes for this op and opset (-1: none).
struct Slots {
  int roi = -1, scales = -1, sizes = -1;
};
Slots resize_slots(const NodeAttrs& n) {
  if (is_upsample(n)) return n.opset() >= 9 ? Slots{-1, 1, -1} : Slots{};
  if (n.opset() < 11) return Slots{-1, 1, -1};
  return Slots{1, 2, 3};
}

std::vector<double> tensor_doubles(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.element_as_double(i);
  return v;
}

// What the roi / scales / sizes inputs say, as far as known.
struct ResizeArgs {
  bool use_sizes = false;                         // sizes decide the output (else scales)
  bool known = false;                             // the deciding values are known
  std::vector<double> scales;                     // over `axes`
  std::vector<int64_t> sizes;                     // over `axes`
  std::optional<std::vector<ir::Dim>> size_dims;  // symbolic sizes (load time)
  std::vector<double> roi;                        // 2 * |axes|, or empty
};

// The resized axes (all, or the `axes` attribute normalized).
std::vector<int> resize_axes(const NodeAttrs& n, const ResizeAttrs& a, int rank) {
  if (a.axes.empty()) {
    std::vector<int> all(static_cast<size_t>(rank));
    for (int i = 0; i < rank; ++i) all[size_t(i)] = i;
    return all;
  }
  return normalize_axes(n, a.axes, rank);
}

// Concrete output dims and per-axis scales (full rank) from known args.
void plan_resize(const NodeAttrs& n, const ResizeAttrs& a, const Dims& in, const ResizeArgs& args,
                 Dims& out, std::vector<double>& scales) {
  int rank = int(in.size());
  std::vector<int> axes = resize_axes(n, a, rank);
  out = in;
  scales.assign(size_t(rank), 1.0);
  if (!args.use_sizes) {
    if (args.scales.size() != axes.size())
      n.fail("scales has " + std::to_string(args.scales.size()) + " entries, expected " +
             std::to_string(axes.size()));
    for (size_t k = 0; k < axes.size(); ++k) {
      double s = args.scales[k];
      if (!(s > 0)) n.fail("scales must be positive, got " + std::to_string(s));
      size_t ax = size_t(axes[k]);
      scales[ax] = s;
      out[ax] = int64_t(std::floor(double(in[ax]) * s));
    }
    return;
  }
  if (args.sizes.size() != axes.size())
    n.fail("sizes has " + std::to_string(args.sizes.size()) + " entries, expected " +
           std::to_string(axes.size()));
  for (int64_t s : args.sizes)
    if (s < 0) n.fail("sizes must be non-negative");
  if (a.policy == "stretch") {
    for (size_t k = 0; k < axes.size(); ++k) {
      size_t ax = size_t(axes[k]);
      out[ax] = args.sizes[k];
      scales[ax] = in[ax] == 0 ? 1.0 : double(args.sizes[k]) / double(in[ax]);
    }
    return;
  }
  // keep_aspect_ratio_policy: one scale for all axes, the smallest or largest ratio.
  double s = a.policy == "not_larger" ? std::numeric_limits<double>::infinity() : 0.0;
  for (size_t k = 0; k < axes.size(); ++k) {
    double r = in[size_t(axes[k])] == 0 ? 1.0 : double(args.sizes[k]) / double(in[size_t(axes[k])]);
    s = a.policy == "not_larger" ? std::min(s, r) : std::max(s, r);
  }
  for (int ax : axes) {
    scales[size_t(ax)] = s;
    out[size_t(ax)] = int64_t(std::floor(s * double(in[size_t(ax)]) + 0.5));
  }
}

// Reads the args from tensor values; get(i) returns the input's data or nullptr.
template <class Get>
ResizeArgs read_args(const NodeAttrs& n, const ResizeAttrs& a, Get&& get, bool sizes_present,
                     bool scales_present) {
  ResizeArgs args;
  Slots sl = resize_slots(n);
  if (is_upsample(n) && n.opset() < 9) {
    auto s = n.attr_floats("scales");
    if (s.empty()) n.fail("Upsample needs the scales attribute");
    args.scales.assign(s.begin(), s.end());
    args.known = true;
    return args;
  }
  const Tensor* scales = scales_present ? get(sl.scales) : nullptr;
  const Tensor* sizes = sizes_present ? get(sl.sizes) : nullptr;
  if (sl.roi >= 0)
    if (const Tensor* roi = get(sl.roi)) args.roi = tensor_doubles(*roi);
  if (scales && scales->numel() > 0) {
    if (sizes_present && (!sizes || sizes->numel() > 0))
      n.fail("only one of scales and sizes may be given");
    args.scales = tensor_doubles(*scales);
    args.known = true;
  } else if (sizes && (!scales_present || scales)) {
    args.use_sizes = true;
    for (int64_t i = 0; i < sizes->numel(); ++i) args.sizes.push_back(sizes->element_as_int(i));
    args.known = true;
  } else if (!sizes_present && scales) {
    n.fail("one of scales and sizes must be given");
  }
  return args;
}

void infer_resize(InferContext& ctx) {
  ResizeAttrs a = read_resize_attrs(ctx);
  DType dt = ctx.input_dtype(0);
  const ir::Shape& in = ctx.input_shape(0);
  if (!in.has_rank) return ctx.set_output(0, dt, ir::Shape::unranked());
  int rank = in.rank();
  Slots sl = resize_slots(ctx);
  bool sizes_present = sl.sizes >= 0 && ctx.has_input(sl.sizes);
  bool scales_present = sl.scales >= 0 && ctx.has_input(sl.scales);
  if (sl.scales >= 0 && !scales_present && !sizes_present)
    ctx.fail("one of scales and sizes must be given");
  // An empty scales (shape [0]) means sizes decide, even when sizes' values are unknown.
  if (scales_present && !ctx.input_value(sl.scales)) {
    const ir::Shape& ss = ctx.input_shape(sl.scales);
    if (ss.has_rank && ss.rank() == 1 && ss.dims[0].is_const() && ss.dims[0].value == 0)
      scales_present = false;
  }
  ResizeArgs args = read_args(
      ctx, a, [&](int i) { return ctx.has_input(i) ? ctx.input_value(i) : nullptr; }, sizes_present,
      scales_present);
  std::vector<int> axes = resize_axes(ctx, a, rank);
  std::vector<ir::Dim> out = in.dims;
  if (args.known) {
    // Constant input dims compute exactly; symbolic ones stay when their scale is 1.
    Dims probe;
    for (const auto& d : in.dims) probe.push_back(d.is_const() ? d.value : 1);
    Dims exact;
    std::vector<double> scales;
    plan_resize(ctx, a, probe, args, exact, scales);
    bool axes_const = true;
    for (int ax : axes) axes_const &= in.dims[size_t(ax)].is_const();
    for (int ax : axes) {
      const ir::Dim& d = in.dims[size_t(ax)];
      bool exact_known = args.use_sizes ? a.policy == "stretch" || axes_const : d.is_const();
      if (exact_known)
        out[size_t(ax)] = ir::Dim::constant(exact[size_t(ax)]);
      else if (!args.use_sizes && scales[size_t(ax)] == 1.0)
        out[size_t(ax)] = d;
      else
        out[size_t(ax)] = ctx.fresh_dim();
    }
  } else {
    std::optional<std::vector<ir::Dim>> sd;
    if (sizes_present) sd = ctx.input_dims_value(sl.sizes);
    for (size_t k = 0; k < axes.size(); ++k)
      out[size_t(axes[k])] =
          sd && sd->size() == axes.size() && a.policy == "stretch" ? (*sd)[k] : ctx.fresh_dim();
  }
  ctx.set_output(0, dt, ir::Shape(out));
}

// One axis's mapping: for each output index, taps (input index, weight), or outside (extrapolate).
struct AxisMap {
  int64_t in = 0, out = 0;
  int taps = 1;
  std::vector<int64_t> idx;  // out * taps, clamped into [0, in)
  std::vector<double> w;     // out * taps
  std::vector<char> outside;
  bool identity() const {
    if (in != out) return false;
    for (int64_t x = 0; x < out; ++x) {
      if (outside[size_t(x)]) return false;
      for (int t = 0; t < taps; ++t) {
        size_t k = size_t(x * taps + t);
        if (w[k] != 0 && (idx[k] != x || w[k] != 1.0)) return false;
      }
    }
    return true;
  }
};

double cubic_weight(double x, double A) {
  x = std::abs(x);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

AxisMap map_axis(const ResizeAttrs& a, int64_t in, int64_t out, double scale, double roi_start,
                 double roi_end) {
  AxisMap m;
  m.in = in;
  m.out = out;
  m.outside.assign(size_t(out), 0);
  double len_resized = scale * double(in);  // real-valued, as the ONNX reference uses
  bool nearest = a.mode == "nearest";
  bool aa = a.antialias && scale < 1 && !nearest;
  double fs = std::min(scale, 1.0);  // filter scale for antialias
  int64_t start;                     // first tap offset from x_int
  if (nearest) {
    start = 0;
    m.taps = 1;
  } else if (a.mode == "linear") {
    start = aa ? int64_t(std::floor(-1 / fs)) + 1 : 0;
    m.taps = int(2 - 2 * start);
  } else {
    start = aa ? int64_t(std::floor(-2 / fs)) + 1 : -1;
    m.taps = int(2 - 2 * start);
  }
  m.idx.assign(size_t(out * m.taps), 0);
  m.w.assign(size_t(out * m.taps), 0.0);
  for (int64_t xo = 0; xo < out; ++xo) {
    double x = double(xo), xi;
    const std::string& c = a.ctm;
    if (c == "half_pixel") {
      xi = (x + 0.5) / scale - 0.5;
    } else if (c == "pytorch_half_pixel") {
      xi = len_resized > 1 ? (x + 0.5) / scale - 0.5 : -0.5;
    } else if (c == "align_corners") {
      xi = len_resized == 1 ? 0 : x * double(in - 1) / (len_resized - 1);
    } else if (c == "asymmetric") {
      xi = x / scale;
    } else if (c == "tf_half_pixel_for_nn") {
      xi = (x + 0.5) / scale;
    } else if (c == "half_pixel_symmetric") {
      double adjustment = double(out) / len_resized;
      double center = double(in) / 2;
      xi = center * (1 - adjustment) + (x + 0.5) / scale - 0.5;
    } else {  // tf_crop_and_resize
      xi = len_resized > 1 ? roi_start * double(in - 1) +
                                 x * (roi_end - roi_start) * double(in - 1) / (len_resized - 1)
                           : 0.5 * (roi_start + roi_end) * double(in - 1);
      if (xi < 0 || xi > double(in - 1)) m.outside[size_t(xo)] = 1;
    }
    size_t base = size_t(xo * m.taps);
    auto clamp = [&](int64_t i) { return std::clamp<int64_t>(i, 0, std::max<int64_t>(in - 1, 0)); };
    if (nearest && a.legacy) {
      // Pre-11 rule: truncate when upsampling, round up when downsampling.
      m.idx[base] = clamp(int64_t(scale < 1 ? std::ceil(xi) : std::floor(xi)));
      m.w[base] = 1;
      continue;
    }
    double fl = std::floor(xi);
    int64_t x_int = int64_t(fl);
    double ratio = xi - fl;
    if (ratio == 0) {  // the reference prefers the pixel on the left: ratio 1
      ratio = 1;
      --x_int;
    }
    if (nearest) {
      bool up;
      if (ratio == 1)
        up = true;
      else if (a.nearest_mode == "round_prefer_floor")
        up = ratio > 0.5;
      else if (a.nearest_mode == "round_prefer_ceil")
        up = ratio >= 0.5;
      else
        up = a.nearest_mode == "ceil";
      m.idx[base] = clamp(x_int + (up ? 1 : 0));
      m.w[base] = 1;
      continue;
    }
    double sum = 0;
    for (int t = 0; t < m.taps; ++t) {
      int64_t off = start + t;
      double d = double(off) - ratio;  // tap position minus x_original
      double w;
      if (a.mode == "linear")
        w = aa ? std::clamp(1 - std::abs(d * fs), 0.0, 1.0) : std::max(0.0, 1 - std::abs(d));
      else
        w = cubic_weight(aa ? d * fs : d, a.cubic_a);
      int64_t i = x_int + off;
      if (a.exclude_outside && (i < 0 || i >= in)) w = 0;
      m.idx[base + size_t(t)] = clamp(i);
      m.w[base + size_t(t)] = w;
      sum += w;
    }
    if ((aa || a.exclude_outside) && sum != 0)
      for (int t = 0; t < m.taps; ++t) m.w[base + size_t(t)] /= sum;
  }
  return m;
}

template <class T>
T saturate_round(double v) {
  if constexpr (kIsFloat<T>) {
    return from_compute<T>(v);
  } else {
    double r = std::nearbyint(v);
    r = std::clamp(r, double(std::numeric_limits<T>::lowest()),
                   double(std::numeric_limits<T>::max()));
    return static_cast<T>(r);
  }
}

void run_resize(KernelContext& ctx) {
  ResizeAttrs a = read_resize_attrs(ctx);
  const Tensor& x = ctx.input(0);
  Slots sl = resize_slots(ctx);
  bool sizes_present = sl.sizes >= 0 && ctx.has_input(sl.sizes);
  bool scales_present = sl.scales >= 0 && ctx.has_input(sl.scales);
  ResizeArgs args = read_args(
      ctx, a, [&](int i) { return ctx.has_input(i) ? &ctx.input(i) : nullptr; }, sizes_present,
      scales_present);
  if (!args.known) ctx.fail("one of scales and sizes must be given");
  int rank = x.rank();
  std::vector<int> axes = resize_axes(ctx, a, rank);
  Dims out_dims;
  std::vector<double> scales;
  plan_resize(ctx, a, x.dims(), args, out_dims, scales);
  std::vector<double> roi_start(size_t(rank), 0.0), roi_end(size_t(rank), 1.0);
  if (a.ctm == "tf_crop_and_resize") {
    if (args.roi.size() != 2 * axes.size())
      ctx.fail(
          "roi must have " + std::to_string(2 * axes.size()) + " entries for tf_crop_and_resize",
          ErrorCode::kInvalidArgument);
    for (size_t k = 0; k < axes.size(); ++k) {
      roi_start[size_t(axes[k])] = args.roi[k];
      roi_end[size_t(axes[k])] = args.roi[k + axes.size()];
    }
  }
  std::vector<AxisMap> maps;
  for (int ax = 0; ax < rank; ++ax)
    maps.push_back(map_axis(a, x.dim(ax), out_dims[size_t(ax)], scales[size_t(ax)],
                            roi_start[size_t(ax)], roi_end[size_t(ax)]));
  Tensor& y = ctx.output(0, x.dtype(), out_dims);
  if (y.numel() == 0) return;
  if (x.numel() == 0)
    ctx.fail("cannot resize an empty input to a non-empty output", ErrorCode::kInvalidArgument);
  bool any_outside = false;
  for (const auto& m : maps)
    for (char o : m.outside) any_outside |= o != 0;

  if (a.mode == "nearest") {
    // A gather: works for every element type.
    auto in_strides = strides_of(x.dims());
    dispatch_all(x.dtype(), ctx, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* xp = x.data<T>();
      T* yp = y.data<T>();
      T extra{};
      if constexpr (std::is_arithmetic_v<T> || kIsFloat<T>)
        extra = saturate_round<T>(a.extrapolation);
      std::vector<int64_t> o(size_t(rank), 0);
      for (int64_t i = 0; i < y.numel(); ++i) {
        int64_t off = 0;
        bool out = false;
        for (int d = 0; d < rank; ++d) {
          const AxisMap& m = maps[size_t(d)];
          off += m.idx[size_t(o[size_t(d)])] * in_strides[size_t(d)];
          out |= m.outside[size_t(o[size_t(d)])] != 0;
        }
        yp[i] = out ? extra : xp[off];
        for (int d = rank - 1; d >= 0; --d) {
          if (++o[size_t(d)] < out_dims[size_t(d)]) break;
          o[size_t(d)] = 0;
        }
      }
    });
    return;
  }

  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    std::vector<double> cur(size_t(x.numel()));
    for (int64_t i = 0; i < x.numel(); ++i) cur[size_t(i)] = double(to_compute(xp[i]));
    Dims cur_dims = x.dims();
    for (int ax = 0; ax < rank; ++ax) {
      const AxisMap& m = maps[size_t(ax)];
      if (m.identity()) continue;
      int64_t outer = 1, inner = 1;
      for (int d = 0; d < ax; ++d) outer *= cur_dims[size_t(d)];
      for (int d = ax + 1; d < rank; ++d) inner *= cur_dims[size_t(d)];
      std::vector<double> next(size_t(outer * m.out * inner), 0.0);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t xo = 0; xo < m.out; ++xo) {
          double* dst = next.data() + (o * m.out + xo) * inner;
          for (int t = 0; t < m.taps; ++t) {
            size_t k = size_t(xo * m.taps + t);
            double w = m.w[k];
            if (w == 0) continue;
            const double* src = cur.data() + (o * m.in + m.idx[k]) * inner;
            for (int64_t i = 0; i < inner; ++i) dst[i] += w * src[i];
          }
        }
      cur.swap(next);
      cur_dims[size_t(ax)] = m.out;
    }
    T* yp = y.data<T>();
    std::vector<int64_t> o(size_t(rank), 0);
    for (int64_t i = 0; i < y.numel(); ++i) {
      bool out = false;
      if (any_outside) {
        for (int d = 0; d < rank; ++d) out |= maps[size_t(d)].outside[size_t(o[size_t(d)])] != 0;
        for (int d = rank - 1; d >= 0; --d) {
          if (++o[size_t(d)] < out_dims[size_t(d)]) break;
          o[size_t(d)] = 0;
        }
      }
      yp[i] = saturate_round<T>(out ? a.extrapolation : cur[size_t(i)]);
    }
  });
}

// GridSample: X [N, C, D1..Dr] sampled at grid [N, H1..Hr, r] (last grid entry indexes the last
// spatial dim) with normalized coordinates in [-1, 1]. Follows the ONNX reference: nearest rounds
// half to even; border clamps and reflection reflects coordinates into the sampling range, and
// out-of-range taps read 0 (zeros), the edge (border) or the reflected pixel (reflection).
void infer_gridsample(InferContext& ctx) {
  const ir::Shape& x = ctx.input_shape(0);
  const ir::Shape& g = ctx.input_shape(1);
  DType dt = ctx.input_dtype(0);
  if (!g.has_rank) return ctx.set_output(0, dt, ir::Shape::unranked());
  if (g.rank() < 3) ctx.fail("grid must have rank >= 3, got " + g.to_string());
  if (x.has_rank && x.rank() != g.rank())
    ctx.fail("X " + x.to_string() + " and grid " + g.to_string() + " must have the same rank");
  if (g.dims.back().is_const() && g.dims.back().value != g.rank() - 2)
    ctx.fail("grid's last dim must be " + std::to_string(g.rank() - 2));
  std::vector<ir::Dim> out = {x.has_rank ? x.dims[0] : g.dims[0],
                              x.has_rank ? x.dims[1] : ctx.fresh_dim()};
  if (x.has_rank && x.dims[0].known_different(g.dims[0])) ctx.fail("X and grid batch sizes differ");
  for (int i = 1; i + 1 < g.rank(); ++i) out.push_back(g.dims[size_t(i)]);
  ctx.set_output(0, dt, ir::Shape(out));
}

double gs_reflect(double x, double lo, double hi) {
  double rng = hi - lo;
  if (rng <= 0) return lo;
  if (x < lo) {
    double dx = lo - x;
    int64_t n = int64_t(dx / rng);
    double r = dx - double(n) * rng;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    double dx = x - hi;
    int64_t n = int64_t(dx / rng);
    double r = dx - double(n) * rng;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

void run_gridsample(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  int r = x.rank() - 2;
  if (r < 1 || grid.rank() != x.rank() || grid.dims().back() != r || grid.dim(0) != x.dim(0))
    ctx.fail("X " + dims_to_string(x.dims()) + " and grid " + dims_to_string(grid.dims()) +
                 " do not match (grid must be [N, H1..Hr, r])",
             ErrorCode::kInvalidArgument);
  std::string mode = ctx.attr_string("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  if (mode == "bilinear") mode = "linear";
  if (mode == "bicubic") mode = "cubic";
  if (mode != "linear" && mode != "nearest" && mode != "cubic")
    ctx.fail("unknown mode '" + mode + "'");
  std::string pad = ctx.attr_string("padding_mode", "zeros");
  if (pad != "zeros" && pad != "border" && pad != "reflection")
    ctx.fail("unknown padding_mode '" + pad + "'");
  bool align = ctx.attr_int("align_corners", 0) != 0;
  int64_t n = x.dim(0), c = x.dim(1);
  Dims sp(x.dims().begin() + 2, x.dims().end());
  Dims out_dims = {n, c};
  for (int i = 1; i <= r; ++i) out_dims.push_back(grid.dim(i));
  Tensor& y = ctx.output(0, x.dtype(), out_dims);
  int64_t in_plane = num_elements(sp);
  int64_t out_pts = num_elements(Dims(out_dims.begin() + 2, out_dims.end()));
  auto sp_strides = strides_of(sp);
  int taps = mode == "nearest" ? 1 : mode == "linear" ? 2 : 4;
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    std::vector<std::vector<int64_t>> ti(static_cast<size_t>(r),
                                         std::vector<int64_t>(static_cast<size_t>(taps)));
    std::vector<std::vector<double>> tw(static_cast<size_t>(r),
                                        std::vector<double>(static_cast<size_t>(taps)));
    std::vector<int> cnt(static_cast<size_t>(r));
    for (int64_t b = 0; b < n; ++b)
      for (int64_t p = 0; p < out_pts; ++p) {
        for (int d = 0; d < r; ++d) {
          size_t u = size_t(d);
          double len = double(sp[u]);
          double lo = align ? 0 : -0.5, hi = align ? len - 1 : len - 0.5;
          double g = grid.element_as_double((b * out_pts + p) * r + (r - 1 - d));
          double v = align ? (g + 1) / 2 * (len - 1) : ((g + 1) * len - 1) / 2;
          if (mode == "nearest") v = std::nearbyint(v);
          if (v < lo || v > hi) {
            if (pad == "border")
              v = std::clamp(v, 0.0, len - 1);
            else if (pad == "reflection")
              v = gs_reflect(v, lo, hi);
          }
          // Maps a tap index by the padding mode; -1 reads zero.
          auto pixel = [&](int64_t i) -> int64_t {
            if (pad == "zeros") return i >= 0 && i < sp[u] ? i : -1;
            if (pad == "border") return std::clamp<int64_t>(i, 0, sp[u] - 1);
            int64_t j = int64_t(gs_reflect(double(i), lo, hi));
            return std::clamp<int64_t>(j, 0, sp[u] - 1);
          };
          if (mode == "nearest") {
            ti[u][0] = pixel(int64_t(v));
            tw[u][0] = 1;
          } else {
            double f = std::floor(v);
            int64_t i0 = int64_t(f);
            double t = v - f;
            if (mode == "linear") {
              ti[u][0] = pixel(i0);
              ti[u][1] = pixel(i0 + 1);
              tw[u][0] = 1 - t;
              tw[u][1] = t;
            } else {
              for (int k = 0; k < 4; ++k) {
                ti[u][size_t(k)] = pixel(i0 - 1 + k);
                tw[u][size_t(k)] = cubic_weight(double(k - 1) - t, -0.75);
              }
            }
          }
        }
        for (int64_t ch = 0; ch < c; ++ch) {
          const T* plane = xp + (b * c + ch) * in_plane;
          double acc = 0;
          std::fill(cnt.begin(), cnt.end(), 0);
          while (true) {
            double w = 1;
            int64_t off = 0;
            bool zero = false;
            for (int d = 0; d < r; ++d) {
              size_t u = size_t(d);
              w *= tw[u][size_t(cnt[u])];
              int64_t i = ti[u][size_t(cnt[u])];
              if (i < 0)
                zero = true;
              else
                off += i * sp_strides[u];
            }
            if (!zero && w != 0) acc += w * double(to_compute(plane[off]));
            int d = r - 1;
            for (; d >= 0; --d) {
              if (++cnt[size_t(d)] < taps) break;
              cnt[size_t(d)] = 0;
            }
            if (d < 0) break;
          }
          yp[(b * c + ch) * out_pts + p] = from_compute<T>(acc);
        }
      }
  });
}

}  // namespace

void register_resize_ops(Registry& r) {
  r.add({"", "Resize", 10, PatternKind::kInjective, infer_resize, run_resize});
  r.add({"", "Upsample", 7, PatternKind::kInjective, infer_resize, run_resize});
  r.add({"", "GridSample", 16, PatternKind::kOpaque, infer_gridsample, run_gridsample});
}

}  // namespace kiln::kernels
