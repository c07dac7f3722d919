// Tests of the reduction lowerings against the reference kernels (check_lowering): Reduce* over
// every axis pattern (all, one, several, negative, none with noop_with_empty_axes), keepdims,
// axes as attribute and as constant input, empty reductions and empty outputs, NaN and infinities,
// f32/f64 and the integer and bool types each op takes; ArgMax/ArgMin with ties, NaN and
// select_last_index; Softmax/LogSoftmax before and since opset 13; Layer/RMSNormalization with
// and without bias and with the statistics outputs. The interpreter runs every case; the JIT a
// selection, always including dynamic, strided and parallel kernels.
#include <cmath>
#include <limits>

#include "lower/lower_test_util.h"

namespace kiln::testing {
namespace {

LowerOptions opts(bool jit, bool dynamic = false, bool strided = false, int64_t grain = 0) {
  LowerOptions o;
  o.jit = jit;
  o.dynamic = dynamic;
  o.strided = strided;
  o.parallel_grain = grain;
  o.atol = 1e-4;
  o.rtol = 1e-4;
  return o;
}

Tensor axes_tensor(const std::vector<int64_t>& axes) {
  return make<int64_t>({int64_t(axes.size())}, axes);
}

// A Reduce* call with axes as the input (opset 18) or the attribute (opset 13, ReduceSum 11).
OpCall reduce_call(const std::string& op, Tensor x, const std::optional<std::vector<int64_t>>& axes,
                   bool keep, bool axes_input) {
  OpCall c{op, {std::move(x)}, {{"keepdims", attr_int(keep)}}, 18};
  if (axes_input) {
    if (axes) c.inputs.push_back(axes_tensor(*axes));
  } else {
    c.opset = op == "ReduceSum" ? 11 : 13;
    if (axes) c.attrs["axes"] = attr_ints(*axes);
  }
  return c;
}

struct ReduceCase {
  std::string op;
  double lo = -2, hi = 2;
};

class LowerReduction : public ::testing::TestWithParam<ReduceCase> {};

const std::vector<std::pair<Dims, std::optional<std::vector<int64_t>>>> kAxisCases = {
    {{}, std::nullopt},
    {{1}, std::nullopt},
    {{3}, std::vector<int64_t>{0}},
    {{17}, std::vector<int64_t>{-1}},
    {{1023}, std::nullopt},
    {{0}, std::nullopt},
    {{3, 17}, std::vector<int64_t>{1}},
    {{3, 17}, std::vector<int64_t>{0}},
    {{3, 17}, std::vector<int64_t>{-2, -1}},
    {{2, 0, 3}, std::vector<int64_t>{1}},
    {{2, 0, 3}, std::vector<int64_t>{0, 2}},
    {{4, 5, 6}, std::vector<int64_t>{0, 2}},
    {{4, 5, 6}, std::vector<int64_t>{-2}},
    {{4, 1, 6}, std::vector<int64_t>{1}},
    {{2, 3, 4, 5}, std::vector<int64_t>{1, 3}},
};

TEST_P(LowerReduction, AxesKeepdimsShapes) {
  const ReduceCase& p = GetParam();
  uint64_t seed = 1;
  for (const auto& [dims, axes] : kAxisCases) {
    for (int keep = 0; keep < 2; ++keep) {
      for (int from_input = 0; from_input < 2; ++from_input) {
        Tensor x = random_tensor(DType::kF32, dims, p.lo, p.hi, seed++);
        EXPECT_TRUE(check_lowering(reduce_call(p.op, x, axes, keep, from_input), opts(false)))
            << dims_to_string(dims) << " keep " << keep << " input " << from_input;
      }
    }
  }
  Tensor x = random_tensor(DType::kF32, {6, 7, 33}, p.lo, p.hi, 3);
  for (const auto& axes : std::vector<std::vector<int64_t>>{{2}, {0, 1}, {1}}) {
    EXPECT_TRUE(check_lowering(reduce_call(p.op, x, axes, true, true), opts(true)));
    EXPECT_TRUE(
        check_lowering(reduce_call(p.op, x, axes, false, true), opts(true, true, true, 16)));
  }
  EXPECT_TRUE(check_lowering(
      reduce_call(p.op, random_tensor(DType::kF64, {5, 9}, p.lo, p.hi, 4), {{1}}, true, true),
      opts(true)));
  // noop_with_empty_axes: no axes input and an empty one both copy the input.
  OpCall noop = reduce_call(p.op, x, std::nullopt, true, true);
  noop.attrs["noop_with_empty_axes"] = attr_int(1);
  EXPECT_TRUE(check_lowering(noop, opts(false)));
  noop.inputs.push_back(axes_tensor({}));
  EXPECT_TRUE(check_lowering(noop, opts(false, true, true)));
}

INSTANTIATE_TEST_SUITE_P(
    Ops, LowerReduction,
    ::testing::Values(ReduceCase{"ReduceSum"}, ReduceCase{"ReduceMean"}, ReduceCase{"ReduceMax"},
                      ReduceCase{"ReduceMin"}, ReduceCase{"ReduceProd", 0.5, 1.5},
                      ReduceCase{"ReduceL1"}, ReduceCase{"ReduceL2"},
                      ReduceCase{"ReduceLogSum", 0.1, 2}, ReduceCase{"ReduceLogSumExp", -5, 5},
                      ReduceCase{"ReduceSumSquare"}),
    [](const ::testing::TestParamInfo<ReduceCase>& info) { return info.param.op; });

TEST(LowerReductionTypes, IntegersAndBool) {
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                         "ReduceL1", "ReduceSumSquare"}) {
    for (DType t : {DType::kI32, DType::kI64, DType::kU8, DType::kI8, DType::kU32}) {
      Tensor x = random_tensor(t, {4, 9, 5}, -100, 100, 5);
      bool jit = t == DType::kI32 || t == DType::kU8;
      for (const auto& axes : std::vector<std::vector<int64_t>>{{1}, {0, 2}, {-1}})
        EXPECT_TRUE(check_lowering(reduce_call(op, x, axes, true, true), opts(jit)))
            << op << " " << dtype_name(t);
      // Empty reductions: identities (lowest / greatest value for max / min, 0 for a mean).
      Tensor e(t, {3, 0});
      EXPECT_TRUE(check_lowering(reduce_call(op, e, {{1}}, false, true), opts(false)))
          << op << " " << dtype_name(t);
    }
  }
  // ReduceL2, ReduceLogSum and ReduceLogSumExp convert integer results from double: declined.
  LowerOptions fb = opts(false);
  fb.expect_fallback = true;
  EXPECT_TRUE(check_lowering(
      reduce_call("ReduceL2", random_tensor(DType::kI32, {3, 4}, 0, 9, 1), {{1}}, true, true), fb));
  // Bool ReduceMax / ReduceMin (opset 20) are any / all.
  for (const char* op : {"ReduceMax", "ReduceMin"}) {
    OpCall c = reduce_call(op, random_tensor(DType::kBool, {5, 7}, 0, 1, 6), {{1}}, false, true);
    c.opset = 20;
    EXPECT_TRUE(check_lowering(c, opts(true))) << op;
    c.inputs[1] = axes_tensor({0});
    EXPECT_TRUE(check_lowering(c, opts(false))) << op;
  }
}

