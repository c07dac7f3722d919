// Data-movement ops, part 3: Trilu, DepthToSpace, SpaceToDepth, ReverseSequence, Unique and
// Col2Im.
//
// DepthToSpace and SpaceToDepth are a reshape to 6-d, a transpose and a reshape back, exactly as
// the ONNX spec defines them. Unique's output sizes depend on the data: shape inference gives
// them a fresh symbol (shared by Y, indices and counts) and the kernel allocates them.
#include <algorithm>
#include <numeric>

#include "kernels/ref/movement_util.h"

namespace kiln::kernels {
namespace {

using movement::dims_product;

void require_rank(const NodeAttrs& ctx, const ir::Shape& s, int min_rank, int max_rank) {
  if (s.has_rank && (s.rank() < min_rank || s.rank() > max_rank))
    ctx.fail(
        "input has rank " + std::to_string(s.rank()) + ", expected " +
        (min_rank == max_rank ? std::to_string(min_rank) : "at least " + std::to_string(min_rank)));
}

// ---- Trilu -----------------------------------------------------------------------------------

void infer_trilu(InferContext& ctx) {
  require_rank(ctx, ctx.input_shape(0), 2, 1 << 20);
  infer_same_as_input0(ctx);
}

void run_trilu(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) ctx.fail("input has rank " + std::to_string(x.rank()) + ", expected >= 2");
  int64_t k = 0;
  if (ctx.has_input(1)) {
    const Tensor& kt = ctx.input(1);
    if (kt.numel() != 1 || !dtype_is_int(kt.dtype()))
      ctx.fail("k must be a single int64", ErrorCode::kInvalidArgument);
    k = kt.element_as_int(0);
  }
  bool upper = ctx.attr_int("upper", 1) != 0;
  int64_t rows = x.dims()[size_t(x.rank() - 2)], cols = x.dims()[size_t(x.rank() - 1)];
  int64_t mats = dims_product(x.dims(), 0, size_t(x.rank() - 2));
  const Tensor& y = ctx.output(0, x.dtype(), x.dims());
  dispatch_all(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* s = x.data<T>();
    T* d = y.data<T>();
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          int64_t o = (m * rows + i) * cols + j;
          bool keep = upper ? j - i >= k : j - i <= k;
          d[o] = keep ? s[o] : T{};
        }
  });
}

// ---- DepthToSpace / SpaceToDepth -------------------------------------------------------------

int64_t blocksize(const NodeAttrs& ctx) {
  int64_t b = ctx.required_int("blocksize");
  if (b < 1) ctx.fail("blocksize must be positive, got " + std::to_string(b));
  // blocksize^2 must not overflow: no tensor has 2^31 channels per block row.
  if (b > (int64_t(1) << 31)) ctx.fail("blocksize " + std::to_string(b) + " is out of range");
  return b;
}

bool crd_mode(const NodeAttrs& ctx) {
  std::string mode = ctx.opset() >= 11 ? ctx.attr_string("mode", "DCR") : "DCR";
  if (mode != "DCR" && mode != "CRD") ctx.fail("mode must be DCR or CRD, got '" + mode + "'");
  return mode == "CRD";
}

void infer_depth_to_space(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  require_rank(ctx, in, 4, 4);
  int64_t b = blocksize(ctx);
  crd_mode(ctx);
  if (!in.has_rank) {
    ctx.set_output(0, ctx.input_dtype(0), ir::Shape(std::vector<ir::Dim>(4)));
    return;
  }
  ir::Dim bb = ir::Dim::constant(b * b), bd = ir::Dim::constant(b);
  const ir::Dim& c = in.dims[1];
  if (c.is_const() && c.value % (b * b) != 0)
    ctx.fail("channels " + std::to_string(c.value) + " are not divisible by blocksize^2 " +
             std::to_string(b * b));
  ctx.set_output(0, ctx.input_dtype(0),
                 ir::Shape({in.dims[0], ir::dim_div(c, bb), ir::dim_mul(in.dims[2], bd),
                            ir::dim_mul(in.dims[3], bd)}));
}

