// Plan building (specialization, folding, lowering, compiling) and plan execution.
#include "engine/plan.h"

#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "devices/cpu.h"
#include "engine/log.h"
#include "kernels/registry.h"

namespace kiln::engine {

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

// Builds TensorArgs for a node, assigning kernel parameters to dynamic dims.
class ArgBuilder {
 public:
  ArgBuilder(const ir::Graph& symbolic, const DimPolicy& policy)
      : symbolic_(symbolic), policy_(policy) {}

  kernels::TensorArg arg(int value, jit::ScalarType type, const Dims& dims) {
    kernels::TensorArg a;
    a.type = type;
    a.concrete = dims;
    const ir::Value& sv = symbolic_.values[size_t(value)];
    for (size_t d = 0; d < dims.size(); ++d) {
      int64_t c = dims[d];
      ir::Dim sd = sv.shape.has_rank && sv.shape.rank() == int(dims.size()) ? sv.shape.dims[d]
                                                                            : ir::Dim::unknown();
      if (c <= 1 || !policy_.is_dynamic(sd)) {
        a.dims.push_back(jit::imm(c));
        continue;
      }
      std::string key =
          sd.is_symbol() ? sd.symbol : "v" + std::to_string(value) + ":" + std::to_string(d);
      key += "=" + std::to_string(c);
      auto it = params_.find(key);
      if (it == params_.end()) {
        it = params_.emplace(key, int(values_.size())).first;
        values_.push_back(c);
      }
      a.dims.push_back(jit::param(it->second));
      // Schedules are chosen from `concrete`; a parameter dim shows the same representative
      // value in every specialization, so the kernel's IR (and its cache key) does not depend
      // on this shape's value.
      a.concrete[d] = kernels::kRepresentativeDynamicDim;
    }
    a.strides = jit::contiguous_strides(a.dims);
    return a;
  }
  const std::vector<int64_t>& param_values() const { return values_; }

