// Tests of devices::Cpu and kiln_parallel_for: coverage and chunk sizes of parallel loops, inline
// execution of small loops, the arena's thread bound, and exceptions out of execute().
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "devices/cpu.h"

namespace kiln::devices {
namespace {

/// What the loop bodies below record; passed to them as buffers[0].
struct Record {
  std::vector<std::atomic<int>> hits;
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  std::vector<std::thread::id> threads;
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  bool slow = false;
  explicit Record(int64_t n) : hits(size_t(n)) {}
};

void record_body(void* const* buffers, const int64_t* params, int64_t begin, int64_t end) {
  auto* r = static_cast<Record*>(buffers[0]);
  int now = ++r->running;
  int seen = r->max_running.load();
  while (now > seen && !r->max_running.compare_exchange_weak(seen, now)) {
  }
  for (int64_t i = begin; i < end; ++i) ++r->hits[size_t(i)];
  {
    std::lock_guard<std::mutex> lock(r->mu);
    r->chunks.push_back({begin, end});
    r->threads.push_back(std::this_thread::get_id());
  }
  if (r->slow) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  --r->running;
}

void run(Record& r, int64_t extent, int64_t grain) {
  void* buffers[] = {&r};
  kiln_parallel_for(record_body, buffers, nullptr, extent, grain);
}

TEST(DevicesCpu, ParallelForCoversEveryIterationOnceInChunksOfAtLeastGrain) {
  Cpu cpu(4);
  for (int64_t extent : {1, 2, 5, 100, 1000, 12345}) {
    for (int64_t grain : {1, 3, 7, 100, 5000}) {
      Record r(extent);
      cpu.execute([&] { run(r, extent, grain); });
      for (int64_t i = 0; i < extent; ++i)
        ASSERT_EQ(r.hits[size_t(i)].load(), 1)
            << "extent " << extent << " grain " << grain << " i " << i;
      for (const auto& [b, e] : r.chunks) {
        EXPECT_LT(b, e);
        EXPECT_GE(e - b, std::min(grain, extent)) << "extent " << extent << " grain " << grain;
      }
    }
  }
}

TEST(DevicesCpu, SmallLoopsRunInlineOnTheCallingThread) {
  Cpu cpu(4);
  cpu.execute([&] {
    for (int64_t extent : {1, 10, 64}) {
      Record r(extent);
      run(r, extent, 64);
      ASSERT_EQ(r.chunks.size(), 1u);
      EXPECT_EQ(r.chunks[0], std::make_pair(int64_t(0), extent));
      EXPECT_EQ(r.threads[0], std::this_thread::get_id());
    }
  });
  // Empty and negative extents call nothing.
  Record r(1);
  run(r, 0, 1);
  run(r, -5, 1);
  EXPECT_TRUE(r.chunks.empty());
}

TEST(DevicesCpu, OneThreadArenaRunsInline) {
  Cpu cpu(1);
  EXPECT_EQ(cpu.threads(), 1);
  Record r(1000);
  cpu.execute([&] { run(r, 1000, 1); });
  ASSERT_EQ(r.chunks.size(), 1u);
  EXPECT_EQ(r.chunks[0], std::make_pair(int64_t(0), int64_t(1000)));
}

TEST(DevicesCpu, ConcurrencyIsBoundedByTheArena) {
  for (int threads : {2, 3}) {
    Cpu cpu(threads);
    Record r(64);
    r.slow = true;
    cpu.execute([&] { run(r, 64, 1); });
    EXPECT_LE(r.max_running.load(), threads);
    for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(r.hits[size_t(i)].load(), 1);
  }
}

TEST(DevicesCpu, ThreadCountsAndExceptions) {
  EXPECT_GE(Cpu::hardware_threads(), 1);
  Cpu all(0);
  EXPECT_EQ(all.threads(), Cpu::hardware_threads());
  Cpu two(2);
  EXPECT_EQ(two.threads(), 2);
  EXPECT_THROW(two.execute([] { throw std::runtime_error("boom"); }), std::runtime_error);
  // The arena still works afterwards.
  int ran = 0;
  two.execute([&] { ran = 1; });
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace kiln::devices
