// Test-case runner behind `kiln check` and the conformance tests.
#include "check.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "cli.h"

namespace kiln::cli {
namespace fs = std::filesystem;

const char* status_name(CaseResult::Status s) {
  switch (s) {
    case CaseResult::Status::kPass:
      return "pass";
    case CaseResult::Status::kFail:
      return "fail";
    case CaseResult::Status::kError:
      return "error";
    case CaseResult::Status::kSkip:
      return "skip";
  }
  return "?";
}

std::vector<std::string> collect_cases(const std::vector<std::string>& paths) {
  std::vector<std::string> cases;
  for (const auto& p : paths) {
    std::error_code ec;
    if (!fs::exists(p, ec)) throw Error(ErrorCode::kIo, "no such file or folder: '" + p + "'");
    if (fs::exists(fs::path(p) / "model.onnx")) {
      cases.push_back(p);
      continue;
    }
    // Plain files among the paths (a shell glob's README.md) are not cases: pass over them.
    if (!fs::is_directory(p)) continue;
    std::vector<std::string> sub;
    for (const auto& e : fs::directory_iterator(p, ec))
      if (e.is_directory() && fs::exists(e.path() / "model.onnx")) sub.push_back(e.path().string());
    if (sub.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + p + "' holds no test cases (folders with model.onnx)");
    std::sort(sub.begin(), sub.end());
    cases.insert(cases.end(), sub.begin(), sub.end());
  }
  if (cases.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "no test cases (folders with model.onnx) among the paths");
  return cases;
}

std::string compare_tensors(const Tensor& got, const Tensor& want, double atol, double rtol) {
  if (got.dtype() != want.dtype())
    return std::string("element type ") + dtype_name(got.dtype()) + ", expected " +
           dtype_name(want.dtype());
  if (got.dims() != want.dims())
    return "dims " + dims_to_string(got.dims()) + ", expected " + dims_to_string(want.dims());
  int64_t bad = 0, first = -1, worst = -1;
  double worst_err = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    bool ok;
    double err = 0;
    if (got.dtype() == DType::kString) {
      ok = got.data<std::string>()[i] == want.data<std::string>()[i];
    } else if (dtype_is_float(got.dtype())) {
      double a = got.element_as_double(i), b = want.element_as_double(i);
      if (std::isnan(b))
        ok = std::isnan(a);
      else if (std::isinf(b))
        ok = a == b;
      else {
        err = std::fabs(a - b);
        ok = err <= atol + rtol * std::fabs(b);
        if (std::isnan(a)) err = INFINITY;
      }
    } else {
      ok = got.element_as_int(i) == want.element_as_int(i);
      if (!ok) err = std::fabs(got.element_as_double(i) - want.element_as_double(i));
    }
    if (!ok) {
      if (first < 0) first = i;
      if (err > worst_err) worst_err = err, worst = i;
      ++bad;
    }
  }
  if (bad == 0) return "";
  std::ostringstream os;
  int64_t at = worst >= 0 ? worst : first;
  os << bad << " of " << got.numel() << " elements differ";
  if (got.dtype() == DType::kString) {
    os << "; first at " << first << ": \"" << got.data<std::string>()[first] << "\" vs \""
       << want.data<std::string>()[first] << "\"";
  } else {
    os << "; max abs error " << worst_err << " at index " << at << " (got "
       << got.element_as_double(at) << ", expected " << want.element_as_double(at) << ")";
  }
  return os.str();
}

CaseResult check_case(const std::string& case_dir, const CheckOptions& opt) {
  CaseResult r;
  r.name = fs::path(case_dir).filename().string();
  if (r.name.empty()) r.name = fs::path(case_dir).parent_path().filename().string();
  try {
    SessionOptions so;
    so.optimization_level = opt.opt_level;
    so.device = opt.device;
    so.allow_tf32 = opt.allow_tf32;
    Session s((fs::path(case_dir) / "model.onnx").string(), so);
    auto sets = data_set_dirs(case_dir);
    if (sets.empty()) {
      r.status = CaseResult::Status::kSkip;
      r.message = "no test_data_set_N folders";
      return r;
    }
    for (const auto& set : sets) {
      std::string set_name = fs::path(set).filename().string();
      TensorMap inputs = load_data_set_inputs(s, set);
      std::vector<Tensor> want = load_data_set_outputs(set);
      TensorMap got = s.run(inputs);
      const auto& outs = s.output_info();
      if (want.size() > outs.size()) {
        r.status = CaseResult::Status::kFail;
        r.message = set_name + ": " + std::to_string(want.size()) +
                    " reference outputs, the model has " + std::to_string(outs.size());
        return r;
      }
      for (size_t i = 0; i < want.size(); ++i) {
        std::string diff = compare_tensors(got.at(outs[i].name), want[i], opt.atol, opt.rtol);
        if (!diff.empty()) {
          r.status = CaseResult::Status::kFail;
          r.message = set_name + ": output '" + outs[i].name + "': " + diff;
          return r;
        }
      }
    }
    r.status = CaseResult::Status::kPass;
  } catch (const Error& e) {
    r.status = CaseResult::Status::kError;
    r.message = std::string(error_code_name(e.code())) + ": " + e.what();
  } catch (const std::exception& e) {
    r.status = CaseResult::Status::kError;
    r.message = std::string("exception: ") + e.what();
  }
  return r;
}

namespace {

std::string signal_text(int sig) {
  const char* d = strsignal(sig);
  return "crashed with signal " + std::to_string(sig) + (d ? std::string(" (") + d + ")" : "");
}

}  // namespace

CaseResult check_case_isolated(const std::string& case_dir, const CheckOptions& opt) {
  if (!opt.isolate) return check_case(case_dir, opt);
  int fds[2];
  if (pipe(fds) != 0) return check_case(case_dir, opt);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return check_case(case_dir, opt);
  }
  if (pid == 0) {
    close(fds[0]);
    CaseResult r = check_case(case_dir, opt);
    std::string msg = std::string(1, char('0' + int(r.status))) + r.message;
    const char* p = msg.data();
    size_t left = msg.size();
    while (left > 0) {
      ssize_t n = write(fds[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= size_t(n);
    }
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  CaseResult r;
  r.name = fs::path(case_dir).filename().string();
  std::string data;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opt.timeout_seconds);
  bool timed_out = false;
  for (;;) {
    int left_ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count());
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    int pr = poll(&pfd, 1, left_ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) {
      timed_out = pr == 0;
      break;
    }
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    data.append(buf, size_t(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    r.status = CaseResult::Status::kError;
    r.message = "timed out after " + std::to_string(opt.timeout_seconds) + " s";
  } else if (WIFSIGNALED(status)) {
    r.status = CaseResult::Status::kError;
    r.message = signal_text(WTERMSIG(status));
  } else if (data.empty()) {
    r.status = CaseResult::Status::kError;
    r.message = "the case's process exited with status " + std::to_string(WEXITSTATUS(status)) +
                " and no result";
  } else {
    r.status = CaseResult::Status(data[0] - '0');
    r.message = data.substr(1);
  }
  return r;
}

}  // namespace kiln::cli
