// check_lowering: reference outputs vs the lowered kernel in the kir interpreter and the JIT.
#include "lower/lower_test_util.h"

#include "engine/device_select.h"

#include <cstring>
#include <map>
#include <memory>

#include "devices/cpu.h"
#include "jit/kernel_cache.h"
#include "jit/kir.h"
#include "jit/kir_interp.h"
#include "kernels/lower/lower.h"

namespace kiln::testing {
namespace {

using kernels::TensorArg;

// Memory of one kernel buffer: the bytes the kernel may address, kept at a 64-byte aligned
// offset (plus, for strided inputs, one element so only element alignment holds).
struct Buffer {
  std::vector<uint8_t> storage;
  uint8_t* base = nullptr;
  size_t bytes = 0;

  void allocate(size_t n, size_t offset) {
    storage.assign(n + offset + 128, 0);
    auto addr = reinterpret_cast<uintptr_t>(storage.data());
    base = storage.data() + ((64 - addr % 64) % 64) + offset;
    bytes = n;
  }
};

// Everything one lowering run needs: the graph, the args, the kernel and the memory.
struct Lowered {
  std::unique_ptr<ir::Graph> graph;
  std::vector<std::optional<TensorArg>> inputs;
  std::vector<TensorArg> outputs;
  std::vector<int64_t> params;
  std::optional<jit::Kernel> kernel;
  bool declined = false;  // no lowering, or it returned nullopt
  std::string skip_reason;
};

bool is_constant_input(const OpCall& call, const LowerOptions& opt, int i) {
  if (opt.constant_inputs) {
    for (int c : *opt.constant_inputs)
      if (c == i) return true;
    return false;
  }
  return i > 0 && dtype_is_int(call.inputs[size_t(i)].dtype());
}

// Dims as Exprs: immediates, or in dynamic mode a param per distinct concrete value >= 2.
std::vector<jit::Expr> dim_exprs(const Dims& dims, bool dynamic, std::map<int64_t, int>& params,
                                 std::vector<int64_t>& values) {
  std::vector<jit::Expr> out;
  for (int64_t d : dims) {
    if (!dynamic || d < 2) {
      out.push_back(jit::imm(d));
      continue;
    }
    auto it = params.find(d);
    if (it == params.end()) {
      it = params.emplace(d, int(values.size())).first;
      values.push_back(d);
    }
    out.push_back(jit::param(it->second));
  }
  return out;
}

// What the engine shows lowerings as concrete dims: the real value for immediates, the
// representative value for params (so a lowering that bakes a "concrete" param value into the
// IR computes wrong results here instead of passing).
Dims schedule_dims(const std::vector<jit::Expr>& exprs, const Dims& dims) {
  Dims out = dims;
  for (size_t d = 0; d < exprs.size(); ++d)
    if (!exprs[d]->is_int_imm()) out[d] = kernels::kRepresentativeDynamicDim;
  return out;
}

// Strides of a row-major layout whose innermost dim is padded by `pad` elements.
std::vector<jit::Expr> padded_strides(const std::vector<jit::Expr>& dims, int64_t pad) {
  std::vector<jit::Expr> padded = dims;
  if (!padded.empty()) padded.back() = padded.back() + pad;
  return jit::contiguous_strides(padded);
}

Lowered lower_call(const OpCall& call, const std::vector<Tensor>& expected,
                   const LowerOptions& opt) {
  Lowered l;
  l.graph = make_op_graph(call);
  const ir::Node& node = l.graph->nodes[0];
  std::map<int64_t, int> param_of;
  std::vector<const Tensor*> constants;
  for (size_t i = 0; i < call.inputs.size(); ++i) {
    const Tensor& t = call.inputs[i];
    constants.push_back(t.defined() && is_constant_input(call, opt, int(i)) ? &t : nullptr);
    if (!t.defined()) {
      l.inputs.push_back(std::nullopt);
      continue;
    }
    auto type = jit::scalar_type_of(t.dtype());
    if (!type) {
      l.declined = true;
      l.skip_reason = std::string("input dtype ") + dtype_name(t.dtype());
      return l;
    }
    TensorArg a;
    a.type = *type;
    a.dims = dim_exprs(t.dims(), opt.dynamic, param_of, l.params);
    a.strides = opt.strided ? padded_strides(a.dims, 3) : jit::contiguous_strides(a.dims);
    a.concrete = schedule_dims(a.dims, t.dims());
    l.inputs.push_back(std::move(a));
  }
  for (const Tensor& t : expected) {
    auto type = jit::scalar_type_of(t.dtype());
    if (!type) {
      l.declined = true;
      l.skip_reason = std::string("output dtype ") + dtype_name(t.dtype());
      return l;
    }
    TensorArg a;
    a.type = *type;
    a.dims = dim_exprs(t.dims(), opt.dynamic, param_of, l.params);
    a.strides = jit::contiguous_strides(a.dims);
    a.concrete = schedule_dims(a.dims, t.dims());
    l.outputs.push_back(std::move(a));
  }
  kernels::Schedule schedule =
      opt.gpu_schedule ? engine::cuda_schedule() : kernels::Schedule::for_host();
  if (opt.parallel_grain > 0) schedule.parallel_grain = opt.parallel_grain;
  kernels::LowerContext ctx(node, l.inputs, l.outputs, constants, schedule);
  const kernels::LowerFn* fn = kernels::Lowerings::global().find(node.domain, node.op_type);
  if (!fn) {
    l.declined = true;
    l.skip_reason = "no lowering registered for " + node.op_type;
    return l;
  }
  l.kernel = (*fn)(ctx);
  if (!l.kernel) {
    l.declined = true;
    l.skip_reason = "the lowering returned nullopt";
  }
  return l;
}

// Byte offset of the last addressed element + 1 for dims/strides (0 when empty).
size_t extent_bytes(const Dims& dims, const std::vector<int64_t>& strides, size_t elem) {
  int64_t last = 0;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 0) return 0;
    last += (dims[d] - 1) * strides[d];
  }
  return size_t(last + 1) * elem;
}

