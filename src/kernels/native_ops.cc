// Native epilogue kernels: Conv / MatMul / Gemm with constant weights on the fast GEMM and
// convolution kernels (src/kernels/fast/), with bias, residual and activation fused.
#include "kernels/native_ops.h"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <utility>

#include "kernels/fast/conv.h"
#include "kernels/fast/gemm.h"
#include "kernels/fast/nchwc.h"
#include "kernels/fast/winograd.h"
#include "kernels/registry.h"

namespace kiln::kernels {

namespace {

using fast::Activation;

bool is_op(const ir::Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

const ir::Value* value(const ir::Graph& g, const ir::Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return nullptr;
  return &g.values[size_t(n.inputs[i])];
}

bool f32_concrete(const ir::Value* v) {
  return v && v->dtype == DType::kF32 && v->shape.is_concrete();
}

bool const_f32(const ir::Value* v) { return v && v->dtype == DType::kF32 && v->constant.defined(); }

// A scalar f32 constant input (Clip bounds), or the default when the input is absent.
std::optional<float> scalar_input(const ir::Graph& g, const ir::Node& n, size_t i, float absent) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return absent;
  const ir::Value* v = value(g, n, i);
  if (!const_f32(v) || v->constant.numel() != 1) return std::nullopt;
  return v->constant.data<float>()[0];
}

std::optional<Activation> activation_of(const ir::Graph& g, const ir::Node& n) {
  if (!n.domain.empty() || n.outputs.size() != 1 || !f32_concrete(value(g, n, 0)))
    return std::nullopt;
  NodeAttrs a(n);
  Activation act;
  using K = Activation::Kind;
  if (n.op_type == "Relu") {
    act.kind = K::kRelu;
  } else if (n.op_type == "LeakyRelu") {
    act.kind = K::kLeakyRelu;
    act.alpha = a.attr_float("alpha", 0.01f);
  } else if (n.op_type == "Sigmoid") {
    act.kind = K::kSigmoid;
  } else if (n.op_type == "Tanh") {
    act.kind = K::kTanh;
  } else if (n.op_type == "HardSigmoid") {
    act.kind = K::kHardSigmoid;
    act.alpha = a.attr_float("alpha", 0.2f);
    act.beta = a.attr_float("beta", 0.5f);
  } else if (n.op_type == "HardSwish") {
    act.kind = K::kHardSwish;
  } else if (n.op_type == "Swish") {
    if (a.attr_float("alpha", 1.0f) != 1.0f) return std::nullopt;
    act.kind = K::kSilu;
  } else if (n.op_type == "Mul") {  // x * Sigmoid(x): SiLU
    if (n.inputs.size() != 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return std::nullopt;
    bool silu = false;
    for (int k = 0; k < 2; ++k) {
      const int p = g.values[size_t(n.inputs[size_t(k)])].producer;
      if (p < 0) continue;
      const ir::Node& s = g.nodes[size_t(p)];
      silu |= s.domain.empty() && s.op_type == "Sigmoid" && s.inputs.size() == 1 &&
              s.inputs[0] == n.inputs[size_t(1 - k)];
    }
    if (!silu) return std::nullopt;
    act.kind = K::kSilu;
  } else if (n.op_type == "Gelu") {
    act.kind = a.attr_string("approximate", "none") == "tanh" ? K::kGeluTanh : K::kGeluErf;
  } else if (n.op_type == "Clip") {
    act.kind = K::kClip;
    if (n.opset < 11) {
      act.alpha = a.attr_float("min", -FLT_MAX);
      act.beta = a.attr_float("max", FLT_MAX);
    } else {
      auto lo = scalar_input(g, n, 1, -FLT_MAX), hi = scalar_input(g, n, 2, FLT_MAX);
      if (!lo || !hi || std::isnan(*lo) || std::isnan(*hi)) return std::nullopt;
      act.alpha = *lo;
      act.beta = *hi;
    }
  } else {
    return std::nullopt;
  }
  return act;
}

std::string activation_name(const Activation& a) {
  using K = Activation::Kind;
  switch (a.kind) {
    case K::kNone:
      return "";
    case K::kRelu:
      return "+relu";
    case K::kLeakyRelu:
      return "+leakyrelu";
    case K::kClip:
      return "+clip";
    case K::kSigmoid:
      return "+sigmoid";
    case K::kTanh:
      return "+tanh";
    case K::kHardSigmoid:
      return "+hardsigmoid";
    case K::kHardSwish:
      return "+hardswish";
    case K::kSilu:
      return "+silu";
    case K::kGeluErf:
      return "+gelu";
    case K::kGeluTanh:
      return "+gelu_tanh";
  }
  return "";
}

// ---- Conv ----

// The activation an epilogue group applies last (none when it has none), or nullopt when the
// node is not one the kernels apply.
std::optional<Activation> epilogue_activation(const ir::Graph& g, const EpilogueSpec& spec) {
  if (spec.activation < 0) return Activation{};
  return activation_of(g, g.nodes[size_t(spec.activation)]);
}

// A convolution's filters packed for one layout (Filters: fast::ConvWeights for NCHW,
// fast::NchwcWeights for blocked). Packed filters depend on the filter dims, the group count and
// the dispatch level only, so the session's own weights are packed once and shared by every
// image size (plan) through `weights`.
template <class Filters>
std::shared_ptr<const Filters> conv_filters(const char* layout, const fast::ConvShape& s,
                                            const float* w, WeightCache* weights) {
  if (!weights || !weights->shareable(w)) return Filters::pack(s, w);
  char key[160];
  std::snprintf(key, sizeof key, "%s:%p:%lld:%lld:%lld:%lld:%lld:%d", layout,
                static_cast<const void*>(w), static_cast<long long>(s.k),
                static_cast<long long>(s.c), static_cast<long long>(s.r),
                static_cast<long long>(s.s), static_cast<long long>(s.group), fast::simd_level());
  return std::static_pointer_cast<const Filters>(
      weights->get(key, [&] { return std::shared_ptr<const void>(Filters::pack(s, w)); }));
}

// The weights and bias (null when absent) of a Conv node with constant inputs.
const float* conv_weights(const ir::Graph& g, const ir::Node& conv) {
  return value(g, conv, 1)->constant.data<float>();
}
const float* conv_bias(const ir::Graph& g, const ir::Node& conv) {
  const ir::Value* b = value(g, conv, 2);
  return b ? b->constant.data<float>() : nullptr;
}

// "conv nchwc 64x3x7x7/2+residual+relu" for `kiln info --plan`.
std::string conv_description(const fast::ConvShape& s, const std::string& algorithm, bool residual,
                             const Activation& act) {
  std::string d = "conv " + algorithm + " " + std::to_string(s.k) + "x" +
                  std::to_string(s.c / s.group) + "x" + std::to_string(s.r) + "x" +
                  std::to_string(s.s);
  if (s.stride_h != 1 || s.stride_w != 1) d += "/" + std::to_string(s.stride_h);
  if (s.group != 1) d += " g" + std::to_string(s.group);
  return d + (residual ? "+residual" : "") + activation_name(act);
}

// A convolution kernel (fast::Conv2d on NCHW, fast::ConvNchwc blocked) as a plan step.
template <class ConvT>
class NativeConv final : public NativeOp {
 public:
  template <class... Args>
  NativeConv(Activation act, bool residual, Args&&... conv_args)
      : conv_(std::forward<Args>(conv_args)...), act_(act), residual_(residual) {}
  void run(void* const* buffers, void* scratch) const override {
    conv_.run(static_cast<const float*>(buffers[0]), static_cast<float*>(buffers[2]),
              residual_ ? static_cast<const float*>(buffers[1]) : nullptr, scratch);
  }
  size_t scratch_bytes() const override { return conv_.scratch_bytes(); }
  std::string describe() const override {
    return conv_description(conv_.shape(), conv_.algorithm(), residual_, act_);
  }
  ConvT& conv() { return conv_; }  // settings before the op is shared
  NativeKind kind() const override {
    if constexpr (std::is_same_v<ConvT, fast::WinogradConv>) return NativeKind::kBlockedConv;
    if constexpr (std::is_same_v<ConvT, fast::ConvNchwc>)
      return conv_.shape().group == 1 ? NativeKind::kBlockedConv : NativeKind::kBlockedDepthwise;
    return NativeKind::kOther;  // NCHW convolutions and fused pairs
  }

 private:
  ConvT conv_;
  Activation act_;
  bool residual_;
};

// ---- MatMul / Gemm ----

struct GemmForm {
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  float alpha = 1;
  std::vector<float> bias;  // length n, or empty
};

// A MatMul with a constant 2-D B, or a Gemm with constant B and a row-bias C.
std::optional<GemmForm> gemm_form(const ir::Graph& g, const ir::Node& n) {
  const ir::Value* a = value(g, n, 0);
  const ir::Value* b = value(g, n, 1);
  if (!f32_concrete(a) || !const_f32(b) || n.outputs.size() != 1) return std::nullopt;
  const Dims ad = a->shape.concrete(), bd = b->constant.dims();
  if (bd.size() != 2 || ad.empty()) return std::nullopt;
  GemmForm f;
  if (is_op(n, "MatMul")) {
    f.k = ad.back();
    if (bd[0] != f.k) return std::nullopt;
    f.n = bd[1];
    f.m = 1;
    for (size_t i = 0; i + 1 < ad.size(); ++i) f.m *= ad[i];
  } else if (is_op(n, "Gemm")) {
    if (ad.size() != 2) return std::nullopt;
    NodeAttrs at(n);
    f.trans_a = at.attr_int("transA", 0) != 0;
    f.trans_b = at.attr_int("transB", 0) != 0;
    f.alpha = at.attr_float("alpha", 1.0f);
    float beta = at.attr_float("beta", 1.0f);
    f.m = f.trans_a ? ad[1] : ad[0];
    f.k = f.trans_a ? ad[0] : ad[1];
    f.n = f.trans_b ? bd[0] : bd[1];
    if ((f.trans_b ? bd[1] : bd[0]) != f.k) return std::nullopt;
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
      const ir::Value* c = value(g, n, 2);
      if (!const_f32(c)) return std::nullopt;
      const Dims cd = c->constant.dims();
      int64_t count = c->constant.numel();
      bool row = (cd.size() == 1 && cd[0] == f.n) || (cd.size() == 2 && cd[0] == 1 && cd[1] == f.n);
      bool scalar = count == 1;
      if (!row && !scalar) return std::nullopt;
      const float* cv = c->constant.data<float>();
      f.bias.resize(size_t(f.n));
      for (int64_t j = 0; j < f.n; ++j) f.bias[size_t(j)] = beta * cv[scalar ? 0 : j];
    }
  } else {
    return std::nullopt;
  }
  const ir::Value& y = g.values[size_t(n.outputs[0])];
  if (!y.shape.is_concrete() || *y.shape.num_elements() != f.m * f.n) return std::nullopt;
  if (f.m == 0 || f.n == 0) return std::nullopt;
  return f;
}

std::shared_ptr<const fast::PackedB> pack_b(const GemmForm& f, const float* b) {
  auto p = std::make_shared<fast::PackedB>();
  if (f.alpha == 1.0f) {
    *p = fast::PackedB::pack(b, f.k, f.n, f.trans_b);
  } else {
    std::vector<float> scaled(size_t(f.k * f.n));
    for (size_t i = 0; i < scaled.size(); ++i) scaled[i] = f.alpha * b[i];
    *p = fast::PackedB::pack(scaled.data(), f.k, f.n, f.trans_b);
  }
  return p;
}

class NativeGemm final : public NativeOp {
 public:
  NativeGemm(GemmForm f, std::shared_ptr<const fast::PackedB> packed, Activation act, bool residual)
      : f_(std::move(f)), act_(act), residual_(residual), packed_(std::move(packed)) {}
  void run(void* const* buffers, void* scratch) const override {
    fast::GemmEpilogue ep;
    ep.bias_n = f_.bias.empty() ? nullptr : f_.bias.data();
    ep.residual = residual_ ? static_cast<const float*>(buffers[1]) : nullptr;
    ep.ld_residual = f_.n;
    ep.act = act_;
    fast::gemm(f_.m, f_.n, f_.k, static_cast<const float*>(buffers[0]), f_.trans_a ? f_.m : f_.k,
               f_.trans_a, *packed_, static_cast<float*>(buffers[2]), f_.n, ep, scratch);
  }
  size_t scratch_bytes() const override { return fast::gemm_scratch_bytes(f_.m, f_.n, f_.k); }
  std::string describe() const override {
    return "gemm " + std::to_string(f_.m) + "x" + std::to_string(f_.n) + "x" +
           std::to_string(f_.k) + (f_.bias.empty() ? "" : "+bias") +
           (residual_ ? "+residual" : "") + activation_name(act_);
  }