 private:
  const ir::Graph& symbolic_;
  const DimPolicy& policy_;
  std::map<std::string, int> params_;
  std::vector<int64_t> values_;
};

// The lowered kernel for node `n` of the specialized graph, or nullopt.
std::optional<jit::Kernel> lower_node(const ir::Graph& g, const ir::Graph& symbolic,
                                      const ir::Node& n, const PlanOptions& options,
                                      std::vector<int64_t>* params) {
  const kernels::LowerFn* fn = kernels::Lowerings::global().find(n.domain, n.op_type);
  if (!fn) return std::nullopt;
  ArgBuilder ab(symbolic, options.policy);
  std::vector<std::optional<kernels::TensorArg>> ins;
  std::vector<const Tensor*> consts;
  for (int id : n.inputs) {
    if (id < 0) {
      ins.emplace_back();
      consts.push_back(nullptr);
      continue;
    }
    const ir::Value& v = g.values[size_t(id)];
    auto t = jit::scalar_type_of(v.dtype);
    if (!t || !v.shape.is_concrete()) return std::nullopt;
    ins.emplace_back(ab.arg(id, *t, v.shape.concrete()));
    consts.push_back(v.constant.defined() ? &v.constant : nullptr);
  }
  std::vector<kernels::TensorArg> outs;
  for (int id : n.outputs) {
    const ir::Value& v = g.values[size_t(id)];
    auto t = jit::scalar_type_of(v.dtype);
    if (!t || !v.shape.is_concrete()) return std::nullopt;
    outs.push_back(ab.arg(id, *t, v.shape.concrete()));
  }
  kernels::LowerContext ctx(n, std::move(ins), std::move(outs), std::move(consts),
                            options.schedule);
  std::optional<jit::Kernel> k = (*fn)(ctx);
  if (k) *params = ab.param_values();
  if (k && k->num_params > int(params->size()))
    throw Error(ErrorCode::kInternal, "lowering of node '" + n.name + "' uses " +
                                          std::to_string(k->num_params) + " params, " +
                                          std::to_string(params->size()) + " bound");
  return k;
}

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

}  // namespace

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
    std::string line = n.name + " (" + n.op_type + "): ";
    switch (s.kind) {
      case PlanStep::Kind::kKernel: {
        line += "jit " + s.kernel_key.substr(0, 12);
        if (!s.params.empty()) {
          line += " params [";
          for (size_t i = 0; i < s.params.size(); ++i)
            line += (i ? "," : "") + std::to_string(s.params[i]);
          line += "]";
        }
        break;
      }
      case PlanStep::Kind::kReference:
        line += "reference";
        break;
      case PlanStep::Kind::kView:
        line += "view";
        break;
    }
    if (!s.outputs.empty()) {
      const ir::Value& out = graph->values[size_t(s.outputs[0])];
      line += "  -> " + std::string(dtype_name(out.dtype)) + out.shape.to_string();
    }
    lines.push_back(line);
  }
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
      run_reference(*g, n, env, outs);
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

  // Steps, with their kernels lowered.
  std::vector<jit::Kernel> to_compile;
  std::vector<size_t> compile_step;
  for (size_t ni = 0; ni < g->nodes.size(); ++ni) {
    if (!live[ni]) continue;
    const ir::Node& n = g->nodes[ni];
    PlanStep s;
    s.node = int(ni);
    s.inputs = n.inputs;
    s.outputs = n.outputs;
    bool done = false;
    if (is_view_op(n) && n.inputs.size() >= 1 && n.inputs[0] >= 0) {
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
            if (axis >= 0 && axis < rank) {
              s.check_indices = 1;
              s.index_bound = data.shape.dims[size_t(axis)].value;
            }
          }
          s.params = std::move(params);
          s.kernel_label = k->label;
          s.ir = std::make_shared<const jit::Kernel>(*k);
          to_compile.push_back(std::move(*k));
          compile_step.push_back(plan->steps.size());
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
  }

  if (!options.compile_kernels) {  // another backend compiles the IR (see PlanStep::ir)
    for (size_t i : compile_step) plan->has_params |= !plan->steps[i].params.empty();
    plan->kernels = int(compile_step.size());
    to_compile.clear();
    compile_step.clear();
  }

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
        found[i] = cache.get(to_compile[i], options.cache_dir);
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
  for (size_t i = 0; i < to_compile.size(); ++i) {
    PlanStep& s = plan->steps[compile_step[i]];
    if (!found[i].kernel) {
      const ir::Node& n = g->nodes[size_t(s.node)];
      log(options.log_level, LogLevel::kWarning,
          "node '" + n.name + "' (" + n.op_type +
              "): kernel compile failed, using the reference kernel: " + errors[i]);
      s.kind = PlanStep::Kind::kReference;
      s.params.clear();
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

  // Release points: a value dies after the last step reading it (graph outputs never).
  std::vector<int> last(g->values.size(), -1);
  for (size_t si = 0; si < plan->steps.size(); ++si)
    for (int id : plan->steps[si].inputs)
      if (id >= 0) last[size_t(id)] = int(si);
  for (int id : g->outputs) last[size_t(id)] = -1;
  for (size_t v = 0; v < last.size(); ++v)
    if (last[v] >= 0) plan->steps[size_t(last[v])].release.push_back(int(v));
  plan->build_ms = ms_since(t0);
  return plan;
}

std::vector<LoweredKernel> lower_plan_kernels(const ir::Graph& symbolic,
                                              const std::vector<Tensor>& inputs,
                                              const PlanOptions& options) {
  PlanOptions po = options;
  po.compile_kernels = false;
  auto plan = build_plan(symbolic, inputs, po, "");
  std::vector<LoweredKernel> out;
  for (const PlanStep& s : plan->steps)
    if (s.kind == PlanStep::Kind::kKernel && s.ir)
      out.push_back({plan->graph->nodes[size_t(s.node)].name, s.ir});
  return out;
}

void run_reference_node(const ir::Graph& g, const ir::Node& n, const std::vector<Tensor>& env,
                        std::vector<Tensor>& outs) {
  run_reference(g, n, env, outs);
}

void check_step_indices(const ir::Node& n, const Tensor& idx, int64_t bound) {
  check_index_range(n, idx, bound);
}

std::vector<Tensor> run_plan(const Plan& plan, const Executor& reference,
                             const std::vector<Tensor>& inputs, const std::vector<Tensor>* preset) {
  if (plan.interpreted) return reference.run(inputs, {}, preset);
  const ir::Graph& g = *plan.graph;
  std::vector<Tensor> env(g.values.size());
  for (int v : plan.constants) env[size_t(v)] = g.values[size_t(v)].constant;
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i)
    if (inputs[i].defined()) env[size_t(g.inputs[i])] = inputs[i];

  std::map<int, const Tensor*> caller;
  if (preset)
    for (size_t i = 0; i < g.outputs.size() && i < preset->size(); ++i)
      if ((*preset)[i].defined()) caller[g.outputs[i]] = &(*preset)[i];

  std::vector<void*> buffers;
  std::vector<Tensor> outs;
  for (const PlanStep& s : plan.steps) {
    const ir::Node& n = g.nodes[size_t(s.node)];
    outs.assign(s.outputs.size(), Tensor());
    if (s.kind == PlanStep::Kind::kView) {
      const Tensor& in = env[size_t(s.inputs[0])];
      env[size_t(s.outputs[0])] = in.reshaped(g.values[size_t(s.outputs[0])].shape.concrete());
    } else {
      for (size_t k = 0; k < s.outputs.size(); ++k) {
        const ir::Value& v = g.values[size_t(s.outputs[k])];
        if (v.dtype == DType::kUndefined || !v.shape.is_concrete()) continue;
        Dims dims = v.shape.concrete();
        auto c = caller.find(s.outputs[k]);
        if (c != caller.end() && c->second->dtype() == v.dtype && c->second->dims() == dims)
          outs[k] = *c->second;
        else
          outs[k] = Tensor(v.dtype, std::move(dims));
      }
      if (s.kind == PlanStep::Kind::kKernel) {
        if (s.check_indices >= 0)
          check_index_range(n, env[size_t(s.inputs[size_t(s.check_indices)])], s.index_bound);
        buffers.clear();
        for (int id : s.inputs) buffers.push_back(id >= 0 ? env[size_t(id)].raw_data() : nullptr);
        for (const Tensor& t : outs) buffers.push_back(t.raw_data());
        s.kernel->fn()(buffers.data(), s.params.data());
      } else {
        run_reference(g, n, env, outs);
      }
      for (size_t k = 0; k < s.outputs.size(); ++k)
        if (outs[k].defined()) env[size_t(s.outputs[k])] = std::move(outs[k]);
    }
    for (int v : s.release) env[size_t(v)] = Tensor();
  }
  std::vector<Tensor> result;
  result.reserve(g.outputs.size());
  for (int id : g.outputs) {
    if (!env[size_t(id)].defined())
      throw Error(ErrorCode::kInternal,
                  "graph output '" + g.values[size_t(id)].name + "' was not computed");
    // A folded value (or a view of one) is plan memory: hand out a copy.
    bool folded = false;
    for (int v : plan.constants)
      folded |= env[size_t(id)].numel() > 0 &&
                g.values[size_t(v)].constant.raw_data() == env[size_t(id)].raw_data();
    result.push_back(folded ? env[size_t(id)].clone() : env[size_t(id)]);
  }
  return result;
}

}  // namespace kiln::engine
