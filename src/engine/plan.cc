// Plan building (specialization, folding, lowering, compiling) and plan execution.
#include "engine/plan.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "devices/cpu.h"
#include "engine/cuda_gemm_select.h"
#include "engine/fuse.h"
#include "engine/layout.h"
#include "engine/log.h"
#include "engine/plan_lower.h"
#include "ir/passes/collapse_reshape_chains.h"
#include "kernels/registry.h"

namespace kiln::engine {

std::vector<MemoryValue> plan_memory_values(const Plan& plan) {
  const ir::Graph& g = *plan.graph;
  std::vector<MemoryValue> values(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) {
    const ir::Value& val = g.values[v];
    if (val.dtype == DType::kString || val.dtype == DType::kUndefined || !val.shape.is_concrete())
      values[v].bytes = -1;
    else
      values[v].bytes =
          std::max<int64_t>(0, *val.shape.num_elements()) * int64_t(dtype_size(val.dtype));
  }
  for (int v : plan.constants) values[size_t(v)].storage = Storage::kConstant;
  for (int v : g.inputs)
    if (values[size_t(v)].storage == Storage::kNone) values[size_t(v)].storage = Storage::kInput;
  for (int v : g.outputs) values[size_t(v)].graph_output = true;
  for (const PlanStep& s : plan.steps)
    if (s.kind == PlanStep::Kind::kView) values[size_t(s.outputs[0])].view_of = s.inputs[0];
  for (const Plan::Slice& sl : plan.slices) {
    values[size_t(sl.value)].slice_of = sl.of;
    values[size_t(sl.value)].slice_offset = sl.offset;
  }
  return values;
}

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Ops whose output is their input's memory seen with other dims.
bool is_view_op(const ir::Node& n) {
  if (!n.domain.empty() || n.outputs.size() != 1) return false;
  return n.op_type == "Reshape" || n.op_type == "Flatten" || n.op_type == "Squeeze" ||
         n.op_type == "Unsqueeze" || n.op_type == "Identity";
}

// Nodes that do nothing at this specialization's shapes: their output is their input's memory.
// Expand to the same dims, Cast to the same type, Slice with unit steps keeping every element, Pad
// by zeros, Transpose that only moves dims of extent 1.
bool is_noop_at_shapes(const ir::Graph& g, const ir::Node& n) {
  if (!n.domain.empty() || n.outputs.size() != 1 || n.inputs.empty() || n.inputs[0] < 0)
    return false;
  const ir::Value& in = g.values[size_t(n.inputs[0])];
  const ir::Value& out = g.values[size_t(n.outputs[0])];
  if (in.dtype != out.dtype || !in.shape.is_concrete() || !out.shape.is_concrete() ||
      in.shape.concrete() != out.shape.concrete() || in.dtype == DType::kString)
    return false;
  auto const_ints = [&](size_t i) -> std::optional<std::vector<int64_t>> {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return std::vector<int64_t>{};
    const Tensor& t = g.values[size_t(n.inputs[i])].constant;
    if (!t.defined()) return std::nullopt;
    std::vector<int64_t> v;
    for (int64_t k = 0; k < t.numel(); ++k) v.push_back(t.element_as_int(k));
    return v;
  };
  const std::string& op = n.op_type;
  if (op == "Expand" || op == "Cast") return true;
  if (op == "Slice") {
    if (n.opset < 10) return true;  // attribute form has no steps
    auto steps = const_ints(4);
    return steps && std::all_of(steps->begin(), steps->end(), [](int64_t x) { return x == 1; });
  }
  if (op == "Pad") {
    auto pads =
        n.opset < 11
            ? std::optional<std::vector<int64_t>>(kernels::NodeAttrs(n).attr_ints("pads", {}))
            : const_ints(1);
    return pads && std::all_of(pads->begin(), pads->end(), [](int64_t x) { return x == 0; });
  }
  if (op == "Transpose") {
    const Dims d = in.shape.concrete();
    std::vector<int64_t> perm = kernels::NodeAttrs(n).attr_ints("perm", {});
    if (perm.empty())
      for (size_t k = d.size(); k-- > 0;) perm.push_back(int64_t(k));
    if (perm.size() != d.size()) return false;
    int64_t last = -1;  // the non-unit dims must keep their order
    for (int64_t a : perm) {
      if (a < 0 || size_t(a) >= d.size()) return false;
      if (d[size_t(a)] == 1) continue;
      if (a < last) return false;
      last = a;
    }
    return true;
  }
  return false;
}

// How many times the JIT kernel of node n reads each element of an input: 1 or 2 for the ops
// that can take a producer chain into their loads (FusionHooks::load_reads), else 0.
int load_reads(const ir::Graph& g, const ir::Node& n) {
  static const std::set<std::string> once = {
      "Transpose",  "Slice",     "Concat",    "Pad",          "Split",           "ReduceSum",
      "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",   "ReduceSumSquare", "ReduceL1",
      "ReduceL2",   "ArgMax",    "ArgMin",    "DepthToSpace", "SpaceToDepth",    "ReduceLogSum"};
  static const std::set<std::string> twice = {"Softmax", "LogSoftmax", "LayerNormalization",
                                              "ReduceLogSumExp"};
  if (!n.domain.empty() || is_noop_at_shapes(g, n)) return 0;
  return once.count(n.op_type) ? 1 : twice.count(n.op_type) ? 2 : 0;
}

// Ops that must run at every run even when their inputs are constants.
bool is_nondeterministic(const ir::Node& n) {
  static const std::set<std::string> ops = {
      "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
      "Multinomial",  "Bernoulli",     "Dropout"};
  return ops.count(n.op_type) != 0;
}

bool has_subgraph(const ir::Node& n) {
  for (const auto& [name, a] : n.attrs)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

// The identifiers in a symbolic dim expression ("seq*4+past" -> seq, past).
std::vector<std::string> symbol_tokens(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty() && !(cur[0] >= '0' && cur[0] <= '9')) out.push_back(cur);
    cur.clear();
  };
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':')
      cur += c;
    else
      flush();
  }
  flush();
  return out;
}

