// Linear algebra reference kernels: MatMul, Gemm, Einsum, MatMulInteger, QLinearMatMul.
//
// MatMul follows numpy.matmul: a 1-D operand is promoted to a matrix (a row for A, a column for
// B) and the promoted dim is dropped from the result; the leading (batch) dims broadcast. Every
// product is computed i-k-j (the innermost loop walks a contiguous output row) into an
// accumulator row of Acc<T>: float for f16/bf16/f32, double for f64, 64-bit for the integers, so
// integer sums wrap only when the result is cast back to the element type. The quantized ops
// subtract zero points into int32 operands first and reuse the same product.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

template <class T>
using Acc = std::conditional_t<kIsFloat<T>, Compute<T>,
                               std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

// The elements of a tensor as Acc<T>: borrowed when T already is its own accumulator type,
// converted once otherwise (so the hot loops never convert f16 or widen ints).
template <class T>
class AccData {
 public:
  using A = Acc<T>;
  explicit AccData(const Tensor& t) {
    const T* p = t.data<T>();
    if constexpr (std::is_same_v<T, A>) {
      ptr_ = p;
    } else {
      owned_.resize(size_t(t.numel()));
      for (int64_t i = 0; i < t.numel(); ++i) owned_[size_t(i)] = A(to_compute(p[i]));
      ptr_ = owned_.data();
    }
  }
  const A* get() const { return ptr_; }

 private:
  std::vector<A> owned_;
  const A* ptr_ = nullptr;
};

// out[M,N] += a[M,K] * b[K,N], where a(i,k) = a[i*a_rs + k*a_cs] and b(k,j) = b[k*b_rs + j*b_cs].
// Summation order is k ascending for every output element, whichever loop order is used.
template <class A>
void gemm_acc(int64_t M, int64_t N, int64_t K, const A* a, int64_t a_rs, int64_t a_cs, const A* b,
              int64_t b_rs, int64_t b_cs, A* out) {
  if (b_cs != 1 && b_rs == 1) {
    // B transposed: each output element is a dot product of contiguous rows.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        A s = out[i * N + j];
        const A* brow = b + j * b_cs;
        for (int64_t k = 0; k < K; ++k) s += a[i * a_rs + k * a_cs] * brow[k];
        out[i * N + j] = s;
      }
    return;
  }
  for (int64_t i = 0; i < M; ++i) {
    A* row = out + i * N;
    for (int64_t k = 0; k < K; ++k) {
      const A av = a[i * a_rs + k * a_cs];
      const A* brow = b + k * b_rs;
      if (b_cs == 1) {
        for (int64_t j = 0; j < N; ++j) row[j] += av * brow[j];
      } else {
        for (int64_t j = 0; j < N; ++j) row[j] += av * brow[j * b_cs];
      }
    }
  }
}

// ---- MatMul shapes ---------------------------------------------------------------------------

// Concrete numpy.matmul geometry of two operands.
struct MatMulGeom {
  int64_t M = 1, N = 1, K = 1;
  Dims a_batch, b_batch, batch;  // batch dims of each operand and their broadcast
  Dims out;
};

MatMulGeom matmul_geom(const NodeAttrs& ctx, const Dims& a, const Dims& b) {
  if (a.empty() || b.empty()) ctx.fail("MatMul operands must have rank >= 1 (got a scalar)");
  MatMulGeom g;
  Dims a2 = a.size() == 1 ? Dims{1, a[0]} : a;
  Dims b2 = b.size() == 1 ? Dims{b[0], 1} : b;
  g.M = a2[a2.size() - 2];
  g.K = a2[a2.size() - 1];
  g.N = b2[b2.size() - 1];
  if (b2[b2.size() - 2] != g.K)
    ctx.fail("MatMul inner dims differ: A is " + dims_to_string(a) + ", B is " + dims_to_string(b),
             ErrorCode::kInvalidArgument);
  g.a_batch.assign(a2.begin(), a2.end() - 2);
  g.b_batch.assign(b2.begin(), b2.end() - 2);
  g.batch = broadcast_dims(ctx, g.a_batch, g.b_batch);
  g.out = g.batch;
  if (a.size() > 1) g.out.push_back(g.M);
  if (b.size() > 1) g.out.push_back(g.N);
  return g;
}

