// Recurrent-state sequence ops (opset 27): CausalConvWithState and LinearAttention. Both carry a
// state from one call to the next (a decode step feeds back present_state as past_state).
//
// CausalConvWithState: depthwise causal 1-D convolution. input [B, C, L], weight [C, 1, K],
// optional bias [C] and past_state [B, C, K-1] (zeros when absent). The input is left-padded with
// the past state, convolved without padding, optionally passed through SiLU ("silu"/"swish"), and
// the last K-1 padded positions become present_state.
//
// LinearAttention: the recurrent form of linear attention with optional gating and delta rule.
// query [B, T, Hq*dk], key [B, T, Hkv*dk], value [B, T, Hkv*dv]; the per-kv-head state is
// [dk, dv]. Each step t, for kv head h:
//   gated:  S *= exp(decay_t)                      (decay per head or per key dim)
//   delta:  v_t = beta_t * (v_t - S^T (e_t * k_t))  (e_t = erase_gate, or 1)
//   write:  S += k_t v_t^T
//   read:   o_t = scale * q_t S, for every query head of h's group (heads h*g .. h*g+g-1)
// update_rule: "linear" (neither), "gated", "delta", "gated_delta" (default). The state is kept
// in float (double for f64) and returned in past_state's type (query's when absent).
#include <algorithm>
#include <cmath>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {

void register_attention_state_ops(Registry& r);

namespace {

using ir::Dim;
using ir::Shape;

void expect_dim(const NodeAttrs& ctx, const Dim& got, const Dim& want, const std::string& what) {
  if (got.known_different(want))
    ctx.fail(what + " is " + got.to_string() + ", expected " + want.to_string());
}

// ---- CausalConvWithState --------------------------------------------------------------------

bool silu_activation(const NodeAttrs& ctx) {
  std::string act = ctx.attr_string("activation", "none");
  if (act != "none" && act != "silu" && act != "swish")
    ctx.fail("activation must be 'none', 'silu' or 'swish', got '" + act + "'");
  return act != "none";
}

void infer_causal_conv(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (!dtype_is_float(t)) ctx.unsupported(std::string("element type ") + dtype_name(t));
  silu_activation(ctx);
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  if (x.has_rank && x.rank() != 3) ctx.fail("input must be [batch, channels, length]");
  if (w.has_rank && w.rank() != 3) ctx.fail("weight must be [channels, 1, kernel]");
  if (!x.has_rank) {
    ctx.set_output(0, t, Shape::unranked());
    if (ctx.num_outputs() > 1) ctx.set_output(1, t, Shape::unranked());
    return;
  }
  Dim k = w.has_rank ? w.dims[2] : ctx.fresh_dim();
  if (w.has_rank) {
    expect_dim(ctx, w.dims[0], x.dims[1], "weight channels");
    expect_dim(ctx, w.dims[1], Dim::constant(1), "weight dim 1");
    if (k.is_const() && k.value < 1) ctx.fail("kernel size must be at least 1");
  }
  Dim state_len = k.is_unknown() ? k : dim_sub(k, Dim::constant(1));
  if (ctx.has_input(3)) {
    const Shape& p = ctx.input_shape(3);
    if (p.has_rank) {
      if (p.rank() != 3) ctx.fail("past_state must be [batch, channels, kernel-1]");
      expect_dim(ctx, p.dims[0], x.dims[0], "past_state batch");
      expect_dim(ctx, p.dims[1], x.dims[1], "past_state channels");
      expect_dim(ctx, p.dims[2], state_len, "past_state length");
    }
  }
  ctx.set_output(0, t, x);
  if (ctx.num_outputs() > 1) ctx.set_output(1, t, Shape({x.dims[0], x.dims[1], state_len}));
}

template <class T>
void run_causal_conv_typed(KernelContext& ctx) {
  using C = Compute<T>;
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const bool silu = silu_activation(ctx);
  if (x.rank() != 3 || w.rank() != 3 || w.dim(0) != x.dim(1) || w.dim(1) != 1 || w.dim(2) < 1)
    ctx.fail("input must be [B, C, L] and weight [C, 1, K] with K >= 1");
  const int64_t batch = x.dim(0), ch = x.dim(1), len = x.dim(2), k = w.dim(2), hist = k - 1;
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* past = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (bias && (bias->dtype() != x.dtype() || bias->dims() != Dims{ch}))
    ctx.fail("bias must be [C]");
  if (past && (past->dtype() != x.dtype() || past->dims() != Dims{batch, ch, hist}))
    ctx.fail("past_state must be [B, C, K-1] = " + dims_to_string({batch, ch, hist}));
  const T* xd = x.data<T>();
  const T* wd = w.data<T>();
  T* y = ctx.output(0, x.dtype(), x.dims()).template data<T>();
  T* state = ctx.num_outputs() > 1 ? ctx.output(1, x.dtype(), {batch, ch, hist}).template data<T>()
                                   : nullptr;
  std::vector<C> padded(size_t(hist + len));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < ch; ++c) {
      const int64_t row = b * ch + c;
      for (int64_t i = 0; i < hist; ++i)
        padded[size_t(i)] = past ? to_compute(past->data<T>()[row * hist + i]) : C(0);
      for (int64_t i = 0; i < len; ++i) padded[size_t(hist + i)] = to_compute(xd[row * len + i]);
      const C bv = bias ? to_compute(bias->data<T>()[c]) : C(0);
      for (int64_t t = 0; t < len; ++t) {
        C acc = bv;
        for (int64_t j = 0; j < k; ++j) acc += to_compute(wd[c * k + j]) * padded[size_t(t + j)];
        if (silu) acc = acc / (C(1) + std::exp(-acc));
        y[row * len + t] = from_compute<T>(acc);
      }
      if (state)
        for (int64_t i = 0; i < hist; ++i)
          state[row * hist + i] = from_compute<T>(padded[size_t(len + i)]);
    }
}

