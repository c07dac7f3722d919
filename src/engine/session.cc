// kiln::Session: load, validate inputs, run through the executor.
#include "kiln/session.h"

#include <charconv>
#include <filesystem>
#include <map>
#include <sstream>

#include "engine/cuda_gemm_select.h"
#include "engine/device_select.h"
#include "engine/env.h"
#include "engine/log.h"
#include "engine/plan.h"
#include "engine/session_impl.h"
#include "ir/onnx_import.h"
#include "ir/passes/pipeline.h"
#include "ir/shape_inference.h"
#include "jit/host_target.h"
#include "jit/kernel_cache.h"
#include "kernels/registry.h"

#ifdef KILN_WITH_CUDA
#include "engine/cuda_executor.h"
#endif

namespace kiln {

const char* version() { return "0.1.0"; }

std::string build_info() {
  std::ostringstream os;
  os << "kiln " << version() << " (LLVM " << jit::llvm_version() << ", host cpu "
     << jit::host_cpu_name() << ", f32 vector lanes " << jit::host_vector_lanes_f32() << ")";
  return os.str();
}

std::vector<std::string> supported_operators() {
  std::vector<std::string> out;
  for (const auto* s : kernels::Registry::global().all())
    out.push_back(s->op + " (" + (s->domain.empty() ? std::string("ai.onnx") : s->domain) +
                  ", opset " + std::to_string(s->since_version) + "+)");
  return out;
}

std::string ValueInfo::to_string() const {
  std::string s = std::string(dtype_name(dtype));
  if (!has_shape) return s + "[?]";
  s += "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "," : "") + (shape[i].is_constant()
                               ? std::to_string(shape[i].value)
                               : (shape[i].symbol.empty() ? "?" : shape[i].symbol));
  return s + "]";
}