// Symbolic output shape of numpy.matmul; unranked when an operand's rank is unknown.
ir::Shape matmul_shape(const NodeAttrs& ctx, const ir::Shape& a, const ir::Shape& b) {
  if (!a.has_rank || !b.has_rank) return ir::Shape::unranked();
  if (a.rank() == 0 || b.rank() == 0)
    ctx.fail("MatMul operands must have rank >= 1 (got a scalar)");
  std::vector<ir::Dim> a2 = a.dims, b2 = b.dims;
  if (a.rank() == 1) a2.insert(a2.begin(), ir::Dim::constant(1));
  if (b.rank() == 1) b2.push_back(ir::Dim::constant(1));
  const ir::Dim& ka = a2[a2.size() - 1];
  const ir::Dim& kb = b2[b2.size() - 2];
  if (ka.known_different(kb))
    ctx.fail("MatMul inner dims differ: A is " + a.to_string() + ", B is " + b.to_string());
  ir::Shape batch =
      broadcast_shapes(ctx, {ir::Shape(std::vector<ir::Dim>(a2.begin(), a2.end() - 2)),
                             ir::Shape(std::vector<ir::Dim>(b2.begin(), b2.end() - 2))});
  std::vector<ir::Dim> out = batch.dims;
  if (a.rank() > 1) out.push_back(a2[a2.size() - 2]);
  if (b.rank() > 1) out.push_back(b2[b2.size() - 1]);
  return ir::Shape(std::move(out));
}

// Batched product of two Acc arrays laid out as g describes; calls emit(batch, acc_matrix).
template <class A, class Emit>
void batched_matmul(const MatMulGeom& g, const A* a, const A* b, Emit&& emit) {
  const int64_t mn = g.M * g.N;
  std::vector<A> acc(static_cast<size_t>(mn));
  BroadcastWalker w(g.batch, {g.a_batch, g.b_batch});
  for (int64_t bi = 0; bi < w.size(); ++bi, w.next()) {
    std::fill(acc.begin(), acc.end(), A(0));
    gemm_acc<A>(g.M, g.N, g.K, a + w.offset(0) * g.M * g.K, g.K, 1, b + w.offset(1) * g.K * g.N,
                g.N, 1, acc.data());
    emit(bi, acc.data());
  }
}

void infer_matmul(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t)
    ctx.fail(std::string("MatMul operands have different types ") + dtype_name(t) + " and " +
             dtype_name(ctx.input_dtype(1)));
  ctx.set_output(0, t, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(1)));
}

void run_matmul(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype()) ctx.fail("MatMul operands have different types");
  MatMulGeom g = matmul_geom(ctx, a.dims(), b.dims());
  Tensor& y = ctx.output(0, a.dtype(), g.out);
  dispatch_numeric(a.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = Acc<T>;
    AccData<T> ad(a), bd(b);
    T* yp = y.data<T>();
    const int64_t mn = g.M * g.N;
    batched_matmul<A>(g, ad.get(), bd.get(), [&](int64_t bi, const A* acc) {
      for (int64_t i = 0; i < mn; ++i) yp[bi * mn + i] = from_compute<T>(acc[i]);
    });
  });
}

// ---- Gemm --------------------------------------------------------------------------------------

