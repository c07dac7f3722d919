// Tiled GEMM kernels as CUDA C (see cuda_gemm.h).
#include "jit/cuda_gemm.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "jit/kir.h"
#include "kiln/error.h"

namespace kiln::jit {

namespace {

[[noreturn]] void fail(const std::string& msg) {
  throw Error(ErrorCode::kInternal, "cuda gemm: " + msg);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string num(int64_t v) { return std::to_string(v) + "LL"; }

// The largest element offset an operand's accesses can reach (for the index type).
int64_t reach(const CudaGemm& g, int64_t CudaGemm::Batch::* field, int64_t per_m,
              int64_t per_k_or_n, int64_t inner_extent) {
  int64_t r = 0;
  for (const CudaGemm::Batch& b : g.batch) r += (b.extent - 1) * std::abs(b.*field);
  r += std::max<int64_t>(g.m - 1, 0) * std::abs(per_m);
  r += std::max<int64_t>(inner_extent - 1, 0) * std::abs(per_k_or_n);
  return r;
}

// The TF32 tensor-core fragments of a 16 x 16 x 8 WMMA, printed once per translation unit
// after the prelude. On the GPU they are NVRTC's built-in WMMA functions; a host build (the
// tests' emulation) gives every lane the whole fragment, lets lane 0 store it, and checks the
// alignment the hardware needs (32-byte pointers, leading dimensions a multiple of 4 floats).
constexpr const char* kTf32Fragments = R"(// ---- TF32 tensor-core fragments (16 x 16 x 8) ----
#ifndef KILN_TF32_FRAGMENTS
#define KILN_TF32_FRAGMENTS
#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
// Opaque: each lane holds its part in the hardware's layout.
struct kiln_frag_ab { int x[4]; };
struct kiln_frag_c { float x[8]; };
KILN_D float kiln_tf32(float v) {
  unsigned int r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
  return __uint_as_float(r);
}
KILN_D void kiln_frag_zero(kiln_frag_c& c) {
  for (int i = 0; i < 8; ++i) c.x[i] = 0.0f;
}
// A(m, k) = p[m + k * ld]: column-major 16 x 8.
KILN_D void kiln_frag_load_a(kiln_frag_ab& a, const float* p, unsigned ld) {
  __mma_tf32_m16n16k8_ld_a(a.x, (const int*)p, ld, 1);
}
// B(k, n) = p[k * ld + n]: row-major 8 x 16.
KILN_D void kiln_frag_load_b(kiln_frag_ab& b, const float* p, unsigned ld) {
  __mma_tf32_m16n16k8_ld_b(b.x, (const int*)p, ld, 0);
}
// C += A * B (A column-major, B row-major).
KILN_D void kiln_frag_mma(kiln_frag_c& c, const kiln_frag_ab& a, const kiln_frag_ab& b) {
  __mma_tf32_m16n16k8_mma_f32(c.x, a.x, b.x, c.x, 2, 0);
}
// C(m, n) -> p[m * ld + n].
KILN_D void kiln_frag_store(float* p, const kiln_frag_c& c, unsigned ld) {
  __mma_m16n16k8_st_c_f32(p, c.x, ld, 0);
}
#else
#include <stdlib.h>
#define __align__(n) __attribute__((aligned(n)))
struct kiln_frag_ab { float x[128]; };  // A: x[m * 8 + k]; B: x[k * 16 + n]
struct kiln_frag_c { float x[256]; };   // x[m * 16 + n]
static inline void kiln_frag_check(const void* p, unsigned ld) {
  if ((unsigned long long)p % 32 != 0 || ld % 4 != 0) abort();
}
static inline float kiln_tf32(float v) {
  unsigned int b;
  memcpy(&b, &v, 4);
  if ((b & 0x7f800000u) != 0x7f800000u) b = (b + 0x1000u) & ~0x1fffu;
  memcpy(&v, &b, 4);
  return v;
}
static inline void kiln_frag_zero(kiln_frag_c& c) {
  for (int i = 0; i < 256; ++i) c.x[i] = 0.0f;
}
static inline void kiln_frag_load_a(kiln_frag_ab& a, const float* p, unsigned ld) {
  kiln_frag_check(p, ld);
  for (int m = 0; m < 16; ++m)
    for (int k = 0; k < 8; ++k) a.x[m * 8 + k] = p[m + k * ld];
}
static inline void kiln_frag_load_b(kiln_frag_ab& b, const float* p, unsigned ld) {
  kiln_frag_check(p, ld);
  for (int k = 0; k < 8; ++k)
    for (int n = 0; n < 16; ++n) b.x[k * 16 + n] = p[k * ld + n];
}
static inline void kiln_frag_mma(kiln_frag_c& c, const kiln_frag_ab& a, const kiln_frag_ab& b) {
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      float s = c.x[m * 16 + n];
      for (int k = 0; k < 8; ++k) s = fmaf(a.x[m * 8 + k], b.x[k * 16 + n], s);
      c.x[m * 16 + n] = s;
    }
}
static inline void kiln_frag_store(float* p, const kiln_frag_c& c, unsigned ld) {
  kiln_frag_check(p, ld);
  if (threadIdx.x % 32 != 0) return;
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) p[m * ld + n] = c.x[m * 16 + n];
}
#endif
#endif
)";

}  // namespace

