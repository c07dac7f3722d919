// Normalizations: BatchNormalization, LayerNormalization, InstanceNormalization,
// GroupNormalization, RMSNormalization, LpNormalization, MeanVarianceNormalization, LRN.
//
// Statistics are computed in double whatever the element type and stash_type (the reference is
// the exact result; stash_type only allows a lower-precision implementation). Variances are
// population variances computed in two passes (mean, then squared deviations), which equals the
// E[x^2] - E[x]^2 of the ONNX function bodies up to rounding. BatchNormalization runs in
// inference mode unless training_mode=1 (opset 14+) or, before opset 14, the node asks for the
// running statistics outputs; training mode normalizes with the batch statistics and updates the
// running ones with `momentum`, as the ONNX reference does.
#include <cmath>
#include <vector>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

void check_float(const NodeAttrs& n, DType t) {
  if (!dtype_is_float(t))
    n.unsupported(std::string("element type ") + dtype_name(t) + " is not supported");
}

// Shape check of a per-channel (or per-group) parameter: rank 1 and `expected` elements.
void check_vector_input(InferContext& ctx, int i, const ir::Dim& expected, const char* name) {
  if (!ctx.has_input(i)) return;
  const ir::Shape& s = ctx.input_shape(i);
  if (!s.has_rank) return;
  if (s.rank() != 1) ctx.fail(std::string(name) + " must be 1-D, got " + s.to_string());
  if (s.dims[0].known_different(expected))
    ctx.fail(std::string(name) + " has shape " + s.to_string() + ", expected [" +
             expected.to_string() + "]");
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.element_as_double(i);
  return v;
}

// A 1-D parameter of exactly n elements, as doubles.
std::vector<double> vector_param(const KernelContext& ctx, int i, int64_t n, const char* name) {
  const Tensor& t = ctx.input(i);
  check_float(ctx, t.dtype());
  if (t.rank() != 1 || t.dim(0) != n)
    ctx.fail(std::string(name) + " has shape " + dims_to_string(t.dims()) + ", expected [" +
                 std::to_string(n) + "]",
             ErrorCode::kInvalidArgument);
  return to_doubles(t);
}

// A parameter unidirectionally broadcast to `to` (numpy rules, the parameter being the smaller
// side), flattened.
std::vector<double> broadcast_param(const KernelContext& ctx, const Tensor& t, const Dims& to,
                                    const char* name) {
  check_float(ctx, t.dtype());
  bool ok = size_t(t.rank()) <= to.size();
  for (size_t i = 0; ok && i < size_t(t.rank()); ++i) {
    int64_t d = t.dims()[i], o = to[to.size() - size_t(t.rank()) + i];
    ok = d == o || d == 1;
  }
  if (!ok)
    ctx.fail(std::string(name) + " of shape " + dims_to_string(t.dims()) +
                 " does not broadcast to the normalized shape " + dims_to_string(to),
             ErrorCode::kInvalidArgument);
  std::vector<double> v(size_t(num_elements(to)));
  BroadcastWalker w(to, {t.dims()});
  for (size_t i = 0; i < v.size(); ++i, w.next()) v[i] = t.element_as_double(w.offset(0));
  return v;
}

// Normalizes x seen as [rows, len], each row with its own statistics:
//   y = (x - mean) / sqrt(var + eps) * scale[k] + bias[k],  k = param(row, j).
// With center=false (RMSNormalization) mean is 0 and var is the mean of squares.
template <class T, class Param>
void normalize_rows(const Tensor& x, Tensor& y, int64_t rows, int64_t len, double eps, bool center,
                    const std::vector<double>& scale, const std::vector<double>* bias, Param param,
                    std::vector<double>* means = nullptr, std::vector<double>* inv_stds = nullptr) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = px + r * len;
    double mean = 0, var = 0;
    if (center && len > 0) {
      for (int64_t j = 0; j < len; ++j) mean += double(to_compute(row[j]));
      mean /= double(len);
    }
    if (len > 0) {
      for (int64_t j = 0; j < len; ++j) {
        double d = double(to_compute(row[j])) - mean;
        var += d * d;
      }
      var /= double(len);
    }
    double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < len; ++j) {
      size_t k = size_t(param(r, j));
      double v = (double(to_compute(row[j])) - mean) * inv * scale[k] + (bias ? (*bias)[k] : 0.0);
      py[r * len + j] = from_compute<T>(Compute<T>(v));
    }
    if (means) (*means)[size_t(r)] = mean;
    if (inv_stds) (*inv_stds)[size_t(r)] = inv;
  }
}

