// Sliding-window geometry as index expressions (see window.h).
#include "kernels/lower/window.h"

#include <tuple>

namespace kiln::kernels::window {

using jit::Expr;

namespace {

// floor(a / b) for a >= 0, b > 0 (no division for b == 1, to keep the IR small).
Expr div_floor(const Expr& a, int64_t b) { return b == 1 ? a : a / b; }
// ceil(a / b) for a >= 0, b > 0.
Expr div_ceil(const Expr& a, int64_t b) { return b == 1 ? a : (a + (b - 1)) / b; }
// Number of j >= 0 with j * b <= a, i.e. floor(a / b) + 1 clamped at 0 (for any a).
Expr count_upto(const Expr& a, int64_t b) { return div_floor(jit::max(a, jit::imm(-1)) + b, b); }

}  // namespace

std::optional<Attrs> read_attrs(const NodeAttrs& n, int nsp, const std::vector<int64_t>* kernel) {
  const size_t r = size_t(nsp);
  Attrs a;
  if (n.has_attr("kernel_shape")) {
    a.kernel = n.attr_ints("kernel_shape");
    if (kernel && a.kernel != *kernel) return std::nullopt;
  } else if (kernel) {
    a.kernel = *kernel;
  } else {
    return std::nullopt;
  }
  a.strides = n.attr_ints("strides", std::vector<int64_t>(r, 1));
  a.dilations = n.attr_ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  a.auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (a.kernel.size() != r || a.strides.size() != r || a.dilations.size() != r ||
      pads.size() != 2 * r)
    return std::nullopt;
  if (a.auto_pad != "NOTSET" && a.auto_pad != "VALID" && a.auto_pad != "SAME_UPPER" &&
      a.auto_pad != "SAME_LOWER")
    return std::nullopt;
  // Bounds keep every product below in int64 (real models use single digits).
  constexpr int64_t kMax = int64_t(1) << 20;
  for (size_t i = 0; i < r; ++i) {
    if (a.kernel[i] < 1 || a.strides[i] < 1 || a.dilations[i] < 1 || pads[i] < 0 || pads[i + r] < 0)
      return std::nullopt;
    if (a.kernel[i] > kMax || a.strides[i] > kMax || a.dilations[i] > kMax || pads[i] > kMax ||
        pads[i + r] > kMax)
      return std::nullopt;
    a.pad_begin.push_back(pads[i]);
    a.pad_end.push_back(pads[i + r]);
  }
  return a;
}

namespace {

// Total SAME padding of dim i: max(0, (ceil(in / s) - 1) * s + dilated_kernel - in).
Expr same_total(const Attrs& a, int i, const Expr& in, const Expr& k) {
  const size_t u = size_t(i);
  const int64_t s = a.strides[u];
  Expr ek = (k - 1) * a.dilations[u] + 1;
  Expr out = div_ceil(jit::max(in, jit::imm(0)), s);
  return jit::max(jit::imm(0), (out - 1) * s + ek - in);
}

}  // namespace

Expr pad_begin(const Attrs& a, int i, const Expr& in, Expr k) {
  if (a.auto_pad == "VALID") return jit::imm(0);
  if (a.auto_pad == "NOTSET") return jit::imm(a.pad_begin[size_t(i)]);
  Expr total = same_total(a, i, in, k ? k : jit::imm(a.kernel[size_t(i)]));
  return a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
}

Expr pad_end(const Attrs& a, int i, const Expr& in, Expr k) {
  if (a.auto_pad == "VALID") return jit::imm(0);
  if (a.auto_pad == "NOTSET") return jit::imm(a.pad_end[size_t(i)]);
  if (!k) k = jit::imm(a.kernel[size_t(i)]);
  return same_total(a, i, in, k) - pad_begin(a, i, in, k);
}

Range taps(const Expr& o, int64_t s, int64_t d, const Expr& k, const Expr& pb, const Expr& in) {
  Expr start = o * s - pb;
  // First tap at or after position 0, last tap at or before in - 1.
  Expr lo = jit::min(k, div_ceil(jit::max(jit::imm(0) - start, jit::imm(0)), d));
  Expr hi = jit::min(k, count_upto(in - 1 - start, d));
  return {lo, jit::max(hi - lo, jit::imm(0))};
}

Range outputs_for_offset(const Expr& out, int64_t s, const Expr& off, const Expr& in) {
  Expr lo = jit::min(out, div_ceil(jit::max(jit::imm(0) - off, jit::imm(0)), s));
  Expr hi = jit::min(out, count_upto(in - 1 - off, s));
  return {lo, jit::max(hi - lo, jit::imm(0))};
}

Range interior(const Expr& out, int64_t s, int64_t d, const Expr& k, const Expr& pb,
               const Expr& in) {
  Expr lo = jit::min(out, div_ceil(pb, s));
  Expr hi = jit::min(out, count_upto(in - 1 + pb - (k - 1) * d, s));
  return {lo, jit::max(hi - lo, jit::imm(0))};
}

jit::Stmt wrap(const Lets& lets, jit::Stmt body) {
  for (size_t i = lets.size(); i-- > 0;) body = jit::let(lets[i].first, lets[i].second, body);
  return body;
}

Range bind(LowerContext& ctx, const Range& r, const std::string& hint, Lets& lets) {
  Range out;
  for (auto [e, dst, suffix] :
       {std::tuple{r.lo, &out.lo, "lo"}, std::tuple{r.ext, &out.ext, "n"}}) {
    if (e->is_int_imm()) {
      *dst = e;
      continue;
    }
    lets.push_back({ctx.fresh_var(hint + suffix), e});
    *dst = jit::var(lets.back().first);
  }
  return out;
}

jit::Stmt vector_loop(LowerContext& ctx, const std::string& var, const Expr& extent,
                      jit::Stmt body) {
  return jit::for_loop(var, extent, jit::LoopKind::kVectorized, std::move(body),
                       vector_factor(ctx));
}

jit::Stmt serial_loop(const std::string& var, const Expr& extent, jit::Stmt body) {
  if (extent->is_int_imm(0)) return jit::block({});
  if (extent->is_int_imm(1)) return jit::let(var, jit::imm(0), std::move(body));
  return jit::for_loop(var, extent, jit::LoopKind::kSerial, std::move(body));
}

Expr common(const Expr& a, const Expr& b) {
  if (jit::print(a) == jit::print(b)) return a;
  return jit::min(a, b);
}

}  // namespace kiln::kernels::window