int CudaGemm::threads() const {
  if (!tf32) return (bm / tm) * (bn / tn);
  const int frags = (bm / 16) * (bn / 16);
  return std::min(frags, 8) * 32;
}

bool CudaGemm::y_covers_prefix() const {
  if (y_offset != 0) return false;
  // Dims of Y (extent, stride) with extent > 1, by stride: each stride the product of the
  // extents before it.
  std::vector<std::pair<int64_t, int64_t>> dims;
  for (const Batch& b : batch)
    if (b.extent > 1) dims.push_back({std::abs(b.y), b.extent});
  if (m > 1) dims.push_back({std::abs(y_m), m});
  if (n > 1) dims.push_back({std::abs(y_n), n});
  std::sort(dims.begin(), dims.end());
  int64_t expect = 1;
  for (const auto& [stride, extent] : dims) {
    if (stride != expect) return false;
    expect *= extent;
  }
  return true;
}

bool cuda_gemm_tf32_fits(const CudaGemm& g) {
  return g.bm >= 16 && g.bn >= 16 && g.bm % 16 == 0 && g.bn % 16 == 0;
}

float round_to_tf32(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  if ((b & 0x7f800000u) != 0x7f800000u) b = (b + 0x1000u) & ~0x1fffu;
  std::memcpy(&v, &b, 4);
  return v;
}

int64_t CudaGemm::batch_count() const {
  int64_t c = 1;
  for (const Batch& b : batch) c *= b.extent;
  return c;
}

const std::vector<std::vector<int>>& cuda_gemm_tiles() {
  // {bm, bn, tm, tn}: 256 threads each, largest first.
  // {1, 256} is for one row per group (depthwise convolutions): a thread per output.
  static const std::vector<std::vector<int>> tiles = {{64, 64, 4, 4}, {32, 64, 2, 4},
                                                      {32, 32, 2, 2}, {16, 64, 1, 4},
                                                      {8, 128, 1, 4}, {1, 256, 1, 1}};
  return tiles;
}

