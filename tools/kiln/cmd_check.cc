// kiln check PATH... [--atol A] [--rtol R] [--opt-level N] [--device D] [--tf32] [--json]
//            [--no-isolate] [--timeout S]
#include <iostream>

#include "check.h"
#include "cli.h"

namespace kiln::cli {

int cmd_check(Args& args) {
  CheckOptions opt;
  bool json = false;
  std::vector<std::string> paths;
  while (!args.done()) {
    std::string v;
    if (args.flag_value("--atol", &v))
      opt.atol = Args::to_double("--atol", v);
    else if (args.flag_value("--rtol", &v))
      opt.rtol = Args::to_double("--rtol", v);
    else if (args.flag_value("--opt-level", &v))
      opt.opt_level = int(Args::to_int("--opt-level", v, 0, 3));
    else if (args.flag_value("--timeout", &v))
      opt.timeout_seconds = int(Args::to_int("--timeout", v, 1, 86400));
    else if (args.flag_value("--device", &v))
      opt.device = parse_device(v);
    else if (args.flag("--json"))
      json = true;
    else if (args.flag("--no-isolate"))
      opt.isolate = false;
    else if (args.flag("--tf32"))
      opt.allow_tf32 = true;
    else {
      std::string a = args.next();
      if (a.rfind("--", 0) == 0) throw UsageError("check: unknown option " + a);
      paths.push_back(a);
    }
  }
  if (paths.empty())
    throw UsageError("check: give test case folders (with model.onnx and test_data_set_N/)");
  auto cases = collect_cases(paths);
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& c : cases) {
    CaseResult r = check_case_isolated(c, opt);
    if (r.status == CaseResult::Status::kPass)
      ++passed;
    else if (r.status == CaseResult::Status::kSkip)
      ++skipped;
    else
      ++failed;
    if (json) {
      std::cout << "{\"name\":" << json_quote(r.name) << ",\"status\":\"" << status_name(r.status)
                << "\",\"msg\":" << json_quote(r.message) << "}\n";
    } else if (r.status == CaseResult::Status::kPass) {
      std::cout << "PASS " << r.name << "\n";
    } else if (r.status == CaseResult::Status::kSkip) {
      std::cout << "SKIP " << r.name << ": " << r.message << "\n";
    } else {
      std::cout << "FAIL " << r.name << ": " << r.message << "\n";
    }
    std::cout.flush();
  }
  std::cout << passed << " passed, " << failed << " failed";
  if (skipped) std::cout << ", " << skipped << " skipped";
  std::cout << "\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace kiln::cli
