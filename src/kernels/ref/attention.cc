// Attention (opset 23/24): scaled dot-product attention with grouped-query heads, a key/value
// cache, boolean or additive masks, causal masking, softcap and per-batch key padding.
//
// Q, K, V come either as 4-D [batch, heads, seq, head_size] or 3-D [batch, seq, heads*head_size]
// (then q_num_heads / kv_num_heads say how to split the hidden dim). past_key / past_value are
// always 4-D and are prepended to K / V along the sequence axis; the concatenation is
// present_key / present_value. Query head h reads kv head h / (q_heads / kv_heads), the grouping
// of the spec's function body (Unsqueeze + Expand + Reshape, i.e. np.repeat).
//
// Score pipeline per query row, in the compute type (float for 16-bit types, double for f64):
//   raw   = scale * q.k                    (qk_matmul_output_mode 0)
//   capped = softcap * tanh(raw / softcap) (mode 1; the raw score when softcap is 0)
//   biased = capped + bias                 (mode 2)
//   probs = softmax(biased)                (mode 3)
// bias is the float mask (or 0 / -inf for a bool mask), -inf where the causal rule or
// nonpad_kv_seqlen excludes a key. A mask shorter than the total kv length is padded with -inf
// (False). A row whose bias is -inf everywhere gets all-zero probabilities instead of NaN: the
// opset-23/24 function body does exactly that (ReduceMax of the bias == -inf -> Where 0).
// Causal masking is bottom-right aligned: query i sees key j iff j <= i + offset, offset being the
// past length, else nonpad_kv_seqlen[b] - q_seq when only nonpad_kv_seqlen is given, else 0.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {

// Defined in attention_misc.cc (RotaryEmbedding, TensorScatter, SwiGLU) and attention_state.cc
// (CausalConvWithState, LinearAttention).
void register_attention_misc_ops(Registry& r);
void register_attention_state_ops(Registry& r);

