// KernelCache: memory hits, keys, single-flight compiles, LRU eviction, the disk store (hits, every
// kind of untrusted file, unusable directories) and several processes sharing one directory.
// Kernels are y[i] = x[i] * c, one distinct kernel per constant c; every kernel the cache returns
// is run and its output checked.
#include "jit/kernel_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kiln/error.h"
#include "test_paths.h"

extern char** environ;

namespace kiln::jit {
namespace {

namespace fs = std::filesystem;

// y[i] = x[i] * c over n = param 0 elements.
Kernel scale_kernel(float c, const std::string& label = "Scale") {
  Kernel k;
  k.label = label;
  BufferDecl x{"x", ScalarType::kF32, {param(0)}, {}, 4, false};
  x.strides = contiguous_strides(x.dims);
  BufferDecl y{"y", ScalarType::kF32, {param(0)}, {}, 4, true};
  y.strides = contiguous_strides(y.dims);
  k.buffers = {x, y};
  k.num_params = 1;
  k.body = for_loop("i", param(0), LoopKind::kSerial,
                    store(1, {var("i")}, load(0, ScalarType::kF32, {var("i")}) * fimm(c)));
  return k;
}

// Runs a scale kernel on 37 elements; true when every output is x[i] * c.
bool runs_as_scale(const CompiledKernel& ck, float c) {
  std::vector<float> x(37), y(37, -1.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i) * 0.5f - 3.0f;
  void* buffers[2] = {x.data(), y.data()};
  int64_t params[1] = {int64_t(x.size())};
  ck.fn()(buffers, params);
  for (size_t i = 0; i < x.size(); ++i)
    if (y[i] != x[i] * c) return false;
  return true;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string kobj_path(const std::string& dir, const Kernel& k) {
  return dir + "/" + KernelCache::key_of(k) + ".kobj";
}

// A fresh cache on `dir` finds the kernel's file and trusts it.
bool file_is_valid(const std::string& dir, const Kernel& k, float c) {
  KernelCache fresh;
  KernelLookup l = fresh.get(k, dir);
  return l.source == KernelSource::kDisk && fresh.stats().disk_rejected == 0 &&
         runs_as_scale(*l.kernel, c);
}

TEST(KernelCache, SecondGetIsAMemoryHit) {
  KernelCache cache;
  Kernel k = scale_kernel(2.5f);
  KernelLookup a = cache.get(k, "");
  EXPECT_EQ(a.source, KernelSource::kCompiled);
  EXPECT_GT(a.compile_ms, 0.0);
  EXPECT_EQ(a.key, KernelCache::key_of(k));
  EXPECT_EQ(a.kernel->symbol(), "kiln_k_" + a.key);
  EXPECT_GT(a.kernel->object_bytes(), 0u);
  EXPECT_TRUE(runs_as_scale(*a.kernel, 2.5f));

  KernelLookup b = cache.get(k, "");
  EXPECT_EQ(b.source, KernelSource::kMemory);
  EXPECT_EQ(b.compile_ms, 0.0);
  EXPECT_EQ(b.kernel.get(), a.kernel.get());
  KernelCacheStats s = cache.stats();
  EXPECT_EQ(s.compiled, 1u);
  EXPECT_EQ(s.memory_hits, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.disk_hits + s.disk_writes + s.disk_rejected + s.evicted, 0u);
  EXPECT_GT(s.compile_ms, 0.0);
}

TEST(KernelCache, KeysAreDistinctPerKernelAndIgnoreTheLabel) {
  std::string k1 = KernelCache::key_of(scale_kernel(2.0f));
  std::string k2 = KernelCache::key_of(scale_kernel(3.0f));
  EXPECT_EQ(k1.size(), 32u);
  EXPECT_EQ(k1.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(k1, k2);
  EXPECT_EQ(k1, KernelCache::key_of(scale_kernel(2.0f, "AnotherLabel")));
  EXPECT_EQ(k1, KernelCache::key_of(scale_kernel(2.0f)));  // deterministic
  // Every structural detail counts, e.g. the alignment of a buffer.
  Kernel aligned = scale_kernel(2.0f);
  aligned.buffers[0].align = 64;
  EXPECT_NE(k1, KernelCache::key_of(aligned));

  // Same structure under another label: a memory hit, the same code.
  KernelCache cache;
  KernelLookup a = cache.get(scale_kernel(4.0f, "A"), "");
  KernelLookup b = cache.get(scale_kernel(4.0f, "B"), "");
  EXPECT_EQ(b.source, KernelSource::kMemory);
  EXPECT_EQ(a.kernel.get(), b.kernel.get());
  KernelLookup c = cache.get(scale_kernel(5.0f), "");
  EXPECT_EQ(c.source, KernelSource::kCompiled);
  EXPECT_TRUE(runs_as_scale(*a.kernel, 4.0f));
  EXPECT_TRUE(runs_as_scale(*c.kernel, 5.0f));
}

TEST(KernelCache, SingleFlightCompilesOnceForConcurrentGets) {
  KernelCache cache;
  std::atomic<int> compiles{0};
  // A slow compile makes sure all threads ask while the first build is still running.
  cache.set_compiler_for_testing([&](const Kernel& k, const std::string& symbol) {
    ++compiles;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    return compile_to_object(k, symbol);
  });
  Kernel k = scale_kernel(7.0f);
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<KernelLookup> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      got[t] = cache.get(k, "");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(compiles.load(), 1);
  KernelCacheStats s = cache.stats();
  EXPECT_EQ(s.compiled, 1u);
  EXPECT_EQ(s.memory_hits, uint64_t(kThreads - 1));
  int compiled_lookups = 0;
  for (const auto& l : got) {
    ASSERT_NE(l.kernel, nullptr);
    EXPECT_EQ(l.kernel.get(), got[0].kernel.get());
    compiled_lookups += l.source == KernelSource::kCompiled;
  }
  EXPECT_EQ(compiled_lookups, 1);
  EXPECT_TRUE(runs_as_scale(*got[0].kernel, 7.0f));
}

TEST(KernelCache, SingleFlightWithTheRealCompiler) {
  KernelCache cache;
  Kernel k = scale_kernel(7.5f);
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<KernelLookup> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      got[t] = cache.get(k, "");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.stats().compiled, 1u);
  for (const auto& l : got) EXPECT_EQ(l.kernel.get(), got[0].kernel.get());
  EXPECT_TRUE(runs_as_scale(*got[0].kernel, 7.5f));
}

TEST(KernelCache, DifferentKernelsCompileConcurrently) {
  KernelCache cache;
  std::mutex mu;
  std::condition_variable cv;
  int active = 0, max_active = 0;
  // Each compile waits (bounded) until the other one has started: if the cache serialized compiles,
  // the first would time out alone and max_active would stay 1.
  cache.set_compiler_for_testing([&](const Kernel& k, const std::string& symbol) {
    {
      std::unique_lock<std::mutex> lock(mu);
      max_active = std::max(max_active, ++active);
      cv.notify_all();
      cv.wait_for(lock, std::chrono::seconds(10), [&] { return max_active >= 2; });
    }
    std::string obj = compile_to_object(k, symbol);
    std::lock_guard<std::mutex> lock(mu);
    --active;
    return obj;
  });
  KernelLookup a, b;
  std::thread ta([&] { a = cache.get(scale_kernel(11.0f), ""); });
  std::thread tb([&] { b = cache.get(scale_kernel(12.0f), ""); });
  ta.join();
  tb.join();
  EXPECT_EQ(max_active, 2);
  EXPECT_EQ(cache.stats().compiled, 2u);
  EXPECT_TRUE(runs_as_scale(*a.kernel, 11.0f));
  EXPECT_TRUE(runs_as_scale(*b.kernel, 12.0f));
}

TEST(KernelCache, FailedCompileReachesEveryWaiterAndIsRetried) {
  KernelCache cache;
  std::atomic<int> attempts{0};
  cache.set_compiler_for_testing([&](const Kernel& k, const std::string& symbol) -> std::string {
    int n = ++attempts;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (n == 1) throw Error(ErrorCode::kInternal, "injected compile failure");
    return compile_to_object(k, symbol);
  });
  Kernel k = scale_kernel(13.0f);
  constexpr int kThreads = 6;
  std::latch start(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      try {
        cache.get(k, "");
      } catch (const Error& e) {
        errors[t] = std::string(error_code_name(e.code())) + ": " + e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(attempts.load(), 1);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "internal error: injected compile failure");
  }
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().compiled, 0u);

  KernelLookup l = cache.get(k, "");  // the failed entry is gone: this compiles again
  EXPECT_EQ(attempts.load(), 2);
  EXPECT_EQ(l.source, KernelSource::kCompiled);
  EXPECT_TRUE(runs_as_scale(*l.kernel, 13.0f));
}

TEST(KernelCache, InvalidKernelThrowsInternalError) {
  KernelCache cache;
  Kernel k = scale_kernel(1.0f);
  k.buffers[1].output = false;  // stores to a non-output buffer: validate() rejects it
  for (int i = 0; i < 2; ++i) {
    try {
      cache.get(k, "");
      ADD_FAILURE() << "an invalid kernel compiled";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInternal);
    }
  }
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST(KernelCacheLru, EvictsTheLeastRecentlyUsed) {
  KernelCache cache(2);
  Kernel k1 = scale_kernel(21.0f), k2 = scale_kernel(22.0f), k3 = scale_kernel(23.0f);
  std::shared_ptr<const CompiledKernel> held = cache.get(k1, "").kernel;
  cache.get(k2, "");
  cache.get(k3, "");  // k1 is the least recently used
  KernelCacheStats s = cache.stats();
  EXPECT_EQ(s.evicted, 1u);
  EXPECT_EQ(s.entries, 2u);
  EXPECT_TRUE(runs_as_scale(*held, 21.0f));  // a holder keeps the evicted code alive

  EXPECT_EQ(cache.get(k3, "").source, KernelSource::kMemory);
  EXPECT_EQ(cache.get(k2, "").source, KernelSource::kMemory);
  KernelLookup again = cache.get(k1, "");  // recompiled while the old copy is still held
  EXPECT_EQ(again.source, KernelSource::kCompiled);
  EXPECT_EQ(cache.stats().compiled, 4u);
  EXPECT_EQ(cache.stats().evicted, 2u);  // k3 was now the least recently used
  EXPECT_TRUE(runs_as_scale(*again.kernel, 21.0f));
  EXPECT_TRUE(runs_as_scale(*held, 21.0f));
  held.reset();
  EXPECT_TRUE(runs_as_scale(*again.kernel, 21.0f));
  EXPECT_EQ(cache.get(k3, "").source, KernelSource::kCompiled);
}

TEST(KernelCacheLru, SetCapacityAndClear) {
  KernelCache cache(8);
  for (int i = 0; i < 4; ++i) cache.get(scale_kernel(30.0f + float(i)), "");
  EXPECT_EQ(cache.stats().entries, 4u);
  cache.set_capacity(1);
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(cache.stats().evicted, 3u);
  EXPECT_EQ(cache.get(scale_kernel(33.0f), "").source,
            KernelSource::kMemory);  // the newest
  cache.clear();
  EXPECT_EQ(cache.stats().entries, 0u);
  KernelLookup l = cache.get(scale_kernel(33.0f), "");
  EXPECT_EQ(l.source, KernelSource::kCompiled);
  EXPECT_TRUE(runs_as_scale(*l.kernel, 33.0f));
  cache.set_capacity(0);  // nothing is kept, but lookups still work
  KernelLookup m = cache.get(scale_kernel(34.0f), "");
  EXPECT_TRUE(runs_as_scale(*m.kernel, 34.0f));
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST(KernelCacheDisk, AnotherCacheLoadsTheFileInsteadOfCompiling) {
  testing::TempDir tmp;
  const std::string dir = tmp.file("nested/cache");  // created on demand
  Kernel k = scale_kernel(41.0f);
  double compile_ms = 0;
  {
    KernelCache a;
    KernelLookup l = a.get(k, dir);
    EXPECT_EQ(l.source, KernelSource::kCompiled);
    compile_ms = l.compile_ms;
    EXPECT_EQ(a.stats().disk_writes, 1u);
    EXPECT_EQ(a.stats().disk_hits, 0u);
    EXPECT_TRUE(fs::is_regular_file(kobj_path(dir, k)));
  }
  KernelCache b;
  auto t0 = std::chrono::steady_clock::now();
  KernelLookup l = b.get(k, dir);
  double hit_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(l.source, KernelSource::kDisk);
  EXPECT_EQ(l.compile_ms, 0.0);
  KernelCacheStats s = b.stats();
  EXPECT_EQ(s.compiled, 0u);
  EXPECT_EQ(s.disk_hits, 1u);
  EXPECT_EQ(s.disk_writes, 0u);
  EXPECT_EQ(s.disk_rejected, 0u);
  EXPECT_TRUE(runs_as_scale(*l.kernel, 41.0f));
  EXPECT_EQ(b.get(k, dir).source, KernelSource::kMemory);
  std::printf(
      "[ timing   ] compile+load %.2f ms, disk hit (read, check, load) "
      "%.2f ms\n",
      compile_ms, hit_ms);

  // Exactly one file, no temporaries left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(e.path().extension(), ".kobj");
  }
  EXPECT_EQ(files, 1);
}

TEST(KernelCacheDisk, BothCachesMayHoldTheSameKernelAtOnce) {
  testing::TempDir tmp;
  Kernel k = scale_kernel(42.0f);
  KernelCache a, b;
  KernelLookup la = a.get(k, tmp.path());
  KernelLookup lb = b.get(k, tmp.path());  // the same symbol loaded a second time
  EXPECT_EQ(la.source, KernelSource::kCompiled);
  EXPECT_EQ(lb.source, KernelSource::kDisk);
  EXPECT_TRUE(runs_as_scale(*la.kernel, 42.0f));
  EXPECT_TRUE(runs_as_scale(*lb.kernel, 42.0f));
}

TEST(KernelCacheDisk, FileHoldsTheEncodedObject) {
  testing::TempDir tmp;
  Kernel k = scale_kernel(45.0f);
  KernelCache a;
  a.get(k, tmp.path());
  const std::string key = KernelCache::key_of(k);
  const std::string symbol = "kiln_k_" + key;
  // Code generation is deterministic, which is also why concurrent writers write equal bytes.
  EXPECT_EQ(read_bytes(kobj_path(tmp.path(), k)),
            encode_cache_file(key, symbol, compile_to_object(k, symbol)));
}

// Each corruption of a valid file: a fresh cache rejects it, compiles, runs the right code and
// leaves a valid file behind.
TEST(KernelCacheDisk, UntrustedFilesAreRejectedAndReplaced) {
  testing::TempDir tmp;
  const std::string dir = tmp.path();
  Kernel k = scale_kernel(43.0f);
  Kernel other = scale_kernel(44.0f);
  const std::string key = KernelCache::key_of(k);
  const std::string symbol = "kiln_k_" + key;
  const std::string path = kobj_path(dir, k);
  {
    KernelCache a;
    a.get(k, dir);
    a.get(other, dir);
  }
  const std::string good = read_bytes(path);
  const std::string other_file = read_bytes(kobj_path(dir, other));
  const size_t header = encode_cache_file(key, symbol, "").size();
  ASSERT_GT(good.size(), header);
  const std::string other_object = other_file.substr(header);

  auto with_byte = [&](size_t offset, char value) {
    std::string bytes = good;
    bytes[offset] = value;
    return bytes;
  };
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = char((i * 2654435761u) >> 13);
  std::string huge_size = good;
  for (int i = 0; i < 8; ++i) huge_size[header - 16 + size_t(i)] = char(i == 7 ? 0x40 : 0);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"zero-length file", ""},
      {"garbage bytes", garbage},
      {"truncated payload", good.substr(0, good.size() - 16)},
      {"truncated header", good.substr(0, 20)},
      {"header only", good.substr(0, header)},
      {"one byte too many", good + '\0'},
      {"flipped payload byte", with_byte(header + (good.size() - header) / 2,
                                         char(good[header + (good.size() - header) / 2] ^ 0x5a))},
      {"flipped last byte", with_byte(good.size() - 1, char(good.back() ^ 1))},
      {"flipped checksum byte", with_byte(header - 3, char(good[header - 3] ^ 1))},
      {"wrong magic", with_byte(0, 'X')},
      {"wrong format version", with_byte(8, char(good[8] + 1))},
      {"key byte changed", with_byte(16, good[16] == 'a' ? 'b' : 'a')},
      {"payload size beyond the file", huge_size},
      {"another kernel's file", other_file},
      {"this key's header around another kernel's object",
       encode_cache_file(key, symbol, other_object)},
      {"this key's header around bytes that are no object",
       encode_cache_file(key, symbol, std::string(512, '\x7f'))},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    write_bytes(path, bytes);
    KernelCache b;
    KernelLookup l = b.get(k, dir);
    EXPECT_EQ(l.source, KernelSource::kCompiled);
    KernelCacheStats s = b.stats();
    EXPECT_EQ(s.disk_rejected, 1u);
    EXPECT_EQ(s.disk_hits, 0u);
    EXPECT_EQ(s.compiled, 1u);
    EXPECT_EQ(s.disk_writes, 1u);
    EXPECT_TRUE(runs_as_scale(*l.kernel, 43.0f));
    EXPECT_EQ(read_bytes(path), good);
    EXPECT_TRUE(file_is_valid(dir, k, 43.0f));
  }
  // The other kernel's file was never touched.
  EXPECT_TRUE(file_is_valid(dir, other, 44.0f));
}