template <class T>
void write_doubles(Tensor& t, const std::vector<double>& v) {
  T* p = t.data<T>();
  for (size_t i = 0; i < v.size(); ++i) p[i] = from_compute<T>(Compute<T>(v[i]));
}

void write_doubles_any(const NodeAttrs& n, Tensor& t, const std::vector<double>& v) {
  dispatch_float(t.dtype(), n, [&](auto tag) {
    using T = typename decltype(tag)::type;
    write_doubles<T>(t, v);
  });
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization

bool batchnorm_training(const NodeAttrs& n, int num_outputs) {
  if (n.opset() >= 14) return n.attr_int("training_mode", 0) != 0;
  return num_outputs > 1;
}

void infer_batchnorm(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  check_float(ctx, dt);
  if (ctx.opset() < 9 && ctx.attr_int("spatial", 1) == 0)
    ctx.unsupported("spatial=0 (per-element statistics) is not supported");
  const ir::Shape& in = ctx.input_shape(0);
  ir::Dim c = ir::Dim::unknown();
  if (in.has_rank) {
    if (in.rank() < 2) ctx.fail("X must have rank >= 2 (N x C x ...), got " + in.to_string());
    c = in.dims[1];
  }
  const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (int i = 1; i <= 4; ++i) {
    ctx.input_dtype(i);  // required
    check_vector_input(ctx, i, c, names[i]);
  }
  ctx.set_output(0, dt, in);
  DType stat = ctx.opset() >= 15 ? ctx.input_dtype(3) : dt;
  for (int i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, stat, ir::Shape({c}));
}

template <class T>
void batchnorm_typed(const Tensor& x, Tensor& y, int64_t n, int64_t c, int64_t s,
                     const std::vector<double>& scale, const std::vector<double>& bias,
                     const std::vector<double>& mean, const std::vector<double>& var, double eps) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ch = 0; ch < c; ++ch) {
      size_t k = size_t(ch);
      double mul = scale[k] / std::sqrt(var[k] + eps);
      int64_t base = (b * c + ch) * s;
      for (int64_t j = 0; j < s; ++j) {
        double v = (double(to_compute(px[base + j])) - mean[k]) * mul + bias[k];
        py[base + j] = from_compute<T>(Compute<T>(v));
      }
    }
  }
}