namespace {

using ir::Dim;
using ir::Shape;

// ---- Shape function -------------------------------------------------------------------------

// The symbolic sizes of one Attention node.
struct SymDims {
  Dim batch, q_heads, kv_heads, q_seq, kv_seq, total_seq, head, v_head;
  bool three_d = false;
};

// Fails when two dims are known to differ.
void expect_same(const NodeAttrs& ctx, const Dim& got, const Dim& want, const std::string& what) {
  if (got.known_different(want))
    ctx.fail(what + " is " + got.to_string() + ", expected " + want.to_string());
}

// Splits a 3-D hidden dim into heads; fails when it does not divide.
Dim head_size_of(const NodeAttrs& ctx, const Dim& hidden, int64_t heads, const std::string& what) {
  if (hidden.is_const() && hidden.value % heads != 0)
    ctx.fail(what + " hidden size " + std::to_string(hidden.value) + " is not divisible by " +
             std::to_string(heads) + " heads");
  return dim_div(hidden, Dim::constant(heads));
}

void infer_attention(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (!dtype_is_float(t)) ctx.unsupported(std::string("element type ") + dtype_name(t));
  for (int i : {1, 2, 4, 5})
    if (ctx.has_input(i) && ctx.input_dtype(i) != t)
      ctx.fail("input " + std::to_string(i) + " must have Q's element type");
  const Shape& qs = ctx.input_shape(0);
  const Shape& ks = ctx.input_shape(1);
  const Shape& vs = ctx.input_shape(2);
  auto unranked_outputs = [&] {
    for (int i = 0; i < ctx.num_outputs() && i < 4; ++i) ctx.set_output(i, t, Shape::unranked());
  };
  if (!qs.has_rank || !ks.has_rank || !vs.has_rank) return unranked_outputs();
  if (qs.rank() != 3 && qs.rank() != 4)
    ctx.fail("Q must be 3-D or 4-D, got rank " + std::to_string(qs.rank()));
  if (ks.rank() != qs.rank() || vs.rank() != qs.rank())
    ctx.fail("Q, K and V must have the same rank");

  SymDims d;
  d.three_d = qs.rank() == 3;
  d.batch = qs.dims[0];
  if (d.three_d) {
    int64_t qh = ctx.attr_int("q_num_heads", 0), kvh = ctx.attr_int("kv_num_heads", 0);
    if (qh <= 0 || kvh <= 0) ctx.fail("3-D inputs need positive q_num_heads and kv_num_heads");
    d.q_heads = Dim::constant(qh);
    d.kv_heads = Dim::constant(kvh);
    d.q_seq = qs.dims[1];
    d.kv_seq = ks.dims[1];
    d.head = head_size_of(ctx, qs.dims[2], qh, "Q");
    expect_same(ctx, head_size_of(ctx, ks.dims[2], kvh, "K"), d.head, "K head size");
    d.v_head = head_size_of(ctx, vs.dims[2], kvh, "V");
    expect_same(ctx, vs.dims[1], d.kv_seq, "V sequence length");
  } else {
    d.q_heads = qs.dims[1];
    d.kv_heads = ks.dims[1];
    d.q_seq = qs.dims[2];
    d.kv_seq = ks.dims[2];
    d.head = qs.dims[3];
    expect_same(ctx, ks.dims[3], d.head, "K head size");
    expect_same(ctx, vs.dims[1], d.kv_heads, "V head count");
    expect_same(ctx, vs.dims[2], d.kv_seq, "V sequence length");
    d.v_head = vs.dims[3];
  }
  expect_same(ctx, ks.dims[0], d.batch, "K batch");
  expect_same(ctx, vs.dims[0], d.batch, "V batch");
  if (d.q_heads.is_const() && d.kv_heads.is_const() &&
      (d.kv_heads.value == 0 || d.q_heads.value % d.kv_heads.value != 0))
    ctx.fail("q heads (" + std::to_string(d.q_heads.value) + ") must be a multiple of kv heads (" +
             std::to_string(d.kv_heads.value) + ")");

  d.total_seq = d.kv_seq;
  if (ctx.has_input(4) != ctx.has_input(5)) ctx.fail("past_key and past_value go together");
  if (ctx.has_input(4)) {
    const Shape& pk = ctx.input_shape(4);
    const Shape& pv = ctx.input_shape(5);
    if (pk.has_rank && pk.rank() != 4) ctx.fail("past_key must be 4-D");
    if (pv.has_rank && pv.rank() != 4) ctx.fail("past_value must be 4-D");
    if (pk.has_rank && pv.has_rank) {
      expect_same(ctx, pk.dims[0], d.batch, "past_key batch");
      expect_same(ctx, pk.dims[1], d.kv_heads, "past_key head count");
      expect_same(ctx, pk.dims[3], d.head, "past_key head size");
      expect_same(ctx, pv.dims[0], d.batch, "past_value batch");
      expect_same(ctx, pv.dims[1], d.kv_heads, "past_value head count");
      expect_same(ctx, pv.dims[2], pk.dims[2], "past_value sequence length");
      expect_same(ctx, pv.dims[3], d.v_head, "past_value head size");
      d.total_seq = dim_add(pk.dims[2], d.kv_seq);
    } else {
      d.total_seq = ctx.fresh_dim();
    }
  }

  if (ctx.has_input(3)) {
    DType mt = ctx.input_dtype(3);
    if (mt != DType::kBool && mt != t) ctx.fail("attn_mask must be bool or Q's element type");
    const Shape& ms = ctx.input_shape(3);
    if (ms.has_rank) {
      if (ms.rank() < 1 || ms.rank() > 4) ctx.fail("attn_mask must have rank 1 to 4");
      std::vector<Dim> full = {d.batch, d.q_heads, d.q_seq};
      for (int i = 0; i + 1 < ms.rank(); ++i) {
        const Dim& m = ms.dims[size_t(i)];
        const Dim& want = full[size_t(4 - ms.rank() + i)];
        if (m.is_const() && m.value != 1)
          expect_same(ctx, m, want, "attn_mask dim " + std::to_string(i));
      }
      const Dim& last = ms.dims.back();
      if (last.is_const() && d.total_seq.is_const() && last.value > d.total_seq.value)
        ctx.fail("attn_mask last dim " + std::to_string(last.value) +
                 " exceeds the total kv length " + std::to_string(d.total_seq.value));
    }
  }
  if (ctx.has_input(6)) {
    const Shape& ns = ctx.input_shape(6);
    if (ns.has_rank && ns.rank() != 1) ctx.fail("nonpad_kv_seqlen must be 1-D [batch]");
    if (ns.has_rank) expect_same(ctx, ns.dims[0], d.batch, "nonpad_kv_seqlen length");
  }

  if (d.three_d)
    ctx.set_output(0, t, Shape({d.batch, d.q_seq, dim_mul(d.q_heads, d.v_head)}));
  else
    ctx.set_output(0, t, Shape({d.batch, d.q_heads, d.q_seq, d.v_head}));
  if (ctx.num_outputs() > 1)
    ctx.set_output(1, t, Shape({d.batch, d.kv_heads, d.total_seq, d.head}));
  if (ctx.num_outputs() > 2)
    ctx.set_output(2, t, Shape({d.batch, d.kv_heads, d.total_seq, d.v_head}));
  if (ctx.num_outputs() > 3)
    ctx.set_output(3, t, Shape({d.batch, d.q_heads, d.q_seq, d.total_seq}));
}

// ---- Kernel ---------------------------------------------------------------------------------

// Concrete sizes, validated so that every index below stays in bounds.
struct AttnDims {
  int64_t batch, q_heads, kv_heads, q_seq, kv_seq, past_seq, total_seq, head, v_head;
  bool three_d;
};

AttnDims concrete_dims(const KernelContext& ctx) {
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  AttnDims d{};
  auto need = [&](bool ok, const std::string& msg) {
    if (!ok) ctx.fail(msg);
  };
  need((q.rank() == 3 || q.rank() == 4) && k.rank() == q.rank() && v.rank() == q.rank(),
       "Q, K and V must all be 3-D or all 4-D");
  d.three_d = q.rank() == 3;
  d.batch = q.dim(0);
  if (d.three_d) {
    d.q_heads = ctx.attr_int("q_num_heads", 0);
    d.kv_heads = ctx.attr_int("kv_num_heads", 0);
    need(d.q_heads > 0 && d.kv_heads > 0, "3-D inputs need positive q_num_heads and kv_num_heads");
    need(q.dim(2) % d.q_heads == 0 && k.dim(2) % d.kv_heads == 0 && v.dim(2) % d.kv_heads == 0,
         "hidden sizes must be divisible by the head counts");
    d.q_seq = q.dim(1);
    d.kv_seq = k.dim(1);
    d.head = q.dim(2) / d.q_heads;
    need(k.dim(2) / d.kv_heads == d.head, "K head size must equal Q head size");
    need(v.dim(1) == d.kv_seq, "V sequence length must equal K's");
    d.v_head = v.dim(2) / d.kv_heads;
  } else {
    d.q_heads = q.dim(1);
    d.kv_heads = k.dim(1);
    d.q_seq = q.dim(2);
    d.kv_seq = k.dim(2);
    d.head = q.dim(3);
    need(k.dim(3) == d.head, "K head size must equal Q head size");
    need(v.dim(1) == d.kv_heads && v.dim(2) == d.kv_seq, "V must match K's heads and length");
    d.v_head = v.dim(3);
  }
  need(k.dim(0) == d.batch && v.dim(0) == d.batch, "Q, K and V must have the same batch");
  need(d.kv_heads > 0 && d.q_heads % d.kv_heads == 0, "q heads must be a multiple of kv heads");
  d.past_seq = 0;
  if (ctx.has_input(4) || ctx.has_input(5)) {
    need(ctx.has_input(4) && ctx.has_input(5), "past_key and past_value go together");
    const Tensor& pk = ctx.input(4);
    const Tensor& pv = ctx.input(5);
    need(pk.rank() == 4 && pk.dim(0) == d.batch && pk.dim(1) == d.kv_heads && pk.dim(3) == d.head,
         "past_key must be [batch, kv_heads, past_seq, head_size]");
    need(pv.rank() == 4 && pv.dim(0) == d.batch && pv.dim(1) == d.kv_heads &&
             pv.dim(2) == pk.dim(2) && pv.dim(3) == d.v_head,
         "past_value must be [batch, kv_heads, past_seq, v_head_size]");
    d.past_seq = pk.dim(2);
  }
  d.total_seq = d.past_seq + d.kv_seq;
  return d;
}

// The mask's strides over [batch, q_heads, q_seq, kv] (0 where broadcast) and its kv length.
struct MaskView {
  std::vector<int64_t> strides;  // 4 entries
  int64_t len = 0;               // keys at or past len are masked out (padding)
};

MaskView mask_view(const KernelContext& ctx, const Tensor& m, const AttnDims& d) {
  if (m.rank() < 1 || m.rank() > 4) ctx.fail("attn_mask must have rank 1 to 4");
  Dims full = {d.batch, d.q_heads, d.q_seq};
  MaskView mv;
  mv.strides.assign(4, 0);
  std::vector<int64_t> st = strides_of(m.dims());
  int off = 4 - m.rank();
  for (int i = 0; i < m.rank(); ++i) {
    int axis = off + i;
    if (axis < 3 && m.dim(i) != 1 && m.dim(i) != full[size_t(axis)])
      ctx.fail("attn_mask dim " + std::to_string(i) + " is " + std::to_string(m.dim(i)) +
               ", expected 1 or " + std::to_string(full[size_t(axis)]));
    mv.strides[size_t(axis)] = (axis < 3 && m.dim(i) == 1) ? 0 : st[size_t(i)];
  }
  mv.len = m.dim(m.rank() - 1);
  if (mv.len > d.total_seq)
    ctx.fail("attn_mask last dim " + std::to_string(mv.len) + " exceeds the total kv length " +
             std::to_string(d.total_seq));
  return mv;
}

template <class T>
void run_attention_typed(KernelContext& ctx) {
  using C = Compute<T>;
  const AttnDims d = concrete_dims(ctx);
  const C kNegInf = -std::numeric_limits<C>::infinity();
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  const DType dt = q.dtype();

  // Present key / value: past followed by the new entries, 4-D, in T and in the compute type.
  const int64_t kv_rows = d.batch * d.kv_heads * d.total_seq;
  std::vector<C> key(size_t(kv_rows * d.head)), val(size_t(kv_rows * d.v_head));
  auto fill_cache = [&](std::vector<C>& dst, const Tensor& cur, const Tensor* past, int64_t hs) {
    const T* c = cur.data<T>();
    const T* p = past ? past->data<T>() : nullptr;
    for (int64_t b = 0; b < d.batch; ++b)
      for (int64_t h = 0; h < d.kv_heads; ++h)
        for (int64_t s = 0; s < d.total_seq; ++s) {
          C* out = &dst[size_t(((b * d.kv_heads + h) * d.total_seq + s) * hs)];
          const T* src;
          if (s < d.past_seq) {
            src = p + ((b * d.kv_heads + h) * d.past_seq + s) * hs;
          } else {
            int64_t sk = s - d.past_seq;
            src = d.three_d ? c + (b * d.kv_seq + sk) * d.kv_heads * hs + h * hs
                            : c + ((b * d.kv_heads + h) * d.kv_seq + sk) * hs;
          }
          for (int64_t e = 0; e < hs; ++e) out[e] = to_compute(src[e]);
        }
  };
  fill_cache(key, k, ctx.has_input(4) ? &ctx.input(4) : nullptr, d.head);
  fill_cache(val, v, ctx.has_input(5) ? &ctx.input(5) : nullptr, d.v_head);
  if (ctx.num_outputs() > 1) {
    T* pk = ctx.output(1, dt, {d.batch, d.kv_heads, d.total_seq, d.head}).template data<T>();
    for (size_t i = 0; i < key.size(); ++i) pk[i] = from_compute<T>(key[i]);
  }
  if (ctx.num_outputs() > 2) {
    T* pv = ctx.output(2, dt, {d.batch, d.kv_heads, d.total_seq, d.v_head}).template data<T>();
    for (size_t i = 0; i < val.size(); ++i) pv[i] = from_compute<T>(val[i]);
  }

  // Attributes.
  C scale = ctx.has_attr("scale") ? C(ctx.attr_float("scale", 1))
                                  : C(1) / std::sqrt(C(std::max<int64_t>(d.head, 1)));
  C softcap = C(ctx.attr_float("softcap", 0));
  if (softcap < 0) ctx.fail("softcap must be non-negative");
  bool causal = ctx.attr_int("is_causal", 0) != 0;
  int64_t mode = ctx.attr_int("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) ctx.fail("qk_matmul_output_mode must be 0, 1, 2 or 3");

  // Optional inputs.
  const Tensor* mask = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  MaskView mv;
  if (mask) {
    if (mask->dtype() != DType::kBool && mask->dtype() != dt)
      ctx.fail("attn_mask must be bool or Q's element type");
    mv = mask_view(ctx, *mask, d);
  }
  std::vector<int64_t> nonpad;
  if (ctx.has_input(6)) {
    const Tensor& n = ctx.input(6);
    if (n.dtype() != DType::kI64 || n.rank() != 1 || n.dim(0) != d.batch)
      ctx.fail("nonpad_kv_seqlen must be int64 [batch]");
    for (int64_t b = 0; b < d.batch; ++b) {
      int64_t len = n.element_as_int(b);
      if (len < 0 || len > d.total_seq)
        ctx.fail("nonpad_kv_seqlen[" + std::to_string(b) + "] = " + std::to_string(len) +
                     " is outside [0, " + std::to_string(d.total_seq) + "]",
                 ErrorCode::kInvalidArgument);
      nonpad.push_back(len);
    }
  }

  Dims y_dims = d.three_d ? Dims{d.batch, d.q_seq, d.q_heads * d.v_head}
                          : Dims{d.batch, d.q_heads, d.q_seq, d.v_head};
  T* y = ctx.output(0, dt, y_dims).template data<T>();
  T* qk_out = ctx.num_outputs() > 3
                  ? ctx.output(3, dt, {d.batch, d.q_heads, d.q_seq, d.total_seq}).template data<T>()
                  : nullptr;

  const T* qd = q.data<T>();
  const int64_t group = d.q_heads / d.kv_heads;
  std::vector<C> raw(size_t(d.total_seq)), capped(raw.size()), biased(raw.size()),
      probs(raw.size()), acc(size_t(d.v_head));
  for (int64_t b = 0; b < d.batch; ++b) {
    // Causal frontier: query i sees key j iff j <= i + offset.
    int64_t offset = 0;
    if (d.past_seq > 0 || ctx.has_input(4))
      offset = d.past_seq;
    else if (!nonpad.empty())
      offset = nonpad[size_t(b)] - d.q_seq;
    for (int64_t h = 0; h < d.q_heads; ++h) {
      const int64_t kvh = h / group;
      const C* kb = &key[size_t((b * d.kv_heads + kvh) * d.total_seq * d.head)];
      const C* vb = &val[size_t((b * d.kv_heads + kvh) * d.total_seq * d.v_head)];
      for (int64_t i = 0; i < d.q_seq; ++i) {
        const T* qrow = d.three_d ? qd + (b * d.q_seq + i) * d.q_heads * d.head + h * d.head
                                  : qd + ((b * d.q_heads + h) * d.q_seq + i) * d.head;
        bool any_unmasked = false;
        for (int64_t j = 0; j < d.total_seq; ++j) {
          C dot = 0;
          for (int64_t e = 0; e < d.head; ++e) dot += to_compute(qrow[e]) * kb[j * d.head + e];
          raw[size_t(j)] = dot * scale;
          capped[size_t(j)] =
              softcap > 0 ? softcap * std::tanh(raw[size_t(j)] / softcap) : raw[size_t(j)];
          C bias = 0;
          if (mask) {
            if (j >= mv.len) {
              bias = kNegInf;
            } else {
              int64_t mo =
                  b * mv.strides[0] + h * mv.strides[1] + i * mv.strides[2] + j * mv.strides[3];
              if (mask->dtype() == DType::kBool)
                bias = mask->data<bool>()[mo] ? C(0) : kNegInf;
              else
                bias = to_compute(mask->data<T>()[mo]);
            }
          }
          if (causal && j > i + offset) bias = kNegInf;
          if (!nonpad.empty() && j >= nonpad[size_t(b)]) bias = kNegInf;
          if (bias != kNegInf) any_unmasked = true;
          biased[size_t(j)] = capped[size_t(j)] + bias;
        }
        // Softmax; a row masked everywhere attends to nothing (zeros, not NaN).
        std::fill(probs.begin(), probs.end(), C(0));
        if (any_unmasked) {
          C mx = kNegInf;
          for (C s : biased) mx = std::max(mx, s);
          C sum = 0;
          for (size_t j = 0; j < probs.size(); ++j) sum += probs[j] = std::exp(biased[j] - mx);
          for (C& p : probs) p /= sum;
        }
        std::fill(acc.begin(), acc.end(), C(0));
        for (int64_t j = 0; j < d.total_seq; ++j) {
          C p = probs[size_t(j)];
          if (p == 0) continue;  // masked keys contribute nothing, even if V holds inf/NaN
          for (int64_t e = 0; e < d.v_head; ++e) acc[size_t(e)] += p * vb[j * d.v_head + e];
        }
        T* yrow = d.three_d ? y + (b * d.q_seq + i) * d.q_heads * d.v_head + h * d.v_head
                            : y + ((b * d.q_heads + h) * d.q_seq + i) * d.v_head;
        for (int64_t e = 0; e < d.v_head; ++e) yrow[e] = from_compute<T>(acc[size_t(e)]);
        if (qk_out) {
          const std::vector<C>& src = mode == 0   ? raw
                                      : mode == 1 ? capped
                                      : mode == 2 ? biased
                                                  : probs;
          T* row = qk_out + ((b * d.q_heads + h) * d.q_seq + i) * d.total_seq;
          for (int64_t j = 0; j < d.total_seq; ++j) row[j] = from_compute<T>(src[size_t(j)]);
        }
      }
    }
  }
}

void run_attention(KernelContext& ctx) {
  dispatch_float(ctx.input(0).dtype(), ctx,
                 [&](auto tag) { run_attention_typed<typename decltype(tag)::type>(ctx); });
}

}  // namespace

void register_attention_ops(Registry& r) {
  r.add({"", "Attention", 23, PatternKind::kOpaque, infer_attention, run_attention});
  register_attention_misc_ops(r);
  register_attention_state_ops(r);
}

}  // namespace kiln::kernels