namespace {

ValueInfo describe(const ir::Value& v) {
  ValueInfo info;
  info.name = v.name;
  info.dtype = v.dtype;
  info.has_shape = v.shape.has_rank;
  for (const auto& d : v.shape.dims)
    info.shape.push_back(Dim{d.is_const() ? d.value : -1, d.is_const() ? "" : d.symbol});
  info.has_default = v.constant.defined();
  return info;
}

void warm_up(Session::Impl& impl);

std::unique_ptr<Session::Impl> load(std::span<const uint8_t> bytes, const SessionOptions& options,
                                    const std::string& base_dir) {
  if (options.intra_op_threads < 0)
    throw Error(ErrorCode::kInvalidArgument, "intra_op_threads must be >= 0");
  if (options.optimization_level < 0 || options.optimization_level > 3)
    throw Error(ErrorCode::kInvalidArgument, "optimization_level must be 0..3, got " +
                                                 std::to_string(options.optimization_level));
  if (options.max_specializations == 0)
    throw Error(ErrorCode::kInvalidArgument, "max_specializations must be at least 1");
  auto impl = std::make_unique<Session::Impl>();
  impl->options = options;
  impl->device = engine::resolve_device(options.device, options.log_level);
  impl->gpu_lowering_on_cpu =
      impl->device == Device::kCpu && engine::env_flag("KILN_GPU_LOWERING_ON_CPU", false);
  impl->graph = ir::import_onnx(bytes, base_dir);
  ir::infer_shapes(*impl->graph);
  size_t imported_nodes = impl->graph->nodes.size();
  ir::passes::PassStats ps = ir::passes::optimize_graph(*impl->graph, options.optimization_level);
  if (!ps.applied.empty()) ir::infer_shapes(*impl->graph);
  std::string applied;
  for (const auto& [pass, n] : ps.applied) {
    impl->pass_stats[pass] = n;
    applied += (applied.empty() ? "" : ", ") + pass + " " + std::to_string(n);
  }
  if (options.optimization_level > 0)
    engine::log(options.log_level, LogLevel::kInfo,
                "graph passes (level " + std::to_string(options.optimization_level) +
                    "): " + std::to_string(imported_nodes) + " -> " +
                    std::to_string(impl->graph->nodes.size()) + " nodes" +
                    (applied.empty() ? "" : "; " + applied));
  const ir::Graph& g = *impl->graph;
  for (int id : g.inputs) {
    const ir::Value& v = g.values[size_t(id)];
    if (v.kind != ir::ValueKind::kTensor)
      throw Error(ErrorCode::kUnsupported,
                  "input '" + v.name +
                      "' is a sequence, optional or map; only tensor inputs are supported");
    impl->inputs.push_back(describe(v));
  }
  for (int id : g.outputs) {
    const ir::Value& v = g.values[size_t(id)];
    if (v.kind != ir::ValueKind::kTensor)
      throw Error(ErrorCode::kUnsupported,
                  "output '" + v.name +
                      "' is a sequence, optional or map; only tensor outputs are supported");
    impl->outputs.push_back(describe(v));
  }
  impl->executor = std::make_unique<engine::Executor>(*impl->graph);
  impl->plans = std::make_unique<engine::PlanCache>(options.max_specializations);
  impl->cpu = std::make_unique<devices::Cpu>(options.intra_op_threads);
  impl->cache_dir = jit::resolve_cache_dir(options.cache_dir);
#ifdef KILN_WITH_CUDA
  if (impl->device == Device::kCuda) {
    try {
      impl->cuda = std::make_shared<engine::CudaExecutor>(
          impl->cache_dir, options.log_level, options.outputs_on_device, options.allow_tf32);
    } catch (const Error& e) {
      if (options.device != Device::kAuto) throw;
      engine::log(
          options.log_level, LogLevel::kInfo,
          std::string("device auto: using the CPU (the GPU did not start: ") + e.what() + ")");
      impl->device = Device::kCpu;
    }
  }
#endif
  for (const auto& v : g.values)
    if (v.constant.defined() && v.constant.numel() > 0)
      impl->constant_data.insert(v.constant.raw_data());
  impl->weights = std::make_unique<kernels::WeightCache>();
  impl->weights->set_shareable(impl->constant_data);
  engine::log(options.log_level, LogLevel::kInfo,
              "model loaded: " + std::to_string(g.nodes.size()) + " nodes, " +
                  std::to_string(impl->inputs.size()) + " inputs, " +
                  std::to_string(impl->outputs.size()) + " outputs, ai.onnx opset " +
                  std::to_string(g.opset("")));
  warm_up(*impl);
  return impl;
}

// Checks the caller's inputs against the model and orders them as the graph's inputs.
std::vector<Tensor> bind_inputs(const Session::Impl& s, const TensorMap& inputs, std::string* key) {
  const ir::Graph& g = *s.graph;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < g.inputs.size(); ++i) index[g.values[size_t(g.inputs[i])].name] = i;
  for (const auto& [name, t] : inputs) {
    if (!index.count(name)) {
      std::string names;
      for (const auto& in : s.inputs)
        names += (names.empty() ? "" : ", ") + in.name + " " + in.to_string();
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown input '" + name + "'; the model's inputs are: " + names);
    }
  }
  std::vector<Tensor> bound(g.inputs.size());
  std::map<std::string, std::pair<int64_t, std::string>> symbols;  // symbol -> value, where seen
  std::ostringstream k;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const ir::Value& v = g.values[size_t(g.inputs[i])];
    auto it = inputs.find(v.name);
    if (it == inputs.end()) {
      if (v.constant.defined()) continue;
      throw Error(ErrorCode::kInvalidArgument,
                  "input '" + v.name + "' (" + s.inputs[i].to_string() + ") is missing");
    }
    const Tensor& t = it->second;
    if (!t.defined())
      throw Error(ErrorCode::kInvalidArgument, "input '" + v.name + "' is an undefined tensor");
    if (t.dtype() != v.dtype && v.dtype != DType::kUndefined)
      throw Error(ErrorCode::kInvalidArgument, "input '" + v.name + "': element type is " +
                                                   dtype_name(t.dtype()) + ", model requires " +
                                                   dtype_name(v.dtype));
    if (v.shape.has_rank) {
      if (t.rank() != v.shape.rank())
        throw Error(ErrorCode::kInvalidArgument,
                    "input '" + v.name + "': rank is " + std::to_string(t.rank()) + " (" +
                        dims_to_string(t.dims()) + "), model requires rank " +
                        std::to_string(v.shape.rank()) + " " + v.shape.to_string());
      for (int d = 0; d < t.rank(); ++d) {
        const ir::Dim& md = v.shape.dims[size_t(d)];
        int64_t got = t.dims()[size_t(d)];
        if (md.is_const() && md.value != got)
          throw Error(ErrorCode::kInvalidArgument,
                      "input '" + v.name + "': dim " + std::to_string(d) + " is " +
                          std::to_string(got) + ", model requires " + std::to_string(md.value));
        if (md.is_symbol()) {
          std::string where = "input '" + v.name + "' dim " + std::to_string(d);
          auto [sit, fresh] = symbols.emplace(md.symbol, std::make_pair(got, where));
          if (!fresh && sit->second.first != got)
            throw Error(ErrorCode::kInvalidArgument,
                        where + " is " + std::to_string(got) + " but '" + md.symbol + "' is " +
                            std::to_string(sit->second.first) + " at " + sit->second.second);
        }
      }
    }
    bound[i] = t;
    k << v.name << ':' << dtype_name(t.dtype()) << dims_to_string(t.dims()) << ';';
  }
  *key = k.str();
  return bound;
}