namespace {

// K cut into at most `splits` chunks of whole `bk` slices: {chunk length, chunks}.
std::pair<int64_t, int64_t> k_chunks(int64_t k, int64_t splits, int64_t bk) {
  k = std::max<int64_t>(k, 1);
  const int64_t chunk =
      std::max<int64_t>(ceil_div(ceil_div(k, std::max<int64_t>(splits, 1)), bk) * bk, bk);
  return {chunk, ceil_div(k, chunk)};
}

// A rough model of one H100 SM per clock, for comparing tilings: f32 FMAs on the SIMT lanes and
// on the TF32 tensor cores as these kernels feed them, bytes of tile loads from L2, and fixed
// costs of a block and of a split (the zeroing launch).
constexpr double kSimtFmaPerClock = 128, kTensorFmaPerClock = 512, kL2BytesPerClock = 32;
constexpr double kBlockClocks = 600, kSplitClocks = 2000;

// The clocks of g's GEMM on `sms` SMs with a tile {bm, bn, tm, tn} (on tensor cores when `tc`)
// and K cut into `splits` chunks: per SM, its share of the blocks, each bound by its FMAs or by
// its tile loads (A and B tiles are reloaded by every block: a thin tile rereads the other
// operand many times), plus the split's zeroing and atomic adds.
double estimate_clocks(const CudaGemm& g, const std::vector<int>& tile, bool tc, int64_t splits,
                       int64_t sms) {
  const int64_t bm = tile[0], bn = tile[1], tm = tile[2], tn = tile[3];
  const auto [chunk, real_splits] = k_chunks(g.k, splits, 16);
  const int64_t batches = std::max<int64_t>(g.batch_count(), 1);
  const int64_t blocks = ceil_div(g.m, bm) * ceil_div(g.n, bn) * batches * real_splits;
  const double per_sm = double(ceil_div(blocks, sms));
  // SIMT threads spend part of their time on shared-memory loads: TM + TN per TM * TN FMAs.
  const double efficiency = tc ? 1.0 : 1.0 / (1.0 + 0.5 * double(tm + tn) / double(tm * tn));
  const double fma =
      double(bm * bn * chunk) / ((tc ? kTensorFmaPerClock : kSimtFmaPerClock) * efficiency);
  const double loads = double((bm + bn) * chunk) * 4.0 / kL2BytesPerClock;
  double clocks = per_sm * (std::max(fma, loads) + kBlockClocks);
  if (real_splits > 1)
    clocks += kSplitClocks +
              double(g.y_elements() * real_splits) * 4.0 / (kL2BytesPerClock * double(sms));
  return clocks;
}

}  // namespace

void choose_cuda_gemm_tiling(CudaGemm* g, int multiprocessors, bool tf32) {
  const int64_t sms = std::max(multiprocessors, 1);
  // Every tiling, on SIMT lanes and (when allowed and the tile fits) on tensor cores, with K
  // whole or, when no activation needs the whole sum and K is long, split into chunks of at
  // least 8 slices; the least estimated time wins, the larger tile and fewer splits on a tie.
  // Grids the launch cannot take (grid.y or grid.z over 65535) are passed over.
  std::vector<int64_t> splits = {1};
  if (g->act == CudaGemm::Act::kNone && g->k >= 256 && g->y_covers_prefix())
    for (int64_t s : {2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64})
      if (g->k / s >= 8 * 16) splits.push_back(s);
  double best = -1;
  for (const std::vector<int>& tile : cuda_gemm_tiles()) {
    for (bool tc : {false, true}) {
      if (tc && !(tf32 && tile[0] % 16 == 0 && tile[1] % 16 == 0)) continue;
      for (int64_t s : splits) {
        if (ceil_div(g->m, tile[0]) > 65535 ||
            g->batch_count() * k_chunks(g->k, s, 16).second > 65535)
          continue;
        const double t = estimate_clocks(*g, tile, tc, s, sms);
        if (best >= 0 && t >= best * 0.98) continue;
        best = t;
        g->bm = tile[0];
        g->bn = tile[1];
        g->tm = tile[2];
        g->tn = tile[3];
        g->tf32 = tc;
        g->bk = 16;
        split_cuda_gemm_k(g, s);
      }
    }
  }
}

void split_cuda_gemm_k(CudaGemm* g, int64_t splits) {
  const auto [chunk, chunks] = k_chunks(g->k, splits, g->bk);
  g->k_chunk = chunk;
  g->splits = int(chunks);
}

