// Loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
//
// Both take scores of shape [N, C, d1..dk] and integer targets [N, d1..dk]. The per-sample loss
// is -input[n, t, d] * weight[t] (weight 1 without the weight input); a target equal to
// ignore_index contributes 0 and its weight counts as 0. Reductions: "none" keeps [N, d1..dk],
// "sum" adds, "mean" divides the sum by the sum of applied weights (so ignored samples drop out
// of the denominator; 0/0 gives NaN, as the ONNX reference does). SoftmaxCrossEntropyLoss applies
// log-softmax over axis 1 first and can also return those log-probabilities. Arithmetic is done
// in double whatever the element type, so f16/bf16 results are rounded once.
#include <cmath>
#include <limits>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

using ir::Dim;

enum class Reduction { kNone, kSum, kMean };

Reduction reduction_of(const NodeAttrs& ctx) {
  std::string r = ctx.attr_string("reduction", "mean");
  if (r == "none") return Reduction::kNone;
  if (r == "sum") return Reduction::kSum;
  if (r == "mean") return Reduction::kMean;
  ctx.fail("reduction must be 'none', 'sum' or 'mean', got '" + r + "'");
}

// Shared shape function: input 0 scores [N,C,d..], input 1 target [N,d..], input 2 weight [C].
void infer_loss(InferContext& ctx) {
  Reduction red = reduction_of(ctx);
  DType dt = ctx.input_dtype(0);
  if (!dtype_is_float(dt))
    ctx.unsupported(std::string("scores of type ") + dtype_name(dt) + " are not supported");
  DType tt = ctx.input_dtype(1);
  if (tt != DType::kI32 && tt != DType::kI64)
    ctx.fail(std::string("target must be int32 or int64, got ") + dtype_name(tt));
  const ir::Shape& in = ctx.input_shape(0);
  const ir::Shape& tg = ctx.input_shape(1);
  if (in.has_rank && in.rank() < 2)
    ctx.fail("input must have rank >= 2 ([N, C, d1..dk]), got " + in.to_string());
  if (ctx.has_input(2)) {
    if (ctx.input_dtype(2) != dt) ctx.fail("weight must have the input's element type");
    const ir::Shape& w = ctx.input_shape(2);
    if (w.has_rank && w.rank() != 1) ctx.fail("weight must be 1-d, got " + w.to_string());
    if (w.has_rank && in.has_rank && w.dims[0].known_different(in.dims[1]))
      ctx.fail("weight has " + w.dims[0].to_string() + " entries, input has " +
               in.dims[1].to_string() + " classes");
  }
  // The per-sample shape [N, d1..dk], preferring constants from either input.
  ir::Shape sample = ir::Shape::unranked();
  if (in.has_rank && tg.has_rank && tg.rank() != in.rank() - 1)
    ctx.fail("target " + tg.to_string() + " must have rank " + std::to_string(in.rank() - 1) +
             " for input " + in.to_string());
  if (in.has_rank) {
    std::vector<Dim> d;
    for (int i = 0; i < in.rank(); ++i)
      if (i != 1) d.push_back(in.dims[size_t(i)]);
    if (tg.has_rank) {
      for (size_t i = 0; i < d.size(); ++i) {
        const Dim& t = tg.dims[i];
        if (t.known_different(d[i]))
          ctx.fail("target " + tg.to_string() + " does not match input " + in.to_string());
        if (!d[i].is_const() && t.is_const()) d[i] = t;
      }
    }
    sample = ir::Shape(std::move(d));
  } else if (tg.has_rank) {
    sample = tg;
  }
  ctx.set_output(0, dt, red == Reduction::kNone ? sample : ir::Shape(std::vector<Dim>{}));
  if (ctx.num_outputs() > 1) ctx.set_output(1, dt, in);
}

