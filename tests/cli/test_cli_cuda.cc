// `kiln devices`, `kiln ptx` and `--device`: what the CLI says about CUDA on any machine.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_run.h"
#include "kiln/kiln.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(Cli, DevicesListsCpuAndOneCudaLine) {
  CliResult r = run_cli("devices");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  int cpu = 0, cuda = 0;
  for (const auto& l : lines_of(r.out)) {
    cpu += l.rfind("cpu: ", 0) == 0;
    cuda += l.rfind("cuda: ", 0) == 0;
  }
  EXPECT_EQ(cpu, 1) << r.out;
  EXPECT_EQ(cuda, 1) << r.out;
  DeviceReport d = list_devices();
  if (d.cuda.compiled_in && d.cuda.gpus.empty()) {
    EXPECT_NE(r.out.find("cuda: no CUDA driver/GPU found"), std::string::npos) << r.out;
  }
  if (!d.cuda.nvrtc_version.empty()) {
    EXPECT_NE(r.out.find("NVRTC " + d.cuda.nvrtc_version), std::string::npos) << r.out;
  }
}

TEST(Cli, PtxWritesCudaCAndPtxPerKernel) {
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  if (list_devices().cuda.nvrtc_version.empty()) GTEST_SKIP() << "NVRTC is not available";
  TempDir dir;
  CliResult r = run_cli("ptx " + shared_dir() + "/models/mlp/model.onnx --shape input=2x1x28x28" +
                        " --arch sm_90 --out " + dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  int ptx = 0, cu = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ptx += e.path().extension() == ".ptx";
    cu += e.path().extension() == ".cu";
  }
  EXPECT_GT(ptx, 0);
  EXPECT_EQ(ptx, cu);
  EXPECT_NE(r.out.find(std::to_string(ptx) + " kernels for sm_90"), std::string::npos) << r.out;
  EXPECT_NE(
      run_cli("ptx " + shared_dir() + "/models/mlp/model.onnx --arch sm90 --out " + dir.path())
          .exit_code,
      0);
  // --tf32: GEMMs on tensor cores where the architecture has them for TF32 (sm_80 and newer).
  auto wmma_files = [&](const std::string& arch) {
    TempDir out;
    CliResult t =
        run_cli("ptx " + shared_dir() + "/models/mlp/model.onnx --shape input=64x1x28x28" +
                " --tf32 --arch " + arch + " --out " + out.path());
    EXPECT_EQ(t.exit_code, 0) << t.out;
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(out.path())) {
      std::ifstream f(e.path());
      std::string text((std::istreambuf_iterator<char>(f)), {});
      n += e.path().extension() == ".ptx" && text.find("wmma.mma.sync") != std::string::npos;
    }
    return n;
  };
  EXPECT_GT(wmma_files("sm_90"), 0);
  EXPECT_EQ(wmma_files("sm_75"), 0);
}

TEST(Cli, DeviceFlag) {
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  std::string model = shared_dir() + "/models/mlp/model.onnx";
  CliResult bad = run_cli("run " + model + " --device tpu");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_EQ(lines_of(bad.out).size(), 1u) << bad.out;
  EXPECT_EQ(run_cli("run " + model + " --device cpu --input input=random:1x1x28x28").exit_code, 0);
  EXPECT_EQ(run_cli("run " + model + " --device auto --input input=random:1x1x28x28").exit_code, 0);
  if (!cuda_available()) {
    CliResult r = run_cli("run " + model + " --device cuda --input input=random:1x1x28x28");
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(lines_of(r.out).size(), 1u) << r.out;
    EXPECT_NE(r.out.find("CUDA"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace kiln::testing