void infer_gemm(InferContext& ctx) {
  DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t) ctx.fail("Gemm inputs A and B have different types");
  const ir::Shape& a = ctx.input_shape(0);
  const ir::Shape& b = ctx.input_shape(1);
  bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  if ((a.has_rank && a.rank() != 2) || (b.has_rank && b.rank() != 2))
    ctx.fail("Gemm needs 2-D A and B, got " + a.to_string() + " and " + b.to_string());
  if (!ctx.has_input(2) && ctx.opset() < 11) ctx.fail("Gemm needs input C before opset 11");
  ir::Dim m = ir::Dim::unknown(), ka = ir::Dim::unknown(), kb = ir::Dim::unknown(),
          n = ir::Dim::unknown();
  if (a.has_rank) {
    m = a.dims[ta ? 1 : 0];
    ka = a.dims[ta ? 0 : 1];
  }
  if (b.has_rank) {
    kb = b.dims[tb ? 1 : 0];
    n = b.dims[tb ? 0 : 1];
  }
  if (ka.known_different(kb))
    ctx.fail("Gemm inner dims differ: A is " + a.to_string() + (ta ? " (transposed)" : "") +
             ", B is " + b.to_string() + (tb ? " (transposed)" : ""));
  if (ctx.has_input(2)) {
    if (ctx.input_dtype(2) != t) ctx.fail("Gemm input C has a different type than A");
    const ir::Shape& c = ctx.input_shape(2);
    if (c.has_rank) {
      if (c.rank() > 2) ctx.fail("Gemm input C must have rank <= 2, got " + c.to_string());
      std::vector<ir::Dim> target{m, n};
      for (int i = 0; i < c.rank(); ++i) {
        const ir::Dim& d = c.dims[size_t(i)];
        const ir::Dim& want = target[size_t(2 - c.rank() + i)];
        if (!(d.is_const() && d.value == 1) && d.known_different(want))
          ctx.fail("Gemm input C " + c.to_string() + " does not broadcast to (M,N) = [" +
                   want.to_string() + "]");
      }
    }
  }
  ctx.set_output(0, t, ir::Shape({m, n}));
}

void run_gemm(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.rank() != 2 || b.rank() != 2)
    ctx.fail("Gemm needs 2-D A and B, got " + dims_to_string(a.dims()) + " and " +
             dims_to_string(b.dims()));
  if (a.dtype() != b.dtype()) ctx.fail("Gemm inputs A and B have different types");
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const float alpha = ctx.attr_float("alpha", 1.0f), beta = ctx.attr_float("beta", 1.0f);
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const int64_t N = tb ? b.dim(0) : b.dim(1);
  if ((tb ? b.dim(1) : b.dim(0)) != K)
    ctx.fail("Gemm inner dims differ: A is " + dims_to_string(a.dims()) + ", B is " +
                 dims_to_string(b.dims()),
             ErrorCode::kInvalidArgument);
  const Tensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  std::vector<int64_t> c_strides{0, 0};
  if (c) {
    if (c->dtype() != a.dtype()) ctx.fail("Gemm input C has a different type than A");
    if (c->rank() > 2) ctx.fail("Gemm input C must have rank <= 2");
    Dims target{M, N};
    for (int i = 0; i < c->rank(); ++i) {
      int64_t d = c->dim(i);
      if (d != 1 && d != target[size_t(2 - c->rank() + i)])
        ctx.fail("Gemm input C " + dims_to_string(c->dims()) +
                     " does not broadcast to (M,N) = " + dims_to_string(target),
                 ErrorCode::kInvalidArgument);
    }
    c_strides = broadcast_strides(c->dims(), 2);
  }
  Tensor& y = ctx.output(0, a.dtype(), {M, N});
  dispatch_numeric(a.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = Acc<T>;
    AccData<T> ad(a), bd(b);
    std::vector<A> acc(size_t(M * N), A(0));
    gemm_acc<A>(M, N, K, ad.get(), ta ? 1 : K, ta ? M : 1, bd.get(), tb ? 1 : N, tb ? K : 1,
                acc.data());
    const T* cp = c ? c->data<T>() : nullptr;
    T* yp = y.data<T>();
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        A v = acc[size_t(i * N + j)];
        if constexpr (kIsFloat<T>) {
          A r = A(alpha) * v;
          if (cp) r += A(beta) * A(to_compute(cp[i * c_strides[0] + j * c_strides[1]]));
          yp[i * N + j] = from_compute<T>(r);
        } else {
          // Integer Gemm: scale in double, as numpy does with float alpha/beta.
          double r = double(alpha) * double(v);
          if (cp) r += double(beta) * double(cp[i * c_strides[0] + j * c_strides[1]]);
          yp[i * N + j] = static_cast<T>(r);
        }
      }
  });
}

