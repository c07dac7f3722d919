// NVRTC compiles the printed CUDA C: every op kind and every cast, every kernel of the shared
// models (constant and parameter dims, TF32 GEMMs), which ptxas then assembles for sm_90 where
// the toolkit has it, and the PTX disk cache. Skipped when NVRTC cannot be
// loaded (or in builds without the CUDA backend).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>

#include "cuda/cuda_test_util.h"
#include "jit/cuda_c.h"
#include "kiln/kiln.h"
#include "test_paths.h"

#ifdef KILN_WITH_CUDA
#include "devices/cuda/cuda_api.h"
#include "devices/cuda/nvrtc_compile.h"
#endif

namespace kiln::testing {
namespace {

using namespace jit;
using ST = ScalarType;

#ifdef KILN_WITH_CUDA
#define KILN_REQUIRE_NVRTC()                                  \
  do {                                                        \
    std::string why;                                          \
    if (!devices::cuda::try_nvrtc(&why)) GTEST_SKIP() << why; \
  } while (0)
#else
#define KILN_REQUIRE_NVRTC() GTEST_SKIP() << "built without the CUDA backend"
#endif

// One kernel holding every unary, binary and reduce op on every type it applies to, and every
// cast between scalar types: out_T[i] = ..., all stores in one serial loop.
Kernel every_op_kernel() {
  const std::vector<ST> types = {ST::kBool, ST::kI8,  ST::kU8,  ST::kI16, ST::kU16, ST::kI32,
                                 ST::kU32,  ST::kI64, ST::kU64, ST::kF32, ST::kF64};
  Kernel k;
  k.label = "every op";
  for (ST t : types) k.buffers.push_back(cuda_buf("x", t, {imm(4)}));
  for (ST t : types) k.buffers.push_back(cuda_buf("y", t, {imm(4)}, true));
  const int n = int(types.size());
  Expr i = var("i");
  std::vector<Stmt> body;
  for (int ti = 0; ti < n; ++ti) {
    ST t = types[size_t(ti)];
    Expr a = load(ti, t, {i}), b = load(ti, t, {imm(3) - i});
    auto put = [&](ST rt, Expr e) {
      for (int r = 0; r < n; ++r)
        if (types[size_t(r)] == rt) body.push_back(store(n + r, {i}, e));
    };
    for (int op = 0; op <= int(UnaryOp::kAtanh); ++op) {
      UnaryOp u = UnaryOp(op);
      bool ok = is_float(t) ? u != UnaryOp::kNot
                            : (u == UnaryOp::kNot ||
                               ((u == UnaryOp::kNeg || u == UnaryOp::kAbs) && t != ST::kBool));
      if (ok) put(t, unary(u, a));
    }
    for (int op = 0; op <= int(BinaryOp::kGe); ++op) {
      BinaryOp bo = BinaryOp(op);
      bool cmp = bo >= BinaryOp::kEq;
      bool logic = bo == BinaryOp::kAnd || bo == BinaryOp::kOr || bo == BinaryOp::kXor;
      bool shift = bo == BinaryOp::kShl || bo == BinaryOp::kShr;
      bool ok =
          cmp || (t == ST::kBool ? logic : (is_float(t) ? !logic && !shift : bo != BinaryOp::kPow));
      if (ok) put(cmp ? ST::kBool : t, binary(bo, a, b));
    }
    for (ST to : types) put(to, cast(to, a));
    if (t != ST::kBool)
      for (int op = 0; op <= int(ReduceOp::kMax); ++op)
        put(t, reduce(ReduceOp(op), {"r"}, {imm(4)}, a, load(ti, t, {var("r")})));
  }
  k.body = for_loop("i", imm(4), LoopKind::kParallel, block(body));
  validate(k);
  return k;
}

TEST(CudaPtx, EveryOpAndCastCompiles) {
  KILN_REQUIRE_NVRTC();
#ifdef KILN_WITH_CUDA
  Kernel k = every_op_kernel();
  CudaSource src = print_cuda(k, "every_op");
  std::string ptx = devices::cuda::compile_ptx(src.code, "every_op.cu", "sm_90");
  EXPECT_NE(ptx.find(".entry every_op"), std::string::npos);
  EXPECT_NE(ptx.find(".target sm_90"), std::string::npos);
  // Older architectures take the same text.
  EXPECT_NE(devices::cuda::compile_ptx(src.code, "every_op.cu", "sm_80").find(".target sm_80"),
            std::string::npos);
#endif
}

TEST(CudaPtx, BadArchAndBadSourceAreErrors) {
  KILN_REQUIRE_NVRTC();
#ifdef KILN_WITH_CUDA
  EXPECT_THROW(devices::cuda::compile_ptx("", "x.cu", "sm90"), Error);
  try {
    devices::cuda::compile_ptx("this is not C", "bad.cu", "sm_90");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.cu"), std::string::npos) << e.what();
  }
#endif
}

TEST(CudaPtx, DiskCacheReusesAndRejectsCorruptFiles) {
  KILN_REQUIRE_NVRTC();
#ifdef KILN_WITH_CUDA
  TempDir dir;
  Kernel k = cuda_binary_kernel(ST::kF32, ST::kF32, 16, [](Expr a, Expr b) { return a * b; });
  auto first = devices::cuda::kernel_ptx(k, "sm_90", dir.path());
  EXPECT_FALSE(first.from_disk);
  auto second = devices::cuda::kernel_ptx(k, "sm_90", dir.path());
  EXPECT_TRUE(second.from_disk);
  EXPECT_EQ(first.ptx, second.ptx);
  std::string file = dir.file(first.key + ".ptx");
  ASSERT_TRUE(std::filesystem::exists(file));
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() - 10] ^= 1;
  std::ofstream(file, std::ios::binary) << bytes;
  auto third = devices::cuda::kernel_ptx(k, "sm_90", dir.path());
  EXPECT_FALSE(third.from_disk);
  EXPECT_EQ(third.ptx, first.ptx);
  // Another architecture is another key.
  EXPECT_NE(devices::cuda::kernel_ptx(k, "sm_80", dir.path()).key, first.key);
#endif
}

// Assembles every kernel's PTX for sm_90 with the toolkit's ptxas, as the driver's JIT does when
// it loads them: "" when all assemble without spilling registers to local memory, else what
// ptxas said of the others.
std::string assemble_all(const std::vector<CudaKernelCode>& code, const std::string& ptxas) {
  TempDir dir;
  for (size_t i = 0; i < code.size(); ++i)
    std::ofstream(dir.file("k" + std::to_string(i) + ".ptx")) << code[i].ptx;
  // Four at a time; each kernel's messages in kN.log, with FAILED when ptxas did.
  const std::string cmd = "cd '" + dir.path() + "' && ls k*.ptx | xargs -P 4 -I{} sh -c \"'" +
                          ptxas + "' -arch=sm_90 -v {} -o {}.cubin > {}.log 2>&1 || " +
                          "echo FAILED >> {}.log\"";
  if (std::system(cmd.c_str()) != 0) return "could not run " + ptxas;
  const std::regex spill("([1-9][0-9]*) bytes spill stores");
  std::string problems;
  for (size_t i = 0; i < code.size(); ++i) {
    std::ifstream log(dir.file("k" + std::to_string(i) + ".ptx.log"));
    if (!log) problems += code[i].name + ": no ptxas log\n";
    for (std::string line; std::getline(log, line);)
      if (line.find("FAILED") != std::string::npos || line.find("error") != std::string::npos ||
          std::regex_search(line, spill))
        problems += code[i].name + " (" + code[i].label + "): " + line + "\n";
  }
  return problems;
}

class CudaPtxModels : public ::testing::TestWithParam<const char*> {};

// Every kernel of every shared model compiles, with constant dims, with parameter dims and with
// TF32 GEMMs; where the toolkit's ptxas is here, every one also assembles for sm_90 without
// register spills.
TEST_P(CudaPtxModels, EveryKernelCompiles) {
  KILN_REQUIRE_NVRTC();
  if (!have_shared()) GTEST_SKIP() << "../shared/models is not beside the checkout";
  const std::string ptxas = ptxas_path();
  if (ptxas.empty()) std::cerr << "no ptxas here: PTX not assembled\n";
  for (int variant = 0; variant < 3; ++variant) {
    SessionOptions so;
    so.specialization = variant == 1 ? Specialization::kDynamic : Specialization::kExact;
    so.allow_tf32 = variant == 2;
    SCOPED_TRACE(variant == 0 ? "exact" : variant == 1 ? "dynamic" : "tf32");
    Session s(shared_dir() + "/models/" + GetParam() + "/model.onnx", so);
    std::map<std::string, Dims> shapes;
    for (const ValueInfo& in : s.input_info()) {
      if (in.has_default) continue;
      Dims dims;
      // Symbolic dims 3 (TF32: 32, so that GEMMs have rows enough for tensor-core tiles).
      for (const Dim& d : in.shape)
        dims.push_back(d.is_constant() ? d.value : so.allow_tf32 ? 32 : 3);
      shapes[in.name] = dims;
    }
    // TF32 changes only the GEMMs: the others are compiled in the first variant.
    std::vector<CudaKernelCode> code = s.generate_cuda(shapes, "sm_90", !so.allow_tf32);
    EXPECT_FALSE(code.empty());
    if (so.allow_tf32) {
#ifdef KILN_WITH_CUDA
      std::erase_if(code, [](const CudaKernelCode& c) {
        return c.label.find("(tiled GEMM)") == std::string::npos;
      });
      for (CudaKernelCode& c : code)
        c.ptx = devices::cuda::compile_ptx(c.cuda_c, c.name + ".cu", "sm_90");
#endif
    }
    int gemms = 0, tensor_core = 0;
    for (const CudaKernelCode& c : code) {
      if (c.ptx.find(".m16n16k8.f32.tf32.tf32.f32") != std::string::npos) ++tensor_core;
      EXPECT_NE(c.ptx.find(".entry " + c.name), std::string::npos) << c.node << "\n" << c.cuda_c;
      EXPECT_NE(c.cuda_c.find("extern \"C\" __global__"), std::string::npos);
      if (c.label.find("(tiled GEMM)") != std::string::npos) {
        ++gemms;
        // Accumulators stay in registers: no local memory.
        EXPECT_EQ(c.ptx.find(".local"), std::string::npos) << c.node << "\n" << c.cuda_c;
      }
    }
    EXPECT_GT(gemms, 0) << "every shared model has MatMul, Gemm or Conv nodes";
    if (so.allow_tf32) {
      EXPECT_GT(tensor_core, 0) << "some GEMM has a tile for tensor cores";
    } else {
      EXPECT_EQ(tensor_core, 0);
    }
    if (!ptxas.empty()) {
      EXPECT_EQ(assemble_all(code, ptxas), "");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, CudaPtxModels,
                         ::testing::Values("mlp", "squeezenet1_1", "mobilenet_v2", "resnet18",
                                           "bert_mini", "gpt_mini"));

}  // namespace
}  // namespace kiln::testing