TEST(KernelCacheDisk, DirectoryInPlaceOfTheFile) {
  testing::TempDir tmp;
  Kernel k = scale_kernel(46.0f);
  fs::create_directory(kobj_path(tmp.path(), k));
  KernelCache cache;
  KernelLookup l = cache.get(k, tmp.path());  // unreadable and unreplaceable: compile, no throw
  EXPECT_EQ(l.source, KernelSource::kCompiled);
  EXPECT_EQ(cache.stats().disk_rejected, 1u);
  EXPECT_EQ(cache.stats().disk_writes, 0u);
  EXPECT_TRUE(runs_as_scale(*l.kernel, 46.0f));
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().extension(), ".kobj") << "left behind: " << e.path();
}

TEST(KernelCacheDisk, UnusableDirectoryMeansNoDiskCache) {
  testing::TempDir tmp;
  write_bytes(tmp.file("plain_file"), "not a directory");
  const std::string dir = tmp.file("plain_file/cache");  // cannot be created
  Kernel k = scale_kernel(47.0f);
  for (int round = 0; round < 2; ++round) {
    KernelCache cache;
    KernelLookup l = cache.get(k, dir);
    EXPECT_EQ(l.source, KernelSource::kCompiled);
    KernelCacheStats s = cache.stats();
    EXPECT_EQ(s.compiled, 1u);
    EXPECT_EQ(s.disk_writes, 0u);
    EXPECT_EQ(s.disk_hits + s.disk_rejected, 0u);
    EXPECT_TRUE(runs_as_scale(*l.kernel, 47.0f));
  }
  EXPECT_EQ(read_bytes(tmp.file("plain_file")), "not a directory");
}