// ---- Einsum ------------------------------------------------------------------------------------

// Labels: 'A'-'Z' are 0-25, 'a'-'z' 26-51 (so sorting ids is ASCII order, as numpy's implicit
// output does); the dims covered by "..." get ids kEllipsisBase + i, right-aligned.
constexpr int kEllipsisBase = 52;
constexpr int kEllipsisMark = -1;

struct EinsumEq {
  std::vector<std::vector<int>> inputs;  // per input: label ids, kEllipsisMark for "..."
  std::vector<int> output;               // explicit output, same encoding
  bool explicit_output = false;
};

EinsumEq parse_einsum(const NodeAttrs& ctx, const std::string& eq_raw) {
  std::string eq;
  for (char ch : eq_raw)
    if (ch != ' ') eq += ch;
  EinsumEq out;
  auto parse_term = [&](const std::string& term) {
    std::vector<int> labels;
    bool seen_ellipsis = false;
    for (size_t i = 0; i < term.size(); ++i) {
      char ch = term[i];
      if (ch == '.') {
        if (term.compare(i, 3, "...") != 0 || seen_ellipsis)
          ctx.fail("Einsum equation '" + eq_raw + "' has a malformed ellipsis");
        seen_ellipsis = true;
        labels.push_back(kEllipsisMark);
        i += 2;
      } else if (ch >= 'A' && ch <= 'Z') {
        labels.push_back(ch - 'A');
      } else if (ch >= 'a' && ch <= 'z') {
        labels.push_back(26 + ch - 'a');
      } else {
        ctx.fail("Einsum equation '" + eq_raw + "' has an invalid character '" +
                 std::string(1, ch) + "'");
      }
    }
    return labels;
  };
  size_t arrow = eq.find("->");
  std::string lhs = arrow == std::string::npos ? eq : eq.substr(0, arrow);
  if (arrow != std::string::npos) {
    out.explicit_output = true;
    out.output = parse_term(eq.substr(arrow + 2));
  }
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    out.inputs.push_back(parse_term(lhs.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// The equation with ellipses expanded for known input ranks: per input the label of each axis,
// and the output labels.
struct EinsumPlan {
  std::vector<std::vector<int>> inputs;
  std::vector<int> output;
  int ellipsis_rank = 0;
};

EinsumPlan plan_einsum(const NodeAttrs& ctx, const EinsumEq& eq, const std::vector<int>& ranks) {
  if (eq.inputs.size() != ranks.size())
    ctx.fail("Einsum equation has " + std::to_string(eq.inputs.size()) + " terms but there are " +
             std::to_string(ranks.size()) + " inputs");
  EinsumPlan p;
  std::vector<int> count(kEllipsisBase, 0);
  for (size_t i = 0; i < ranks.size(); ++i) {
    const auto& term = eq.inputs[i];
    int letters = 0;
    bool has_ellipsis = false;
    for (int l : term) {
      if (l == kEllipsisMark)
        has_ellipsis = true;
      else
        ++letters;
    }
    int e = ranks[i] - letters;
    if (e < 0 || (!has_ellipsis && e != 0))
      ctx.fail("Einsum term " + std::to_string(i) + " has " + std::to_string(letters) +
               " labels but input " + std::to_string(i) + " has rank " + std::to_string(ranks[i]));
    p.ellipsis_rank = std::max(p.ellipsis_rank, e);
  }
  for (size_t i = 0; i < ranks.size(); ++i) {
    const auto& term = eq.inputs[i];
    int letters = int(std::count_if(term.begin(), term.end(), [](int l) { return l >= 0; }));
    int e = ranks[i] - letters;
    std::vector<int> axes;
    for (int l : term) {
      if (l == kEllipsisMark) {
        for (int k = 0; k < e; ++k) axes.push_back(kEllipsisBase + p.ellipsis_rank - e + k);
      } else {
        axes.push_back(l);
        ++count[size_t(l)];
      }
    }
    p.inputs.push_back(std::move(axes));
  }
  if (eq.explicit_output) {
    std::vector<bool> used(size_t(kEllipsisBase + p.ellipsis_rank), false);
    for (int l : eq.output) {
      if (l == kEllipsisMark) {
        for (int k = 0; k < p.ellipsis_rank; ++k) p.output.push_back(kEllipsisBase + k);
        continue;
      }
      if (used[size_t(l)]) ctx.fail("Einsum output repeats a label");
      if (count[size_t(l)] == 0) ctx.fail("Einsum output has a label that no input has");
      used[size_t(l)] = true;
      p.output.push_back(l);
    }
  } else {
    for (int k = 0; k < p.ellipsis_rank; ++k) p.output.push_back(kEllipsisBase + k);
    for (int l = 0; l < kEllipsisBase; ++l)
      if (count[size_t(l)] == 1) p.output.push_back(l);
  }
  return p;
}

void infer_einsum(InferContext& ctx) {
  if (!ctx.has_attr("equation")) ctx.fail("Einsum needs the 'equation' attribute");
  EinsumEq eq = parse_einsum(ctx, ctx.attr_string("equation", ""));
  DType t = ctx.input_dtype(0);
  std::vector<int> ranks;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.input_dtype(i) != t) ctx.fail("Einsum inputs have different types");
    const ir::Shape& s = ctx.input_shape(i);
    if (!s.has_rank) {
      // Without an ellipsis the term fixes the rank; with one the output rank is unknown.
      if (size_t(i) < eq.inputs.size() &&
          std::find(eq.inputs[size_t(i)].begin(), eq.inputs[size_t(i)].end(), kEllipsisMark) ==
              eq.inputs[size_t(i)].end()) {
        ranks.push_back(int(eq.inputs[size_t(i)].size()));
      } else {
        ctx.set_output(0, t, ir::Shape::unranked());
        return;
      }
    } else {
      ranks.push_back(s.rank());
    }
  }
  EinsumPlan p = plan_einsum(ctx, eq, ranks);
  // Each label's dim: letters must agree exactly, ellipsis dims broadcast.
  std::vector<ir::Dim> dim(size_t(kEllipsisBase + p.ellipsis_rank), ir::Dim::unknown());
  std::vector<bool> set(dim.size(), false);
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    const ir::Shape& s = ctx.input_shape(int(i));
    for (size_t ax = 0; ax < p.inputs[i].size(); ++ax) {
      int l = p.inputs[i][ax];
      ir::Dim d = s.has_rank ? s.dims[ax] : ir::Dim::unknown();
      ir::Dim& cur = dim[size_t(l)];
      bool bcast = l >= kEllipsisBase;
      if (!set[size_t(l)]) {
        cur = d;
        set[size_t(l)] = true;
      } else if (bcast && d.is_const() && d.value == 1) {
        // stretches
      } else if (bcast && cur.is_const() && cur.value == 1) {
        cur = d;
      } else if (d.known_different(cur)) {
        ctx.fail("Einsum label dims differ: " + d.to_string() + " vs " + cur.to_string() +
                 " (input " + std::to_string(i) + ", axis " + std::to_string(ax) + ")");
      } else if (!cur.is_const() && d.is_const()) {
        cur = d;
      }
    }
  }
  std::vector<ir::Dim> out;
  for (int l : p.output) out.push_back(dim[size_t(l)]);
  ctx.set_output(0, t, ir::Shape(std::move(out)));
}

