// Per-channel reading and rewriting of Conv/Gemm/MatMul weights.
#include "ir/passes/conv_weights.h"

#include "ir/passes/graph_edit.h"
#include "kernels/registry.h"
#include "kiln/error.h"

namespace kiln::ir::passes {
namespace {

const Tensor* f32_constant(const Graph& g, int id) {
  if (!is_constant(g, id)) return nullptr;
  const Tensor& t = g.values[size_t(id)].constant;
  return t.dtype() == DType::kF32 ? &t : nullptr;
}

std::vector<double> as_doubles(const Tensor& t, double factor = 1) {
  std::vector<double> out(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[size_t(i)] = factor * t.element_as_double(i);
  return out;
}

}  // namespace

std::optional<AffineWeights> read_affine(const Graph& g, int ni, bool allow_matmul) {
  const Node& n = g.nodes[size_t(ni)];
  if (!n.domain.empty() || n.outputs.size() != 1 || n.inputs.size() < 2) return std::nullopt;
  const Value& out = g.values[size_t(n.outputs[0])];
  if (out.dtype != DType::kF32) return std::nullopt;
  const Tensor* w = f32_constant(g, n.inputs[1]);
  if (!w) return std::nullopt;
  const Tensor* b = nullptr;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    b = f32_constant(g, n.inputs[2]);
    if (!b) return std::nullopt;
  }
  kernels::NodeAttrs attrs(n);
  AffineWeights a;
  a.node = ni;
  a.dims = w->dims();
  if (n.op_type == "Conv") {
    if (w->rank() < 3 || w->dims()[0] == 0) return std::nullopt;
    a.channels = int(w->dims()[0]);
    a.weight = as_doubles(*w);
    int64_t per = w->numel() / a.channels;
    for (int64_t e = 0; e < w->numel(); ++e) a.channel_of.push_back(int(e / per));
    if (b && b->numel() != a.channels) return std::nullopt;
    a.bias = b ? as_doubles(*b) : std::vector<double>(size_t(a.channels), 0.0);
    return a;
  }
  bool gemm = n.op_type == "Gemm";
  if (!gemm && !(allow_matmul && n.op_type == "MatMul" && g.opset("") >= 7)) return std::nullopt;
  const Value& x = g.values[size_t(n.inputs[0])];
  if (w->rank() != 2 || !x.shape.has_rank || x.shape.rank() != 2) return std::nullopt;
  bool trans_b = gemm && attrs.attr_int("transB", 0) != 0;
  int64_t k = trans_b ? w->dims()[1] : w->dims()[0];
  a.channels = int(trans_b ? w->dims()[0] : w->dims()[1]);
  if (a.channels == 0 || k == 0) return std::nullopt;
  a.weight = as_doubles(*w, gemm ? attrs.attr_float("alpha", 1.0f) : 1.0);
  for (int64_t e = 0; e < w->numel(); ++e)
    a.channel_of.push_back(int(trans_b ? e / k : e % a.channels));
  double beta = gemm ? attrs.attr_float("beta", 1.0f) : 1.0;
  if (!b) {
    a.bias.assign(size_t(a.channels), 0.0);
  } else if (b->numel() == 1) {
    a.bias.assign(size_t(a.channels), beta * b->element_as_double(0));
  } else if (b->numel() == a.channels && b->dims().back() == a.channels) {
    a.bias = as_doubles(*b, beta);
  } else {
    return std::nullopt;  // a bias per row ([N,M] or [N,1]) is not per channel
  }
  return a;
}

void write_affine(Graph& g, const AffineWeights& a, const std::vector<double>& scale,
                  const std::vector<double>& bias) {
  Tensor w(DType::kF32, a.dims);
  float* wp = w.data<float>();
  for (size_t e = 0; e < a.weight.size(); ++e)
    wp[e] = float(a.weight[e] * scale[size_t(a.channel_of[e])]);
  Tensor b(DType::kF32, {int64_t(a.channels)});
  float* bp = b.data<float>();
  for (size_t m = 0; m < bias.size(); ++m) bp[m] = float(bias[m]);
  std::string base = g.nodes[size_t(a.node)].name;
  int wid = add_constant(g, base + ".folded_weight", std::move(w));
  int bid = add_constant(g, base + ".folded_bias", std::move(b));
  Node& n = g.nodes[size_t(a.node)];
  n.inputs.resize(3, -1);
  n.inputs[1] = wid;
  n.inputs[2] = bid;
  if (n.op_type == "MatMul") {
    n.op_type = "Gemm";
    n.attrs.clear();
    if (!set_schema(n, int(g.opset(""))))
      throw Error(ErrorCode::kInternal, "fold: Gemm is not registered (a Kiln bug)");
  } else if (n.op_type == "Gemm") {
    set_float_attr(n, "alpha", 1.0f);
    set_float_attr(n, "beta", 1.0f);
  }
}

std::optional<std::vector<double>> per_channel(const Graph& g, int id, int rank, int axis, int m) {
  const Tensor* t = f32_constant(g, id);
  if (!t || t->rank() > rank || t->numel() < 1) return std::nullopt;
  if (t->numel() == 1) return std::vector<double>(size_t(m), t->element_as_double(0));
  if (t->numel() != m) return std::nullopt;
  for (int i = 0; i < t->rank(); ++i) {
    int64_t d = t->dims()[size_t(i)];
    bool at_axis = rank - t->rank() + i == axis;
    if (at_axis ? d != m : d != 1) return std::nullopt;
  }
  return as_doubles(*t);
}

}  // namespace kiln::ir::passes
