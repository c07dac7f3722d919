// Running a specialized plan: per-run state from the plan's pool, values bound to their planned
// memory, steps launched in order.
#include <chrono>
#include <cstring>

#include "engine/env.h"
#include "engine/plan.h"

namespace kiln::engine {

// One concurrent run's memory: the arena (intermediates at planned offsets), a pointer per value,
// owning tensors for outputs and heap values, and argument scratch. Reused across runs.
struct RunState {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> arena;
  std::unique_ptr<void, Free> scratch;
  std::vector<void*> ptr;    // per value: its elements
  std::vector<Tensor> held;  // per value: owning tensors (outputs, heap values)
  std::vector<Tensor> env;   // per value: tensors for reference steps
  std::vector<void*> args;   // kernel arguments
  std::vector<Tensor> outs;  // reference step outputs
};

namespace {

void* aligned_block(int64_t bytes) {
  if (bytes <= 0) return nullptr;
  void* p = std::aligned_alloc(64, size_t(arena_align(bytes)));
  if (!p) throw std::bad_alloc();
  return p;
}

bool plain_bytes(DType t) { return t != DType::kString && t != DType::kUndefined; }

// Fills the arena with NaN bit patterns (KILN_ARENA_POISON=1): a kernel reading memory it did not
// write shows up as NaN in tests instead of passing on stale zeros.
bool poison_arena() {
  static const bool on = env_flag("KILN_ARENA_POISON", false);
  return on;
}

std::atomic<bool>& profiling_flag() {
  static std::atomic<bool> on{env_flag("KILN_PROFILE", false)};
  return on;
}

}  // namespace

bool profiling() { return profiling_flag().load(std::memory_order_relaxed); }
void set_profiling(bool on) { profiling_flag().store(on, std::memory_order_relaxed); }

Plan::Plan() = default;
Plan::~Plan() = default;

std::unique_ptr<RunState> Plan::acquire_state() const {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!pool_.empty()) {
      std::unique_ptr<RunState> s = std::move(pool_.back());
      pool_.pop_back();
      return s;
    }
  }
  auto s = std::make_unique<RunState>();
  const size_t n = graph ? graph->values.size() : 0;
  s->arena.reset(aligned_block(memory.arena_bytes));
  s->scratch.reset(aligned_block(scratch_bytes));
  s->ptr.assign(n, nullptr);
  s->held.resize(n);
  s->env.resize(n);
  size_t args = 0;
  for (const PlanStep& st : steps) args = std::max(args, st.inputs.size() + st.outputs.size());
  s->args.reserve(args);
  s->outs.reserve(args);
  for (size_t v = 0; v < n; ++v)
    if (memory.storage[v] == Storage::kArena && memory.offset[v] >= 0)
      s->ptr[v] = static_cast<char*>(s->arena.get()) + memory.offset[v];
  for (const Slice& sl : slices)
    s->ptr[size_t(sl.value)] = static_cast<char*>(s->arena.get()) +
                               memory.offset[size_t(memory.root[size_t(sl.value)])] +
                               memory.view_offset[size_t(sl.value)];
  for (int v : constants) s->ptr[size_t(v)] = graph->values[size_t(v)].constant.raw_data();
  return s;
}

void Plan::release_state(std::unique_ptr<RunState> s) const {
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (pool_.size() < 64) pool_.push_back(std::move(s));
}

int Plan::launches() const {
  int n = 0;
  for (const PlanStep& s : steps) n += s.kind != PlanStep::Kind::kView;
  return n;
}

namespace {

// Returns the state to the plan's pool however the run ends.
struct StateLease {
  const Plan& plan;
  std::unique_ptr<RunState> s;
  explicit StateLease(const Plan& p) : plan(p), s(p.acquire_state()) {}
  ~StateLease() {
    for (Tensor& t : s->held) t = Tensor();
    for (Tensor& t : s->env) t = Tensor();
    plan.release_state(std::move(s));
  }
};

Tensor tensor_at(const ir::Graph& g, int v, void* p) {
  const ir::Value& val = g.values[size_t(v)];
  return Tensor::view(val.dtype, val.shape.concrete(), p);
}

}  // namespace

