// The six shared bench models: every data set (other shapes included) matches the stored
// reference outputs within atol 1e-4, rtol 1e-3 — through the same code as `kiln check`.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "check.h"
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
