// Transformer helpers next to Attention: RotaryEmbedding (opset 23), TensorScatter (opset 24,
// the in-place KV-cache update) and SwiGLU (opset 28).
//
// RotaryEmbedding rotates the first rotary_embedding_dim features of each head by position-
// dependent angles. Input is 4-D [batch, heads, seq, head_size] or 3-D [batch, seq, hidden]
// (num_heads splits hidden). With position_ids [batch, seq] the caches are [max_pos, rot/2] and
// are gathered by position; without them the caches are already [batch, seq, rot/2]. Pairs are
// (x[k], x[k + rot/2]) in the default layout and (x[2k], x[2k+1]) when interleaved.
// TensorScatter copies past_cache and writes `update` at write_indices[b] along `axis` (default
// -2) for each batch b; "circular" mode wraps positions modulo the cache length.
// SwiGLU is Swish_alpha(A) * B on identical shapes.
#include <cmath>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

using ir::Dim;
using ir::Shape;

// ---- RotaryEmbedding ------------------------------------------------------------------------

void infer_rotary(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (!dtype_is_float(t)) ctx.unsupported(std::string("element type ") + dtype_name(t));
  if (ctx.input_dtype(1) != t || ctx.input_dtype(2) != t)
    ctx.fail("cos_cache and sin_cache must have the input's element type");
  if (ctx.has_input(3) && ctx.input_dtype(3) != DType::kI64) ctx.fail("position_ids must be int64");
  const Shape& s = ctx.input_shape(0);
  if (s.has_rank && s.rank() != 3 && s.rank() != 4)
    ctx.fail("input must be 3-D or 4-D, got rank " + std::to_string(s.rank()));
  if (s.has_rank && s.rank() == 3 && ctx.attr_int("num_heads", 0) <= 0)
    ctx.fail("3-D input needs a positive num_heads attribute");
  ctx.set_output(0, t, s);
}

template <class T>
void run_rotary_typed(KernelContext& ctx) {
  using C = Compute<T>;
  const Tensor& x = ctx.input(0);
  const Tensor& cos_cache = ctx.input(1);
  const Tensor& sin_cache = ctx.input(2);
  const bool interleaved = ctx.attr_int("interleaved", 0) != 0;
  int64_t batch, heads, seq, head;
  // Element (b, s, h, e) lives at b*sb + s*ss + h*hs + e.
  int64_t sb, ss, hs;
  if (x.rank() == 4) {
    batch = x.dim(0), heads = x.dim(1), seq = x.dim(2), head = x.dim(3);
    hs = seq * head, ss = head, sb = heads * seq * head;
  } else if (x.rank() == 3) {
    heads = ctx.attr_int("num_heads", 0);
    if (heads <= 0) ctx.fail("3-D input needs a positive num_heads attribute");
    batch = x.dim(0), seq = x.dim(1);
    if (x.dim(2) % heads != 0)
      ctx.fail("hidden size " + std::to_string(x.dim(2)) + " is not divisible by num_heads " +
               std::to_string(heads));
    head = x.dim(2) / heads;
    hs = head, ss = x.dim(2), sb = seq * x.dim(2);
  } else {
    ctx.fail("input must be 3-D or 4-D");
  }
  int64_t rot = ctx.attr_int("rotary_embedding_dim", 0);
  if (rot == 0) rot = head;
  if (rot < 0 || rot > head || rot % 2 != 0)
    ctx.fail("rotary_embedding_dim " + std::to_string(rot) +
             " must be even and at most the head size " + std::to_string(head));
  const int64_t half = rot / 2;

  const Tensor* pos = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (cos_cache.dims() != sin_cache.dims())
    ctx.fail("cos_cache and sin_cache must have the same shape");
  int64_t max_pos = 0;
  if (pos) {
    if (pos->dtype() != DType::kI64 || pos->dims() != Dims{batch, seq})
      ctx.fail("position_ids must be int64 [batch, seq]");
    if (cos_cache.rank() != 2 || cos_cache.dim(1) != half)
      ctx.fail("with position_ids, cos_cache must be [max_position, " + std::to_string(half) + "]");
    max_pos = cos_cache.dim(0);
  } else if (cos_cache.dims() != Dims{batch, seq, half}) {
    ctx.fail("without position_ids, cos_cache must be [batch, seq, " + std::to_string(half) + "]");
  }

  const T* xd = x.data<T>();
  const T* cd = cos_cache.data<T>();
  const T* sd = sin_cache.data<T>();
  T* y = ctx.output(0, x.dtype(), x.dims()).template data<T>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      int64_t row;  // the cache row for (b, s)
      if (pos) {
        int64_t p = pos->data<int64_t>()[b * seq + s];
        if (p < 0 || p >= max_pos)
          ctx.fail("position_ids value " + std::to_string(p) + " is outside [0, " +
                       std::to_string(max_pos) + ")",
                   ErrorCode::kInvalidArgument);
        row = p;
      } else {
        row = b * seq + s;
      }
      const T* c = cd + row * half;
      const T* sn = sd + row * half;
      for (int64_t h = 0; h < heads; ++h) {
        const T* in = xd + b * sb + s * ss + h * hs;
        T* out = y + b * sb + s * ss + h * hs;
        for (int64_t k = 0; k < half; ++k) {
          int64_t i1 = interleaved ? 2 * k : k;
          int64_t i2 = interleaved ? 2 * k + 1 : k + half;
          C x1 = to_compute(in[i1]), x2 = to_compute(in[i2]);
          C cv = to_compute(c[k]), sv = to_compute(sn[k]);
          out[i1] = from_compute<T>(cv * x1 - sv * x2);
          out[i2] = from_compute<T>(sv * x1 + cv * x2);
        }
        for (int64_t e = rot; e < head; ++e) out[e] = in[e];
      }
    }
}

