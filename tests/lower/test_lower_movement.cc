// The movement lowerings (src/kernels/lower/movement*.cc) against the reference kernels: each op on
// random shapes (sizes 1, 3, 17, 64, 1023, empty tensors, negative axes, broadcasting), in the
// element types the JIT handles, with immediate dims, dynamic dims (params), strided inputs and
// small parallel grains. check_lowering runs every kernel in the bounds-checking interpreter and in
// the JIT. A last group shows that Gather and GatherElements never read out of bounds when the
// indices are invalid (the reference rejects them; the kernels clamp).
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "devices/cpu.h"
#include "jit/kernel_cache.h"
#include "jit/kir.h"
#include "jit/kir_interp.h"
#include "kernels/lower/lower.h"
#include "lower/lower_test_util.h"

namespace kiln::testing {
namespace {

// The element types movement is tested in (it never looks at values).
const std::vector<DType> kTypes = {DType::kF32, DType::kI64, DType::kI32, DType::kU8, DType::kBool};

Tensor rnd(DType t, const Dims& dims, uint64_t seed = 1) {
  return dtype_is_float(t) || t == DType::kBool ? random_tensor(t, dims, -1, 1, seed)
                                                : random_tensor(t, dims, -100, 100, seed);
}

Tensor ints(Dims dims, std::vector<int64_t> v) { return make<int64_t>(std::move(dims), v); }
Tensor ints(std::vector<int64_t> v) {
  int64_t n = int64_t(v.size());
  return make<int64_t>({n}, std::move(v));
}

// The option sets each case runs under: immediate dims, dynamic dims, and dynamic dims over strided
// inputs with a tiny parallel grain (the parallel loop paths).
std::vector<LowerOptions> variants(LowerOptions base = {}) {
  std::vector<LowerOptions> v(3, base);
  v[1].dynamic = true;
  v[2].dynamic = v[2].strided = true;
  v[2].parallel_grain = 16;
  return v;
}

void check_layouts(const OpCall& call, LowerOptions base = {}) {
  for (const LowerOptions& opt : variants(base))
    EXPECT_TRUE(check_lowering(call, opt))
        << call.op << (opt.dynamic ? " dynamic" : "") << (opt.strided ? " strided" : "");
}

OpCall op(std::string name, std::vector<Tensor> inputs,
          std::map<std::string, ir::Attribute> attrs = {}, int opset = 18) {
  return op_call(std::move(name), std::move(inputs), std::move(attrs), opset);
}

// ---- Copies -------------------------------------------------------------------------------------

TEST(LowerMovementCopy, IdentityAllShapesAndTypes) {
  const std::vector<Dims> shapes = {{}, {1}, {3}, {17}, {1023}, {0}, {2, 0, 3}, {4, 17, 3}};
  for (DType t : kTypes)
    for (const Dims& s : shapes) EXPECT_TRUE(check_lowering(op("Identity", {rnd(t, s)})));
  for (const Dims& s : shapes) check_layouts(op("Identity", {rnd(DType::kF32, s)}));
  // Every other element type the JIT has, through a transpose (a strided read).
  for (DType t : {DType::kF64, DType::kI8, DType::kI16, DType::kU16, DType::kU32, DType::kU64})
    check_layouts(op("Transpose", {rnd(t, {3, 17})}));
}

TEST(LowerMovementCopy, DropoutWithMask) {
  OpCall c = op("Dropout", {rnd(DType::kF32, {3, 17})}, {}, 13);
  c.num_outputs = 2;
  check_layouts(c);
  // training_mode = false given as a constant input, and true with ratio 0 (deterministic).
  for (bool training : {false, true}) {
    OpCall t = op("Dropout",
                  {rnd(DType::kI32, {2, 5}), Tensor::scalar<float>(training ? 0.0f : 0.3f),
                   Tensor::scalar<bool>(training)},
                  {}, 13);
    t.num_outputs = 2;
    LowerOptions opt;
    opt.constant_inputs = std::vector<int>{1, 2};
    EXPECT_TRUE(check_lowering(t, opt));
  }
  // A training mode that is not a constant is left to the reference.
  OpCall u = op("Dropout", {rnd(DType::kF32, {4}), Tensor(), Tensor::scalar<bool>(false)}, {}, 13);
  LowerOptions fallback;
  fallback.constant_inputs = std::vector<int>{};
  fallback.expect_fallback = true;
  EXPECT_TRUE(check_lowering(u, fallback));
}

TEST(LowerMovementCopy, Reshape) {
  struct Case {
    Dims in;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4}, {6, 4}},     {{2, 3, 4}, {4, 6}}, {{2, 3, 4}, {24}},      {{2, 3, 4}, {3, 8}},
      {{2, 3, 4}, {1, 24, 1}}, {{24}, {2, 3, 4}},   {{6, 4}, {2, 3, 2, 2}}, {{1023}, {3, 11, 31}},
      {{0, 3}, {0, 3, 1}},     {{}, {1, 1}},        {{17, 1}, {17}},        {{64, 3}, {3, 64}}};
  for (const Case& k : cases) {
    for (DType t : {DType::kF32, DType::kU8})
      check_layouts(op("Reshape", {rnd(t, k.in), ints(k.shape)}));
  }
}

