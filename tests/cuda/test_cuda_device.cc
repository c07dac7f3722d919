// Sessions on the GPU (ctest label gpu): the shared models with Device::kCuda match the CPU
// (atol 1e-4, rtol 1e-3; with allow_tf32, 1e-2 and 1e-2). Without a CUDA driver or GPU these tests
// skip, except the ones that check how a missing GPU is reported.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <thread>

#include "cuda/cuda_test_util.h"
#include "kiln/kiln.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

Tensor input_for(const ValueInfo& in, uint64_t seed) {
  Dims dims;
  for (const Dim& d : in.shape) dims.push_back(d.is_constant() ? d.value : 2);
  Tensor t(in.dtype, dims);
  uint64_t x = seed * 2654435761u + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    double u = double(x >> 11) / double(1ull << 53);
    if (in.dtype == DType::kF32)
      t.data<float>()[i] = float(u * 2 - 1);
    else if (in.dtype == DType::kI64)
      t.data<int64_t>()[i] = int64_t(u * 64);
    else if (in.dtype == DType::kI32)
      t.data<int32_t>()[i] = int32_t(u * 64);
  }
  return t;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what,
                  double atol = 1e-4, double rtol = 1e-3) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.dims(), want.dims()) << what;
  int bad = 0;
  for (int64_t i = 0; i < got.numel() && bad < 5; ++i) {
    double g = got.element_as_double(i), w = want.element_as_double(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w))) {
      ADD_FAILURE() << what << " element " << i << ": gpu " << g << ", cpu " << w;
      ++bad;
    }
  }
}

// Runs both sessions twice on the same inputs (the GPU's second run replays its CUDA graph) and
// compares every output; returns the inputs.
TensorMap expect_runs_match(Session& gpu, Session& cpu, uint64_t seed, double atol, double rtol,
                            const std::string& what) {
  TensorMap inputs;
  for (const ValueInfo& in : cpu.input_info())
    if (!in.has_default) inputs[in.name] = input_for(in, seed++);
  for (int run = 0; run < 2; ++run) {
    TensorMap want = cpu.run(inputs), got = gpu.run(inputs);
    for (const auto& [name, t] : want) expect_close(got.at(name), t, name + what, atol, rtol);
  }
  return inputs;
}

class CudaDeviceModels : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaDeviceModels, MatchCpu) {
  KILN_REQUIRE_GPU();
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  std::string model = shared_dir() + "/models/" + GetParam() + "/model.onnx";
  SessionOptions gpu_opt;
  gpu_opt.device = Device::kCuda;
  Session gpu(model, gpu_opt), cpu(model);
  EXPECT_EQ(gpu.device(), Device::kCuda);
  TensorMap inputs = expect_runs_match(gpu, cpu, 1, 1e-4, 1e-3, "");
  // Caller-provided outputs are written in place.
  TensorMap want = cpu.run(inputs), outs;
  for (const auto& [name, t] : want) outs[name] = Tensor(t.dtype(), t.dims());
  gpu.run(inputs, outs);
  for (const auto& [name, t] : want) expect_close(outs.at(name), t, name + " (preset)");
}

// The same plan run step by step (no CUDA graphs, loop-nest GEMMs) matches the default run
// (graph replays of tiled GEMMs), run after run.
TEST_P(CudaDeviceModels, GraphsAndTiledGemmsMatchStepByStep) {
  KILN_REQUIRE_GPU();
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  std::string model = shared_dir() + "/models/" + GetParam() + "/model.onnx";
  SessionOptions gpu_opt;
  gpu_opt.device = Device::kCuda;
  Session fast(model, gpu_opt);
  std::unique_ptr<Session> plain;
  {
    ScopedEnv graphs("KILN_CUDA_GRAPHS", "0");
    ScopedEnv gemms("KILN_CUDA_GEMM", "0");
    plain = std::make_unique<Session>(model, gpu_opt);
  }
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    TensorMap inputs;
    for (const ValueInfo& in : fast.input_info())
      if (!in.has_default) inputs[in.name] = input_for(in, seed);
    TensorMap want = plain->run(inputs), got = fast.run(inputs);
    for (const auto& [name, t] : want)
      expect_close(got.at(name), t, name + " run " + std::to_string(seed));
    if (seed == 1) {  // tiled GEMMs absorb the elementwise steps after them: fewer launches
      std::map<std::string, Dims> shapes;
      for (const auto& [name, t] : inputs) shapes[name] = t.dims();
      EXPECT_LT(fast.plan_info(shapes).launches, plain->plan_info(shapes).launches);
      EXPECT_GT(fast.plan_info(shapes).launches, 0);
    }
  }
}

