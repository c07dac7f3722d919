// Indexing ops: Gather, GatherElements, GatherND, ScatterElements, ScatterND, Scatter, OneHot,
// NonZero, Compress.
//
// Every index read from a tensor is bounds-checked (negative indices count from the end) and a bad
// one fails with kInvalidArgument naming the index, the dim and the allowed range: these values
// come from the model's inputs, so a wrong one is the caller's data, never a crash. NonZero and
// Compress have data-dependent output shapes: fresh dims at load time, allocated by the kernel.
// Gather also propagates symbolic int values (Shape -> Gather picks "seq" out of [batch, seq]).
#include <algorithm>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

using ir::Dim;

constexpr int64_t kMaxDimsValueElements = 64;

// Normalizes index `v` into [0, dim); fails on a value outside [-dim, dim).
int64_t checked_index(const NodeAttrs& ctx, int64_t v, int64_t dim, const std::string& what) {
  if (v < -dim || v >= dim)
    ctx.fail(what + " " + std::to_string(v) + " is out of range [" + std::to_string(-dim) + ", " +
                 std::to_string(dim - 1) + "]",
             ErrorCode::kInvalidArgument);
  return v < 0 ? v + dim : v;
}

void check_index_dtype(const NodeAttrs& ctx, DType t, const char* name) {
  if (t != DType::kI32 && t != DType::kI64)
    ctx.fail(std::string(name) + " must be int32 or int64, got " + dtype_name(t));
}

// Advances a multi-index over `dims` (row-major); false after the last one.
bool next_index(std::vector<int64_t>& idx, const Dims& dims) {
  for (int d = int(dims.size()) - 1; d >= 0; --d) {
    if (++idx[size_t(d)] < dims[size_t(d)]) return true;
    idx[size_t(d)] = 0;
  }
  return false;
}

int64_t product(const Dims& d, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= d[i];
  return p;
}

// ---- Gather ----------------------------------------------------------------------------------

void infer_gather(InferContext& ctx) {
  const ir::Shape& data = ctx.input_shape(0);
  const ir::Shape& ind = ctx.input_shape(1);
  DType dt = ctx.input_dtype(0);
  check_index_dtype(ctx, ctx.input_dtype(1), "indices");
  if (!data.has_rank || !ind.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  if (data.rank() < 1) ctx.fail("data must have rank >= 1, got a scalar");
  int axis = normalize_axis(ctx, ctx.attr_int("axis", 0), data.rank());
  std::vector<Dim> dims(data.dims.begin(), data.dims.begin() + axis);
  dims.insert(dims.end(), ind.dims.begin(), ind.dims.end());
  dims.insert(dims.end(), data.dims.begin() + axis + 1, data.dims.end());
  ctx.set_output(0, dt, ir::Shape(std::move(dims)));

  // Gathering from a small 1-d int tensor (a shape): the picked elements keep their symbols.
  if (data.rank() == 1 && dtype_is_int(dt) && data.dims[0].is_const() &&
      data.dims[0].value <= kMaxDimsValueElements) {
    auto v = ctx.input_dims_value(0);
    auto idx = ctx.input_ints(1);
    if (v && idx && idx->size() <= size_t(kMaxDimsValueElements)) {
      std::vector<Dim> picked;
      for (int64_t i : *idx)
        picked.push_back((*v)[size_t(checked_index(ctx, i, int64_t(v->size()), "index"))]);
      ctx.set_output_dims_value(0, std::move(picked));
    }
  }
}

void run_gather(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  Tensor& out = ctx.output(0);
  const Dims& d = data.dims();
  int axis = normalize_axis(ctx, ctx.attr_int("axis", 0), data.rank());
  int64_t outer = product(d, 0, size_t(axis));
  int64_t axis_dim = d[size_t(axis)];
  int64_t inner = product(d, size_t(axis) + 1, d.size());
  int64_t n = ind.numel();
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j)
    idx[size_t(j)] = checked_index(ctx, ind.element_as_int(j), axis_dim, "index");
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j)
      copy_elements(data, (o * axis_dim + idx[size_t(j)]) * inner, out, (o * n + j) * inner, inner);
}