TEST(LowerMovementCopy, FlattenSqueezeUnsqueeze) {
  for (int64_t axis : {0, 1, 2, 3, -1, -3})
    check_layouts(op("Flatten", {rnd(DType::kF32, {2, 3, 17})}, {{"axis", attr_int(axis)}}));
  check_layouts(op("Flatten", {rnd(DType::kI64, {2, 0, 5})}, {{"axis", attr_int(2)}}));
  check_layouts(op("Squeeze", {rnd(DType::kF32, {1, 17, 1, 3}), ints({0, -2})}));
  check_layouts(op("Squeeze", {rnd(DType::kBool, {1, 17, 1, 3})}));
  check_layouts(op("Unsqueeze", {rnd(DType::kI32, {17, 3}), ints({0, -1, 2})}));
  check_layouts(op("Unsqueeze", {rnd(DType::kF32, {}), ints({0})}));
}

// ---- Transpose ----------------------------------------------------------------------------------

TEST(LowerMovementTranspose, PermutationsAndTypes) {
  struct Case {
    Dims in;
    std::vector<int64_t> perm;  // empty: the default (reversed)
  };
  const std::vector<Case> cases = {{{3, 17}, {}},
                                   {{1023}, {}},
                                   {{}, {}},
                                   {{2, 3, 4}, {0, 2, 1}},
                                   {{2, 3, 4}, {2, 0, 1}},
                                   {{2, 3, 4}, {1, 2, 0}},
                                   {{2, 0, 4}, {2, 1, 0}},
                                   {{1, 17, 1}, {2, 1, 0}},
                                   {{2, 3, 5, 7}, {0, 2, 3, 1}},
                                   {{2, 3, 5, 7}, {0, 3, 1, 2}}};
  for (const Case& k : cases) {
    std::map<std::string, ir::Attribute> attrs;
    if (!k.perm.empty()) attrs["perm"] = attr_ints(k.perm);
    check_layouts(op("Transpose", {rnd(DType::kF32, k.in)}, attrs));
    for (DType t : {DType::kI64, DType::kU8, DType::kBool})
      EXPECT_TRUE(check_lowering(op("Transpose", {rnd(t, k.in)}, attrs)));
  }
}

// Both long dims exceed twice the tile edge: the blocked schedule, with partial edge tiles.
TEST(LowerMovementTranspose, Tiled) {
  check_layouts(op("Transpose", {rnd(DType::kF32, {70, 129})}));
  check_layouts(op("Transpose", {rnd(DType::kU8, {2, 64, 67})}, {{"perm", attr_ints({0, 2, 1})}}));
  check_layouts(op("Transpose", {rnd(DType::kF64, {65, 3, 64})}, {{"perm", attr_ints({2, 1, 0})}}));
  EXPECT_NE(lowered_ir(op("Transpose", {rnd(DType::kF32, {70, 129})})).find("min(32"),
            std::string::npos);
}

// ---- Concat, Split ------------------------------------------------------------------------------