// A small integer tensor for a value whose elements shape inference knows as constants.
Tensor materialize_dims_value(DType dtype, const ir::Shape& shape, const std::vector<ir::Dim>& dv) {
  Dims dims = shape.is_concrete() ? shape.concrete() : Dims{int64_t(dv.size())};
  if (num_elements(dims) != int64_t(dv.size())) return Tensor();
  Tensor t(dtype, dims);
  for (size_t i = 0; i < dv.size(); ++i) {
    if (dtype == DType::kI64)
      t.data<int64_t>()[i] = dv[i].value;
    else if (dtype == DType::kI32)
      t.data<int32_t>()[i] = int32_t(dv[i].value);
    else
      return Tensor();
  }
  return t;
}

bool all_const(const std::optional<std::vector<ir::Dim>>& dv) {
  if (!dv) return false;
  for (const auto& d : *dv)
    if (!d.is_const()) return false;
  return true;
}

// The input slot an elementwise step may overwrite with its output: a value of the output's
// type and dims (no broadcast), or -1.
int in_place_slot(const ir::Graph& g, const std::vector<int>& inputs, int out) {
  const ir::Value& o = g.values[size_t(out)];
  for (size_t i = 0; i < inputs.size(); ++i) {
    int id = inputs[i];
    if (id < 0) continue;
    const ir::Value& v = g.values[size_t(id)];
    if (v.constant.defined() || v.dtype != o.dtype || !v.shape.is_concrete() ||
        !o.shape.is_concrete() || v.shape.concrete() != o.shape.concrete())
      continue;
    return int(i);
  }
  return -1;
}

// Storage of every value of the plan's runs (memory_plan.h).
void plan_step_memory(Plan& plan) {
  std::vector<MemoryValue> values = plan_memory_values(plan);
  std::vector<MemoryStep> steps;
  for (const PlanStep& s : plan.steps) steps.push_back({s.inputs, s.outputs, s.in_place_input});
  plan.memory = plan_memory(values, steps);
  for (const Plan::Slice& sl : plan.slices)
    if (plan.memory.storage[size_t(plan.memory.root[size_t(sl.value)])] != Storage::kArena)
      throw Error(ErrorCode::kInternal,
                  "memory plan: a concat written in place is not in the arena");
}