TEST(LowerReductionTypes, SpecialValues) {
  // NaN propagates through max/min; LogSumExp of rows with +inf, -inf only, NaN.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  Tensor x = make<float>({5, 4}, {1,           2,           3,           4,            //
                                  1,           float(nan),  3,           4,            //
                                  float(-inf), float(-inf), float(-inf), float(-inf),  //
                                  1,           float(inf),  2,           3,            //
                                  float(-inf), 0,           1,           2});
  for (const char* op :
       {"ReduceMax", "ReduceMin", "ReduceLogSumExp", "ReduceSum", "ReduceMean", "ReduceL1"}) {
    EXPECT_TRUE(check_lowering(reduce_call(op, x, {{1}}, true, true), opts(true))) << op;
    EXPECT_TRUE(check_lowering(reduce_call(op, x, {{0}}, false, true), opts(false))) << op;
  }
}

TEST(LowerReductionTypes, Declined) {
  LowerOptions fb = opts(false);
  fb.expect_fallback = true;
  Tensor x = random_tensor(DType::kF32, {3, 4}, -1, 1, 1);
  // Axes given as a graph input that is not a constant: unknown at lowering time.
  LowerOptions not_const = fb;
  not_const.constant_inputs = std::vector<int>{};
  EXPECT_TRUE(check_lowering(reduce_call("ReduceSum", x, {{1}}, true, true), not_const));
  EXPECT_TRUE(check_lowering(
      reduce_call("ReduceSum", random_tensor(DType::kF16, {3, 4}, -1, 1, 1), {{1}}, true, true),
      fb));
}

