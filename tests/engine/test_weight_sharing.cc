// Packed weights shared across a session's plans: a convolution's packed filters do not depend on
// the image size, so plans for other input sizes reuse them (WeightCache) and still match the
// reference executor.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "op_test_util.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.dims(), want.dims()) << what;
  int bad = 0;
  for (int64_t i = 0; i < got.numel() && bad < 5; ++i) {
    const float g = got.data<float>()[i], w = want.data<float>()[i];
    if (!(std::abs(g - w) <= 1e-4f + 1e-3f * std::abs(w))) {
      ADD_FAILURE() << what << " element " << i << ": " << g << ", want " << w;
      ++bad;
    }
  }
}

TEST(WeightSharing, MobilenetImageSizesShareConvFilters) {
  if (!have_shared()) GTEST_SKIP() << "no ../shared";
  const std::string path = shared_dir() + "/models/mobilenet_v2/model.onnx";
  SessionOptions ref_opt;
  ref_opt.use_jit = false;
  Session s(path), ref(path, ref_opt);
  Tensor big = random_tensor(DType::kF32, {1, 3, 224, 224}, -1, 1, 1);
  Tensor small = random_tensor(DType::kF32, {1, 3, 160, 160}, -1, 1, 2);

  expect_close(s.run({{"input", big}}).at("output"), ref.run({{"input", big}}).at("output"),
               "224x224");
  const uint64_t packed = s.stats().packed_weights;
  EXPECT_GE(packed, 50u) << "mobilenet_v2's 52 convolutions and its classifier pack their weights";

  expect_close(s.run({{"input", small}}).at("output"), ref.run({{"input", small}}).at("output"),
               "160x160");
  EXPECT_EQ(s.stats().specializations, 2u);
  EXPECT_EQ(s.stats().packed_weights, packed) << "the second image size packed filters again";
  // The first plan still runs on the shared filters.
  expect_close(s.run({{"input", big}}).at("output"), ref.run({{"input", big}}).at("output"),
               "224x224 again");
}

}  // namespace
}  // namespace kiln::testing
