// CudaExecutor: plans on the GPU (see cuda_executor.h).
#include "engine/cuda_executor.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <thread>

#include "devices/cpu.h"
#include "devices/cuda/cuda_api.h"
#include "engine/cuda_gemm_select.h"
#include "engine/env.h"
#include "engine/log.h"
#include "kiln/error.h"

namespace kiln::engine {

namespace cu = devices::cuda;

namespace {

// A value on the device. Views share their input's owner; constants have none.
struct DevValue {
  DType dtype = DType::kUndefined;
  Dims dims;
  CUdeviceptr ptr = 0;
  std::shared_ptr<void> owner;
  size_t bytes() const { return size_t(num_elements(dims)) * dtype_size(dtype); }
};

DevValue allocate(cu::RunMemory& mem, DType dtype, const Dims& dims) {
  DevValue v;
  v.dtype = dtype;
  v.dims = dims;
  size_t bytes = v.bytes();
  v.ptr = mem.alloc(bytes);
  CUdeviceptr p = v.ptr;
  cu::RunMemory* m = &mem;
  if (p) v.owner = std::shared_ptr<void>(nullptr, [m, p, bytes](void*) { m->release(p, bytes); });
  return v;
}

// Copies a host or GPU tensor's bytes to `dst` on the GPU (queued on `s`).
void upload(const Tensor& t, CUdeviceptr dst, CUstream s) {
  cu::copy_async(reinterpret_cast<void*>(dst), true, t.raw_data(), !t.on_host(), t.nbytes(), s);
}

// Copies a device value into `out` (allocated on the host when undefined) and waits for it.
void download(const DevValue& v, Tensor* out, CUstream s) {
  if (!out->defined()) *out = Tensor(v.dtype, v.dims);
  cu::copy_async(out->raw_data(), !out->on_host(), reinterpret_cast<const void*>(v.ptr), true,
                 v.bytes(), s);
  cu::check(cu::driver().cuStreamSynchronize(s), "waiting for the GPU");
}

// The graph outputs copied where the caller wants them: into its preset tensor when that has the
// value's type and dims (host or GPU), else into a new one (on the GPU when `on_device`); one
// wait for all the copies.
std::vector<Tensor> deliver_outputs(const std::vector<DevValue>& values,
                                    const std::vector<Tensor>* preset, bool on_device, CUstream s) {
  std::vector<Tensor> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const DevValue& v = values[i];
    if (preset && i < preset->size() && (*preset)[i].defined() && (*preset)[i].dtype() == v.dtype &&
        (*preset)[i].dims() == v.dims)
      out[i] = (*preset)[i];
    else
      out[i] =
          on_device ? Tensor::on_device(v.dtype, v.dims, Device::kCuda) : Tensor(v.dtype, v.dims);
    cu::copy_async(out[i].raw_data(), !out[i].on_host(), reinterpret_cast<const void*>(v.ptr), true,
                   v.bytes(), s);
  }
  cu::check(cu::driver().cuStreamSynchronize(s), "waiting for the GPU");
  return out;
}

// Gives the calling thread its current context back when it goes (an application may use
// another than the primary one Kiln makes current).
struct ContextRestore {
  const cu::Driver& d = cu::driver();
  CUcontext previous = nullptr;
  ContextRestore() {
    if (d.cuCtxGetCurrent(&previous) != CUDA_SUCCESS) previous = nullptr;
  }
  ~ContextRestore() { d.cuCtxSetCurrent(previous); }
  ContextRestore(const ContextRestore&) = delete;
  ContextRestore& operator=(const ContextRestore&) = delete;
};

// A start/stop event pair timing a run; destroyed on every path.
class RunTimer {
 public:
  RunTimer(const cu::Driver& d, CUstream s) : d_(d) {
    try {
      cu::check(d.cuEventCreate(&start_, CU_EVENT_DEFAULT), "creating a timing event");
      cu::check(d.cuEventCreate(&stop_, CU_EVENT_DEFAULT), "creating a timing event");
      cu::check(d.cuEventRecord(start_, s), "recording a timing event");
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~RunTimer() { destroy(); }
  /// Milliseconds from construction to the work queued on `s` so far (waits for it).
  float finish(CUstream s) {
    cu::check(d_.cuEventRecord(stop_, s), "recording a timing event");
    cu::check(d_.cuEventSynchronize(stop_), "waiting for a timing event");
    float ms = 0;
    cu::check(d_.cuEventElapsedTime(&ms, start_, stop_), "reading a timing event");
    return ms;
  }
  RunTimer(const RunTimer&) = delete;
  RunTimer& operator=(const RunTimer&) = delete;

 private:
  void destroy() {
    if (start_) d_.cuEventDestroy(start_);
    if (stop_) d_.cuEventDestroy(stop_);
    start_ = stop_ = nullptr;
  }
  const cu::Driver& d_;
  CUevent start_ = nullptr, stop_ = nullptr;
};

bool holds_strings(const ir::Graph& g) {
  for (const auto& v : g.values)
    if (v.dtype == DType::kString) return true;
  return false;
}

}  // namespace

CudaExecutor::CudaExecutor(std::string cache_dir, LogLevel log_level, bool outputs_on_device,
                           bool allow_tf32)
    : dev_(cu::CudaDevice::get(0)),
      cache_dir_(std::move(cache_dir)),
      log_level_(log_level),
      tiled_gemms_(env_flag("KILN_CUDA_GEMM", true)),
      fuse_epilogues_(env_flag("KILN_CUDA_EPILOGUES", true)),
      graphs_(env_flag("KILN_CUDA_GRAPHS", true)),
      outputs_on_device_(outputs_on_device),
      tf32_(allow_tf32 && cuda_arch_has_tf32(dev_.arch())) {
  if (allow_tf32 && !tf32_)
    log(log_level_, LogLevel::kWarning,
        "allow_tf32: " + dev_.arch() + " has no TF32 tensor cores; GEMMs stay in f32");
}

// Memory and the executable graph of one slot, freed with it (its last run has synchronized).
struct CudaExecutor::GraphSlot {
  cu::CudaDevice* dev = nullptr;
  std::vector<std::pair<CUdeviceptr, size_t>> blocks;
  std::vector<CUdeviceptr> address;  // per value: its bytes (0 when it has none)
  CUgraphExec exec = nullptr;
  bool busy = false;  // under Prepared::slots_mu
  int launches = 0;
  ~GraphSlot() {  // never throws: it runs in other destructors
    dev->try_make_current();
    std::string why;
    if (const cu::Driver* d = cu::try_driver(&why); d && exec) d->cuGraphExecDestroy(exec);
    for (const auto& [p, bytes] : blocks) dev->free(p, bytes);
  }
};

CudaExecutor::Prepared::~Prepared() = default;

CudaExecutor::~CudaExecutor() = default;

CudaExecutor::DeviceConstant::~DeviceConstant() {
  if (ptr) dev->free(ptr, host.nbytes());
}

std::vector<Tensor> CudaExecutor::run_on_host(const Executor& reference,
                                              const std::vector<Tensor>& inputs,
                                              const std::vector<Tensor>* preset) const {
  std::vector<Tensor> host_in;
  for (const Tensor& t : inputs) host_in.push_back(t.defined() ? t.to(Device::kCpu) : t);
  std::vector<Tensor> host_pre;
  if (preset)
    for (const Tensor& t : *preset) host_pre.push_back(t.defined() && t.on_host() ? t : Tensor());
  std::vector<Tensor> out = reference.run(host_in, {}, preset ? &host_pre : nullptr);
  for (size_t i = 0; i < out.size(); ++i) {
    const Tensor* pre = preset && i < preset->size() ? &(*preset)[i] : nullptr;
    if (pre && pre->defined() && !pre->on_host() && pre->dtype() == out[i].dtype() &&
        pre->dims() == out[i].dims()) {
      pre->copy_from(out[i]);
      out[i] = *pre;
    } else if (outputs_on_device_ && !(pre && pre->defined())) {
      out[i] = out[i].to(Device::kCuda);
    }
  }
  return out;
}

int CudaExecutor::kernel_launches(const std::shared_ptr<const Plan>& plan) {
  if (plan->interpreted) return 0;
  ContextRestore restore;
  dev_.make_current();
  std::shared_ptr<const Prepared> prep = prepare(plan);
  if (prep->host_only) return plan->launches();
  int n = 0;
  for (const Launch& l : prep->launches)
    if (l.kind == Launch::Kind::kKernel)
      n += int(l.kernel->functions.size());
    else if (l.kind == Launch::Kind::kHost)
      ++n;
  return n;
}

std::shared_ptr<const CudaExecutor::Prepared> CudaExecutor::prepare(
    const std::shared_ptr<const Plan>& plan) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = prepared_.find(plan.get());
    if (it != prepared_.end() && it->second->plan.lock() == plan) return it->second;
  }
  auto p = std::make_shared<Prepared>();
  p->plan = plan;
  p->host_only = plan->interpreted || holds_strings(*plan->graph);
  if (!p->host_only) build_launches(*plan, *p);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = prepared_.begin(); it != prepared_.end();)  // forget evicted plans
    it = it->second->plan.expired() ? prepared_.erase(it) : std::next(it);
  prepared_[plan.get()] = p;
  return p;
}