void run_depth_to_space(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t b = blocksize(ctx);
  if (x.rank() != 4 || x.dims()[1] % (b * b) != 0)
    ctx.fail("input " + dims_to_string(x.dims()) + " must be 4-d with channels divisible by " +
                 std::to_string(b * b),
             ErrorCode::kInvalidArgument);
  int64_t n = x.dims()[0], c = x.dims()[1] / (b * b), h = x.dims()[2], w = x.dims()[3];
  const Tensor& y = ctx.output(0, x.dtype(), {n, c, h * b, w * b});
  if (crd_mode(ctx)) {
    movement::transpose_into(ctx, x, {n, c, b, b, h, w}, {0, 1, 4, 2, 5, 3}, y);
  } else {
    movement::transpose_into(ctx, x, {n, b, b, c, h, w}, {0, 3, 4, 1, 5, 2}, y);
  }
}

void infer_space_to_depth(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  require_rank(ctx, in, 4, 4);
  int64_t b = blocksize(ctx);
  if (!in.has_rank) {
    ctx.set_output(0, ctx.input_dtype(0), ir::Shape(std::vector<ir::Dim>(4)));
    return;
  }
  for (int d = 2; d < 4; ++d)
    if (in.dims[size_t(d)].is_const() && in.dims[size_t(d)].value % b != 0)
      ctx.fail("spatial dim " + std::to_string(d) + " (" + in.dims[size_t(d)].to_string() +
               ") is not divisible by blocksize " + std::to_string(b));
  ir::Dim bd = ir::Dim::constant(b);
  ctx.set_output(0, ctx.input_dtype(0),
                 ir::Shape({in.dims[0], ir::dim_mul(in.dims[1], ir::Dim::constant(b * b)),
                            ir::dim_div(in.dims[2], bd), ir::dim_div(in.dims[3], bd)}));
}

void run_space_to_depth(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t b = blocksize(ctx);
  if (x.rank() != 4 || x.dims()[2] % b != 0 || x.dims()[3] % b != 0)
    ctx.fail("input " + dims_to_string(x.dims()) + " must be 4-d with H and W divisible by " +
                 std::to_string(b),
             ErrorCode::kInvalidArgument);
  int64_t n = x.dims()[0], c = x.dims()[1], h = x.dims()[2] / b, w = x.dims()[3] / b;
  const Tensor& y = ctx.output(0, x.dtype(), {n, c * b * b, h, w});
  movement::transpose_into(ctx, x, {n, c, h, b, w, b}, {0, 3, 5, 1, 2, 4}, y);
}

// ---- ReverseSequence -------------------------------------------------------------------------

std::pair<int, int> time_batch_axes(const NodeAttrs& ctx) {
  int64_t t = ctx.attr_int("time_axis", 0), b = ctx.attr_int("batch_axis", 1);
  if (!((t == 0 && b == 1) || (t == 1 && b == 0)))
    ctx.fail("time_axis and batch_axis must be 0 and 1 in some order, got " + std::to_string(t) +
             " and " + std::to_string(b));
  return {int(t), int(b)};
}

void infer_reverse_sequence(InferContext& ctx) {
  const ir::Shape& in = ctx.input_shape(0);
  require_rank(ctx, in, 2, 1 << 20);
  int b = time_batch_axes(ctx).second;
  const ir::Shape& lens = ctx.input_shape(1);
  if (lens.has_rank &&
      (lens.rank() != 1 || (in.has_rank && lens.dims[0].known_different(in.dims[size_t(b)]))))
    ctx.fail("sequence_lens has shape " + lens.to_string() + ", expected [batch] of input " +
             in.to_string());
  infer_same_as_input0(ctx);
}

void run_reverse_sequence(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& lens = ctx.input(1);
  auto [t_axis, b_axis] = time_batch_axes(ctx);
  if (x.rank() < 2) ctx.fail("input must have rank >= 2");
  int64_t steps = x.dims()[size_t(t_axis)], batch = x.dims()[size_t(b_axis)];
  if (lens.rank() != 1 || lens.numel() != batch || !dtype_is_int(lens.dtype()))
    ctx.fail("sequence_lens must be an int tensor of shape [" + std::to_string(batch) + "]",
             ErrorCode::kInvalidArgument);
  int64_t inner = dims_product(x.dims(), 2, x.dims().size());
  const Tensor& y = ctx.output(0, x.dtype(), x.dims());
  auto offset = [&](int64_t t, int64_t b) {
    return (t_axis == 0 ? t * batch + b : b * steps + t) * inner;
  };
  for (int64_t b = 0; b < batch; ++b) {
    int64_t len = lens.element_as_int(b);
    if (len < 0 || len > steps)
      ctx.fail("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len) +
                   " is outside [0, " + std::to_string(steps) + "]",
               ErrorCode::kInvalidArgument);
    for (int64_t t = 0; t < steps; ++t) {
      int64_t src = t < len ? len - 1 - t : t;
      copy_elements(x, offset(src, b), y, offset(t, b), inner);
    }
  }
}