void run_einsum(KernelContext& ctx) {
  EinsumEq eq = parse_einsum(ctx, ctx.attr_string("equation", ""));
  const int n_in = ctx.num_inputs();
  std::vector<int> ranks;
  for (int i = 0; i < n_in; ++i) ranks.push_back(ctx.input(i).rank());
  EinsumPlan p = plan_einsum(ctx, eq, ranks);
  DType t = ctx.input(0).dtype();
  const size_t n_labels = size_t(kEllipsisBase + p.ellipsis_rank);
  std::vector<int64_t> size(n_labels, -1);
  for (int i = 0; i < n_in; ++i) {
    const Tensor& x = ctx.input(i);
    if (x.dtype() != t) ctx.fail("Einsum inputs have different types");
    for (size_t ax = 0; ax < p.inputs[size_t(i)].size(); ++ax) {
      int l = p.inputs[size_t(i)][ax];
      int64_t d = x.dim(int(ax));
      int64_t& cur = size[size_t(l)];
      if (cur < 0 || (l >= kEllipsisBase && cur == 1)) {
        cur = d;
      } else if (d != cur && !(l >= kEllipsisBase && d == 1)) {
        ctx.fail("Einsum label dims differ: " + std::to_string(d) + " vs " + std::to_string(cur) +
                     " (input " + std::to_string(i) + ", axis " + std::to_string(ax) + ")",
                 ErrorCode::kInvalidArgument);
      }
    }
  }
  // Loop labels: output labels (outer), then the summed labels.
  std::vector<int> loop = p.output;
  std::vector<bool> in_out(n_labels, false);
  for (int l : p.output) in_out[size_t(l)] = true;
  for (size_t l = 0; l < n_labels; ++l)
    if (size[l] >= 0 && !in_out[l]) loop.push_back(int(l));
  Dims out_dims;
  for (int l : p.output) out_dims.push_back(size[size_t(l)]);
  int64_t n_sum = 1;
  for (size_t k = p.output.size(); k < loop.size(); ++k) n_sum *= size[size_t(loop[k])];
  // strides[i][k]: how input i's offset moves with loop label k (repeated labels add up: the
  // diagonal; a stretched ellipsis dim of 1 stays put).
  std::vector<std::vector<int64_t>> strides(size_t(n_in), std::vector<int64_t>(loop.size(), 0));
  for (int i = 0; i < n_in; ++i) {
    const Tensor& x = ctx.input(i);
    auto own = strides_of(x.dims());
    for (size_t ax = 0; ax < p.inputs[size_t(i)].size(); ++ax) {
      if (x.dim(int(ax)) == 1) continue;
      size_t k =
          size_t(std::find(loop.begin(), loop.end(), p.inputs[size_t(i)][ax]) - loop.begin());
      strides[size_t(i)][k] += own[ax];
    }
  }
  Tensor& y = ctx.output(0, t, out_dims);
  dispatch_numeric(t, ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = Acc<T>;
    std::vector<AccData<T>> data;
    data.reserve(size_t(n_in));
    for (int i = 0; i < n_in; ++i) data.emplace_back(ctx.input(i));
    T* yp = y.data<T>();
    const int64_t n_out = y.numel();
    if (n_sum == 0) {
      for (int64_t o = 0; o < n_out; ++o) yp[o] = from_compute<T>(A(0));
      return;
    }
    std::vector<int64_t> idx(loop.size(), 0), off(size_t(n_in), 0);
    for (int64_t o = 0; o < n_out; ++o) {
      A acc = A(0);
      for (int64_t s = 0; s < n_sum; ++s) {
        A prod = A(1);
        for (int i = 0; i < n_in; ++i) prod *= data[size_t(i)].get()[off[size_t(i)]];
        acc += prod;
        // Advance the odometer over all loop labels, last fastest.
        for (int k = int(loop.size()) - 1; k >= 0; --k) {
          size_t ku = size_t(k);
          if (++idx[ku] < size[size_t(loop[ku])]) {
            for (int i = 0; i < n_in; ++i) off[size_t(i)] += strides[size_t(i)][ku];
            break;
          }
          for (int i = 0; i < n_in; ++i) off[size_t(i)] -= strides[size_t(i)][ku] * (idx[ku] - 1);
          idx[ku] = 0;
        }
      }
      yp[o] = from_compute<T>(acc);
    }
  });
}

