#include "op_test_util.h"

namespace kiln::testing {
namespace {

TEST(OpControl, ConstantValueInts) {
  OpCall c{"Constant", {}, {{"value_ints", attr_ints({1, 2, 3})}}};
  auto out = run_op(c);
  EXPECT_TRUE(tensors_near(out[0], make<int64_t>({3}, {1, 2, 3})));
}

TEST(OpControl, ConstantNeedsExactlyOneValue) {
  OpCall c{"Constant", {}, {{"value_int", attr_int(1)}, {"value_float", attr_float(2)}}};
  EXPECT_THROW(run_op(c), Error);
}

TEST(OpControl, IdentityAndDropout) {
  Tensor x = make<float>({2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(tensors_near(run_op({"Identity", {x}})[0], x));
  OpCall d{"Dropout", {x}, {}, 13, 2};
  auto out = run_op(d);
  EXPECT_TRUE(tensors_near(out[0], x));
  EXPECT_TRUE(tensors_near(out[1], make<bool>({2, 2}, {true, true, true, true})));
}

TEST(OpControl, DropoutTrainingModeOnlyWithZeroRatio) {
  Tensor x = make<float>({3}, {1, 2, 3});
  OpCall zero{"Dropout", {x, Tensor::scalar<float>(0.f), Tensor::scalar<bool>(true)}, {}, 13, 2};
  auto out = run_op(zero);
  EXPECT_TRUE(tensors_near(out[0], x));
  EXPECT_TRUE(tensors_near(out[1], make<bool>({3}, {true, true, true})));
  OpCall half{"Dropout", {x, Tensor::scalar<float>(0.5f), Tensor::scalar<bool>(true)}, {}, 13, 2};
  try {
    run_op(half);
    ADD_FAILURE() << "random dropout accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
  }
}

}  // namespace
}  // namespace kiln::testing