// ---- GatherElements --------------------------------------------------------------------------

void check_same_rank(const NodeAttrs& ctx, const ir::Shape& data, const ir::Shape& ind,
                     const char* what) {
  if (data.has_rank && data.rank() < 1) ctx.fail("data must have rank >= 1, got a scalar");
  if (data.has_rank && ind.has_rank && data.rank() != ind.rank())
    ctx.fail(std::string(what) + " must have the rank of data (" + std::to_string(data.rank()) +
             "), got " + ind.to_string());
}

void infer_gather_elements(InferContext& ctx) {
  check_index_dtype(ctx, ctx.input_dtype(1), "indices");
  const ir::Shape& data = ctx.input_shape(0);
  const ir::Shape& ind = ctx.input_shape(1);
  check_same_rank(ctx, data, ind, "indices");
  if (data.has_rank) normalize_axis(ctx, ctx.attr_int("axis", 0), data.rank());
  ctx.set_output(0, ctx.input_dtype(0), ind);
}

// Offset in `data` of the element that `pos` (a position in indices/updates) addresses once its
// axis coordinate is replaced by `index`. Checks the other coordinates fit data's dims.
void check_fits(const NodeAttrs& ctx, const Dims& data, const Dims& ind, int axis,
                const char* what) {
  for (size_t d = 0; d < data.size(); ++d)
    if (int(d) != axis && ind[d] > data[d])
      ctx.fail(std::string(what) + " " + dims_to_string(ind) + " exceeds data " +
                   dims_to_string(data) + " in dim " + std::to_string(d),
               ErrorCode::kInvalidArgument);
}

// Calls f(i, offset) for each element i of `ind`: offset is the flat position in data of i's
// coordinates with the `axis` coordinate replaced by the (bounds-checked) index ind[i].
template <class F>
void for_each_axis_index(const KernelContext& ctx, const Dims& data_dims, const Tensor& ind,
                         int axis, F&& f) {
  auto strides = strides_of(data_dims);
  int64_t axis_dim = data_dims[size_t(axis)];
  std::vector<int64_t> pos(size_t(ind.rank()), 0);
  int64_t i = 0;
  do {
    int64_t k = checked_index(ctx, ind.element_as_int(i), axis_dim, "index");
    int64_t off = 0;
    for (size_t d = 0; d < pos.size(); ++d) off += (int(d) == axis ? k : pos[d]) * strides[d];
    f(i++, off);
  } while (next_index(pos, ind.dims()));
}

void run_gather_elements(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  Tensor& out = ctx.output(0);
  int axis = normalize_axis(ctx, ctx.attr_int("axis", 0), data.rank());
  check_fits(ctx, data.dims(), ind.dims(), axis, "indices");
  if (ind.numel() == 0) return;
  dispatch_all(data.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = data.data<T>();
    T* dst = out.data<T>();
    for_each_axis_index(ctx, data.dims(), ind, axis,
                        [&](int64_t i, int64_t off) { dst[i] = src[off]; });
  });
}

// ---- GatherND --------------------------------------------------------------------------------