// Builds a plan for bound inputs; `exact` forces constant dims (hot-shape promotion).
std::shared_ptr<const engine::Plan> build_for(Session::Impl& s, const std::vector<Tensor>& bound,
                                              const std::string& key, bool exact) {
  {
    engine::PlanOptions po;
    po.use_jit = s.options.use_jit;
    po.opt_level = s.options.optimization_level;
    po.weights = s.weights.get();
    po.cache_dir = s.cache_dir;
    po.log_level = s.options.log_level;
    // KILN_BLOCKED_LAYOUT=0 keeps level 3 in NCHW (for comparing the layouts).
    static const bool blocked = engine::env_flag("KILN_BLOCKED_LAYOUT", true);
    po.blocked_layout = blocked;
    // KILN_WINOGRAD=0 keeps 3x3 layers on the direct blocked convolution.
    static const bool winograd = engine::env_flag("KILN_WINOGRAD", true);
    po.winograd = winograd;
    // KILN_CONCAT_IN_PLACE=0 keeps blocked concats as copy steps.
    static const bool concat_in_place = engine::env_flag("KILN_CONCAT_IN_PLACE", true);
    po.concat_in_place = concat_in_place;
    if (s.device == Device::kCuda) {  // the GPU compiles the IR itself, with NVRTC
      po.compile_kernels = false;
      po.schedule = engine::cuda_schedule();
    } else if (s.gpu_lowering_on_cpu) {  // the same kernels as a CUDA plan's, for LLVM
      po.opt_level = std::min(po.opt_level, 2);
      po.schedule = engine::cuda_schedule();
    }
    po.policy.mode = exact ? Specialization::kExact : s.options.specialization;
    const ir::Graph& g = *s.graph;
    std::string why = exact ? "run often: recompiled with constant dims" : "";
    if (!exact) {
      // Auto policy: a symbol seen with a second value becomes a kernel parameter.
      std::lock_guard<std::mutex> lock(s.policy_mu);
      for (size_t i = 0; i < g.inputs.size() && i < bound.size(); ++i) {
        if (!bound[i].defined()) continue;
        const ir::Value& v = g.values[size_t(g.inputs[i])];
        for (int d = 0; d < v.shape.rank() && d < bound[i].rank(); ++d) {
          const ir::Dim& sd = v.shape.dims[size_t(d)];
          if (!sd.is_symbol()) continue;
          auto& seen = s.symbol_values[sd.symbol];
          int64_t got = bound[i].dims()[size_t(d)];
          if (seen.insert(got).second && seen.size() > 1)
            why += (why.empty() ? "" : "; ") + std::string("input '") + v.name + "' dim " +
                   std::to_string(d) + " (" + sd.symbol + ") = " + std::to_string(got) + " is new";
        }
      }
      for (const auto& [sym, vals] : s.symbol_values)
        if (vals.size() > 1) po.policy.dynamic_symbols.insert(sym);
      if (why.empty()) why = "no new dim value: a first shape, or a plan evicted earlier";
    }
    auto plan = engine::build_plan(g, bound, po, key);
    {
      std::lock_guard<std::mutex> lock(s.policy_mu);
      s.kernels_compiled += uint64_t(plan->kernels_compiled);
      s.kernel_cache_hits += uint64_t(plan->kernels_from_memory + plan->kernels_from_disk);
      s.kernel_disk_hits += uint64_t(plan->kernels_from_disk);
      s.compile_ms += plan->compile_ms;
      s.specialize_ms += plan->build_ms;
    }
    if (s.options.log_level >= LogLevel::kDebug) {
      std::string dyn;
      for (const auto& d : po.policy.dynamic_symbols) dyn += (dyn.empty() ? "" : ",") + d;
      engine::log(s.options.log_level, LogLevel::kDebug,
                  "specialized for " + key + (why.empty() ? "" : " (" + why + ")") +
                      (dyn.empty() ? "" : "; dynamic dims: " + dyn) + ": " +
                      std::to_string(plan->steps.size()) + " steps, " +
                      std::to_string(plan->kernels) + " kernels (" +
                      std::to_string(plan->kernels_compiled) + " compiled) in " +
                      std::to_string(int64_t(plan->build_ms)) + " ms" +
                      (plan->interpreted ? "; interpreted: " + plan->interpreted_reason : ""));
    }
    return plan;
  }
}