void CudaExecutor::build_launches(const Plan& plan, Prepared& p) {
  const ir::Graph& g = *plan.graph;
  const size_t n = plan.steps.size();
  // Runs `fn` on each index of `todo`, several at once (plain threads, as build_plan does: a
  // compile is long and blocking); an exception lands in errors[index].
  std::vector<std::string> errors(n);
  auto parallel = [&](const std::vector<size_t>& todo, const std::function<void(size_t)>& fn) {
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t t; (t = next.fetch_add(1)) < todo.size();) {
        try {
          fn(todo[t]);
        } catch (const std::exception& e) {  // a thread must not let an exception escape
          errors[todo[t]] = e.what();
        }
      }
    };
    size_t helpers = std::min<size_t>(todo.size(), size_t(devices::Cpu::hardware_threads()));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < helpers; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
  };
  auto node_of = [&](size_t si) -> const ir::Node& { return g.nodes[size_t(plan.steps[si].node)]; };

  // Tiled GEMMs first: one that fails to load gives its step (and the steps it absorbed) back to
  // the loop-nest kernels.
  std::vector<std::optional<CudaGemmLaunch>> gemms(n);
  if (tiled_gemms_) gemms = plan_cuda_gemms(plan, dev_.multiprocessors(), fuse_epilogues_, tf32_);
  std::vector<std::shared_ptr<const cu::LoadedKernel>> kernel(n);
  std::vector<size_t> todo;
  for (size_t si = 0; si < n; ++si)
    if (gemms[si]) todo.push_back(si);
  parallel(todo, [&](size_t si) { kernel[si] = dev_.gemm(gemms[si]->gemm, cache_dir_); });
  std::vector<char> absorbed(n, 0);
  std::set<int> failed_concats;  // a Concat's parts run as GEMMs all or none
  for (size_t si : todo)
    if (!kernel[si] && gemms[si]->concat_step >= 0) failed_concats.insert(gemms[si]->concat_step);
  for (size_t si : todo) {
    if (!kernel[si] || failed_concats.count(gemms[si]->concat_step)) {
      log(log_level_, LogLevel::kWarning,
          "node '" + node_of(si).name + "': tiled GEMM failed, using its loop nest: " +
              (kernel[si] ? std::string("another part of its Concat failed") : errors[si]));
      gemms[si].reset();
      kernel[si].reset();
      errors[si].clear();
    } else {
      for (int a : gemms[si]->absorbed) absorbed[size_t(a)] = 1;
    }
  }
  todo.clear();
  for (size_t si = 0; si < n; ++si)
    if (!gemms[si] && !absorbed[si] && plan.steps[si].kind == PlanStep::Kind::kKernel &&
        plan.steps[si].ir)
      todo.push_back(si);
  parallel(todo, [&](size_t si) { kernel[si] = dev_.kernel(*plan.steps[si].ir, cache_dir_); });

  // The launch list.
  int reference_steps = 0;
  std::string reference_nodes;
  for (size_t si = 0; si < n; ++si) {
    if (absorbed[si]) continue;
    const PlanStep& s = plan.steps[si];
    Launch l;
    l.step = int(si);
    l.kernel = kernel[si];
    if (gemms[si] && gemms[si]->output_defined_before) {  // adds its part to a defined value
      l.inputs = gemms[si]->buffers;
      l.label = gemms[si]->label;
    } else if (gemms[si]) {
      l.inputs.assign(gemms[si]->buffers.begin(), gemms[si]->buffers.end() - 1);
      l.outputs = {gemms[si]->output};
      l.label = gemms[si]->label;
    } else {
      l.inputs = s.inputs;
      l.outputs = s.outputs;
      l.in_place_input = s.in_place_input;
    }
    if (s.kind == PlanStep::Kind::kView) {
      l.kind = Launch::Kind::kView;
    } else if (l.kernel) {
      l.kind = Launch::Kind::kKernel;
    } else {
      l.kind = Launch::Kind::kHost;
      if (s.kind == PlanStep::Kind::kKernel)
        log(log_level_, LogLevel::kWarning,
            "node '" + node_of(si).name + "' (" + node_of(si).op_type +
                "): CUDA kernel failed, running the reference kernel on the host: " +
                (s.ir ? errors[si] : std::string("no kernel IR in the plan")));
      if (reference_steps++ < 8)
        reference_nodes += (reference_nodes.empty() ? "" : ", ") + node_of(si).name + " (" +
                           node_of(si).op_type + ")";
    }
    p.launches.push_back(std::move(l));
  }
  if (reference_steps > 0)
    log(log_level_, LogLevel::kInfo,
        "cuda: " + std::to_string(reference_steps) +
            " nodes have no GPU kernel and run on the host reference kernels (inputs copied "
            "to the host and back): " +
            reference_nodes + (reference_steps > 8 ? ", ..." : ""));

  // Each value is freed after the last launch that reads it (graph outputs never).
  std::vector<int> last(g.values.size(), -1);
  for (size_t li = 0; li < p.launches.size(); ++li)
    for (int id : p.launches[li].inputs)
      if (id >= 0) last[size_t(id)] = int(li);
  for (int id : g.outputs) last[size_t(id)] = -1;
  for (size_t v = 0; v < last.size(); ++v)
    if (last[v] >= 0) p.launches[size_t(last[v])].release.push_back(int(v));

  // CUDA graphs: device kernels and views only, no index checks; their memory is planned over
  // the launches (a fused GEMM writes its chain's output earlier than the plan's step did).
  p.graphable = reference_steps == 0;
  for (const Launch& l : p.launches) p.graphable &= plan.steps[size_t(l.step)].check_indices < 0;
  if (p.graphable) {
    std::vector<MemoryStep> steps;
    for (const Launch& l : p.launches) steps.push_back({l.inputs, l.outputs, l.in_place_input});
    p.memory = plan_memory(plan_memory_values(plan), steps);
  }
}

