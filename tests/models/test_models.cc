// The six shared bench models: every data set (other shapes included) matches the stored
// reference outputs within atol 1e-4, rtol 1e-3 — through the same code as `kiln check`.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "check.h"
#include "kiln/kiln.h"
#include "op_test_util.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

class Models : public ::testing::TestWithParam<const char*> {};

TEST_P(Models, AllDataSetsMatch) {
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  cli::CheckOptions opt;
  opt.atol = 1e-4;
  opt.rtol = 1e-3;
  opt.isolate = false;
  auto r = cli::check_case(shared_dir() + "/models/" + GetParam(), opt);
  EXPECT_EQ(r.status, cli::CaseResult::Status::kPass) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Shared, Models,
                         ::testing::Values("mlp", "squeezenet1_1", "mobilenet_v2", "resnet18",
                                           "bert_mini", "gpt_mini"));

// The kernels of the CUDA plans (level 2 fusion, the GPU schedule), compiled by LLVM for the CPU:
// every data set matches, so the GPU's kernel IR is checked without a GPU.
class GpuLoweringModels : public ::testing::TestWithParam<const char*> {};

TEST_P(GpuLoweringModels, AllDataSetsMatchOnCpu) {
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  ScopedEnv env("KILN_GPU_LOWERING_ON_CPU", "1");
  std::string model = shared_dir() + "/models/" + GetParam();
  {
    Session s(model + "/model.onnx");
    std::map<std::string, Dims> shapes;
    for (const ValueInfo& in : s.input_info()) {
      if (in.has_default) continue;
      Dims d;
      for (const Dim& dim : in.shape) d.push_back(dim.is_constant() ? dim.value : 2);
      shapes[in.name] = d;
    }
    PlanInfo info = s.plan_info(shapes);
    EXPECT_EQ(info.native_kernels, 0) << "a CUDA plan's lowering has no native CPU kernels";
    EXPECT_GT(info.jit_kernels, 0);
  }
  cli::CheckOptions opt;
  opt.atol = 1e-4;
  opt.rtol = 1e-3;
  opt.isolate = false;
  auto r = cli::check_case(model, opt);
  EXPECT_EQ(r.status, cli::CaseResult::Status::kPass) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Shared, GpuLoweringModels,
                         ::testing::Values("mlp", "squeezenet1_1", "mobilenet_v2", "resnet18",
                                           "bert_mini", "gpt_mini"));

}  // namespace
}  // namespace kiln::testing

namespace kiln::testing {
namespace {

// Many threads running one session at mixed shapes get exactly the serial results.
TEST(ModelsConcurrency, GptMiniMixedShapesFromManyThreads) {
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  Session s(shared_dir() + "/models/gpt_mini/model.onnx");
  std::vector<Dims> shapes = {{1, 1}, {1, 7}, {2, 16}, {1, 33}};
  std::vector<Tensor> inputs, want;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor t(DType::kI64, shapes[i]);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<int64_t>()[k] = int64_t((k * 37 + i) % 8192);
    inputs.push_back(t);
    want.push_back(s.run({{"input", t}}).at("output"));
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 8; ++r) {
        size_t i = size_t(t + r) % shapes.size();
        Tensor got = s.run({{"input", inputs[i]}}).at("output");
        if (!cli::compare_tensors(got, want[i], 0, 0).empty()) ++mismatches;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(s.stats().distinct_shapes, shapes.size());
}

}  // namespace
}  // namespace kiln::testing

namespace kiln::testing {
namespace {

// The default policy over 40 sequence lengths: at most 3x the kernels of one shape, every output
// equal (within float reassociation) to the reference kernels'.
TEST(ModelsSpecialization, GptMiniFortySequenceLengthsReuseKernels) {
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  std::string path = shared_dir() + "/models/gpt_mini/model.onnx";
  // The kernels one shape needs, counted on a session with a private view of the counters.
  Session one(path);
  one.specialize_for({{"input", {1, 64}}});
  SessionStats st1 = one.stats();
  uint64_t per_shape = st1.kernels_compiled + st1.kernel_cache_hits;
  ASSERT_GT(per_shape, 0u);
  // Distinct kernels of one shape (a kernel used by several nodes counts once).
  std::set<std::string> distinct;
  for (const auto& line : one.describe_plan({{"input", {1, 64}}})) {
    auto p = line.find(": jit ");
    if (p != std::string::npos) distinct.insert(line.substr(p + 6, 12));
  }
  SessionOptions ref_opt;
  ref_opt.use_jit = false;
  Session s(path), ref(path, ref_opt);
  std::set<std::string> all;
  for (int k = 0; k < 40; ++k) {
    int64_t seq = 1 + (int64_t(k) * 127 + 19) / 39;  // 40 distinct lengths, 1 ... 128
    Tensor t(DType::kI64, {1, seq});
    for (int64_t k = 0; k < seq; ++k) t.data<int64_t>()[k] = (k * 131 + seq) % 8192;
    Tensor got = s.run({{"input", t}}).at("output");
    Tensor want = ref.run({{"input", t}}).at("output");
    EXPECT_TRUE(tensors_near(got, want, 1e-4, 1e-3)) << "seq " << seq;
    for (const auto& line : s.describe_plan({{"input", {1, seq}}})) {
      auto p = line.find(": jit ");
      if (p != std::string::npos) all.insert(line.substr(p + 6, 12));
    }
  }
  EXPECT_EQ(s.stats().specializations, 40u);
  EXPECT_LE(all.size(), 3 * distinct.size())
      << all.size() << " distinct kernels over 40 lengths, " << distinct.size() << " for one";
}

}  // namespace
}  // namespace kiln::testing
