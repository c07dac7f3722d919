// The pass pipeline, top to bottom.
#include "ir/passes/pipeline.h"

#include <cstdlib>
#include <iostream>
#include <vector>

#include "ir/passes/eliminate_common_subexpressions.h"
#include "ir/passes/eliminate_dead_code.h"
#include "ir/passes/fold_batchnorm.h"
#include "ir/passes/fold_constants.h"
#include "ir/passes/fold_scale_into_conv.h"
#include "ir/passes/fuse_gelu.h"
#include "ir/passes/fuse_layernorm.h"
#include "ir/passes/remove_identity.h"
#include "ir/passes/to_text.h"
#include "ir/passes/verify.h"

namespace kiln::ir::passes {
namespace {

constexpr int kMaxRounds = 8;

struct Pass {
  const char* name;
  bool (*run)(Graph&, int*);
};

}  // namespace

PassStats optimize_graph(Graph& g, int level, bool verify_each) {
  PassStats stats;
  if (level <= 0) return stats;
#ifndef NDEBUG
  verify_each = true;
#endif
  const char* dump_env = std::getenv("KILN_DUMP_PASSES");
  bool dump = dump_env && std::string(dump_env) == "1";
  std::vector<Pass> passes = {
      {"eliminate_dead_code", eliminate_dead_code},
      {"fold_constants", fold_constants},
      {"eliminate_common_subexpressions", eliminate_common_subexpressions},
      {"remove_identity", remove_identity},
  };
  if (level >= 2) {
    passes.push_back({"fold_batchnorm", fold_batchnorm});
    passes.push_back({"fold_scale_into_conv", fold_scale_into_conv});
    passes.push_back({"fuse_layernorm", fuse_layernorm});
    passes.push_back({"fuse_gelu", fuse_gelu});
  }
  const std::vector<std::string> interface = interface_names(g);
  if (dump) std::cerr << "=== graph before passes ===\n" << to_text(g);
  for (int round = 0; round < kMaxRounds; ++round) {
    stats.rounds++;
    bool changed = false;
    for (const Pass& p : passes) {
      int n = 0;
      if (!p.run(g, &n)) continue;
      changed = true;
      stats.applied[p.name] += n;
      if (dump) std::cerr << "=== after " << p.name << " (" << n << ") ===\n" << to_text(g);
      if (verify_each) verify(g, interface, p.name);
    }
    if (!changed) break;
  }
  return stats;
}

}  // namespace kiln::ir::passes