// ---- Quantized products ------------------------------------------------------------------------

// The dims a zero point or scale broadcasts with against its operand: a 1-D parameter is per
// row of A (row_wise) or per column of B, as the ONNX docs describe; otherwise numpy broadcast.
Dims param_dims(const Tensor& p, const Dims& target, bool row_wise) {
  if (p.numel() == 1) return {};
  if (p.rank() == 1 && target.size() >= 2) {
    if (row_wise && p.dim(0) == target[target.size() - 2]) return {p.dim(0), 1};
    if (!row_wise && p.dim(0) == target[target.size() - 1]) return {p.dim(0)};
  }
  return p.dims();
}

// The parameter's value (as double) for every element of the operand.
std::vector<double> expand_param(const NodeAttrs& ctx, const Tensor* p, const Dims& target,
                                 bool row_wise, const char* what) {
  std::vector<double> out(size_t(num_elements(target)), 0.0);
  if (!p) return out;
  Dims pd = param_dims(*p, target, row_wise);
  if (broadcast_dims(ctx, target, pd) != target)
    ctx.fail(std::string(what) + " of shape " + dims_to_string(p->dims()) +
                 " does not fit its operand " + dims_to_string(target),
             ErrorCode::kInvalidArgument);
  BroadcastWalker w(target, {pd});
  for (int64_t i = 0; i < w.size(); ++i, w.next())
    out[size_t(i)] = p->element_as_double(w.offset(0));
  return out;
}

