// Internal: how the fast kernels split work across oneTBB threads. A call runs serially on the
// caller's thread (using the caller's scratch when given) unless it has more than one task and
// the arena more than one thread; parallel tasks use per-thread scratch buffers.
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstdint>

#include "kernels/fast/buffer.h"

namespace kiln::kernels::fast {

inline constexpr double kMinTaskFma = 2e5;  ///< below this a task does not pay for a thread

/// This thread's scratch, grown to `floats` (kept for the thread's lifetime).
inline float* thread_scratch(size_t floats) {
  thread_local AlignedBuffer buffer;
  return buffer.reserve(floats);
}

/// How many tasks `total_fma` of work should be split into for the caller's arena (1: serial).
inline int64_t task_budget(double total_fma) {
  const int threads = static_cast<int>(std::min<size_t>(
      static_cast<size_t>(tbb::this_task_arena::max_concurrency()),
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism)));
  if (threads <= 1) return 1;
  const double by_work = total_fma / kMinTaskFma;
  return std::max<int64_t>(1, std::min<int64_t>(static_cast<int64_t>(by_work), 4 * threads));
}

/// How many bands a memory-bound pass over `floats` floats (a pool, a concat) should be split
/// into: one per thread once it is 64 KiB, since a serial pass would read the part of its input
/// the other threads just wrote from their caches (slow across cores), and threads that take the
/// same band of every layer find theirs in their own.
inline int64_t memory_bands(double floats) {
  if (floats < 16384.0) return 1;
  return std::max<int64_t>(1, std::min<int64_t>(tbb::this_task_arena::max_concurrency(),
                                                tbb::global_control::active_value(
                                                    tbb::global_control::max_allowed_parallelism)));
}

/// Runs body(task, scratch) for task in [0, tasks); serial when `parallel` is false.
template <class F>
void run_tasks(int64_t tasks, bool parallel, void* user_scratch, size_t scratch_floats,
               const F& body) {
  if (!parallel || tasks <= 1) {
    float* s = user_scratch != nullptr ? static_cast<float*>(user_scratch)
                                       : thread_scratch(scratch_floats);
    for (int64_t t = 0; t < tasks; ++t) body(t, s);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, tasks, 1),
                    [&](const tbb::blocked_range<int64_t>& range) {
                      float* s = thread_scratch(scratch_floats);
                      for (int64_t t = range.begin(); t < range.end(); ++t) body(t, s);
                    });
}

}  // namespace kiln::kernels::fast
