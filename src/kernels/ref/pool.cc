// Pooling ops: MaxPool (with optional Indices), AveragePool, LpPool, their Global forms,
// MaxUnpool and MaxRoiPool.
//
// Inputs are [N, C, D1..Dn]. A window of kernel_shape (with dilations) slides by strides over
// the input padded by `pads` (or by auto_pad SAME_UPPER/SAME_LOWER/VALID). Pad positions never
// contribute values: MaxPool ignores them, AveragePool divides by the number of real elements
// unless count_include_pad, in which case explicit pad positions count (positions past the padded
// extent, reachable in ceil_mode, never count). In ceil_mode the output size rounds up, but a
// last window that would start in the end padding is dropped (as PyTorch and the ONNX reference
// do). The kernels walk output positions outermost and (N, C) planes innermost, so the window's
// input offsets are computed once per output position.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

// Window geometry from the attributes, per spatial dim.
struct PoolAttrs {
  std::vector<int64_t> kernel, strides, dilations, pad_begin, pad_end;
  std::string auto_pad;
  bool ceil_mode = false;
};

PoolAttrs read_pool_attrs(const NodeAttrs& n, int nsp) {
  PoolAttrs a;
  a.kernel = n.required_ints("kernel_shape");
  if (int(a.kernel.size()) != nsp)
    n.fail("kernel_shape has " + std::to_string(a.kernel.size()) + " entries, expected " +
           std::to_string(nsp) + " (the input's spatial rank)");
  a.strides = n.attr_ints("strides", std::vector<int64_t>(size_t(nsp), 1));
  a.dilations = n.attr_ints("dilations", std::vector<int64_t>(size_t(nsp), 1));
  std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(size_t(2 * nsp), 0));
  if (int(a.strides.size()) != nsp) n.fail("strides must have one entry per spatial dim");
  if (int(a.dilations.size()) != nsp) n.fail("dilations must have one entry per spatial dim");
  if (int(pads.size()) != 2 * nsp) n.fail("pads must have 2 entries per spatial dim");
  for (int i = 0; i < nsp; ++i) {
    if (a.kernel[size_t(i)] <= 0) n.fail("kernel_shape entries must be positive");
    if (a.strides[size_t(i)] <= 0) n.fail("strides must be positive");
    if (a.dilations[size_t(i)] <= 0) n.fail("dilations must be positive");
    if (pads[size_t(i)] < 0 || pads[size_t(i + nsp)] < 0) n.fail("pads must be non-negative");
    a.pad_begin.push_back(pads[size_t(i)]);
    a.pad_end.push_back(pads[size_t(i + nsp)]);
  }
  a.auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (a.auto_pad != "NOTSET" && a.auto_pad != "VALID" && a.auto_pad != "SAME_UPPER" &&
      a.auto_pad != "SAME_LOWER")
    n.fail("unknown auto_pad '" + a.auto_pad + "'");
  a.ceil_mode = n.attr_int("ceil_mode", 0) != 0;
  return a;
}

// Output size of spatial dim i for a concrete input size; resolves auto_pad into the pads.
int64_t pool_out_size(const NodeAttrs& n, PoolAttrs& a, int i, int64_t in) {
  size_t u = size_t(i);
  int64_t ek = (a.kernel[u] - 1) * a.dilations[u] + 1;
  int64_t s = a.strides[u];
  if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
    int64_t out = (in + s - 1) / s;
    int64_t total = std::max<int64_t>(0, (out - 1) * s + ek - in);
    a.pad_begin[u] = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    a.pad_end[u] = total - a.pad_begin[u];
    return out;
  }
  if (a.auto_pad == "VALID") {
    a.pad_begin[u] = a.pad_end[u] = 0;
    if (in < ek)
      n.fail("input size " + std::to_string(in) + " is smaller than the dilated kernel " +
             std::to_string(ek));
    return (in - ek) / s + 1;
  }
  int64_t span = in + a.pad_begin[u] + a.pad_end[u] - ek;
  if (span < 0)
    n.fail("padded input size " + std::to_string(in + a.pad_begin[u] + a.pad_end[u]) +
           " is smaller than the dilated kernel " + std::to_string(ek));
  int64_t out = (a.ceil_mode ? (span + s - 1) / s : span / s) + 1;
  // ceil_mode must not create a window that starts inside the end padding.
  if (a.ceil_mode && (out - 1) * s >= in + a.pad_begin[u]) --out;
  return out;
}