// x - zero_point as int32 for an 8-bit operand.
std::vector<int64_t> centered(const NodeAttrs& ctx, const Tensor& x, const Tensor* zp,
                              bool row_wise, const char* what) {
  if (x.dtype() != DType::kU8 && x.dtype() != DType::kI8)
    ctx.unsupported(std::string(what) + " must be uint8 or int8, got " + dtype_name(x.dtype()));
  if (zp && zp->dtype() != x.dtype())
    ctx.fail(std::string(what) + " zero point type differs from its operand");
  auto z = expand_param(ctx, zp, x.dims(), row_wise, what);
  std::vector<int64_t> out(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i)
    out[size_t(i)] = x.element_as_int(i) - int64_t(z[size_t(i)]);
  return out;
}

void infer_matmul_integer(InferContext& ctx) {
  ctx.set_output(0, DType::kI32, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(1)));
}

void run_matmul_integer(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  MatMulGeom g = matmul_geom(ctx, a.dims(), b.dims());
  auto ac = centered(ctx, a, ctx.has_input(2) ? &ctx.input(2) : nullptr, true, "A");
  auto bc = centered(ctx, b, ctx.has_input(3) ? &ctx.input(3) : nullptr, false, "B");
  Tensor& y = ctx.output(0, DType::kI32, g.out);
  int32_t* yp = y.data<int32_t>();
  const int64_t mn = g.M * g.N;
  batched_matmul<int64_t>(g, ac.data(), bc.data(), [&](int64_t bi, const int64_t* acc) {
    for (int64_t i = 0; i < mn; ++i) yp[bi * mn + i] = static_cast<int32_t>(acc[i]);
  });
}

void infer_qlinear_matmul(InferContext& ctx) {
  DType t = ctx.has_input(7) ? ctx.input_dtype(7) : ctx.input_dtype(0);
  ctx.set_output(0, t, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(3)));
}

