// Fusion groups of a specialized plan: which graph nodes run as one step.
//
// Groups are formed on the concrete graph after folding, from each op's pattern (TVM's fuse_ops
// in its simplest useful form):
//   - kEpilogue (optimization level 3): a Conv, MatMul or Gemm with constant weights run by a
//     native kernel, followed by what that kernel applies while a tile is in registers: a bias
//     Add (per output column of a MatMul), a residual Add of a tensor of the output's shape, and
//     one activation (Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish, Gelu, and
//     SiLU: Swish, or x * Sigmoid(x) where x's only readers are that Sigmoid and that Mul);
//   - kAttention (level 3): MatMul(Q, Kᵀ) -> scale (Div/Mul by a scalar) -> mask (Add, or
//     Where with a scalar fill) -> Softmax(last axis) -> MatMul(·, V) [-> Transpose(0,2,1,3)],
//     with Q, Kᵀ and V read through strides from the tensors the Split/Reshape/Transpose nodes
//     before them only re-index;
//   - kChain (level >= 2): consecutive elementwise nodes, each consuming the previous one's
//     output as its only reader, all of one output shape, as one loop nest;
//   - kProducer (level >= 2): such a chain (or one elementwise node) whose output one consumer
//     kernel reads alone, in one input slot, fused into that consumer's loads: the consumer
//     (the last node) computes the chain's value wherever it reads the element, so the chain's
//     output never exists in memory. Only consumers that read each element about once
//     (transposes, slices, concats, pads, reductions) take a chain; those that read it a few
//     times (softmax, layer norm) take one of at most two nodes;
//   - kSingle: everything else, one node.
// A value inside a group (not its output) has exactly one reader, the next member, and is not a
// graph output: fused values never exist in memory. A group runs where its last member ran, so
// every value it reads is computed by then.
#pragma once

#include <functional>
#include <vector>

#include "ir/graph.h"
#include "kernels/native_ops.h"

namespace kiln::engine {

struct FusionGroup {
  enum class Kind { kSingle, kChain, kEpilogue, kAttention, kProducer };
  Kind kind = Kind::kSingle;
  std::vector<int> nodes;  // in run order; the last one's output 0 is the group's output
  // kEpilogue: the pieces after the anchor (nodes[0]); -1 when absent.
  int bias_add = -1;      // node: Add of a constant bias
  int residual_add = -1;  // node: Add of a tensor of the output's shape
  int residual = -1;      // value added by residual_add
  int activation = -1;    // node
  // kAttention: the fused kernel's description; `nodes` also holds the Split/Reshape/Transpose
  // nodes whose outputs it reads through strides instead.
  kernels::AttentionSpec attention;
  // kProducer: the consumer's input slot that the chain (nodes but the last) computes.
  int producer_slot = -1;
};

struct FusionHooks {
  /// Whether node n lowers to an elementwise map (fusable in a chain).
  std::function<bool(int node)> elementwise;
  /// Whether node n can anchor a native epilogue kernel (constant weights, supported shapes).
  std::function<bool(int node)> epilogue_anchor;
  /// Whether node n is an activation the native epilogue applies.
  std::function<bool(int node)> epilogue_activation;
  /// How many times node n's kernel reads each element of an input (1 or 2, 0 when it cannot
  /// compute an input in its loads).
  std::function<int(int node)> load_reads;
};

/// Groups of the live nodes (`live[n]`), in run order of their last member.
std::vector<FusionGroup> form_groups(const ir::Graph& g, const std::vector<char>& live,
                                     int opt_level, const FusionHooks& hooks);

}  // namespace kiln::engine