void run_batchnorm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  check_float(ctx, x.dtype());
  if (x.rank() < 2)
    ctx.fail("X must have rank >= 2 (N x C x ...), got " + dims_to_string(x.dims()),
             ErrorCode::kInvalidArgument);
  int64_t n = x.dim(0), c = x.dim(1), s = x.numel() / std::max<int64_t>(1, n * c);
  if (n * c == 0) s = 0;
  auto scale = vector_param(ctx, 1, c, "scale");
  auto bias = vector_param(ctx, 2, c, "B");
  auto mean = vector_param(ctx, 3, c, "input_mean");
  auto var = vector_param(ctx, 4, c, "input_var");
  double eps = ctx.attr_float("epsilon", 1e-5f);
  bool training = batchnorm_training(ctx, ctx.num_outputs());
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  std::vector<double> bmean(size_t(c), 0.0), bvar(size_t(c), 0.0);
  if (training) {
    // Batch statistics per channel over N and the spatial dims.
    int64_t count = n * s;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t j = 0; j < s; ++j)
          bmean[size_t(ch)] += x.element_as_double((b * c + ch) * s + j);
    for (auto& m : bmean) m /= double(count);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t j = 0; j < s; ++j) {
          double d = x.element_as_double((b * c + ch) * s + j) - bmean[size_t(ch)];
          bvar[size_t(ch)] += d * d;
        }
    for (auto& v : bvar) v /= double(count);
  }
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    batchnorm_typed<T>(x, y, n, c, s, scale, bias, training ? bmean : mean, training ? bvar : var,
                       eps);
  });
  if (ctx.num_outputs() <= 1) return;
  if (!training) ctx.unsupported("running statistics outputs need training mode");
  double momentum = ctx.attr_float("momentum", 0.9f);
  std::vector<double> rmean(static_cast<size_t>(c)), rvar(static_cast<size_t>(c));
  for (size_t k = 0; k < size_t(c); ++k) {
    rmean[k] = mean[k] * momentum + bmean[k] * (1 - momentum);
    rvar[k] = var[k] * momentum + bvar[k] * (1 - momentum);
  }
  DType stat = ctx.opset() >= 15 ? ctx.input(3).dtype() : x.dtype();
  const std::vector<double>* outs[] = {&rmean, &rvar, &bmean, &bvar};
  for (int i = 1; i < ctx.num_outputs() && i <= 4; ++i)
    write_doubles_any(ctx, ctx.output(i, stat, {c}), *outs[i - 1]);
}

// ---------------------------------------------------------------------------------------------
// LayerNormalization (17) and RMSNormalization (23): statistics over the axes from `axis` on;
// scale and bias broadcast to that normalized shape.

DType stash_dtype(const NodeAttrs& n) {
  int64_t s = n.attr_int("stash_type", 1);
  DType t = DType(s);
  if (t != DType::kF32 && t != DType::kF64 && t != DType::kF16 && t != DType::kBF16)
    n.fail("stash_type " + std::to_string(s) + " is not a float type");
  return t;
}

void infer_layer_norm(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  check_float(ctx, dt);
  ctx.input_dtype(1);  // scale is required
  DType stash = stash_dtype(ctx);
  const ir::Shape& in = ctx.input_shape(0);
  ctx.set_output(0, dt, in);
  if (!in.has_rank) {
    for (int i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, stash, ir::Shape::unranked());
    return;
  }
  if (in.rank() == 0) ctx.fail("X must have rank >= 1");
  int axis = normalize_axis(ctx, ctx.attr_int("axis", -1), in.rank());
  for (int i = 1; i <= 2 && ctx.has_input(i); ++i) {
    const ir::Shape& p = ctx.input_shape(i);
    if (!p.has_rank) continue;
    bool ok = p.rank() <= in.rank() - axis;
    for (int d = 0; ok && d < p.rank(); ++d) {
      const ir::Dim& pd = p.dims[size_t(d)];
      const ir::Dim& xd = in.dims[size_t(in.rank() - p.rank() + d)];
      ok = !(pd.known_different(xd) && !(pd.is_const() && pd.value == 1));
    }
    if (!ok)
      ctx.fail(std::string(i == 1 ? "scale" : "B") + " of shape " + p.to_string() +
               " does not broadcast to the normalized part of " + in.to_string());
  }
  std::vector<ir::Dim> stat(in.dims.begin(), in.dims.begin() + axis);
  stat.resize(size_t(in.rank()), ir::Dim::constant(1));
  for (int i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, stash, ir::Shape(stat));
}

