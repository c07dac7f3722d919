// Folding of a per-channel Mul or Add after Conv/Gemm into its weights and bias.
#include "ir/passes/fold_scale_into_conv.h"

#include "ir/passes/conv_weights.h"
#include "ir/passes/graph_edit.h"

namespace kiln::ir::passes {

bool fold_scale_into_conv(Graph& g, int* rewrites) {
  auto uses = consumers(g);
  std::vector<char> dead(g.nodes.size(), 0);
  int folded = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& op = g.nodes[ni];
    bool mul = op.op_type == "Mul";
    if (!op.domain.empty() || (!mul && op.op_type != "Add") || op.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      int y = op.inputs[size_t(side)], c = op.inputs[size_t(1 - side)];
      if (y < 0 || c < 0 || use_count(g, uses, y) != 1) continue;
      int pi = g.values[size_t(y)].producer;
      if (pi < 0 || dead[size_t(pi)]) continue;
      const Node& prod = g.nodes[size_t(pi)];
      if (prod.op_type != "Conv" && prod.op_type != "Gemm") continue;
      auto w = read_affine(g, pi, false);
      if (!w) continue;
      const Value& yv = g.values[size_t(y)];
      int rank = yv.shape.rank();
      if (!yv.shape.has_rank || rank < 2) continue;
      auto cv = per_channel(g, c, rank, prod.op_type == "Conv" ? 1 : rank - 1, w->channels);
      if (!cv) continue;
      std::vector<double> scale(size_t(w->channels), 1.0), bias = w -> bias;
      for (size_t m = 0; m < scale.size(); ++m) {
        if (mul) {
          scale[m] = (*cv)[m];
          bias[m] *= (*cv)[m];
        } else {
          bias[m] += (*cv)[m];
        }
      }
      write_affine(g, *w, scale, bias);
      int out = op.outputs[0];
      g.nodes[size_t(pi)].outputs[0] = out;
      g.values[size_t(out)].producer = pi;
      g.values[size_t(y)].producer = -1;
      dead[ni] = 1;
      folded++;
      uses = consumers(g);
      break;
    }
  }
  return finish_pass(g, dead, folded, rewrites);
}

}  // namespace kiln::ir::passes
