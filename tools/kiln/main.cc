// kiln — the command-line front end of the Kiln inference engine (public API only).
#include <cstring>
#include <iostream>

#include "cli.h"

namespace {

constexpr const char* kUsage = R"(usage: kiln COMMAND [ARGS]

commands:
  info MODEL.onnx [--json] [--opt-level N] [--passes]
      inputs and outputs with symbolic shapes, opsets, op histogram, every value's shape;
      --passes: rewrites made by each graph pass at load
  run MODEL.onnx [--input NAME=FILE.pb | NAME=random:DIMS]... [--out DIR] [--threads N]
      [--device cpu|cuda|auto] [--tf32]
      runs once; prints each output's shape and first values (or writes DIR/NAME.pb)
  check PATH... [--atol A] [--rtol R] [--opt-level N] [--device D] [--tf32] [--json]
        [--timeout S] [--no-isolate]
      runs ONNX test cases (model.onnx + test_data_set_N/) and compares every output
  bench MODEL_DIR|MODEL.onnx [--threads N] [--runs N] [--warmup N] [--batch N]
        [--shape NAME=DIMS]... [--opt-level N] [--device D] [--host-io] [--tf32] [--json]
        [--profile] [--profile-top N]
      times session creation, the first run and steady-state runs; --profile: the steps
      that took longest per run; on a GPU inputs and outputs stay in GPU memory (--host-io:
      copied in and out on every run)
      --tf32: MatMul, Gemm and Conv on TF32 tensor cores (CUDA, sm_80 and newer)
  devices
      the backends compiled in and what each finds here (CPU features; CUDA driver, NVRTC, GPUs)
  ptx MODEL.onnx [--shape NAME=DIMS]... [--arch sm_90] [--tf32] --out DIR
      writes the CUDA C (.cu) and PTX (.ptx) of every kernel of the plan (no GPU needed)
  ops
      every supported operator with the opset it is registered from
  version
      Kiln, LLVM and host CPU versions
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace kiln::cli;
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") ||
      !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    Args args(argc, argv, 2);
    if (cmd == "info") return cmd_info(args);
    if (cmd == "run") return cmd_run(args);
    if (cmd == "check") return cmd_check(args);
    if (cmd == "bench") return cmd_bench(args);
    if (cmd == "devices") return cmd_devices(args);
    if (cmd == "ptx") return cmd_ptx(args);
    if (cmd == "ops") {
      auto ops = kiln::supported_operators();
      for (const auto& op : ops) std::cout << op << "\n";
      std::cout << ops.size() << " registrations\n";
      return 0;
    }
    if (cmd == "version" || cmd == "--version") {
      std::cout << kiln::build_info() << "\n";
      return 0;
    }
    throw UsageError("unknown command '" + cmd + "' (see kiln --help)");
  } catch (const UsageError& e) {
    std::cerr << "kiln: " << e.what() << "\n";
    return 2;
  } catch (const kiln::Error& e) {
    std::cerr << "kiln: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "kiln: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "kiln: error: " << e.what() << "\n";
    return 1;
  }
}
