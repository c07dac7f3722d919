// Session behaviour: views without copies, caller-provided outputs, symbolic shapes, stats,
// concurrent runs from many threads.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "kiln/kiln.h"
#include "model_builder.h"
#include "op_test_util.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

Session demo() {
  std::string bytes = dev::make_demo_cnn().serialize();
  return session_from_bytes(bytes);
}

TEST(Session, InputInfoIsSymbolic) {
  Session s = demo();
  ASSERT_EQ(s.input_info().size(), 1u);
  EXPECT_EQ(s.input_info()[0].to_string(), "f32[batch,3,32,32]");
  EXPECT_EQ(s.output_info()[0].to_string(), "f32[batch,10]");
}

TEST(Session, RunsAtManyBatchSizesIntoCallerOutputs) {
  Session s = demo();
  for (int64_t batch : {1, 3, 8}) {
    Tensor x = random_tensor(DType::kF32, {batch, 3, 32, 32}, -1, 1, uint64_t(batch));
    std::vector<float> pixels(x.data<float>(), x.data<float>() + x.numel());
    Tensor view = Tensor::view(DType::kF32, x.dims(), pixels.data());
    TensorMap out = s.run({{"image", view}});
    const Tensor& probs = out.at("probs");
    ASSERT_EQ(probs.dims(), (Dims{batch, 10}));
    for (int64_t b = 0; b < batch; ++b) {  // softmax rows sum to 1
      double sum = 0;
      for (int k = 0; k < 10; ++k) sum += probs.data<float>()[b * 10 + k];
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
    std::vector<float> mine(size_t(batch * 10), -1.f);
    s.run({{"image", view}}, {{"probs", Tensor::view(DType::kF32, {batch, 10}, mine.data())}});
    for (size_t i = 0; i < mine.size(); ++i) EXPECT_EQ(mine[i], probs.data<float>()[i]);
  }
  EXPECT_EQ(s.stats().runs, 6u);
  EXPECT_EQ(s.stats().distinct_shapes, 3u);
}

TEST(Session, ConcurrentRunsMatchSerialRuns) {
  Session s = demo();
  std::vector<Tensor> xs, want;
  for (int i = 0; i < 6; ++i) {
    xs.push_back(random_tensor(DType::kF32, {1 + i % 3, 3, 32, 32}, -1, 1, uint64_t(100 + i)));
    want.push_back(s.run({{"image", xs.back()}}).at("probs"));
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 6; ++r) {
        int i = (t + r) % 6;
        Tensor got = s.run({{"image", xs[size_t(i)]}}).at("probs");
        if (!tensors_near(got, want[size_t(i)], 0, 0)) ++mismatches;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Tensor, ViewsBorrowAndClonesCopy) {
  std::vector<int32_t> v = {1, 2, 3, 4, 5, 6};
  Tensor t = Tensor::view(DType::kI32, {2, 3}, v.data());
  EXPECT_EQ(t.raw_data(), v.data());
  EXPECT_FALSE(t.owns_data());
  Tensor c = t.clone();
  EXPECT_TRUE(c.owns_data());
  v[0] = 42;
  EXPECT_EQ(c.data<int32_t>()[0], 1);
  EXPECT_THROW(t.data<float>(), Error);
  EXPECT_THROW(t.reshaped({4}), Error);
  EXPECT_THROW(Tensor(DType::kF32, {-1}), Error);
  EXPECT_EQ(Tensor(DType::kString, {2}).data<std::string>()[1], "");
}

TEST(DType, Float16RoundTrip) {
  for (float f : {0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.9604645e-08f})
    EXPECT_EQ(float(Float16(f)), f) << f;
  EXPECT_NEAR(float(Float16(1e-3f)), 1e-3f, 1e-6f);
  EXPECT_TRUE(std::isinf(float(Float16(1e6f))));
  EXPECT_TRUE(std::isnan(float(Float16(NAN))));
  EXPECT_EQ(float(BFloat16(1.5f)), 1.5f);
  EXPECT_EQ(dtype_from_name("float"), DType::kF32);
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
}

}  // namespace
}  // namespace kiln::testing

namespace kiln::testing {
namespace {

TEST(Session, OutputsNeverAliasInputsOrWeights) {
  dev::ModelBuilder b(13);
  b.input("x", onnx::TensorProto::FLOAT, {2});
  b.init_f32("w", {2}, {5.f, 6.f});
  b.output("same", onnx::TensorProto::FLOAT, {2});
  b.output("weight", onnx::TensorProto::FLOAT, {2});
  b.node("Identity", {"x"}, {"same"});
  b.node("Identity", {"w"}, {"weight"});
  std::string bytes = b.serialize();
  Session s = session_from_bytes(bytes);
  Tensor x = Tensor::from_vector<float>({2}, {1.f, 2.f});
  TensorMap out = s.run({{"x", x}});
  EXPECT_NE(out.at("same").raw_data(), x.raw_data());
  out.at("weight").data<float>()[0] = -1.f;                         // scribbling on an output...
  EXPECT_EQ(s.run({{"x", x}}).at("weight").data<float>()[0], 5.f);  // ...leaves the weights alone
}

}  // namespace
}  // namespace kiln::testing