void run_plan(const Plan& plan, const Executor& reference, const std::vector<const Tensor*>& inputs,
              const std::vector<const Tensor*>* preset, std::vector<Tensor>* result) {
  if (plan.interpreted) {
    std::vector<Tensor> in(inputs.size()), pre;
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i]) in[i] = *inputs[i];
    if (preset)
      for (const Tensor* t : *preset) pre.push_back(t ? *t : Tensor());
    std::vector<Tensor> got = reference.run(in, {}, preset ? &pre : nullptr);
    if (result) *result = std::move(got);
    return;
  }
  const ir::Graph& g = *plan.graph;
  const MemoryPlan& mp = plan.memory;
  StateLease lease(plan);
  RunState& st = *lease.s;
  std::vector<void*>& ptr = st.ptr;

  for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i)
    if (inputs[i]) ptr[size_t(g.inputs[i])] = inputs[i]->raw_data();
  // Outputs: the caller's tensor when it fits (also for an output that views the value a step
  // writes: the bytes are the same), else a tensor of their own.
  for (int v : g.outputs) {
    int r = mp.root[size_t(v)];
    if (mp.storage[size_t(r)] == Storage::kOutput) ptr[size_t(r)] = nullptr;
  }
  if (preset) {
    for (size_t o = 0; o < g.outputs.size() && o < preset->size(); ++o) {
      const Tensor* pre = (*preset)[o];
      int v = g.outputs[o];
      int r = mp.root[size_t(v)];
      if (!pre || mp.storage[size_t(r)] != Storage::kOutput || ptr[size_t(r)]) continue;
      const ir::Value& rv = g.values[size_t(r)];
      if (pre->dtype() == rv.dtype && pre->dims() == plan.output_dims[o] &&
          pre->numel() == *rv.shape.num_elements())
        ptr[size_t(r)] = pre->raw_data();
    }
  }
  for (int v : g.outputs) {
    int r = mp.root[size_t(v)];
    if (mp.storage[size_t(r)] != Storage::kOutput || ptr[size_t(r)]) continue;
    const ir::Value& rv = g.values[size_t(r)];
    st.held[size_t(r)] = Tensor(rv.dtype, rv.shape.concrete());
    ptr[size_t(r)] = st.held[size_t(r)].raw_data();
  }
  if (poison_arena() && st.arena) std::memset(st.arena.get(), 0xff, size_t(mp.arena_bytes));

  // Profiled runs time every step (steady_clock) into the plan's totals.
  Plan::StepTimes* times = nullptr;
  if (profiling()) [[unlikely]] {
    std::call_once(plan.profile_once,
                   [&] { plan.profile = std::make_unique<Plan::StepTimes>(plan.steps.size()); });
    times = plan.profile.get();
  }
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0;
  if (times) [[unlikely]]
    t0 = Clock::now();

  for (size_t si = 0; si < plan.steps.size(); ++si) {
    const PlanStep& s = plan.steps[si];
    switch (s.kind) {
      case PlanStep::Kind::kView:
        ptr[size_t(s.outputs[0])] = ptr[size_t(s.inputs[0])];
        break;
      case PlanStep::Kind::kKernel:
      case PlanStep::Kind::kNative: {
        if (s.check_indices >= 0) {
          int id = s.inputs[size_t(s.check_indices)];
          const ir::Value& iv = g.values[size_t(id)];
          const int64_t count = *iv.shape.num_elements();
          const void* p = ptr[size_t(id)];
          bool bad = false;
          for (int64_t i = 0; i < count && !bad; ++i) {
            int64_t x = iv.dtype == DType::kI64 ? static_cast<const int64_t*>(p)[i]
                                                : static_cast<const int32_t*>(p)[i];
            bad = x < -s.index_bound || x >= s.index_bound;
          }
          if (bad)  // the message names the index: built from a tensor, off the fast path
            detail::check_index_range(g.nodes[size_t(s.node)], tensor_at(g, id, ptr[size_t(id)]),
                                      s.index_bound);
        }
        st.args.clear();
        for (int id : s.inputs) st.args.push_back(id >= 0 ? ptr[size_t(id)] : nullptr);
        for (int id : s.outputs) st.args.push_back(id >= 0 ? ptr[size_t(id)] : nullptr);
        if (s.kind == PlanStep::Kind::kKernel)
          s.kernel->fn()(st.args.data(), s.params.data());
        else
          s.native->run(st.args.data(), st.scratch.get());
        break;
      }
      case PlanStep::Kind::kReference: {
        const ir::Node& n = g.nodes[size_t(s.node)];
        for (int id : n.inputs)
          if (id >= 0 && !st.env[size_t(id)].defined()) {
            int r = mp.root[size_t(id)];
            if (st.held[size_t(r)].defined() && !plain_bytes(g.values[size_t(id)].dtype))
              st.env[size_t(id)] =
                  st.held[size_t(r)].reshaped(g.values[size_t(id)].shape.concrete());
            else
              st.env[size_t(id)] = tensor_at(g, id, ptr[size_t(id)]);
          }
        st.outs.assign(n.outputs.size(), Tensor());
        for (size_t k = 0; k < n.outputs.size(); ++k) {
          int id = n.outputs[k];
          const ir::Value& v = g.values[size_t(id)];
          if (v.dtype == DType::kUndefined || !v.shape.is_concrete()) continue;
          if (mp.storage[size_t(id)] == Storage::kHeap || !ptr[size_t(id)]) {
            st.outs[k] = Tensor(v.dtype, v.shape.concrete());
          } else {
            st.outs[k] = tensor_at(g, id, ptr[size_t(id)]);
            std::memset(ptr[size_t(id)], 0, st.outs[k].nbytes());  // kernels may expect zeros
          }
        }
        detail::run_reference(g, n, st.env, st.outs);
        for (size_t k = 0; k < n.outputs.size(); ++k) {
          int id = n.outputs[k];
          if (!st.outs[k].defined()) continue;
          if (mp.storage[size_t(id)] == Storage::kHeap || !ptr[size_t(id)]) {
            st.held[size_t(id)] = st.outs[k];
            ptr[size_t(id)] = st.outs[k].raw_data();
          } else if (st.outs[k].raw_data() != ptr[size_t(id)]) {
            std::memcpy(ptr[size_t(id)], st.outs[k].raw_data(), st.outs[k].nbytes());
          }
          st.env[size_t(id)] = Tensor();
        }
        for (int id : n.inputs)
          if (id >= 0) st.env[size_t(id)] = Tensor();
        break;
      }
    }
    if (times) [[unlikely]] {
      const Clock::time_point t1 = Clock::now();
      times->ns[si].fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count(),
                              std::memory_order_relaxed);
      t0 = t1;
    }
  }
  if (times) [[unlikely]]
    times->runs.fetch_add(1, std::memory_order_relaxed);

  // Hand out the outputs. An output computed in its preset tensor needs nothing more.
  for (size_t o = 0; o < g.outputs.size(); ++o) {
    int v = g.outputs[o];
    int r = mp.root[size_t(v)];
    const ir::Value& val = g.values[size_t(v)];
    const Tensor* pre = preset && o < preset->size() ? (*preset)[o] : nullptr;
    if (pre && ptr[size_t(v)] == pre->raw_data()) {
      if (result) (*result)[o] = *pre;
      continue;
    }
    if (!ptr[size_t(v)] && val.shape.is_concrete() && *val.shape.num_elements() > 0)
      throw Error(ErrorCode::kInternal, "graph output '" + val.name + "' was not computed");
    Tensor out;
    if (st.held[size_t(r)].defined() && mp.storage[size_t(r)] != Storage::kConstant &&
        mp.storage[size_t(r)] != Storage::kInput) {
      out = r == v ? st.held[size_t(r)] : st.held[size_t(r)].reshaped(val.shape.concrete());
    } else {
      // A constant, an input or a view of one: the caller gets a copy.
      out = tensor_at(g, v, ptr[size_t(v)]).clone();
    }
    if (pre && pre->dtype() == out.dtype() && pre->dims() == out.dims()) {
      pre->copy_from(out);
      out = *pre;
    }
    if (result) (*result)[o] = std::move(out);
  }
}

std::vector<Tensor> run_plan(const Plan& plan, const Executor& reference,
                             const std::vector<Tensor>& inputs, const std::vector<Tensor>* preset) {
  std::vector<const Tensor*> in;
  for (const Tensor& t : inputs) in.push_back(t.defined() ? &t : nullptr);
  std::vector<const Tensor*> pre;
  if (preset)
    for (const Tensor& t : *preset) pre.push_back(t.defined() ? &t : nullptr);
  std::vector<Tensor> result(plan.interpreted ? 0 : plan.graph->outputs.size());
  run_plan(plan, reference, in, preset ? &pre : nullptr, &result);
  return result;
}

}  // namespace kiln::engine
