// Control and trivial ops: Constant, Identity, Dropout (inference), If, Loop, Scan.
#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

// Constant: exactly one of value, value_float(s), value_int(s), value_string(s).
Tensor constant_value(const NodeAttrs& n) {
  int count = 0;
  Tensor t;
  if (const Tensor* v = n.attr_tensor("value")) {
    t = *v;
    ++count;
  }
  if (n.has_attr("value_float")) {
    t = Tensor::scalar<float>(n.attr_float("value_float", 0));
    ++count;
  }
  if (n.has_attr("value_int")) {
    t = Tensor::scalar<int64_t>(n.attr_int("value_int", 0));
    ++count;
  }
  if (n.has_attr("value_string")) {
    t = Tensor::scalar<std::string>(n.attr_string("value_string", ""));
    ++count;
  }
  if (n.has_attr("value_floats")) {
    auto v = n.attr_floats("value_floats");
    t = Tensor::from_vector<float>({int64_t(v.size())}, v);
    ++count;
  }
  if (n.has_attr("value_ints")) {
    auto v = n.attr_ints("value_ints");
    t = Tensor::from_vector<int64_t>({int64_t(v.size())}, v);
    ++count;
  }
  if (n.has_attr("value_strings")) {
    auto v = n.attr_strings("value_strings");
    t = Tensor::from_vector<std::string>({int64_t(v.size())}, v);
    ++count;
  }
  if (n.has_attr("sparse_value")) n.unsupported("sparse_value constants are not supported");
  if (count != 1) n.fail("needs exactly one value attribute, found " + std::to_string(count));
  return t;
}

void infer_constant(InferContext& ctx) { ctx.set_output_value(0, constant_value(ctx)); }
void run_constant(KernelContext& ctx) { ctx.set_output(0, constant_value(ctx)); }

void infer_identity(InferContext& ctx) {
  infer_same_as_input0(ctx);
  if (auto dv = ctx.input_dims_value(0)) ctx.set_output_dims_value(0, *dv);
}
void run_identity(KernelContext& ctx) { ctx.set_output(0, ctx.input(0)); }

// Dropout in inference: output = input; the optional mask is all true.
void infer_dropout(InferContext& ctx) {
  infer_same_as_input0(ctx);
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::kBool, ctx.input_shape(0));
}
void run_dropout(KernelContext& ctx) {
  if (ctx.has_input(2)) {
    const Tensor& training = ctx.input(2);
    if (training.numel() != 1)
      ctx.fail("training_mode must be a scalar", ErrorCode::kInvalidArgument);
    if (training.element_as_int(0) != 0) {
      // Training mode is deterministic only when nothing is dropped.
      double ratio = ctx.has_input(1) ? ctx.input(1).element_as_double(0) : 0.5;
      if (ratio != 0)
        ctx.unsupported("training_mode=true with ratio " + std::to_string(ratio) +
                        " draws random masks; Kiln runs inference only");
    }
  }
  ctx.set_output(0, ctx.input(0));
  if (ctx.num_outputs() > 1) {
    Tensor& mask = ctx.output(1, DType::kBool, ctx.input(0).dims());
    bool* m = mask.data<bool>();
    for (int64_t i = 0; i < mask.numel(); ++i) m[i] = true;
  }
}

}  // namespace

void register_control_ops(Registry& r) {
  r.add({"", "Constant", 1, PatternKind::kOpaque, infer_constant, run_constant});
  r.add({"", "Identity", 1, PatternKind::kInjective, infer_identity, run_identity});
  r.add({"", "Dropout", 1, PatternKind::kInjective, infer_dropout, run_dropout});
}

}  // namespace kiln::kernels
