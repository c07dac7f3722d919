// Liveness and greedy arena placement (see memory_plan.h).
#include "engine/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "kiln/error.h"

namespace kiln::engine {

int64_t arena_align(int64_t bytes) { return (bytes + 63) / 64 * 64; }

namespace {

struct UnionFind {
  std::vector<int> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int find(int v) {
    while (parent[size_t(v)] != v) v = parent[size_t(v)] = parent[size_t(parent[size_t(v)])];
    return v;
  }
};

}  // namespace

MemoryPlan plan_memory(const std::vector<MemoryValue>& values,
                       const std::vector<MemoryStep>& steps) {
  const size_t n = values.size();
  MemoryPlan mp;
  mp.storage.assign(n, Storage::kNone);
  mp.root.resize(n);
  mp.offset.assign(n, -1);

  // Roots: a view shares its source's bytes, a slice part of them (chains resolved).
  mp.view_offset.assign(n, 0);
  for (size_t v = 0; v < n; ++v) {
    int r = int(v);
    int64_t off = 0;
    for (int hops = 0; values[size_t(r)].view_of >= 0 || values[size_t(r)].slice_of >= 0; ++hops) {
      const MemoryValue& mv = values[size_t(r)];
      if (mv.view_of < 0) off += mv.slice_offset;
      r = mv.view_of >= 0 ? mv.view_of : mv.slice_of;
      if (r < 0 || size_t(r) >= n || hops > int(n))
        throw Error(ErrorCode::kInternal, "memory plan: a view of an unknown value");
    }
    mp.root[v] = r;
    mp.view_offset[v] = off;
  }

  // Where each root is written and last read (through any view of it).
  std::vector<int> def(n, -1), last(n, -1);
  for (size_t s = 0; s < steps.size(); ++s) {
    for (int o : steps[s].outputs) {
      if (o < 0) continue;
      if (values[size_t(o)].slice_of >= 0) {  // its root's bytes are written from here on
        const size_t r = size_t(mp.root[size_t(o)]);
        def[r] = def[r] < 0 ? int(s) : std::min(def[r], int(s));
        last[r] = std::max(last[r], int(s));
        continue;
      }
      if (def[size_t(o)] >= 0)
        throw Error(ErrorCode::kInternal, "memory plan: a value is written by two steps");
      def[size_t(o)] = int(s);
      last[size_t(o)] = std::max(last[size_t(o)], int(s));
    }
    for (int i : steps[s].inputs)
      if (i >= 0)
        last[size_t(mp.root[size_t(i)])] = std::max(last[size_t(mp.root[size_t(i)])], int(s));
  }

  // Storage of roots.
  std::vector<char> output_root(n, 0);
  for (size_t v = 0; v < n; ++v)
    if (values[v].graph_output) output_root[size_t(mp.root[v])] = 1;
  for (size_t v = 0; v < n; ++v) {
    if (mp.root[v] != int(v)) continue;
    Storage given = values[v].storage;
    if (given == Storage::kConstant || given == Storage::kInput) {
      mp.storage[v] = given;
    } else if (def[v] < 0) {
      mp.storage[v] = Storage::kNone;  // never written (an omitted optional output)
    } else if (values[v].bytes < 0) {
      mp.storage[v] = Storage::kHeap;
    } else if (output_root[v]) {
      mp.storage[v] = Storage::kOutput;
    } else {
      mp.storage[v] = Storage::kArena;
      mp.intermediate_bytes += values[v].bytes;
    }
  }

  // In-place: an elementwise output takes over an arena input of the same size dying here.
  UnionFind classes(n);
  std::vector<int> cls_last(last);
  for (size_t s = 0; s < steps.size(); ++s) {
    const MemoryStep& st = steps[s];
    if (st.in_place_input < 0 || st.outputs.empty() ||
        size_t(st.in_place_input) >= st.inputs.size())
      continue;
    int in = st.inputs[size_t(st.in_place_input)], out = st.outputs[0];
    if (in < 0 || out < 0 || mp.root[size_t(out)] != out) continue;
    int rin = mp.root[size_t(in)];
    if (mp.storage[size_t(rin)] != Storage::kArena || mp.storage[size_t(out)] != Storage::kArena)
      continue;
    if (values[size_t(rin)].bytes != values[size_t(out)].bytes) continue;
    int c = classes.find(rin);
    if (cls_last[size_t(c)] != int(s)) continue;  // read again later
    // The input must not be read through another slot of this step at other indices: a second
    // use of the same bytes is fine only as the same element (the kernel reads before writing).
    classes.parent[size_t(out)] = c;
    cls_last[size_t(c)] = std::max(cls_last[size_t(c)], last[size_t(out)]);
    mp.in_place++;
  }

  // Arena classes with their lifetimes, placed largest first at the lowest free offset.
  struct Class {
    int id;
    int begin, end;
    int64_t bytes;
    int64_t offset = -1;
  };
  std::vector<Class> cls;
  std::vector<int> index(n, -1);
  for (size_t v = 0; v < n; ++v) {
    if (mp.root[v] != int(v) || mp.storage[v] != Storage::kArena) continue;
    int c = classes.find(int(v));
    if (index[size_t(c)] < 0) {
      index[size_t(c)] = int(cls.size());
      cls.push_back({c, def[v], cls_last[size_t(c)], 0});
    }
    Class& k = cls[size_t(index[size_t(c)])];
    k.begin = std::min(k.begin, def[v]);
    k.end = std::max(k.end, cls_last[size_t(c)]);
    k.bytes = std::max(k.bytes, arena_align(std::max<int64_t>(values[v].bytes, 1)));
  }
  std::vector<size_t> order(cls.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (cls[a].bytes != cls[b].bytes) return cls[a].bytes > cls[b].bytes;
    return cls[a].begin < cls[b].begin;
  });
  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of live placed classes
  for (size_t i : order) {
    Class& c = cls[i];
    busy.clear();
    for (size_t j : placed)
      if (cls[j].begin <= c.end && c.begin <= cls[j].end)
        busy.emplace_back(cls[j].offset, cls[j].offset + cls[j].bytes);
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (const auto& [b, e] : busy) {
      if (b - at >= c.bytes) break;
      at = std::max(at, e);
    }
    c.offset = at;
    mp.arena_bytes = std::max(mp.arena_bytes, at + c.bytes);
    placed.push_back(i);
  }
  for (size_t v = 0; v < n; ++v)
    if (mp.root[v] == int(v) && mp.storage[v] == Storage::kArena)
      mp.offset[v] = cls[size_t(index[size_t(classes.find(int(v)))])].offset;

  // Views report their root's storage.
  for (size_t v = 0; v < n; ++v)
    if (mp.root[v] != int(v)) mp.storage[v] = Storage::kView;
  return mp;
}

}  // namespace kiln::engine
