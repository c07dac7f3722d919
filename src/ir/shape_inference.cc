// Graph-level driver of the registered shape functions.
#include "ir/shape_inference.h"

#include "kernels/registry.h"

namespace kiln::ir {
namespace {

// Keeps the more specific of a declared and an inferred dim.
Dim merge_dim(const Dim& inferred, const Dim& declared) {
  if (inferred.is_const() || declared.is_unknown()) return inferred;
  if (declared.is_const()) return declared;
  return inferred.is_unknown() ? declared : inferred;
}

void infer_node(Graph& g, Node& n);

void infer_subgraph(Graph& parent, Graph& sub) {
  for (auto [local, outer] : sub.captures) {
    Value& v = sub.values[size_t(local)];
    const Value& ov = parent.values[size_t(outer)];
    v.kind = ov.kind;
    v.dtype = ov.dtype;
    v.shape = ov.shape;
    v.dims_value = ov.dims_value;
    v.constant = ov.constant;
  }
  infer_shapes(sub);
}

void infer_node(Graph& g, Node& n) {
  for (auto& [name, a] : n.attrs) {
    if (a.g) {
      if (n.schema->seed_subgraph) n.schema->seed_subgraph(g, n, name, *a.g);
      infer_subgraph(g, *a.g);
    }
    for (auto& sg : a.graphs) infer_subgraph(g, *sg);
  }
  std::vector<kernels::InputInfo> inputs;
  inputs.reserve(n.inputs.size());
  for (int id : n.inputs) {
    kernels::InputInfo info;
    if (id >= 0) {
      const Value& v = g.values[size_t(id)];
      if (v.kind != ValueKind::kTensor)
        throw Error(ErrorCode::kUnsupported,
                    "node '" + n.name + "' (" + n.op_type + "): input '" + v.name +
                        "' is a sequence, optional or map value; only tensors are supported");
      info.present = true;
      info.dtype = v.dtype;
      info.shape = v.shape;
      info.value = v.constant.defined() ? &v.constant : nullptr;
      info.dims_value = &v.dims_value;
    }
    inputs.push_back(std::move(info));
  }
  kernels::InferContext ctx(n, std::move(inputs), false,
                            [&g] { return Dim::sym(g.fresh_symbol()); });
  try {
    n.schema->infer(ctx);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInternal, ctx.where() + ": shape inference failed: " + e.what());
  }
  const auto& outs = ctx.outputs();
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    Value& v = g.values[size_t(n.outputs[i])];
    const auto& o = outs[i];
    if (!o.set) {
      // Optional outputs a shape function does not describe stay untyped; the kernel decides.
      continue;
    }
    if (v.dtype != DType::kUndefined && o.dtype != DType::kUndefined && v.dtype != o.dtype &&
        v.is_graph_input == false && v.producer >= 0 && !v.name.empty()) {
      // A declared graph output type that disagrees with inference.
      bool is_output = false;
      for (int out : g.outputs) is_output |= out == n.outputs[i];
      if (is_output)
        throw Error(ErrorCode::kInvalidModel, ctx.where() + ": output '" + v.name +
                                                  "' is declared " + dtype_name(v.dtype) +
                                                  " but computes " + dtype_name(o.dtype));
    }
    v.dtype = o.dtype;
    Shape declared = v.shape;
    v.shape = o.shape;
    if (declared.has_rank && v.shape.has_rank) {
      if (declared.rank() != v.shape.rank())
        throw Error(ErrorCode::kInvalidModel,
                    ctx.where() + ": output '" + v.name + "' is declared with shape " +
                        declared.to_string() + " but computes " + v.shape.to_string());
      for (size_t d = 0; d < declared.dims.size(); ++d) {
        if (declared.dims[d].known_different(v.shape.dims[d]))
          throw Error(ErrorCode::kInvalidModel,
                      ctx.where() + ": output '" + v.name + "' is declared with shape " +
                          declared.to_string() + " but computes " + v.shape.to_string());
        v.shape.dims[d] = merge_dim(v.shape.dims[d], declared.dims[d]);
      }
    } else if (!v.shape.has_rank) {
      v.shape = declared;
    }
    v.dims_value = o.dims_value;
    if (o.value.defined()) v.constant = o.value;
  }
}

}  // namespace

void infer_shapes(Graph& g) {
  for (Node& n : g.nodes) infer_node(g, n);
}

}  // namespace kiln::ir