std::string cuda_gemm_key(const CudaGemm& g) {
  std::string k =
      "gemm1:" + std::to_string(g.m) + "," + std::to_string(g.n) + "," + std::to_string(g.k) + ";b";
  for (const CudaGemm::Batch& b : g.batch)
    k += "[" + std::to_string(b.extent) + "," + std::to_string(b.a) + "," + std::to_string(b.b) +
         "," + std::to_string(b.y) + "," + std::to_string(b.bias) + "]";
  k += ";s" + std::to_string(g.a_m) + "," + std::to_string(g.a_k) + "," + std::to_string(g.b_k) +
       "," + std::to_string(g.b_n) + "," + std::to_string(g.y_m) + "," + std::to_string(g.y_n);
  k += ";ab" + cuda_f32_literal(g.alpha) + "," + cuda_f32_literal(g.beta);
  if (g.has_bias) k += ";bias" + std::to_string(g.bias_m) + "," + std::to_string(g.bias_n);
  if (g.conv)
    for (int64_t v :
         {g.h, g.w, g.kr, g.ks, g.ow, g.stride_h, g.stride_w, g.pad_t, g.pad_l, g.dil_h, g.dil_w})
      k += ";c" + std::to_string(v);
  if (g.has_residual) k += ";res" + std::to_string(g.residual_buf);
  k += ";act" + std::to_string(int(g.act)) + "," + cuda_f32_literal(g.lo) + "," +
       cuda_f32_literal(g.hi);
  k += ";buf" + std::to_string(g.num_buffers) + "," + std::to_string(g.a_buf) + "," +
       std::to_string(g.b_buf) + "," + std::to_string(g.bias_buf) + "," + std::to_string(g.y_buf);
  k += ";t" + std::to_string(g.bm) + "," + std::to_string(g.bn) + "," + std::to_string(g.bk) + "," +
       std::to_string(g.tm) + "," + std::to_string(g.tn) + "," + std::to_string(g.splits) + "," +
       std::to_string(g.k_chunk);
  if (g.tf32) k += ";tf32";
  if (g.y_offset != 0) k += ";yoff" + std::to_string(g.y_offset);
  return k;
}

std::string cuda_gemm_hash(const CudaGemm& g) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(fnv1a64(cuda_gemm_key(g))));
  return std::string("gemm") + buf;
}