// The loss proper, given log-probabilities lp (as doubles) laid out [N, C, D].
template <class T>
void nll_from_log_probs(KernelContext& ctx, const std::vector<double>& lp, int64_t n, int64_t c,
                        int64_t d) {
  Reduction red = reduction_of(ctx);
  const Tensor& target = ctx.input(1);
  if (target.numel() != n * d)
    ctx.fail("target " + dims_to_string(target.dims()) + " does not match the input",
             ErrorCode::kInvalidArgument);
  const T* w = nullptr;
  if (ctx.has_input(2)) {
    const Tensor& wt = ctx.input(2);
    if (wt.rank() != 1 || wt.dim(0) != c)
      ctx.fail("weight " + dims_to_string(wt.dims()) + " must be [" + std::to_string(c) + "]",
               ErrorCode::kInvalidArgument);
    w = wt.data<T>();
  }
  bool has_ignore = ctx.has_attr("ignore_index");
  int64_t ignore = ctx.attr_int("ignore_index", 0);
  std::vector<double> loss(size_t(n * d), 0.0);
  double loss_sum = 0, weight_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      int64_t k = i * d + j;
      int64_t t = target.element_as_int(k);
      if (has_ignore && t == ignore) continue;
      if (t < 0 || t >= c)
        ctx.fail(
            "target value " + std::to_string(t) + " is out of range [0, " + std::to_string(c) + ")",
            ErrorCode::kInvalidArgument);
      double wv = w ? double(to_compute(w[t])) : 1.0;
      double l = -lp[size_t((i * c + t) * d + j)] * wv;
      loss[size_t(k)] = l;
      loss_sum += l;
      weight_sum += wv;
    }
  }
  if (red == Reduction::kNone) {
    Tensor& out = ctx.output(0, DTypeOf<T>::value, target.dims());
    T* o = out.data<T>();
    for (int64_t k = 0; k < n * d; ++k) o[k] = from_compute<T>(loss[size_t(k)]);
    return;
  }
  Tensor& out = ctx.output(0, DTypeOf<T>::value, {});
  double v = red == Reduction::kSum ? loss_sum : loss_sum / weight_sum;
  out.data<T>()[0] = from_compute<T>(v);
}

// Splits scores [N, C, d..] into (N, C, D).
void split_scores(const KernelContext& ctx, const Tensor& x, int64_t* n, int64_t* c, int64_t* d) {
  if (x.rank() < 2)
    ctx.fail("input must have rank >= 2, got " + dims_to_string(x.dims()),
             ErrorCode::kInvalidArgument);
  *n = x.dim(0);
  *c = x.dim(1);
  *d = 1;
  for (int i = 2; i < x.rank(); ++i) *d *= x.dim(i);
  const Tensor& t = ctx.input(1);
  Dims want = x.dims();
  want.erase(want.begin() + 1);
  if (t.dims() != want)
    ctx.fail("target " + dims_to_string(t.dims()) + " must be " + dims_to_string(want) +
                 " for input " + dims_to_string(x.dims()),
             ErrorCode::kInvalidArgument);
}

void run_nll(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t n, c, d;
  split_scores(ctx, x, &n, &c, &d);
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    nll_from_log_probs<T>(ctx, to_doubles(ctx, x), n, c, d);
  });
}

void run_sce(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int64_t n, c, d;
  split_scores(ctx, x, &n, &c, &d);
  dispatch_float(x.dtype(), ctx, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = x.data<T>();
    // Log-softmax over the class axis, shifted by the max for stability.
    std::vector<double> lp(size_t(x.numel()));
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < d; ++j) {
        auto at = [&](int64_t k) { return double(to_compute(p[(i * c + k) * d + j])); };
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < c; ++k) mx = std::max(mx, at(k));
        double s = 0;
        for (int64_t k = 0; k < c; ++k) s += std::exp(at(k) - mx);
        double ls = std::log(s);
        for (int64_t k = 0; k < c; ++k) lp[size_t((i * c + k) * d + j)] = at(k) - mx - ls;
      }
    }
    nll_from_log_probs<T>(ctx, lp, n, c, d);
    if (ctx.num_outputs() > 1) {
      Tensor& out = ctx.output(1, x.dtype(), x.dims());
      T* o = out.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) o[i] = from_compute<T>(lp[size_t(i)]);
    }
  });
}

}  // namespace

void register_loss_ops(Registry& r) {
  r.add({"", "NegativeLogLikelihoodLoss", 12, PatternKind::kOpaque, infer_loss, run_nll});
  r.add({"", "SoftmaxCrossEntropyLoss", 12, PatternKind::kOpaque, infer_loss, run_sce});
}

}  // namespace kiln::kernels