void maybe_promote(Session::Impl& s, const std::shared_ptr<const engine::Plan>& plan,
                   const std::vector<const Tensor*>& bound, const std::string& key);

// Finds or builds the plan for bound inputs with shape key `key`.
std::shared_ptr<const engine::Plan> plan_for(Session::Impl& s, const std::vector<Tensor>& bound,
                                             const std::string& key) {
  auto plan = s.plans->get_or_build(key, [&] { return build_for(s, bound, key, false); });
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : bound) ptrs.push_back(t.defined() ? &t : nullptr);
  maybe_promote(s, plan, ptrs, key);
  return plan;
}

void maybe_promote(Session::Impl& s, const std::shared_ptr<const engine::Plan>& plan,
                   const std::vector<const Tensor*>& bound, const std::string& key) {
  if (s.options.specialization != Specialization::kAuto || s.options.hot_shape_runs <= 0 ||
      !plan->has_params || plan->runs.fetch_add(1) + 1 != s.options.hot_shape_runs)
    return;
  std::vector<Tensor> shapes;  // dims and dtypes only: the caller's data may be gone later
  for (const Tensor* t : bound) shapes.push_back(t ? Tensor(t->dtype(), t->dims()) : Tensor());
  Session::Impl* sp = &s;
  s.background.run([sp, shapes, key] {
    try {
      sp->plans->replace(key, build_for(*sp, shapes, key, true));
      sp->hot_promotions++;
    } catch (const std::exception& e) {
      engine::log(sp->options.log_level, LogLevel::kWarning,
                  std::string("recompiling a hot shape failed: ") + e.what());
    }
  });
}