void run_layer_norm(KernelContext& ctx) {
  bool rms = ctx.op_type() == "RMSNormalization";
  const Tensor& x = ctx.input(0);
  check_float(ctx, x.dtype());
  DType stash = stash_dtype(ctx);
  int rank = x.rank();
  if (rank == 0) ctx.fail("X must have rank >= 1", ErrorCode::kInvalidArgument);
  int axis = normalize_axis(ctx, ctx.attr_int("axis", -1), rank);
  Dims norm(x.dims().begin() + axis, x.dims().end());
  int64_t len = num_elements(norm);
  int64_t rows = 1;
  for (int d = 0; d < axis; ++d) rows *= x.dim(d);
  auto scale = broadcast_param(ctx, ctx.input(1), norm, "scale");
  std::vector<double> bias;
  if (!rms && ctx.has_input(2)) bias = broadcast_param(ctx, ctx.input(2), norm, "B");
  double eps = ctx.attr_float("epsilon", 1e-5f);
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  std::vector<double> means(static_cast<size_t>(rows)), inv_stds(static_cast<size_t>(rows));
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    normalize_rows<T>(
        x, y, rows, len, eps, !rms, scale, bias.empty() ? nullptr : &bias,
        [](int64_t, int64_t j) { return j; }, &means, &inv_stds);
  });
  Dims stat(x.dims().begin(), x.dims().begin() + axis);
  stat.resize(size_t(rank), 1);
  if (ctx.num_outputs() > 1) write_doubles_any(ctx, ctx.output(1, stash, stat), means);
  if (ctx.num_outputs() > 2) write_doubles_any(ctx, ctx.output(2, stash, stat), inv_stds);
}

// ---------------------------------------------------------------------------------------------
// InstanceNormalization and GroupNormalization: statistics per (n, channel group) over the
// group's channels and the spatial dims. InstanceNormalization is groups == channels.
// GroupNormalization's scale and bias are per group before opset 21 and per channel since.

void infer_channel_norm(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  check_float(ctx, dt);
  const ir::Shape& in = ctx.input_shape(0);
  ir::Dim c = ir::Dim::unknown();
  if (in.has_rank) {
    if (in.rank() < 2) ctx.fail("X must have rank >= 2 (N x C x ...), got " + in.to_string());
    c = in.dims[1];
  }
  ir::Dim params = c;
  if (ctx.op_type() == "GroupNormalization") {
    int64_t g = ctx.required_int("num_groups");
    if (g <= 0) ctx.fail("num_groups must be positive, got " + std::to_string(g));
    if (c.is_const() && c.value % g != 0)
      ctx.fail("the channel count " + std::to_string(c.value) + " is not divisible by num_groups " +
               std::to_string(g));
    if (ctx.opset() < 21) params = ir::Dim::constant(g);
    stash_dtype(ctx);
  }
  ctx.input_dtype(1);
  ctx.input_dtype(2);
  check_vector_input(ctx, 1, params, "scale");
  check_vector_input(ctx, 2, params, "B");
  ctx.set_output(0, dt, in);
}

void run_channel_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  check_float(ctx, x.dtype());
  if (x.rank() < 2)
    ctx.fail("X must have rank >= 2 (N x C x ...), got " + dims_to_string(x.dims()),
             ErrorCode::kInvalidArgument);
  int64_t n = x.dim(0), c = x.dim(1);
  int64_t s = 1;
  for (int d = 2; d < x.rank(); ++d) s *= x.dim(d);
  int64_t groups = c;
  bool per_group = false;
  if (ctx.op_type() == "GroupNormalization") {
    groups = ctx.required_int("num_groups");
    if (groups <= 0 || c % groups != 0)
      ctx.fail("the channel count " + std::to_string(c) + " is not divisible by num_groups " +
                   std::to_string(groups),
               ErrorCode::kInvalidArgument);
    per_group = ctx.opset() < 21;
  }
  int64_t per = groups == 0 ? 0 : c / groups;  // channels per group
  auto scale = vector_param(ctx, 1, per_group ? groups : c, "scale");
  auto bias = vector_param(ctx, 2, per_group ? groups : c, "B");
  double eps = ctx.attr_float("epsilon", 1e-5f);
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  int64_t len = per * s;
  auto param = [&](int64_t row, int64_t j) {
    int64_t g = row % groups;
    return per_group ? g : g * per + j / s;
  };
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    normalize_rows<T>(x, y, n * groups, len, eps, true, scale, &bias, param);
  });
}