void run_causal_conv(KernelContext& ctx) {
  dispatch_float(ctx.input(0).dtype(), ctx,
                 [&](auto tag) { run_causal_conv_typed<typename decltype(tag)::type>(ctx); });
}

// ---- LinearAttention ------------------------------------------------------------------------

struct LinearRule {
  bool gating, delta;
};

LinearRule linear_rule(const NodeAttrs& ctx) {
  std::string r = ctx.attr_string("update_rule", "gated_delta");
  if (r == "linear") return {false, false};
  if (r == "gated") return {true, false};
  if (r == "delta") return {false, true};
  if (r == "gated_delta") return {true, true};
  ctx.fail("update_rule must be linear, gated, delta or gated_delta, got '" + r + "'");
}

void heads_of(const NodeAttrs& ctx, int64_t* qh, int64_t* kvh) {
  *qh = ctx.attr_int("q_num_heads", 0);
  *kvh = ctx.attr_int("kv_num_heads", 0);
  if (*qh <= 0 || *kvh <= 0 || *qh % *kvh != 0)
    ctx.fail("q_num_heads and kv_num_heads must be positive, q a multiple of kv");
}

Dim split_heads(const NodeAttrs& ctx, const Dim& hidden, int64_t heads, const std::string& what) {
  if (hidden.is_const() && hidden.value % heads != 0)
    ctx.fail(what + " hidden size " + std::to_string(hidden.value) + " is not divisible by " +
             std::to_string(heads));
  return dim_div(hidden, Dim::constant(heads));
}

