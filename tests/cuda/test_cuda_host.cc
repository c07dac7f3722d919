// The printed CUDA C built by the host C++ compiler (the prelude's host shim) and run on the
// tricky cases of the kernel IR's semantics, compared with the interpreter: integer div/mod by
// zero and MIN / -1, wrapping, shift counts, NaN min/max, float->int casts that never trap,
// round half to even. The same text is what NVRTC compiles for the GPU.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "cuda/cuda_test_util.h"
#include "jit/cuda_c.h"
#include "jit/kir_interp.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

using namespace jit;
using ST = ScalarType;

// Builds `k` as a host shared library and returns an entry point taking the buffers and params.
using Entry = void (*)(void** buffers, const long long* params);
Entry build_host(const Kernel& k, const TempDir& dir, std::string* error) {
  std::vector<CudaFunction> fns;
  CudaSource src = print_cuda(k, "kern");
  std::string call_args;
  for (size_t b = 0; b < k.buffers.size(); ++b)
    call_args += std::string(b ? ", " : "") + "(" + (k.buffers[b].output ? "" : "const ") +
                 cuda_type(k.buffers[b].type, true) + "*)b[" + std::to_string(b) + "]";
  for (int p = 0; p < k.num_params; ++p)
    call_args += (call_args.empty() ? "" : ", ") + std::string("p[") + std::to_string(p) + "]";
  std::string code =
      src.code + "extern \"C\" void kiln_host_entry(void** b, const long long* p) {\n";
  for (const CudaFunction& f : src.functions) code += "  " + f.name + "(" + call_args + ");\n";
  code += "}\n";
  std::ofstream(dir.file("k.cc")) << code;
  std::string cmd = host_compiler() + " -std=c++17 -O0 -shared -fPIC -o " + dir.file("k.so") + " " +
                    dir.file("k.cc") + " > " + dir.file("log.txt") + " 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(dir.file("log.txt"));
    *error = std::string(std::istreambuf_iterator<char>(log), {}) + "\n" + code;
    return nullptr;
  }
  void* lib = dlopen(dir.file("k.so").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    *error = dlerror();
    return nullptr;
  }
  return reinterpret_cast<Entry>(dlsym(lib, "kiln_host_entry"));
}

// Runs a two-input kernel (a, b -> y, n elements) compiled on the host and in the interpreter
// and expects the same bytes (NaN equal to NaN).
template <typename In, typename Out>
void expect_same(ST in, ST out, const std::vector<In>& a, const std::vector<In>& b,
                 Expr (*f)(Expr, Expr)) {
  ASSERT_EQ(a.size(), b.size());
  const int64_t n = int64_t(a.size());
  Kernel k = cuda_binary_kernel(in, out, n, f);
  TempDir dir;
  std::string error;
  Entry entry = build_host(k, dir, &error);
  ASSERT_TRUE(entry) << error;
  std::vector<In> ca = a, cb = b;
  std::vector<Out> host(a.size()), interp(a.size());
  void* bufs[] = {ca.data(), cb.data(), host.data()};
  entry(bufs, nullptr);
  size_t bytes_in = a.size() * sizeof(In), bytes_out = a.size() * sizeof(Out);
  interpret(k, {ca.data(), cb.data(), interp.data()}, {bytes_in, bytes_in, bytes_out}, {});
  for (size_t i = 0; i < a.size(); ++i) {
    if constexpr (std::is_floating_point_v<Out>) {
      if (std::isnan(interp[i])) {
        EXPECT_TRUE(std::isnan(host[i])) << "element " << i;
        continue;
      }
    }
    EXPECT_EQ(std::memcmp(&host[i], &interp[i], sizeof(Out)), 0)
        << "element " << i << ": host " << +host[i] << ", interpreter " << +interp[i];
  }
}

class CudaCHost : public ::testing::Test {
 protected:
  void SetUp() override {
    if (host_compiler().empty()) GTEST_SKIP() << "no host C++ compiler to build the CUDA C with";
  }
};

Expr div_(Expr a, Expr b) { return binary(BinaryOp::kDiv, a, b); }
Expr mod_(Expr a, Expr b) { return binary(BinaryOp::kMod, a, b); }
Expr add_(Expr a, Expr b) { return binary(BinaryOp::kAdd, a, b); }
Expr mul_(Expr a, Expr b) { return binary(BinaryOp::kMul, a, b); }
Expr shl_(Expr a, Expr b) { return binary(BinaryOp::kShl, a, b); }
Expr shr_(Expr a, Expr b) { return binary(BinaryOp::kShr, a, b); }
Expr min_(Expr a, Expr b) { return binary(BinaryOp::kMin, a, b); }
Expr max_(Expr a, Expr b) { return binary(BinaryOp::kMax, a, b); }
Expr neg_abs_(Expr a, Expr) { return unary(UnaryOp::kNeg, unary(UnaryOp::kAbs, a)); }
Expr round_(Expr a, Expr) { return unary(UnaryOp::kRound, a); }
Expr to_i32_(Expr a, Expr) { return cast(ST::kI32, a); }
Expr to_i8_(Expr a, Expr) { return cast(ST::kI8, a); }
Expr to_u64_(Expr a, Expr) { return cast(ST::kU64, a); }
Expr to_i64_(Expr a, Expr) { return cast(ST::kI64, a); }