std::vector<int64_t> concrete_strides(const Dims& dims, bool padded) {
  std::vector<int64_t> s(dims.size());
  int64_t acc = 1;
  for (size_t d = dims.size(); d-- > 0;) {
    s[d] = acc;
    acc *= dims[d] + (padded && d + 1 == dims.size() ? 3 : 0);
  }
  return s;
}

// Copies a contiguous tensor into a buffer with the given element strides.
void scatter(const Tensor& t, const std::vector<int64_t>& strides, uint8_t* dst) {
  size_t elem = dtype_size(t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.raw_data());
  std::vector<int64_t> idx(size_t(t.rank()), 0);
  for (int64_t n = 0; n < t.numel(); ++n) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * strides[d];
    std::memcpy(dst + size_t(off) * elem, src + size_t(n) * elem, elem);
    for (size_t d = idx.size(); d-- > 0;) {
      if (++idx[d] < t.dims()[d]) break;
      idx[d] = 0;
    }
  }
}

const devices::Cpu& test_cpu() {
  static devices::Cpu cpu(2);
  return cpu;
}

// Runs the kernel one way (`how` names it in failures) and compares every output.
::testing::AssertionResult run_and_compare(const OpCall& call, const Lowered& l,
                                           const std::vector<Tensor>& expected,
                                           const LowerOptions& opt, bool use_jit) {
  const char* how = use_jit ? "jit" : "interpreter";
  std::vector<Buffer> mem(l.inputs.size() + expected.size());
  std::vector<void*> ptrs;
  std::vector<size_t> sizes;
  for (size_t i = 0; i < l.inputs.size(); ++i) {
    const Tensor& t = call.inputs[i];
    if (!t.defined()) {
      mem[i].allocate(0, 0);
    } else {
      size_t elem = dtype_size(t.dtype());
      auto strides = concrete_strides(t.dims(), opt.strided);
      mem[i].allocate(extent_bytes(t.dims(), strides, elem), opt.strided ? elem : 0);
      // Padding reads as garbage: NaN bit patterns for floats, odd bytes for the rest.
      std::memset(mem[i].base, t.dtype() == DType::kBool ? 0 : 0xff, mem[i].bytes);
      scatter(t, strides, mem[i].base);
    }
    ptrs.push_back(mem[i].base);
    sizes.push_back(mem[i].bytes);
  }
  for (size_t o = 0; o < expected.size(); ++o) {
    Buffer& b = mem[l.inputs.size() + o];
    b.allocate(expected[o].nbytes(), 0);
    // A sentinel that no output element can legally hold unnoticed: 2 in each bool byte (checked
    // below), NaN / 0x5a5a... elsewhere.
    DType dt = expected[o].dtype();
    std::memset(b.base, dt == DType::kBool ? 2 : dtype_is_float(dt) ? 0xff : 0x5a, b.bytes);
    ptrs.push_back(b.base);
    sizes.push_back(b.bytes);
  }
  try {
    if (use_jit) {
      auto lookup = jit::KernelCache::global().get(*l.kernel, "");
      jit::KernelFn fn = lookup.kernel->fn();
      test_cpu().execute([&] { fn(ptrs.data(), l.params.data()); });
    } else {
      jit::interpret(*l.kernel, ptrs, sizes, l.params);
    }
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << how << " failed: " << e.what() << "\n"
                                         << jit::print(*l.kernel);
  }
  for (size_t o = 0; o < expected.size(); ++o) {
    const Buffer& b = mem[l.inputs.size() + o];
    if (expected[o].dtype() == DType::kBool)
      for (size_t k = 0; k < b.bytes; ++k)
        if (b.base[k] > 1)
          return ::testing::AssertionFailure()
                 << how << ": output " << o << " element " << k << " not written (or not 0/1)\n"
                 << jit::print(*l.kernel);
    Tensor got(expected[o].dtype(), expected[o].dims());
    if (b.bytes) std::memcpy(got.raw_data(), b.base, b.bytes);
    auto r = tensors_near(got, expected[o], opt.atol, opt.rtol);
    if (!r)
      return ::testing::AssertionFailure() << how << ": output " << o << ": " << r.message() << "\n"
                                           << jit::print(*l.kernel);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult check_lowering(const OpCall& call, const LowerOptions& opt) {
  std::vector<Tensor> expected;
  try {
    expected = run_op(call);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "reference failed: " << e.what();
  }
  Lowered l;
  try {
    l = lower_call(call, expected, opt);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << call.op << ": lowering threw: " << e.what();
  }
  if (l.declined) {
    if (opt.expect_fallback) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << call.op << ": not lowered (" << l.skip_reason << ")";
  }
  if (opt.expect_fallback)
    return ::testing::AssertionFailure() << call.op << ": expected a fallback, got a kernel\n"
                                         << jit::print(*l.kernel);
  if (opt.interp) {
    auto r = run_and_compare(call, l, expected, opt, false);
    if (!r) return r;
  }
  if (opt.jit) {
    auto r = run_and_compare(call, l, expected, opt, true);
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

std::string lowered_ir(const OpCall& call, const LowerOptions& opt) {
  auto expected = run_op(call);
  Lowered l = lower_call(call, expected, opt);
  return l.kernel ? jit::print(*l.kernel) : "<fallback>";
}

OpCall op_call(std::string op, std::vector<Tensor> inputs,
               std::map<std::string, ir::Attribute> attrs, int opset) {
  OpCall c;
  c.op = std::move(op);
  c.inputs = std::move(inputs);
  c.attrs = std::move(attrs);
  c.opset = opset;
  return c;
}

void check_variants(const OpCall& call, LowerOptions base, bool all) {
  std::vector<LowerOptions> v(all ? 4 : 2, base);
  v[1].dynamic = v[1].strided = true;
  v[1].parallel_grain = 16;
  if (all) {
    v[2].dynamic = true;
    v[3].strided = true;
  }
  for (const LowerOptions& opt : v)
    EXPECT_TRUE(check_lowering(call, opt))
        << call.op << (opt.dynamic ? " dynamic" : "") << (opt.strided ? " strided" : "");
}

}  // namespace kiln::testing