// Output dim for a possibly symbolic input dim (load time).
ir::Dim pool_out_dim(const InferContext& ctx, PoolAttrs a, int i, const ir::Dim& in) {
  if (in.is_const()) return ir::Dim::constant(pool_out_size(ctx, a, i, in.value));
  size_t u = size_t(i);
  int64_t s = a.strides[u];
  if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER")
    return ir::dim_ceil_div(in, ir::Dim::constant(s));
  if (!a.ceil_mode) {
    int64_t ek = (a.kernel[u] - 1) * a.dilations[u] + 1;
    int64_t pads = a.auto_pad == "VALID" ? 0 : a.pad_begin[u] + a.pad_end[u];
    ir::Dim span = ir::dim_sub(in, ir::Dim::constant(ek - pads));
    if (pads - ek == 0) span = in;
    ir::Dim q = s == 1 ? span : ir::dim_div(span, ir::Dim::constant(s));
    return ir::dim_add(q, ir::Dim::constant(1));
  }
  return ctx.fresh_dim();
}

void infer_pool(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  DType dt = ctx.input_dtype(0);
  if (!in.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kI64, ir::Shape::unranked());
    return;
  }
  if (in.rank() < 3) ctx.fail("input must have rank >= 3 ([N, C, D1, ...]), got " + in.to_string());
  int nsp = in.rank() - 2;
  PoolAttrs a = read_pool_attrs(ctx, nsp);
  std::vector<ir::Dim> out = {in.dims[0], in.dims[1]};
  for (int i = 0; i < nsp; ++i) out.push_back(pool_out_dim(ctx, a, i, in.dims[size_t(i + 2)]));
  ctx.set_output(0, dt, ir::Shape(out));
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kI64, ir::Shape(out));
}

// Concrete window geometry for one run.
struct Window {
  Dims in_sp, out_sp;
  PoolAttrs a;
  int64_t planes = 0;  // N * C
};

Window make_window(const KernelContext& ctx, const Tensor& x) {
  if (x.rank() < 3)
    ctx.fail("input must have rank >= 3 ([N, C, D1, ...]), got " + dims_to_string(x.dims()));
  Window w;
  int nsp = x.rank() - 2;
  w.a = read_pool_attrs(ctx, nsp);
  w.planes = x.dim(0) * x.dim(1);
  for (int i = 0; i < nsp; ++i) {
    w.in_sp.push_back(x.dim(i + 2));
    w.out_sp.push_back(pool_out_size(ctx, w.a, i, x.dim(i + 2)));
  }
  return w;
}

// Floor and ceiling of a / b for b > 0.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// Calls f(out_offset, row_major_offsets, col_major_offsets, padded_count) for each output
// position: the in-plane offsets of the window's real input elements, in kernel row-major order,
// and how many window positions lie inside the explicitly padded input.
template <class F>
void for_each_window(const Window& w, F&& f) {
  size_t nsp = w.in_sp.size();
  int64_t out_n = num_elements(w.out_sp);
  std::vector<int64_t> rm_stride = strides_of(w.in_sp), cm_stride(nsp, 1);
  for (size_t i = 1; i < nsp; ++i) cm_stride[i] = cm_stride[i - 1] * w.in_sp[i - 1];
  std::vector<int64_t> o(nsp, 0), rm, cm, next_rm, next_cm, coords;
  for (int64_t oi = 0; oi < out_n; ++oi) {
    double padded =
        1;  // a product of tap counts: double, as a huge malformed window overflows int64
    rm.assign(1, 0);
    cm.assign(1, 0);
    for (size_t i = 0; i < nsp; ++i) {
      // Window taps j in [0, kernel) sit at start + j * dilation. Count the taps inside the padded
      // input and list those inside the real input arithmetically, so the work is bounded by the
      // input's size even when a malformed kernel_shape is huge.
      coords.clear();
      int64_t start = o[i] * w.a.strides[i] - w.a.pad_begin[i], d = w.a.dilations[i];
      auto taps = [&](int64_t lo, int64_t hi) {  // tap range with positions in [lo, hi)
        int64_t first = std::max<int64_t>(0, ceil_div(lo - start, d));
        int64_t last = std::min<int64_t>(w.a.kernel[i] - 1, floor_div(hi - 1 - start, d));
        return std::make_pair(first, last);
      };
      auto [pf, pl] = taps(-w.a.pad_begin[i], w.in_sp[i] + w.a.pad_end[i]);
      padded *= double(std::max<int64_t>(0, pl - pf + 1));
      auto [rf, rl] = taps(0, w.in_sp[i]);
      for (int64_t j = rf; j <= rl; ++j) coords.push_back(start + j * d);
      // Earlier dims stay outermost, so the offsets come in kernel row-major order.
      next_rm.clear();
      next_cm.clear();
      for (size_t k = 0; k < rm.size(); ++k)
        for (int64_t p : coords) {
          next_rm.push_back(rm[k] + p * rm_stride[i]);
          next_cm.push_back(cm[k] + p * cm_stride[i]);
        }
      rm.swap(next_rm);
      cm.swap(next_cm);
    }
    f(oi, rm, cm, padded);
    for (int i = int(nsp) - 1; i >= 0; --i) {
      if (++o[size_t(i)] < w.out_sp[size_t(i)]) break;
      o[size_t(i)] = 0;
    }
  }
}

