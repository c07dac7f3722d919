// The pooling lowerings (src/kernels/lower/pool.cc) against the reference kernels: MaxPool,
// AveragePool and LpPool over 1-D, 2-D and 3-D inputs with strides, pads, dilations, ceil_mode,
// count_include_pad and every auto_pad, windows that lie entirely in the padding, empty tensors,
// and the global pools. Each case runs with immediate dims, dynamic dims (params), strided inputs
// and a tiny parallel grain, through the bounds-checking interpreter and the JIT, with the CPU's
// schedule (row walks) and the GPU's (a loop nest over the outputs).
#include <gtest/gtest.h>

#include "kernels/lower/lower.h"
#include "lower/lower_test_util.h"

namespace kiln::testing {
namespace {

Tensor rnd(const Dims& dims, uint64_t seed = 1, DType t = DType::kF32) {
  return dtype_is_float(t) ? random_tensor(t, dims, -1, 1, seed)
                           : random_tensor(t, dims, -100, 100, seed);
}

OpCall op(std::string name, std::vector<Tensor> inputs,
          std::map<std::string, ir::Attribute> attrs = {}, int opset = 19) {
  return op_call(std::move(name), std::move(inputs), std::move(attrs), opset);
}

using Attrs = std::map<std::string, ir::Attribute>;

// check_variants, then with the GPU's schedule (each output folding its own window in one loop
// nest), immediate and dynamic over strided inputs.
void check_pool(const OpCall& call, LowerOptions base = {}, bool all = false) {
  check_variants(call, base, all);
  for (bool dynamic : {false, true}) {
    LowerOptions o = base;
    o.gpu_schedule = true;
    o.dynamic = o.strided = dynamic;
    EXPECT_TRUE(check_lowering(call, o))
        << call.op << " gpu schedule" << (dynamic ? " dynamic" : "");
  }
}

// Window attributes for `nsp` spatial dims from per-dim values.
Attrs window(std::vector<int64_t> k, std::vector<int64_t> s = {}, std::vector<int64_t> pads = {},
             std::vector<int64_t> d = {}) {
  Attrs a{{"kernel_shape", attr_ints(k)}};
  if (!s.empty()) a["strides"] = attr_ints(s);
  if (!pads.empty()) a["pads"] = attr_ints(pads);
  if (!d.empty()) a["dilations"] = attr_ints(d);
  return a;
}

Attrs with(Attrs a, const std::string& name, ir::Attribute v) {
  a[name] = std::move(v);
  return a;
}

TEST(LowerPoolMax, WindowsStridesPads2D) {
  const std::vector<Attrs> windows = {
      window({2, 2}, {2, 2}),
      window({3, 3}, {1, 1}, {1, 1, 1, 1}),
      window({3, 3}, {2, 2}, {1, 1, 1, 1}),
      window({3, 2}, {2, 1}, {0, 1, 2, 0}),
      window({1, 1}),
      window({3, 3}, {1, 2}, {0, 0, 0, 0}, {2, 2}),
      window({2, 3}, {3, 1}, {1, 2, 1, 2}, {2, 1}),
  };
  const std::vector<Dims> shapes = {{1, 3, 17, 17}, {2, 3, 5, 7}, {1, 1, 6, 64}};
  uint64_t seed = 1;
  for (const Attrs& w : windows)
    for (const Dims& s : shapes)
      check_pool(op("MaxPool", {rnd(s, seed++)}, w), {}, /*all=*/&s == &shapes[0]);
}

TEST(LowerPoolMax, CeilModeAndAutoPad) {
  uint64_t seed = 10;
  for (const Dims& s : std::vector<Dims>{{1, 2, 6, 7}, {2, 3, 17, 9}}) {
    Attrs ceil = with(window({3, 3}, {2, 2}, {1, 1, 1, 1}), "ceil_mode", attr_int(1));
    check_pool(op("MaxPool", {rnd(s, seed++)}, ceil));
    check_pool(
        op("MaxPool", {rnd(s, seed++)}, with(window({2, 2}, {2, 2}), "ceil_mode", attr_int(1))));
    for (const char* ap : {"SAME_UPPER", "SAME_LOWER", "VALID"})
      for (int64_t st : {1, 2, 3})
        check_pool(op("MaxPool", {rnd(s, seed++)},
                      with(window({3, 2}, {st, st}), "auto_pad", attr_string(ap))));
  }
}

TEST(LowerPoolMax, OneAndThreeDims) {
  check_pool(op("MaxPool", {rnd({2, 3, 17})}, window({3}, {2}, {1, 1})));
  check_pool(op("MaxPool", {rnd({1, 2, 64}, 2)}, window({4}, {1}, {2, 1}, {3})));
  check_pool(op("MaxPool", {rnd({1, 2, 1023}, 2)}, window({3}, {2}, {1, 1})));
  check_pool(
      op("MaxPool", {rnd({1, 2, 5, 6, 7}, 3)}, window({2, 3, 2}, {2, 1, 2}, {1, 0, 1, 0, 1, 1})));
  check_pool(op("MaxPool", {rnd({1, 1, 3, 4, 5}, 4)},
                with(window({2, 2, 2}, {2, 2, 2}), "ceil_mode", attr_int(1))));
}

TEST(LowerPoolMax, IntegerAndDoubleTypes) {
  for (DType t : {DType::kI32, DType::kU8, DType::kI8, DType::kI64, DType::kF64})
    check_pool(op("MaxPool", {rnd({1, 2, 7, 9}, 5, t)}, window({3, 3}, {2, 1}, {1, 1, 1, 1})));
}

TEST(LowerPoolMax, EmptyAndPaddingOnlyWindows) {
  check_pool(op("MaxPool", {rnd({0, 3, 5, 5})}, window({2, 2})));
  check_pool(op("MaxPool", {rnd({2, 0, 5, 5})}, window({2, 2})));
  // Kernel 2 with 3 pad positions before: the first window sees padding only (-inf).
  check_pool(op("MaxPool", {rnd({1, 2, 4, 4})}, window({2, 2}, {1, 1}, {3, 3, 0, 0})));
}

TEST(LowerPoolMax, IndicesOutputFallsBack) {
  OpCall c = op("MaxPool", {rnd({1, 1, 4, 4})}, window({2, 2}, {2, 2}));
  c.num_outputs = 2;
  LowerOptions opt;
  opt.expect_fallback = true;
  EXPECT_TRUE(check_lowering(c, opt));
}

TEST(LowerPoolAverage, CountIncludePadAndCeilMode) {
  uint64_t seed = 20;
  const std::vector<Attrs> windows = {
      window({3, 3}, {1, 1}, {1, 1, 1, 1}),
      window({3, 3}, {2, 2}, {1, 1, 1, 1}),
      window({2, 3}, {2, 2}, {1, 0, 0, 2}),
      window({3, 2}, {1, 2}, {2, 1, 1, 0}, {2, 1}),
      window({2, 2}, {2, 2}),
  };
  for (const Attrs& w : windows)
    for (int64_t include : {0, 1})
      for (int64_t ceil : {0, 1}) {
        Attrs a =
            with(with(w, "count_include_pad", attr_int(include)), "ceil_mode", attr_int(ceil));
        check_pool(op("AveragePool", {rnd({2, 3, 9, 8}, seed++)}, a));
      }
}

TEST(LowerPoolAverage, AutoPadOneAndThreeDims) {
  uint64_t seed = 40;
  for (const char* ap : {"SAME_UPPER", "SAME_LOWER", "VALID"})
    for (int64_t include : {0, 1}) {
      Attrs a = with(with(window({3, 3}, {2, 2}), "auto_pad", attr_string(ap)), "count_include_pad",
                     attr_int(include));
      check_pool(op("AveragePool", {rnd({1, 3, 17, 10}, seed++)}, a));
    }
  check_pool(op("AveragePool", {rnd({2, 3, 17}, seed++)},
                with(window({4}, {3}, {2, 2}), "count_include_pad", attr_int(1))));
  check_pool(op("AveragePool", {rnd({1, 2, 4, 5, 6}, seed++)},
                window({2, 2, 3}, {1, 2, 2}, {1, 0, 0, 0, 1, 1})));
  check_pool(op("AveragePool", {rnd({1, 2, 3, 3}, seed++, DType::kF64)},
                window({2, 2}, {1, 1}, {1, 1, 1, 1})));
  // Every window in the padding only: the reference gives 0.
  check_pool(op("AveragePool", {rnd({1, 2, 4, 4}, seed++)}, window({2, 2}, {1, 1}, {3, 3, 0, 0})));
}

TEST(LowerPoolLp, Powers) {
  uint64_t seed = 60;
  for (int64_t p : {1, 2, 3})
    check_pool(op("LpPool", {rnd({1, 3, 9, 10}, seed++)},
                  with(window({3, 2}, {2, 1}, {1, 0, 1, 1}), "p", attr_int(p))),
               {.atol = 1e-4, .rtol = 1e-4});
}

TEST(LowerPoolGlobal, AllKindsAndRanks) {
  uint64_t seed = 70;
  const std::vector<Dims> shapes = {{2, 3, 17}, {1, 3, 7, 9}, {2, 2, 3, 4, 5}, {1, 1, 1, 1},
                                    {3, 2, 64}, {0, 3, 4, 4}, {1, 2, 0, 3},    {1, 2, 1023}};
  for (const char* name : {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})
    for (const Dims& s : shapes) {
      OpCall c = op(name, {rnd(s, seed++)});
      if (std::string(name) == "GlobalLpPool") c.attrs["p"] = attr_int(3);
      check_pool(c, {.atol = 1e-4, .rtol = 1e-4});
    }
  check_pool(op("GlobalAveragePool", {rnd({1, 3, 5, 5}, seed++, DType::kF64)}));
}

// One larger shape (ResNet's stem pooling) through the JIT only; the interpreter is too slow.
TEST(LowerPoolMax, LargeJitOnly) {
  LowerOptions opt;
  opt.interp = false;
  EXPECT_TRUE(check_lowering(
      op("MaxPool", {rnd({1, 64, 56, 56})}, window({3, 3}, {2, 2}, {1, 1, 1, 1})), opt));
  EXPECT_TRUE(check_lowering(
      op("AveragePool", {rnd({2, 32, 33, 31})},
         with(window({3, 3}, {1, 1}, {1, 1, 1, 1}), "count_include_pad", attr_int(1))),
      opt));
}

}  // namespace
}  // namespace kiln::testing