TEST(LowerMovementConcat, AxesInputsAndEmpty) {
  for (DType t : kTypes) {
    EXPECT_TRUE(check_lowering(
        op("Concat", {rnd(t, {2, 3, 4}), rnd(t, {2, 5, 4}, 2)}, {{"axis", attr_int(1)}})));
  }
  check_layouts(op("Concat",
                   {rnd(DType::kF32, {2, 3, 4}), rnd(DType::kF32, {2, 1, 4}, 2),
                    rnd(DType::kF32, {2, 0, 4}, 3), rnd(DType::kF32, {2, 17, 4}, 4)},
                   {{"axis", attr_int(-2)}}));
  check_layouts(
      op("Concat", {rnd(DType::kI64, {1023}), rnd(DType::kI64, {1}, 2)}, {{"axis", attr_int(0)}}));
  check_layouts(op("Concat", {rnd(DType::kF32, {3, 64})}, {{"axis", attr_int(-1)}}));
  check_layouts(op("Concat", {rnd(DType::kF32, {3, 0}), rnd(DType::kF32, {3, 0}, 2)},
                   {{"axis", attr_int(1)}}));
  check_layouts(
      op("Concat", {rnd(DType::kU8, {0, 4}), rnd(DType::kU8, {3, 4}, 2)}, {{"axis", attr_int(0)}}));
  check_layouts(op("Concat",
                   {rnd(DType::kBool, {2, 3, 17}), rnd(DType::kBool, {2, 3, 1}, 2),
                    rnd(DType::kBool, {2, 3, 64}, 3)},
                   {{"axis", attr_int(2)}}));
}

TEST(LowerMovementSplit, SplitInputAttrAndNumOutputs) {
  auto split = [](std::vector<Tensor> in, int64_t axis, int outputs, int opset,
                  std::map<std::string, ir::Attribute> attrs = {}) {
    OpCall c = op("Split", std::move(in), std::move(attrs), opset);
    c.attrs["axis"] = attr_int(axis);
    c.num_outputs = outputs;
    return c;
  };
  check_layouts(split({rnd(DType::kF32, {2, 7, 3}), ints({2, 0, 5})}, 1, 3, 13));
  check_layouts(split({rnd(DType::kI64, {2, 7, 3}), ints({3, 4})}, -2, 2, 13));
  check_layouts(split({rnd(DType::kF32, {6, 17})}, 0, 3, 13));  // equal parts
  check_layouts(split({rnd(DType::kU8, {1023})}, 0, 3, 13));    // 341 each
  check_layouts(split({rnd(DType::kBool, {4, 7})}, -1, 3, 18, {{"num_outputs", attr_int(3)}}));
  check_layouts(split({rnd(DType::kI32, {64, 3})}, 0, 2, 11, {{"split", attr_ints({60, 4})}}));
  check_layouts(split({rnd(DType::kF32, {0, 4})}, 1, 2, 13));  // empty input
}

// ---- Slice --------------------------------------------------------------------------------------

TEST(LowerMovementSlice, StartsEndsAxesSteps) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  struct Case {
    Dims in;
    std::vector<int64_t> starts, ends, axes,
        steps;  // empty axes/steps: omitted inputs
  };
  const std::vector<Case> cases = {
      {{17}, {2}, {9}, {}, {}},
      {{1023}, {-1000}, {kMax}, {0}, {3}},
      {{17, 64}, {1, 5}, {-1, 60}, {0, 1}, {2, 1}},
      {{17, 64}, {-1}, {kMin}, {-1}, {-1}},  // reversed inner dim
      {{17, 64}, {16, 3}, {-100, -70}, {0, -1}, {-3, -2}},
      {{3, 17, 4}, {5}, {10}, {1}, {1}},
      {{3, 17, 4}, {10}, {5}, {-2}, {1}},  // empty result
      {{3, 17, 4}, {0, 0, 0}, {kMax, kMax, kMax}, {}, {}},
      {{3, 17, 4}, {kMax}, {0}, {1}, {kMin}},  // one element, huge step
      {{3, 17, 4}, {2, -5}, {1, kMax}, {0, 1}, {-1, 100}},
      {{0, 5}, {0}, {3}, {1}, {1}},
  };
  for (const Case& k : cases) {
    std::vector<Tensor> in = {rnd(DType::kF32, k.in), ints(k.starts), ints(k.ends)};
    if (!k.axes.empty() || !k.steps.empty()) in.push_back(k.axes.empty() ? Tensor() : ints(k.axes));
    if (!k.steps.empty()) in.push_back(ints(k.steps));
    check_layouts(op("Slice", in, {}, 13));
    in[0] = rnd(DType::kI64, k.in);
    EXPECT_TRUE(check_lowering(op("Slice", in, {}, 13)));
    in[0] = rnd(DType::kBool, k.in);
    EXPECT_TRUE(check_lowering(op("Slice", in, {}, 13)));
  }
}

