// Tiled GEMM kernels as CUDA C (see cuda_gemm.h).
#include "jit/cuda_gemm.h"

#include <algorithm>
#include <cstdio>
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

}  // namespace

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

void choose_cuda_gemm_tiling(CudaGemm* g, int multiprocessors) {
  const int64_t sms = std::max(multiprocessors, 1);
  const int64_t batches = std::max<int64_t>(g->batch_count(), 1);
  // Score: the useful fraction of the tile's work, times how much of the GPU the grid fills,
  // times the tile's arithmetic intensity relative to the largest (smaller tiles reload more).
  double best = -1;
  const auto& tiles = cuda_gemm_tiles();
  for (size_t t = 0; t < tiles.size(); ++t) {
    const int bm = tiles[t][0], bn = tiles[t][1];
    const int64_t tm = ceil_div(g->m, bm), tn = ceil_div(g->n, bn);
    const double useful = double(g->m) * double(g->n) / (double(tm * bm) * double(tn * bn));
    const double blocks = double(tm * tn * batches);
    const double fill = std::min(1.0, blocks / double(sms));
    const double intensity = (double(bm) * bn / (bm + bn)) / 32.0;  // 64x64 gives 1
    const double score = useful * fill * (0.5 + 0.5 * intensity);
    if (score > best + 1e-9) {
      best = score;
      g->bm = bm;
      g->bn = bn;
      g->tm = tiles[t][2];
      g->tn = tiles[t][3];
    }
  }
  g->bk = 16;
  // Split K while the grid is under two blocks per SM, keeping chunks of at least 8 slices.
  const int64_t blocks = ceil_div(g->m, g->bm) * ceil_div(g->n, g->bn) * batches;
  int64_t splits = 1;
  if (g->act == CudaGemm::Act::kNone && g->k >= 256 && blocks < 2 * sms) {
    splits = std::min<int64_t>(ceil_div(2 * sms, blocks), g->k / (8 * g->bk));
    splits = std::clamp<int64_t>(splits, 1, 64);
  }
  split_cuda_gemm_k(g, splits);
}

