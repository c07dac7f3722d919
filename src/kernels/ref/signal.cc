// Signal-processing ops: DFT, STFT, the Hann / Hamming / Blackman windows, MelWeightMatrix, and
// a few geometric / linear-algebra ops that have no other home: Det, AffineGrid, RoiAlign,
// DeformConv (2-D).
//
// Complex tensors are real tensors whose last dim is 2 (real, imaginary); a real signal has a
// last dim of 1. Transforms compute in double with a direct O(N^2) sum over a twiddle table
// indexed by (k*n) mod N, which keeps large-index angles exact. The semantics follow the ONNX
// reference implementation and its node tests: an inverse onesided DFT is an irfft (bins 0..n/2 of
// a Hermitian spectrum in, a real signal of length n out), and STFT counts frames with
// frame_length while a longer window reads (zero-padded) samples past it.
#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

using Complex = std::complex<double>;

// A scalar (or one-element) integer input, read at run time.
int64_t scalar_int(const KernelContext& ctx, int i, const char* name) {
  const Tensor& t = ctx.input(i);
  if (t.numel() != 1 || !dtype_is_int(t.dtype()))
    ctx.fail(std::string(name) + " must be an integer scalar", ErrorCode::kInvalidArgument);
  return t.element_as_int(0);
}

// A scalar integer input's value at inference time, when known.
std::optional<int64_t> known_scalar(const InferContext& ctx, int i, const char* name) {
  if (!ctx.has_input(i)) return std::nullopt;
  const ir::Shape& s = ctx.input_shape(i);
  if (s.has_rank && s.num_elements() && *s.num_elements() != 1)
    ctx.fail(std::string(name) + " must be a scalar, got shape " + s.to_string());
  auto v = ctx.input_ints(i);
  if (!v || v->size() != 1) return std::nullopt;
  return (*v)[0];
}

// Twiddles e^{sign*2*pi*i*m/n} for m < n.
std::vector<Complex> twiddles(int64_t n, double sign) {
  std::vector<Complex> w(static_cast<size_t>(n));
  for (int64_t m = 0; m < n; ++m) {
    double a = sign * 2 * std::numbers::pi * double(m) / double(n);
    w[size_t(m)] = Complex(std::cos(a), std::sin(a));
  }
  return w;
}

// out[k] = sum_{m < len(x), m < n} x[m] * w[(k*m) mod n] for k < out.size().
void dft_line(const std::vector<Complex>& x, int64_t n, const std::vector<Complex>& w,
              std::vector<Complex>& out) {
  int64_t m_end = std::min<int64_t>(int64_t(x.size()), n);
  for (size_t k = 0; k < out.size(); ++k) {
    Complex s = 0;
    for (int64_t m = 0; m < m_end; ++m) s += x[size_t(m)] * w[size_t((int64_t(k) * m) % n)];
    out[k] = s;
  }
}

// ---- DFT -------------------------------------------------------------------------------------

// The DFT axis: the attribute before opset 20 (default 1), input 2 from opset 20 (default -2).
// Valid axes are signal dims: [-r, -2] or [0, r-2]. nullopt when not known at load time.
std::optional<int> dft_axis(const NodeAttrs& n, std::optional<int64_t> axis_input, int rank) {
  int64_t axis;
  if (n.opset() < 20) {
    axis = n.attr_int("axis", 1);
  } else if (axis_input) {
    axis = *axis_input;
  } else {
    return std::nullopt;
  }
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a > rank - 2)
    n.fail("axis " + std::to_string(axis) + " must name a signal dim of the rank-" +
           std::to_string(rank) + " input, in [" + std::to_string(-rank) + ", -2] or [0, " +
           std::to_string(rank - 2) + "]");
  return int(a);
}

bool dft_has_axis_input(const NodeAttrs& n, bool present) { return n.opset() >= 20 && present; }

void infer_dft(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt)) ctx.unsupported(std::string("element type ") + dtype_name(dt));
  const ir::Shape& xs = ctx.input_shape(0);
  if (!xs.has_rank) return ctx.set_output(0, dt, ir::Shape::unranked());
  int r = xs.rank();
  if (r < 2)
    ctx.fail("input must have rank >= 2 ([signal dims..., 1 or 2]), got " + xs.to_string());
  const ir::Dim& last = xs.dims.back();
  if (last.is_const() && last.value != 1 && last.value != 2)
    ctx.fail("input's last dim must be 1 (real) or 2 (complex), got " + xs.to_string());
  std::optional<int64_t> axis_in = -2;
  if (dft_has_axis_input(ctx, ctx.has_input(2))) axis_in = known_scalar(ctx, 2, "axis");
  std::optional<int> axis = dft_axis(ctx, axis_in, r);
  const bool onesided = ctx.attr_int("onesided", 0) != 0;
  const bool inverse = ctx.attr_int("inverse", 0) != 0;
  std::vector<ir::Dim> out = xs.dims;
  out.back() = ir::Dim::constant(inverse && onesided ? 1 : 2);
  if (!axis) {
    for (int i = 0; i + 1 < r; ++i) out[size_t(i)] = ctx.fresh_dim();
    return ctx.set_output(0, dt, ir::Shape(out));
  }
  const ir::Dim& m = xs.dims[size_t(*axis)];
  // An inverse onesided DFT (irfft) reads m = n/2+1 bins; without dft_length, n = 2*(m-1).
  ir::Dim n =
      inverse && onesided ? dim_mul(ir::Dim::constant(2), dim_sub(m, ir::Dim::constant(1))) : m;
  if (ctx.has_input(1)) {
    auto len = known_scalar(ctx, 1, "dft_length");
    if (len && *len <= 0) ctx.fail("dft_length must be positive, got " + std::to_string(*len));
    n = len ? ir::Dim::constant(*len) : ctx.fresh_dim();
  }
  if (inverse && onesided) {
    if (n.is_const() && n.value <= 0) ctx.fail("irfft needs dft_length or at least 2 input bins");
    out[size_t(*axis)] = n;
  } else {
    out[size_t(*axis)] =
        onesided ? dim_add(dim_div(n, ir::Dim::constant(2)), ir::Dim::constant(1)) : n;
  }
  ctx.set_output(0, dt, ir::Shape(out));
}