// ---- Unique ----------------------------------------------------------------------------------

void infer_unique(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  const ir::Shape& in = ctx.input_shape(0);
  ir::Dim u = ctx.fresh_dim();
  ir::Dim items;  // the number of elements (no axis) or of slices along the axis
  if (ctx.has_attr("axis")) {
    if (!in.has_rank) {
      ctx.set_output(0, dt, ir::Shape::unranked());
    } else {
      int axis = normalize_axis(ctx, ctx.attr_int("axis", 0), in.rank());
      if (in.rank() == 0) ctx.fail("axis needs an input of rank >= 1");
      std::vector<ir::Dim> y = in.dims;
      y[size_t(axis)] = u;
      items = in.dims[size_t(axis)];
      ctx.set_output(0, dt, ir::Shape(std::move(y)));
    }
  } else {
    ctx.set_output(0, dt, ir::Shape({u}));
    if (auto n = in.num_elements()) items = ir::Dim::constant(*n);
  }
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kI64, ir::Shape({u}));
  if (ctx.num_outputs() > 2) ctx.set_output(2, DType::kI64, ir::Shape({items}));
  if (ctx.num_outputs() > 3) ctx.set_output(3, DType::kI64, ir::Shape({u}));
}

template <class T>
int compare_values(const T& a, const T& b) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    float fa = float(a), fb = float(b);
    return fa < fb ? -1 : fb < fa ? 1 : 0;
  } else {
    return a < b ? -1 : b < a ? 1 : 0;
  }
}

void run_unique(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  bool sorted = ctx.attr_int("sorted", 1) != 0;
  // Items are slices along the axis: the input seen as [outer, items, inner]; without an axis
  // every element is an item.
  int64_t outer = 1, items = x.numel(), inner = 1;
  int axis = -1;
  if (ctx.has_attr("axis")) {
    if (x.rank() == 0) ctx.fail("axis needs an input of rank >= 1");
    axis = normalize_axis(ctx, ctx.attr_int("axis", 0), x.rank());
    outer = dims_product(x.dims(), 0, size_t(axis));
    items = x.dims()[size_t(axis)];
    inner = dims_product(x.dims(), size_t(axis) + 1, x.dims().size());
  }
  dispatch_all(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* s = x.data<T>();
    // Lexicographic comparison of two items in (outer, inner) order, as numpy.unique does.
    auto cmp = [&](int64_t a, int64_t b) {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < inner; ++k) {
          int c = compare_values<T>(s[(o * items + a) * inner + k], s[(o * items + b) * inner + k]);
          if (c != 0) return c;
        }
      return 0;
    };
    std::vector<int64_t> order(static_cast<size_t>(items));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
    // Groups of equal items in sorted order; stable sorting puts each group's first occurrence
    // first.
    std::vector<int64_t> first, count, group_of(static_cast<size_t>(items));
    for (size_t i = 0; i < order.size(); ++i) {
      if (i == 0 || cmp(order[i - 1], order[i]) != 0) {
        first.push_back(order[i]);
        count.push_back(0);
      }
      ++count.back();
      group_of[size_t(order[i])] = int64_t(first.size()) - 1;
    }
    // Output position of each group: sorted order, or order of first occurrence.
    size_t u = first.size();
    std::vector<int64_t> pos(u);
    std::iota(pos.begin(), pos.end(), 0);
    if (!sorted) {
      std::vector<int64_t> by_first(u);
      std::iota(by_first.begin(), by_first.end(), 0);
      std::sort(by_first.begin(), by_first.end(),
                [&](int64_t a, int64_t b) { return first[size_t(a)] < first[size_t(b)]; });
      for (size_t p = 0; p < u; ++p) pos[size_t(by_first[p])] = int64_t(p);
    }
    Dims ydims = axis < 0 ? Dims{int64_t(u)} : x.dims();
    if (axis >= 0) ydims[size_t(axis)] = int64_t(u);
    const Tensor& y = ctx.output(0, x.dtype(), ydims);
    T* yd = y.data<T>();
    for (size_t g = 0; g < u; ++g) {
      int64_t p = pos[g];
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < inner; ++k)
          yd[(o * int64_t(u) + p) * inner + k] = s[(o * items + first[g]) * inner + k];
    }
    if (ctx.num_outputs() > 1) {
      int64_t* d = ctx.output(1, DType::kI64, {int64_t(u)}).data<int64_t>();
      for (size_t g = 0; g < u; ++g) d[pos[g]] = first[g];
    }
    if (ctx.num_outputs() > 2) {
      int64_t* d = ctx.output(2, DType::kI64, {items}).data<int64_t>();
      for (int64_t i = 0; i < items; ++i) d[i] = pos[size_t(group_of[size_t(i)])];
    }
    if (ctx.num_outputs() > 3) {
      int64_t* d = ctx.output(3, DType::kI64, {int64_t(u)}).data<int64_t>();
      for (size_t g = 0; g < u; ++g) d[pos[g]] = count[g];
    }
  });
}