void run_maxpool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Window w = make_window(ctx, x);
  Dims out_dims = {x.dim(0), x.dim(1)};
  out_dims.insert(out_dims.end(), w.out_sp.begin(), w.out_sp.end());
  Tensor& y = ctx.output(0, x.dtype(), out_dims);
  bool want_indices = ctx.num_outputs() > 1;
  bool col_major = ctx.attr_int("storage_order", 0) != 0;
  Tensor* ind = want_indices ? &ctx.output(1, DType::kI64, out_dims) : nullptr;
  int64_t in_plane = num_elements(w.in_sp), out_plane = num_elements(w.out_sp);
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    int64_t* ip = ind ? ind->data<int64_t>() : nullptr;
    for_each_window(
        w, [&](int64_t oi, const std::vector<int64_t>& rm, const std::vector<int64_t>& cm, double) {
          for (int64_t pl = 0; pl < w.planes; ++pl) {
            const T* plane = xp + pl * in_plane;
            C best = std::numeric_limits<C>::lowest();
            if constexpr (std::numeric_limits<C>::has_infinity)
              best = -std::numeric_limits<C>::infinity();
            int64_t arg = -1;
            for (size_t k = 0; k < rm.size(); ++k) {
              C v = to_compute(plane[rm[k]]);
              if (arg < 0 || v > best) {
                best = v;
                arg = int64_t(k);
              }
            }
            yp[pl * out_plane + oi] = from_compute<T>(best);
            if (ip)
              ip[pl * out_plane + oi] =
                  arg < 0 ? 0 : pl * in_plane + (col_major ? cm : rm)[size_t(arg)];
          }
        });
  });
}

void run_averagepool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Window w = make_window(ctx, x);
  bool include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  Dims out_dims = {x.dim(0), x.dim(1)};
  out_dims.insert(out_dims.end(), w.out_sp.begin(), w.out_sp.end());
  Tensor& y = ctx.output(0, x.dtype(), out_dims);
  int64_t in_plane = num_elements(w.in_sp), out_plane = num_elements(w.out_sp);
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for_each_window(w, [&](int64_t oi, const std::vector<int64_t>& rm, const std::vector<int64_t>&,
                           double padded) {
      double count = include_pad ? padded : double(rm.size());
      for (int64_t pl = 0; pl < w.planes; ++pl) {
        const T* plane = xp + pl * in_plane;
        double sum = 0;
        for (int64_t off : rm) sum += double(to_compute(plane[off]));
        yp[pl * out_plane + oi] = from_compute<T>(count > 0 ? sum / count : 0.0);
      }
    });
  });
}