void run_rotary(KernelContext& ctx) {
  dispatch_float(ctx.input(0).dtype(), ctx,
                 [&](auto tag) { run_rotary_typed<typename decltype(tag)::type>(ctx); });
}

// ---- TensorScatter --------------------------------------------------------------------------

void infer_tensor_scatter(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t) ctx.fail("update must have past_cache's element type");
  if (ctx.has_input(2) && ctx.input_dtype(2) != DType::kI64)
    ctx.fail("write_indices must be int64");
  std::string mode = ctx.attr_string("mode", "linear");
  if (mode != "linear" && mode != "circular") ctx.fail("mode must be 'linear' or 'circular'");
  const Shape& past = ctx.input_shape(0);
  const Shape& upd = ctx.input_shape(1);
  if (past.has_rank && upd.has_rank) {
    if (past.rank() != upd.rank()) ctx.fail("update must have past_cache's rank");
    if (past.rank() < 2) ctx.fail("past_cache must have rank >= 2");
    int axis = normalize_axis(ctx, ctx.attr_int("axis", -2), past.rank());
    if (axis == 0) ctx.fail("axis must not be the batch axis 0");
    for (int i = 0; i < past.rank(); ++i) {
      const Dim& p = past.dims[size_t(i)];
      const Dim& u = upd.dims[size_t(i)];
      if (i != axis && p.known_different(u))
        ctx.fail("update dim " + std::to_string(i) + " is " + u.to_string() + ", expected " +
                 p.to_string());
      if (i == axis && p.is_const() && u.is_const() && u.value > p.value)
        ctx.fail("update sequence length " + std::to_string(u.value) + " exceeds the cache's " +
                 std::to_string(p.value));
    }
  }
  ctx.set_output(0, t, past);
}

