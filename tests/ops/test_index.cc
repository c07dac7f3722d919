// Indexing ops: Gather, GatherElements, GatherND, ScatterElements, Scatter, ScatterND, OneHot,
// NonZero, Compress; hand-computed cases, negative indices, bounds errors, data-dependent shapes.
#include "op_test_util.h"

namespace kiln::testing {
namespace {

Tensor i64(Dims d, std::vector<int64_t> v) { return make<int64_t>(std::move(d), v); }

void expect_invalid_argument(const OpCall& c) {
  try {
    run_op(c);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
}

TEST(OpIndex, GatherAxesAndNegativeIndices) {
  Tensor x = make<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  auto out = run_op({"Gather", {x, i64({2, 2}, {0, -1, 1, 0})}});
  EXPECT_TRUE(tensors_near(out[0], make<float>({2, 2, 2}, {1, 2, 5, 6, 3, 4, 1, 2})));
  OpCall c{"Gather", {x, make<int32_t>({}, {1})}, {{"axis", attr_int(-1)}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<float>({3}, {2, 4, 6})));
  Tensor s = make<std::string>({2}, {"a", "b"});
  EXPECT_TRUE(tensors_near(run_op({"Gather", {s, i64({3}, {1, 1, 0})}})[0],
                           make<std::string>({3}, {"b", "b", "a"})));
  EXPECT_EQ(run_op({"Gather", {x, i64({0}, {})}})[0].dims(), (Dims{0, 2}));
}

TEST(OpIndex, GatherOutOfRange) {
  Tensor x = make<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  expect_invalid_argument({"Gather", {x, i64({1}, {3})}});
  expect_invalid_argument({"Gather", {x, i64({1}, {-4})}});
  OpCall bad_axis{"Gather", {x, i64({1}, {0})}, {{"axis", attr_int(2)}}};
  EXPECT_THROW(run_op(bad_axis), Error);
}

TEST(OpIndex, GatherElements) {
  Tensor x = make<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  OpCall c{"GatherElements", {x, i64({2, 2}, {2, -3, 1, 1})}, {{"axis", attr_int(1)}}};
  EXPECT_TRUE(tensors_near(run_op(c)[0], make<int32_t>({2, 2}, {3, 1, 5, 5})));
  OpCall a0{"GatherElements", {x, i64({1, 3}, {1, 0, 1})}};
  EXPECT_TRUE(tensors_near(run_op(a0)[0], make<int32_t>({1, 3}, {4, 2, 6})));
  expect_invalid_argument({"GatherElements", {x, i64({1, 1}, {2})}});
  EXPECT_THROW(run_op({"GatherElements", {Tensor::scalar<float>(1), Tensor::scalar<int64_t>(0)}}),
               Error);
}

TEST(OpIndex, GatherND) {
  Tensor x = make<int32_t>({2, 2}, {0, 1, 2, 3});
  EXPECT_TRUE(tensors_near(run_op({"GatherND", {x, i64({2, 2}, {0, 0, 1, 1})}})[0],
                           make<int32_t>({2}, {0, 3})));
  EXPECT_TRUE(tensors_near(run_op({"GatherND", {x, i64({2, 1}, {1, 0})}})[0],
                           make<int32_t>({2, 2}, {2, 3, 0, 1})));
  Tensor y = make<float>({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  OpCall b{"GatherND", {y, i64({2, 1}, {1, 0})}, {{"batch_dims", attr_int(1)}}};
  EXPECT_TRUE(tensors_near(run_op(b)[0], make<float>({2, 2}, {2, 3, 4, 5})));
  expect_invalid_argument({"GatherND", {x, i64({1, 2}, {0, 2})}});
  EXPECT_THROW(run_op({"GatherND", {x, i64({1, 3}, {0, 0, 0})}}), Error);
}

TEST(OpIndex, ScatterElementsReductions) {
  Tensor x = make<float>({1, 5}, {1, 2, 3, 4, 5});
  Tensor idx = i64({1, 2}, {1, -2});
  Tensor upd = make<float>({1, 2}, {10, 20});
  auto with = [&](const std::string& red) {
    OpCall c{"ScatterElements", {x, idx, upd}, {{"axis", attr_int(1)}}};
    if (!red.empty()) c.attrs["reduction"] = attr_string(red);
    return run_op(c)[0];
  };
  EXPECT_TRUE(tensors_near(with(""), make<float>({1, 5}, {1, 10, 3, 20, 5})));
  EXPECT_TRUE(tensors_near(with("add"), make<float>({1, 5}, {1, 12, 3, 24, 5})));
  EXPECT_TRUE(tensors_near(with("mul"), make<float>({1, 5}, {1, 20, 3, 80, 5})));
  EXPECT_TRUE(tensors_near(with("min"), make<float>({1, 5}, {1, 2, 3, 4, 5})));
  EXPECT_TRUE(tensors_near(with("max"), make<float>({1, 5}, {1, 10, 3, 20, 5})));
  // Duplicate indices accumulate.
  OpCall dup{"ScatterElements",
             {x, i64({1, 2}, {1, 1}), upd},
             {{"axis", attr_int(1)}, {"reduction", attr_string("add")}}};
  EXPECT_TRUE(tensors_near(run_op(dup)[0], make<float>({1, 5}, {1, 32, 3, 4, 5})));
  OpCall bad{
      "ScatterElements", {x, i64({1, 1}, {5}), make<float>({1, 1}, {0})}, {{"axis", attr_int(1)}}};
  expect_invalid_argument(bad);
  OpCall bad_red{"ScatterElements", {x, idx, upd}, {{"reduction", attr_string("avg")}}};
  EXPECT_THROW(run_op(bad_red), Error);
}

TEST(OpIndex, ScatterDeprecatedForm) {
  Tensor x(DType::kF32, {3, 3});
  OpCall c{"Scatter",
           {x, i64({2, 3}, {1, 0, 2, 0, 2, 1}),
            make<float>({2, 3}, {1.0f, 1.1f, 1.2f, 2.0f, 2.1f, 2.2f})},
           {},
           10};
  EXPECT_TRUE(tensors_near(run_op(c)[0],
                           make<float>({3, 3}, {2.0f, 1.1f, 0, 1.0f, 0, 2.2f, 0, 2.1f, 1.2f})));
}

TEST(OpIndex, ScatterND) {
  Tensor x = make<int64_t>({4}, {1, 2, 3, 4});
  Tensor idx = i64({2, 1}, {3, 1});
  Tensor upd = make<int64_t>({2}, {10, 20});
  EXPECT_TRUE(tensors_near(run_op({"ScatterND", {x, idx, upd}})[0], i64({4}, {1, 20, 3, 10})));
  OpCall add{"ScatterND", {x, i64({2, 1}, {1, 1}), upd}, {{"reduction", attr_string("add")}}};
  EXPECT_TRUE(tensors_near(run_op(add)[0], i64({4}, {1, 32, 3, 4})));
  Tensor m(DType::kF32, {2, 2});
  OpCall rows{"ScatterND", {m, i64({1, 1}, {-1}), make<float>({1, 2}, {5, 6})}};
  EXPECT_TRUE(tensors_near(run_op(rows)[0], make<float>({2, 2}, {0, 0, 5, 6})));
  expect_invalid_argument({"ScatterND", {x, i64({1, 1}, {4}), make<int64_t>({1}, {0})}});
  EXPECT_THROW(run_op({"ScatterND", {x, idx, make<int64_t>({3}, {0, 0, 0})}}), Error);
}

TEST(OpIndex, OneHot) {
  Tensor ind = i64({3}, {0, -1, 5});  // 5 is out of range: all off
  Tensor vals = make<float>({2}, {0, 1});
  auto out = run_op({"OneHot", {ind, Tensor::scalar<float>(3), vals}, {}, 11});
  EXPECT_TRUE(tensors_near(out[0], make<float>({3, 3}, {1, 0, 0, 0, 0, 1, 0, 0, 0})));
  OpCall ax0{"OneHot",
             {i64({2}, {1, 2}), make<int64_t>({1}, {3}), make<int32_t>({2}, {-1, 7})},
             {{"axis", attr_int(0)}},
             11};
  EXPECT_TRUE(tensors_near(run_op(ax0)[0], make<int32_t>({3, 2}, {-1, -1, 7, -1, -1, 7})));
  EXPECT_THROW(run_op({"OneHot", {ind, Tensor::scalar<float>(3), make<float>({3}, {0, 1, 2})}}),
               Error);
}

TEST(OpIndex, NonZero) {
  Tensor x = make<bool>({2, 2}, {true, false, true, true});
  EXPECT_TRUE(tensors_near(run_op({"NonZero", {x}})[0], i64({2, 3}, {0, 1, 1, 0, 0, 1})));
  Tensor h = make<Float16>({3}, {Float16(0.f), Float16(0.5f), Float16(0.f)});
  EXPECT_TRUE(tensors_near(run_op({"NonZero", {h}})[0], i64({1, 1}, {1})));
  EXPECT_EQ(run_op({"NonZero", {Tensor(DType::kI32, {4})}})[0].dims(), (Dims{1, 0}));
  // The count is data-dependent: a fresh symbol at load time.
  auto g = make_op_graph({"NonZero", {x}});
  const ir::Shape& s = g->values[size_t(g->outputs[0])].shape;
  ASSERT_EQ(s.rank(), 2);
  EXPECT_EQ(s.dims[0], ir::Dim::constant(2));
  EXPECT_TRUE(s.dims[1].is_symbol());
}

TEST(OpIndex, Compress) {
  Tensor x = make<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor cond = make<bool>({2}, {false, true});  // shorter than the axis: the rest is dropped
  OpCall a0{"Compress", {x, cond}, {{"axis", attr_int(0)}}};
  EXPECT_TRUE(tensors_near(run_op(a0)[0], make<float>({1, 2}, {3, 4})));
  OpCall a1{"Compress", {x, make<bool>({2}, {true, false})}, {{"axis", attr_int(-1)}}};
  EXPECT_TRUE(tensors_near(run_op(a1)[0], make<float>({3, 1}, {1, 3, 5})));
  Tensor flat_cond = make<bool>({5}, {false, true, false, false, true});
  EXPECT_TRUE(tensors_near(run_op({"Compress", {x, flat_cond}})[0], make<float>({2}, {2, 5})));
  OpCall too_long{
      "Compress", {x, make<bool>({4}, {false, false, false, true})}, {{"axis", attr_int(0)}}};
  expect_invalid_argument(too_long);
}

}  // namespace
}  // namespace kiln::testing