void run_dft(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Dims& xd = x.dims();
  const int r = int(xd.size());
  std::optional<int64_t> axis_in = -2;
  if (dft_has_axis_input(ctx, ctx.has_input(2))) axis_in = scalar_int(ctx, 2, "axis");
  const int axis = *dft_axis(ctx, axis_in, r);
  const int64_t len_in = xd[size_t(axis)];
  const bool inverse = ctx.attr_int("inverse", 0) != 0;
  const bool onesided = ctx.attr_int("onesided", 0) != 0;
  const bool irfft = inverse && onesided;
  const int64_t n = ctx.has_input(1) ? scalar_int(ctx, 1, "dft_length")
                    : irfft          ? 2 * (len_in - 1)
                                     : len_in;
  if (n <= 0) ctx.fail("dft_length must be positive", ErrorCode::kInvalidArgument);
  const int64_t n_out = irfft ? n : onesided ? n / 2 + 1 : n;
  const int64_t out_comps = irfft ? 1 : 2;
  const int64_t comps = xd.back();  // 1: real, 2: complex

  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= xd[size_t(i)];
  for (int i = axis + 1; i < r - 1; ++i) inner *= xd[size_t(i)];
  Dims od = xd;
  od[size_t(axis)] = n_out;
  od.back() = out_comps;

  std::vector<double> xv = to_doubles(ctx, x);
  std::vector<double> yv(static_cast<size_t>(outer * n_out * inner * out_comps));
  auto w = twiddles(n, inverse ? 1.0 : -1.0);
  // irfft rebuilds the full Hermitian spectrum from bins 0..n/2 (numpy's irfft: missing bins are
  // zero, the imaginary parts of the DC and Nyquist bins are ignored).
  std::vector<Complex> line(static_cast<size_t>(irfft ? n : std::min(len_in, n)));
  std::vector<Complex> res(static_cast<size_t>(n_out));
  auto at_in = [&](int64_t o, int64_t m, int64_t in) {
    size_t at = size_t(((o * len_in + m) * inner + in) * comps);
    return Complex(xv[at], comps == 2 ? xv[at + 1] : 0.0);
  };
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      if (irfft) {
        for (int64_t k = 0; k < n; ++k) {
          int64_t src = k <= n / 2 ? k : n - k;
          Complex v = src < len_in ? at_in(o, src, in) : Complex(0);
          if (src == 0 || 2 * src == n) v = Complex(v.real(), 0);
          line[size_t(k)] = k <= n / 2 ? v : std::conj(v);
        }
      } else {
        for (size_t m = 0; m < line.size(); ++m) line[m] = at_in(o, int64_t(m), in);
      }
      dft_line(line, n, w, res);
      for (int64_t k = 0; k < n_out; ++k) {
        Complex v = inverse ? res[size_t(k)] / double(n) : res[size_t(k)];
        size_t at = size_t(((o * n_out + k) * inner + in) * out_comps);
        yv[at] = v.real();
        if (!irfft) yv[at + 1] = v.imag();
      }
    }
  store_doubles(ctx, yv, ctx.output(0, x.dtype(), od));
}

// ---- STFT ------------------------------------------------------------------------------------

void infer_stft(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt)) ctx.unsupported(std::string("element type ") + dtype_name(dt));
  const ir::Shape& xs = ctx.input_shape(0);
  ir::Dim batch = ctx.fresh_dim(), len = ctx.fresh_dim();
  if (xs.has_rank) {
    if (xs.rank() != 3)
      ctx.fail("signal must have shape [batch, length, 1 or 2], got " + xs.to_string());
    const ir::Dim& last = xs.dims[2];
    if (last.is_const() && last.value != 1 && last.value != 2)
      ctx.fail("signal's last dim must be 1 (real) or 2 (complex), got " + xs.to_string());
    batch = xs.dims[0];
    len = xs.dims[1];
  }
  auto step = known_scalar(ctx, 1, "frame_step");
  if (step && *step <= 0) ctx.fail("frame_step must be positive, got " + std::to_string(*step));
  ir::Dim fl = len;
  if (ctx.has_input(2)) {
    const ir::Shape& ws = ctx.input_shape(2);
    if (ws.has_rank && ws.rank() != 1) ctx.fail("window must have rank 1, got " + ws.to_string());
    fl = ws.has_rank ? ws.dims[0] : ctx.fresh_dim();
  }
  if (ctx.has_input(3)) {
    auto v = known_scalar(ctx, 3, "frame_length");
    if (v && *v <= 0) ctx.fail("frame_length must be positive, got " + std::to_string(*v));
    fl = v ? ir::Dim::constant(*v) : ctx.fresh_dim();
  }
  if (fl.is_const() && len.is_const() && fl.value > len.value)
    ctx.fail("frame_length " + std::to_string(fl.value) + " exceeds the signal length " +
             std::to_string(len.value));
  ir::Dim frames =
      step ? dim_add(dim_div(dim_sub(len, fl), ir::Dim::constant(*step)), ir::Dim::constant(1))
           : ctx.fresh_dim();
  bool onesided = ctx.attr_int("onesided", 1) != 0;
  ir::Dim bins = onesided ? dim_add(dim_div(fl, ir::Dim::constant(2)), ir::Dim::constant(1)) : fl;
  ctx.set_output(0, dt, ir::Shape({batch, frames, bins, ir::Dim::constant(2)}));
}

