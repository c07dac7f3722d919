// Shared helpers of the reference kernels.
#include "kernels/ref/common.h"

#include <limits>

#include <algorithm>

namespace kiln::kernels {

std::vector<int64_t> strides_of(const Dims& dims) {
  num_elements(dims);  // throws kInvalidArgument when the element count overflows
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = int(dims.size()) - 2; i >= 0; --i)
    s[size_t(i)] = s[size_t(i) + 1] * dims[size_t(i) + 1];
  return s;
}

Dims broadcast_dims(const NodeAttrs& ctx, const Dims& a, const Dims& b) {
  size_t r = std::max(a.size(), b.size());
  Dims out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      ctx.fail("shapes " + dims_to_string(a) + " and " + dims_to_string(b) + " cannot be broadcast",
               ErrorCode::kInvalidArgument);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> broadcast_strides(const Dims& in, size_t out_rank) {
  std::vector<int64_t> s(out_rank, 0);
  auto own = strides_of(in);
  size_t off = out_rank - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = in[i] == 1 ? 0 : own[i];
  return s;
}

BroadcastWalker::BroadcastWalker(const Dims& out, const std::vector<Dims>& inputs)
    : out_(out), index_(out.size(), 0), offsets_(inputs.size(), 0), size_(num_elements(out)) {
  for (const auto& in : inputs) strides_.push_back(broadcast_strides(in, out.size()));
}

void BroadcastWalker::next() {
  for (int d = int(out_.size()) - 1; d >= 0; --d) {
    size_t du = size_t(d);
    if (++index_[du] < out_[du]) {
      for (size_t k = 0; k < offsets_.size(); ++k) offsets_[k] += strides_[k][du];
      return;
    }
    index_[du] = 0;
    for (size_t k = 0; k < offsets_.size(); ++k) offsets_[k] -= strides_[k][du] * (out_[du] - 1);
  }
}

ir::Shape broadcast_shapes(const NodeAttrs& ctx, const std::vector<ir::Shape>& shapes) {
  size_t r = 0;
  for (const auto& s : shapes) {
    if (!s.has_rank) return ir::Shape::unranked();
    r = std::max(r, size_t(s.rank()));
  }
  std::vector<ir::Dim> out(r, ir::Dim::constant(1));
  for (const auto& s : shapes) {
    size_t off = r - size_t(s.rank());
    for (size_t i = 0; i < size_t(s.rank()); ++i) {
      const ir::Dim& d = s.dims[i];
      ir::Dim& o = out[off + i];
      if (d.is_const() && d.value == 1) continue;
      if (o.is_const() && o.value == 1) {
        o = d;
      } else if (d.known_different(o)) {
        std::string all;
        for (const auto& sh : shapes) all += (all.empty() ? "" : " and ") + sh.to_string();
        ctx.fail("shapes " + all + " cannot be broadcast (dim " + std::to_string(off + i) + ")");
      } else if (o.is_const()) {
        // keep the constant: a symbol here must equal it (or be 1)
      } else if (d.is_const()) {
        o = d;
      } else if (!o.known_equal(d)) {
        // Two different symbols (or unknowns): the result is one of them or the other; unknown.
        o = ir::Dim::unknown();
      }
    }
  }
  return ir::Shape(std::move(out));
}

int normalize_axis(const NodeAttrs& ctx, int64_t axis, int rank) {
  if (axis < -rank || axis >= std::max(rank, 1) || (rank == 0 && axis != 0 && axis != -1))
    ctx.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return int(axis < 0 ? axis + rank : axis);
}

std::vector<int> normalize_axes(const NodeAttrs& ctx, const std::vector<int64_t>& axes, int rank) {
  std::vector<int> out;
  for (int64_t a : axes) {
    int n = normalize_axis(ctx, a, rank);
    for (int o : out)
      if (o == n) ctx.fail("axis " + std::to_string(a) + " is repeated");
    out.push_back(n);
  }
  return out;
}

ir::Shape to_shape(const Dims& d) { return ir::Shape::of(d); }

void infer_same_as_input0(InferContext& ctx) {
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
}

std::vector<double> to_doubles(const NodeAttrs& ctx, const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  dispatch_float(t.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = double(to_compute(p[i]));
  });
  return v;
}

void store_doubles(const NodeAttrs& ctx, const std::vector<double>& v, const Tensor& t) {
  if (int64_t(v.size()) != t.numel())
    throw Error(ErrorCode::kInternal, "store_doubles size mismatch");
  dispatch_numeric(t.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = from_compute<T>(Compute<T>(v[i]));
  });
}

void copy_elements(const Tensor& src, int64_t src_offset, const Tensor& dst, int64_t dst_offset,
                   int64_t count) {
  if (count <= 0) return;
  if (src_offset < 0 || dst_offset < 0 || src_offset + count > src.numel() ||
      dst_offset + count > dst.numel() || src.dtype() != dst.dtype())
    throw Error(ErrorCode::kInternal, "copy_elements out of range");
  if (src.dtype() == DType::kString) {
    const auto* s = src.data<std::string>() + src_offset;
    auto* d = dst.data<std::string>() + dst_offset;
    for (int64_t i = 0; i < count; ++i) d[i] = s[i];
    return;
  }
  size_t es = dtype_size(src.dtype());
  std::memmove(static_cast<char*>(dst.raw_data()) + size_t(dst_offset) * es,
               static_cast<const char*>(src.raw_data()) + size_t(src_offset) * es,
               size_t(count) * es);
}

std::pair<int64_t, int64_t> slice_range(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return {start, end > start ? (end - start - 1) / step + 1 : 0};
  }
  if (dim == 0) return {0, 0};
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  // -INT64_MIN overflows; any step that large takes one element anyway.
  int64_t back =
      step == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -step;
  return {start, start > end ? (start - end - 1) / back + 1 : 0};
}

}  // namespace kiln::kernels