CUdeviceptr CudaExecutor::constant(const Prepared& prep, const Tensor& t, CUstream stream) {
  if (t.nbytes() == 0) return 0;
  const auto key = std::make_pair(static_cast<const void*>(t.raw_data()), t.nbytes());
  {
    std::lock_guard<std::mutex> lock(prep.constants_mu);
    auto it = prep.constants.find(key);
    if (it != prep.constants.end()) return it->second->ptr;
  }
  std::shared_ptr<DeviceConstant> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = constants_.find(key); it != constants_.end()) c = it->second.lock();
  }
  if (!c) {
    auto fresh = std::make_shared<DeviceConstant>();
    fresh->dev = &dev_;
    fresh->host = t;
    fresh->ptr = dev_.alloc(t.nbytes());  // freed by fresh's destructor on any error below
    upload(t, fresh->ptr, stream);
    cu::check(cu::driver().cuStreamSynchronize(stream), "uploading a constant");
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = constants_.begin(); it != constants_.end();)  // forget freed copies
      it = it->second.expired() ? constants_.erase(it) : std::next(it);
    std::weak_ptr<DeviceConstant>& entry = constants_[key];
    c = entry.lock();  // another run may have uploaded it meanwhile
    if (!c) entry = c = fresh;
  }
  std::lock_guard<std::mutex> lock(prep.constants_mu);
  prep.constants.emplace(key, c);
  return c->ptr;
}

