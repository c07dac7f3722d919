// Model benchmarks (Google Benchmark): steady-state latency of Session::run on the demo model and
// on the shared bench models (when ../shared is beside the checkout), with the model's MACs as a
// counter so GMAC/s can be read off. Session creation is timed separately.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "kiln/kiln.h"
#include "model_builder.h"

namespace {

struct ModelCase {
  std::string name;
  std::string dir;  // empty: the demo model
  double gmac;      // at data set 0
};

const std::vector<ModelCase>& cases() {
  static const std::vector<ModelCase> list = {
      {"demo_cnn", "", 0.0048},
      {"mlp", "models/mlp", 0.001},
      {"squeezenet1_1", "models/squeezenet1_1", 0.35},
      {"mobilenet_v2", "models/mobilenet_v2", 0.30},
      {"resnet18", "models/resnet18", 1.81},
      {"bert_mini", "models/bert_mini", 0.44},
      {"gpt_mini", "models/gpt_mini", 0.34},
  };
  return list;
}

kiln::Session open(const ModelCase& c) {
  if (c.dir.empty()) {
    std::string bytes = kiln::dev::make_demo_cnn().serialize();
    return kiln::Session::from_bytes(
        {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  }
  return kiln::Session(std::string(KILN_SHARED_DIR) + "/" + c.dir + "/model.onnx");
}

kiln::TensorMap inputs_for(const ModelCase& c, const kiln::Session& s) {
  kiln::TensorMap in;
  if (c.dir.empty()) {
    in["image"] = kiln::Tensor(kiln::DType::kF32, {1, 3, 32, 32});
    return in;
  }
  std::string set = std::string(KILN_SHARED_DIR) + "/" + c.dir + "/test_data_set_0";
  for (size_t i = 0; i < s.input_info().size(); ++i)
    in[s.input_info()[i].name] =
        kiln::read_tensor_proto(set + "/input_" + std::to_string(i) + ".pb");
  return in;
}

bool available(const ModelCase& c) {
  return c.dir.empty() ||
         std::filesystem::exists(std::string(KILN_SHARED_DIR) + "/" + c.dir + "/model.onnx");
}

void BM_Run(benchmark::State& state, ModelCase c) {
  if (!available(c)) {
    state.SkipWithError("model not found (../shared is not beside the checkout)");
    return;
  }
  kiln::Session s = open(c);
  kiln::TensorMap in = inputs_for(c, s);
  s.run(in);  // first run outside the timing
  for (auto _ : state) benchmark::DoNotOptimize(s.run(in));
  state.counters["GMAC/s"] =
      benchmark::Counter(c.gmac * double(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Create(benchmark::State& state, ModelCase c) {
  if (!available(c)) {
    state.SkipWithError("model not found (../shared is not beside the checkout)");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(open(c));
}

const bool kRegistered = [] {
  for (const auto& c : cases()) {
    benchmark::RegisterBenchmark(("run/" + c.name).c_str(), BM_Run, c)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("create/" + c.name).c_str(), BM_Create, c)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
