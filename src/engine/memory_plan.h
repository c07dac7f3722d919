// Memory planning for a specialized plan: where every value of one run lives.
//
// The planner sees the plan as steps over value ids. Each value is a constant (plan memory), a
// graph input (the caller's), a view of another value (Reshape-like: same bytes, other dims), or
// is written by exactly one step (a slice of another value: a step writes part of its root). Values
// written by steps go to one of three places:
//   - the arena: intermediates of plain element types, at a 64-byte aligned offset in one block
//     per run. Two values share bytes only when their lifetimes (from the step writing them to
//     the last step reading them or any view of them) do not overlap, or when an in-place step
//     writes its output over an input of the same size that dies at that step;
//   - an output: graph outputs (and the values they view) get memory of their own, the caller's
//     tensor when one is given, so they outlive the run;
//   - the heap: values of element types that are not plain bytes (strings) or of unknown size.
// Offsets are assigned greedily, largest value first, each at the lowest offset that overlaps no
// live value already placed (the usual best-fit heuristic of TVM's and ONNX Runtime's planners).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::engine {

enum class Storage : uint8_t { kNone, kConstant, kInput, kArena, kOutput, kHeap, kView };

struct MemoryValue {
  Storage storage = Storage::kNone;  // kConstant/kInput are given; others are decided
  int64_t bytes = 0;                 // -1: unknown size or not plain bytes (heap)
  int view_of = -1;                  // kView: the value whose bytes this one shares
  /// A slice: written by its own step straight into `slice_of`'s bytes at `slice_offset` (a
  /// blocked Concat's inputs, which their producers write in place of the copy).
  int slice_of = -1;
  int64_t slice_offset = 0;
  bool graph_output = false;
};

struct MemoryStep {
  std::vector<int> inputs, outputs;
  /// Output 0 may be written over input `in_place_input` when that input dies here and has the
  /// same size (elementwise kernels that read each element before writing it); -1: never.
  int in_place_input = -1;
};

struct MemoryPlan {
  std::vector<Storage> storage;  // per value, after planning (views resolved to their root's)
  std::vector<int> root;         // per value: the value owning its bytes (itself when not a view)
  std::vector<int64_t> view_offset;  // per value: its bytes' offset in its root's (slices)
  std::vector<int64_t> offset;       // arena offset of each kArena root, -1 otherwise
  int64_t arena_bytes = 0;           // one run's arena
  int64_t intermediate_bytes = 0;    // the sum of every arena value's size (without sharing)
  int in_place = 0;                  // outputs written over a dying input
};

/// Plans the storage of `values` for `steps` (in run order). Throws kiln::Error(kInternal) on an
/// inconsistent plan (a value written twice, a view of an unknown value).
MemoryPlan plan_memory(const std::vector<MemoryValue>& values,
                       const std::vector<MemoryStep>& steps);

/// Bytes rounded up to the arena alignment (64).
int64_t arena_align(int64_t bytes);

}  // namespace kiln::engine
