// devices::Cpu on oneTBB, and kiln_parallel_for, the runtime entry of generated parallel loops.
//
// kiln_parallel_for cuts [0, extent) into n = extent / grain chunks of equal size (give or take one
// iteration), so every chunk has at least `grain` iterations: a chunk is the unit of work the code
// generator sized to be worth a task. TBB's auto_partitioner then hands out runs of neighbouring
// chunks, few tasks when the loop is large, more when threads go idle, and each run is one call of
// the body over a contiguous range (so the body's inner loops stay long).
#include "devices/cpu.h"

#include <algorithm>
#include <atomic>
#include <exception>

#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

namespace kiln::devices {

struct Cpu::Arena {
  explicit Arena(int threads) : arena(threads) {}
  tbb::task_arena arena;
};

Cpu::Cpu(int threads)
    : threads_(threads > 0 ? threads : hardware_threads()),
      arena_(std::make_unique<Arena>(threads_)) {}

Cpu::~Cpu() = default;

void Cpu::execute(const std::function<void()>& f) const {
  // When the arena has no free slot, TBB hands `f` to one of its workers and the caller waits on
  // TBB's own (uninstrumented) synchronization. The release/acquire pair on `done` states the
  // ordering in a way ThreadSanitizer sees too: everything `f` wrote happens before we return.
  std::atomic<bool> done{false};
  std::exception_ptr error;
  arena_->arena.execute([&] {
    try {
      f();
    } catch (...) {
      error = std::current_exception();
    }
    done.store(true, std::memory_order_release);
  });
  (void)done.load(std::memory_order_acquire);
  if (error) std::rethrow_exception(error);
}

int Cpu::hardware_threads() { return std::max(1, tbb::info::default_concurrency()); }

}  // namespace kiln::devices

extern "C" void kiln_parallel_for(kiln_loop_body body, void* const* buffers, const int64_t* params,
                                  int64_t extent, int64_t grain) {
  if (extent <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = extent / grain;
  if (chunks <= 1 || tbb::this_task_arena::max_concurrency() <= 1) {
    body(buffers, params, 0, extent);
    return;
  }
  // Chunk c starts at c * size + min(c, extra): the first `extra` chunks have one more iteration.
  const int64_t size = extent / chunks, extra = extent % chunks;
  auto start = [=](int64_t c) { return c * size + std::min(c, extra); };
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, chunks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        body(buffers, params, start(r.begin()), start(r.end()));
      },
      tbb::auto_partitioner());
}