// Zero-filled inputs of the given dims, bound as run() binds them.
std::vector<Tensor> shaped_inputs(const Session::Impl& s, const std::map<std::string, Dims>& shapes,
                                  std::string* key) {
  TensorMap m;
  for (const auto& [name, dims] : shapes) {
    DType dt = DType::kUndefined;
    for (const auto& in : s.inputs)
      if (in.name == name) dt = in.dtype;
    if (dt == DType::kUndefined)
      throw Error(ErrorCode::kInvalidArgument, "unknown input '" + name + "'");
    m[name] = Tensor(dt, dims);
  }
  for (const auto& in : s.inputs) {
    if (m.count(in.name) || in.has_default) continue;
    Dims dims;
    for (const auto& d : in.shape) {
      if (!d.is_constant())
        throw Error(ErrorCode::kInvalidArgument,
                    "input '" + in.name + "' (" + in.to_string() + ") needs a shape");
      dims.push_back(d.value);
    }
    m[in.name] = Tensor(in.dtype, dims);
  }
  return bind_inputs(s, m, key);
}

void warm_up(Session::Impl& impl) {
  for (const auto& shapes : impl.options.warmup_shapes) {
    std::string key;
    std::vector<Tensor> bound = shaped_inputs(impl, shapes, &key);
    plan_for(impl, bound, key);
  }
}

}  // namespace

Session::Session(const std::string& path, const SessionOptions& options) {
  std::string bytes = ir::read_file(path);
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  try {
    impl_ = load({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, options, dir);
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Session Session::from_bytes(std::span<const uint8_t> bytes, const SessionOptions& options,
                            const std::string& base_dir) {
  return Session(load(bytes, options, base_dir));
}

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

const std::vector<ValueInfo>& Session::input_info() const { return impl_->inputs; }
const std::vector<ValueInfo>& Session::output_info() const { return impl_->outputs; }
const SessionOptions& Session::options() const { return impl_->options; }

TensorMap Session::run(const TensorMap& inputs) const { return run(inputs, RunOptions{}); }

TensorMap Session::run(const TensorMap& inputs, const RunOptions& options) const {
  TensorMap out;
  run(inputs, {}, &out, options);
  return out;
}

void Session::run(const TensorMap& inputs, const TensorMap& outputs) const {
  run(inputs, outputs, nullptr, RunOptions{});
}

void Session::run(const TensorMap& inputs, const TensorMap& outputs,
                  const RunOptions& options) const {
  run(inputs, outputs, nullptr, options);
}

namespace {

// "[2,3,4]" appended without temporaries (the same text as dims_to_string).
void append_dims(std::string& s, const Dims& dims) {
  char buf[24];
  s += '[';
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ',';
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), dims[i]);
    s.append(buf, end);
  }
  s += ']';
}

// Per-thread buffers of the steady-state path, reused so a run of a known shape allocates
// nothing.
struct RunScratch {
  std::string key;
  std::vector<const Tensor*> inputs, preset;
  std::vector<Tensor> result;
};
RunScratch& run_scratch() {
  thread_local RunScratch s;
  return s;
}

}  // namespace

