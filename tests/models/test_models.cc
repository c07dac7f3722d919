// The six shared bench models: every data set (other shapes included) matches the stored
// reference outputs within atol 1e-4, rtol 1e-3 — through the same code as `kiln check`.
#include <gtest/gtest.h>

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
