// (being written)
#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
void register_sequence_model_ops(Registry&) {}
}  // namespace kiln::kernels