std::vector<Tensor> CudaExecutor::run(const std::shared_ptr<const Plan>& plan,
                                      const Executor& reference, const std::vector<Tensor>& inputs,
                                      const std::vector<Tensor>* preset, CUstream after) {
  ContextRestore restore;
  const cu::Driver& d = cu::driver();
  dev_.make_current();
  // Runs on the host read GPU inputs after the caller's stream has finished its work.
  auto host_run = [&] {
    if (after) cu::check(d.cuStreamSynchronize(after), "waiting for the caller's stream");
    return run_on_host(reference, inputs, preset);
  };
  if (plan->interpreted) return host_run();
  std::shared_ptr<const Prepared> prep = prepare(plan);
  if (prep->host_only) return host_run();
  const ir::Graph& g = *plan->graph;
  cu::StreamLease lease(dev_);
  CUstream stream = lease.get();
  if (after) {  // the run's stream waits for the caller's work so far (the host does not)
    CUevent queued = nullptr;
    cu::check(d.cuEventCreate(&queued, CU_EVENT_DISABLE_TIMING), "creating an event");
    CUresult r = d.cuEventRecord(queued, after);
    if (r == CUDA_SUCCESS) r = d.cuStreamWaitEvent(stream, queued, 0);
    d.cuEventDestroy(queued);  // released once the wait is done
    cu::check(r, "ordering the run after RunOptions::cuda_stream");
  }
  cu::RunMemory mem(dev_, stream);  // declared before env: outlives every value's owner

  // From the plan's second run on: replay its CUDA graph.
  if (graphs_ && prep->graphable && prep->runs.fetch_add(1) > 0)
    if (auto out = run_graph(*plan, *prep, inputs, preset, stream)) return std::move(*out);

  std::unique_ptr<RunTimer> timer;
  if (log_level_ >= LogLevel::kDebug) timer = std::make_unique<RunTimer>(d, stream);

  std::vector<DevValue> env(g.values.size());
  for (int v : plan->constants) {
    const Tensor& t = g.values[size_t(v)].constant;
    env[size_t(v)] = DevValue{t.dtype(), t.dims(), constant(*prep, t, stream), nullptr};
  }
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.defined()) continue;
    if (!in.on_host()) {  // read in place (never written: steps write values of their own)
      env[size_t(g.inputs[i])] =
          DevValue{in.dtype(), in.dims(), reinterpret_cast<CUdeviceptr>(in.raw_data()), nullptr};
      continue;
    }
    DevValue v = allocate(mem, in.dtype(), in.dims());
    upload(in, v.ptr, stream);
    env[size_t(g.inputs[i])] = std::move(v);
  }

  std::vector<CUdeviceptr> buffers;
  for (const Launch& l : prep->launches) {
    const PlanStep& s = plan->steps[size_t(l.step)];
    const ir::Node& n = g.nodes[size_t(s.node)];
    if (l.kind == Launch::Kind::kView) {
      DevValue v = env[size_t(l.inputs[0])];
      v.dims = g.values[size_t(l.outputs[0])].shape.concrete();
      env[size_t(l.outputs[0])] = std::move(v);
    } else if (l.kind == Launch::Kind::kKernel) {
      if (s.check_indices >= 0) {
        Tensor idx;
        download(env[size_t(s.inputs[size_t(s.check_indices)])], &idx, stream);
        check_step_indices(n, idx, s.index_bound);
      }
      buffers.clear();
      for (int id : l.inputs) buffers.push_back(id >= 0 ? env[size_t(id)].ptr : 0);
      for (int id : l.outputs) {
        const ir::Value& v = g.values[size_t(id)];
        env[size_t(id)] = allocate(mem, v.dtype, v.shape.concrete());
        buffers.push_back(env[size_t(id)].ptr);
      }
      dev_.launch(*l.kernel, buffers, s.params, stream);
    } else {
      // On the host: every node the step stands for (a fused chain runs node by node).
      std::vector<Tensor> host(g.values.size());
      for (int id : s.inputs) {
        if (id < 0 || host[size_t(id)].defined()) continue;
        const ir::Value& v = g.values[size_t(id)];
        if (v.constant.defined())
          host[size_t(id)] = v.constant;
        else
          download(env[size_t(id)], &host[size_t(id)], stream);
      }
      std::vector<int> nodes = s.nodes();
      for (int ni : nodes) {
        const ir::Node& fn = g.nodes[size_t(ni)];
        for (int id : fn.inputs)
          if (id >= 0 && !host[size_t(id)].defined() && g.values[size_t(id)].constant.defined())
            host[size_t(id)] = g.values[size_t(id)].constant;
        std::vector<Tensor> outs(fn.outputs.size());
        for (size_t k = 0; k < fn.outputs.size(); ++k) {
          const ir::Value& v = g.values[size_t(fn.outputs[k])];
          if (v.dtype != DType::kUndefined && v.shape.is_concrete())
            outs[k] = Tensor(v.dtype, v.shape.concrete());
        }
        run_reference_node(g, fn, host, outs);
        for (size_t k = 0; k < fn.outputs.size(); ++k) host[size_t(fn.outputs[k])] = outs[k];
      }
      for (int id : s.outputs) {
        if (id < 0 || !host[size_t(id)].defined()) continue;
        DevValue v = allocate(mem, host[size_t(id)].dtype(), host[size_t(id)].dims());
        upload(host[size_t(id)], v.ptr, stream);
        // The host tensor must live until the copy is done: pageable copies are synchronous
        // for the host buffer, so it may go when upload() returns.
        env[size_t(id)] = std::move(v);
      }
    }
    for (int v : l.release) env[size_t(v)] = DevValue();
  }

  std::vector<DevValue> outputs;
  for (int id : g.outputs) {
    if (env[size_t(id)].dtype == DType::kUndefined)
      throw Error(ErrorCode::kInternal,
                  "graph output '" + g.values[size_t(id)].name + "' was not computed");
    outputs.push_back(env[size_t(id)]);
  }
  std::vector<Tensor> result = deliver_outputs(outputs, preset, outputs_on_device_, stream);
  if (timer)  // the copies above waited for the run
    log(log_level_, LogLevel::kDebug,
        "cuda: run of " + plan->key + " took " + std::to_string(timer->finish(stream)) +
            " ms on the GPU");
  return result;
}