// A blocked channel Concat of one image is its inputs' bytes one after another: each input's
// producer writes straight into its place in the output and the copy step goes. Only for
// inputs that are intermediates written by one step, read by nothing that outlives the output,
// and concats whose output (or any view of it) is not a graph output, so all stay in the arena.
// With several images an input is one slice per image, images apart by the output's image: only
// when the Concat alone reads it and a plain blocked convolution writes it, rebuilt to write
// with that image stride.
void write_concat_inputs_in_place(Plan& plan, const PlanOptions& options) {
  const ir::Graph& g = *plan.graph;
  const size_t n = g.values.size();
  std::vector<int> producer(n, -1), view_source(n, -1), step_count(n, 0), readers(n, 0);
  for (size_t si = 0; si < plan.steps.size(); ++si) {
    const PlanStep& s = plan.steps[si];
    for (int o : s.outputs)
      if (o >= 0) {
        producer[size_t(o)] = int(si);
        step_count[size_t(o)]++;
      }
    for (int i : s.inputs)
      if (i >= 0) readers[size_t(i)]++;
    if (s.kind == PlanStep::Kind::kView) view_source[size_t(s.outputs[0])] = s.inputs[0];
  }
  for (int v : g.outputs) readers[size_t(v)]++;
  auto root_of = [&](int v) {
    for (size_t hops = 0; view_source[size_t(v)] >= 0 && hops <= n; ++hops)
      v = view_source[size_t(v)];
    return v;
  };
  std::set<int> pinned;  // graph inputs, outputs (and what they view), constants
  for (int v : g.outputs) pinned.insert(root_of(v));
  for (int v : g.inputs) pinned.insert(v);
  for (int v : plan.constants) pinned.insert(v);
  std::set<int> sliced;
  std::vector<char> drop(plan.steps.size(), 0);
  for (size_t si = 0; si < plan.steps.size(); ++si) {
    const PlanStep& s = plan.steps[si];
    if (s.kind != PlanStep::Kind::kNative || !s.native || s.fused.size() != 1 ||
        s.native->kind() != kernels::NativeKind::kBlockedConcat || s.outputs.size() != 1)
      continue;
    const int out = s.outputs[0];
    const ir::Value& ov = g.values[size_t(out)];
    if (pinned.count(out) || !ov.shape.is_concrete() || ov.shape.concrete().empty()) continue;
    const int64_t images = ov.shape.concrete()[0];
    auto bytes = [&](int v) {
      return *g.values[size_t(v)].shape.num_elements() *
             int64_t(dtype_size(g.values[size_t(v)].dtype));
    };
    bool ok = true;
    int64_t total = 0;
    std::set<int> seen;
    for (int v : s.inputs) {
      ok = ok && v >= 0 && !pinned.count(v) && !sliced.count(v) && seen.insert(v).second &&
           step_count[size_t(v)] == 1 && producer[size_t(v)] >= 0 &&
           producer[size_t(v)] < int(si) &&
           plan.steps[size_t(producer[size_t(v)])].kind != PlanStep::Kind::kView &&
           g.values[size_t(v)].shape.is_concrete() && view_source[size_t(v)] < 0;
      if (ok) total += bytes(v);
    }
    if (!ok || total != bytes(out) || images < 1) continue;
    // Several images: each producer, a plain blocked conv read by this Concat alone, rebuilt to
    // write its images the output's image apart.
    std::vector<std::shared_ptr<const kernels::NativeOp>> rebuilt;
    for (int v : s.inputs) {
      if (images == 1) break;
      const PlanStep& p = plan.steps[size_t(producer[size_t(v)])];
      const bool conv = p.kind == PlanStep::Kind::kNative && p.native &&
                        (p.native->kind() == kernels::NativeKind::kBlockedConv ||
                         p.native->kind() == kernels::NativeKind::kBlockedDepthwise);
      if (readers[size_t(v)] != 1 || !conv || p.epilogue.anchor < 0 || p.inputs.empty()) {
        ok = false;
        break;
      }
      const bool x_blocked = g.values[size_t(p.inputs[0])].shape.rank() == 5;
      auto op = kernels::make_nchwc_conv(g, p.epilogue, x_blocked, true, options.weights,
                                         options.winograd, bytes(out) / images / 4);
      if (!op || op->describe() != p.kernel_label) {  // the same kernel, the stride aside
        ok = false;
        break;
      }
      rebuilt.push_back(std::move(op));
    }
    if (!ok) continue;
    int64_t at = 0;
    for (size_t k = 0; k < s.inputs.size(); ++k) {
      const int v = s.inputs[k];
      plan.slices.push_back({v, out, at});
      sliced.insert(v);
      at += bytes(v) / images;
      if (images > 1) plan.steps[size_t(producer[size_t(v)])].native = rebuilt[k];
    }
    drop[si] = 1;
    plan.native_steps--;
  }
  if (plan.slices.empty()) return;
  std::vector<PlanStep> kept;
  for (size_t si = 0; si < plan.steps.size(); ++si)
    if (!drop[si]) kept.push_back(std::move(plan.steps[si]));
  plan.steps = std::move(kept);
}

}  // namespace

namespace detail {

// Throws when a run-time index tensor holds an index outside [-bound, bound).
void check_index_range(const ir::Node& n, const Tensor& idx, int64_t bound) {
  auto at = [&](int64_t i) {
    if (idx.dtype() == DType::kI64) return idx.data<int64_t>()[i];
    if (idx.dtype() == DType::kI32) return int64_t(idx.data<int32_t>()[i]);
    return idx.element_as_int(i);
  };
  for (int64_t i = 0; i < idx.numel(); ++i) {
    int64_t v = at(i);
    if (v < -bound || v >= bound)
      throw Error(ErrorCode::kInvalidArgument,
                  "node '" + n.name + "' (" + n.op_type + "): index " + std::to_string(v) +
                      " at position " + std::to_string(i) + " is out of range for a dim of " +
                      std::to_string(bound));
  }
}

// Runs one node's reference kernel on the values in env; outputs land in `outs`.
void run_reference(const ir::Graph& g, const ir::Node& n, const std::vector<Tensor>& env,
                   std::vector<Tensor>& outs) {
  std::vector<const Tensor*> ins(n.inputs.size(), nullptr);
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    int id = n.inputs[k];
    if (id < 0) continue;
    if (!env[size_t(id)].defined())
      throw Error(ErrorCode::kInternal,
                  "node '" + n.name + "': input '" + g.values[size_t(id)].name + "' has no value");
    ins[k] = &env[size_t(id)];
  }
  kernels::SubgraphRunner runner = [&n](const ir::Graph&,
                                        const std::vector<Tensor>&) -> std::vector<Tensor> {
    throw Error(ErrorCode::kInternal, "node '" + n.name + "': subgraph in a compiled plan");
  };
  kernels::KernelContext kctx(n, std::move(ins), &outs, std::move(runner));
  n.schema->kernel(kctx);
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    const ir::Value& v = g.values[size_t(n.outputs[k])];
    if (!outs[k].defined()) {
      if (v.name.empty()) continue;
      throw Error(ErrorCode::kInternal,
                  kctx.where() + ": kernel did not produce output '" + v.name + "'");
    }
    if (v.shape.is_concrete() &&
        (outs[k].dims() != v.shape.concrete() || outs[k].dtype() != v.dtype))
      throw Error(ErrorCode::kInternal,
                  kctx.where() + ": kernel produced " + dtype_name(outs[k].dtype()) +
                      dims_to_string(outs[k].dims()) + " for '" + v.name + "', the plan expected " +
                      dtype_name(v.dtype) + v.shape.to_string());
  }
}

}  // namespace detail

