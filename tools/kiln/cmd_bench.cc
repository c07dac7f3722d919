// kiln bench MODEL_DIR|MODEL.onnx [--threads N] [--runs N] [--warmup N] [--batch N]
//            [--shape NAME=DIMS]... [--specialization auto|exact|dynamic] [--no-jit] [--json]
//            [--opt-level N] [--device D] [--host-io] [--profile] [--profile-top N]
//
// With --device cuda the inputs are moved to the GPU once and the outputs stay there
// (SessionOptions::outputs_on_device): a run is the GPU work, as GPU benchmarks time it;
// --host-io copies inputs in and outputs out on every run instead.
// --profile times every step of the runs (as KILN_PROFILE=1 does) and prints the 15 (or N)
// steps that took longest, per run, before the summary.
// Inputs come from the model folder's test_data_set_0 (tiled along dim 0 to --batch), or are
// random at the --shape dims; several --shape values for one input are cycled in order, run by run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "alloc_count.h"
#include "cli.h"

namespace kiln::cli {
namespace fs = std::filesystem;

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
// The `top` steps that took longest per run: ms, share of the steps' total, the step.
void print_profile(const PlanProfile& p, int top, double median_ms) {
  if (p.runs == 0) {
    std::cout << "profile: no profiled runs of this plan\n";
    return;
  }
  double total = 0;
  for (const auto& st : p.steps) total += st.total_ms;
  std::vector<size_t> order(p.steps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p.steps[a].total_ms > p.steps[b].total_ms; });
  const double runs = double(p.runs);
  std::printf("profile: %llu runs, steps %.3f ms per run (median run %.3f ms)\n",
              static_cast<unsigned long long>(p.runs), total / runs, median_ms);
  std::printf("%9s %6s  step\n", "ms/run", "%");
  for (size_t k = 0; k < order.size() && k < size_t(top); ++k) {
    const StepProfile& st = p.steps[order[k]];
    std::string label = st.step;
    size_t at = label.find(" @");
    if (at != std::string::npos) label.resize(at);
    std::printf("%9.4f %5.1f%%  %s\n", st.total_ms / runs,
                total > 0 ? 100.0 * st.total_ms / total : 0.0, label.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int cmd_bench(Args& args) {
  std::string path;
  int threads = 0, runs = 20, warmup = 3;
  int64_t batch = 0;
  bool json = false, host_io = false;
  int profile_top = 0;
  std::map<std::string, std::vector<Dims>> shapes;
  SessionOptions so;
  while (!args.done()) {
    std::string v;
    if (args.flag_value("--threads", &v))
      threads = int(Args::to_int("--threads", v, 0, 1024));
    else if (args.flag_value("--runs", &v))
      runs = int(Args::to_int("--runs", v, 1, 1000000));
    else if (args.flag_value("--warmup", &v))
      warmup = int(Args::to_int("--warmup", v, 0, 1000000));
    else if (args.flag_value("--batch", &v))
      batch = Args::to_int("--batch", v, 1, 1 << 20);
    else if (args.flag_value("--shape", &v)) {
      auto [name, dims] = parse_shape_arg(v);
      shapes[name].push_back(std::move(dims));
    } else if (args.flag_value("--opt-level", &v)) {
      so.optimization_level = int(Args::to_int("--opt-level", v, 0, 3));
    } else if (args.flag_value("--specialization", &v)) {
      so.specialization = parse_specialization(v);
    } else if (args.flag_value("--device", &v)) {
      so.device = parse_device(v);
    } else if (args.flag("--no-jit"))
      so.use_jit = false;
    else if (args.flag("--json"))
      json = true;
    else if (args.flag("--host-io"))
      host_io = true;
    else if (args.flag("--tf32"))
      so.allow_tf32 = true;
    else if (args.flag("--profile"))
      profile_top = std::max(profile_top, 15);
    else if (args.flag_value("--profile-top", &v))
      profile_top = int(Args::to_int("--profile-top", v, 1, 1000000));
    else {
      std::string a = args.next();
      if (a.rfind("--", 0) == 0) throw UsageError("bench: unknown option " + a);
      if (!path.empty()) throw UsageError("bench: one model at a time");
      path = a;
    }
  }
  if (path.empty()) throw UsageError("bench: give a model folder or file");
  std::string model = path, data_dir;
  if (fs::is_directory(path)) {
    model = model_file(path);
    if (fs::exists(fs::path(path) / "test_data_set_0"))
      data_dir = (fs::path(path) / "test_data_set_0").string();
  }
  so.intra_op_threads = threads;
  // A GPU session keeps its inputs and outputs in GPU memory, as a service with I/O binding
  // does (and as GPU benchmarks time it); --host-io copies them in and out on every run.
  so.outputs_on_device = !host_io;
  if (profile_top > 0) set_profiling(true);
  auto t0 = Clock::now();
  Session s(model, so);
  double create_ms = ms_since(t0);

  for (const auto& [name, list] : shapes) {
    bool known = false;
    for (const auto& in : s.input_info()) known |= in.name == name;
    if (!known)
      throw Error(ErrorCode::kInvalidArgument, "--shape names unknown input '" + name + "'");
  }
  // The input sets to cycle through.
  size_t cycle = 1;
  for (const auto& [name, list] : shapes) cycle = std::max(cycle, list.size());
  TensorMap base;
  if (!data_dir.empty() && shapes.empty()) base = load_data_set_inputs(s, data_dir);
  std::vector<TensorMap> sets(cycle);
  uint64_t seed = 1;
  for (size_t k = 0; k < cycle; ++k) {
    for (const auto& in : s.input_info()) {
      auto sh = shapes.find(in.name);
      Tensor t;
      if (sh != shapes.end())
        t = random_input(in.dtype, sh->second[k % sh->second.size()], seed++);
      else if (base.count(in.name))
        t = base.at(in.name);
      else if (in.has_default)
        continue;
      else
        t = random_input(in.dtype, concrete_dims(in), seed++);
      if (batch > 0 && sh == shapes.end()) t = tile_batch(t, batch);
      if (s.device() == Device::kCuda && !host_io) t = t.to(Device::kCuda);
      sets[k][in.name] = t;
    }
  }

  // Timed runs write into outputs allocated once (the first run's), as a service would.
  std::vector<TensorMap> outs(cycle);
  auto t1 = Clock::now();
  outs[0] = s.run(sets[0]);
  double first_ms = ms_since(t1);
  // Warm-up covers the whole shape cycle once, so every shape has been seen before timing.
  for (size_t i = 1; i < cycle; ++i) outs[i] = s.run(sets[i]);
  uint64_t compiled_after_cycle = s.stats().kernels_compiled;
  for (int i = 0; i < warmup; ++i) s.run(sets[size_t(i) % cycle], outs[size_t(i) % cycle]);
  std::vector<double> times;
  times.reserve(size_t(runs));
  uint64_t allocs0 = heap_allocations();
  for (int i = 0; i < runs; ++i) {
    auto t = Clock::now();
    s.run(sets[size_t(i) % cycle], outs[size_t(i) % cycle]);
    times.push_back(ms_since(t));
  }
  double allocs_per_run = double(heap_allocations() - allocs0) / double(std::max(1, runs));
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    return sorted[std::min(sorted.size() - 1, size_t(p * double(sorted.size() - 1) + 0.5))];
  };
  double median = pct(0.5), p90 = pct(0.9), min = sorted.front();
  auto st = s.stats();
  std::map<std::string, Dims> shape0;
  for (const auto& [name, t] : sets[0]) shape0[name] = t.dims();
  PlanInfo pi = s.plan_info(shape0);
  if (profile_top > 0) print_profile(s.profile_plan(shape0), profile_top, median);
  if (json) {
    std::ostringstream os;
    const bool gpu_io = s.device() == Device::kCuda && !host_io;
    os << "{\"model\":" << json_quote(model) << ",\"device\":\"" << device_name(s.device())
       << "\",\"tf32\":" << (so.allow_tf32 ? "true" : "false") << ",\"io\":\""
       << (gpu_io ? "device" : "host") << "\",\"batch\":" << std::max<int64_t>(batch, 1)
       << ",\"threads\":" << threads << ",\"runs\":" << runs << ",\"create_ms\":" << create_ms
       << ",\"first_run_ms\":" << first_ms << ",\"median_ms\":" << median << ",\"p90_ms\":" << p90
       << ",\"min_ms\":" << min << ",\"shapes\":" << cycle
       << ",\"distinct_shapes\":" << st.distinct_shapes << ",\"compile_ms\":" << st.compile_ms
       << ",\"specialize_ms\":" << st.specialize_ms
       << ",\"kernels_compiled\":" << st.kernels_compiled
       << ",\"specializations\":" << st.specializations
       << ",\"compiles_after_warmup\":" << (st.kernels_compiled - compiled_after_cycle)
       << ",\"cache_hits\":" << st.kernel_cache_hits
       << ",\"disk_cache_hits\":" << st.kernel_disk_hits << ",\"plan_hits\":" << st.plan_hits
       << ",\"plan_misses\":" << st.plan_misses << ",\"kernels_per_run\":" << pi.launches
       << ",\"native_kernels\":" << pi.native_kernels
       << ",\"reference_kernels\":" << pi.reference_kernels << ",\"arena_bytes\":" << pi.arena_bytes
       << ",\"intermediate_bytes\":" << pi.intermediate_bytes
       << ",\"allocations_per_run\":" << allocs_per_run << "}";
    std::cout << os.str() << "\n";
  } else {
    std::cout << "model      " << model << " (" << device_name(s.device())
              << (s.device() == Device::kCuda ? host_io ? ", host I/O" : ", GPU-resident I/O" : "")
              << ")\n";
    std::cout << "create     " << create_ms << " ms\n";
    std::cout << "first run  " << first_ms << " ms\n";
    std::cout << "median     " << median << " ms  (" << runs << " runs, " << cycle
              << " input shape(s))\n";
    std::cout << "p90        " << p90 << " ms\n";
    std::cout << "min        " << min << " ms\n";
    std::cout << "plans      " << st.specializations << " built (" << st.specialize_ms << " ms), "
              << st.plan_hits << " hits\n";
    std::cout << "kernels    " << st.kernels_compiled << " compiled (" << st.compile_ms << " ms), "
              << st.kernel_cache_hits << " cache hits (" << st.kernel_disk_hits << " from disk), "
              << (st.kernels_compiled - compiled_after_cycle) << " compiled after warm-up\n";
    std::cout << "per run    " << pi.launches << " kernels (" << pi.native_kernels << " native, "
              << pi.reference_kernels << " reference), arena " << pi.arena_bytes << " bytes ("
              << pi.intermediate_bytes << " bytes of intermediates), " << allocs_per_run
              << " allocations\n";
  }
  return 0;
}

}  // namespace kiln::cli