void split_cuda_gemm_k(CudaGemm* g, int64_t splits) {
  const int64_t k = std::max<int64_t>(g->k, 1);
  g->k_chunk =
      std::max<int64_t>(ceil_div(ceil_div(k, std::max<int64_t>(splits, 1)), g->bk) * g->bk, g->bk);
  g->splits = int(ceil_div(k, g->k_chunk));
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
  if (g.bm % g.tm || g.bn % g.tn || g.bk <= 0) fail("tile not a multiple of the thread tile");
  const int threads = g.threads();
  if (threads < 32 || threads > 1024) fail("threads per block out of range");
  if (g.k_chunk <= 0 || g.k_chunk % g.bk || g.splits < 1 || int64_t(g.splits) * g.k_chunk < g.k ||
      (g.splits - 1) * g.k_chunk >= std::max<int64_t>(g.k, 1))
    fail("inconsistent split of K");
  if (g.splits > 1 && g.act != CudaGemm::Act::kNone) fail("an activation needs the whole sum");
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
  most = std::max(most, reach(g, &CudaGemm::Batch::y, g.y_m, g.y_n, g.n + g.bn));
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
  const int a_ld = g.bm + (a_kfast ? 1 : 0), b_ld = g.bn + (b_kfast ? 1 : 0);

  CudaSource src;
  src.code = "// Kiln GEMM kernel " + name + ": " + cuda_gemm_key(g) + "\n" + cuda_prelude();
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
  c += "  __shared__ float kiln_as[" + std::to_string(g.bk) + "][" + std::to_string(a_ld) + "];\n";
  c += "  __shared__ float kiln_bs[" + std::to_string(g.bk) + "][" + std::to_string(b_ld) + "];\n";
  c += "  const int tid = (int)threadIdx.x;\n";
  c += "  const int tx = tid % " + std::to_string(tx_count) + ", ty = tid / " +
       std::to_string(tx_count) + ";\n";
  c += "  const " + I + " m0 = (" + I + ")blockIdx.y * " + lit(g.bm) + ", n0 = (" + I +
       ")blockIdx.x * " + lit(g.bn) + ";\n";
  c += "  " + I + " z = (" + I + ")blockIdx.z;\n";
  c += "  const " + I + " split = z % " + lit(g.splits) + ";\n";
  c += "  z /= " + lit(g.splits) + ";\n";
  c += "  " + I + " ao = 0, bo = 0, yo = 0, co = 0;\n";
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
  c += "  float acc[" + std::to_string(g.tm) + "][" + std::to_string(g.tn) + "];\n";
  c += "  #pragma unroll\n  for (int i = 0; i < " + std::to_string(g.tm) +
       "; ++i)\n    #pragma unroll\n    for (int j = 0; j < " + std::to_string(g.tn) +
       "; ++j) acc[i][j] = 0.0f;\n";
  c += "  for (" + I + " k0 = k_begin; k0 < k_end; k0 += " + lit(g.bk) + ") {\n";

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
  // A tile: BM x BK elements.
  tile_loop("mm", g.bm, a_kfast);
  c += "      const " + I + " gm = m0 + mm, gk = k0 + kk;\n";
  c += "      kiln_as[kk][mm] = (gm < " + lit(g.m) + " && gk < k_end) ? " + A + "[ao" +
       tm_("gm", g.a_m) + tm_("gk", g.a_k) + "] : 0.0f;\n";
  c += "    }\n";

  // B tile: BK x BN elements.
  tile_loop("nn", g.bn, b_kfast);
  c += "      const " + I + " gn = n0 + nn, gk = k0 + kk;\n";
  c += "      float v = 0.0f;\n";
  if (g.conv) {
    const int64_t rs = g.kr * g.ks;
    c += "      if (gn < " + lit(g.n) + " && gk < k_end) {\n";
    c += "        const " + I + " ci = gk / " + lit(rs) + ", rs = gk % " + lit(rs) + ";\n";
    c += "        const " + I + " oh = gn / " + lit(g.ow) + ", ow = gn % " + lit(g.ow) + ";\n";
    c += "        const " + I + " ih = oh * " + lit(g.stride_h) + " - " + lit(g.pad_t) +
         " + (rs / " + lit(g.ks) + ") * " + lit(g.dil_h) + ";\n";
    c += "        const " + I + " iw = ow * " + lit(g.stride_w) + " - " + lit(g.pad_l) +
         " + (rs % " + lit(g.ks) + ") * " + lit(g.dil_w) + ";\n";
    c += "        if (ih >= 0 && ih < " + lit(g.h) + " && iw >= 0 && iw < " + lit(g.w) + ")\n";
    c +=
        "          v = " + B + "[bo + ci * " + lit(g.h * g.w) + " + ih * " + lit(g.w) + " + iw];\n";
    c += "      }\n";
  } else {
    c += "      if (gn < " + lit(g.n) + " && gk < k_end) v = " + B + "[bo" + tm_("gk", g.b_k) +
         tm_("gn", g.b_n) + "];\n";
  }
  c += "      kiln_bs[kk][nn] = v;\n    }\n";
  c += "    __syncthreads();\n";
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

  // Epilogue.
  c += "  #pragma unroll\n  for (int i = 0; i < " + std::to_string(g.tm) + "; ++i) {\n";
  c += "    const " + I + " gm = m0 + ty + i * " + std::to_string(ty_count) + ";\n";
  c += "    if (gm >= " + lit(g.m) + ") continue;\n";
  c += "    #pragma unroll\n    for (int j = 0; j < " + std::to_string(g.tn) + "; ++j) {\n";
  c += "      const " + I + " gn = n0 + tx + j * " + std::to_string(tx_count) + ";\n";
  c += "      if (gn >= " + lit(g.n) + ") continue;\n";
  c += "      float v = " +
       (g.alpha == 1.0f ? std::string("acc[i][j]") : "acc[i][j] * " + cuda_f32_literal(g.alpha)) +
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