void run_tensor_scatter(KernelContext& ctx) {
  const Tensor& past = ctx.input(0);
  const Tensor& upd = ctx.input(1);
  if (upd.dtype() != past.dtype() || upd.rank() != past.rank() || past.rank() < 2)
    ctx.fail("update must match past_cache's element type and rank (>= 2)");
  const int rank = past.rank();
  const int axis = normalize_axis(ctx, ctx.attr_int("axis", -2), rank);
  if (axis == 0) ctx.fail("axis must not be the batch axis 0");
  for (int i = 0; i < rank; ++i)
    if ((i != axis && upd.dim(i) != past.dim(i)) || (i == axis && upd.dim(i) > past.dim(i)))
      ctx.fail("update shape " + dims_to_string(upd.dims()) + " does not fit past_cache " +
               dims_to_string(past.dims()));
  const bool circular = ctx.attr_string("mode", "linear") == "circular";
  const int64_t batch = past.dim(0);
  std::vector<int64_t> write(size_t(batch), 0);
  if (ctx.has_input(2)) {
    const Tensor& w = ctx.input(2);
    if (w.dtype() != DType::kI64 || w.dims() != Dims{batch})
      ctx.fail("write_indices must be int64 [batch]");
    for (int64_t b = 0; b < batch; ++b) write[size_t(b)] = w.data<int64_t>()[b];
  }

  Tensor& out = ctx.output(0, past.dtype(), past.dims());
  if (out.raw_data() != past.raw_data()) out.copy_from(past);
  // Rows are [prefix..., axis, inner...]: for each prefix the update writes seq blocks of inner.
  const int64_t max_seq = past.dim(axis), seq = upd.dim(axis);
  int64_t inner = 1;
  for (int i = axis + 1; i < rank; ++i) inner *= past.dim(i);
  int64_t per_batch = 1;  // prefixes per batch entry
  for (int i = 1; i < axis; ++i) per_batch *= past.dim(i);
  for (int64_t b = 0; b < batch; ++b) {
    int64_t start = write[size_t(b)];
    if (start < 0 || (!circular && start + seq > max_seq))
      ctx.fail("write_indices[" + std::to_string(b) + "] = " + std::to_string(start) +
                   " does not leave room for " + std::to_string(seq) + " entries in a cache of " +
                   std::to_string(max_seq),
               ErrorCode::kInvalidArgument);
    for (int64_t p = 0; p < per_batch; ++p) {
      int64_t prefix = b * per_batch + p;
      for (int64_t s = 0; s < seq; ++s) {
        int64_t dst = start + s;
        if (circular) dst %= max_seq;
        copy_elements(upd, (prefix * seq + s) * inner, out, (prefix * max_seq + dst) * inner,
                      inner);
      }
    }
  }
}

// ---- SwiGLU ---------------------------------------------------------------------------------

void infer_swiglu(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (!dtype_is_float(t)) ctx.unsupported(std::string("element type ") + dtype_name(t));
  if (ctx.input_dtype(1) != t) ctx.fail("A and B must have the same element type");
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  if (a.has_rank && b.has_rank) {
    if (a.rank() != b.rank()) ctx.fail("A and B must have identical shapes (no broadcasting)");
    for (int i = 0; i < a.rank(); ++i)
      if (a.dims[size_t(i)].known_different(b.dims[size_t(i)]))
        ctx.fail("A and B must have identical shapes, got " + a.to_string() + " and " +
                 b.to_string());
  }
  ctx.set_output(0, t, a.has_rank ? a : b);
}

void run_swiglu(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype() || a.dims() != b.dims())
    ctx.fail("A and B must have identical shapes and element types, got " +
             dims_to_string(a.dims()) + " and " + dims_to_string(b.dims()));
  const double alpha = ctx.attr_float("alpha", 1.0f);
  dispatch_float(a.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    const T* ad = a.data<T>();
    const T* bd = b.data<T>();
    T* y = ctx.output(0, a.dtype(), a.dims()).template data<T>();
    for (int64_t i = 0; i < a.numel(); ++i) {
      C x = to_compute(ad[i]);
      C gate = x / (C(1) + std::exp(-C(alpha) * x));
      y[i] = from_compute<T>(gate * to_compute(bd[i]));
    }
  });
}

}  // namespace

void register_attention_misc_ops(Registry& r) {
  r.add({"", "RotaryEmbedding", 23, PatternKind::kOpaque, infer_rotary, run_rotary});
  r.add({"", "TensorScatter", 24, PatternKind::kOpaque, infer_tensor_scatter, run_tensor_scatter});
  r.add({"", "SwiGLU", 28, PatternKind::kElementwise, infer_swiglu, run_swiglu});
}

}  // namespace kiln::kernels