TEST(KernelCacheDisk, ResolveCacheDir) {
  const char* saved = std::getenv("KILN_CACHE_DIR");
  std::string saved_value = saved ? saved : "";
  setenv("KILN_CACHE_DIR", "/from/env", 1);
  EXPECT_EQ(resolve_cache_dir("/from/option"), "/from/option");
  EXPECT_EQ(resolve_cache_dir(""), "/from/env");
  setenv("KILN_CACHE_DIR", "", 1);
  EXPECT_EQ(resolve_cache_dir(""), "");
  unsetenv("KILN_CACHE_DIR");
  EXPECT_EQ(resolve_cache_dir(""), "");
  EXPECT_EQ(resolve_cache_dir("/from/option"), "/from/option");
  if (saved) setenv("KILN_CACHE_DIR", saved_value.c_str(), 1);
}

constexpr int kSharedKernels = 5;
constexpr float kSharedBase = 50.0f;

// The body of one child process of KernelCacheDisk.ConcurrentProcessesShareOneDirectory. The parent
// runs this binary again with only this test selected and the directory in the environment; on its
// own it has nothing to do.
TEST(KernelCacheChild, Worker) {
  const char* dir = std::getenv("KILN_KC_CHILD_DIR");
  const char* go = std::getenv("KILN_KC_CHILD_GO");
  const char* index = std::getenv("KILN_KC_CHILD_INDEX");
  if (!dir || !go || !index) GTEST_SKIP() << "runs only as a child of the multi-process test";
  // Start together: wait (bounded) for the parent's go file.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(go) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(fs::exists(go));
  KernelCache cache;
  int first = std::atoi(index);
  for (int j = 0; j < kSharedKernels; ++j) {
    float c = kSharedBase + float((first + j) % kSharedKernels);
    KernelLookup l = cache.get(scale_kernel(c), dir);
    EXPECT_NE(l.source, KernelSource::kMemory);
    EXPECT_TRUE(runs_as_scale(*l.kernel, c)) << "c = " << c;
  }
  EXPECT_EQ(cache.stats().disk_rejected, 0u);  // never sees a partial file
}

