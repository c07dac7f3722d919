// Attribute mutations of the ONNX node-suite models: every int / ints attribute of every node set
// to values a malformed model may hold (0, -1, -7, 2^40, an empty list), every float one to NaN,
// infinity, -1e30 and 0, every string one to an unknown mode. Each mutant must load and
// run, or fail with kiln::Error — never crash, hang or throw anything else. Each mutant runs in a
// child process so that a crash is reported as this test's failure instead of ending the run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "check.h"
#include "cli.h"
#include "kiln/kiln.h"
#include "onnx/onnx_pb.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

// 0: ran or kiln::Error (not internal); 1: another exception or an internal error.
int run_mutant(const std::string& bytes, const std::string& data_dir) {
  try {
    Session s = Session::from_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
    TensorMap in = cli::load_data_set_inputs(s, data_dir);
    s.run(in);
  } catch (const Error& e) {
    return e.code() == ErrorCode::kInternal ? 1 : 0;
  } catch (...) {
    return 1;
  }
  return 0;
}

// Runs the mutant in a child; returns "" when it behaved, else what went wrong.
std::string check_in_child(const std::string& bytes, const std::string& data_dir) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(5);
    _exit(run_mutant(bytes, data_dir));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  if (WEXITSTATUS(status) != 0) return "internal error or foreign exception";
  return "";
}

TEST(Fuzz, AttributeMutationsOfNodeTests) {
  std::string suite = shared_dir() + "/onnx-node-tests";
  if (!std::filesystem::exists(suite)) GTEST_SKIP() << suite << " is not beside the checkout";
  const int64_t kValues[] = {0, -1, -7, int64_t(1) << 40};
  std::vector<std::string> problems;
  int mutants = 0;
  for (const auto& dir : cli::collect_cases({suite})) {
    std::string data = dir + "/test_data_set_0";
    if (!std::filesystem::exists(data)) continue;
    std::ifstream f(dir + "/model.onnx", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    onnx::ModelProto model;
    if (!model.ParseFromString(bytes) || model.graph().node_size() != 1)
      continue;  // single-op cases
    const auto& node = model.graph().node(0);
    for (int a = 0; a < node.attribute_size(); ++a) {
      const auto& attr = node.attribute(a);
      bool is_int = attr.type() == onnx::AttributeProto::INT;
      bool is_ints = attr.type() == onnx::AttributeProto::INTS;
      bool is_float = attr.type() == onnx::AttributeProto::FLOAT;
      bool is_string = attr.type() == onnx::AttributeProto::STRING;
      if (is_float || is_string) {
        const float kFloats[] = {NAN, INFINITY, -1e30f, 0.f};
        for (int k = 0; k < (is_float ? 4 : 1); ++k) {
          onnx::ModelProto m = model;
          auto* ma = m.mutable_graph()->mutable_node(0)->mutable_attribute(a);
          if (is_float)
            ma->set_f(kFloats[k]);
          else
            ma->set_s("no_such_mode");
          ++mutants;
          std::string why = check_in_child(m.SerializeAsString(), data);
          if (!why.empty()) {
            problems.push_back(std::filesystem::path(dir).filename().string() + " " + attr.name() +
                               (is_float ? "=" + std::to_string(kFloats[k]) : "=no_such_mode") +
                               ": " + why);
            std::printf("misbehaved: %s\n", problems.back().c_str());
          }
        }
        continue;
      }
      if (!is_int && !is_ints) continue;
      for (int k = 0; k < (is_ints ? 5 : 4); ++k) {
        onnx::ModelProto m = model;
        auto* ma = m.mutable_graph()->mutable_node(0)->mutable_attribute(a);
        std::string what;
        if (is_int) {
          ma->set_i(kValues[k]);
          what = std::to_string(kValues[k]);
        } else if (k == 4) {
          ma->clear_ints();
          what = "[]";
        } else {
          for (int j = 0; j < ma->ints_size(); ++j) ma->set_ints(j, kValues[k]);
          what = "all " + std::to_string(kValues[k]);
        }
        ++mutants;
        std::string why = check_in_child(m.SerializeAsString(), data);
        if (!why.empty()) {
          problems.push_back(std::filesystem::path(dir).filename().string() + " " + attr.name() +
                             "=" + what + ": " + why);
          std::printf("misbehaved: %s\n", problems.back().c_str());
          std::fflush(stdout);
        }
      }
    }
  }
  std::printf("attribute fuzz: %d mutants, %zu misbehaved\n", mutants, problems.size());
  for (const auto& p : problems) ADD_FAILURE() << p;
}

}  // namespace
}  // namespace kiln::testing