TEST(LowerMovementSlice, AttributesAndNonConstantStarts) {
  check_layouts(op("Slice", {rnd(DType::kU8, {5, 17})},
                   {{"starts", attr_ints({1, -4})},
                    {"ends", attr_ints({4, 1000})},
                    {"axes", attr_ints({0, -1})}},
                   9));
  check_layouts(op("Slice", {rnd(DType::kI32, {5, 17})},
                   {{"starts", attr_ints({2})}, {"ends", attr_ints({3})}}, 1));
  // Starts that are not known at specialization time: left to the reference.
  LowerOptions fallback;
  fallback.constant_inputs = std::vector<int>{2};
  fallback.expect_fallback = true;
  EXPECT_TRUE(
      check_lowering(op("Slice", {rnd(DType::kF32, {5}), ints({1}), ints({3})}, {}, 13), fallback));
}

// ---- Gather, GatherElements ---------------------------------------------------------------------

TEST(LowerMovementGather, AxesIndexShapesAndTypes) {
  struct Case {
    Dims data;
    int64_t axis;
    Tensor indices;
  };
  const std::vector<Case> cases = {
      {{17}, 0, ints({3, -1, 0, 16, -17})},
      {{17}, 0, Tensor::scalar<int64_t>(-2)},
      {{5, 64}, 0, ints({2, 3}, {4, 0, -5, 1, 1, 3})},
      {{5, 64}, 1, ints({63, -64, 7})},
      {{3, 4, 17}, -2, make<int32_t>({2, 2}, {3, -4, 0, 2})},
      {{3, 4, 17}, -1, make<int32_t>({}, {16})},
      {{3, 4, 1023}, 1, ints({1, 1, 2})},
      {{3, 4}, 0, ints({0}, {})},
      {{0, 4}, 1, ints({1, -1})},
      {{1, 4}, 0, ints({0, -1, 0})},
  };
  for (const Case& k : cases) {
    std::map<std::string, ir::Attribute> attrs = {{"axis", attr_int(k.axis)}};
    // Constant indices (checked at lowering) and run-time indices (clamped in the kernel).
    for (bool constant : {true, false}) {
      LowerOptions base;
      if (!constant) base.constant_inputs = std::vector<int>{};
      check_layouts(op("Gather", {rnd(DType::kF32, k.data), k.indices}, attrs), base);
      for (DType t : {DType::kI64, DType::kU8, DType::kBool})
        EXPECT_TRUE(check_lowering(op("Gather", {rnd(t, k.data), k.indices}, attrs), base));
    }
  }
}

TEST(LowerMovementGather, ElementsAxesAndSmallerIndices) {
  struct Case {
    Dims data;
    int64_t axis;
    Tensor indices;
  };
  const std::vector<Case> cases = {
      {{17}, 0, ints({3, -1, 0, 16, -17})},
      {{3, 4}, 1, ints({3, 2}, {0, -1, 3, 2, 1, -4})},
      {{3, 4}, 0, ints({2, 4}, {0, 1, 2, -1, -3, 2, 1, 0})},
      {{3, 5, 17}, -1, make<int32_t>({2, 5, 3}, std::vector<int32_t>(30, -3))},
      {{4, 64}, 0, rnd(DType::kI64, {3, 64}, 9)},  // values in [-100, 100): clamped below
      {{3, 4}, 1, ints({3, 0}, {})},
  };
  for (const Case& k : cases) {
    Tensor idx = k.indices;
    if (idx.dtype() == DType::kI64) {
      int64_t dim = k.data[size_t(k.axis < 0 ? k.axis + int64_t(k.data.size()) : k.axis)];
      for (int64_t i = 0; i < idx.numel(); ++i) {
        int64_t& v = idx.data<int64_t>()[i];
        v = ((v % (2 * dim)) + 2 * dim) % (2 * dim) - dim;  // into [-dim, dim)
      }
    }
    std::map<std::string, ir::Attribute> attrs = {{"axis", attr_int(k.axis)}};
    LowerOptions runtime;
    runtime.constant_inputs = std::vector<int>{};
    check_layouts(op("GatherElements", {rnd(DType::kF32, k.data), idx}, attrs), runtime);
    for (DType t : {DType::kI64, DType::kI32, DType::kU8, DType::kBool})
      EXPECT_TRUE(check_lowering(op("GatherElements", {rnd(t, k.data), idx}, attrs)));
  }
}