void infer_linear_attention(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (!dtype_is_float(t)) ctx.unsupported(std::string("element type ") + dtype_name(t));
  LinearRule rule = linear_rule(ctx);
  if (rule.gating != ctx.has_input(4)) ctx.fail("decay is required exactly for gated update rules");
  if (rule.delta != ctx.has_input(5)) ctx.fail("beta is required exactly for delta update rules");
  if (ctx.has_input(6) && !rule.delta) ctx.fail("erase_gate needs a delta update rule");
  int64_t qh, kvh;
  heads_of(ctx, &qh, &kvh);
  const Shape& q = ctx.input_shape(0);
  const Shape& k = ctx.input_shape(1);
  const Shape& v = ctx.input_shape(2);
  DType state_t = ctx.has_input(3) ? ctx.input_dtype(3) : t;
  if (!q.has_rank || !k.has_rank || !v.has_rank) {
    ctx.set_output(0, t, Shape::unranked());
    if (ctx.num_outputs() > 1) ctx.set_output(1, state_t, Shape::unranked());
    return;
  }
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3) ctx.fail("query, key, value must be 3-D");
  Dim dk = split_heads(ctx, q.dims[2], qh, "query");
  expect_dim(ctx, split_heads(ctx, k.dims[2], kvh, "key"), dk, "key head size");
  Dim dv = split_heads(ctx, v.dims[2], kvh, "value");
  for (const Shape* s : {&k, &v}) {
    expect_dim(ctx, s->dims[0], q.dims[0], "key/value batch");
    expect_dim(ctx, s->dims[1], q.dims[1], "key/value length");
  }
  ctx.set_output(0, t, Shape({q.dims[0], q.dims[1], dim_mul(Dim::constant(qh), dv)}));
  if (ctx.num_outputs() > 1)
    ctx.set_output(1, state_t, Shape({q.dims[0], Dim::constant(kvh), dk, dv}));
}

