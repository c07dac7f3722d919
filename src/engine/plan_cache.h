// PlanCache: specialized plans by shape key, bounded and counted.
//
// get_or_build() returns the plan for a key, building it on a miss with the given builder. It is
// single-flight (threads that miss on the same key wait for one build) and never holds its lock
// while a plan is built, so a compile for a new shape does not block runs of shapes already
// compiled. At most `capacity` plans are kept; the least recently used finished plan is evicted
// first (a run still using it keeps it alive through its shared_ptr). A failed build is not
// cached: every waiter gets the error and the next run tries again.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/plan.h"

namespace kiln::engine {

struct PlanCacheStats {
  uint64_t hits = 0, misses = 0, evictions = 0, builds = 0;
  size_t entries = 0;
};

class PlanCache {
 public:
  explicit PlanCache(size_t capacity) : capacity_(capacity) {}

  using Builder = std::function<std::shared_ptr<const Plan>()>;
  /// The plan for `key`; `*built` (when given) says whether this call built it.
  std::shared_ptr<const Plan> get_or_build(const std::string& key, const Builder& build,
                                           bool* built = nullptr);
  /// The finished plan for `key`, counted as a hit, or null (nothing counted). Never waits and
  /// never allocates: the steady-state lookup of a run.
  std::shared_ptr<const Plan> find(const std::string& key);
  /// Swaps in another plan for a cached key (a no-op when the key is not cached or building).
  void replace(const std::string& key, std::shared_ptr<const Plan> plan);
  /// The plan for `key` if cached (counts as neither hit nor miss).
  std::shared_ptr<const Plan> peek(const std::string& key) const;
  PlanCacheStats stats() const;

 private:
  struct Entry {
    std::shared_ptr<const Plan> plan;  // null while building
    bool failed = false;
    std::string error;
    ErrorCode code = ErrorCode::kInternal;
    std::list<std::string>::iterator lru;
  };
  void evict_locked();

  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable built_cv_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;
  std::list<std::string> lru_;  // most recent first; finished entries only
  PlanCacheStats stats_;
};

}  // namespace kiln::engine