void infer_gather_nd(InferContext& ctx) {
  if (ctx.input_dtype(1) != DType::kI64) ctx.fail("indices must be int64");
  const ir::Shape& data = ctx.input_shape(0);
  const ir::Shape& ind = ctx.input_shape(1);
  DType dt = ctx.input_dtype(0);
  int64_t b = ctx.attr_int("batch_dims", 0);
  if (!data.has_rank || !ind.has_rank || ind.rank() < 1 || !ind.dims.back().is_const()) {
    if (ind.has_rank && ind.rank() < 1) ctx.fail("indices must have rank >= 1");
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  int64_t k = ind.dims.back().value;
  if (b < 0 || b >= std::min(data.rank(), ind.rank()))
    ctx.fail("batch_dims " + std::to_string(b) + " must be less than both ranks");
  if (k < 1 || b + k > data.rank())
    ctx.fail("indices' last dim " + std::to_string(k) + " plus batch_dims " + std::to_string(b) +
             " exceeds the data rank " + std::to_string(data.rank()));
  for (int64_t i = 0; i < b; ++i)
    if (data.dims[size_t(i)].known_different(ind.dims[size_t(i)]))
      ctx.fail("batch dim " + std::to_string(i) + " differs between data " + data.to_string() +
               " and indices " + ind.to_string());
  std::vector<Dim> dims(ind.dims.begin(), ind.dims.end() - 1);
  dims.insert(dims.end(), data.dims.begin() + b + k, data.dims.end());
  ctx.set_output(0, dt, ir::Shape(std::move(dims)));
}

void run_gather_nd(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  Tensor& out = ctx.output(0);
  const Dims& dd = data.dims();
  const Dims& id = ind.dims();
  size_t b = size_t(ctx.attr_int("batch_dims", 0));
  size_t k = size_t(id.back());
  int64_t batches = product(dd, 0, b);
  int64_t per_batch = product(id, b, id.size() - 1);  // index tuples per batch
  int64_t slice = product(dd, b + k, dd.size());
  int64_t data_batch = product(dd, b, dd.size());
  auto strides = strides_of(dd);
  const int64_t* ip = ind.data<int64_t>();
  for (int64_t bi = 0; bi < batches; ++bi) {
    for (int64_t t = 0; t < per_batch; ++t) {
      int64_t tuple = bi * per_batch + t;
      int64_t off = bi * data_batch;
      for (size_t j = 0; j < k; ++j)
        off += checked_index(ctx, ip[tuple * int64_t(k) + int64_t(j)], dd[b + j], "index") *
               strides[b + j];
      copy_elements(data, off, out, tuple * slice, slice);
    }
  }
}

// ---- ScatterElements, Scatter, ScatterND -----------------------------------------------------

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Reduction reduction_of(const NodeAttrs& ctx) {
  std::string r = ctx.attr_string("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  ctx.fail("reduction '" + r + "' is not one of none, add, mul, max, min");
}

template <class T>
void apply(Reduction r, T& dst, const T& src) {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool>) {
    dst = src;  // reductions on these types are rejected before
  } else {
    auto a = to_compute(dst), b = to_compute(src);
    switch (r) {
      case Reduction::kNone:
        dst = src;
        return;
      case Reduction::kAdd:
        dst = from_compute<T>(a + b);
        return;
      case Reduction::kMul:
        dst = from_compute<T>(a * b);
        return;
      case Reduction::kMax:
        dst = from_compute<T>(a > b ? a : b);
        return;
      case Reduction::kMin:
        dst = from_compute<T>(a < b ? a : b);
        return;
    }
  }
}

void check_reduction_type(const NodeAttrs& ctx, Reduction r, DType t) {
  if (r != Reduction::kNone && (t == DType::kString || t == DType::kBool))
    ctx.unsupported(std::string("reductions on ") + dtype_name(t) + " are not supported");
}

void infer_scatter_elements(InferContext& ctx) {
  check_index_dtype(ctx, ctx.input_dtype(1), "indices");
  const ir::Shape& data = ctx.input_shape(0);
  const ir::Shape& ind = ctx.input_shape(1);
  const ir::Shape& upd = ctx.input_shape(2);
  check_same_rank(ctx, data, ind, "indices");
  if (ind.has_rank && upd.has_rank) {
    bool same = ind.rank() == upd.rank();
    for (size_t i = 0; same && i < ind.dims.size(); ++i)
      same = !ind.dims[i].known_different(upd.dims[i]);
    if (!same)
      ctx.fail("updates " + upd.to_string() + " must have the shape of indices " + ind.to_string());
  }
  if (ctx.input_dtype(2) != ctx.input_dtype(0)) ctx.fail("updates must have the type of data");
  if (data.has_rank) normalize_axis(ctx, ctx.attr_int("axis", 0), data.rank());
  check_reduction_type(ctx, reduction_of(ctx), ctx.input_dtype(0));
  ctx.set_output(0, ctx.input_dtype(0), data);
}

void run_scatter_elements(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  const Tensor& upd = ctx.input(2);
  Tensor& out = ctx.output(0);
  Reduction red = reduction_of(ctx);
  out.copy_from(data);
  int axis = normalize_axis(ctx, ctx.attr_int("axis", 0), data.rank());
  check_fits(ctx, data.dims(), ind.dims(), axis, "indices");
  if (ind.numel() == 0) return;
  dispatch_all(data.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* u = upd.data<T>();
    T* dst = out.data<T>();
    for_each_axis_index(ctx, data.dims(), ind, axis,
                        [&](int64_t i, int64_t off) { apply(red, dst[off], u[i]); });
  });
}