// ---------------------------------------------------------------------------------------------
// LpNormalization: x / ||x||_p along `axis` (p = 1 or 2); a zero norm gives 0 (the node tests
// expect 0, not the NaN of a plain division).

void infer_lp_norm(InferContext& ctx) {
  check_float(ctx, ctx.input_dtype(0));
  int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) ctx.fail("p must be 1 or 2, got " + std::to_string(p));
  const ir::Shape& in = ctx.input_shape(0);
  if (in.has_rank) normalize_axis(ctx, ctx.attr_int("axis", -1), in.rank());
  infer_same_as_input0(ctx);
}

template <class T>
void lp_norm_typed(const Tensor& x, Tensor& y, int64_t outer, int64_t n, int64_t inner, int p) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      int64_t base = o * n * inner + i;
      double norm = 0;
      for (int64_t j = 0; j < n; ++j) {
        double v = double(to_compute(px[base + j * inner]));
        norm += p == 1 ? std::fabs(v) : v * v;
      }
      if (p == 2) norm = std::sqrt(norm);
      for (int64_t j = 0; j < n; ++j) {
        double v = norm == 0 ? 0.0 : double(to_compute(px[base + j * inner])) / norm;
        py[base + j * inner] = from_compute<T>(Compute<T>(v));
      }
    }
  }
}

void run_lp_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) ctx.fail("p must be 1 or 2, got " + std::to_string(p));
  int64_t outer = 1, n = 1, inner = 1;
  if (x.rank() > 0) {
    int axis = normalize_axis(ctx, ctx.attr_int("axis", -1), x.rank());
    for (int d = 0; d < x.rank(); ++d) (d < axis ? outer : d == axis ? n : inner) *= x.dim(d);
  }
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    lp_norm_typed<T>(x, y, outer, n, inner, int(p));
  });
}

// ---------------------------------------------------------------------------------------------
// MeanVarianceNormalization: (x - mean) / (sqrt(var) + 1e-9) over `axes` (default [0, 2, 3]);
// the 1e-9 is the epsilon of the ONNX function body.

void infer_mvn(InferContext& ctx) {
  check_float(ctx, ctx.input_dtype(0));
  const ir::Shape& in = ctx.input_shape(0);
  if (in.has_rank) normalize_axes(ctx, ctx.attr_ints("axes", {0, 2, 3}), in.rank());
  infer_same_as_input0(ctx);
}

template <class T>
void mvn_typed(const Tensor& x, Tensor& y, const Dims& kd, int64_t count) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  int64_t m = num_elements(kd);
  std::vector<double> mean(size_t(m), 0.0), var(size_t(m), 0.0);
  {
    BroadcastWalker w(x.dims(), {kd});
    for (int64_t i = 0; i < x.numel(); ++i, w.next())
      mean[size_t(w.offset(0))] += double(to_compute(px[i]));
  }
  for (auto& v : mean) v /= double(count);
  {
    BroadcastWalker w(x.dims(), {kd});
    for (int64_t i = 0; i < x.numel(); ++i, w.next()) {
      double d = double(to_compute(px[i])) - mean[size_t(w.offset(0))];
      var[size_t(w.offset(0))] += d * d;
    }
  }
  for (auto& v : var) v /= double(count);
  BroadcastWalker w(x.dims(), {kd});
  for (int64_t i = 0; i < x.numel(); ++i, w.next()) {
    size_t k = size_t(w.offset(0));
    double v = (double(to_compute(px[i])) - mean[k]) / (std::sqrt(var[k]) + 1e-9);
    py[i] = from_compute<T>(Compute<T>(v));
  }
}

