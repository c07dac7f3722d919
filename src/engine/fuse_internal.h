// Shared by the fusion pass's files: who reads each value of the plan's graph.
#pragma once

#include <vector>

#include "engine/fuse.h"

namespace kiln::engine {

class GroupContext {
 public:
  GroupContext(const ir::Graph& g, const std::vector<char>& live);
  /// The live nodes reading value v (each once), in run order.
  const std::vector<int>& readers(int v) const { return readers_[size_t(v)]; }
  bool is_graph_output(int v) const { return graph_out_[size_t(v)] != 0; }
  /// The only reader of v when v is not a graph output, else -1.
  int sole_reader(int v) const {
    return !graph_out_[size_t(v)] && readers_[size_t(v)].size() == 1 ? readers_[size_t(v)][0] : -1;
  }

 private:
  std::vector<std::vector<int>> readers_;
  std::vector<char> graph_out_;
};

/// Adds kAttention groups (fuse.h) and marks their nodes in group_of.
void form_attention_groups(const ir::Graph& g, const std::vector<char>& live,
                           const GroupContext& ctx, std::vector<FusionGroup>& groups,
                           std::vector<int>& group_of);

}  // namespace kiln::engine
