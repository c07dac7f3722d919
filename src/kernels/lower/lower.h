// Lowerings: graph nodes -> jit::Kernel loop nests.
//
// The engine builds a LowerContext for one node of a specialized graph: every input and output
// as a TensorArg (element type, dims and strides as index expressions, and the concrete dims of
// this specialization), the values of inputs known at specialization time (weights, axes, pads,
// folded shape tensors) and the schedule knobs. A lowering returns the kernel, or nullopt when it
// does not handle this case (a dtype, an attribute combination, a non-constant axes input); the
// node then runs on its reference kernel, which is always correct.
//
// Buffers of the kernel: input i of the node is buffer i (an omitted optional input is an unused
// rank-0 u8 buffer), output o is buffer num_inputs() + o. The engine passes the tensors' base
// pointers in that order.
//
// Dims and strides are jit::Expr: an integer immediate when the dim is compiled as a constant, a
// kernel parameter (jit::param(k)) when it stays dynamic. A lowering must express sizes in the IR
// through these Exprs only. It may read the concrete dims to choose a schedule (vectorize or not,
// tile sizes) but must never bake a concrete value of a non-immediate dim into the IR: the same
// kernel is reused for every specialization whose IR prints the same. Dims whose concrete value
// is 0 or 1 are always immediates (as torch.compile specializes 0/1), so broadcasting decisions
// can be made on immediates.
//
// A lowering must make every access in bounds for every value the params may take (with the
// dims given), and produce the reference kernel's results (floats within rounding of a different
// summation order). The tests in tests/lower/ compare each lowering to the reference kernel.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "jit/kir.h"
#include "kernels/registry.h"

namespace kiln::kernels {

/// What TensorArg::concrete shows for a dim that is a kernel parameter: schedule choices made
/// from it are then the same for every value the parameter takes, so the kernel is reused.
constexpr int64_t kRepresentativeDynamicDim = 64;

/// A tensor as a kernel sees it.
struct TensorArg {
  jit::ScalarType type = jit::ScalarType::kF32;
  std::vector<jit::Expr> dims;     // i64: immediates or params
  std::vector<jit::Expr> strides;  // in elements
  // This specialization's dims, for schedule choices only (kRepresentativeDynamicDim for params).
  std::vector<int64_t> concrete;
  int rank() const { return int(dims.size()); }
  /// Contiguous tensor with all dims immediate.
  static TensorArg fixed(jit::ScalarType t, const std::vector<int64_t>& dims);
};

/// Knobs of the basic schedules, chosen by simple heuristics from the host (tunable later).
struct Schedule {
  int vector_lanes = 8;              // f32 lanes of the host's widest vectors (16 with AVX-512)
  int64_t parallel_grain = 1 << 14;  // minimum elements of work per parallel task
  int unroll = 4;
  int tile_m = 64, tile_n = 64, tile_k = 128;  // MatMul/Gemm blocking (measured: 1024^3 ~2x)
  /// loop_nest fuses outer dims into its parallel loop until it has this many iterations (CPU:
  /// enough tasks for the cores). A GPU schedule fuses every dim: one iteration (one thread) per
  /// element.
  int64_t min_parallel_iterations = 64;
  /// Innermost loops vectorize (CPU SIMD). Off on the GPU, whose threads are the lanes.
  bool vectorize = true;
  static Schedule for_host();
};

/// Capture mode of elementwise lowerings (those built on a map over the output's elements): the
/// lowering does not build a kernel but applies its scalar function to `args` (one expression per
/// node input slot, null when not available) and leaves the value in `result`, so the plan can
/// fuse a chain of elementwise nodes into one loop nest (lower_elementwise_chain).
struct MapCapture {
  std::vector<jit::Expr> args;
  jit::Expr result;
  int64_t work = 1;
};

class LowerContext {
 public:
  LowerContext(const ir::Node& node, std::vector<std::optional<TensorArg>> inputs,
               std::vector<TensorArg> outputs, std::vector<const Tensor*> constants,
               Schedule schedule);

  const ir::Node& node() const { return node_; }
  NodeAttrs attrs() const { return NodeAttrs(node_); }
  int opset() const { return node_.opset; }

  int num_inputs() const { return int(inputs_.size()); }
  bool has_input(int i) const {
    return i >= 0 && i < num_inputs() && inputs_[size_t(i)].has_value();
  }
  const TensorArg& input(int i) const;
  int num_outputs() const { return int(outputs_.size()); }
  const TensorArg& output(int o) const;
  int input_buffer(int i) const { return i; }
  int output_buffer(int o) const { return num_inputs() + o; }
  /// The value of input i when known at specialization time, else null.
  const Tensor* constant(int i) const;
  /// Small integer input known at specialization time (axes, pads, shape), else nullopt.
  std::optional<std::vector<int64_t>> constant_ints(int i) const;
  const Schedule& schedule() const { return schedule_; }

  /// A variable name not used before in this kernel: hint + counter ("i0", "k3").
  std::string fresh_var(const std::string& hint = "i");

  /// Loads input i / stores output o at one index per dim, through the tensor's strides.
  jit::Expr load_input(int i, const std::vector<jit::Expr>& idx) const;
  jit::Stmt store_output(int o, const std::vector<jit::Expr>& idx, jit::Expr value) const;
  /// The index into input i for an output index under numpy broadcasting (input dims aligned to
  /// the right of out_idx; an immediate-1 dim of the input reads index 0).
  std::vector<jit::Expr> broadcast_index(int i, const std::vector<jit::Expr>& out_idx) const;

