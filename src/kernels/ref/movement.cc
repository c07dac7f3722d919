// Data-movement ops, part 1: Transpose, Concat, Split, plus the strided-copy helpers that the
// other movement files share and register_movement_ops, which registers the whole family.
//
// Concat and Split also propagate symbolic element values of small 1-d int tensors (dims
// values): transformer graphs build Reshape targets as Concat(Unsqueeze(batch), [4], [64]) and
// load-time shape inference needs to see [batch, 4, 64] to keep shapes symbolic-but-known.
#include <algorithm>

#include "kernels/ref/families.h"
#include "kernels/ref/movement_util.h"

namespace kiln::kernels {
namespace movement {

namespace {
template <class T>
void strided_copy_typed(const T* src, int64_t base, const std::vector<int64_t>& st, const Dims& out,
                        T* dst) {
  int64_t n = num_elements(out);
  if (n == 0) return;
  size_t r = out.size();
  if (r == 0) {
    dst[0] = src[base];
    return;
  }
  int64_t inner = out[r - 1], inner_stride = st[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t off = base;
  for (int64_t o = 0; o < n; o += inner) {
    const T* s = src + off;
    for (int64_t i = 0; i < inner; ++i) dst[o + i] = s[i * inner_stride];
    // Advance the odometer over the outer dims; `off` follows it incrementally.
    for (int d = int(r) - 2; d >= 0; --d) {
      size_t du = size_t(d);
      if (++idx[du] < out[du]) {
        off += st[du];
        break;
      }
      idx[du] = 0;
      off -= st[du] * (out[du] - 1);
    }
  }
}
}  // namespace

void strided_copy(const NodeAttrs& ctx, const Tensor& src, int64_t base,
                  const std::vector<int64_t>& src_strides, const Dims& out_dims,
                  const Tensor& dst) {
  if (src.dtype() != dst.dtype() || num_elements(out_dims) != dst.numel() ||
      src_strides.size() != out_dims.size())
    throw Error(ErrorCode::kInternal, ctx.where() + ": strided_copy with mismatched tensors");
  dispatch_all(src.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    strided_copy_typed<T>(src.data<T>(), base, src_strides, out_dims, dst.data<T>());
  });
}

void transpose_into(const NodeAttrs& ctx, const Tensor& src, const Dims& in_dims,
                    const std::vector<int>& perm, const Tensor& dst) {
  auto st = strides_of(in_dims);
  Dims out(perm.size());
  std::vector<int64_t> ps(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) {
    out[d] = in_dims[size_t(perm[d])];
    ps[d] = st[size_t(perm[d])];
  }
  strided_copy(ctx, src, 0, ps, out, dst);
}

int64_t dims_product(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < dims.size(); ++i) p *= dims[i];
  return p;
}

}  // namespace movement