void Session::run(const TensorMap& inputs, const TensorMap& outputs, TensorMap* result,
                  const RunOptions& options) const {
  const ir::Graph& g = *impl_->graph;
  try {
    RunScratch& rs = run_scratch();
    // Steady state: a shape key seen before maps to its plan with no checks beyond the key
    // (a plan exists only for inputs that passed them) and no allocation.
    std::shared_ptr<const engine::Plan> plan;
    rs.key.clear();
    rs.inputs.assign(g.inputs.size(), nullptr);
    size_t matched = 0;
    bool fast = true;
    for (size_t i = 0; i < g.inputs.size() && fast; ++i) {
      const ir::Value& v = g.values[size_t(g.inputs[i])];
      auto it = inputs.find(v.name);
      if (it == inputs.end()) {
        fast = v.constant.defined();
        continue;
      }
      matched++;
      if (!it->second.defined()) fast = false;
      if (!it->second.on_host() && impl_->device != Device::kCuda)
        throw Error(ErrorCode::kInvalidArgument,
                    "input '" + v.name + "' is on device '" + device_name(it->second.device()) +
                        "' but the session runs on the CPU: copy it with to(Device::kCpu)");
      rs.inputs[i] = &it->second;
      rs.key += v.name;
      rs.key += ':';
      rs.key += dtype_name(it->second.dtype());
      append_dims(rs.key, it->second.dims());
      rs.key += ';';
    }
    fast &= matched == inputs.size();
    if (fast) plan = impl_->plans->find(rs.key);
    // Caller outputs, checked against the plan's shapes.
    rs.preset.assign(g.outputs.size(), nullptr);
    bool any_preset = !outputs.empty();
    for (const auto& [name, t] : outputs) {
      size_t i = 0;
      while (i < g.outputs.size() && g.values[size_t(g.outputs[i])].name != name) ++i;
      if (i == g.outputs.size())
        throw Error(ErrorCode::kInvalidArgument, "unknown output '" + name + "'");
      if (!t.defined())
        throw Error(ErrorCode::kInvalidArgument, "output '" + name + "' is an undefined tensor");
      if (!t.on_host() && impl_->device != Device::kCuda)
        throw Error(ErrorCode::kInvalidArgument, "output '" + name + "' is on device '" +
                                                     device_name(t.device()) +
                                                     "' but the session runs on the CPU");
      rs.preset[i] = &t;
    }
    std::vector<Tensor> bound;
    if (!plan) {
      std::string key;
      bound = bind_inputs(*impl_, inputs, &key);
      for (size_t i = 0; i < bound.size(); ++i)
        rs.inputs[i] = bound[i].defined() ? &bound[i] : nullptr;
      {
        std::lock_guard<std::mutex> lock(impl_->shapes_mu);
        if (impl_->shape_keys.insert(key).second)
          engine::log(impl_->options.log_level, LogLevel::kDebug,
                      "first run at input shapes " + key);
      }
      plan = plan_for(*impl_, bound, key);
      rs.key = key;
    } else {
      std::lock_guard<std::mutex> lock(impl_->shapes_mu);
      if (impl_->shape_keys.find(rs.key) == impl_->shape_keys.end())
        impl_->shape_keys.insert(rs.key);
      maybe_promote(*impl_, plan, rs.inputs, rs.key);
    }
    // A caller tensor must have the output's type and dims.
    if (any_preset && !plan->interpreted) {
      const ir::Graph& pg = *plan->graph;
      for (size_t i = 0; i < g.outputs.size(); ++i) {
        const Tensor* t = rs.preset[i];
        if (!t) continue;
        const ir::Value& v = pg.values[size_t(pg.outputs[i])];
        if (t->dtype() != v.dtype || !v.shape.is_concrete() || t->dims() != plan->output_dims[i])
          throw Error(ErrorCode::kInvalidArgument,
                      "output '" + v.name + "': the caller's tensor is " + dtype_name(t->dtype()) +
                          dims_to_string(t->dims()) + ", the model produced " +
                          dtype_name(v.dtype) + v.shape.to_string());
      }
    }
    bool need_result = result != nullptr;
    for (size_t i = 0; i < g.outputs.size(); ++i) need_result |= rs.preset[i] == nullptr;
    rs.result.resize(g.outputs.size());
    struct Call {
      const engine::Plan* plan;
      const engine::Executor* executor;
      RunScratch* rs;
      bool need_result;
    } call{plan.get(), impl_->executor.get(), &rs, need_result};
    Call* cp = &call;
#ifdef KILN_WITH_CUDA
    if (impl_->cuda) {
      std::vector<Tensor> in, pre;
      for (const Tensor* t : rs.inputs) in.push_back(t ? *t : Tensor());
      for (const Tensor* t : rs.preset) pre.push_back(t ? *t : Tensor());
      rs.result = impl_->cuda->run(plan, *impl_->executor, in, &pre,
                                   static_cast<CUstream>(options.cuda_stream));
      need_result = true;
    } else
#endif
      impl_->cpu->execute([cp] {
        engine::run_plan(*cp->plan, *cp->executor, cp->rs->inputs, &cp->rs->preset,
                         cp->need_result ? &cp->rs->result : nullptr);
      });
    if (need_result) {
      std::vector<Tensor>& got = rs.result;
      for (size_t i = 0; i < g.outputs.size(); ++i) {
        const std::string& name = g.values[size_t(g.outputs[i])].name;
        const Tensor* pre = rs.preset[i];
        if (pre) {
          if (got[i].dtype() != pre->dtype() || got[i].dims() != pre->dims())
            throw Error(ErrorCode::kInvalidArgument,
                        "output '" + name + "': the caller's tensor is " +
                            dtype_name(pre->dtype()) + dims_to_string(pre->dims()) +
                            ", the model produced " + dtype_name(got[i].dtype()) +
                            dims_to_string(got[i].dims()));
          if (got[i].raw_data() != pre->raw_data()) pre->copy_from(got[i]);
        }
        if (result) {
          // Outputs are the caller's to keep and modify: never hand out memory that is also an
          // input (the caller's) or a weight (the session's), as Identity/Reshape chains may alias.
          bool alias = !got[i].owns_data() || impl_->constant_data.count(got[i].raw_data());
          for (const Tensor* in : rs.inputs)
            alias |= in && in->raw_data() == got[i].raw_data() && got[i].numel() > 0;
          (*result)[name] = alias ? got[i].clone() : got[i];
        }
        got[i] = Tensor();
      }
    }
    impl_->runs++;
  } catch (const Error&) {
    impl_->failed_runs++;
    throw;
  } catch (const std::bad_alloc&) {
    impl_->failed_runs++;
    throw Error(ErrorCode::kInvalidArgument, "out of memory while running the model");
  } catch (const std::exception& e) {
    impl_->failed_runs++;
    throw Error(ErrorCode::kInternal, std::string("unexpected failure: ") + e.what());
  }
}