  /// Declares the buffers and returns the validated kernel.
  jit::Kernel finish(jit::Stmt body, const std::string& label) const;

  /// Capture mode (see MapCapture): null in normal lowering.
  MapCapture* capture() const { return capture_; }
  void set_capture(MapCapture* c) { capture_ = c; }

 private:
  const ir::Node& node_;
  std::vector<std::optional<TensorArg>> inputs_;
  std::vector<TensorArg> outputs_;
  std::vector<const Tensor*> constants_;
  Schedule schedule_;
  std::map<std::string, int> var_counters_;
  MapCapture* capture_ = nullptr;
};

/// A lowering: the kernel for this node, or nullopt to leave it to the reference kernel.
using LowerFn = std::function<std::optional<jit::Kernel>(LowerContext&)>;

class Lowerings {
 public:
  /// Every lowering, registered once (family registration functions below).
  static const Lowerings& global();
  void add(const std::string& domain, const std::string& op, LowerFn fn);
  const LowerFn* find(const std::string& domain, const std::string& op) const;
  std::vector<std::string> ops() const;

 private:
  std::map<std::pair<std::string, std::string>, LowerFn> fns_;
};

// ---- Shared helpers for lowerings (lower.cc) ----

/// Loop nest over `dims` (outermost first) with variables named by fresh_var; `body` receives the
/// index variables. The outermost loops are fused into a parallel loop when the total work
/// (elements * work_per_element) exceeds the schedule's grain, and the innermost loop is
/// vectorized when `vectorize` is set. A parallel loop must be at the top level of the kernel:
/// pass top_level = false for a nest that goes inside another loop or a let.
jit::Stmt loop_nest(LowerContext& ctx, const std::vector<jit::Expr>& dims,
                    const std::function<jit::Stmt(const std::vector<jit::Expr>&)>& body,
                    bool vectorize = true, int64_t work_per_element = 1, bool top_level = true);
/// select(valid, load(buffer at clamped index), fallback): a guarded load that never reads out of
/// bounds. `idx` entries are clamped into [0, dims[d] - 1].
jit::Expr safe_load(const LowerContext& ctx, int input, const std::vector<jit::Expr>& idx,
                    jit::Expr valid, jit::Expr fallback);
/// Product of dims (i64).
jit::Expr product(const std::vector<jit::Expr>& dims, size_t begin = 0, size_t end = size_t(-1));
/// The value an index expression (immediates, params, + - * / % min max) takes in this
/// specialization, from the concrete dims of the args; nullopt when it cannot be told. For
/// schedule choices only.
std::optional<int64_t> concrete_value(const LowerContext& ctx, const jit::Expr& e);
/// Lanes of the vectorized innermost loops: one native vector of the widest output element.
int vector_factor(const LowerContext& ctx);

/// One node of an elementwise chain: its own context (its inputs and outputs as TensorArgs) and,
/// per input slot, where the value comes from in the fused kernel: an input buffer of `fused`
/// (>= 0), the output of an earlier member k (-(k + 1)), or nothing (kOmitted).
struct ChainMember {
  LowerContext* ctx = nullptr;
  std::vector<int> source;
  static constexpr int kOmitted = -1000000;
};
/// One loop nest over `fused`'s output 0 computing every member in order (each member's output
/// has that shape; external inputs broadcast to it) and storing the last member's value: the
/// intermediates never touch memory. nullopt when a member is not an elementwise lowering.
std::optional<jit::Kernel> lower_elementwise_chain(LowerContext& fused,
                                                   const std::vector<ChainMember>& members,
                                                   const std::string& label);
/// Producer fusion: `consumer` (a node's kernel) with its input buffer `slot` computed where it
/// is loaded, by the chain `members` over `fused`'s inputs (whose output is that input's tensor),
/// instead of read from memory. The chain's inputs take the slot's place among the buffers (the
/// later buffers move up by fused.num_inputs() - 1). nullopt when the chain is not elementwise or
/// does not produce the slot's dims.
std::optional<jit::Kernel> inline_producer_chain(const jit::Kernel& consumer, int slot,
                                                 LowerContext& fused,
                                                 const std::vector<ChainMember>& members,
                                                 const std::string& label);
/// The chain on blocked NCHWc data (kernels/fast/nchwc.h): `fused`'s output, 4-D f32 with
/// immediate dims [N, C, H, W], is written as [N, ceil(C / block), H, W, block], and each input
/// flagged in `blocked` (of the output's dims) is read in that layout; the other inputs broadcast
/// from their own. The padding lanes past C are written 0. nullopt when the chain or the shapes
/// do not allow it.
std::optional<jit::Kernel> lower_elementwise_chain_nchwc(LowerContext& fused,
                                                         const std::vector<ChainMember>& members,
                                                         const std::string& label,
                                                         const std::vector<char>& blocked,
                                                         int64_t block);
/// Whether the node's lowering is an elementwise map (probed in capture mode).
bool is_elementwise_lowering(LowerContext& ctx);

// Family registration functions (one file per family under src/kernels/lower/).
void register_elementwise_lowerings(Lowerings& l);
void register_reduction_lowerings(Lowerings& l);
void register_movement_lowerings(Lowerings& l);
void register_pool_lowerings(Lowerings& l);
void register_linalg_lowerings(Lowerings& l);

}  // namespace kiln::kernels