void run_mvn(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  std::vector<int> axes = normalize_axes(ctx, ctx.attr_ints("axes", {0, 2, 3}), x.rank());
  Dims kd = x.dims();
  int64_t count = 1;
  if (x.rank() > 0) {
    for (int a : axes) {
      count *= kd[size_t(a)];
      kd[size_t(a)] = 1;
    }
  }
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    mvn_typed<T>(x, y, kd, count);
  });
}

// ---------------------------------------------------------------------------------------------
// LRN: y = x / (bias + alpha / size * sum of x^2 over nearby channels)^beta, the window being
// channels [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C).

void infer_lrn(InferContext& ctx) {
  check_float(ctx, ctx.input_dtype(0));
  int64_t size = ctx.required_int("size");
  if (size <= 0) ctx.fail("size must be positive, got " + std::to_string(size));
  const ir::Shape& in = ctx.input_shape(0);
  if (in.has_rank && in.rank() < 2)
    ctx.fail("X must have rank >= 2 (N x C x ...), got " + in.to_string());
  infer_same_as_input0(ctx);
}

template <class T>
void lrn_typed(const Tensor& x, Tensor& y, int64_t n, int64_t c, int64_t s, int64_t size,
               double alpha, double beta, double bias) {
  const T* px = x.data<T>();
  T* py = y.data<T>();
  int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ch = 0; ch < c; ++ch) {
      int64_t from = std::max<int64_t>(0, ch - lo), to = std::min<int64_t>(c - 1, ch + hi);
      for (int64_t j = 0; j < s; ++j) {
        double sq = 0;
        for (int64_t k = from; k <= to; ++k) {
          double v = double(to_compute(px[(b * c + k) * s + j]));
          sq += v * v;
        }
        int64_t at = (b * c + ch) * s + j;
        double v = double(to_compute(px[at])) / std::pow(bias + alpha / double(size) * sq, beta);
        py[at] = from_compute<T>(Compute<T>(v));
      }
    }
  }
}

void run_lrn(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t size = ctx.required_int("size");
  if (size <= 0) ctx.fail("size must be positive, got " + std::to_string(size));
  if (x.rank() < 2)
    ctx.fail("X must have rank >= 2 (N x C x ...), got " + dims_to_string(x.dims()),
             ErrorCode::kInvalidArgument);
  int64_t n = x.dim(0), c = x.dim(1), s = 1;
  for (int d = 2; d < x.rank(); ++d) s *= x.dim(d);
  Tensor& y = ctx.output(0, x.dtype(), x.dims());
  double alpha = ctx.attr_float("alpha", 1e-4f), beta = ctx.attr_float("beta", 0.75f),
         bias = ctx.attr_float("bias", 1.0f);
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    lrn_typed<T>(x, y, n, c, s, size, alpha, beta, bias);
  });
}

}  // namespace

void register_normalization_ops(Registry& r) {
  r.add({"", "BatchNormalization", 1, PatternKind::kOpaque, infer_batchnorm, run_batchnorm});
  r.add({"", "LayerNormalization", 17, PatternKind::kOpaque, infer_layer_norm, run_layer_norm});
  r.add({"", "RMSNormalization", 23, PatternKind::kOpaque, infer_layer_norm, run_layer_norm});
  r.add(
      {"", "InstanceNormalization", 1, PatternKind::kOpaque, infer_channel_norm, run_channel_norm});
  r.add({"", "GroupNormalization", 18, PatternKind::kOpaque, infer_channel_norm, run_channel_norm});
  r.add({"", "LpNormalization", 1, PatternKind::kOpaque, infer_lp_norm, run_lp_norm});
  r.add({"", "MeanVarianceNormalization", 1, PatternKind::kOpaque, infer_mvn, run_mvn});
  r.add({"", "LRN", 1, PatternKind::kOpaque, infer_lrn, run_lrn});
}

}  // namespace kiln::kernels