SessionStats Session::stats() const {
  SessionStats s;
  s.runs = impl_->runs;
  s.failed_runs = impl_->failed_runs;
  std::lock_guard<std::mutex> lock(impl_->shapes_mu);
  s.distinct_shapes = impl_->shape_keys.size();
  engine::PlanCacheStats ps = impl_->plans->stats();
  s.plan_hits = ps.hits;
  s.plan_misses = ps.misses;
  s.specializations = ps.builds;
  s.plan_evictions = ps.evictions;
  s.plans_cached = ps.entries;
  s.packed_weights = impl_->weights ? impl_->weights->size() : 0;
  std::lock_guard<std::mutex> lock2(impl_->policy_mu);
  s.kernels_compiled = impl_->kernels_compiled;
  s.kernel_cache_hits = impl_->kernel_cache_hits;
  s.kernel_disk_hits = impl_->kernel_disk_hits;
  s.compile_ms = impl_->compile_ms;
  s.specialize_ms = impl_->specialize_ms;
  s.hot_promotions = impl_->hot_promotions;
  return s;
}

void Session::specialize_for(const std::map<std::string, Dims>& shapes) const {
  std::string key;
  std::vector<Tensor> bound = shaped_inputs(*impl_, shapes, &key);
  plan_for(*impl_, bound, key);
}

std::vector<std::string> Session::describe_plan(const std::map<std::string, Dims>& shapes) const {
  std::string key;
  std::vector<Tensor> bound = shaped_inputs(*impl_, shapes, &key);
  return plan_for(*impl_, bound, key)->describe();
}

