// The CLI on bad input: a non-zero exit with one clear line, never a signal.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "cli_run.h"
#include "kiln/kiln.h"
#include "model_builder.h"
#include "op_test_util.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

int lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

void expect_clean_failure(const CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.signal, 0) << r.out;
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
}

TEST(Cli, BadModelFilesFailWithOneLine) {
  TempDir dir;
  std::string good = dev::make_demo_cnn().serialize();
  std::ofstream(dir.file("demo.onnx"), std::ios::binary) << good;
  std::ofstream(dir.file("empty.onnx"), std::ios::binary);
  std::ofstream(dir.file("truncated.onnx"), std::ios::binary) << good.substr(0, good.size() / 3);
  std::string junk(3000, '\0');
  std::mt19937 rng(3);
  for (auto& c : junk) c = char(rng());
  std::ofstream(dir.file("random.onnx"), std::ios::binary) << junk;

  expect_clean_failure(run_cli("run " + dir.file("empty.onnx")), "empty");
  expect_clean_failure(run_cli("run " + dir.file("truncated.onnx")), "truncated.onnx");
  expect_clean_failure(run_cli("run " + dir.file("random.onnx")), "random.onnx");
  expect_clean_failure(run_cli("run " + dir.file("missing.onnx")), "missing.onnx");
  expect_clean_failure(run_cli("info " + dir.file("truncated.onnx")), "truncated.onnx");
  // A folder without model.onnx: the path named, no libstdc++ stream message.
  expect_clean_failure(run_cli("info " + dir.file("")), "model.onnx");
}

TEST(Cli, WrongInputNameOrShape) {
  TempDir dir;
  dev::make_demo_cnn().save(dir.file("demo.onnx"));
  std::string m = dir.file("demo.onnx");
  expect_clean_failure(run_cli("run " + m + " --input nope=random:1x3x32x32"),
                       "unknown input 'nope'");
  expect_clean_failure(run_cli("run " + m + " --input image=random:1x3x31x32"), "dim 2 is 31");
  expect_clean_failure(run_cli("run " + m + " --input image=random:1x3x32"), "rank");
  expect_clean_failure(run_cli("run " + m + " --input image=random:1xfoo"), "bad dims");
  expect_clean_failure(run_cli("run " + m), "symbolic");
  expect_clean_failure(run_cli("frobnicate"), "unknown command");
}

TEST(Cli, RunInfoBenchAndCheckWork) {
  TempDir dir;
  dev::make_demo_cnn().save(dir.file("demo.onnx"));
  std::string m = dir.file("demo.onnx");
  CliResult run = run_cli("run " + m + " --input image=random:2x3x32x32 --out " + dir.file("out"));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/probs.pb"))) << run.out;
  CliResult ops = run_cli("ops");
  EXPECT_EQ(ops.exit_code, 0) << ops.out;
  EXPECT_NE(ops.out.find("Conv (ai.onnx, opset 1+)"), std::string::npos) << ops.out;
  std::filesystem::create_directories(dir.file("folder"));
  std::filesystem::copy_file(m, dir.file("folder/model.onnx"));
  CliResult folder_info = run_cli("info " + dir.file("folder"));  // a test case folder works too
  EXPECT_EQ(folder_info.exit_code, 0) << folder_info.out;
  CliResult info = run_cli("info " + m + " --json");
  EXPECT_EQ(info.exit_code, 0) << info.out;
  EXPECT_NE(info.out.find("\"shape\":[\"batch\",3,32,32]"), std::string::npos) << info.out;
  CliResult bench = run_cli(
      "bench " + m + " --shape image=1x3x32x32 --shape image=2x3x32x32 --runs 4 --warmup 1 --json");
  EXPECT_EQ(bench.exit_code, 0) << bench.out;
  for (const char* key : {"create_ms", "first_run_ms", "median_ms", "p90_ms", "min_ms"})
    EXPECT_NE(bench.out.find(key), std::string::npos) << key << " missing: " << bench.out;

  // A test case folder whose reference comes from an in-process run passes `kiln check`; the
  // same case with a perturbed reference fails, and the summary line says so.
  std::filesystem::create_directories(dir.file("case/test_data_set_0"));
  std::filesystem::copy_file(m, dir.file("case/model.onnx"));
  Session s(m);
  Tensor x = random_tensor(DType::kF32, {2, 3, 32, 32}, -1, 1, 9);
  Tensor y = s.run({{"image", x}}).at("probs");
  write_tensor_proto(x, "image", dir.file("case/test_data_set_0/input_0.pb"));
  write_tensor_proto(y, "probs", dir.file("case/test_data_set_0/output_0.pb"));
  CliResult check = run_cli("check " + dir.file("case") + " --atol 1e-6");
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_NE(check.out.find("1 passed, 0 failed"), std::string::npos) << check.out;
  y.data<float>()[3] += 0.5f;
  write_tensor_proto(y, "probs", dir.file("case/test_data_set_0/output_0.pb"));
  CliResult bad = run_cli("check " + dir.file("case") + " --json");
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("\"status\":\"fail\""), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("0 passed, 1 failed"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace kiln::testing