void run_stft(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t batch = x.dims()[0], len = x.dims()[1], comps = x.dims()[2];
  const int64_t step = scalar_int(ctx, 1, "frame_step");
  std::vector<double> win;
  if (ctx.has_input(2)) win = to_doubles(ctx, ctx.input(2));
  int64_t fl = ctx.has_input(3)   ? scalar_int(ctx, 3, "frame_length")
               : ctx.has_input(2) ? int64_t(win.size())
                                  : len;
  if (fl <= 0 || step <= 0 || fl > len)
    ctx.fail("needs 0 < frame_length <= signal length and frame_step > 0",
             ErrorCode::kInvalidArgument);
  if (!ctx.has_input(2)) win.assign(size_t(fl), 1.0);
  const int64_t frames = 1 + (len - fl) / step;
  const bool onesided = ctx.attr_int("onesided", 1) != 0;
  const int64_t bins = onesided ? fl / 2 + 1 : fl;

  std::vector<double> xv = to_doubles(ctx, x);
  std::vector<double> yv(static_cast<size_t>(batch * frames * bins * 2));
  auto w = twiddles(fl, -1.0);
  std::vector<Complex> frame(win.size()), res(static_cast<size_t>(bins));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      // A window longer than the signal's remainder reads zeros past its end.
      for (size_t m = 0; m < win.size(); ++m) {
        int64_t idx = f * step + int64_t(m);
        Complex v = 0;
        if (idx < len) {
          size_t at = size_t((b * len + idx) * comps);
          v = Complex(xv[at], comps == 2 ? xv[at + 1] : 0.0);
        }
        frame[m] = v * win[m];
      }
      dft_line(frame, fl, w, res);
      for (int64_t k = 0; k < bins; ++k) {
        size_t at = size_t(((b * frames + f) * bins + k) * 2);
        yv[at] = res[size_t(k)].real();
        yv[at + 1] = res[size_t(k)].imag();
      }
    }
  store_doubles(ctx, yv, ctx.output(0, x.dtype(), {batch, frames, bins, 2}));
}

// ---- windows and the mel matrix --------------------------------------------------------------

DType output_datatype(const NodeAttrs& n) {
  int64_t v = n.attr_int("output_datatype", int64_t(DType::kF32));
  DType t = static_cast<DType>(v);
  if (!dtype_is_float(t) && !dtype_is_int(t))
    n.fail("output_datatype " + std::to_string(v) + " is not a numeric element type");
  return t;
}

void infer_window(InferContext& ctx) {
  DType t = output_datatype(ctx);
  auto size = known_scalar(ctx, 0, "size");
  if (size && *size < 0) ctx.fail("size must be non-negative, got " + std::to_string(*size));
  ctx.set_output(0, t, ir::Shape({size ? ir::Dim::constant(*size) : ctx.fresh_dim()}));
}

void run_window(KernelContext& ctx) {
  const int64_t size = scalar_int(ctx, 0, "size");
  if (size < 0) ctx.fail("size must be non-negative", ErrorCode::kInvalidArgument);
  const bool periodic = ctx.attr_int("periodic", 1) != 0;
  // A periodic window is the first `size` points of the symmetric window of size + 1.
  const double denom = double(periodic ? size : size - 1);
  const std::string& op = ctx.op_type();
  std::vector<double> v(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) {
    double a = denom > 0 ? 2 * std::numbers::pi * double(i) / denom : 0.0;
    if (op == "HannWindow")
      v[size_t(i)] = 0.5 - 0.5 * std::cos(a);
    else if (op == "HammingWindow")
      v[size_t(i)] = 25.0 / 46 - (21.0 / 46) * std::cos(a);
    else
      v[size_t(i)] = 0.42 - 0.5 * std::cos(a) + 0.08 * std::cos(2 * a);
    if (denom <= 0) v[size_t(i)] = 1;  // a window of one point (symmetric) is just 1
  }
  store_doubles(ctx, v, ctx.output(0, output_datatype(ctx), {size}));
}

void infer_mel(InferContext& ctx) {
  DType t = output_datatype(ctx);
  auto bins = known_scalar(ctx, 0, "num_mel_bins");
  auto dft = known_scalar(ctx, 1, "dft_length");
  if (bins && *bins <= 0) ctx.fail("num_mel_bins must be positive");
  if (dft && *dft <= 0) ctx.fail("dft_length must be positive");
  ctx.set_output(0, t,
                 ir::Shape({dft ? ir::Dim::constant(*dft / 2 + 1) : ctx.fresh_dim(),
                            bins ? ir::Dim::constant(*bins) : ctx.fresh_dim()}));
}