// Lowers `call` with every input a run-time value of its shape and fixed (immediate) dims.
jit::Kernel lower_fixed(const OpCall& call, const std::vector<std::pair<DType, Dims>>& outputs) {
  auto graph = make_op_graph(call);
  std::vector<std::optional<kernels::TensorArg>> in;
  for (const Tensor& t : call.inputs)
    in.push_back(kernels::TensorArg::fixed(*jit::scalar_type_of(t.dtype()), t.dims()));
  std::vector<kernels::TensorArg> out;
  for (const auto& [dt, dims] : outputs)
    out.push_back(kernels::TensorArg::fixed(*jit::scalar_type_of(dt), dims));
  kernels::LowerContext ctx(graph->nodes[0], in, out,
                            std::vector<const Tensor*>(call.inputs.size(), nullptr),
                            kernels::Schedule::for_host());
  const kernels::LowerFn* fn = kernels::Lowerings::global().find("", call.op);
  EXPECT_NE(fn, nullptr);
  auto k = (*fn)(ctx);
  EXPECT_TRUE(k.has_value());
  return *k;
}

// Runs `k` on exactly sized buffers in the interpreter (which reports any out-of-bounds access) and
// in the JIT; returns both outputs' f32 values.
std::pair<std::vector<float>, std::vector<float>> run_both(const jit::Kernel& k,
                                                           const std::vector<Tensor>& inputs,
                                                           size_t out_elems) {
  std::vector<std::vector<float>> outs(2, std::vector<float>(out_elems, -99.0f));
  for (int way = 0; way < 2; ++way) {
    std::vector<void*> ptrs;
    std::vector<size_t> bytes;
    for (const Tensor& t : inputs) {
      ptrs.push_back(const_cast<void*>(t.raw_data()));
      bytes.push_back(t.nbytes());
    }
    ptrs.push_back(outs[size_t(way)].data());
    bytes.push_back(out_elems * sizeof(float));
    if (way == 0) {
      jit::interpret(k, ptrs, bytes, {});
    } else {
      jit::KernelFn fn = jit::KernelCache::global().get(k, "").kernel->fn();
      fn(ptrs.data(), nullptr);
    }
  }
  return {outs[0], outs[1]};
}

// Indices the reference rejects (it raises an error) read the nearest edge element in the lowered
// kernel and never leave the buffer: the interpreter would throw on such an access.
TEST(LowerMovementGather, InvalidRuntimeIndicesAreClampedInBounds) {
  Tensor data = make<float>({5, 2}, {0, 1, 10, 11, 20, 21, 30, 31, 40, 41});
  Tensor idx = ints({7, -9, 2, -1, int64_t(1) << 40});
  OpCall g = op("Gather", {data, idx}, {{"axis", attr_int(0)}});
  jit::Kernel k = lower_fixed(g, {{DType::kF32, {5, 2}}});
  auto [interp, jitted] = run_both(k, {data, idx}, 10);
  const std::vector<float> want = {40, 41, 0, 1, 20, 21, 40, 41, 40, 41};
  EXPECT_EQ(interp, want);
  EXPECT_EQ(jitted, want);
  EXPECT_THROW(run_op(g), Error);  // the reference rejects them

  Tensor eidx = ints({2, 2}, {9, -7, -1, 5});
  OpCall ge = op("GatherElements", {data, eidx}, {{"axis", attr_int(0)}});
  jit::Kernel ke = lower_fixed(ge, {{DType::kF32, {2, 2}}});
  auto [ei, ej] = run_both(ke, {data, eidx}, 4);
  const std::vector<float> ewant = {40, 1, 40, 41};
  EXPECT_EQ(ei, ewant);
  EXPECT_EQ(ej, ewant);
}