 private:
  GemmForm f_;
  Activation act_;
  bool residual_;
  std::shared_ptr<const fast::PackedB> packed_;
};

}  // namespace

std::optional<fast::ConvShape> conv_shape(const ir::Graph& g, const ir::Node& n) {
  const ir::Value* x = value(g, n, 0);
  const ir::Value* w = value(g, n, 1);
  if (!f32_concrete(x) || !const_f32(w) || n.outputs.size() != 1) return std::nullopt;
  const ir::Value* b = value(g, n, 2);
  if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !const_f32(b)) return std::nullopt;
  const Dims xd = x->shape.concrete(), wd = w->constant.dims();
  if (xd.size() != 4 || wd.size() != 4) return std::nullopt;
  NodeAttrs a(n);
  fast::ConvShape s;
  s.n = xd[0];
  s.c = xd[1];
  s.h = xd[2];
  s.w = xd[3];
  s.k = wd[0];
  s.r = wd[2];
  s.s = wd[3];
  s.group = a.attr_int("group", 1);
  if (s.group <= 0 || s.c % s.group != 0 || s.k % s.group != 0 || wd[1] != s.c / s.group)
    return std::nullopt;
  std::vector<int64_t> strides = a.attr_ints("strides", {1, 1});
  std::vector<int64_t> dil = a.attr_ints("dilations", {1, 1});
  std::vector<int64_t> ks = a.attr_ints("kernel_shape", {s.r, s.s});
  if (strides.size() != 2 || dil.size() != 2 || ks.size() != 2 || ks[0] != s.r || ks[1] != s.s)
    return std::nullopt;
  s.stride_h = strides[0];
  s.stride_w = strides[1];
  s.dil_h = dil[0];
  s.dil_w = dil[1];
  if (s.stride_h <= 0 || s.stride_w <= 0 || s.dil_h <= 0 || s.dil_w <= 0) return std::nullopt;
  std::string auto_pad = a.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    std::vector<int64_t> pads = a.attr_ints("pads", {0, 0, 0, 0});
    if (pads.size() != 4) return std::nullopt;
    s.pad_t = pads[0];
    s.pad_l = pads[1];
    s.pad_b = pads[2];
    s.pad_r = pads[3];
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    auto same = [&](int64_t in, int64_t stride, int64_t k, int64_t d, int64_t* lo, int64_t* hi) {
      int64_t out = (in + stride - 1) / stride;
      int64_t total = std::max<int64_t>(0, (out - 1) * stride + (k - 1) * d + 1 - in);
      *lo = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      *hi = total - *lo;
    };
    same(s.h, s.stride_h, s.r, s.dil_h, &s.pad_t, &s.pad_b);
    same(s.w, s.stride_w, s.s, s.dil_w, &s.pad_l, &s.pad_r);
  } else if (auto_pad != "VALID") {
    return std::nullopt;
  }
  if (s.pad_t < 0 || s.pad_l < 0 || s.pad_b < 0 || s.pad_r < 0) return std::nullopt;
  const ir::Value& y = g.values[size_t(n.outputs[0])];
  if (!y.shape.is_concrete() || y.shape.concrete() != Dims{s.n, s.k, s.out_h(), s.out_w()})
    return std::nullopt;
  if (s.n * s.c * s.h * s.w == 0 || s.out_h() <= 0 || s.out_w() <= 0) return std::nullopt;
  return s;
}

