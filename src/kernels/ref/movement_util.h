// Helpers shared by the data-movement reference kernels (movement*.cc): strided copies of any
// element type and the registration functions of the movement sub-families.
//
// Every movement kernel is a pure re-indexing of its input, so one strided walker serves
// Transpose, Slice, DepthToSpace and SpaceToDepth: the output is walked in row-major order and
// each output element reads src[base + sum_d i_d * src_strides[d]] (strides may be negative).
#pragma once

#include <vector>

#include "kernels/ref/common.h"

namespace kiln::kernels {

void register_movement_slice_pad_ops(
    Registry& r);                              // movement_slice_pad.cc: Slice, Pad, CenterCropPad
void register_movement_misc_ops(Registry& r);  // movement_misc.cc: Trilu, DepthToSpace, ...

namespace movement {

/// Fills `dst` (row-major, viewed with `out_dims`) with src[base + sum_d i_d * src_strides[d]].
/// The caller guarantees every read lies inside `src`; `src` and `dst` have the same dtype.
void strided_copy(const NodeAttrs& ctx, const Tensor& src, int64_t base,
                  const std::vector<int64_t>& src_strides, const Dims& out_dims, const Tensor& dst);

/// dst = transpose(src viewed with in_dims, perm); dst holds num_elements(in_dims) elements.
void transpose_into(const NodeAttrs& ctx, const Tensor& src, const Dims& in_dims,
                    const std::vector<int>& perm, const Tensor& dst);

/// Product of dims[begin, end).
int64_t dims_product(const Dims& dims, size_t begin, size_t end);

}  // namespace movement
}  // namespace kiln::kernels