template <class T>
void run_linear_attention_typed(KernelContext& ctx) {
  using C = Compute<T>;
  const LinearRule rule = linear_rule(ctx);
  int64_t qh, kvh;
  heads_of(ctx, &qh, &kvh);
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3) ctx.fail("query, key, value must be 3-D");
  const int64_t batch = q.dim(0), steps = q.dim(1);
  if (q.dim(2) % qh != 0 || k.dim(2) % kvh != 0 || v.dim(2) % kvh != 0)
    ctx.fail("hidden sizes must be divisible by the head counts");
  const int64_t dk = q.dim(2) / qh, dv = v.dim(2) / kvh, group = qh / kvh;
  if (k.dims() != Dims{batch, steps, kvh * dk} || v.dim(0) != batch || v.dim(1) != steps)
    ctx.fail("key must be [B, T, kv_heads*head_size] and value [B, T, kv_heads*v_head_size]");
  auto opt = [&](int i) { return ctx.has_input(i) ? &ctx.input(i) : nullptr; };
  const Tensor* past = opt(3);
  const Tensor* decay = opt(4);
  const Tensor* beta = opt(5);
  const Tensor* erase = opt(6);
  if (rule.gating != (decay != nullptr))
    ctx.fail("decay is required exactly for gated update rules");
  if (rule.delta != (beta != nullptr)) ctx.fail("beta is required exactly for delta update rules");
  if (erase && !rule.delta) ctx.fail("erase_gate needs a delta update rule");
  auto check = [&](const Tensor* t, const std::vector<int64_t>& lasts, const std::string& name) {
    if (!t) return int64_t(0);
    if (t->dtype() != q.dtype() || t->rank() != 3 || t->dim(0) != batch || t->dim(1) != steps ||
        std::find(lasts.begin(), lasts.end(), t->dim(2)) == lasts.end())
      ctx.fail(name + " has shape " + dims_to_string(t->dims()) + ", which does not fit");
    return t->dim(2);
  };
  const int64_t decay_last = check(decay, {kvh, kvh * dk}, "decay");
  const int64_t beta_last = check(beta, {kvh, 1}, "beta");
  check(erase, {kvh * dk}, "erase_gate");
  if (past && past->dims() != Dims{batch, kvh, dk, dv})
    ctx.fail("past_state must be " + dims_to_string({batch, kvh, dk, dv}));
  C scale = C(ctx.attr_float("scale", 0));
  if (scale == 0) scale = C(1) / std::sqrt(C(dk));

  auto at = [](const Tensor& t, int64_t i) { return to_compute(t.data<T>()[i]); };
  const DType state_t = past ? past->dtype() : q.dtype();
  T* out = ctx.output(0, q.dtype(), {batch, steps, qh * dv}).template data<T>();
  Tensor* present = ctx.num_outputs() > 1 ? &ctx.output(1, state_t, {batch, kvh, dk, dv}) : nullptr;
  std::vector<C> s(static_cast<size_t>(dk * dv));
  std::vector<C> vt(static_cast<size_t>(dv));
  std::vector<C> ke(static_cast<size_t>(dk));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < kvh; ++h) {
      for (int64_t i = 0; i < dk * dv; ++i)
        s[size_t(i)] = past ? C(past->element_as_double(((b * kvh + h) * dk) * dv + i)) : C(0);
      for (int64_t t = 0; t < steps; ++t) {
        const int64_t bt = b * steps + t;
        const int64_t koff = bt * kvh * dk + h * dk;
        if (rule.gating)
          for (int64_t d = 0; d < dk; ++d) {
            C g = decay_last == kvh ? at(*decay, bt * kvh + h) : at(*decay, koff + d);
            C f = std::exp(g);
            for (int64_t m = 0; m < dv; ++m) s[size_t(d * dv + m)] *= f;
          }
        for (int64_t m = 0; m < dv; ++m) vt[size_t(m)] = at(v, bt * kvh * dv + h * dv + m);
        if (rule.delta) {
          for (int64_t d = 0; d < dk; ++d)
            ke[size_t(d)] = at(k, koff + d) * (erase ? at(*erase, koff + d) : C(1));
          C bv = at(*beta, bt * beta_last + (beta_last == 1 ? 0 : h));
          for (int64_t m = 0; m < dv; ++m) {
            C r = 0;
            for (int64_t d = 0; d < dk; ++d) r += s[size_t(d * dv + m)] * ke[size_t(d)];
            vt[size_t(m)] = bv * (vt[size_t(m)] - r);
          }
        }
        for (int64_t d = 0; d < dk; ++d) {
          C kd = at(k, koff + d);
          for (int64_t m = 0; m < dv; ++m) s[size_t(d * dv + m)] += kd * vt[size_t(m)];
        }
        for (int64_t g = 0; g < group; ++g) {
          const int64_t hq = h * group + g;
          const int64_t qoff = bt * qh * dk + hq * dk;
          T* o = out + bt * qh * dv + hq * dv;
          for (int64_t m = 0; m < dv; ++m) {
            C acc = 0;
            for (int64_t d = 0; d < dk; ++d) acc += at(q, qoff + d) * s[size_t(d * dv + m)];
            o[m] = from_compute<T>(scale * acc);
          }
        }
      }
      if (present)
        dispatch_float(state_t, ctx, [&](auto tag) {
          using S = typename decltype(tag)::type;
          S* p = present->template data<S>() + (b * kvh + h) * dk * dv;
          for (int64_t i = 0; i < dk * dv; ++i) p[i] = from_compute<S>(s[size_t(i)]);
        });
    }
}

void run_linear_attention(KernelContext& ctx) {
  dispatch_float(ctx.input(0).dtype(), ctx,
                 [&](auto tag) { run_linear_attention_typed<typename decltype(tag)::type>(ctx); });
}

}  // namespace

void register_attention_state_ops(Registry& r) {
  r.add({"", "CausalConvWithState", 27, PatternKind::kOpaque, infer_causal_conv, run_causal_conv});
  r.add({"", "LinearAttention", 27, PatternKind::kOpaque, infer_linear_attention,
         run_linear_attention});
}

}  // namespace kiln::kernels