void infer_scatter_nd(InferContext& ctx) {
  if (ctx.input_dtype(1) != DType::kI64) ctx.fail("indices must be int64");
  if (ctx.input_dtype(2) != ctx.input_dtype(0)) ctx.fail("updates must have the type of data");
  const ir::Shape& data = ctx.input_shape(0);
  const ir::Shape& ind = ctx.input_shape(1);
  const ir::Shape& upd = ctx.input_shape(2);
  if (data.has_rank && ind.has_rank && upd.has_rank) {
    if (ind.rank() < 1) ctx.fail("indices must have rank >= 1");
    const Dim& kd = ind.dims.back();
    if (kd.is_const()) {
      int64_t k = kd.value;
      if (k > data.rank())
        ctx.fail("indices' last dim " + std::to_string(k) + " exceeds the data rank " +
                 std::to_string(data.rank()));
      std::vector<Dim> want(ind.dims.begin(), ind.dims.end() - 1);
      want.insert(want.end(), data.dims.begin() + k, data.dims.end());
      bool ok = int(want.size()) == upd.rank();
      for (size_t i = 0; ok && i < want.size(); ++i) ok = !want[i].known_different(upd.dims[i]);
      if (!ok)
        ctx.fail("updates " + upd.to_string() + " must have shape " + ir::Shape(want).to_string() +
                 " (indices[:-1] + data[k:])");
    }
  }
  check_reduction_type(ctx, reduction_of(ctx), ctx.input_dtype(0));
  ctx.set_output(0, ctx.input_dtype(0), data);
}

void run_scatter_nd(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  const Tensor& upd = ctx.input(2);
  Tensor& out = ctx.output(0);
  Reduction red = reduction_of(ctx);
  out.copy_from(data);
  const Dims& dd = data.dims();
  size_t k = size_t(ind.dims().back());
  int64_t tuples = product(ind.dims(), 0, ind.dims().size() - 1);
  int64_t slice = product(dd, k, dd.size());
  auto strides = strides_of(dd);
  const int64_t* ip = ind.data<int64_t>();
  dispatch_all(data.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* u = upd.data<T>();
    T* dst = out.data<T>();
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = 0;
      for (size_t j = 0; j < k; ++j)
        off += checked_index(ctx, ip[t * int64_t(k) + int64_t(j)], dd[j], "index") * strides[j];
      for (int64_t e = 0; e < slice; ++e) apply(red, dst[off + e], u[t * slice + e]);
    }
  });
}

// ---- OneHot ----------------------------------------------------------------------------------

