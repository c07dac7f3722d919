// PlanCache implementation: a map of entries, an LRU list of finished ones, one condition
// variable for waiters of in-flight builds.
#include "engine/plan_cache.h"

namespace kiln::engine {

std::shared_ptr<const Plan> PlanCache::find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || !it->second->plan) return nullptr;
  stats_.hits++;
  lru_.splice(lru_.begin(), lru_, it->second->lru);
  return it->second->plan;
}

std::shared_ptr<const Plan> PlanCache::get_or_build(const std::string& key, const Builder& build,
                                                    bool* built) {
  if (built) *built = false;
  std::shared_ptr<Entry> entry;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      entry = it->second;
      if (!entry->plan) {  // being built by another thread: wait for it
        built_cv_.wait(lock, [&] { return entry->plan || entry->failed; });
        if (entry->failed) throw Error(entry->code, entry->error);
      }
      stats_.hits++;
      auto again = entries_.find(key);
      if (again != entries_.end() && again->second == entry)
        lru_.splice(lru_.begin(), lru_, entry->lru);
      return entry->plan;
    }
    stats_.misses++;
    entry = std::make_shared<Entry>();
    entries_[key] = entry;
  }
  std::shared_ptr<const Plan> plan;
  try {
    plan = build();
    if (!plan) throw Error(ErrorCode::kInternal, "plan builder returned no plan");
  } catch (const Error& e) {
    std::lock_guard<std::mutex> lock(mu_);
    entry->failed = true;
    entry->error = e.what();
    entry->code = e.code();
    entries_.erase(key);
    built_cv_.notify_all();
    throw;
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mu_);
    entry->failed = true;
    entry->error = std::string("plan build failed: ") + e.what();
    entries_.erase(key);
    built_cv_.notify_all();
    throw Error(ErrorCode::kInternal, entry->error);
  }
  std::lock_guard<std::mutex> lock(mu_);
  entry->plan = plan;
  lru_.push_front(key);
  entry->lru = lru_.begin();
  stats_.builds++;
  evict_locked();
  built_cv_.notify_all();
  if (built) *built = true;
  return plan;
}

void PlanCache::evict_locked() {
  while (lru_.size() > capacity_) {
    const std::string victim = lru_.back();
    lru_.pop_back();
    entries_.erase(victim);
    stats_.evictions++;
  }
}

void PlanCache::replace(const std::string& key, std::shared_ptr<const Plan> plan) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second->plan && plan) it->second->plan = std::move(plan);
}

std::shared_ptr<const Plan> PlanCache::peek(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : it->second->plan;
}

PlanCacheStats PlanCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  PlanCacheStats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace kiln::engine
