// Graph pass fold_batchnorm.
//
// Folds an inference-form BatchNormalization (training_mode 0, spatial 1, only its Y output read)
// into the Conv, Gemm (any transB) or 2-D MatMul that produces its input, when that producer's
// output is read by the BN alone and is not a graph output, and the weights, bias and the BN's
// scale, B, mean and var are non-overridable f32 initializers. With s = scale / sqrt(var + eps)
// per output channel: W' = W * s (Conv: per output filter; Gemm/MatMul: per output column),
// b' = (b - mean) * s + B, computed in double and rounded to f32 once. New initializers are made
// (the old ones may have other readers; dead ones are swept). A Conv without bias gets one; a
// MatMul becomes Gemm(A, W', b'); a Gemm's alpha is folded into W' and its beta into b'. The BN's
// output value (name, dtype, shape) is kept and is now the producer's output.
#pragma once

#include "ir/graph.h"

namespace kiln::ir::passes {

/// Returns whether the graph changed; `rewrites`, when given, is increased by the BNs folded.
bool fold_batchnorm(Graph& g, int* rewrites = nullptr);

}  // namespace kiln::ir::passes