PlanInfo Session::plan_info(const std::map<std::string, Dims>& shapes) const {
  std::string key;
  std::vector<Tensor> bound = shaped_inputs(*impl_, shapes, &key);
  auto plan = plan_for(*impl_, bound, key);
  PlanInfo info;
  info.interpreted = plan->interpreted;
  if (plan->interpreted) return info;
  info.launches = plan->launches();
#ifdef KILN_WITH_CUDA
  if (impl_->cuda) info.launches = impl_->cuda->kernel_launches(plan);
#endif
  for (const auto& st : plan->steps) {
    info.jit_kernels += st.kind == engine::PlanStep::Kind::kKernel;
    info.native_kernels += st.kind == engine::PlanStep::Kind::kNative;
    info.reference_kernels += st.kind == engine::PlanStep::Kind::kReference;
    if (st.fused.size() > 1) info.fused_nodes += int(st.fused.size()) - 1;
  }
  info.arena_bytes = plan->memory.arena_bytes;
  info.intermediate_bytes = plan->memory.intermediate_bytes;
  return info;
}

PlanProfile Session::profile_plan(const std::map<std::string, Dims>& shapes) const {
  std::string key;
  std::vector<Tensor> bound = shaped_inputs(*impl_, shapes, &key);
  auto plan = plan_for(*impl_, bound, key);
  PlanProfile prof;
  if (plan->interpreted || !plan->profile) return prof;
  prof.runs = plan->profile->runs.load();
  std::vector<std::string> lines = plan->describe();
  for (size_t i = 0; i < plan->steps.size(); ++i)
    prof.steps.push_back({i < lines.size() ? lines[i] : std::to_string(i),
                          double(plan->profile->ns[i].load()) * 1e-6});
  return prof;
}

void set_profiling(bool on) { engine::set_profiling(on); }

std::map<std::string, int64_t> Session::opsets() const { return impl_->graph->opsets; }

std::map<std::string, int64_t> Session::pass_stats() const { return impl_->pass_stats; }

std::map<std::string, int64_t> Session::op_histogram() const {
  std::map<std::string, int64_t> h;
  for (const auto& n : impl_->graph->nodes) h[ir::qualified_op(n.domain, n.op_type)]++;
  return h;
}

std::vector<std::string> Session::describe_values() const {
  std::vector<std::string> lines;
  const ir::Graph& g = *impl_->graph;
  for (const auto& v : g.values) {
    if (v.name.empty()) continue;
    std::string src =
        v.producer >= 0
            ? g.nodes[size_t(v.producer)].op_type
            : (v.is_graph_input ? "input" : (v.constant.defined() ? "initializer" : "capture"));
    std::string line = v.name + ": " + dtype_name(v.dtype) + v.shape.to_string();
    if (v.dims_value && !v.constant.defined()) {  // a shape-like int value known symbolically
      line += " = [";
      for (size_t i = 0; i < v.dims_value->size(); ++i)
        line += (i ? "," : "") + (*v.dims_value)[i].to_string();
      line += "]";
    }
    lines.push_back(line + "  (" + src + ")");
  }
  return lines;
}

Device Session::device() const { return impl_->device; }

std::vector<CudaKernelCode> Session::generate_cuda(const std::map<std::string, Dims>& shapes,
                                                   const std::string& arch, bool with_ptx) const {
  std::string key;
  std::vector<Tensor> bound = shaped_inputs(*impl_, shapes, &key);
  engine::PlanOptions po;
  po.use_jit = true;
  po.cache_dir = impl_->cache_dir;
  po.log_level = impl_->options.log_level;
  po.schedule = engine::cuda_schedule();
  po.policy.mode = impl_->options.specialization == Specialization::kDynamic
                       ? Specialization::kDynamic
                       : Specialization::kExact;
  return engine::cuda_kernel_code(
      engine::lower_plan_kernels(*impl_->graph, bound, po, engine::kDefaultMultiprocessors,
                                 impl_->options.allow_tf32 && engine::cuda_arch_has_tf32(arch)),
      arch, with_ptx, impl_->cache_dir);
}

}  // namespace kiln