namespace {

using movement::dims_product;

// ---- Transpose -------------------------------------------------------------------------------

std::vector<int> transpose_perm(const NodeAttrs& ctx, int rank) {
  std::vector<int> perm;
  if (!ctx.has_attr("perm")) {
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
    return perm;
  }
  auto p = ctx.attr_ints("perm");
  if (int(p.size()) != rank)
    ctx.fail("perm has " + std::to_string(p.size()) + " entries, the input has rank " +
             std::to_string(rank));
  for (int64_t a : p)
    if (a < 0 || a >= rank) ctx.fail("perm entry " + std::to_string(a) + " is out of range");
  return normalize_axes(ctx, p, rank);  // also rejects repeats
}

void infer_transpose(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  if (!in.has_rank) {
    if (ctx.has_attr("perm")) {
      ctx.set_output(0, ctx.input_dtype(0),
                     ir::Shape(std::vector<ir::Dim>(ctx.attr_ints("perm").size())));
    } else {
      ctx.set_output(0, ctx.input_dtype(0), ir::Shape::unranked());
    }
    return;
  }
  auto perm = transpose_perm(ctx, in.rank());
  std::vector<ir::Dim> out;
  for (int p : perm) out.push_back(in.dims[size_t(p)]);
  ctx.set_output(0, ctx.input_dtype(0), ir::Shape(std::move(out)));
}

void run_transpose(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  auto perm = transpose_perm(ctx, x.rank());
  Dims out;
  for (int p : perm) out.push_back(x.dims()[size_t(p)]);
  movement::transpose_into(ctx, x, x.dims(), perm, ctx.output(0, x.dtype(), out));
}

// ---- Concat ----------------------------------------------------------------------------------

int64_t concat_axis_attr(const NodeAttrs& ctx) {
  // Concat-1 defaulted the axis to 1; from opset 4 it is required.
  return ctx.opset() < 4 ? ctx.attr_int("axis", 1) : ctx.required_int("axis");
}

void infer_concat(InferContext& ctx) {
  int n = ctx.num_inputs();
  if (n == 0) ctx.fail("needs at least one input");
  DType dt = ctx.input_dtype(0);
  int rank = -1;
  for (int i = 0; i < n; ++i) {
    if (ctx.input_dtype(i) != dt)
      ctx.fail("input " + std::to_string(i) + " is " + dtype_name(ctx.input_dtype(i)) +
               ", input 0 is " + dtype_name(dt));
    const ir::Shape& s = ctx.input_shape(i);
    if (!s.has_rank) continue;
    if (rank >= 0 && s.rank() != rank)
      ctx.fail("input " + std::to_string(i) + " has rank " + std::to_string(s.rank()) +
               ", input 0 has rank " + std::to_string(rank));
    rank = s.rank();
  }
  if (rank < 0) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  if (rank == 0) ctx.fail("cannot concatenate scalars (rank 0)");
  int axis = normalize_axis(ctx, concat_axis_attr(ctx), rank);
  std::vector<ir::Dim> out(size_t(rank), ir::Dim::unknown());
  out[size_t(axis)] = ir::Dim::constant(0);
  for (int i = 0; i < n; ++i) {
    const ir::Shape& s = ctx.input_shape(i);
    if (!s.has_rank) {
      out[size_t(axis)] = ir::Dim::unknown();
      continue;
    }
    for (int d = 0; d < rank; ++d) {
      const ir::Dim& in = s.dims[size_t(d)];
      ir::Dim& o = out[size_t(d)];
      if (d == axis) {
        o = ir::dim_add(o, in);
      } else if (in.known_different(o)) {
        ctx.fail("input " + std::to_string(i) + " has shape " + s.to_string() + ", dim " +
                 std::to_string(d) + " differs from the other inputs (" + o.to_string() + ")");
      } else if (o.is_unknown() || (o.is_symbol() && in.is_const())) {
        o = in;
      }
    }
  }
  ctx.set_output(0, dt, ir::Shape(std::move(out)));

  // Symbolic element values of 1-d int inputs concatenate too (shape tensors).
  if (rank == 1 && dtype_is_int(dt)) {
    std::vector<ir::Dim> v;
    for (int i = 0; i < n; ++i) {
      auto dv = ctx.input_dims_value(i);
      if (!dv) return;
      v.insert(v.end(), dv->begin(), dv->end());
    }
    ctx.set_output_dims_value(0, std::move(v));
  }
}

void run_concat(KernelContext& ctx) {
  const Tensor& x0 = ctx.input(0);
  int rank = x0.rank();
  if (rank == 0) ctx.fail("cannot concatenate scalars (rank 0)");
  int axis = normalize_axis(ctx, concat_axis_attr(ctx), rank);
  Dims out = x0.dims();
  out[size_t(axis)] = 0;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& x = ctx.input(i);
    bool ok = x.rank() == rank && x.dtype() == x0.dtype();
    for (int d = 0; ok && d < rank; ++d)
      if (d != axis && x.dims()[size_t(d)] != x0.dims()[size_t(d)]) ok = false;
    if (!ok)
      ctx.fail("input " + std::to_string(i) + " " + dims_to_string(x.dims()) +
                   " cannot be concatenated with " + dims_to_string(x0.dims()) + " on axis " +
                   std::to_string(axis),
               ErrorCode::kInvalidArgument);
    out[size_t(axis)] += x.dims()[size_t(axis)];
  }
  const Tensor& y = ctx.output(0, x0.dtype(), out);
  int64_t outer = dims_product(out, 0, size_t(axis));
  int64_t out_block = dims_product(out, size_t(axis), out.size());
  int64_t pos = 0;  // offset of the current input's block inside an output block
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& x = ctx.input(i);
    int64_t block = dims_product(x.dims(), size_t(axis), x.dims().size());
    for (int64_t o = 0; o < outer; ++o) copy_elements(x, o * block, y, o * out_block + pos, block);
    pos += block;
  }
}