bool DimPolicy::is_dynamic(const ir::Dim& d) const {
  if (d.is_const() || mode == Specialization::kExact) return false;
  if (mode == Specialization::kDynamic) return true;
  if (dynamic_symbols.empty()) return false;
  if (d.is_unknown()) return true;
  for (const auto& t : symbol_tokens(d.symbol))
    if (dynamic_symbols.count(t)) return true;
  return false;
}

std::vector<std::string> Plan::describe() const {
  std::vector<std::string> lines;
  if (interpreted) {
    lines.push_back("interpreted (reference executor): " + interpreted_reason);
    return lines;
  }
  for (const auto& s : steps) {
    const ir::Node& n = graph->nodes[size_t(s.node)];
    std::string ops;
    for (int f : s.fused) ops += (ops.empty() ? "" : "+") + graph->nodes[size_t(f)].op_type;
    std::string line = n.name + " (" + (ops.empty() ? n.op_type : ops) + "): ";
    switch (s.kind) {
      case PlanStep::Kind::kKernel: {
        line += "jit " + s.kernel_key.substr(0, 12);
        if (s.blocked_io) line += " nchwc";
        if (!s.params.empty()) {
          line += " params [";
          for (size_t i = 0; i < s.params.size(); ++i)
            line += (i ? "," : "") + std::to_string(s.params[i]);
          line += "]";
        }
        break;
      }
      case PlanStep::Kind::kNative:
        line += "native " + s.kernel_label;
        break;
      case PlanStep::Kind::kReference:
        line += "reference";
        break;
      case PlanStep::Kind::kView:
        line += "view";
        break;
    }
    if (!s.outputs.empty()) {
      int o = s.outputs[0];
      const ir::Value& out = graph->values[size_t(o)];
      line += "  -> " + std::string(dtype_name(out.dtype)) + out.shape.to_string();
      switch (memory.storage[size_t(memory.root[size_t(o)])]) {
        case Storage::kArena:
          line += " @arena+" + std::to_string(memory.offset[size_t(memory.root[size_t(o)])] +
                                              memory.view_offset[size_t(o)]);
          if (s.kind != PlanStep::Kind::kView && memory.root[size_t(o)] != o)
            line += " (into a concat)";
          break;
        case Storage::kOutput:
          line += " @output";
          break;
        case Storage::kHeap:
          line += " @heap";
          break;
        default:
          break;
      }
      if (s.in_place_input >= 0 && memory.root[size_t(o)] == o && memory.offset[size_t(o)] >= 0 &&
          s.inputs[size_t(s.in_place_input)] >= 0 &&
          memory.offset[size_t(memory.root[size_t(s.inputs[size_t(s.in_place_input)])])] ==
              memory.offset[size_t(o)])
        line += " (in place)";
    }
    lines.push_back(line);
  }
  lines.push_back(std::to_string(launches()) + " launches per run (" + std::to_string(kernels) +
                  " jit, " + std::to_string(native_steps) + " native), arena " +
                  std::to_string(memory.arena_bytes) + " bytes for " +
                  std::to_string(memory.intermediate_bytes) + " bytes of intermediates, " +
                  std::to_string(memory.in_place) + " in place");
  lines.push_back(std::to_string(folded_nodes) + " nodes folded, " + std::to_string(dropped_nodes) +
                  " dropped, " + std::to_string(kernels) + " jit kernels (" +
                  std::to_string(kernels_compiled) + " compiled, " +
                  std::to_string(kernels_from_memory) + " from memory, " +
                  std::to_string(kernels_from_disk) + " from disk)");
  return lines;
}

