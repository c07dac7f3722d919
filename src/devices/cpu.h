// devices::Cpu — where compiled CPU kernels run.
//
// A Cpu owns a oneTBB task arena with a fixed number of threads (SessionOptions::intra_op_threads;
// 0 = every core). execute() runs a function inside that arena, so the parallel loops of the
// kernels it launches are spread over the arena's threads only. TBB workers sleep when there is
// no work (no spinning between runs).
//
// Generated code reaches the arena through kiln_parallel_for, which the JIT resolves to this
// function: it splits [0, extent) into chunks of at least `grain` iterations and calls `body` on
// each, inside whatever arena the calling thread is in. Loops of at most `grain` iterations, or
// called with one thread, run inline on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace kiln::devices {

class Cpu {
 public:
  explicit Cpu(int threads = 0);
  ~Cpu();
  Cpu(const Cpu&) = delete;
  Cpu& operator=(const Cpu&) = delete;

  int threads() const { return threads_; }
  /// Runs `f` in this device's arena (exceptions thrown by `f` propagate).
  void execute(const std::function<void()>& f) const;

  /// Number of hardware threads of this machine.
  static int hardware_threads();

 private:
  struct Arena;
  int threads_;
  std::unique_ptr<Arena> arena_;
};

}  // namespace kiln::devices

extern "C" {
/// A parallel loop body of a generated kernel: runs iterations [begin, end).
typedef void (*kiln_loop_body)(void* const* buffers, const int64_t* params, int64_t begin,
                               int64_t end);
void kiln_parallel_for(kiln_loop_body body, void* const* buffers, const int64_t* params,
                       int64_t extent, int64_t grain);
}
