// Signal-processing ops: DFT, STFT, the Hann / Hamming / Blackman windows, MelWeightMatrix, and
// Det (a small linear-algebra op that has no other home).
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

std::vector<double> load(const NodeAttrs& ctx, const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  dispatch_float(t.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = double(to_compute(p[i]));
  });
  return v;
}

// Stores doubles into a float or integer tensor (integers truncate, as a numpy astype does).
void store(const NodeAttrs& ctx, const std::vector<double>& v, Tensor& t) {
  dispatch_numeric(t.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = from_compute<T>(Compute<T>(v[i]));
  });
}

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
  if (r < 2) ctx.fail("input must have rank >= 2 ([signal dims..., 1 or 2]), got " + xs.to_string());
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
  ir::Dim n = inverse && onesided ? dim_mul(ir::Dim::constant(2), dim_sub(m, ir::Dim::constant(1)))
                                  : m;
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
                                     : irfft ? 2 * (len_in - 1) : len_in;
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

  std::vector<double> xv = load(ctx, x);
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
  store(ctx, yv, ctx.output(0, x.dtype(), od));
}

// ---- STFT ------------------------------------------------------------------------------------

void infer_stft(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt)) ctx.unsupported(std::string("element type ") + dtype_name(dt));
  const ir::Shape& xs = ctx.input_shape(0);
  ir::Dim batch = ctx.fresh_dim(), len = ctx.fresh_dim();
  if (xs.has_rank) {
    if (xs.rank() != 3) ctx.fail("signal must have shape [batch, length, 1 or 2], got " + xs.to_string());
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
  ir::Dim frames = step ? dim_add(dim_div(dim_sub(len, fl), ir::Dim::constant(*step)),
                                  ir::Dim::constant(1))
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
  if (ctx.has_input(2)) win = load(ctx, ctx.input(2));
  int64_t fl = ctx.has_input(3) ? scalar_int(ctx, 3, "frame_length")
                                : ctx.has_input(2) ? int64_t(win.size()) : len;
  if (fl <= 0 || step <= 0 || fl > len)
    ctx.fail("needs 0 < frame_length <= signal length and frame_step > 0",
             ErrorCode::kInvalidArgument);
  if (!ctx.has_input(2)) win.assign(size_t(fl), 1.0);
  const int64_t frames = 1 + (len - fl) / step;
  const bool onesided = ctx.attr_int("onesided", 1) != 0;
  const int64_t bins = onesided ? fl / 2 + 1 : fl;

  std::vector<double> xv = load(ctx, x);
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
  store(ctx, yv, ctx.output(0, x.dtype(), {batch, frames, bins, 2}));
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
    if (op == "HannWindow") v[size_t(i)] = 0.5 - 0.5 * std::cos(a);
    else if (op == "HammingWindow") v[size_t(i)] = 25.0 / 46 - (21.0 / 46) * std::cos(a);
    else v[size_t(i)] = 0.42 - 0.5 * std::cos(a) + 0.08 * std::cos(2 * a);
    if (denom <= 0) v[size_t(i)] = 1;  // a window of one point (symmetric) is just 1
  }
  store(ctx, v, ctx.output(0, output_datatype(ctx), {size}));
}

void infer_mel(InferContext& ctx) {
  DType t = output_datatype(ctx);
  auto bins = known_scalar(ctx, 0, "num_mel_bins");
  auto dft = known_scalar(ctx, 1, "dft_length");
  if (bins && *bins <= 0) ctx.fail("num_mel_bins must be positive");
  if (dft && *dft <= 0) ctx.fail("dft_length must be positive");
  ctx.set_output(0, t, ir::Shape({dft ? ir::Dim::constant(*dft / 2 + 1) : ctx.fresh_dim(),
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
    return load(ctx, t)[0];
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
  store(ctx, out, ctx.output(0, output_datatype(ctx), {spec_bins, mels}));
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
  std::vector<double> xv = load(ctx, x), out(static_cast<size_t>(count));
  for (int64_t b = 0; b < count; ++b) {
    std::vector<double> a(xv.begin() + b * m * m, xv.begin() + (b + 1) * m * m);
    double det = 1;
    for (int64_t c = 0; c < m && det != 0; ++c) {
      int64_t p = c;
      for (int64_t r = c + 1; r < m; ++r)
        if (std::abs(a[size_t(r * m + c)]) > std::abs(a[size_t(p * m + c)])) p = r;
      if (a[size_t(p * m + c)] == 0) { det = 0; break; }
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
  store(ctx, out, ctx.output(0, x.dtype(), od));
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
}

}  // namespace kiln::kernels