TEST_F(CudaCHost, IntegerDivModByZeroAndMinByMinusOne) {
  const int32_t m32 = std::numeric_limits<int32_t>::min();
  std::vector<int32_t> a = {7, -7, 7, -7, m32, m32, 0, 5}, b = {0, 0, -2, 2, -1, 0, 0, 3};
  expect_same<int32_t, int32_t>(ST::kI32, ST::kI32, a, b, div_);
  expect_same<int32_t, int32_t>(ST::kI32, ST::kI32, a, b, mod_);
  const int64_t m64 = std::numeric_limits<int64_t>::min();
  std::vector<int64_t> la = {m64, m64, 9, -9}, lb = {-1, 0, 0, 4};
  expect_same<int64_t, int64_t>(ST::kI64, ST::kI64, la, lb, div_);
  expect_same<int64_t, int64_t>(ST::kI64, ST::kI64, la, lb, mod_);
  std::vector<int8_t> ca = {-128, 127, -128, 100}, cb = {-1, 1, 0, 100};
  expect_same<int8_t, int8_t>(ST::kI8, ST::kI8, ca, cb, div_);
  expect_same<int8_t, int8_t>(ST::kI8, ST::kI8, ca, cb, add_);
  expect_same<int8_t, int8_t>(ST::kI8, ST::kI8, ca, cb, mul_);
  expect_same<int8_t, int8_t>(ST::kI8, ST::kI8, ca, cb, neg_abs_);
  std::vector<uint16_t> ua = {65535, 300, 0, 1}, ub = {65535, 0, 0, 2};
  expect_same<uint16_t, uint16_t>(ST::kU16, ST::kU16, ua, ub, mul_);
  expect_same<uint16_t, uint16_t>(ST::kU16, ST::kU16, ua, ub, div_);
}

TEST_F(CudaCHost, ShiftCountsModuloWidth) {
  std::vector<int32_t> a = {-16, -16, 1, 1, 12345, -1}, b = {2, 33, 31, 32, -1, 63};
  expect_same<int32_t, int32_t>(ST::kI32, ST::kI32, a, b, shl_);
  expect_same<int32_t, int32_t>(ST::kI32, ST::kI32, a, b, shr_);
  std::vector<uint32_t> ua = {0x80000000u, 0xffffffffu, 1, 7}, ub = {31, 36, 64, 0xffffffffu};
  expect_same<uint32_t, uint32_t>(ST::kU32, ST::kU32, ua, ub, shl_);
  expect_same<uint32_t, uint32_t>(ST::kU32, ST::kU32, ua, ub, shr_);
  std::vector<int8_t> ca = {-128, 64, -1, 3}, cb = {7, 9, -1, 8};
  expect_same<int8_t, int8_t>(ST::kI8, ST::kI8, ca, cb, shl_);
  expect_same<int8_t, int8_t>(ST::kI8, ST::kI8, ca, cb, shr_);
}

TEST_F(CudaCHost, FloatMinMaxPropagateNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> a = {nan, 1, nan, -0.0f, 0.0f, -INFINITY}, b = {1, nan, nan, 0.0f, -0.0f, 3};
  expect_same<float, float>(ST::kF32, ST::kF32, a, b, min_);
  expect_same<float, float>(ST::kF32, ST::kF32, a, b, max_);
  std::vector<double> da = {std::nan(""), 2}, db = {1, std::nan("")};
  expect_same<double, double>(ST::kF64, ST::kF64, da, db, min_);
  expect_same<double, double>(ST::kF64, ST::kF64, da, db, max_);
}

TEST_F(CudaCHost, RoundHalfToEven) {
  std::vector<float> a = {0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 3.49999f, 1e9f + 64, -7.5f};
  expect_same<float, float>(ST::kF32, ST::kF32, a, a, round_);
  std::vector<double> d = {0.5, 1.5, 2.5, -0.5, -2.5, 4503599627370497.0};
  expect_same<double, double>(ST::kF64, ST::kF64, d, d, round_);
}

TEST_F(CudaCHost, FloatToIntCastsNeverTrap) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> a = {nan, INFINITY, -INFINITY, 3e9f, -3e9f, 2.9f, -2.9f, 1e20f, 300.0f, -1.0f};
  expect_same<float, int32_t>(ST::kF32, ST::kI32, a, a, to_i32_);
  expect_same<float, int8_t>(ST::kF32, ST::kI8, a, a, to_i8_);
  expect_same<float, uint64_t>(ST::kF32, ST::kU64, a, a, to_u64_);
  expect_same<float, int64_t>(ST::kF32, ST::kI64, a, a, to_i64_);
  std::vector<double> d = {1.8e19, 2e19, 9.3e18, -9.3e18, -1.0, std::nan("")};
  expect_same<double, uint64_t>(ST::kF64, ST::kU64, d, d, to_u64_);
  expect_same<double, int64_t>(ST::kF64, ST::kI64, d, d, to_i64_);
}

}  // namespace
}  // namespace kiln::testing
