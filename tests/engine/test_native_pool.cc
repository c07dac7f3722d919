// The native MaxPool kernel (src/kernels/native_pool.cc) against the reference kernel: strides,
// pads, dilations, ceil_mode's partial windows, non-square kernels, and planes run in parallel.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "model_builder.h"
#include "op_test_util.h"

namespace kiln::testing {
namespace {

constexpr int32_t kF = 1;  // onnx::TensorProto FLOAT

struct PoolCase {
  Dims x;
  std::vector<int64_t> kernel, strides, pads, dilations;
  int64_t ceil_mode;
};

std::string pool_model(const PoolCase& c) {
  dev::ModelBuilder b(17, "pool");
  b.input("x", kF, c.x);
  b.output_untyped_shape("y", kF);
  auto& n = b.node("MaxPool", {"x"}, {"y"});
  dev::ModelBuilder::set_ints(n, "kernel_shape", c.kernel);
  dev::ModelBuilder::set_ints(n, "strides", c.strides);
  dev::ModelBuilder::set_ints(n, "pads", c.pads);
  dev::ModelBuilder::set_ints(n, "dilations", c.dilations);
  dev::ModelBuilder::set_int(n, "ceil_mode", c.ceil_mode);
  return b.serialize();
}

Session open(const std::string& bytes, SessionOptions o) {
  return testing::session_from_bytes(bytes, o);
}

TEST(NativePool, MaxPoolMatchesTheReference) {
  const std::vector<PoolCase> cases = {
      {{1, 64, 111, 111}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},  // squeezenet, ceil_mode
      {{1, 64, 112, 112}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0},  // resnet18
      {{2, 3, 17, 23}, {2, 3}, {1, 1}, {0, 1, 1, 2}, {1, 1}, 0},     // stride 1, uneven pads
      {{1, 5, 20, 19}, {3, 2}, {3, 3}, {2, 0, 1, 1}, {1, 2}, 1},     // stride 3, dilated
      {{1, 4, 9, 9}, {5, 5}, {2, 2}, {2, 2, 2, 2}, {2, 2}, 1},       // dilation 2
  };
  for (int threads : {1, 2}) {
    for (const PoolCase& c : cases) {
      const std::string bytes = pool_model(c);
      SessionOptions fast_opt, ref_opt;
      fast_opt.intra_op_threads = threads;
      ref_opt.use_jit = false;
      Session s = open(bytes, fast_opt), ref = open(bytes, ref_opt);
      bool native = false;
      for (const std::string& line : s.describe_plan({{"x", c.x}}))
        native |= line.find("native maxpool") != std::string::npos;
      EXPECT_TRUE(native) << "MaxPool did not run natively";
      Tensor x = random_tensor(DType::kF32, c.x, -1, 1, uint64_t(c.x[3]));
      Tensor want = ref.run({{"x", x}}).at("y");
      for (int rep = 0; rep < 2; ++rep) {
        Tensor got = s.run({{"x", x}}).at("y");
        ASSERT_EQ(got.dims(), want.dims());
        for (int64_t i = 0; i < got.numel(); ++i)
          ASSERT_EQ(got.data<float>()[i], want.data<float>()[i])
              << "case x[3]=" << c.x[3] << " threads " << threads << " element " << i;
      }
    }
  }
}

}  // namespace
}  // namespace kiln::testing