void run_mel(KernelContext& ctx) {
  const int64_t mels = scalar_int(ctx, 0, "num_mel_bins");
  const int64_t dft = scalar_int(ctx, 1, "dft_length");
  const int64_t rate = scalar_int(ctx, 2, "sample_rate");
  if (mels <= 0 || dft <= 0 || rate <= 0)
    ctx.fail("num_mel_bins, dft_length and sample_rate must be positive",
             ErrorCode::kInvalidArgument);
  auto scalar_float = [&](int i) {
    const Tensor& t = ctx.input(i);
    if (t.numel() != 1) ctx.fail("edge frequencies must be scalars", ErrorCode::kInvalidArgument);
    return to_doubles(ctx, t)[0];
  };
  const double lo_hz = scalar_float(3), hi_hz = scalar_float(4);
  const int64_t spec_bins = dft / 2 + 1;
  auto hz_to_mel = [](double hz) { return 2595 * std::log10(1 + hz / 700); };
  const double lo = hz_to_mel(lo_hz), hi = hz_to_mel(hi_hz);
  // num_mel_bins + 2 points (left edge, centers, right edge), spaced by (hi - lo) / (mels + 2)
  // as the ONNX reference does, mapped back to hertz and to spectrogram bin indices.
  const double step = (hi - lo) / double(mels + 2);
  std::vector<int64_t> pts(static_cast<size_t>(mels + 2));
  for (int64_t i = 0; i < mels + 2; ++i) {
    double hz = 700 * (std::pow(10.0, (lo + step * double(i)) / 2595) - 1);
    pts[size_t(i)] = int64_t(std::floor(double(dft + 1) * hz / double(rate)));
  }
  std::vector<double> out(static_cast<size_t>(spec_bins * mels), 0.0);
  // Points past the spectrogram (upper edge above the Nyquist frequency) are dropped.
  auto set = [&](int64_t j, int64_t i, double v) {
    if (j >= 0 && j < spec_bins) out[size_t(j * mels + i)] = v;
  };
  for (int64_t i = 0; i < mels; ++i) {
    int64_t left = pts[size_t(i)], center = pts[size_t(i + 1)], right = pts[size_t(i + 2)];
    if (center == left) {
      set(center, i, 1);
    } else {
      for (int64_t j = left; j <= center; ++j) set(j, i, double(j - left) / double(center - left));
    }
    for (int64_t j = center; j < right; ++j) set(j, i, double(right - j) / double(right - center));
  }
  store_doubles(ctx, out, ctx.output(0, output_datatype(ctx), {spec_bins, mels}));
}

// ---- Det -------------------------------------------------------------------------------------

void infer_det(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt)) ctx.unsupported(std::string("element type ") + dtype_name(dt));
  const ir::Shape& s = ctx.input_shape(0);
  if (!s.has_rank) return ctx.set_output(0, dt, ir::Shape::unranked());
  if (s.rank() < 2) ctx.fail("input must have rank >= 2 ([..., M, M]), got " + s.to_string());
  if (s.dims[size_t(s.rank() - 2)].known_different(s.dims[size_t(s.rank() - 1)]))
    ctx.fail("input's last two dims must be equal (square matrices), got " + s.to_string());
  ctx.set_output(0, dt, ir::Shape(std::vector<ir::Dim>(s.dims.begin(), s.dims.end() - 2)));
}

// Determinant by Gaussian elimination with partial pivoting.
void run_det(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Dims& d = x.dims();
  const int64_t m = d.back();
  Dims od(d.begin(), d.end() - 2);
  const int64_t count = num_elements(od);
  std::vector<double> xv = to_doubles(ctx, x), out(static_cast<size_t>(count));
  for (int64_t b = 0; b < count; ++b) {
    std::vector<double> a(xv.begin() + b * m * m, xv.begin() + (b + 1) * m * m);
    double det = 1;
    for (int64_t c = 0; c < m && det != 0; ++c) {
      int64_t p = c;
      for (int64_t r = c + 1; r < m; ++r)
        if (std::abs(a[size_t(r * m + c)]) > std::abs(a[size_t(p * m + c)])) p = r;
      if (a[size_t(p * m + c)] == 0) {
        det = 0;
        break;
      }
      if (p != c) {
        for (int64_t k = 0; k < m; ++k) std::swap(a[size_t(p * m + k)], a[size_t(c * m + k)]);
        det = -det;
      }
      double piv = a[size_t(c * m + c)];
      det *= piv;
      for (int64_t r = c + 1; r < m; ++r) {
        double f = a[size_t(r * m + c)] / piv;
        for (int64_t k = c; k < m; ++k) a[size_t(r * m + k)] -= f * a[size_t(c * m + k)];
      }
    }
    out[size_t(b)] = det;
  }
  store_doubles(ctx, out, ctx.output(0, x.dtype(), od));
}

// ---- AffineGrid ------------------------------------------------------------------------------

