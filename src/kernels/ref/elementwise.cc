// The elementwise family: math, comparisons, logic, activations, Clip, Cast and Where. This file
// registers the sub-families and holds their shared shape-function helpers; the kernels live in
// elementwise_{unary,binary,activation,cast}.cc.
#include "kernels/ref/elementwise.h"

#include <string>

#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace ew {

void check_same_dtypes(const InferContext& ctx, int first, int last) {
  DType t0 = ctx.input_dtype(first);
  for (int i = first + 1; i <= last && i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    DType t = ctx.input_dtype(i);
    if (t0 != DType::kUndefined && t != DType::kUndefined && t != t0)
      ctx.fail("input " + std::to_string(i) + " is " + dtype_name(t) + " but input " +
               std::to_string(first) + " is " + dtype_name(t0) + "; they must have the same type");
  }
}

void infer_broadcast(InferContext& ctx, DType dtype) {
  std::vector<ir::Shape> shapes;
  for (int i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i)) shapes.push_back(ctx.input_shape(i));
  if (shapes.empty()) ctx.fail("needs at least one input");
  ctx.set_output(0, dtype == DType::kUndefined ? ctx.input_dtype(0) : dtype,
                 broadcast_shapes(ctx, shapes));
}

void propagate_dims_value(InferContext& ctx, const std::vector<int>& inputs,
                          ir::Dim (*f)(const std::vector<ir::Dim>&)) {
  // Only shape-like tensors: a scalar or a short vector of integers.
  constexpr size_t kMaxElements = 64;
  std::vector<std::vector<ir::Dim>> values;
  size_t n = 1;
  for (int i : inputs) {
    if (!ctx.has_input(i)) return;
    if (!dtype_is_int(ctx.input_dtype(i))) return;
    const ir::Shape& s = ctx.input_shape(i);
    if (!s.has_rank || s.rank() > 1) return;
    auto count = s.num_elements();
    if (count && size_t(*count) > kMaxElements) return;  // skip converting big tensors to dims
    auto v = ctx.input_dims_value(i);
    if (!v || v->empty() || v->size() > kMaxElements) return;
    if (v->size() != 1) {
      if (n != 1 && n != v->size()) return;  // does not broadcast; the shape function says so
      n = v->size();
    }
    values.push_back(std::move(*v));
  }
  std::vector<ir::Dim> out;
  out.reserve(n);
  std::vector<ir::Dim> args(values.size());
  for (size_t k = 0; k < n; ++k) {
    for (size_t j = 0; j < values.size(); ++j) args[j] = values[j][values[j].size() == 1 ? 0 : k];
    out.push_back(f(args));
  }
  ctx.set_output_dims_value(0, std::move(out));
}

Dims broadcast_inputs(const KernelContext& ctx, int first, int last) {
  Dims out;
  bool any = false;
  for (int i = first; i <= last && i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    out = any ? broadcast_dims(ctx, out, ctx.input(i).dims()) : ctx.input(i).dims();
    any = true;
  }
  if (!any) ctx.fail("needs at least one input");
  return out;
}

}  // namespace ew

void register_elementwise_ops(Registry& r) {
  register_elementwise_unary_ops(r);
  register_elementwise_binary_ops(r);
  register_elementwise_activation_ops(r);
  register_elementwise_cast_ops(r);
}

}  // namespace kiln::kernels