std::shared_ptr<const Plan> build_plan(const ir::Graph& symbolic, const std::vector<Tensor>& inputs,
                                       const PlanOptions& options, const std::string& key) {
  auto t0 = Clock::now();
  auto plan = std::make_shared<Plan>();
  plan->key = key;
  auto g = std::make_shared<ir::Graph>(symbolic);
  plan->graph = g;

  // Bind the inputs: a provided input is data (not its initializer default), with exact dims.
  for (size_t i = 0; i < g->inputs.size() && i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    ir::Value& v = g->values[size_t(g->inputs[i])];
    v.constant = Tensor();
    v.dims_value.reset();
    v.dtype = inputs[i].dtype();
    v.shape = ir::Shape::of(inputs[i].dims());
  }

  // Concrete shapes, node by node, folding what becomes known.
  std::vector<char> folded(g->nodes.size(), 0);
  for (size_t ni = 0; ni < g->nodes.size() && !plan->interpreted; ++ni) {
    ir::Node& n = g->nodes[ni];
    if (has_subgraph(n)) {
      plan->interpreted = true;
      plan->interpreted_reason = "node '" + n.name + "' (" + n.op_type + ") has a subgraph";
      break;
    }
    std::vector<kernels::InputInfo> infos;
    bool foldable = !is_nondeterministic(n);
    for (int id : n.inputs) {
      kernels::InputInfo info;
      if (id >= 0) {
        ir::Value& v = g->values[size_t(id)];
        if (!v.constant.defined() && all_const(v.dims_value))
          v.constant = materialize_dims_value(v.dtype, v.shape, *v.dims_value);
        info.present = true;
        info.dtype = v.dtype;
        info.shape = v.shape;
        info.value = v.constant.defined() ? &v.constant : nullptr;
        info.dims_value = &v.dims_value;
        foldable &= v.constant.defined();
      }
      infos.push_back(std::move(info));
    }
    kernels::InferContext ctx(n, std::move(infos), false, [] { return ir::Dim::unknown(); });
    n.schema->infer(ctx);
    bool concrete = true;
    int64_t out_elems = 0;
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      ir::Value& v = g->values[size_t(n.outputs[k])];
      const auto& o = ctx.outputs()[k];
      if (!o.set) {
        concrete &= v.name.empty();
        continue;
      }
      v.dtype = o.dtype;
      v.shape = o.shape;
      v.dims_value = o.dims_value;
      if (o.value.defined()) v.constant = o.value;
      if (!v.shape.is_concrete()) {
        concrete = false;
      } else {
        out_elems += std::max<int64_t>(0, *v.shape.num_elements());
      }
    }
    if (!concrete) {
      plan->interpreted = true;
      plan->interpreted_reason =
          "the output shape of node '" + n.name + "' (" + n.op_type + ") depends on data";
      break;
    }
    bool all_known = true;
    for (int id : n.outputs) {
      ir::Value& v = g->values[size_t(id)];
      if (!v.constant.defined() && all_const(v.dims_value))
        v.constant = materialize_dims_value(v.dtype, v.shape, *v.dims_value);
      all_known &= v.constant.defined();
    }
    if (all_known) {
      folded[ni] = 1;
      continue;
    }
    if (foldable && out_elems <= (int64_t(1) << 24)) {
      std::vector<Tensor> env(g->values.size());
      for (int id : n.inputs)
        if (id >= 0) env[size_t(id)] = g->values[size_t(id)].constant;
      std::vector<Tensor> outs(n.outputs.size());
      for (size_t k = 0; k < n.outputs.size(); ++k) {
        const ir::Value& v = g->values[size_t(n.outputs[k])];
        if (v.dtype != DType::kUndefined && v.shape.is_concrete())
          outs[k] = Tensor(v.dtype, v.shape.concrete());
      }
      detail::run_reference(*g, n, env, outs);
      for (size_t k = 0; k < n.outputs.size(); ++k)
        g->values[size_t(n.outputs[k])].constant = outs[k];
      folded[ni] = 1;
    }
  }
  if (plan->interpreted) {
    plan->graph = nullptr;
    plan->build_ms = ms_since(t0);
    return plan;
  }

  // Chains of views and of Transposes collapsed at this specialization's shapes; the nodes they
  // absorb are left unread, for the liveness below to drop.
  if (options.use_jit && options.opt_level >= 1) {
    std::vector<char> absorbed;
    ir::passes::collapse_view_chains(*g, absorbed);
  }

  // Liveness: keep the nodes whose outputs reach a graph output.
  std::vector<char> needed(g->values.size(), 0), live(g->nodes.size(), 0);
  for (int id : g->outputs) needed[size_t(id)] = 1;
  for (size_t ni = g->nodes.size(); ni-- > 0;) {
    const ir::Node& n = g->nodes[ni];
    if (folded[ni]) {
      plan->folded_nodes++;
      continue;
    }
    bool any = false;
    for (int id : n.outputs) any |= needed[size_t(id)] != 0;
    if (!any) {
      plan->dropped_nodes++;
      continue;
    }
    live[ni] = 1;
    for (int id : n.inputs)
      if (id >= 0) needed[size_t(id)] = 1;
  }
  for (size_t v = 0; v < g->values.size(); ++v)
    if (needed[v] && g->values[v].constant.defined()) plan->constants.push_back(int(v));

  // Fusion groups, then steps with their kernels lowered.
  // Native kernels run on the CPU only: a plan for another backend stops at fusion.
  const int level = !options.use_jit          ? 0
                    : options.compile_kernels ? options.opt_level
                                              : std::min(options.opt_level, 2);
  // Whether each node lowers to an elementwise map, probed once (fusion and in-place both ask).
  std::vector<signed char> elementwise(g->nodes.size(), -1);
  auto is_elementwise = [&](size_t ni) {
    if (elementwise[ni] < 0)
      elementwise[ni] = lowers_elementwise(*g, symbolic, g->nodes[ni], options) ? 1 : 0;
    return elementwise[ni] == 1;
  };
  FusionHooks hooks;
  hooks.elementwise = [&](int ni) { return is_elementwise(size_t(ni)); };
  hooks.epilogue_anchor = [&](int ni) { return kernels::native_anchor(*g, g->nodes[size_t(ni)]); };
  hooks.epilogue_activation = [&](int ni) {
    return kernels::native_activation(*g, g->nodes[size_t(ni)]);
  };
  hooks.load_reads = [&](int ni) { return load_reads(*g, g->nodes[size_t(ni)]); };
  std::vector<FusionGroup> groups = form_groups(*g, live, level, hooks);

  auto single_step = [&](size_t ni) {
    const ir::Node& n = g->nodes[ni];
    PlanStep s;
    s.node = int(ni);
    s.fused = {int(ni)};
    s.inputs = n.inputs;
    s.outputs = n.outputs;
    bool done = false;
    if ((is_view_op(n) || (level >= 1 && is_noop_at_shapes(*g, n))) && n.inputs.size() >= 1 &&
        n.inputs[0] >= 0) {
      s.kind = PlanStep::Kind::kView;
      done = true;
    } else if (options.use_jit) {
      try {
        std::vector<int64_t> params;
        std::optional<jit::Kernel> k = lower_node(*g, symbolic, n, options, &params);
        if (k) {
          s.kind = PlanStep::Kind::kKernel;
          if ((n.op_type == "Gather" || n.op_type == "GatherElements") && n.domain.empty() &&
              n.inputs.size() >= 2 && n.inputs[1] >= 0 &&
              !g->values[size_t(n.inputs[1])].constant.defined()) {
            const ir::Value& data = g->values[size_t(n.inputs[0])];
            int64_t axis = kernels::NodeAttrs(n).attr_int("axis", 0);
            int rank = data.shape.rank();
            if (axis < 0) axis += rank;
            const DType it = g->values[size_t(n.inputs[1])].dtype;
            if (axis >= 0 && axis < rank && (it == DType::kI64 || it == DType::kI32)) {
              s.check_indices = 1;
              s.index_bound = data.shape.dims[size_t(axis)].value;
            }
          }
          s.elementwise = is_elementwise(ni);
          if (level >= 1 && s.elementwise)
            s.in_place_input = in_place_slot(*g, s.inputs, s.outputs[0]);
          s.params = std::move(params);
          s.kernel_label = k->label;
          s.ir = std::make_shared<const jit::Kernel>(std::move(*k));
          done = true;
        }
      } catch (const Error& e) {
        log(options.log_level, LogLevel::kWarning,
            "node '" + n.name + "' (" + n.op_type +
                "): lowering failed, using the reference kernel: " + e.what());
      }
    }
    if (!done) s.kind = PlanStep::Kind::kReference;
    plan->steps.push_back(std::move(s));
  };
  // A native kernel as one step standing for every node of its group.
  auto native_step = [&](std::shared_ptr<const kernels::NativeOp> op, const FusionGroup& grp,
                         int node, std::vector<int> inputs) {
    PlanStep s;
    s.kind = PlanStep::Kind::kNative;
    s.node = node;
    s.fused = grp.nodes;
    s.inputs = std::move(inputs);
    s.outputs = {g->nodes[size_t(grp.nodes.back())].outputs[0]};
    s.kernel_label = op->describe();
    plan->scratch_bytes = std::max(plan->scratch_bytes, int64_t(op->scratch_bytes()));
    s.native = std::move(op);
    plan->native_steps++;
    plan->steps.push_back(std::move(s));
  };
  // A JIT kernel standing for nodes[...]: the last node's outputs (all of them for a consumer
  // with a producer chain, output 0 of a chain).
  auto fused_step = [&](FusedKernel fk, const std::vector<int>& nodes, bool chain) {
    PlanStep s;
    s.kind = PlanStep::Kind::kKernel;
    s.node = nodes.back();
    s.fused = nodes;
    s.inputs = std::move(fk.inputs);
    const ir::Node& last = g->nodes[size_t(nodes.back())];
    s.outputs = chain ? std::vector<int>{last.outputs[0]} : last.outputs;
    s.elementwise = chain;
    if (chain) s.in_place_input = in_place_slot(*g, s.inputs, s.outputs[0]);
    s.params = std::move(fk.params);
    s.kernel_label = fk.kernel.label;
    s.ir = std::make_shared<const jit::Kernel>(std::move(fk.kernel));
    plan->steps.push_back(std::move(s));
  };
  // An elementwise chain as one step, or its nodes one by one when it does not lower.
  auto chain_steps = [&](const std::vector<int>& nodes) {
    std::optional<FusedKernel> fk;
    if (nodes.size() > 1) {
      try {
        fk = lower_chain(*g, symbolic, nodes, options);
      } catch (const Error& e) {
        log(options.log_level, LogLevel::kWarning,
            "fusing the chain ending at node '" + g->nodes[size_t(nodes.back())].name +
                "' failed, running its nodes one by one: " + e.what());
      }
    }
    if (fk)
      fused_step(std::move(*fk), nodes, true);
    else
      for (int ni : nodes) single_step(size_t(ni));
  };
  for (const FusionGroup& grp : groups) {
    if (grp.kind == FusionGroup::Kind::kChain) {
      chain_steps(grp.nodes);
      continue;
    }
    if (grp.kind == FusionGroup::Kind::kProducer) {
      std::optional<FusedKernel> fk;
      try {
        fk = lower_with_producer(*g, symbolic, grp.nodes, grp.producer_slot, options);
      } catch (const Error& e) {
        log(options.log_level, LogLevel::kWarning,
            "fusing node '" + g->nodes[size_t(grp.nodes.back())].name +
                "' with the chain before it failed, running them apart: " + e.what());
      }
      if (fk) {
        fused_step(std::move(*fk), grp.nodes, false);
      } else {
        chain_steps(std::vector<int>(grp.nodes.begin(), grp.nodes.end() - 1));
        single_step(size_t(grp.nodes.back()));
      }
      continue;
    }
    if (grp.kind == FusionGroup::Kind::kEpilogue) {
      kernels::EpilogueSpec spec;
      spec.anchor = grp.nodes[0];
      spec.bias_add = grp.bias_add;
      spec.residual_add = grp.residual_add;
      spec.residual = grp.residual;
      spec.activation = grp.activation;
      std::shared_ptr<const kernels::NativeOp> op;
      try {
        op = kernels::make_native_epilogue(*g, spec, options.weights);
      } catch (const Error& e) {
        log(options.log_level, LogLevel::kWarning,
            "node '" + g->nodes[size_t(grp.nodes[0])].name +
                "': no native kernel, using the JIT: " + e.what());
      }
      if (op) {
        native_step(std::move(op), grp, grp.nodes[0],
                    {g->nodes[size_t(grp.nodes[0])].inputs[0], grp.residual});
        plan->steps.back().epilogue = spec;
        continue;
      }
    }
    if (grp.kind == FusionGroup::Kind::kAttention) {
      std::shared_ptr<const kernels::NativeOp> op = kernels::make_native_attention(grp.attention);
      if (op) {
        native_step(std::move(op), grp, grp.nodes.back(),
                    {grp.attention.q.value, grp.attention.kt.value, grp.attention.v.value,
                     grp.attention.mask});
        continue;
      }
    }
    if (grp.kind == FusionGroup::Kind::kSingle && level >= 3 && grp.nodes.size() == 1) {
      const ir::Node& n = g->nodes[size_t(grp.nodes[0])];
      std::shared_ptr<const kernels::NativeOp> op = kernels::make_native_single(*g, n);
      if (op) {
        native_step(std::move(op), grp, grp.nodes[0], {n.inputs[0]});
        continue;
      }
    }
    for (int ni : grp.nodes) single_step(size_t(ni));
  }

  // Convolution chains (and the elementwise steps between them) in the blocked layout.
  if (level >= 3 && options.compile_kernels && options.blocked_layout) {
    const int64_t block = kernels::fast::nchwc_block();
    BlockedElementwise relower = [&](const PlanStep& s,
                                     const std::set<int>& blocked) -> std::optional<BlockedKernel> {
      PlanOptions exact = options;  // a blocked kernel is specialized for its exact dims
      exact.policy.mode = Specialization::kExact;
      ArgBuilder ab(symbolic, exact.policy);
      std::unique_ptr<ChainContexts> cc = chain_contexts(*g, s.fused, ab, exact);
      if (!cc) return std::nullopt;
      std::vector<char> mask;
      for (int id : cc->inputs) mask.push_back(blocked.count(id) ? 1 : 0);
      std::optional<jit::Kernel> k = kernels::lower_elementwise_chain_nchwc(
          *cc->fused, cc->members, cc->label + " nchwc", mask, block);
      if (!k) return std::nullopt;
      return BlockedKernel{std::move(*k), cc->inputs};
    };
    apply_nchwc_layout(*plan, *g, options.weights, relower, options.winograd);
  }

  std::vector<size_t> compile_step;  // the steps whose kernel is lowered, not yet compiled
  for (size_t i = 0; i < plan->steps.size(); ++i)
    if (plan->steps[i].kind == PlanStep::Kind::kKernel && plan->steps[i].ir)
      compile_step.push_back(i);
  if (!options.compile_kernels) {  // another backend compiles the IR (see PlanStep::ir)
    for (size_t i : compile_step) plan->has_params |= !plan->steps[i].params.empty();
    plan->kernels = int(compile_step.size());
    compile_step.clear();
  }
  std::vector<const jit::Kernel*> to_compile;
  for (size_t i : compile_step) to_compile.push_back(plan->steps[i].ir.get());

  // Compile (or find) every kernel, several at once.
  jit::KernelCache& cache = options.cache ? *options.cache : jit::KernelCache::global();
  std::vector<jit::KernelLookup> found(to_compile.size());
  std::vector<std::string> errors(to_compile.size());
  // Plain threads pulling from a counter (not TBB): a compile is long and blocking, and a joined
  // std::thread orders its writes before our reads in a way ThreadSanitizer can see.
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < to_compile.size();) {
      try {
        found[i] = cache.get(*to_compile[i], options.cache_dir);
      } catch (const std::exception& e) {  // a thread must not let an exception escape
        errors[i] = e.what();
      }
    }
  };
  size_t helpers = std::min<size_t>(to_compile.size(), size_t(devices::Cpu::hardware_threads()));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < helpers; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  std::vector<char> failed(plan->steps.size(), 0);
  for (size_t i = 0; i < to_compile.size(); ++i) {
    PlanStep& s = plan->steps[compile_step[i]];
    if (!found[i].kernel) {
      const ir::Node& n = g->nodes[size_t(s.node)];
      log(options.log_level, LogLevel::kWarning,
          "node '" + n.name + "' (" + n.op_type +
              "): kernel compile failed, using the reference kernel: " + errors[i]);
      failed[compile_step[i]] = 1;
      continue;
    }
    s.kernel = found[i].kernel;
    s.kernel_key = found[i].key;
    plan->has_params |= !s.params.empty();
    plan->kernels++;
    plan->compile_ms += found[i].compile_ms;
    switch (found[i].source) {
      case jit::KernelSource::kCompiled:
        plan->kernels_compiled++;
        break;
      case jit::KernelSource::kMemory:
        plan->kernels_from_memory++;
        break;
      case jit::KernelSource::kDisk:
        plan->kernels_from_disk++;
        break;
    }
  }
  // A kernel that failed to compile: its nodes run on their reference kernels.
  if (std::find(failed.begin(), failed.end(), 1) != failed.end()) {
    std::vector<PlanStep> steps;
    for (size_t si = 0; si < plan->steps.size(); ++si) {
      if (!failed[si]) {
        steps.push_back(std::move(plan->steps[si]));
        continue;
      }
      if (plan->steps[si].blocked_io)  // its values exist only in the blocked layout
        throw Error(ErrorCode::kInternal, "the blocked kernel of node '" +
                                              g->nodes[size_t(plan->steps[si].node)].name +
                                              "' failed to compile");
      for (int ni : plan->steps[si].fused) {
        const ir::Node& n = g->nodes[size_t(ni)];
        PlanStep s;
        s.kind = PlanStep::Kind::kReference;
        s.node = ni;
        s.fused = {ni};
        s.inputs = n.inputs;
        s.outputs = n.outputs;
        steps.push_back(std::move(s));
      }
    }
    plan->steps = std::move(steps);
  }

  if (options.concat_in_place) write_concat_inputs_in_place(*plan, options);
  plan_step_memory(*plan);
  for (int id : g->outputs) {
    const ir::Value& v = g->values[size_t(id)];
    plan->output_dims.push_back(v.shape.is_concrete() ? v.shape.concrete() : Dims{});
  }
  plan->build_ms = ms_since(t0);
  return plan;
}