// theta [N, 2, 3] with size [N, C, H, W] -> grid [N, H, W, 2] (x, y); theta [N, 3, 4] with size
// [N, C, D, H, W] -> grid [N, D, H, W, 3] (x, y, z).
void infer_affine_grid(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt)) ctx.unsupported(std::string("element type ") + dtype_name(dt));
  const ir::Shape& ts = ctx.input_shape(0);
  int spatial = 0;  // 2 or 3 when known
  if (ts.has_rank) {
    if (ts.rank() != 3) ctx.fail("theta must be [N, 2, 3] or [N, 3, 4], got " + ts.to_string());
    if (ts.dims[1].is_const()) spatial = int(ts.dims[1].value);
  }
  auto size = ctx.input_dims_value(1);
  const ir::Shape& ss = ctx.input_shape(1);
  if (!spatial && ss.has_rank && ss.rank() == 1 && ss.dims[0].is_const())
    spatial = int(ss.dims[0].value) - 2;
  if (!spatial) return ctx.set_output(0, dt, ir::Shape::unranked());
  if (spatial != 2 && spatial != 3)
    ctx.fail("theta must be [N, 2, 3] or [N, 3, 4], got " + ts.to_string());
  if (ts.has_rank && (ts.dims[2].known_different(ir::Dim::constant(spatial + 1))))
    ctx.fail("theta must be [N, 2, 3] or [N, 3, 4], got " + ts.to_string());
  if (size && int(size->size()) != spatial + 2)
    ctx.fail("size must have " + std::to_string(spatial + 2) + " elements for this theta");
  std::vector<ir::Dim> out;
  out.push_back(size ? (*size)[0] : ts.has_rank ? ts.dims[0] : ctx.fresh_dim());
  for (int i = 0; i < spatial; ++i) out.push_back(size ? (*size)[size_t(2 + i)] : ctx.fresh_dim());
  out.push_back(ir::Dim::constant(spatial));
  ctx.set_output(0, dt, ir::Shape(out));
}

void run_affine_grid(KernelContext& ctx) {
  const Tensor& theta = ctx.input(0);
  const Tensor& size_t_ = ctx.input(1);
  const int64_t k = size_t_.numel();
  std::vector<int64_t> size(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) size[size_t(i)] = size_t_.element_as_int(i);
  const int spatial = int(k) - 2;
  if ((spatial != 2 && spatial != 3) || theta.dims() != Dims{size[0], spatial, spatial + 1})
    ctx.fail(
        "theta " + dims_to_string(theta.dims()) + " does not match size " + dims_to_string(size),
        ErrorCode::kInvalidArgument);
  for (int64_t v : size)
    if (v < 0) ctx.fail("size must be non-negative", ErrorCode::kInvalidArgument);
  const bool align = ctx.attr_int("align_corners", 0) != 0;
  // Normalized coordinate of index i along a dim of length len, in [-1, 1].
  auto coord = [&](int64_t i, int64_t len) {
    if (align) return len <= 1 ? 0.0 : -1 + 2.0 * double(i) / double(len - 1);
    return (2.0 * double(i) + 1) / double(len) - 1;
  };
  const int64_t n = size[0];
  const int64_t d = spatial == 3 ? size[2] : 1;
  const int64_t h = size[size_t(spatial == 3 ? 3 : 2)], w = size[size_t(spatial == 3 ? 4 : 3)];
  std::vector<double> th = to_doubles(ctx, theta);
  std::vector<double> out(static_cast<size_t>(n * d * h * w * spatial));
  size_t o = 0;
  const int cols = spatial + 1;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t z = 0; z < d; ++z)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          double base[4] = {coord(x, w), coord(y, h), spatial == 3 ? coord(z, d) : 1.0, 1.0};
          if (spatial == 2) base[2] = 1.0;
          for (int r = 0; r < spatial; ++r) {
            double s = 0;
            for (int c = 0; c < cols; ++c) s += th[size_t((b * spatial + r) * cols + c)] * base[c];
            out[o++] = s;
          }
        }
  Dims od = spatial == 3 ? Dims{n, d, h, w, 3} : Dims{n, h, w, 2};
  store_doubles(ctx, out, ctx.output(0, theta.dtype(), od));
}

// ---- RoiAlign --------------------------------------------------------------------------------

void infer_roi_align(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt)) ctx.unsupported(std::string("element type ") + dtype_name(dt));
  if (ctx.input_dtype(1) != dt) ctx.fail("rois must have X's element type");
  if (!dtype_is_int(ctx.input_dtype(2))) ctx.fail("batch_indices must be an integer tensor");
  const ir::Shape& xs = ctx.input_shape(0);
  const ir::Shape& rs = ctx.input_shape(1);
  const ir::Shape& bs = ctx.input_shape(2);
  if (xs.has_rank && xs.rank() != 4) ctx.fail("X must be [N, C, H, W], got " + xs.to_string());
  if (rs.has_rank && (rs.rank() != 2 || rs.dims[1].known_different(ir::Dim::constant(4))))
    ctx.fail("rois must be [num_rois, 4], got " + rs.to_string());
  if (bs.has_rank && bs.rank() != 1) ctx.fail("batch_indices must be 1-D, got " + bs.to_string());
  ir::Dim rois = rs.has_rank ? rs.dims[0] : bs.has_rank ? bs.dims[0] : ctx.fresh_dim();
  if (rs.has_rank && bs.has_rank && rs.dims[0].known_different(bs.dims[0]))
    ctx.fail("rois " + rs.to_string() + " and batch_indices " + bs.to_string() + " disagree");
  const int64_t oh = ctx.attr_int("output_height", 1), ow = ctx.attr_int("output_width", 1);
  if (oh <= 0 || ow <= 0) ctx.fail("output_height and output_width must be positive");
  std::string mode = ctx.attr_string("mode", "avg");
  if (mode != "avg" && mode != "max") ctx.fail("mode must be avg or max, got '" + mode + "'");
  ir::Dim c = xs.has_rank ? xs.dims[1] : ctx.fresh_dim();
  ctx.set_output(0, dt, ir::Shape({rois, c, ir::Dim::constant(oh), ir::Dim::constant(ow)}));
}