bool native_anchor(const ir::Graph& g, const ir::Node& n) {
  if (!fast::available()) return false;
  if (is_op(n, "Conv")) return conv_shape(g, n).has_value();
  if (is_op(n, "MatMul") || is_op(n, "Gemm")) return gemm_form(g, n).has_value();
  return false;
}

bool native_activation(const ir::Graph& g, const ir::Node& n) {
  return activation_of(g, n).has_value();
}

std::shared_ptr<const void> WeightCache::get(
    const std::string& key, const std::function<std::shared_ptr<const void>()>& make) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) return it->second;
  }
  std::shared_ptr<const void> made = make();  // outside the lock: packing takes a while
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.emplace(key, std::move(made)).first->second;
}

size_t WeightCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

bool nchwc_conv_eligible(const ir::Graph& g, const EpilogueSpec& spec) {
  if (spec.anchor < 0 || spec.bias_add >= 0 || !fast::available()) return false;
  const ir::Node& anchor = g.nodes[size_t(spec.anchor)];
  if (!is_op(anchor, "Conv")) return false;
  auto s = conv_shape(g, anchor);
  return s && fast::nchwc_conv_supported(*s);
}

std::shared_ptr<const NativeOp> make_nchwc_conv(const ir::Graph& g, const EpilogueSpec& spec,
                                                bool x_blocked, bool y_blocked,
                                                WeightCache* weights, bool winograd,
                                                int64_t y_image_floats) {
  if (!nchwc_conv_eligible(g, spec)) return nullptr;
  const std::optional<Activation> act = epilogue_activation(g, spec);
  if (!act || (y_image_floats > 0 && !y_blocked)) return nullptr;
  const ir::Node& anchor = g.nodes[size_t(spec.anchor)];
  const fast::ConvShape s = *conv_shape(g, anchor);
  const bool residual = spec.residual_add >= 0 && spec.residual >= 0;
  if (winograd && x_blocked && y_blocked && fast::winograd_preferred(s)) {
    auto op = std::make_shared<NativeConv<fast::WinogradConv>>(
        *act, residual, s,
        conv_filters<fast::WinogradWeights>("winograd", s, conv_weights(g, anchor), weights),
        conv_bias(g, anchor), *act, true, true);
    if (y_image_floats > 0) op->conv().set_y_image_floats(y_image_floats);
    return op;
  }
  auto op = std::make_shared<NativeConv<fast::ConvNchwc>>(
      *act, residual, s,
      conv_filters<fast::NchwcWeights>("nchwc", s, conv_weights(g, anchor), weights),
      conv_bias(g, anchor), *act, x_blocked, y_blocked);
  if (y_image_floats > 0) op->conv().set_y_image_floats(y_image_floats);
  return op;
}