// ---- ArgMax / ArgMin ----

TEST(LowerReductionArg, AxesTiesNaN) {
  for (const char* op : {"ArgMax", "ArgMin"}) {
    for (DType t : {DType::kF32, DType::kI32, DType::kU8, DType::kF64}) {
      for (const Dims& dims : std::vector<Dims>{{1}, {5}, {3, 17}, {4, 5, 6}, {2, 0, 3}}) {
        // Few distinct values, so rows have ties.
        Tensor x = random_tensor(t, dims, 0, 4, 7);
        for (int axis = -int(dims.size()); axis < int(dims.size()); ++axis) {
          if (dims[size_t(axis < 0 ? axis + int(dims.size()) : axis)] == 0) continue;
          for (int keep = 0; keep < 2; ++keep) {
            for (int last = 0; last < 2; ++last) {
              OpCall c{op,
                       {x},
                       {{"axis", attr_int(axis)},
                        {"keepdims", attr_int(keep)},
                        {"select_last_index", attr_int(last)}},
                       13};
              EXPECT_TRUE(check_lowering(c, opts(false)))
                  << op << " " << dtype_name(t) << " " << dims_to_string(dims) << " axis " << axis
                  << " keep " << keep << " last " << last;
            }
          }
        }
      }
    }
    const float nan = std::nanf("");
    Tensor x = make<float>({3, 4}, {1, nan, 3, nan, 2, 2, 1, 2, nan, 0, 0, 5});
    for (int last = 0; last < 2; ++last) {
      OpCall c{op, {x}, {{"axis", attr_int(1)}, {"select_last_index", attr_int(last)}}, 13};
      EXPECT_TRUE(check_lowering(c, opts(true))) << op;
      c.attrs["axis"] = attr_int(0);
      EXPECT_TRUE(check_lowering(c, opts(true, true, true, 4))) << op;
    }
    OpCall big{op, {random_tensor(DType::kF32, {8, 1023}, -1, 1, 3)}, {{"axis", attr_int(-1)}}, 13};
    EXPECT_TRUE(check_lowering(big, opts(true, false, false, 1024)));
  }
}

// ---- Softmax / LogSoftmax ----