TEST(KernelCacheDisk, ConcurrentProcessesShareOneDirectory) {
  testing::TempDir tmp;
  const std::string dir = tmp.file("cache");  // fresh: the children race to create it
  const std::string go = tmp.file("go");
  std::string exe = fs::read_symlink("/proc/self/exe").string();

  constexpr int kChildren = 4;
  std::vector<pid_t> pids;
  for (int i = 0; i < kChildren; ++i) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string v = *e;
      // A sharded parent run must not shard the child away from its one test.
      if (v.rfind("GTEST_", 0) == 0 || v.rfind("KILN_KC_CHILD_", 0) == 0) continue;
      env.push_back(v);
    }
    env.push_back("KILN_KC_CHILD_DIR=" + dir);
    env.push_back("KILN_KC_CHILD_GO=" + go);
    env.push_back("KILN_KC_CHILD_INDEX=" + std::to_string(i));
    std::vector<char*> envp;
    for (auto& v : env) envp.push_back(v.data());
    envp.push_back(nullptr);
    std::string filter = "--gtest_filter=KernelCacheChild.Worker";
    std::vector<char*> argv = {exe.data(), filter.data(), nullptr};
    std::string log = tmp.file("child" + std::to_string(i) + ".log");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(rc, 0) << "posix_spawn failed";
    pids.push_back(pid);
  }
  write_bytes(go, "go");

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  std::vector<int> status(kChildren, -1);
  for (int i = 0; i < kChildren; ++i) {
    int st = 0;
    pid_t r = 0;
    while ((r = waitpid(pids[size_t(i)], &st, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (r == 0) {  // stuck: end it so that the test fails instead of hanging
      kill(pids[size_t(i)], SIGKILL);
      waitpid(pids[size_t(i)], &st, 0);
    }
    status[size_t(i)] = st;
  }
  for (int i = 0; i < kChildren; ++i) {
    const int st = status[size_t(i)];
    const std::string log = read_bytes(tmp.file("child" + std::to_string(i) + ".log"));
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << "child " << i << " status " << st << ", output:\n"
        << log;
    EXPECT_NE(log.find("[  PASSED  ] 1 test"), std::string::npos) << log;
  }

  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  std::set<std::string> expected;
  for (int j = 0; j < kSharedKernels; ++j)
    expected.insert(KernelCache::key_of(scale_kernel(kSharedBase + float(j))) + ".kobj");
  EXPECT_EQ(names, expected);  // exactly the five files, no temporaries
  KernelCache fresh;
  for (int j = 0; j < kSharedKernels; ++j) {
    float c = kSharedBase + float(j);
    KernelLookup l = fresh.get(scale_kernel(c), dir);
    EXPECT_EQ(l.source, KernelSource::kDisk);
    EXPECT_TRUE(runs_as_scale(*l.kernel, c));
  }
  EXPECT_EQ(fresh.stats().compiled, 0u);
  EXPECT_EQ(fresh.stats().disk_rejected, 0u);
}

}  // namespace
}  // namespace kiln::jit