void CudaExecutor::capture(const Plan& plan, const Prepared& prep, GraphSlot& slot,
                           CUstream stream) {
  const ir::Graph& g = *plan.graph;
  const MemoryPlan& mp = prep.memory;
  const cu::Driver& d = cu::driver();
  auto block = [&](int64_t bytes) -> CUdeviceptr {
    if (bytes <= 0) return 0;
    CUdeviceptr p = dev_.alloc(size_t(bytes));
    slot.blocks.push_back({p, size_t(bytes)});
    return p;
  };
  // Each root's bytes: arena values at their planned offsets, inputs and outputs on their own,
  // constants where the executor keeps them (uploaded now: nothing may copy during capture).
  const CUdeviceptr arena = block(mp.arena_bytes);
  std::vector<CUdeviceptr> root(g.values.size(), 0);
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (mp.root[v] != int(v)) continue;
    const ir::Value& val = g.values[v];
    switch (mp.storage[v]) {
      case Storage::kArena:
        root[v] = arena + CUdeviceptr(mp.offset[v]);
        break;
      case Storage::kInput:
      case Storage::kOutput:
        root[v] = block(int64_t(num_elements(val.shape.concrete())) * dtype_size(val.dtype));
        break;
      case Storage::kConstant:
        root[v] = constant(prep, val.constant, stream);
        break;
      case Storage::kNone:
        break;
      default:
        throw Error(ErrorCode::kInternal,
                    "value '" + val.name + "' has no place in GPU memory for a CUDA graph");
    }
  }
  slot.address.assign(g.values.size(), 0);
  for (size_t v = 0; v < g.values.size(); ++v) {
    const int r = mp.root[v];
    if (r >= 0 && root[size_t(r)])
      slot.address[v] = root[size_t(r)] + CUdeviceptr(mp.view_offset[v]);
  }

  cu::check(d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            "starting a CUDA graph capture");
  CUgraph graph = nullptr;
  try {
    std::vector<CUdeviceptr> buffers;
    for (const Launch& l : prep.launches) {
      if (l.kind != Launch::Kind::kKernel) continue;
      buffers.clear();
      for (int id : l.inputs) buffers.push_back(id >= 0 ? slot.address[size_t(id)] : 0);
      for (int id : l.outputs) buffers.push_back(slot.address[size_t(id)]);
      dev_.launch(*l.kernel, buffers, plan.steps[size_t(l.step)].params, stream);
      slot.launches += int(l.kernel->functions.size());
    }
  } catch (...) {
    if (d.cuStreamEndCapture(stream, &graph) == CUDA_SUCCESS && graph) d.cuGraphDestroy(graph);
    throw;
  }
  cu::check(d.cuStreamEndCapture(stream, &graph), "ending a CUDA graph capture");
  CUgraphExec exec = nullptr;
  CUresult r = d.cuGraphInstantiate(&exec, graph, 0);
  d.cuGraphDestroy(graph);
  cu::check(r, "instantiating a CUDA graph");
  slot.exec = exec;
}

