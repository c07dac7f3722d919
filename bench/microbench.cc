// Microbenchmarks of the fast CPU kernels (src/kernels/fast): square GEMMs, the exact GEMM shapes
// of the shared transformer models, attention's dynamic GEMMs, and the conv layers of resnet18,
// mobilenet_v2 and squeezenet at batch 1. Each reports GFLOPS and pct_peak against the FMA peak
// of the widest ISA, measured once at start (independent accumulator chains) and printed.
// Single-threaded by default; `--threads=N` runs in an arena of N threads.
#include <benchmark/benchmark.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(KILN_BENCH_EIGEN)
#include <Eigen/Core>
#endif

#include "kernels/fast/conv.h"
#include "kernels/fast/gemm.h"
#include "kernels/fast/nchwc.h"
#include "kernels/fast/winograd.h"

namespace fast = kiln::kernels::fast;

namespace {

double g_peak_gflops = 1;
int g_threads = 1;

#if defined(__x86_64__)
// The accumulators live in named registers (unrolled), so the loop is bound by FMA throughput.
__attribute__((target("avx512f"))) double fma_flops_avx512(int64_t iters) {
  __m512 acc[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
#pragma GCC unroll 16
  for (int i = 1; i < 16; ++i) sum = _mm512_add_ps(sum, acc[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, sum);
  benchmark::DoNotOptimize(out[0]);
  return static_cast<double>(iters) * 16 * 16 * 2;
}

__attribute__((target("avx2,fma"))) double fma_flops_avx2(int64_t iters) {
  __m256 acc[12];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
#pragma GCC unroll 12
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, sum);
  benchmark::DoNotOptimize(out[0]);
  return static_cast<double>(iters) * 12 * 8 * 2;
}
#endif

/// Single-core FMA peak in GFLOP/s on the widest ISA (best of several runs).
double measure_peak() {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    // Thread CPU time, like the benchmark counters: the machine may be shared.
    timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    double flops = 1e9;  // generic: report 1 GFLOP/s so pct_peak stays finite
#if defined(__x86_64__)
    const int level = fast::simd_level();
    if (level >= 3) {
      flops = fma_flops_avx512(20'000'000);
    } else if (level >= 2) {
      flops = fma_flops_avx2(20'000'000);
    }
#endif
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    const double s = static_cast<double>(t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    best = std::max(best, flops / s / 1e9);
  }
  return best;
}

std::vector<float> random_floats(size_t n) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void set_counters(benchmark::State& state, double flops_per_iter) {
  const double gflop = flops_per_iter * static_cast<double>(state.iterations()) / 1e9;
  state.counters["GFLOPS"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
  state.counters["pct_peak"] =
      benchmark::Counter(gflop * 100 / g_peak_gflops, benchmark::Counter::kIsRate);
}

void bench_gemm(benchmark::State& state, int64_t m, int64_t n, int64_t k) {
  const std::vector<float> a = random_floats(static_cast<size_t>(m * k));
  const std::vector<float> b = random_floats(static_cast<size_t>(k * n));
  std::vector<float> c(static_cast<size_t>(m * n));
  const fast::PackedB packed = fast::PackedB::pack(b.data(), k, n, false);
  fast::AlignedBuffer scratch(fast::gemm_scratch_bytes(m, n, k) / 4 + 1);
  for (auto _ : state) {
    fast::gemm(m, n, k, a.data(), k, false, packed, c.data(), n, {}, scratch.data());
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, 2.0 * m * n * k);
}

// Attention's Q*K^T (trans_b) with both operands dynamic.
void bench_gemm_dynamic(benchmark::State& state, int64_t m, int64_t n, int64_t k, bool trans_b) {
  const std::vector<float> a = random_floats(static_cast<size_t>(m * k));
  const std::vector<float> b = random_floats(static_cast<size_t>(k * n));
  std::vector<float> c(static_cast<size_t>(m * n));
  fast::AlignedBuffer scratch(fast::gemm_dynamic_scratch_bytes(m, n, k) / 4 + 1);
  for (auto _ : state) {
    fast::gemm_dynamic(m, n, k, a.data(), k, false, b.data(), trans_b ? k : n, trans_b, c.data(), n,
                       {}, scratch.data());
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, 2.0 * m * n * k);
}

#if defined(KILN_BENCH_EIGEN)
void bench_eigen_gemm(benchmark::State& state, int64_t m, int64_t n, int64_t k) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat a = Mat::Random(m, k), b = Mat::Random(k, n), c(m, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, 2.0 * m * n * k);
}
#endif

struct ConvCase {
  const char* name;
  fast::ConvShape shape;
};

fast::ConvShape conv(int64_t c, int64_t hw, int64_t k, int64_t rs, int64_t stride, int64_t pad,
                     int64_t group = 1) {
  fast::ConvShape s{1, c, hw, hw, k, rs, rs};
  s.stride_h = s.stride_w = stride;
  s.pad_t = s.pad_l = s.pad_b = s.pad_r = pad;
  s.group = group;
  return s;
}

// One convolution layer with bias and relu: on NCHW data (fast::Conv2d), or `blocked` with the
// output in NCHWc and the input too (inside a conv chain) or NCHW (`from_nchw`: a chain's first
// convolution) (fast::ConvNchwc), or as Winograd F(2x2, 3x3) on blocked data. GFLOPS count the
// direct convolution's multiply-adds for every algorithm.
void bench_conv(benchmark::State& state, fast::ConvShape shape, bool blocked, bool from_nchw,
                bool winograd) {
  const fast::Activation relu{fast::Activation::Kind::kRelu};
  const int64_t cb = blocked ? fast::nchwc_block() : 1;  // 1: NCHW sizes
  const std::vector<float> w =
      random_floats(static_cast<size_t>(shape.k * shape.c / shape.group * shape.r * shape.s));
  const std::vector<float> bias = random_floats(static_cast<size_t>(shape.k));
  const std::vector<float> x = random_floats(
      static_cast<size_t>(shape.n * fast::nchwc_blocks(shape.c, cb) * cb * shape.h * shape.w));
  std::vector<float> y(static_cast<size_t>(shape.n * fast::nchwc_blocks(shape.k, cb) * cb *
                                           shape.out_h() * shape.out_w()));
  auto measure = [&](const auto& op) {
    fast::AlignedBuffer scratch(op.scratch_bytes() / 4 + 1);
    for (auto _ : state) {
      op.run(x.data(), y.data(), nullptr, scratch.data());
      benchmark::DoNotOptimize(y.data());
    }
    state.SetLabel(op.algorithm());
  };
  if (winograd) {
    measure(fast::WinogradConv(shape, fast::WinogradWeights::pack(shape, w.data()), bias.data(),
                               relu, true, true));
  } else if (blocked) {
    measure(fast::ConvNchwc(shape, fast::NchwcWeights::pack(shape, w.data()), bias.data(), relu,
                            !from_nchw, true));
  } else {
    measure(fast::Conv2d(shape, w.data(), bias.data(), relu));
  }
  set_counters(state, 2.0 * shape.n * shape.k * shape.out_h() * shape.out_w() *
                          (shape.c / shape.group) * shape.r * shape.s);
}

// Multi-threaded runs are timed (and rated) by wall clock; single-threaded ones by CPU time.
template <class... Args>
void add(const std::string& name, Args&&... args) {
  benchmark::internal::Benchmark* b =
      benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...);
  if (g_threads > 1) b->UseRealTime();
}

void register_all() {
  const int64_t squares[] = {64, 128, 256, 512, 1024};
  for (int64_t s : squares) {
    const std::string name =
        "gemm/" + std::to_string(s) + "/" + std::to_string(s) + "/" + std::to_string(s);
    add(name.c_str(), bench_gemm, s, s, s);
  }
  // bert_mini / gpt_mini: hidden 256, FFN 1024, M = batch * seq.
  const int64_t model_shapes[][3] = {{128, 256, 256}, {128, 1024, 256}, {128, 256, 1024},
                                     {8, 256, 256},   {1, 256, 256},    {1, 1024, 256},
                                     {1, 256, 1024},  {1024, 256, 256}, {1024, 1024, 256}};
  for (const auto& s : model_shapes) {
    const std::string name =
        "gemm/" + std::to_string(s[0]) + "/" + std::to_string(s[1]) + "/" + std::to_string(s[2]);
    add(name.c_str(), bench_gemm, s[0], s[1], s[2]);
  }
  add("gemm_dynamic_qkt/128/128/64", bench_gemm_dynamic, 128, 128, 64, true);
  add("gemm_dynamic_pv/128/64/128", bench_gemm_dynamic, 128, 64, 128, false);
#if defined(KILN_BENCH_EIGEN)
  add("eigen_gemm/512/512/512", bench_eigen_gemm, 512, 512, 512);
#endif
  const ConvCase convs[] = {
      {"conv/resnet18_7x7_s2", conv(3, 224, 64, 7, 2, 3)},
      {"conv/resnet18_3x3_64_56", conv(64, 56, 64, 3, 1, 1)},
      {"conv/resnet18_3x3_s2_64_128", conv(64, 56, 128, 3, 2, 1)},
      {"conv/resnet18_1x1_s2_64_128", conv(64, 56, 128, 1, 2, 0)},
      {"conv/resnet18_3x3_128_28", conv(128, 28, 128, 3, 1, 1)},
      {"conv/resnet18_3x3_256_14", conv(256, 14, 256, 3, 1, 1)},
      {"conv/resnet18_3x3_512_7", conv(512, 7, 512, 3, 1, 1)},
      {"conv/mobilenet_dw_3x3_32_112", conv(32, 112, 32, 3, 1, 1, 32)},
      {"conv/mobilenet_1x1_project_32_16_112", conv(32, 112, 16, 1, 1, 0)},
      {"conv/mobilenet_1x1_expand_24_144_56", conv(24, 56, 144, 1, 1, 0)},
      {"conv/mobilenet_dw_3x3_144_56", conv(144, 56, 144, 3, 1, 1, 144)},
      {"conv/mobilenet_dw_3x3_s2_144_56", conv(144, 56, 144, 3, 2, 1, 144)},
      {"conv/mobilenet_1x1_project_144_24_56", conv(144, 56, 24, 1, 1, 0)},
      {"conv/mobilenet_1x1_expand_160_960_7", conv(160, 7, 960, 1, 1, 0)},
      {"conv/mobilenet_dw_3x3_960_7", conv(960, 7, 960, 3, 1, 1, 960)},
      {"conv/mobilenet_1x1_project_960_160_7", conv(960, 7, 160, 1, 1, 0)},
      {"conv/squeezenet_3x3_s2_3_64", conv(3, 224, 64, 3, 2, 0)},
      {"conv/squeezenet_fire_1x1_64_16_55", conv(64, 55, 16, 1, 1, 0)},
      {"conv/squeezenet_fire_3x3_16_64_55", conv(16, 55, 64, 3, 1, 1)},
      {"conv/squeezenet_classifier_1x1_512_1000_13", conv(512, 13, 1000, 1, 1, 0)},
  };
  for (const ConvCase& cc : convs) {
    add(cc.name, bench_conv, cc.shape, false, false, false);
    if (!fast::nchwc_conv_supported(cc.shape)) continue;
    add(std::string(cc.name) + "/nchwc", bench_conv, cc.shape, true, false, false);
    if (fast::winograd_supported(cc.shape))
      add(std::string(cc.name) + "/winograd", bench_conv, cc.shape, true, false, true);
    if (cc.shape.c < 4)  // a stem: the first convolution of a chain reads the NCHW image
      add(std::string(cc.name) + "/nchwc-from-nchw", bench_conv, cc.shape, true, true, false);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::max(1, std::atoi(argv[i] + 10));
    } else {
      args.push_back(argv[i]);
    }
  }
  int args_count = static_cast<int>(args.size());
  g_threads = threads;
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
  g_peak_gflops = measure_peak();
  std::printf("fast kernels: simd level %d, threads %d, single-core FMA peak %.1f GFLOP/s\n",
              fast::simd_level(), threads, g_peak_gflops);
  register_all();
  benchmark::Initialize(&args_count, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