void run_lppool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Window w = make_window(ctx, x);
  double p = double(ctx.attr_int("p", 2));
  if (p <= 0) ctx.fail("p must be positive");
  Dims out_dims = {x.dim(0), x.dim(1)};
  out_dims.insert(out_dims.end(), w.out_sp.begin(), w.out_sp.end());
  Tensor& y = ctx.output(0, x.dtype(), out_dims);
  int64_t in_plane = num_elements(w.in_sp), out_plane = num_elements(w.out_sp);
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for_each_window(
        w, [&](int64_t oi, const std::vector<int64_t>& rm, const std::vector<int64_t>&, double) {
          for (int64_t pl = 0; pl < w.planes; ++pl) {
            const T* plane = xp + pl * in_plane;
            double sum = 0;
            for (int64_t off : rm) sum += std::pow(std::abs(double(to_compute(plane[off]))), p);
            yp[pl * out_plane + oi] = from_compute<T>(std::pow(sum, 1.0 / p));
          }
        });
  });
}

// Global pools: [N, C, D1..Dn] -> [N, C, 1..1].
void infer_global_pool(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  if (!in.has_rank) return ctx.set_output(0, ctx.input_dtype(0), ir::Shape::unranked());
  if (in.rank() < 2) ctx.fail("input must have rank >= 2 ([N, C, ...]), got " + in.to_string());
  std::vector<ir::Dim> out = {in.dims[0], in.dims[1]};
  for (int i = 2; i < in.rank(); ++i) out.push_back(ir::Dim::constant(1));
  ctx.set_output(0, ctx.input_dtype(0), ir::Shape(out));
}

enum class GlobalKind { kMax, kAverage, kLp };

template <GlobalKind K>
void run_global_pool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) ctx.fail("input must have rank >= 2 ([N, C, ...])");
  Dims out_dims = {x.dim(0), x.dim(1)};
  for (int i = 2; i < x.rank(); ++i) out_dims.push_back(1);
  Tensor& y = ctx.output(0, x.dtype(), out_dims);
  int64_t planes = x.dim(0) * x.dim(1);
  int64_t plane = planes == 0 ? 0 : x.numel() / planes;
  double p = K == GlobalKind::kLp ? double(ctx.attr_int("p", 2)) : 1.0;
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* in = xp + pl * plane;
      double acc = K == GlobalKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
      for (int64_t i = 0; i < plane; ++i) {
        double v = double(to_compute(in[i]));
        if constexpr (K == GlobalKind::kMax)
          acc = std::max(acc, v);
        else if constexpr (K == GlobalKind::kAverage)
          acc += v;
        else
          acc += std::pow(std::abs(v), p);
      }
      if constexpr (K == GlobalKind::kAverage) acc = plane > 0 ? acc / double(plane) : 0.0;
      if constexpr (K == GlobalKind::kLp) acc = std::pow(acc, 1.0 / p);
      yp[pl] = from_compute<T>(acc);
    }
  });
}

// MaxUnpool: scatters X into a zero output at the flat indices I.
std::vector<int64_t> unpool_default_dims(const NodeAttrs& n, const Dims& x) {
  int nsp = int(x.size()) - 2;
  auto k = n.required_ints("kernel_shape");
  auto s = n.attr_ints("strides", std::vector<int64_t>(size_t(nsp), 1));
  auto pads = n.attr_ints("pads", std::vector<int64_t>(size_t(2 * nsp), 0));
  if (int(k.size()) != nsp || int(s.size()) != nsp || int(pads.size()) != 2 * nsp)
    n.fail("kernel_shape, strides and pads must match the input's spatial rank");
  Dims out = {x[0], x[1]};
  for (int i = 0; i < nsp; ++i) {
    size_t u = size_t(i);
    int64_t d = (x[u + 2] - 1) * s[u] + k[u] - pads[u] - pads[u + size_t(nsp)];
    if (d < 0) n.fail("computed output size is negative");
    out.push_back(d);
  }
  return out;
}