// ---- Split -----------------------------------------------------------------------------------

// The explicit split sizes when given (attribute before opset 13, input 1 from 13). Sets
// `unknown` when they are given as an input whose value is not known yet.
std::optional<std::vector<int64_t>> explicit_split(const InferContext* ictx,
                                                   const KernelContext* kctx, const NodeAttrs& ctx,
                                                   bool* unknown) {
  *unknown = false;
  if (ctx.opset() < 13) {
    if (ctx.has_attr("split")) return ctx.attr_ints("split");
    return std::nullopt;
  }
  if (ictx && ictx->has_input(1)) {
    auto v = ictx->input_ints(1);
    if (!v) *unknown = true;
    if (v && v->empty()) return std::nullopt;  // an empty split means "not given"
    return v;
  }
  if (kctx && kctx->has_input(1)) {
    const Tensor& t = kctx->input(1);
    if (!dtype_is_int(t.dtype())) ctx.fail("split must be an int64 tensor");
    std::vector<int64_t> v(size_t(t.numel()));
    for (int64_t k = 0; k < t.numel(); ++k) v[size_t(k)] = t.element_as_int(k);
    if (v.empty()) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

// Concrete chunk sizes along the split axis.
std::vector<int64_t> split_sizes(const NodeAttrs& ctx, int64_t dim, int n_out,
                                 const std::optional<std::vector<int64_t>>& split) {
  if (split) {
    if (int(split->size()) != n_out)
      ctx.fail("split has " + std::to_string(split->size()) + " entries for " +
               std::to_string(n_out) + " outputs");
    int64_t sum = 0;
    for (int64_t s : *split) {
      if (s < 0) ctx.fail("split sizes must be non-negative, got " + std::to_string(s));
      sum += s;
    }
    if (sum != dim)
      ctx.fail("split sizes sum to " + std::to_string(sum) + ", the split axis has " +
               std::to_string(dim));
    return *split;
  }
  if (ctx.opset() >= 18 && ctx.has_attr("num_outputs")) {
    // Chunks of ceil(dim / n); the last one takes what is left (and may be smaller).
    int64_t n = ctx.attr_int("num_outputs", 0);
    if (n != n_out)
      ctx.fail("num_outputs is " + std::to_string(n) + " but the node has " +
               std::to_string(n_out) + " outputs");
    int64_t chunk = (dim + n - 1) / n;
    std::vector<int64_t> v(size_t(n), chunk);
    v.back() = dim - chunk * (n - 1);
    if (v.back() < 0)
      ctx.fail("cannot split a dim of " + std::to_string(dim) + " into " + std::to_string(n) +
               " chunks of " + std::to_string(chunk));
    return v;
  }
  if (dim % n_out != 0)
    ctx.fail("cannot split a dim of " + std::to_string(dim) + " into " + std::to_string(n_out) +
             " equal parts");
  return std::vector<int64_t>(size_t(n_out), dim / n_out);
}

void infer_split(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  const ir::Shape& in = ctx.input_shape(0);
  int n_out = ctx.num_outputs();
  if (n_out == 0) ctx.fail("needs at least one output");
  if (ctx.opset() >= 18 && ctx.has_attr("num_outputs") && ctx.attr_int("num_outputs", 0) < 1)
    ctx.fail("num_outputs must be positive");
  if (!in.has_rank) {
    for (int i = 0; i < n_out; ++i) ctx.set_output(i, dt, ir::Shape::unranked());
    return;
  }
  int axis = normalize_axis(ctx, ctx.attr_int("axis", 0), in.rank());
  const ir::Dim& dim = in.dims[size_t(axis)];
  bool unknown = false;
  auto split = explicit_split(&ctx, nullptr, ctx, &unknown);
  std::vector<ir::Dim> sizes;
  if (unknown) {
    for (int i = 0; i < n_out; ++i) sizes.push_back(ctx.fresh_dim());
  } else if (dim.is_const() && (split || ctx.is_runtime())) {
    for (int64_t s : split_sizes(ctx, dim.value, n_out, split))
      sizes.push_back(ir::Dim::constant(s));
  } else if (dim.is_const()) {
    // An impossible equal split is only an error when the node runs: ONNX function expansions
    // (AffineGrid) put Splits for other ranks in the untaken branch of an If.
    try {
      for (int64_t s : split_sizes(ctx, dim.value, n_out, split))
        sizes.push_back(ir::Dim::constant(s));
    } catch (const Error&) {
      sizes.clear();
      for (int i = 0; i < n_out; ++i) sizes.push_back(ctx.fresh_dim());
    }
  } else if (split) {
    if (int(split->size()) != n_out) split_sizes(ctx, 0, n_out, split);  // fails with the message
    for (int64_t s : *split) sizes.push_back(ir::Dim::constant(s));
  } else if (ctx.opset() >= 18 && ctx.has_attr("num_outputs")) {
    ir::Dim chunk = ir::dim_ceil_div(dim, ir::Dim::constant(n_out));
    sizes.assign(size_t(n_out), chunk);
    sizes.back() = ir::dim_sub(dim, ir::dim_mul(chunk, ir::Dim::constant(n_out - 1)));
  } else {
    sizes.assign(size_t(n_out), ir::dim_div(dim, ir::Dim::constant(n_out)));
  }
  for (int i = 0; i < n_out; ++i) {
    std::vector<ir::Dim> d = in.dims;
    d[size_t(axis)] = sizes[size_t(i)];
    ctx.set_output(i, dt, ir::Shape(std::move(d)));
  }
  // Splitting a shape tensor splits its symbolic elements.
  if (in.rank() == 1 && dtype_is_int(dt)) {
    auto dv = ctx.input_dims_value(0);
    if (!dv) return;
    int64_t pos = 0;
    for (int i = 0; i < n_out; ++i) {
      if (!sizes[size_t(i)].is_const()) return;
      int64_t s = sizes[size_t(i)].value;
      if (pos + s > int64_t(dv->size())) return;
      ctx.set_output_dims_value(i, std::vector<ir::Dim>(dv->begin() + pos, dv->begin() + pos + s));
      pos += s;
    }
  }
}

void run_split(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() == 0) ctx.fail("cannot split a scalar");
  int axis = normalize_axis(ctx, ctx.attr_int("axis", 0), x.rank());
  bool unknown = false;
  auto split = explicit_split(nullptr, &ctx, ctx, &unknown);
  auto sizes = split_sizes(ctx, x.dims()[size_t(axis)], ctx.num_outputs(), split);
  int64_t outer = dims_product(x.dims(), 0, size_t(axis));
  int64_t inner = dims_product(x.dims(), size_t(axis) + 1, x.dims().size());
  int64_t in_block = x.dims()[size_t(axis)] * inner;
  int64_t pos = 0;
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    Dims od = x.dims();
    od[size_t(axis)] = sizes[size_t(i)];
    const Tensor& y = ctx.output(i, x.dtype(), od);
    int64_t block = sizes[size_t(i)] * inner;
    for (int64_t o = 0; o < outer; ++o) copy_elements(x, o * in_block + pos, y, o * block, block);
    pos += block;
  }
}

}  // namespace

void register_movement_ops(Registry& r) {
  r.add({"", "Transpose", 1, PatternKind::kInjective, infer_transpose, run_transpose});
  r.add({"", "Concat", 1, PatternKind::kInjective, infer_concat, run_concat});
  r.add({"", "Split", 1, PatternKind::kInjective, infer_split, run_split});
  register_movement_slice_pad_ops(r);
  register_movement_misc_ops(r);
}

}  // namespace kiln::kernels
