// Runtime specialization: the plan cache (hits, misses, LRU eviction, recompiles), the three
// specialization policies, warm-up shapes, the disk kernel cache across sessions, interpreted
// plans for data-dependent shapes, and many threads running mixed shapes at once. Outputs are
// always compared with a session that runs every node on its reference kernel.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "jit/kernel_cache.h"
#include "kiln/kiln.h"
#include "model_builder.h"
#include "op_test_util.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;
constexpr int32_t kF = 1, kI64 = 7;  // onnx::TensorProto element types

// x f32[batch,seq,16] -> a small block with shape arithmetic (Shape/Slice/Concat/Reshape), a
// MatMul, bias, Relu, Softmax over groups of 4, a residual Add and a mean over the last axis.
std::string block_model() {
  dev::ModelBuilder b(17, "block");
  b.input("x", kF, {-1, -1, 16}, {"batch", "seq"});
  b.output("y", kF, {-1, -1, 16}, {"batch", "seq"});
  b.output("m", kF, {-1, -1}, {"batch", "seq"});
  b.init_random("w", {16, 16}, 0.5f, 7);
  b.init_random("bias", {16}, 0.5f, 8);
  b.init_i64("starts", {1}, {0});
  b.init_i64("ends", {1}, {2});
  b.init_i64("groups", {2}, {4, 4});
  b.node("MatMul", {"x", "w"}, {"h0"});
  b.node("Add", {"h0", "bias"}, {"h1"});
  b.node("Relu", {"h1"}, {"h2"});
  b.node("Shape", {"x"}, {"sx"});
  b.node("Slice", {"sx", "starts", "ends"}, {"bs"});
  auto& cat = b.node("Concat", {"bs", "groups"}, {"target"});
  dev::ModelBuilder::set_int(cat, "axis", 0);
  b.node("Reshape", {"h2", "target"}, {"h3"});
  auto& sm = b.node("Softmax", {"h3"}, {"h4"});
  dev::ModelBuilder::set_int(sm, "axis", -1);
  b.node("Reshape", {"h4", "sx"}, {"h5"});
  b.node("Add", {"h5", "x"}, {"y"});
  auto& rm = b.node("ReduceMean", {"y"}, {"m"});
  dev::ModelBuilder::set_ints(rm, "axes", {-1});
  dev::ModelBuilder::set_int(rm, "keepdims", 0);
  (void)kI64;
  return b.serialize();
}

Session open(const std::string& bytes, SessionOptions o = {}) {
  return testing::session_from_bytes(bytes, o);
}

Tensor input_for(int64_t batch, int64_t seq, uint64_t seed) {
  return random_tensor(DType::kF32, {batch, seq, 16}, -1, 1, seed);
}

void expect_matches_reference(const Session& s, const Session& ref, const Tensor& x) {
  TensorMap got = s.run({{"x", x}});
  TensorMap want = ref.run({{"x", x}});
  for (const char* name : {"y", "m"}) {
    EXPECT_TRUE(tensors_near(got.at(name), want.at(name), 1e-5, 1e-4))
        << name << " at " << dims_to_string(x.dims());
  }
}

SessionOptions reference_options() {
  SessionOptions o;
  o.use_jit = false;
  return o;
}

// Kernel key prefixes of the jit steps of a plan, and whether any step has params.
std::multiset<std::string> kernel_keys(const Session& s, int64_t batch, int64_t seq,
                                       bool* has_params = nullptr) {
  std::multiset<std::string> keys;
  if (has_params) *has_params = false;
  for (const auto& line : s.describe_plan({{"x", {batch, seq, 16}}})) {
    auto p = line.find(": jit ");
    if (p == std::string::npos) continue;
    keys.insert(line.substr(p + 6, 12));
    if (has_params && line.find("params [") != std::string::npos) *has_params = true;
  }
  return keys;
}

TEST(Specialization, PlanCacheCountsHitsAndMisses) {
  std::string bytes = block_model();
  Session s = open(bytes), ref = open(bytes, reference_options());
  expect_matches_reference(s, ref, input_for(1, 5, 1));
  expect_matches_reference(s, ref, input_for(1, 5, 2));
  expect_matches_reference(s, ref, input_for(2, 9, 3));
  SessionStats st = s.stats();
  EXPECT_EQ(st.plan_misses, 2u);
  EXPECT_EQ(st.plan_hits, 1u);
  EXPECT_EQ(st.specializations, 2u);
  EXPECT_EQ(st.plans_cached, 2u);
  EXPECT_GT(st.kernels_compiled + st.kernel_cache_hits, 0u);
}