void infer_maxunpool(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (ctx.has_input(2)) {
    if (auto v = ctx.input_dims_value(2)) return ctx.set_output(0, dt, ir::Shape(*v));
    const ir::Shape& s = ctx.input_shape(2);
    if (s.has_rank && s.rank() == 1 && s.dims[0].is_const()) {
      std::vector<ir::Dim> d;
      for (int64_t i = 0; i < s.dims[0].value; ++i) d.push_back(ctx.fresh_dim());
      return ctx.set_output(0, dt, ir::Shape(d));
    }
    return ctx.set_output(0, dt, ir::Shape::unranked());
  }
  const ir::Shape& in = ctx.input_shape(0);
  if (!in.has_rank) return ctx.set_output(0, dt, ir::Shape::unranked());
  if (in.rank() < 3) ctx.fail("input must have rank >= 3");
  if (in.is_concrete())
    return ctx.set_output(0, dt, to_shape(unpool_default_dims(ctx, in.concrete())));
  std::vector<ir::Dim> out = {in.dims[0], in.dims[1]};
  for (int i = 2; i < in.rank(); ++i)
    out.push_back(in.dims[size_t(i)].is_const() ? ir::Dim::unknown() : ctx.fresh_dim());
  // Constant spatial dims still compute exactly.
  Dims probe;
  for (const auto& d : in.dims) probe.push_back(d.is_const() ? d.value : 1);
  Dims exact = unpool_default_dims(ctx, probe);
  for (int i = 2; i < in.rank(); ++i)
    if (in.dims[size_t(i)].is_const()) out[size_t(i)] = ir::Dim::constant(exact[size_t(i)]);
  ctx.set_output(0, dt, ir::Shape(out));
}

void run_maxunpool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& idx = ctx.input(1);
  if (x.rank() < 3) ctx.fail("input must have rank >= 3");
  if (idx.dims() != x.dims())
    ctx.fail("indices shape " + dims_to_string(idx.dims()) + " must equal X's shape " +
                 dims_to_string(x.dims()),
             ErrorCode::kInvalidArgument);
  // Indices address the default-shaped output; an explicit output_shape re-addresses the same
  // coordinates in the bigger tensor (as the ONNX test data expects).
  Dims base_dims = unpool_default_dims(ctx, x.dims());
  Dims out_dims;
  if (ctx.has_input(2)) {
    const Tensor& os = ctx.input(2);
    for (int64_t i = 0; i < os.numel(); ++i) out_dims.push_back(os.element_as_int(i));
    if (out_dims.size() != x.dims().size())
      ctx.fail("output_shape must have rank " + std::to_string(x.rank()),
               ErrorCode::kInvalidArgument);
  } else {
    out_dims = base_dims;
  }
  auto base_strides = strides_of(base_dims), out_strides = strides_of(out_dims);
  int64_t base_n = num_elements(base_dims);
  Tensor& y = ctx.output(0, x.dtype(), out_dims);
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) yp[i] = from_compute<T>(0.0f);
    for (int64_t i = 0; i < x.numel(); ++i) {
      int64_t j = idx.element_as_int(i);
      bool ok = j >= 0 && j < base_n;
      int64_t off = 0, rest = j;
      for (size_t d = 0; ok && d < base_dims.size(); ++d) {
        int64_t c = rest / base_strides[d];
        rest %= base_strides[d];
        ok = c < out_dims[d];
        off += c * out_strides[d];
      }
      if (!ok)
        ctx.fail("index " + std::to_string(j) + " is out of range for output " +
                     dims_to_string(out_dims),
                 ErrorCode::kInvalidArgument);
      yp[off] = xp[i];
    }
  });
}

// MaxRoiPool (Caffe semantics): each RoI [batch, x1, y1, x2, y2] is scaled, rounded and split
// into pooled_shape bins; each bin takes the max (0 for an empty bin).
void infer_maxroipool(InferContext& ctx) {
  auto ps = ctx.required_ints("pooled_shape");
  if (ps.size() != 2) ctx.fail("pooled_shape must have 2 entries");
  const ir::Shape& x = ctx.input_shape(0);
  const ir::Shape& r = ctx.input_shape(1);
  ir::Dim rois = r.has_rank && r.rank() == 2 ? r.dims[0] : ctx.fresh_dim();
  ir::Dim c = x.has_rank && x.rank() == 4 ? x.dims[1] : ctx.fresh_dim();
  if (x.has_rank && x.rank() != 4) ctx.fail("input must have rank 4, got " + x.to_string());
  ctx.set_output(0, ctx.input_dtype(0),
                 ir::Shape({rois, c, ir::Dim::constant(ps[0]), ir::Dim::constant(ps[1])}));
}