void infer_one_hot(InferContext& ctx) {
  const ir::Shape& ind = ctx.input_shape(0);
  const ir::Shape& vals = ctx.input_shape(2);
  if (auto n = vals.num_elements(); n && *n != 2)
    ctx.fail("values must hold two elements [off_value, on_value], got " + vals.to_string());
  DType dt = ctx.input_dtype(2);
  if (!ind.has_rank) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  int r = ind.rank();
  int64_t axis = ctx.attr_int("axis", -1);
  if (axis < -r - 1 || axis > r)
    ctx.fail("axis " + std::to_string(axis) + " is out of range [" + std::to_string(-r - 1) + ", " +
             std::to_string(r) + "]");
  if (axis < 0) axis += r + 1;
  Dim depth = ctx.fresh_dim();
  if (const Tensor* d = ctx.input_value(1)) {
    if (d->numel() != 1)
      ctx.fail("depth must be a scalar, got " + dims_to_string(d->dims()),
               ErrorCode::kInvalidArgument);
    int64_t v = int64_t(d->element_as_double(0));
    if (v < 1)
      ctx.fail("depth must be positive, got " + std::to_string(v), ErrorCode::kInvalidArgument);
    depth = Dim::constant(v);
  } else if (auto dv = ctx.input_dims_value(1); dv && dv->size() == 1) {
    depth = (*dv)[0];
  }
  std::vector<Dim> dims = ind.dims;
  dims.insert(dims.begin() + axis, depth);
  ctx.set_output(0, dt, ir::Shape(std::move(dims)));
}

void run_one_hot(KernelContext& ctx) {
  const Tensor& ind = ctx.input(0);
  const Tensor& vals = ctx.input(2);
  Tensor& out = ctx.output(0);
  int r = ind.rank();
  int64_t axis = ctx.attr_int("axis", -1);
  if (axis < 0) axis += r + 1;
  int64_t depth = out.dim(int(axis));
  int64_t outer = product(ind.dims(), 0, size_t(axis));
  int64_t inner = product(ind.dims(), size_t(axis), ind.dims().size());
  dispatch_all(vals.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* v = vals.data<T>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = v[0];
    for (int64_t a = 0; a < outer; ++a) {
      for (int64_t b = 0; b < inner; ++b) {
        int64_t k = dtype_is_float(ind.dtype()) ? int64_t(ind.element_as_double(a * inner + b))
                                                : ind.element_as_int(a * inner + b);
        if (k < -depth || k >= depth) continue;  // out of range: all off_value
        if (k < 0) k += depth;
        o[(a * depth + k) * inner + b] = v[1];
      }
    }
  });
}

// ---- NonZero, Compress -----------------------------------------------------------------------

void infer_non_zero(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  if (ctx.input_dtype(0) == DType::kString) ctx.unsupported("string input is not supported");
  Dim rank = in.has_rank ? Dim::constant(std::max(in.rank(), 1)) : ctx.fresh_dim();
  ctx.set_output(0, DType::kI64, ir::Shape({rank, ctx.fresh_dim()}));
}

void run_non_zero(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  std::vector<int64_t> hits;  // flat positions of the non-zero elements
  dispatch_all(in.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, std::string>) {
      ctx.unsupported("string input is not supported");
    } else {
      const T* p = in.data<T>();
      for (int64_t i = 0; i < in.numel(); ++i)
        if (to_compute(p[i]) != Compute<T>(0)) hits.push_back(i);
    }
  });
  // A scalar counts as a 1-element 1-d tensor (numpy's behaviour).
  Dims dims = in.rank() == 0 ? Dims{1} : in.dims();
  int64_t n = int64_t(hits.size());
  Tensor& out = ctx.output(0, DType::kI64, {int64_t(dims.size()), n});
  int64_t* o = out.data<int64_t>();
  auto strides = strides_of(dims);
  for (int64_t j = 0; j < n; ++j) {
    int64_t rest = hits[size_t(j)];
    for (size_t d = 0; d < dims.size(); ++d) {
      o[int64_t(d) * n + j] = rest / strides[d];
      rest %= strides[d];
    }
  }
}

