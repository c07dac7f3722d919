// The pass pipeline: levels, verification, statistics through Session, and the six shared models
// matching their stored outputs at every level.
#include "ir/passes/pipeline.h"

#include <cstdlib>

#include "check.h"
#include "ir/passes/to_text.h"
#include "ir/passes/verify.h"
#include "kiln/session.h"
#include "pass_test_util.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;

ModelBuilder mixed() {
  ModelBuilder b(17);
  b.input("x", kF32, {-1, 8}, {"n"});
  b.init_f32("a", {}, {2.0f});
  b.init_f32("b", {}, {3.0f});
  b.node("Mul", {"a", "b"}, {"ab"});  // folds
  b.node("Identity", {"x"}, {"xi"});  // goes
  b.node("Mul", {"xi", "ab"}, {"m1"});
  b.node("Mul", {"xi", "ab"}, {"m2"});  // merges with m1
  b.node("Neg", {"x"}, {"unused"});     // dead
  b.node("Add", {"m1", "m2"}, {"s"});
  b.init_f32("sqrt2", {}, {1.4142135f});
  b.init_f32("one", {}, {1.0f});
  b.init_f32("half", {}, {0.5f});
  b.node("Div", {"s", "sqrt2"}, {"t"});  // Gelu at level 2
  b.node("Erf", {"t"}, {"e"});
  b.node("Add", {"e", "one"}, {"ea"});
  b.node("Mul", {"s", "ea"}, {"sa"});
  b.node("Mul", {"sa", "half"}, {"y"});
  b.output("y", kF32, {-1, 8}, {"n"});
  return b;
}

TEST(PassPipeline, LevelsApplyTheirPasses) {
  auto g0 = import_model(mixed());
  std::string before = ir::passes::to_text(*g0);
  EXPECT_TRUE(ir::passes::optimize_graph(*g0, 0, true).applied.empty());
  EXPECT_EQ(ir::passes::to_text(*g0), before);

  auto g1 = import_model(mixed());
  auto s1 = ir::passes::optimize_graph(*g1, 1, true);
  EXPECT_EQ(s1.applied["fold_constants"], 1);
  EXPECT_EQ(s1.applied["remove_identity"], 1);
  EXPECT_EQ(s1.applied["eliminate_common_subexpressions"], 1);
  EXPECT_EQ(s1.applied["eliminate_dead_code"], 1);
  EXPECT_EQ(s1.applied.count("fuse_gelu"), 0u);

  auto g2 = import_model(mixed());
  auto s2 = ir::passes::optimize_graph(*g2, 2, true);
  EXPECT_EQ(s2.applied["fuse_gelu"], 1);
  EXPECT_EQ(ir::passes::to_text(*g2),
            "in x: f32[n,8]\n"
            "const ab: f32[] = 6\n"
            "m1 = Mul(x, ab)\n"
            "s = Add(m1, m1)\n"
            "y = Gelu@20(s)\n"
            "out y\n");
  for (int level = 1; level <= 3; ++level) expect_same_outputs(mixed(), {{"x", {3, 8}}}, level);
}

TEST(PassPipeline, SessionReportsPassStats) {
  std::string bytes = mixed().serialize();
  std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  SessionOptions o;
  o.optimization_level = 2;
  Session s = Session::from_bytes(span, o, "");
  EXPECT_EQ(s.pass_stats().at("fuse_gelu"), 1);
  EXPECT_EQ(s.op_histogram().at("Gelu"), 1);
  o.optimization_level = 0;
  EXPECT_TRUE(Session::from_bytes(span, o, "").pass_stats().empty());
}

TEST(PassPipeline, DumpsTheGraphWhenAsked) {
  auto g = import_model(mixed());
  setenv("KILN_DUMP_PASSES", "1", 1);
  ::testing::internal::CaptureStderr();
  ir::passes::optimize_graph(*g, 1, true);
  std::string err = ::testing::internal::GetCapturedStderr();
  unsetenv("KILN_DUMP_PASSES");
  EXPECT_NE(err.find("=== graph before passes ===\nin x: f32[n,8]\n"), std::string::npos) << err;
  EXPECT_NE(err.find("=== after fold_constants (1) ===\n"), std::string::npos) << err;
}

TEST(PassPipeline, VerifierCatchesBrokenGraphs) {
  auto g = import_model(mixed());
  auto interface = ir::passes::interface_names(*g);
  ir::passes::verify(*g, interface, "none");
  auto bad = *g;
  std::swap(bad.nodes[0], bad.nodes[bad.nodes.size() - 1]);  // out of order, stale producers
  EXPECT_THROW(ir::passes::verify(bad, interface, "swap"), Error);
  auto renamed = *g;
  renamed.values[size_t(renamed.outputs[0])].name = "other";
  EXPECT_THROW(ir::passes::verify(renamed, interface, "rename"), Error);
}

std::string models_dir() {
  const char* env = std::getenv("KILN_SHARED_DIR");
  return (env ? std::string(env) : shared_dir()) + "/models";
}

class PassModels : public ::testing::TestWithParam<const char*> {};

// Every shared model matches its stored outputs (every data set) at every level.
TEST_P(PassModels, MatchStoredOutputsAtEveryLevel) {
  if (!std::filesystem::exists(models_dir())) GTEST_SKIP() << models_dir() << " is absent";
  for (int level = 0; level <= 3; ++level) {
    cli::CheckOptions opt;
    opt.atol = 1e-4;
    opt.rtol = 1e-3;
    opt.isolate = false;
    opt.opt_level = level;
    auto r = cli::check_case(models_dir() + "/" + GetParam(), opt);
    EXPECT_EQ(r.status, cli::CaseResult::Status::kPass) << "level " << level << ": " << r.message;
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, PassModels,
                         ::testing::Values("mlp", "squeezenet1_1", "mobilenet_v2", "resnet18",
                                           "bert_mini", "gpt_mini"));

}  // namespace
}  // namespace kiln::testing