TEST(LowerReductionSoftmax, OpsetsAxesShapes) {
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    for (int opset : {11, 13}) {
      for (const Dims& dims : std::vector<Dims>{{}, {5}, {1023}, {3, 17}, {2, 3, 4}, {0, 3}}) {
        int rank = int(dims.size());
        int lo = opset < 13 ? -rank : -rank;
        int hi = opset < 13 ? rank : rank - 1;
        if (rank == 0) lo = hi = 0;
        for (int axis = lo; axis <= hi; ++axis) {
          OpCall c{
              op, {random_tensor(DType::kF32, dims, -5, 5, 9)}, {{"axis", attr_int(axis)}}, opset};
          EXPECT_TRUE(check_lowering(c, opts(false)))
              << op << " opset " << opset << " " << dims_to_string(dims) << " axis " << axis;
        }
      }
    }
    Tensor x = random_tensor(DType::kF32, {6, 33, 5}, -5, 5, 2);
    EXPECT_TRUE(check_lowering(OpCall{op, {x}, {}, 13}, opts(true)));
    EXPECT_TRUE(check_lowering(OpCall{op, {x}, {{"axis", attr_int(1)}}, 13}, opts(true)));
    EXPECT_TRUE(
        check_lowering(OpCall{op, {x}, {{"axis", attr_int(1)}}, 11}, opts(true, true, true, 8)));
    EXPECT_TRUE(check_lowering(OpCall{op, {x}, {}, 13}, opts(true, true, true, 8)));
    EXPECT_TRUE(check_lowering(OpCall{op, {random_tensor(DType::kF64, {4, 9}, -5, 5, 2)}, {}, 13},
                               opts(true)));
    const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
    Tensor s = make<float>({4, 3}, {1, 2, 3, -inf, -inf, 0, inf, 1, 2, nan, 1, 2});
    EXPECT_TRUE(check_lowering(OpCall{op, {s}, {}, 13}, opts(true)));
  }
}

// ---- LayerNormalization / RMSNormalization ----

TEST(LowerReductionLayerNorm, AxesBiasOutputs) {
  for (const char* op : {"LayerNormalization", "RMSNormalization"}) {
    int opset = std::string(op) == "RMSNormalization" ? 23 : 17;
    for (const Dims& dims : std::vector<Dims>{{5}, {3, 17}, {2, 3, 8}, {4, 1023}, {0, 5}, {3, 0}}) {
      int rank = int(dims.size());
      for (int axis = -rank; axis < rank; ++axis) {
        int a = axis < 0 ? axis + rank : axis;
        Dims norm(dims.begin() + a, dims.end());
        Dims last(dims.end() - 1, dims.end());
        for (int variant = 0; variant < (opset == 23 ? 2 : 3); ++variant) {
          // Scale over the whole normalized shape or its last dim; bias present or not.
          Tensor scale = random_tensor(DType::kF32, variant == 1 ? last : norm, 0.5, 1.5, 3);
          OpCall c{op,
                   {random_tensor(DType::kF32, dims, -2, 2, 4), scale},
                   {{"axis", attr_int(axis)}, {"epsilon", attr_float(1e-3f)}},
                   opset};
          if (variant == 2) c.inputs.push_back(random_tensor(DType::kF32, norm, -1, 1, 5));
          c.num_outputs = variant == 2 ? 3 : 1;
          EXPECT_TRUE(check_lowering(c, opts(false)))
              << op << " " << dims_to_string(dims) << " axis " << axis << " variant " << variant;
        }
      }
    }
    Tensor x = random_tensor(DType::kF32, {6, 5, 64}, -2, 2, 6);
    Tensor scale = random_tensor(DType::kF32, {64}, 0.5, 1.5, 7);
    Tensor bias = random_tensor(DType::kF32, {64}, -1, 1, 8);
    if (opset == 17) {
      EXPECT_TRUE(check_lowering(OpCall{op, {x, scale, bias}, {}, opset}, opts(true)));
      EXPECT_TRUE(
          check_lowering(OpCall{op, {x, scale, bias}, {}, opset, 3}, opts(true, true, true, 16)));
    } else {
      EXPECT_TRUE(check_lowering(OpCall{op, {x, scale}, {}, opset}, opts(true, true, true, 16)));
    }
    Tensor scale2 = random_tensor(DType::kF32, {5, 64}, 0.5, 1.5, 7);
    EXPECT_TRUE(check_lowering(OpCall{op, {x, scale2}, {{"axis", attr_int(1)}}, opset},
                               opts(true, false, false, 16)));
    Tensor xd = random_tensor(DType::kF64, {3, 10}, -2, 2, 6);
    EXPECT_TRUE(check_lowering(
        OpCall{op, {xd, random_tensor(DType::kF64, {10}, 0.5, 1.5, 1)}, {}, opset}, opts(true)));
  }
}

}  // namespace
}  // namespace kiln::testing