std::shared_ptr<const NativeOp> make_nchwc_conv_pool(const ir::Graph& g, const EpilogueSpec& spec,
                                                     bool x_blocked, const ir::Node& pool,
                                                     WeightCache* weights) {
  if (!nchwc_conv_eligible(g, spec) || spec.residual_add >= 0) return nullptr;
  const std::optional<Activation> act = epilogue_activation(g, spec);
  const bool max = is_op(pool, "MaxPool");
  if (!act || (!max && !is_op(pool, "AveragePool")) || pool.outputs.size() != 1) return nullptr;
  const ir::Node& anchor = g.nodes[size_t(spec.anchor)];
  const fast::ConvShape s = *conv_shape(g, anchor);
  const std::optional<fast::PoolWindow> win = pool_window(pool);
  const ir::Value& out = g.values[size_t(pool.outputs[0])];
  if (s.group != 1 || !win || !out.shape.is_concrete() || out.shape.rank() != 4) return nullptr;
  const Dims od = out.shape.concrete();
  if (od[0] != s.n || od[1] != s.k) return nullptr;
  fast::PoolNchwc p{};
  p.max = max;
  p.count_include_pad = !max && NodeAttrs(pool).attr_int("count_include_pad", 0) != 0;
  p.n = s.n;
  p.c = s.k;
  p.h = s.out_h();
  p.w = s.out_w();
  p.oh = od[2];
  p.ow = od[3];
  p.win = *win;
  return std::make_shared<NativeConv<fast::ConvPoolNchwc>>(
      *act, false,
      fast::ConvNchwc(
          s, conv_filters<fast::NchwcWeights>("nchwc", s, conv_weights(g, anchor), weights),
          conv_bias(g, anchor), *act, x_blocked, true, true),
      p);
}