// ---- Col2Im ----------------------------------------------------------------------------------

struct Col2ImAttrs {
  std::vector<int64_t> dilations, pads, strides;
};

Col2ImAttrs col2im_attrs(const NodeAttrs& ctx, size_t nd) {
  Col2ImAttrs a{ctx.attr_ints("dilations", std::vector<int64_t>(nd, 1)),
                ctx.attr_ints("pads", std::vector<int64_t>(2 * nd, 0)),
                ctx.attr_ints("strides", std::vector<int64_t>(nd, 1))};
  if (a.dilations.size() != nd || a.strides.size() != nd || a.pads.size() != 2 * nd)
    ctx.fail("dilations, strides and pads must have " + std::to_string(nd) + ", " +
             std::to_string(nd) + " and " + std::to_string(2 * nd) + " entries");
  for (size_t i = 0; i < nd; ++i)
    if (a.dilations[i] < 1 || a.strides[i] < 1 || a.pads[i] < 0 || a.pads[nd + i] < 0)
      ctx.fail("dilations and strides must be positive and pads non-negative");
  return a;
}

void infer_col2im(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  const ir::Shape& in = ctx.input_shape(0);
  require_rank(ctx, in, 3, 3);
  auto image = ctx.input_dims_value(1);
  auto block = ctx.input_ints(2);
  std::optional<size_t> nd;
  if (image)
    nd = image->size();
  else if (block)
    nd = block->size();
  else if (ctx.input_shape(1).has_rank && ctx.input_shape(1).rank() == 1 &&
           ctx.input_shape(1).dims[0].is_const())
    nd = size_t(ctx.input_shape(1).dims[0].value);
  if (!nd) {
    ctx.set_output(0, dt, ir::Shape::unranked());
    return;
  }
  if (image && block && image->size() != block->size())
    ctx.fail("image_shape and block_shape must have the same length");
  col2im_attrs(ctx, *nd);
  std::vector<ir::Dim> out(2 + *nd);
  if (in.has_rank) {
    out[0] = in.dims[0];
    if (block) {
      int64_t kprod = 1;
      for (int64_t k : *block) {
        if (k < 1) ctx.fail("block_shape entries must be positive");
        kprod *= k;
      }
      if (in.dims[1].is_const() && in.dims[1].value % kprod != 0)
        ctx.fail("input dim 1 (" + in.dims[1].to_string() +
                 ") is not divisible by the block size " + std::to_string(kprod));
      out[1] = ir::dim_div(in.dims[1], ir::Dim::constant(kprod));
    }
  }
  if (image)
    for (size_t i = 0; i < *nd; ++i) out[2 + i] = (*image)[i];
  ctx.set_output(0, dt, ir::Shape(std::move(out)));
}