// allow_tf32: GEMMs on tensor cores match the CPU's f32 within TF32's tolerance (atol and rtol
// 1e-2; the host runs of the printed TF32 kernels in CudaEmulated* stay under 1e-3).
TEST_P(CudaDeviceModels, Tf32MatchesCpuWithinTf32Tolerance) {
  KILN_REQUIRE_GPU();
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  DeviceReport r = list_devices();
  if (r.cuda.gpus.empty() || r.cuda.gpus[0].compute_major < 8)
    GTEST_SKIP() << "no TF32 tensor cores on this GPU";
  std::string model = shared_dir() + "/models/" + GetParam() + "/model.onnx";
  SessionOptions gpu_opt;
  gpu_opt.device = Device::kCuda;
  gpu_opt.allow_tf32 = true;
  Session gpu(model, gpu_opt), cpu(model);
  expect_runs_match(gpu, cpu, 5, 1e-2, 1e-2, " (tf32)");
}

// Runs from many threads at once (graph slots, streams and memory per run) match serial runs.
TEST_P(CudaDeviceModels, ConcurrentRunsMatchSerial) {
  KILN_REQUIRE_GPU();
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  std::string model = shared_dir() + "/models/" + GetParam() + "/model.onnx";
  SessionOptions gpu_opt;
  gpu_opt.device = Device::kCuda;
  Session s(model, gpu_opt);
  constexpr int kThreads = 6, kRuns = 4;
  std::vector<TensorMap> inputs(kThreads), want(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (const ValueInfo& in : s.input_info())
      if (!in.has_default) inputs[size_t(t)][in.name] = input_for(in, uint64_t(t) + 10);
    want[size_t(t)] = s.run(inputs[size_t(t)]);
  }
  std::vector<TensorMap> got(kThreads * kRuns);
  std::vector<std::thread> pool;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t)
    pool.emplace_back([&, t] {
      try {
        for (int r = 0; r < kRuns; ++r) got[size_t(t * kRuns + r)] = s.run(inputs[size_t(t)]);
      } catch (const std::exception&) {
        ++errors;
      }
    });
  for (auto& th : pool) th.join();
  ASSERT_EQ(errors.load(), 0);
  for (int t = 0; t < kThreads; ++t)
    for (int r = 0; r < kRuns; ++r)
      for (const auto& [name, w] : want[size_t(t)])
        expect_close(got[size_t(t * kRuns + r)].at(name), w, name);
}

INSTANTIATE_TEST_SUITE_P(Shared, CudaDeviceModels,
                         ::testing::Values("mlp", "squeezenet1_1", "mobilenet_v2", "resnet18",
                                           "bert_mini", "gpt_mini"));

TEST(CudaDevice, ListDevicesDescribesCuda) {
  DeviceReport r = list_devices();
  EXPECT_GT(r.cpu.cores, 0);
  EXPECT_FALSE(r.cuda.status.empty());
  EXPECT_EQ(r.cuda.usable, cuda_available());
  if (r.cuda.usable) {
    ASSERT_FALSE(r.cuda.gpus.empty());
    EXPECT_GT(r.cuda.gpus[0].compute_major, 0);
    EXPECT_GT(r.cuda.gpus[0].memory_bytes, 0u);
  }
}

TEST(CudaDevice, CudaWithoutGpuIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  SessionOptions so;
  so.device = Device::kCuda;
  std::string model = shared_dir() + "/models/mlp/model.onnx";
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  try {
    Session s(model, so);
    FAIL() << "expected kiln::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
  }
}

TEST(CudaDevice, AutoFallsBackToCpuWithoutGpu) {
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  SessionOptions so;
  so.device = Device::kAuto;
  so.log_level = LogLevel::kError;
  Session s(shared_dir() + "/models/mlp/model.onnx", so);
  EXPECT_EQ(s.device(), cuda_available() ? Device::kCuda : Device::kCpu);
  TensorMap out = s.run({{"input", input_for(s.input_info()[0], 3)}});
  EXPECT_EQ(out.size(), 1u);
}

}  // namespace
}  // namespace kiln::testing
