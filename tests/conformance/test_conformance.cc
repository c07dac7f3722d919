// The ONNX backend node suite (../shared/onnx-node-tests) through the same code as `kiln check`,
// against the checked-in expected-pass list: a listed case that fails is a test failure; a case
// that passes but is not listed is printed so the list gets updated.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "check.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

std::set<std::string> read_list(const std::string& path) {
  std::set<std::string> names;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(line);
  }
  return names;
}

void check_node_suite() {
  std::string suite = shared_dir() + "/onnx-node-tests";
  if (!std::filesystem::exists(suite)) GTEST_SKIP() << suite << " is not beside the checkout";
  std::string list_path = std::string(KILN_SOURCE_DIR) + "/tests/conformance/expected_pass.txt";
  std::set<std::string> expected = read_list(list_path);
  cli::CheckOptions opt;  // the ONNX backend-test tolerances: rtol 1e-3, atol 1e-7
  opt.timeout_seconds = 120;
  std::vector<std::string> regressions, new_passes;
  int passed = 0, total = 0;
  for (const auto& c : cli::collect_cases({suite})) {
    cli::CaseResult r = cli::check_case_isolated(c, opt);
    ++total;
    bool pass = r.status == cli::CaseResult::Status::kPass;
    passed += pass;
    if (!pass && expected.count(r.name)) regressions.push_back(r.name + ": " + r.message);
    if (pass && !expected.count(r.name)) new_passes.push_back(r.name);
  }
  std::printf("conformance: %d of %d node tests pass (%zu expected)\n", passed, total,
              expected.size());
  if (!new_passes.empty()) {
    std::printf("%zu cases pass that are not in %s (add them):\n", new_passes.size(),
                list_path.c_str());
    for (const auto& n : new_passes) std::printf("  %s\n", n.c_str());
  }
  for (const auto& r : regressions) ADD_FAILURE() << "regression: " << r;
}

TEST(Conformance, NodeSuiteMatchesExpectedPassList) { check_node_suite(); }

// The kernels a CUDA plan compiles with NVRTC (level 2 fusion, the GPU schedule: one parallel
// iteration per element, no vector loops), compiled by LLVM for the CPU instead: the same list
// passes, so the GPU's kernel IR is checked on every op without a GPU.
TEST(Conformance, NodeSuiteWithGpuLoweringOnCpu) {
  ScopedEnv env("KILN_GPU_LOWERING_ON_CPU", "1");
  check_node_suite();
}

}  // namespace
}  // namespace kiln::testing
