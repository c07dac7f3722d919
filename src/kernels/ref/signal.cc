// (being written)
#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
void register_signal_ops(Registry&) {}
}  // namespace kiln::kernels