// Follows onnxruntime's RoiAlign (which the ONNX reference mirrors): samples on a regular grid
// in each bin, bilinear weights clamped at the border; max mode takes, per sample, the largest of
// the four weighted corner values.
void run_roi_align(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const int64_t n = xt.dims()[0], ch = xt.dims()[1], height = xt.dims()[2], width = xt.dims()[3];
  const Tensor& bt = ctx.input(2);
  const int64_t num_rois = bt.numel();
  if (ctx.input(1).dims() != Dims{num_rois, 4})
    ctx.fail("rois must be [num_rois, 4] with num_rois = batch_indices' length",
             ErrorCode::kInvalidArgument);
  const int64_t oh = ctx.attr_int("output_height", 1), ow = ctx.attr_int("output_width", 1);
  const int64_t ratio = ctx.attr_int("sampling_ratio", 0);
  const double scale = ctx.attr_float("spatial_scale", 1.0f);
  if (!std::isfinite(scale)) ctx.fail("spatial_scale must be finite");
  const bool is_max = ctx.attr_string("mode", "avg") == "max";
  // Opset 16 added coordinate_transformation_mode (default half_pixel); before, output_half_pixel.
  const std::string ctm = ctx.attr_string("coordinate_transformation_mode",
                                          ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel")
    ctx.fail("coordinate_transformation_mode must be half_pixel or output_half_pixel");
  const bool half_pixel = ctm == "half_pixel";
  std::vector<double> x = to_doubles(ctx, xt), rois = to_doubles(ctx, ctx.input(1));
  for (double v : rois)
    if (!std::isfinite(v)) ctx.fail("rois must be finite", ErrorCode::kInvalidArgument);
  std::vector<double> out(static_cast<size_t>(num_rois * ch * oh * ow), 0.0);

  struct Sample {
    int64_t pos[4];
    double w[4];
  };
  for (int64_t r = 0; r < num_rois; ++r) {
    const int64_t b = bt.element_as_int(r);
    if (b < 0 || b >= n)
      ctx.fail("batch_indices[" + std::to_string(r) + "] = " + std::to_string(b) +
                   " is outside [0, " + std::to_string(n) + ")",
               ErrorCode::kInvalidArgument);
    const double off = half_pixel ? 0.5 : 0.0;
    const double* roi = rois.data() + r * 4;
    double x0 = roi[0] * scale - off, y0 = roi[1] * scale - off;
    double rw = roi[2] * scale - off - x0, rh = roi[3] * scale - off - y0;
    if (!half_pixel) {
      rw = std::max(rw, 1.0);
      rh = std::max(rh, 1.0);
    }
    const double bin_h = rh / double(oh), bin_w = rw / double(ow);
    const double gh = ratio > 0 ? double(ratio) : std::ceil(rh / double(oh));
    const double gw = ratio > 0 ? double(ratio) : std::ceil(rw / double(ow));
    // A malformed sampling_ratio or ROI must not turn into an endless loop.
    constexpr double kMaxSamplesPerBin = 1 << 20;
    if (!(gh * gw <= kMaxSamplesPerBin))
      ctx.fail("ROI " + std::to_string(r) + " needs " + std::to_string(gh) + "x" +
                   std::to_string(gw) + " samples per bin; at most 2^20 are supported",
               ErrorCode::kInvalidArgument);
    const int64_t grid_h = int64_t(gh), grid_w = int64_t(gw);
    const double count = double(std::max<int64_t>(grid_h * grid_w, 1));
    // Sample positions and weights, shared by every channel.
    std::vector<Sample> samples;
    samples.reserve(size_t(oh * ow * std::max<int64_t>(grid_h * grid_w, 0)));
    for (int64_t ph = 0; ph < oh; ++ph)
      for (int64_t pw = 0; pw < ow; ++pw)
        for (int64_t iy = 0; iy < grid_h; ++iy)
          for (int64_t ix = 0; ix < grid_w; ++ix) {
            double yy = y0 + double(ph) * bin_h + (double(iy) + 0.5) * bin_h / double(grid_h);
            double xx = x0 + double(pw) * bin_w + (double(ix) + 0.5) * bin_w / double(grid_w);
            Sample s{{0, 0, 0, 0}, {0, 0, 0, 0}};
            if (!(yy < -1.0 || yy > double(height) || xx < -1.0 || xx > double(width)) &&
                height > 0 && width > 0) {
              yy = std::max(yy, 0.0);
              xx = std::max(xx, 0.0);
              int64_t yl = int64_t(yy), xl = int64_t(xx), yh, xh;
              if (yl >= height - 1) {
                yh = yl = height - 1;
                yy = double(yl);
              } else {
                yh = yl + 1;
              }
              if (xl >= width - 1) {
                xh = xl = width - 1;
                xx = double(xl);
              } else {
                xh = xl + 1;
              }
              double ly = yy - double(yl), lx = xx - double(xl), hy = 1 - ly, hx = 1 - lx;
              s = {{yl * width + xl, yl * width + xh, yh * width + xl, yh * width + xh},
                   {hy * hx, hy * lx, ly * hx, ly * lx}};
            }
            samples.push_back(s);
          }
    const int64_t per_bin = grid_h * grid_w;
    if (height == 0 || width == 0) continue;  // nothing to sample: the output stays 0
    for (int64_t c = 0; c < ch; ++c) {
      const double* plane = x.data() + (b * ch + c) * height * width;
      for (int64_t bin = 0; bin < oh * ow; ++bin) {
        double acc = 0;
        for (int64_t k = 0; k < per_bin; ++k) {
          const Sample& s = samples[size_t(bin * per_bin + k)];
          if (is_max) {
            double v = s.w[0] * plane[s.pos[0]];
            for (int q = 1; q < 4; ++q) v = std::max(v, s.w[q] * plane[s.pos[q]]);
            acc = k == 0 ? v : std::max(acc, v);
          } else {
            for (int q = 0; q < 4; ++q) acc += s.w[q] * plane[s.pos[q]];
          }
        }
        out[size_t((r * ch + c) * oh * ow + bin)] = is_max ? acc : acc / count;
      }
    }
  }
  store_doubles(ctx, out, ctx.output(0, xt.dtype(), {num_rois, ch, oh, ow}));
}

// ---- DeformConv ------------------------------------------------------------------------------

struct DeformParams {
  int64_t kh = 0, kw = 0, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t group = 1, offset_group = 1;
};

// 2-D only (the common case and all the node tests); kernel_shape falls back to W's dims.
DeformParams deform_params(const NodeAttrs& n, const ir::Shape& w) {
  DeformParams p;
  auto ks = n.attr_ints("kernel_shape");
  if (ks.empty() && w.has_rank && w.rank() == 4 && w.dims[2].is_const() && w.dims[3].is_const())
    ks = {w.dims[2].value, w.dims[3].value};
  if (ks.size() == 2) {
    p.kh = ks[0];
    p.kw = ks[1];
  }
  auto st = n.attr_ints("strides", {1, 1});
  auto di = n.attr_ints("dilations", {1, 1});
  auto pa = n.attr_ints("pads", {0, 0, 0, 0});
  if (st.size() != 2 || di.size() != 2 || pa.size() != 4)
    n.fail("strides and dilations need 2 values and pads 4 (2-D DeformConv)");
  p.sh = st[0];
  p.sw = st[1];
  p.dh = di[0];
  p.dw = di[1];
  p.pt = pa[0];
  p.pl = pa[1];
  p.pb = pa[2];
  p.pr = pa[3];
  p.group = n.attr_int("group", 1);
  p.offset_group = n.attr_int("offset_group", 1);
  if (p.sh <= 0 || p.sw <= 0 || p.dh <= 0 || p.dw <= 0 || p.group <= 0 || p.offset_group <= 0 ||
      p.pt < 0 || p.pl < 0 || p.pb < 0 || p.pr < 0)
    n.fail("strides, dilations, group and offset_group must be positive and pads non-negative");
  return p;
}

void infer_deform_conv(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt)) ctx.unsupported(std::string("element type ") + dtype_name(dt));
  const ir::Shape& xs = ctx.input_shape(0);
  const ir::Shape& ws = ctx.input_shape(1);
  if ((xs.has_rank && xs.rank() != 4) || (ws.has_rank && ws.rank() != 4))
    ctx.unsupported("only 2-D DeformConv (X [N, C, H, W], W [oC, C/group, kH, kW]) is supported");
  DeformParams p = deform_params(ctx, ws);
  if (!xs.has_rank || !ws.has_rank)
    return ctx.set_output(
        0, dt, ir::Shape({ctx.fresh_dim(), ctx.fresh_dim(), ctx.fresh_dim(), ctx.fresh_dim()}));
  if (p.kh <= 0 || p.kw <= 0) ctx.fail("kernel_shape must be 2 positive values");
  if (xs.dims[1].known_different(dim_mul(ws.dims[1], ir::Dim::constant(p.group))))
    ctx.fail("X's channels " + xs.dims[1].to_string() + " must equal W's dim 1 times group");
  auto out_dim = [&](const ir::Dim& in, int64_t pads, int64_t k, int64_t d, int64_t s) {
    ir::Dim span =
        dim_sub(dim_add(in, ir::Dim::constant(pads)), ir::Dim::constant(d * (k - 1) + 1));
    if (span.is_const() && span.value < 0) ctx.fail("the kernel does not fit the padded input");
    return dim_add(dim_div(span, ir::Dim::constant(s)), ir::Dim::constant(1));
  };
  ctx.set_output(
      0, dt,
      ir::Shape({xs.dims[0], ws.dims[0], out_dim(xs.dims[2], p.pt + p.pb, p.kh, p.dh, p.sh),
                 out_dim(xs.dims[3], p.pl + p.pr, p.kw, p.dw, p.sw)}));
}

