// BatchNormalization folding into the producing Conv/Gemm/MatMul.
#include "ir/passes/fold_batchnorm.h"

#include <cmath>

#include "ir/passes/conv_weights.h"
#include "ir/passes/graph_edit.h"
#include "kernels/registry.h"

namespace kiln::ir::passes {

bool fold_batchnorm(Graph& g, int* rewrites) {
  auto uses = consumers(g);
  std::vector<char> dead(g.nodes.size(), 0);
  int folded = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& bn = g.nodes[ni];
    if (!bn.domain.empty() || bn.op_type != "BatchNormalization" || bn.inputs.size() != 5) continue;
    kernels::NodeAttrs attrs(bn);
    if (attrs.attr_int("training_mode", 0) != 0 || attrs.attr_int("spatial", 1) != 1) continue;
    if (bn.opset < 7 && attrs.attr_int("is_test", 0) == 0) continue;
    bool extra_read = false;
    for (size_t k = 1; k < bn.outputs.size(); ++k)
      extra_read |= bn.outputs[k] >= 0 && use_count(g, uses, bn.outputs[k]) > 0;
    int x = bn.inputs[0];
    if (extra_read || x < 0 || use_count(g, uses, x) != 1) continue;
    int pi = g.values[size_t(x)].producer;
    if (pi < 0 || dead[size_t(pi)]) continue;
    auto w = read_affine(g, pi, true);
    if (!w) continue;
    int rank = g.values[size_t(x)].shape.rank();
    std::vector<std::vector<double>> p;
    for (int k = 1; k < 5; ++k) {
      // BN's scale, B, mean and var are 1-D [C] along axis 1.
      auto v = per_channel(g, bn.inputs[size_t(k)], 1, 0, w->channels);
      if (!v || g.values[size_t(bn.inputs[size_t(k)])].constant.rank() != 1) break;
      p.push_back(*v);
    }
    // Gemm/MatMul outputs are [N, M]: the BN's channel axis 1 is the producer's channel axis.
    if (p.size() != 4 || rank < 2) continue;
    double eps = attrs.attr_float("epsilon", 1e-5f);
    std::vector<double> scale(size_t(w->channels)), bias(size_t(w -> channels));
    for (size_t m = 0; m < scale.size(); ++m) {
      double s = p[0][m] / std::sqrt(p[3][m] + double(float(eps)));
      scale[m] = s;
      bias[m] = (w->bias[m] - p[2][m]) * s + p[1][m];
    }
    write_affine(g, *w, scale, bias);
    int y = bn.outputs[0];
    Node& prod = g.nodes[size_t(pi)];
    prod.outputs[0] = y;
    g.values[size_t(y)].producer = pi;
    g.values[size_t(x)].producer = -1;
    dead[ni] = 1;
    folded++;
    uses = consumers(g);
  }
  return finish_pass(g, dead, folded, rewrites);
}

}  // namespace kiln::ir::passes