CudaSource print_cuda_gemm(const CudaGemm& g, const std::string& name) {
  // ---- consistency ----
  if (g.m <= 0 || g.n <= 0 || g.k < 0) fail("empty or negative dims");
  if (g.tf32 ? !cuda_gemm_tf32_fits(g) || g.bk % 8 != 0 : g.bm % g.tm || g.bn % g.tn || g.bk <= 0)
    fail("tile not a multiple of the thread tile");
  const int threads = g.threads();
  if (threads < 32 || threads > 1024) fail("threads per block out of range");
  if (g.k_chunk <= 0 || g.k_chunk % g.bk || g.splits < 1 || int64_t(g.splits) * g.k_chunk < g.k ||
      (g.splits - 1) * g.k_chunk >= std::max<int64_t>(g.k, 1))
    fail("inconsistent split of K");
  if (g.splits > 1 && g.act != CudaGemm::Act::kNone) fail("an activation needs the whole sum");
  if (g.splits > 1 && !g.y_covers_prefix()) fail("a split GEMM zeroes y[0, y_elements)");
  for (int b : {g.a_buf, g.b_buf, g.y_buf})
    if (b < 0 || b >= g.num_buffers) fail("operand buffer out of range");
  if (g.has_bias && (g.bias_buf < 0 || g.bias_buf >= g.num_buffers))
    fail("bias buffer out of range");
  if (g.has_residual && (g.residual_buf < 0 || g.residual_buf >= g.num_buffers))
    fail("residual buffer out of range");
  const int64_t grid_x = ceil_div(g.n, g.bn), grid_y = ceil_div(g.m, g.bm);
  const int64_t grid_z = g.batch_count() * g.splits;
  if (grid_x > std::numeric_limits<int32_t>::max() || grid_y > 65535 || grid_z > 65535)
    fail("grid too large");

  // 32-bit index arithmetic when every offset fits (the usual case: cheaper div/mod).
  int64_t most = std::max<int64_t>(g.y_elements(), int64_t(grid_x) * g.bn);
  most = std::max(most, reach(g, &CudaGemm::Batch::a, g.a_m, g.a_k, g.k + g.bk));
  most = std::max(most, g.y_offset + reach(g, &CudaGemm::Batch::y, g.y_m, g.y_n, g.n + g.bn));
  if (g.has_bias) most = std::max(most, reach(g, &CudaGemm::Batch::bias, g.bias_m, g.bias_n, g.n));
  if (g.conv) {
    int64_t c = g.k / std::max<int64_t>(g.kr * g.ks, 1);
    most = std::max(most, reach(g, &CudaGemm::Batch::b, 0, 0, 0) + c * g.h * g.w + g.k);
  } else {
    most = std::max(
        most, reach(g, &CudaGemm::Batch::b, 0, g.b_k, g.k + g.bk) + (g.n + g.bn) * std::abs(g.b_n));
  }
  const bool narrow = most < (int64_t(1) << 30);
  const std::string I = narrow ? "int" : "long long";
  auto lit = [&](int64_t v) { return narrow ? std::to_string(v) : num(v); };
  auto tm_ = [&](const std::string& v, int64_t stride) {
    if (stride == 0) return std::string();
    if (stride == 1) return " + " + v;
    return " + " + v + " * " + lit(stride);
  };

  const int tx_count = g.bn / g.tn, ty_count = g.bm / g.tm;
  // An operand with unit K stride is loaded K-fastest; its shared tile then gets a padding column.
  const bool a_kfast = g.a_k == 1 && g.a_m != 1;
  const bool b_kfast = !g.conv && g.b_k == 1 && g.b_n != 1;
  // TF32 fragments need leading dimensions that are multiples of 4 floats: a 4-float pad always.
  const int a_ld = g.bm + (g.tf32 ? 4 : a_kfast ? 1 : 0);
  const int b_ld = g.bn + (g.tf32 ? 4 : b_kfast ? 1 : 0);
  const int c_ld = g.bn + 4;
  const int warps = threads / 32, frags_n = g.bn / 16;
  const int frags_per_warp = g.tf32 ? (g.bm / 16) * frags_n / warps : 0;
  if (g.tf32 && frags_per_warp * warps != (g.bm / 16) * frags_n) fail("fragments not per warp");
  // Staged A and B values: rounded to TF32 for the tensor cores.
  auto staged = [&](const std::string& v) { return g.tf32 ? "kiln_tf32(" + v + ")" : v; };

  CudaSource src;
  src.code = "// Kiln GEMM kernel " + name + ": " + cuda_gemm_key(g) + "\n" + cuda_prelude();
  if (g.tf32) src.code += kTf32Fragments;
  std::string sig = "(";
  for (int b = 0; b < g.num_buffers; ++b)
    sig += std::string(b ? ", " : "") + (b == g.y_buf ? "float* " : "const float* ") + "b" +
           std::to_string(b);
  sig += ")";
  std::string& c = src.code;

  if (g.splits > 1) {
    CudaFunction z;
    z.name = name + "_zero";
    z.grid_extent = imm(g.y_elements());
    c += "extern \"C\" __global__ void __launch_bounds__(" + std::to_string(kCudaBlockSize) + ") " +
         z.name + sig + " {\n";
    c += "  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < " +
         num(g.y_elements()) + "; i += (long long)gridDim.x * blockDim.x) b" +
         std::to_string(g.y_buf) + "[i] = 0.0f;\n}\n";
    src.functions.push_back(z);
  }

  CudaFunction f;
  f.name = name;
  f.block = threads;
  f.grid[0] = unsigned(grid_x);
  f.grid[1] = unsigned(grid_y);
  f.grid[2] = unsigned(grid_z);
  src.functions.push_back(f);

  const std::string A = "b" + std::to_string(g.a_buf), B = "b" + std::to_string(g.b_buf),
                    Y = "b" + std::to_string(g.y_buf),
                    BIAS = g.has_bias ? "b" + std::to_string(g.bias_buf) : "";
  const std::string T = std::to_string(threads);
  c += "extern \"C\" __global__ void __launch_bounds__(" + T + ") " + name + sig + " {\n";
  const std::string align = g.tf32 ? "__align__(32) " : "";
  c += "  __shared__ " + align + "float kiln_as[" + std::to_string(g.bk) + "][" +
       std::to_string(a_ld) + "];\n";
  c += "  __shared__ " + align + "float kiln_bs[" + std::to_string(g.bk) + "][" +
       std::to_string(b_ld) + "];\n";
  if (g.tf32)
    c += "  __shared__ " + align + "float kiln_cs[" + std::to_string(g.bm) + "][" +
         std::to_string(c_ld) + "];\n";
  c += "  const int tid = (int)threadIdx.x;\n";
  if (g.tf32)
    c += "  const int warp = tid / 32;\n";
  else
    c += "  const int tx = tid % " + std::to_string(tx_count) + ", ty = tid / " +
         std::to_string(tx_count) + ";\n";
  c += "  const " + I + " m0 = (" + I + ")blockIdx.y * " + lit(g.bm) + ", n0 = (" + I +
       ")blockIdx.x * " + lit(g.bn) + ";\n";
  c += "  " + I + " z = (" + I + ")blockIdx.z;\n";
  c += "  const " + I + " split = z % " + lit(g.splits) + ";\n";
  c += "  z /= " + lit(g.splits) + ";\n";
  c += "  " + I + " ao = 0, bo = 0, yo = " + lit(g.y_offset) + ", co = 0;\n";
  for (size_t d = g.batch.size(); d-- > 0;) {  // innermost batch dim first
    const CudaGemm::Batch& bd = g.batch[d];
    if (bd.extent == 1) continue;
    c += "  {\n    const " + I + " i = z % " + lit(bd.extent) + ";\n    z /= " + lit(bd.extent) +
         ";\n";
    for (auto [acc, stride] :
         {std::pair<const char*, int64_t>{"ao", bd.a}, {"bo", bd.b}, {"yo", bd.y}, {"co", bd.bias}})
      if (stride != 0) c += std::string("    ") + acc + " +=" + tm_("i", stride).substr(2) + ";\n";
    c += "  }\n";
  }
  c += "  const " + I + " k_begin = split * " + lit(g.k_chunk) + ";\n";
  c += "  const " + I + " k_end = kiln_min((" + I + ")" + lit(g.k) + ", (" + I + ")(k_begin + " +
       lit(g.k_chunk) + "));\n";
  if (g.tf32) {
    c += "  kiln_frag_c acc[" + std::to_string(frags_per_warp) + "];\n";
    c += "  #pragma unroll\n  for (int f = 0; f < " + std::to_string(frags_per_warp) +
         "; ++f) kiln_frag_zero(acc[f]);\n";
  } else {
    c += "  float acc[" + std::to_string(g.tm) + "][" + std::to_string(g.tn) + "];\n";
    c += "  #pragma unroll\n  for (int i = 0; i < " + std::to_string(g.tm) +
         "; ++i)\n    #pragma unroll\n    for (int j = 0; j < " + std::to_string(g.tn) +
         "; ++j) acc[i][j] = 0.0f;\n";
  }
  // The warp's f-th fragment: row fm, column fn of the block's 16 x 16 fragments.
  const std::string frag_pos = "      const int fi = warp + f * " + std::to_string(warps) +
                               ", fm = fi / " + std::to_string(frags_n) + ", fn = fi % " +
                               std::to_string(frags_n) + ";\n";
  // Each thread loads every threads-th element of a tile (a guard when they do not divide): the
  // loop over them and the element's (kk, `name`) position, K-fastest or `name`-fastest.
  auto tile_loop = [&](const std::string& name, int extent, bool kfast) {
    const int elements = extent * g.bk;
    c += "    #pragma unroll\n    for (int e = 0; e < " +
         std::to_string((elements + threads - 1) / threads) + "; ++e) {\n";
    c += "      const int q = tid + e * " + T + ";\n";
    if (elements % threads != 0) c += "      if (q >= " + std::to_string(elements) + ") break;\n";
    const std::string fast = kfast ? "kk" : name, slow = kfast ? name : "kk";
    const std::string fast_extent = std::to_string(kfast ? g.bk : extent);
    c += "      const int " + fast + " = q % " + fast_extent + ", " + slow + " = q / " +
         fast_extent + ";\n";
  };
  // A convolution's B elements keep their column (output pixel) across the K loop: its window
  // origin and range check are computed once.
  const int b_per_thread = (g.bn * g.bk + threads - 1) / threads;
  if (g.conv) {
    const std::string e = std::to_string(b_per_thread);
    c += "  " + I + " kiln_ih0[" + e + "] = {}, kiln_iw0[" + e + "] = {};\n";
    c += "  bool kiln_nok[" + e + "] = {};\n";
    tile_loop("nn", g.bn, false);
    c += "      const " + I + " gn = n0 + nn;\n";
    c += "      kiln_nok[e] = gn < " + lit(g.n) + ";\n";
    c += "      kiln_ih0[e] = (gn / " + lit(g.ow) + ") * " + lit(g.stride_h) + " - " +
         lit(g.pad_t) + ";\n";
    c += "      kiln_iw0[e] = (gn % " + lit(g.ow) + ") * " + lit(g.stride_w) + " - " +
         lit(g.pad_l) + ";\n";
    c += "    }\n";
  }
  c += "  for (" + I + " k0 = k_begin; k0 < k_end; k0 += " + lit(g.bk) + ") {\n";

  // A tile: BM x BK elements.
  tile_loop("mm", g.bm, a_kfast);
  c += "      const " + I + " gm = m0 + mm, gk = k0 + kk;\n";
  c += "      kiln_as[kk][mm] = (gm < " + lit(g.m) + " && gk < k_end) ? " +
       staged(A + "[ao" + tm_("gm", g.a_m) + tm_("gk", g.a_k) + "]") + " : 0.0f;\n";
  c += "    }\n";

  // B tile: BK x BN elements.
  tile_loop("nn", g.bn, b_kfast);
  c += "      const " + I + (g.conv ? "" : " gn = n0 + nn,") + " gk = k0 + kk;\n";
  c += "      float v = 0.0f;\n";
  if (g.conv) {
    const int64_t rs = g.kr * g.ks;
    c += "      if (kiln_nok[e] && gk < k_end) {\n";
    c += "        const " + I + " ci = gk / " + lit(rs) + ", rs = gk % " + lit(rs) + ";\n";
    c += "        const " + I + " ih = kiln_ih0[e] + (rs / " + lit(g.ks) + ") * " + lit(g.dil_h) +
         ";\n";
    c += "        const " + I + " iw = kiln_iw0[e] + (rs % " + lit(g.ks) + ") * " + lit(g.dil_w) +
         ";\n";
    c += "        if (ih >= 0 && ih < " + lit(g.h) + " && iw >= 0 && iw < " + lit(g.w) + ")\n";
    c +=
        "          v = " + B + "[bo + ci * " + lit(g.h * g.w) + " + ih * " + lit(g.w) + " + iw];\n";
    c += "      }\n";
  } else {
    c += "      if (gn < " + lit(g.n) + " && gk < k_end) v = " + B + "[bo" + tm_("gk", g.b_k) +
         tm_("gn", g.b_n) + "];\n";
  }
  c += "      kiln_bs[kk][nn] = " + staged("v") + ";\n    }\n";
  c += "    __syncthreads();\n";
  if (g.tf32) {
    c += "    #pragma unroll\n    for (int kk = 0; kk < " + std::to_string(g.bk) + "; kk += 8) {\n";
    c += "      #pragma unroll\n      for (int f = 0; f < " + std::to_string(frags_per_warp) +
         "; ++f) {\n";
    c += "  " + frag_pos;
    c += "        kiln_frag_ab a, b;\n";
    c += "        kiln_frag_load_a(a, &kiln_as[kk][fm * 16], " + std::to_string(a_ld) + ");\n";
    c += "        kiln_frag_load_b(b, &kiln_bs[kk][fn * 16], " + std::to_string(b_ld) + ");\n";
    c += "        kiln_frag_mma(acc[f], a, b);\n";
    c += "      }\n    }\n    __syncthreads();\n  }\n";
  } else {
    c += "    #pragma unroll\n    for (int kk = 0; kk < " + std::to_string(g.bk) + "; ++kk) {\n";
    c += "      float av[" + std::to_string(g.tm) + "], bv[" + std::to_string(g.tn) + "];\n";
    c += "      #pragma unroll\n      for (int i = 0; i < " + std::to_string(g.tm) +
         "; ++i) av[i] = kiln_as[kk][ty + i * " + std::to_string(ty_count) + "];\n";
    c += "      #pragma unroll\n      for (int j = 0; j < " + std::to_string(g.tn) +
         "; ++j) bv[j] = kiln_bs[kk][tx + j * " + std::to_string(tx_count) + "];\n";
    c += "      #pragma unroll\n      for (int i = 0; i < " + std::to_string(g.tm) +
         "; ++i)\n        #pragma unroll\n        for (int j = 0; j < " + std::to_string(g.tn) +
         "; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);\n";
    c += "    }\n    __syncthreads();\n  }\n";
  }

  // Epilogue: every element of the block's tile in range, its sum in `sum`.
  std::string sum;
  if (g.tf32) {  // the warps' fragments through shared memory, then a thread per element
    c += "  #pragma unroll\n  for (int f = 0; f < " + std::to_string(frags_per_warp) + "; ++f) {\n";
    c += frag_pos.substr(2);
    c += "    kiln_frag_store(&kiln_cs[fm * 16][fn * 16], acc[f], " + std::to_string(c_ld) +
         ");\n  }\n  __syncthreads();\n";
    // Unrolled twice: fully, ptxas spills a register in some (seen with a residual add).
    c += "  #pragma unroll 2\n  for (int e = tid; e < " + std::to_string(g.bm * g.bn) +
         "; e += " + T + ") {\n";
    c += "    const int mm = e / " + std::to_string(g.bn) + ", nn = e % " + std::to_string(g.bn) +
         ";\n";
    c += "    const " + I + " gm = m0 + mm, gn = n0 + nn;\n";
    c += "    if (gm >= " + lit(g.m) + " || gn >= " + lit(g.n) + ") continue;\n";
    c += "    {\n";
    sum = "kiln_cs[mm][nn]";
  } else {
    c += "  #pragma unroll\n  for (int i = 0; i < " + std::to_string(g.tm) + "; ++i) {\n";
    c += "    const " + I + " gm = m0 + ty + i * " + std::to_string(ty_count) + ";\n";
    c += "    if (gm >= " + lit(g.m) + ") continue;\n";
    c += "    #pragma unroll\n    for (int j = 0; j < " + std::to_string(g.tn) + "; ++j) {\n";
    c += "      const " + I + " gn = n0 + tx + j * " + std::to_string(tx_count) + ";\n";
    c += "      if (gn >= " + lit(g.n) + ") continue;\n";
    sum = "acc[i][j]";
  }
  c += "      float v = " + (g.alpha == 1.0f ? sum : sum + " * " + cuda_f32_literal(g.alpha)) +
       ";\n";
  if (g.has_bias) {
    std::string bias = BIAS + "[co" + tm_("gm", g.bias_m) + tm_("gn", g.bias_n) + "]";
    if (g.beta != 1.0f) bias = bias + " * " + cuda_f32_literal(g.beta);
    c += std::string(g.splits > 1 ? "      if (split == 0) " : "      ") + "v += " + bias + ";\n";
  }
  if (g.has_residual)
    c += std::string(g.splits > 1 ? "      if (split == 0) " : "      ") + "v += b" +
         std::to_string(g.residual_buf) + "[yo" + tm_("gm", g.y_m) + tm_("gn", g.y_n) + "];\n";
  switch (g.act) {
    case CudaGemm::Act::kNone:
      break;
    case CudaGemm::Act::kRelu:
      c += "      v = v < 0.0f ? 0.0f : v;\n";
      break;
    case CudaGemm::Act::kClip:
      c += "      v = kiln_fmin(kiln_fmax(v, " + cuda_f32_literal(g.lo) + "), " +
           cuda_f32_literal(g.hi) + ");\n";
      break;
    case CudaGemm::Act::kGelu:
      c += "      v = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));\n";
      break;
    case CudaGemm::Act::kGeluTanh:
      c += "      v = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * "
           "v)));\n";
      break;
  }
  const std::string at = Y + "[yo" + tm_("gm", g.y_m) + tm_("gn", g.y_n) + "]";
  if (g.splits > 1)
    c += "      atomicAdd(&" + at + ", v);\n";
  else
    c += "      " + at + " = v;\n";
  c += "    }\n  }\n}\n";
  return src;
}

}  // namespace kiln::jit