std::shared_ptr<const NativeOp> make_nchwc_conv_depthwise(const ir::Graph& g,
                                                          const EpilogueSpec& spec, bool x_blocked,
                                                          const EpilogueSpec& dw_spec,
                                                          WeightCache* weights) {
  if (!nchwc_conv_eligible(g, spec) || spec.residual_add >= 0 || !nchwc_conv_eligible(g, dw_spec) ||
      dw_spec.residual_add >= 0)
    return nullptr;
  const std::optional<Activation> act = epilogue_activation(g, spec);
  const std::optional<Activation> dw_act = epilogue_activation(g, dw_spec);
  if (!act || !dw_act) return nullptr;
  const ir::Node &anchor = g.nodes[size_t(spec.anchor)], &dw = g.nodes[size_t(dw_spec.anchor)];
  const fast::ConvShape s = *conv_shape(g, anchor), d = *conv_shape(g, dw);
  if (s.group != 1 || d.group == 1 || d.c != s.k || d.h != s.out_h() || d.w != s.out_w())
    return nullptr;
  auto filters = conv_filters<fast::NchwcWeights>("nchwc", s, conv_weights(g, anchor), weights);
  return std::make_shared<NativeConv<fast::ConvDwNchwc>>(
      *act, false, fast::ConvNchwc(s, filters, conv_bias(g, anchor), *act, x_blocked, true, true),
      fast::ConvNchwc(d, conv_filters<fast::NchwcWeights>("nchwc", d, conv_weights(g, dw), weights),
                      conv_bias(g, dw), *dw_act, true, true),
      fast::ConvNchwc(s, filters, conv_bias(g, anchor), *act, x_blocked, true));
}