TEST(Specialization, PlansRunJitKernelsForLoweredNodes) {
  std::string bytes = block_model();
  Session s = open(bytes);
  std::vector<std::string> plan = s.describe_plan({{"x", {2, 3, 16}}});
  std::string all;
  for (const auto& l : plan) all += l + "\n";
  // Relu runs in a compiled kernel: its own, or fused into its producer's.
  EXPECT_TRUE(all.find("Relu): jit") != std::string::npos ||
              all.find("Relu): native") != std::string::npos)
      << all;
  EXPECT_NE(all.find("(Reshape): view"), std::string::npos) << all;
  EXPECT_EQ(all.find("(Shape)"), std::string::npos) << "shape arithmetic is folded:\n" << all;
  Session plain = open(bytes, reference_options());
  for (const auto& l : plain.describe_plan({{"x", {2, 3, 16}}}))
    EXPECT_EQ(l.find(": jit "), std::string::npos) << l;
}

TEST(Specialization, LruEvictsAtTheBoundAndRecompiles) {
  std::string bytes = block_model();
  SessionOptions o;
  o.max_specializations = 2;
  Session s = open(bytes, o), ref = open(bytes, reference_options());
  for (int64_t seq : {2, 3, 4, 2, 5, 3}) expect_matches_reference(s, ref, input_for(1, seq, 9));
  SessionStats st = s.stats();
  EXPECT_EQ(st.plans_cached, 2u);
  EXPECT_EQ(st.plan_misses, 6u);  // 2,3,4 miss; 2 evicted by 4; 5 miss; 3 evicted by 5
  EXPECT_EQ(st.plan_evictions, 4u);
}

TEST(Specialization, ExactPolicyCompilesConstantKernelsPerShape) {
  std::string bytes = block_model();
  SessionOptions o;
  o.specialization = Specialization::kExact;
  Session s = open(bytes, o), ref = open(bytes, reference_options());
  bool params = true;
  auto a = kernel_keys(s, 1, 6, &params);
  EXPECT_FALSE(params);
  auto b = kernel_keys(s, 1, 7, &params);
  EXPECT_FALSE(params);
  EXPECT_NE(a, b);
  expect_matches_reference(s, ref, input_for(1, 6, 4));
  expect_matches_reference(s, ref, input_for(1, 7, 5));
}

TEST(Specialization, DynamicPolicyReusesKernelsAcrossShapes) {
  std::string bytes = block_model();
  SessionOptions o;
  o.specialization = Specialization::kDynamic;
  Session s = open(bytes, o), ref = open(bytes, reference_options());
  bool params = false;
  auto a = kernel_keys(s, 2, 6, &params);
  EXPECT_TRUE(params);
  uint64_t compiled = s.stats().kernels_compiled;
  EXPECT_EQ(kernel_keys(s, 3, 11), a);
  EXPECT_EQ(kernel_keys(s, 2, 40), a);
  EXPECT_EQ(s.stats().kernels_compiled, compiled) << "new shapes compiled new kernels";
  for (int64_t seq : {6, 11, 40}) expect_matches_reference(s, ref, input_for(2, seq, 6));
}

TEST(Specialization, AutoPolicyTurnsADimDynamicOnItsSecondValue) {
  std::string bytes = block_model();
  Session s = open(bytes), ref = open(bytes, reference_options());
  bool params = true;
  kernel_keys(s, 2, 6, &params);
  EXPECT_FALSE(params) << "first shape: constants";
  auto second = kernel_keys(s, 2, 8, &params);
  EXPECT_TRUE(params) << "seq seen twice: parameter kernels";
  uint64_t compiled = s.stats().kernels_compiled;
  for (int64_t seq : {9, 10, 17, 33}) {
    EXPECT_EQ(kernel_keys(s, 2, seq), second);
    expect_matches_reference(s, ref, input_for(2, seq, uint64_t(seq)));
  }
  EXPECT_EQ(s.stats().kernels_compiled, compiled);
}

TEST(Specialization, WarmupShapesCompileAtLoad) {
  std::string bytes = block_model();
  SessionOptions o;
  o.warmup_shapes = {{{"x", {1, 12, 16}}}, {{"x", {4, 12, 16}}}};
  Session s = open(bytes, o), ref = open(bytes, reference_options());
  EXPECT_EQ(s.stats().specializations, 2u);
  expect_matches_reference(s, ref, input_for(1, 12, 3));
  expect_matches_reference(s, ref, input_for(4, 12, 3));
  EXPECT_EQ(s.stats().specializations, 2u);
  EXPECT_EQ(s.stats().plan_hits, 2u);
  s.specialize_for({{"x", {2, 12, 16}}});
  EXPECT_EQ(s.stats().specializations, 3u);
  EXPECT_THROW(s.specialize_for({{"nope", {1}}}), Error);
}