std::vector<LoweredKernel> lower_plan_kernels(const ir::Graph& symbolic,
                                              const std::vector<Tensor>& inputs,
                                              const PlanOptions& options, int gpu_multiprocessors,
                                              bool gpu_tf32) {
  PlanOptions po = options;
  po.compile_kernels = false;
  auto plan = build_plan(symbolic, inputs, po, "");
  std::vector<std::optional<CudaGemmLaunch>> gemms(plan->steps.size());
  if (gpu_multiprocessors > 0)
    gemms = plan_cuda_gemms(*plan, gpu_multiprocessors, /*fuse_epilogues=*/true, gpu_tf32);
  std::vector<char> absorbed(plan->steps.size(), 0);
  for (const auto& l : gemms)
    if (l)
      for (int a : l->absorbed) absorbed[size_t(a)] = 1;
  std::vector<LoweredKernel> out;
  for (size_t si = 0; si < plan->steps.size(); ++si) {
    const PlanStep& s = plan->steps[si];
    if (s.kind != PlanStep::Kind::kKernel || !s.ir || absorbed[si]) continue;
    out.push_back({plan->graph->nodes[size_t(s.node)].name, s.ir, std::nullopt, ""});
    if (gemms[si]) {
      out.back().gemm = gemms[si]->gemm;
      out.back().label = gemms[si]->label;
    }
  }
  return out;
}

void run_reference_node(const ir::Graph& g, const ir::Node& n, const std::vector<Tensor>& env,
                        std::vector<Tensor>& outs) {
  detail::run_reference(g, n, env, outs);
}

void check_step_indices(const ir::Node& n, const Tensor& idx, int64_t bound) {
  detail::check_index_range(n, idx, bound);
}

}  // namespace kiln::engine