std::shared_ptr<const NativeOp> make_native_epilogue(const ir::Graph& g, const EpilogueSpec& spec,
                                                     WeightCache* weights) {
  if (spec.anchor < 0) return nullptr;
  const ir::Node& anchor = g.nodes[size_t(spec.anchor)];
  const std::optional<Activation> maybe_act = epilogue_activation(g, spec);
  if (!maybe_act) return nullptr;
  const Activation act = *maybe_act;
  const bool residual = spec.residual_add >= 0 && spec.residual >= 0;
  if (is_op(anchor, "Conv")) {
    auto s = conv_shape(g, anchor);
    if (!s || spec.bias_add >= 0) return nullptr;
    return std::make_shared<NativeConv<fast::Conv2d>>(
        act, residual, *s,
        conv_filters<fast::ConvWeights>("conv", *s, conv_weights(g, anchor), weights),
        conv_bias(g, anchor), act);
  }
  auto f = gemm_form(g, anchor);
  if (!f) return nullptr;
  if (spec.bias_add >= 0) {
    const ir::Node& add = g.nodes[size_t(spec.bias_add)];
    int other = add.inputs[0] == anchor.outputs[0] ? add.inputs[1] : add.inputs[0];
    const Tensor& bias = g.values[size_t(other)].constant;
    if (!bias.defined() || bias.dtype() != DType::kF32 || bias.numel() != f->n) return nullptr;
    if (f->bias.empty()) f->bias.assign(size_t(f->n), 0.0f);
    for (int64_t j = 0; j < f->n; ++j) f->bias[size_t(j)] += bias.data<float>()[j];
  }
  const float* b = value(g, anchor, 1)->constant.data<float>();
  std::shared_ptr<const fast::PackedB> packed;
  if (weights && weights->shareable(b)) {
    // The weights' address identifies them within the session (its constants outlive plans).
    char key[160];
    std::snprintf(key, sizeof key, "gemm:%p:%lld:%lld:%d:%a:%d", static_cast<const void*>(b),
                  static_cast<long long>(f->k), static_cast<long long>(f->n), int(f->trans_b),
                  double(f->alpha), fast::simd_level());
    packed = std::static_pointer_cast<const fast::PackedB>(
        weights->get(key, [&] { return std::shared_ptr<const void>(pack_b(*f, b)); }));
  } else {
    packed = pack_b(*f, b);
  }
  return std::make_shared<NativeGemm>(std::move(*f), std::move(packed), act, residual);
}

}  // namespace kiln::kernels