TEST(Specialization, DiskCacheServesASecondSessionWithoutCompiling) {
  TempDir dir;
  std::string bytes = block_model();
  SessionOptions o;
  o.cache_dir = dir.path();
  o.specialization = Specialization::kExact;
  Session ref = open(bytes, reference_options());
  Tensor x = input_for(3, 21, 11);
  {
    jit::KernelCache::global().clear();
    Session s = open(bytes, o);
    expect_matches_reference(s, ref, x);
    EXPECT_GT(s.stats().kernels_compiled, 0u);
  }
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.path().extension() == ".kobj";
  EXPECT_GT(files, 0u);
  {
    jit::KernelCache::global().clear();
    Session s = open(bytes, o);
    expect_matches_reference(s, ref, x);
    EXPECT_EQ(s.stats().kernels_compiled, 0u);
    EXPECT_GT(s.stats().kernel_disk_hits, 0u);
  }
  // Corrupt every cached object: a new session notices, recompiles and still computes right.
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().extension() != ".kobj") continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(fs::file_size(e.path()) / 2));
    f.write("garbage!", 8);
  }
  {
    jit::KernelCache::global().clear();
    Session s = open(bytes, o);
    expect_matches_reference(s, ref, x);
    EXPECT_GT(s.stats().kernels_compiled, 0u);
  }
}

TEST(Specialization, DataDependentShapesRunInterpreted) {
  dev::ModelBuilder b(17, "nz");
  b.input("x", kF, {-1}, {"n"});
  b.output("idx", kI64, {1, -1}, {"k"});
  b.node("NonZero", {"x"}, {"idx"});
  std::string bytes = b.serialize();
  Session s = open(bytes);
  auto plan = s.describe_plan({{"x", {5}}});
  ASSERT_FALSE(plan.empty());
  EXPECT_NE(plan[0].find("interpreted"), std::string::npos) << plan[0];
  Tensor x = Tensor::from_vector<float>({5}, {0, 1, 0, 2, 3});
  TensorMap out = s.run({{"x", x}});
  EXPECT_EQ(out.at("idx").dims(), (Dims{1, 3}));
}

TEST(Specialization, ManyThreadsRunMixedShapesConcurrently) {
  std::string bytes = block_model();
  SessionOptions o;
  o.max_specializations = 3;  // force evictions and recompiles while others run
  Session s = open(bytes, o), ref = open(bytes, reference_options());
  std::vector<Tensor> xs;
  std::vector<TensorMap> want;
  for (int64_t i = 0; i < 6; ++i) {
    xs.push_back(input_for(1 + i % 3, 3 + 5 * i, uint64_t(100 + i)));
    want.push_back(ref.run({{"x", xs.back()}}));
  }
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 12; ++r) {
        size_t i = size_t(t + r) % xs.size();
        TensorMap got = s.run({{"x", xs[i]}});
        for (const char* name : {"y", "m"})
          if (!tensors_near(got.at(name), want[i].at(name), 1e-5, 1e-4)) bad++;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(s.stats().runs, 96u);
}

}  // namespace
}  // namespace kiln::testing

namespace kiln::testing {
namespace {

// A JIT Gather clamps indices to stay in bounds; the plan checks run-time indices first, so a bad
// token id is an error naming the node, as on the reference kernel.
TEST(Specialization, GatherWithBadRunTimeIndicesFails) {
  dev::ModelBuilder b(17, "emb");
  b.input("ids", kI64, {-1}, {"n"});
  b.output("e", kF, {-1, 4}, {"n"});
  b.init_random("table", {10, 4}, 1.0f, 3);
  b.node("Gather", {"table", "ids"}, {"e"}, "embed");
  std::string bytes = b.serialize();
  Session s = open(bytes);
  auto plan = s.describe_plan({{"ids", {3}}});
  EXPECT_NE(plan[0].find("(Gather): jit"), std::string::npos) << plan[0];
  TensorMap ok = s.run({{"ids", Tensor::from_vector<int64_t>({3}, {0, 9, -1})}});
  EXPECT_EQ(ok.at("e").dims(), (Dims{3, 4}));
  try {
    s.run({{"ids", Tensor::from_vector<int64_t>({3}, {0, 10, 2})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 'embed'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("index 10"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::testing

namespace kiln::testing {
namespace {

// Auto policy: a shape run often on parameter kernels is recompiled with constant dims in the
// background; runs go on meanwhile and the new plan computes the same outputs.
TEST(Specialization, HotShapesGetConstantKernelsInTheBackground) {
  std::string bytes = block_model();
  SessionOptions o;
  o.hot_shape_runs = 5;
  Session s = open(bytes, o), ref = open(bytes, reference_options());
  expect_matches_reference(s, ref, input_for(2, 6, 1));
  bool params = false;
  kernel_keys(s, 2, 8, &params);  // seq's second value: parameter kernels
  ASSERT_TRUE(params);
  for (int i = 0; i < 6; ++i) expect_matches_reference(s, ref, input_for(2, 8, uint64_t(i)));
  for (int i = 0; i < 600 && s.stats().hot_promotions == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(s.stats().hot_promotions, 1u);
  kernel_keys(s, 2, 8, &params);
  EXPECT_FALSE(params) << "the hot shape now runs constant-dim kernels";
  expect_matches_reference(s, ref, input_for(2, 8, 99));
  kernel_keys(s, 2, 9, &params);
  EXPECT_TRUE(params) << "other shapes keep using parameter kernels";
}

}  // namespace
}  // namespace kiln::testing