void run_maxroipool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  auto ps = ctx.required_ints("pooled_shape");
  if (ps.size() != 2 || ps[0] <= 0 || ps[1] <= 0) ctx.fail("pooled_shape must be 2 positive ints");
  double scale = ctx.attr_float("spatial_scale", 1.0f);
  if (x.rank() != 4) ctx.fail("input must have rank 4");
  if (rois.rank() != 2 || rois.dim(1) != 5)
    ctx.fail("rois must have shape [num_rois, 5], got " + dims_to_string(rois.dims()),
             ErrorCode::kInvalidArgument);
  int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), nr = rois.dim(0);
  Tensor& y = ctx.output(0, x.dtype(), {nr, c, ps[0], ps[1]});
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (int64_t r = 0; r < nr; ++r) {
      int64_t b = int64_t(rois.element_as_double(r * 5));
      if (b < 0 || b >= n)
        ctx.fail("RoI batch index " + std::to_string(b) + " is out of range",
                 ErrorCode::kInvalidArgument);
      int64_t x1 = int64_t(std::round(rois.element_as_double(r * 5 + 1) * scale));
      int64_t y1 = int64_t(std::round(rois.element_as_double(r * 5 + 2) * scale));
      int64_t x2 = int64_t(std::round(rois.element_as_double(r * 5 + 3) * scale));
      int64_t y2 = int64_t(std::round(rois.element_as_double(r * 5 + 4) * scale));
      double bin_h = double(std::max<int64_t>(y2 - y1 + 1, 1)) / double(ps[0]);
      double bin_w = double(std::max<int64_t>(x2 - x1 + 1, 1)) / double(ps[1]);
      for (int64_t ch = 0; ch < c; ++ch) {
        const T* plane = xp + (b * c + ch) * h * wd;
        for (int64_t ph = 0; ph < ps[0]; ++ph)
          for (int64_t pw = 0; pw < ps[1]; ++pw) {
            int64_t hs = std::clamp<int64_t>(int64_t(std::floor(double(ph) * bin_h)) + y1, 0, h);
            int64_t he = std::clamp<int64_t>(int64_t(std::ceil(double(ph + 1) * bin_h)) + y1, 0, h);
            int64_t ws = std::clamp<int64_t>(int64_t(std::floor(double(pw) * bin_w)) + x1, 0, wd);
            int64_t we =
                std::clamp<int64_t>(int64_t(std::ceil(double(pw + 1) * bin_w)) + x1, 0, wd);
            double best = 0;
            bool any = false;
            for (int64_t i = hs; i < he; ++i)
              for (int64_t j = ws; j < we; ++j) {
                double v = double(to_compute(plane[i * wd + j]));
                if (!any || v > best) best = v;
                any = true;
              }
            yp[((r * c + ch) * ps[0] + ph) * ps[1] + pw] = from_compute<T>(best);
          }
      }
    }
  });
}

}  // namespace

void register_pool_ops(Registry& r) {
  r.add({"", "MaxPool", 1, PatternKind::kOutEwiseFusable, infer_pool, run_maxpool});
  r.add({"", "AveragePool", 1, PatternKind::kOutEwiseFusable, infer_pool, run_averagepool});
  r.add({"", "LpPool", 1, PatternKind::kOutEwiseFusable, infer_pool, run_lppool});
  r.add({"", "GlobalMaxPool", 1, PatternKind::kOutEwiseFusable, infer_global_pool,
         run_global_pool<GlobalKind::kMax>});
  r.add({"", "GlobalAveragePool", 1, PatternKind::kOutEwiseFusable, infer_global_pool,
         run_global_pool<GlobalKind::kAverage>});
  r.add({"", "GlobalLpPool", 1, PatternKind::kOutEwiseFusable, infer_global_pool,
         run_global_pool<GlobalKind::kLp>});
  r.add({"", "MaxUnpool", 9, PatternKind::kOpaque, infer_maxunpool, run_maxunpool});
  r.add({"", "MaxRoiPool", 1, PatternKind::kOpaque, infer_maxroipool, run_maxroipool});
}

}  // namespace kiln::kernels