// Constant indices are checked at lowering: an invalid one is left to the reference's error.
TEST(LowerMovementGather, InvalidConstantIndicesFallBack) {
  auto graph = make_op_graph(op("Gather", {rnd(DType::kF32, {5}), ints({5})}));
  Tensor idx = ints({5});
  std::vector<std::optional<kernels::TensorArg>> in = {
      kernels::TensorArg::fixed(jit::ScalarType::kF32, {5}),
      kernels::TensorArg::fixed(jit::ScalarType::kI64, {1})};
  kernels::LowerContext ctx(graph->nodes[0], in,
                            {kernels::TensorArg::fixed(jit::ScalarType::kF32, {1})},
                            {nullptr, &idx}, kernels::Schedule::for_host());
  EXPECT_FALSE((*kernels::Lowerings::global().find("", "Gather"))(ctx).has_value());
}

// ---- Pad ----------------------------------------------------------------------------------------

TEST(LowerMovementPad, ModesAndPads) {
  struct Case {
    Dims in;
    std::vector<int64_t> pads;
  };
  const std::vector<Case> cases = {
      {{17}, {3, 5}},
      {{3, 17}, {1, 2, 2, 1}},
      {{3, 17}, {0, 20, 0, 40}},  // wider than the input: reflect/wrap fold repeatedly
      {{3, 17}, {-1, -3, 0, 2}},  // crops
      {{4, 64}, {-2, 1, 3, -60}},
      {{1, 5}, {2, 0, 0, 1}},
      {{5, 17}, {2, 0, 1, 0}},  // outer axis only  // a single row: reflect repeats it
      {{2, 3, 4}, {0, 0, 0, 0, 0, 0}},
      {{1023}, {1, 1}},
  };
  for (const Case& k : cases)
    for (const char* mode : {"constant", "reflect", "edge", "wrap"}) {
      std::map<std::string, ir::Attribute> attrs = {{"mode", attr_string(mode)}};
      check_layouts(
          op("Pad", {rnd(DType::kF32, k.in), ints(k.pads), Tensor::scalar<float>(2.5f)}, attrs));
      DType t = std::string(mode) == "constant" ? DType::kI64 : DType::kU8;
      EXPECT_TRUE(check_lowering(op("Pad", {rnd(t, k.in), ints(k.pads)}, attrs)));
    }
}

TEST(LowerMovementPad, AxesEmptyInputAndOldOpsets) {
  // Axes input (opset 18), negative.
  check_layouts(op(
      "Pad",
      {rnd(DType::kF32, {3, 4, 17}), ints({1, -1, 2, 3}), Tensor::scalar<float>(-1), ints({-1, 0})},
      {{"mode", attr_string("reflect")}}));
  check_layouts(op(
      "Pad", {rnd(DType::kI32, {3, 4, 17}), ints({2, 2}), make<int32_t>({}, {7}), ints({1})}, {}));
  // An empty input padded with constants; an empty constant_value (fill 0).
  check_layouts(
      op("Pad", {rnd(DType::kF32, {0, 3}), ints({1, 1, 0, 2}), Tensor::scalar<float>(4)}));
  check_layouts(
      op("Pad", {rnd(DType::kBool, {2, 3}), ints({1, 0, 0, 2}), Tensor(DType::kBool, {0})}));
  // Pad-2 with attributes and a float fill for an integer tensor.
  check_layouts(op("Pad", {rnd(DType::kI64, {3, 5})},
                   {{"pads", attr_ints({1, 0, 2, 3})}, {"value", attr_float(-3.75f)}}, 2));
  check_layouts(op("Pad", {rnd(DType::kF32, {3, 5})},
                   {{"pads", attr_ints({1, 1, 1, 1})}, {"mode", attr_string("edge")}}, 2));
}

// ---- Expand, Tile, Where ------------------------------------------------------------------------