std::optional<std::vector<Tensor>> CudaExecutor::run_graph(const Plan& plan, const Prepared& prep,
                                                           const std::vector<Tensor>& inputs,
                                                           const std::vector<Tensor>* preset,
                                                           CUstream stream) {
  const ir::Graph& g = *plan.graph;
  const MemoryPlan& mp = prep.memory;
  // Every given input must be one the slot holds a buffer for (not a defaulted constant).
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i)
    if (inputs[i].defined() && mp.storage[size_t(mp.root[size_t(g.inputs[i])])] != Storage::kInput)
      return std::nullopt;
  GraphSlot* slot = nullptr;
  {
    std::lock_guard<std::mutex> lock(prep.slots_mu);
    if (prep.graph_failed) return std::nullopt;
    for (auto& sl : prep.slots)
      if (!sl->busy) {
        slot = sl.get();
        break;
      }
    if (!slot) {
      if (prep.slots.size() >= kMaxGraphSlots) return std::nullopt;
      prep.slots.push_back(std::make_unique<GraphSlot>());
      slot = prep.slots.back().get();
      slot->dev = &dev_;
    }
    slot->busy = true;
  }
  // The slot is free again on every path out (a failed capture drops it instead).
  bool drop = false;
  struct Release {
    const Prepared& prep;
    GraphSlot* slot;
    bool& drop;
    ~Release() {
      std::lock_guard<std::mutex> lock(prep.slots_mu);
      if (!drop) {
        slot->busy = false;
        return;
      }
      for (auto it = prep.slots.begin(); it != prep.slots.end(); ++it)
        if (it->get() == slot) {
          prep.slots.erase(it);
          break;
        }
    }
  } release{prep, slot, drop};

  if (!slot->exec) {
    try {
      capture(plan, prep, *slot, stream);
    } catch (const std::exception& e) {
      drop = true;
      {
        std::lock_guard<std::mutex> lock(prep.slots_mu);
        prep.graph_failed = true;
      }
      log(log_level_, LogLevel::kWarning,
          std::string("cuda: CUDA graph capture failed, running step by step: ") + e.what());
      return std::nullopt;
    }
    log(log_level_, LogLevel::kDebug,
        "cuda: captured " + plan.key + " as a CUDA graph of " + std::to_string(slot->launches) +
            " launches");
  }
  const cu::Driver& d = cu::driver();
  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i)
    if (inputs[i].defined()) upload(inputs[i], slot->address[size_t(g.inputs[i])], stream);
  if (CUresult r = d.cuGraphLaunch(slot->exec, stream); r != CUDA_SUCCESS) {
    // Not this plan's way any more: drop the slot, run step by step from now on.
    drop = true;
    {
      std::lock_guard<std::mutex> lock(prep.slots_mu);
      prep.graph_failed = true;
    }
    try {
      cu::check(r, "launching a CUDA graph");
    } catch (const Error& e) {
      log(log_level_, LogLevel::kWarning,
          std::string("cuda: running step by step from now on: ") + e.what());
    }
    return std::nullopt;
  }
  std::vector<DevValue> outputs;
  for (int v : g.outputs) {
    const ir::Value& val = g.values[size_t(v)];
    outputs.push_back({val.dtype, val.shape.concrete(), slot->address[size_t(v)], nullptr});
  }
  return deliver_outputs(outputs, preset, outputs_on_device_, stream);  // waits for the run
}

}  // namespace kiln::engine