void run_deform_conv(KernelContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Tensor& wt = ctx.input(1);
  DeformParams p = deform_params(ctx, to_shape(wt.dims()));
  const int64_t n = xt.dims()[0], c = xt.dims()[1], h = xt.dims()[2], w = xt.dims()[3];
  const int64_t oc = wt.dims()[0], cg = wt.dims()[1];
  const int64_t oh = (h + p.pt + p.pb - p.dh * (p.kh - 1) - 1) / p.sh + 1;
  const int64_t ow = (w + p.pl + p.pr - p.dw * (p.kw - 1) - 1) / p.sw + 1;
  const int64_t k = p.kh * p.kw;
  if (c % p.group != 0 || oc % p.group != 0 || c % p.offset_group != 0 || cg * p.group != c ||
      wt.dims()[2] != p.kh || wt.dims()[3] != p.kw)
    ctx.fail("W " + dims_to_string(wt.dims()) + " does not fit X " + dims_to_string(xt.dims()) +
             " with group " + std::to_string(p.group) + " and offset_group " +
             std::to_string(p.offset_group));
  if (ctx.input(2).dims() != Dims{n, p.offset_group * k * 2, oh, ow})
    ctx.fail("offset must be " + dims_to_string({n, p.offset_group * k * 2, oh, ow}) + ", got " +
             dims_to_string(ctx.input(2).dims()));
  if (ctx.has_input(3) && ctx.input(3).dims() != Dims{oc})
    ctx.fail("B must be [" + std::to_string(oc) + "]");
  if (ctx.has_input(4) && ctx.input(4).dims() != Dims{n, p.offset_group * k, oh, ow})
    ctx.fail("mask must be " + dims_to_string({n, p.offset_group * k, oh, ow}));
  std::vector<double> x = to_doubles(ctx, xt), wv = to_doubles(ctx, wt),
                      off = to_doubles(ctx, ctx.input(2));
  std::vector<double> bias =
      ctx.has_input(3) ? to_doubles(ctx, ctx.input(3)) : std::vector<double>();
  std::vector<double> mask =
      ctx.has_input(4) ? to_doubles(ctx, ctx.input(4)) : std::vector<double>();
  // Bilinear sample of one channel plane; corners outside the plane read 0.
  auto sample = [&](const double* plane, double y, double xx) {
    double y0 = std::floor(y), x0 = std::floor(xx);
    double ly = y - y0, lx = xx - x0;
    double v = 0;
    for (int dy = 0; dy < 2; ++dy)
      for (int dx = 0; dx < 2; ++dx) {
        int64_t yy = int64_t(y0) + dy, xc = int64_t(x0) + dx;
        if (yy < 0 || yy >= h || xc < 0 || xc >= w) continue;
        v += (dy ? ly : 1 - ly) * (dx ? lx : 1 - lx) * plane[yy * w + xc];
      }
    return v;
  };
  // cols[(ci, kk), (y, x)]: the deformed, masked input samples for one image (im2col).
  const int64_t cpo = c / p.offset_group, ocg = oc / p.group;
  std::vector<double> cols(static_cast<size_t>(c * k * oh * ow));
  std::vector<double> out(static_cast<size_t>(n * oc * oh * ow), 0.0);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ci = 0; ci < c; ++ci) {
      const int64_t og = ci / cpo;
      const double* plane = x.data() + (b * c + ci) * h * w;
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          const int64_t kk = i * p.kw + j;
          for (int64_t y = 0; y < oh; ++y)
            for (int64_t xo = 0; xo < ow; ++xo) {
              const int64_t pix = y * ow + xo;
              const double* o = off.data() + ((b * p.offset_group + og) * k * 2 + kk * 2) * oh * ow;
              double sy = double(y * p.sh - p.pt + i * p.dh) + o[pix];
              double sx = double(xo * p.sw - p.pl + j * p.dw) + o[oh * ow + pix];
              double v = sample(plane, sy, sx);
              if (!mask.empty())
                v *= mask[size_t(((b * p.offset_group + og) * k + kk) * oh * ow + pix)];
              cols[size_t((ci * k + kk) * oh * ow + pix)] = v;
            }
        }
    }
    for (int64_t o = 0; o < oc; ++o) {
      const int64_t g = o / ocg;
      double* dst = out.data() + (b * oc + o) * oh * ow;
      for (int64_t pix = 0; pix < oh * ow; ++pix) dst[pix] = bias.empty() ? 0.0 : bias[size_t(o)];
      for (int64_t cl = 0; cl < cg; ++cl)
        for (int64_t kk = 0; kk < k; ++kk) {
          const double wgt = wv[size_t((o * cg + cl) * k + kk)];
          const double* src = cols.data() + ((g * cg + cl) * k + kk) * oh * ow;
          for (int64_t pix = 0; pix < oh * ow; ++pix) dst[pix] += wgt * src[pix];
        }
    }
  }
  store_doubles(ctx, out, ctx.output(0, xt.dtype(), {n, oc, oh, ow}));
}

}  // namespace

void register_signal_ops(Registry& r) {
  // DFT's axis moved from an attribute (17) to an optional input (20); both forms read opset().
  r.add({"", "DFT", 17, PatternKind::kOpaque, infer_dft, run_dft});
  r.add({"", "STFT", 17, PatternKind::kOpaque, infer_stft, run_stft});
  for (const char* op : {"HannWindow", "HammingWindow", "BlackmanWindow"})
    r.add({"", op, 17, PatternKind::kOpaque, infer_window, run_window});
  r.add({"", "MelWeightMatrix", 17, PatternKind::kOpaque, infer_mel, run_mel});
  r.add({"", "Det", 11, PatternKind::kOpaque, infer_det, run_det});
  r.add({"", "AffineGrid", 20, PatternKind::kOpaque, infer_affine_grid, run_affine_grid});
  r.add({"", "RoiAlign", 10, PatternKind::kOpaque, infer_roi_align, run_roi_align});
  r.add({"", "DeformConv", 19, PatternKind::kOpaque, infer_deform_conv, run_deform_conv});
}

}  // namespace kiln::kernels