TEST(LowerMovementExpand, BroadcastPatterns) {
  struct Case {
    Dims in;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {{{3, 1}, {2, 3, 4}},    {{1}, {1023}},          {{17}, {3, 17}},
                                   {{}, {2, 3}},           {{2, 1, 3}, {2, 5, 3}}, {{3, 4}, {1, 1}},
                                   {{1, 64}, {3, 1}},      {{3, 1}, {3, 0}},       {{1, 1}, {1, 1}},
                                   {{4, 1, 1}, {4, 3, 17}}};
  for (const Case& k : cases) {
    LowerOptions base;
    check_layouts(op("Expand", {rnd(DType::kF32, k.in), ints(k.shape)}), base);
    for (DType t : {DType::kI64, DType::kU8, DType::kBool})
      EXPECT_TRUE(check_lowering(op("Expand", {rnd(t, k.in), ints(k.shape)})));
  }
  // A target shape known only at run time: the output dims are all the kernel needs.
  LowerOptions runtime;
  runtime.constant_inputs = std::vector<int>{};
  EXPECT_TRUE(check_lowering(op("Expand", {rnd(DType::kF32, {3, 1}), ints({3, 17})}), runtime));
}

TEST(LowerMovementTile, Repeats) {
  struct Case {
    Dims in;
    std::vector<int64_t> reps;
  };
  const std::vector<Case> cases = {{{3}, {4}},        {{17, 3}, {1, 2}}, {{2, 3, 4}, {2, 1, 3}},
                                   {{1023}, {2}},     {{3, 5}, {0, 2}},  {{0, 5}, {3, 1}},
                                   {{1, 3}, {64, 1}}, {{}, {}}};
  for (const Case& k : cases)
    for (bool constant : {true, false}) {
      LowerOptions base;
      if (!constant) base.constant_inputs = std::vector<int>{};
      check_layouts(op("Tile", {rnd(DType::kF32, k.in), ints(k.reps)}), base);
      for (DType t : {DType::kI32, DType::kBool})
        EXPECT_TRUE(check_lowering(op("Tile", {rnd(t, k.in), ints(k.reps)}), base));
    }
}

TEST(LowerMovementWhere, EveryBroadcastPattern) {
  // Each operand full, a row, a column or a scalar.
  const std::vector<Dims> shapes = {{3, 17}, {17}, {3, 1}, {}};
  uint64_t seed = 1;
  for (const Dims& c : shapes)
    for (const Dims& x : shapes)
      for (const Dims& y : shapes) {
        OpCall w = op("Where", {rnd(DType::kBool, c, seed), rnd(DType::kF32, x, seed + 1),
                                rnd(DType::kF32, y, seed + 2)});
        EXPECT_TRUE(check_lowering(w)) << c.size() << x.size() << y.size();
        ++seed;
      }
  for (DType t : kTypes)
    check_layouts(op("Where", {rnd(DType::kBool, {2, 1, 64}), rnd(t, {3, 1}, 2), rnd(t, {64}, 3)}));
  check_layouts(op(
      "Where", {rnd(DType::kBool, {1023}), rnd(DType::kF64, {1023}, 2), rnd(DType::kF64, {}, 3)}));
  check_layouts(
      op("Where", {rnd(DType::kBool, {0, 3}), rnd(DType::kF32, {3}, 2), rnd(DType::kF32, {1}, 3)}));
  check_layouts(
      op("Where", {rnd(DType::kBool, {}), rnd(DType::kI64, {}, 2), rnd(DType::kI64, {}, 3)}));
}

// ---- DepthToSpace, SpaceToDepth -----------------------------------------------------------------

TEST(LowerMovementDepthSpace, BothModesAndBlockSizes) {
  for (int64_t b : {1, 2, 3})
    for (const char* mode : {"DCR", "CRD"}) {
      std::map<std::string, ir::Attribute> attrs = {{"blocksize", attr_int(b)},
                                                    {"mode", attr_string(mode)}};
      check_layouts(op("DepthToSpace", {rnd(DType::kF32, {2, 2 * b * b, 3, 5})}, attrs));
      EXPECT_TRUE(
          check_lowering(op("DepthToSpace", {rnd(DType::kU8, {1, 3 * b * b, 4, 1})}, attrs)));
    }
  for (int64_t b : {1, 2, 3}) {
    std::map<std::string, ir::Attribute> attrs = {{"blocksize", attr_int(b)}};
    check_layouts(op("SpaceToDepth", {rnd(DType::kF32, {2, 3, 2 * b, 5 * b})}, attrs));
    EXPECT_TRUE(check_lowering(op("SpaceToDepth", {rnd(DType::kI64, {1, 2, 3 * b, b})}, attrs)));
  }
  check_layouts(op("DepthToSpace", {rnd(DType::kF32, {0, 4, 3, 3})}, {{"blocksize", attr_int(2)}}));
  check_layouts(
      op("SpaceToDepth", {rnd(DType::kBool, {1, 17, 4, 4})}, {{"blocksize", attr_int(4)}}));
}

}  // namespace
}  // namespace kiln::testing
