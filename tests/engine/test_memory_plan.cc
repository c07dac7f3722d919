// The memory planner (liveness, arena offsets, in-place) and the steady-state run path: plans at
// every optimization level match the reference executor, and a run with caller outputs performs
// no heap allocation (counted with a replaced operator new).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>

#include "engine/memory_plan.h"
#include "kiln/kiln.h"
#include "model_builder.h"
#include "op_test_util.h"
#include "test_paths.h"

// The replacement pairs malloc with free on purpose; GCC cannot see that through inlining.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_news{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_news.fetch_add(1);
    if (std::getenv("KILN_TEST_ABORT_ON_ALLOC")) std::abort();
  }
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1);
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace kiln::engine {
namespace {

MemoryValue arena_value(int64_t bytes) {
  MemoryValue v;
  v.bytes = bytes;
  return v;
}

bool overlap(const MemoryPlan& mp, int a, int b, const std::vector<MemoryValue>& v) {
  int64_t a0 = mp.offset[size_t(a)], b0 = mp.offset[size_t(b)];
  return a0 < b0 + v[size_t(b)].bytes && b0 < a0 + v[size_t(a)].bytes;
}

TEST(MemoryPlan, ChainReusesDeadBuffers) {
  // in(0) -> s0 -> v1 -> s1 -> v2 -> s2 -> v3 -> s3 -> out(4): only neighbours are live at once.
  std::vector<MemoryValue> v = {MemoryValue{Storage::kInput}, arena_value(1000), arena_value(1000),
                                arena_value(1000), MemoryValue{}};
  v[4].bytes = 1000;
  v[4].graph_output = true;
  std::vector<MemoryStep> s = {{{0}, {1}}, {{1}, {2}}, {{2}, {3}}, {{3}, {4}}};
  MemoryPlan mp = plan_memory(v, s);
  EXPECT_EQ(mp.storage[0], Storage::kInput);
  EXPECT_EQ(mp.storage[4], Storage::kOutput);
  EXPECT_EQ(mp.intermediate_bytes, 3000);
  EXPECT_EQ(mp.arena_bytes, 2 * arena_align(1000));
  EXPECT_FALSE(overlap(mp, 1, 2, v));
  EXPECT_FALSE(overlap(mp, 2, 3, v));
  EXPECT_EQ(mp.offset[1], mp.offset[3]);  // v1 is dead when v3 is written
}

TEST(MemoryPlan, LiveValuesNeverShare) {
  // v1 is read by the last step: it overlaps every other intermediate's lifetime.
  std::vector<MemoryValue> v = {MemoryValue{Storage::kInput}, arena_value(64), arena_value(128),
                                arena_value(256), arena_value(8)};
  v[4].graph_output = true;
  std::vector<MemoryStep> s = {{{0}, {1}}, {{1}, {2}}, {{2}, {3}}, {{3, 1}, {4}}};
  MemoryPlan mp = plan_memory(v, s);
  EXPECT_FALSE(overlap(mp, 1, 2, v));
  EXPECT_FALSE(overlap(mp, 1, 3, v));
  EXPECT_FALSE(overlap(mp, 2, 3, v));
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(mp.offset[size_t(i)] % 64, 0);
}

TEST(MemoryPlan, InPlaceOnlyWhenTheInputDies) {
  std::vector<MemoryValue> v = {MemoryValue{Storage::kInput}, arena_value(400), arena_value(400),
                                arena_value(400), arena_value(400)};
  v[4].graph_output = true;
  MemoryStep a{{0}, {1}}, b{{1}, {2}, 0}, c{{2, 1}, {3}, 0}, d{{3}, {4}};
  // b may not overwrite v1 (c reads it); c may overwrite v2 (its last use).
  MemoryPlan mp = plan_memory(v, {a, b, c, d});
  EXPECT_NE(mp.offset[1], mp.offset[2]);
  EXPECT_EQ(mp.offset[2], mp.offset[3]);
  EXPECT_EQ(mp.in_place, 1);
  EXPECT_FALSE(overlap(mp, 1, 3, v));
}

TEST(MemoryPlan, ViewsKeepTheirSourceAlive) {
  // v2 views v1; v2 is read by the last step, so v1's bytes must survive until then.
  std::vector<MemoryValue> v = {MemoryValue{Storage::kInput}, arena_value(100), MemoryValue{},
                                arena_value(100), arena_value(100)};
  v[2].view_of = 1;
  v[2].bytes = 100;
  v[4].graph_output = true;
  std::vector<MemoryStep> s = {{{0}, {1}}, {{1}, {2}}, {{0}, {3}}, {{2, 3}, {4}}};
  MemoryPlan mp = plan_memory(v, s);
  EXPECT_EQ(mp.storage[2], Storage::kView);
  EXPECT_EQ(mp.root[2], 1);
  EXPECT_FALSE(overlap(mp, 1, 3, v));
}

TEST(MemoryPlan, SlicesLiveInTheirRootFromTheFirstWrite) {
  // v1 and v2 are written into v3 (a concat's output, at 0 and 256) by steps 1 and 2; v4 is
  // written between them and read with v3 at the end, so it may not share v3's bytes although
  // v3 itself has no step writing it.
  std::vector<MemoryValue> v = {MemoryValue{Storage::kInput},
                                arena_value(256),
                                arena_value(256),
                                arena_value(512),
                                arena_value(512),
                                arena_value(8)};
  v[1].slice_of = 3;
  v[2].slice_of = 3;
  v[2].slice_offset = 256;
  v[5].graph_output = true;
  std::vector<MemoryStep> s = {{{0}, {1}}, {{0}, {4}}, {{1}, {2}}, {{3, 4}, {5}}};
  MemoryPlan mp = plan_memory(v, s);
  EXPECT_EQ(mp.root[1], 3);
  EXPECT_EQ(mp.root[2], 3);
  EXPECT_EQ(mp.view_offset[1], 0);
  EXPECT_EQ(mp.view_offset[2], 256);
  EXPECT_EQ(mp.storage[1], Storage::kView);
  EXPECT_EQ(mp.storage[3], Storage::kArena);
  EXPECT_FALSE(overlap(mp, 3, 4, v));
  EXPECT_EQ(mp.intermediate_bytes, 1024);  // v3 and v4; the slices own no bytes
}

TEST(MemoryPlan, OutputViewsGetOutputMemory) {
  std::vector<MemoryValue> v = {MemoryValue{Storage::kInput}, arena_value(100), MemoryValue{}};
  v[2].view_of = 1;
  v[2].bytes = 100;
  v[2].graph_output = true;
  MemoryPlan mp = plan_memory(v, {{{0}, {1}}, {{1}, {2}}});
  EXPECT_EQ(mp.storage[1], Storage::kOutput);
  EXPECT_EQ(mp.arena_bytes, 0);
}

TEST(MemoryPlan, RejectsTwoWriters) {
  std::vector<MemoryValue> v = {MemoryValue{Storage::kInput}, arena_value(4)};
  EXPECT_THROW(plan_memory(v, {{{0}, {1}}, {{0}, {1}}}), Error);
}

Session demo_session(int level) {
  SessionOptions o;
  o.optimization_level = level;
  std::string bytes = dev::make_demo_cnn().serialize();
  return kiln::testing::session_from_bytes(bytes, o);
}

TEST(MemoryPlanRun, EveryLevelMatchesTheReference) {
  SessionOptions ref_opt;
  ref_opt.use_jit = false;
  std::string bytes = dev::make_demo_cnn().serialize();
  Session ref = kiln::testing::session_from_bytes(bytes, ref_opt);
  for (int level = 0; level <= 3; ++level) {
    Session s = demo_session(level);
    for (int64_t batch : {1, 3, 2}) {
      Tensor x =
          kiln::testing::random_tensor(DType::kF32, {batch, 3, 32, 32}, -1, 1, uint64_t(batch));
      Tensor want = ref.run({{"image", x}}).at("probs");
      // Twice: the second run reuses the pooled arena.
      for (int rep = 0; rep < 2; ++rep) {
        Tensor got = s.run({{"image", x}}).at("probs");
        ASSERT_EQ(got.dims(), want.dims());
        for (int64_t i = 0; i < got.numel(); ++i)
          ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-5)
              << "level " << level << " batch " << batch << " element " << i;
      }
    }
    PlanInfo pi = s.plan_info({{"image", {2, 3, 32, 32}}});
    EXPECT_GT(pi.launches, 0);
    EXPECT_LE(pi.arena_bytes, pi.intermediate_bytes);
  }
}

TEST(MemoryPlanRun, SteadyStateRunAllocatesNothing) {
  Session s = demo_session(3);
  Tensor x = kiln::testing::random_tensor(DType::kF32, {2, 3, 32, 32});
  TensorMap in = {{"image", x}};
  TensorMap out = s.run(in);
  Tensor want = out.at("probs").clone();
  PlanInfo pi = s.plan_info({{"image", {2, 3, 32, 32}}});
  ASSERT_EQ(pi.reference_kernels, 0) << "a reference step allocates its tensors";
  s.run(in, out);  // warm: per-thread scratch reaches its size
  g_news = 0;
  g_counting = true;
  for (int i = 0; i < 5; ++i) s.run(in, out);
  g_counting = false;
  EXPECT_EQ(g_news.load(), 0u);
  for (int64_t i = 0; i < want.numel(); ++i)
    ASSERT_NEAR(out.at("probs").data<float>()[i], want.data<float>()[i], 1e-6);
  // Without caller outputs only the outputs are allocated (a handful of allocations each).
  g_news = 0;
  g_counting = true;
  TensorMap fresh = s.run(in);
  g_counting = false;
  EXPECT_LE(g_news.load(), 8u);
}

TEST(MemoryPlanRun, ProfileTimesEveryStepWithoutAllocating) {
  Session s = demo_session(3);
  Tensor x = kiln::testing::random_tensor(DType::kF32, {2, 3, 32, 32});
  TensorMap in = {{"image", x}};
  TensorMap out = s.run(in);
  const std::map<std::string, Dims> shape = {{"image", {2, 3, 32, 32}}};
  EXPECT_EQ(s.profile_plan(shape).runs, 0u) << "no profiled runs yet";
  set_profiling(true);
  s.run(in, out);  // the first profiled run allocates the plan's counters
  g_news = 0;
  g_counting = true;
  for (int i = 0; i < 3; ++i) s.run(in, out);
  g_counting = false;
  set_profiling(false);
  EXPECT_EQ(g_news.load(), 0u);
  s.run(in, out);  // not profiled
  PlanProfile p = s.profile_plan(shape);
  EXPECT_EQ(p.runs, 4u);
  ASSERT_EQ(p.steps.size(), s.describe_plan(shape).size() - 2);  // + two summary lines
  double total = 0;
  for (const StepProfile& st : p.steps) {
    EXPECT_GE(st.total_ms, 0);
    EXPECT_FALSE(st.step.empty());
    total += st.total_ms;
  }
  EXPECT_GT(total, 0);
}

TEST(MemoryPlanRun, SharedModelsHalveTheirIntermediates) {
  const std::string dir = std::string(KILN_SHARED_DIR) + "/models/resnet18/model.onnx";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no ../shared";
  Session s(dir);
  PlanInfo pi = s.plan_info({{"input", {1, 3, 224, 224}}});
  EXPECT_LT(pi.arena_bytes * 2, pi.intermediate_bytes);
}

}  // namespace
}  // namespace kiln::engine