void run_col2im(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& image_t = ctx.input(1);
  const Tensor& block_t = ctx.input(2);
  size_t nd = size_t(image_t.numel());
  if (x.rank() != 3 || size_t(block_t.numel()) != nd || nd == 0)
    ctx.fail("input must be 3-d and image_shape/block_shape non-empty of equal length",
             ErrorCode::kInvalidArgument);
  Col2ImAttrs a = col2im_attrs(ctx, nd);
  Dims image(nd), block(nd), blocks(nd);
  int64_t kprod = 1, lprod = 1;
  for (size_t i = 0; i < nd; ++i) {
    image[i] = image_t.element_as_int(int64_t(i));
    block[i] = block_t.element_as_int(int64_t(i));
    if (image[i] < 0 || block[i] < 1)
      ctx.fail("image_shape must be non-negative and block_shape positive",
               ErrorCode::kInvalidArgument);
    int64_t span = a.dilations[i] * (block[i] - 1) + 1;
    int64_t padded = image[i] + a.pads[i] + a.pads[nd + i];
    blocks[i] = padded >= span ? (padded - span) / a.strides[i] + 1 : 0;
    if (__builtin_mul_overflow(kprod, block[i], &kprod) ||
        __builtin_mul_overflow(lprod, blocks[i], &lprod))
      ctx.fail("block_shape, image_shape and pads give more blocks than an int64 holds",
               ErrorCode::kInvalidArgument);
  }
  int64_t n = x.dims()[0];
  if (x.dims()[1] % kprod != 0 || x.dims()[2] != lprod)
    ctx.fail("input " + dims_to_string(x.dims()) + " does not match block_shape (product " +
                 std::to_string(kprod) + ") and the " + std::to_string(lprod) +
                 " block positions of image_shape",
             ErrorCode::kInvalidArgument);
  int64_t c = x.dims()[1] / kprod;
  Dims out{n, c};
  out.insert(out.end(), image.begin(), image.end());
  const Tensor& y = ctx.output(0, x.dtype(), out);
  int64_t image_size = num_elements(image);
  auto image_strides = strides_of(image);
  dispatch_numeric(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = Compute<T>;
    const T* s = x.data<T>();
    std::vector<C> acc(size_t(y.numel()), C(0));
    std::vector<int64_t> kidx(nd), lidx(nd);
    for (int64_t nc = 0; nc < n * c; ++nc) {
      C* img = acc.data() + nc * image_size;
      for (int64_t kk = 0; kk < kprod; ++kk) {
        // Multi-index of the element inside the block (row-major over block_shape).
        for (int64_t r = kk, i = int64_t(nd) - 1; i >= 0; --i) {
          kidx[size_t(i)] = r % block[size_t(i)];
          r /= block[size_t(i)];
        }
        const T* col = s + (nc * kprod + kk) * lprod;
        for (int64_t l = 0; l < lprod; ++l) {
          int64_t off = 0;
          bool inside = true;
          for (int64_t r = l, i = int64_t(nd) - 1; i >= 0; --i) {
            size_t iu = size_t(i);
            int64_t li = r % blocks[iu];
            r /= blocks[iu];
            int64_t p = li * a.strides[iu] - a.pads[iu] + kidx[iu] * a.dilations[iu];
            if (p < 0 || p >= image[iu]) inside = false;
            off += p * image_strides[iu];
          }
          if (inside) img[off] += to_compute(col[l]);
        }
      }
    }
    T* d = y.data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) d[i] = from_compute<T>(acc[size_t(i)]);
  });
}

}  // namespace

void register_movement_misc_ops(Registry& r) {
  r.add({"", "Trilu", 14, PatternKind::kInjective, infer_trilu, run_trilu});
  r.add({"", "DepthToSpace", 1, PatternKind::kInjective, infer_depth_to_space, run_depth_to_space});
  r.add({"", "SpaceToDepth", 1, PatternKind::kInjective, infer_space_to_depth, run_space_to_depth});
  r.add({"", "ReverseSequence", 10, PatternKind::kInjective, infer_reverse_sequence,
         run_reverse_sequence});
  r.add({"", "Unique", 11, PatternKind::kOpaque, infer_unique, run_unique});
  r.add({"", "Col2Im", 18, PatternKind::kOpaque, infer_col2im, run_col2im});
}

}  // namespace kiln::kernels
