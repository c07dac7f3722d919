// Session internals shared by session.cc and its helpers: the imported graph, its public
// descriptions and the reference executor.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "ir/graph.h"
#include "kiln/session.h"

namespace kiln {

struct Session::Impl {
  SessionOptions options;
  std::unique_ptr<ir::Graph> graph;
  std::unique_ptr<engine::Executor> executor;
  std::vector<ValueInfo> inputs, outputs;
  std::set<const void*> constant_data;  // data of weights and constants, to spot aliasing outputs

  std::atomic<uint64_t> runs{0}, failed_runs{0};
  mutable std::mutex shapes_mu;
  std::set<std::string> shape_keys;
};

}  // namespace kiln
