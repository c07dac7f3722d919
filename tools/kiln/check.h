// `kiln check`: runs ONNX test cases (a folder with model.onnx and test_data_set_N/) and compares
// every output with the stored reference. Floats: |got-ref| <= atol + rtol*|ref|, NaN equals NaN,
// infinities must match; integers, bools and strings exactly. Each case runs in a child process
// (when isolated) so that a crash or a hang in one case is that case's failure, not the run's end.
// The conformance test suite calls the same functions.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::cli {

struct CheckOptions {
  double atol = 1e-7;
  double rtol = 1e-3;
  int opt_level = 3;
  bool isolate = true;        // one child process per case
  int timeout_seconds = 300;  // per case, when isolated
  Device device = Device::kCpu;
  bool allow_tf32 = false;  // SessionOptions::allow_tf32
};

struct CaseResult {
  enum class Status { kPass, kFail, kError, kSkip };
  std::string name;
  Status status = Status::kPass;
  std::string message;
};
const char* status_name(CaseResult::Status s);

/// The test case folders under `paths`: a folder with model.onnx is a case; otherwise its
/// immediate subfolders that have one, sorted by name; plain files are passed over. Throws kIo
/// for a path that does not exist, kInvalidArgument when no case is found.
std::vector<std::string> collect_cases(const std::vector<std::string>& paths);

/// Compares one output; returns "" when it matches, else the reason.
std::string compare_tensors(const Tensor& got, const Tensor& want, double atol, double rtol);

/// Runs one case in this process.
CaseResult check_case(const std::string& case_dir, const CheckOptions& opt);
/// Runs one case in a child process (or in-process when !opt.isolate).
CaseResult check_case_isolated(const std::string& case_dir, const CheckOptions& opt);

}  // namespace kiln::cli