// y = saturate(round_half_even((a - a_zp) @ (b - b_zp) * (a_scale * b_scale / y_scale)) + y_zp),
// the scale product computed in the scales' own precision, as the ONNX reference does.
void run_qlinear_matmul(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(3);
  const Tensor& a_scale = ctx.input(1);
  const Tensor& b_scale = ctx.input(4);
  const Tensor& y_scale = ctx.input(6);
  const Tensor* y_zp = ctx.has_input(7) ? &ctx.input(7) : nullptr;
  DType yt = y_zp ? y_zp->dtype() : a.dtype();
  if (yt != DType::kU8 && yt != DType::kI8) ctx.unsupported("QLinearMatMul output must be 8-bit");
  if (y_scale.numel() != 1 || (y_zp && y_zp->numel() != 1))
    ctx.fail("QLinearMatMul y_scale and y_zero_point must be scalars", ErrorCode::kInvalidArgument);
  MatMulGeom g = matmul_geom(ctx, a.dims(), b.dims());
  auto ac = centered(ctx, a, ctx.has_input(2) ? &ctx.input(2) : nullptr, true, "a");
  auto bc = centered(ctx, b, ctx.has_input(5) ? &ctx.input(5) : nullptr, false, "b");
  // Per-row / per-column scales, as [M] and [N] vectors (numpy broadcast over batch dims is not
  // needed by any model we know; scalars and vectors cover the spec's forms).
  auto scale_vec = [&](const Tensor& s, int64_t n, const char* what) {
    if (s.numel() == 1) return std::vector<double>(size_t(n), s.element_as_double(0));
    if (s.numel() != n) ctx.unsupported(std::string(what) + " of this shape is not supported");
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = s.element_as_double(i);
    return v;
  };
  auto as = scale_vec(a_scale, g.M, "a_scale"), bs = scale_vec(b_scale, g.N, "b_scale");
  const double ys = y_scale.element_as_double(0);
  const double zp = y_zp ? y_zp->element_as_double(0) : 0.0;
  const bool half = a_scale.dtype() == DType::kF16;
  const double lo = yt == DType::kU8 ? 0 : -128, hi = yt == DType::kU8 ? 255 : 127;
  Tensor& y = ctx.output(0, yt, g.out);
  const int64_t mn = g.M * g.N;
  batched_matmul<int64_t>(g, ac.data(), bc.data(), [&](int64_t bi, const int64_t* acc) {
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) {
        double s;
        if (half) {
          s = float(
              Float16(float(Float16(float(as[size_t(i)]) * float(bs[size_t(j)]))) / float(ys)));
        } else {
          s = double(float(float(as[size_t(i)]) * float(bs[size_t(j)])) / float(ys));
        }
        double v = std::nearbyint(double(acc[i * g.N + j]) * s + zp);
        v = std::min(hi, std::max(lo, v));
        int64_t o = bi * mn + i * g.N + j;
        if (yt == DType::kU8)
          y.data<uint8_t>()[o] = uint8_t(v);
        else
          y.data<int8_t>()[o] = int8_t(v);
      }
  });
}

}  // namespace

void register_linalg_ops(Registry& r) {
  r.add({"", "MatMul", 1, PatternKind::kOutEwiseFusable, infer_matmul, run_matmul});
  r.add({"", "Gemm", 1, PatternKind::kOutEwiseFusable, infer_gemm, run_gemm});
  r.add({"", "Einsum", 12, PatternKind::kOpaque, infer_einsum, run_einsum});
  r.add({"", "MatMulInteger", 10, PatternKind::kOpaque, infer_matmul_integer, run_matmul_integer});
  r.add({"", "QLinearMatMul", 10, PatternKind::kOpaque, infer_qlinear_matmul, run_qlinear_matmul});
}

}  // namespace kiln::kernels