// Number of selected slices: true entries of `cond` among the first `len` (the axis length).
int64_t compress_count(const NodeAttrs& ctx, const Tensor& cond, int64_t len) {
  int64_t n = 0;
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (cond.element_as_int(i) == 0) continue;
    if (i >= len)
      ctx.fail("condition selects index " + std::to_string(i) + " beyond the axis length " +
                   std::to_string(len),
               ErrorCode::kInvalidArgument);
    ++n;
  }
  return n;
}

void infer_compress(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  const ir::Shape& cond = ctx.input_shape(1);
  DType dt = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != DType::kBool) ctx.fail("condition must be bool");
  if (cond.has_rank && cond.rank() != 1) ctx.fail("condition must be 1-d, got " + cond.to_string());
  if (!in.has_rank) {
    ctx.set_output(0, dt,
                   ctx.has_attr("axis") ? ir::Shape::unranked() : ir::Shape({ctx.fresh_dim()}));
    return;
  }
  std::vector<Dim> dims;
  int axis = -1;
  if (ctx.has_attr("axis")) {
    axis = normalize_axis(ctx, ctx.attr_int("axis", 0), in.rank());
    dims = in.dims;
  } else {
    dims = {Dim::unknown()};
  }
  Dim len = axis >= 0 ? in.dims[size_t(axis)] : Dim::unknown();
  if (axis < 0) {
    Dim p = Dim::constant(1);
    for (const auto& d : in.dims) p = dim_mul(p, d);
    len = p;
  }
  Dim count = ctx.fresh_dim();
  if (const Tensor* c = ctx.input_value(1); c && len.is_const())
    count = Dim::constant(compress_count(ctx, *c, len.value));
  dims[size_t(std::max(axis, 0))] = count;
  ctx.set_output(0, dt, ir::Shape(std::move(dims)));
}

void run_compress(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  const Tensor& cond = ctx.input(1);
  Dims d = in.dims();
  int axis = 0;
  if (ctx.has_attr("axis")) {
    axis = normalize_axis(ctx, ctx.attr_int("axis", 0), in.rank());
  } else {
    d = {in.numel()};
  }
  int64_t outer = product(d, 0, size_t(axis));
  int64_t len = d[size_t(axis)];
  int64_t inner = product(d, size_t(axis) + 1, d.size());
  int64_t count = compress_count(ctx, cond, len);
  Dims od = d;
  od[size_t(axis)] = count;
  Tensor& out = ctx.output(0, in.dtype(), od);
  int64_t dst = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < std::min(len, cond.numel()); ++i)
      if (cond.element_as_int(i) != 0) {
        copy_elements(in, (o * len + i) * inner, out, dst, inner);
        dst += inner;
      }
}

}  // namespace

void register_index_ops(Registry& r) {
  r.add({"", "Gather", 1, PatternKind::kInjective, infer_gather, run_gather});
  r.add({"", "GatherElements", 11, PatternKind::kInjective, infer_gather_elements,
         run_gather_elements});
  r.add({"", "GatherND", 11, PatternKind::kInjective, infer_gather_nd, run_gather_nd});
  r.add({"", "Scatter", 9, PatternKind::kOpaque, infer_scatter_elements, run_scatter_elements});
  r.add({"", "ScatterElements", 11, PatternKind::kOpaque, infer_scatter_elements,
         run_scatter_elements});
  r.add({"", "ScatterND", 11, PatternKind::kOpaque, infer_scatter_nd, run_scatter_nd});
  r.add({"", "OneHot", 9, PatternKind::kOpaque, infer_one_hot, run_one_hot});
  r.add({"", "NonZero", 9, PatternKind::kOpaque, infer_non_zero, run_non_zero});
  r.add({"", "Compress", 9, PatternKind::kOpaque, infer_compress, run_compress});
}

}  // namespace kiln::kernels
