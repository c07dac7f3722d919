// Heap allocations of this process so far (the CLI's replaced operator new counts them).
#pragma once

#include <cstdint>

namespace kiln::cli {
uint64_t heap_allocations();
}  // namespace kiln::cli
