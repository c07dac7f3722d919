// Control flow: If, Loop and Scan, whose bodies are subgraph attributes run through
// KernelContext::run_subgraph (the executor supplies the values the bodies capture).
//
// Only tensor values flow through these ops; sequence- or optional-typed branch or body outputs
// are refused as unsupported. Subgraphs are shape-inferred before their node, so the shape
// functions read the bodies' output types from the subgraph values. At load time a value that
// differs between branches (If) or may change from iteration to iteration (loop-carried values)
// gets fresh dims where the candidates disagree; at run time the shape functions give only the
// dtype (an unranked shape), since the true shapes are known only after running the body, and
// the kernels hand back the body's tensors or allocate the stacked scan outputs themselves.
#include <limits>

#include "kernels/ref/common.h"
#include "kernels/ref/families.h"

namespace kiln::kernels {
namespace {

const ir::Value& graph_output(const ir::Graph& g, size_t i) {
  return g.values[size_t(g.outputs[i])];
}

void require_tensor(const NodeAttrs& n, const ir::Value& v, const char* what) {
  if (v.kind != ir::ValueKind::kTensor)
    n.unsupported(std::string(what) + " '" + v.name +
                  "' is a sequence, optional or map value; only tensors are supported");
}

// Where two candidate shapes agree, their dims; elsewhere fresh dims (or unranked).
ir::Shape merge_shapes(const InferContext& ctx, const ir::Shape& a, const ir::Shape& b) {
  if (!a.has_rank || !b.has_rank || a.rank() != b.rank()) return ir::Shape::unranked();
  std::vector<ir::Dim> d;
  for (int i = 0; i < a.rank(); ++i) {
    const ir::Dim& x = a.dims[size_t(i)];
    d.push_back(x.known_equal(b.dims[size_t(i)]) ? x : ctx.fresh_dim());
  }
  return ir::Shape(d);
}

// A slice's dims with `n` inserted at `axis` (the stacking of per-iteration outputs).
ir::Shape insert_dim(const ir::Shape& s, int axis, const ir::Dim& n) {
  if (!s.has_rank) return ir::Shape::unranked();
  std::vector<ir::Dim> d = s.dims;
  d.insert(d.begin() + axis, n);
  return ir::Shape(d);
}

bool scalar_true(const KernelContext& ctx, const Tensor& t, const char* what) {
  if (t.numel() != 1)
    ctx.fail(
        std::string(what) + " must have exactly one element, got shape " + dims_to_string(t.dims()),
        ErrorCode::kInvalidArgument);
  return t.element_as_int(0) != 0;
}

// Copies slice `index` along `axis` of t (the axis removed).
Tensor take_slice(const Tensor& t, int axis, int64_t index) {
  Dims d = t.dims();
  int64_t len = d[size_t(axis)];
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= d[size_t(i)];
  for (int i = axis + 1; i < t.rank(); ++i) inner *= d[size_t(i)];
  d.erase(d.begin() + axis);
  Tensor s(t.dtype(), d);
  for (int64_t o = 0; o < outer; ++o)
    copy_elements(t, (o * len + index) * inner, s, o * inner, inner);
  return s;
}

// Stacks equal-shaped slices along a new `axis`; slice i goes to position reverse ? n-1-i : i.
// An empty list gives [0] inserted into `empty_dims`.
Tensor stack_slices(const NodeAttrs& n, const std::vector<Tensor>& slices, int64_t axis_attr,
                    bool reverse, DType empty_dtype, const Dims& empty_dims, const char* what) {
  if (slices.empty()) {
    Dims d = empty_dims;
    int axis = normalize_axis(n, axis_attr, int(d.size()) + 1);
    d.insert(d.begin() + axis, 0);
    return Tensor(empty_dtype, d);
  }
  const Tensor& first = slices[0];
  int axis = normalize_axis(n, axis_attr, first.rank() + 1);
  int64_t count = int64_t(slices.size());
  for (const Tensor& s : slices)
    if (s.dims() != first.dims() || s.dtype() != first.dtype())
      n.fail(std::string(what) + " changes shape or type between iterations: " +
                 dims_to_string(first.dims()) + " then " + dims_to_string(s.dims()),
             ErrorCode::kInvalidArgument);
  Dims d = first.dims();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= d[size_t(i)];
  for (int i = axis; i < first.rank(); ++i) inner *= d[size_t(i)];
  d.insert(d.begin() + axis, count);
  Tensor out(first.dtype(), d);
  for (int64_t i = 0; i < count; ++i) {
    int64_t pos = reverse ? count - 1 - i : i;
    for (int64_t o = 0; o < outer; ++o)
      copy_elements(slices[size_t(i)], o * inner, out, (o * count + pos) * inner, inner);
  }
  return out;
}

// Dims for an empty stack: the body output's constant dims, 0 where unknown.
Dims fallback_dims(const ir::Value& v) {
  Dims d;
  if (v.shape.has_rank)
    for (const auto& x : v.shape.dims) d.push_back(x.is_const() ? x.value : 0);
  return d;
}

// ---- If ----

void infer_if(InferContext& ctx) {
  const ir::Graph& then_g = ctx.required_graph("then_branch");
  const ir::Graph& else_g = ctx.required_graph("else_branch");
  size_t n = size_t(ctx.num_outputs());
  if (then_g.outputs.size() != n || else_g.outputs.size() != n)
    ctx.fail("then_branch and else_branch must each have " + std::to_string(n) + " outputs, got " +
             std::to_string(then_g.outputs.size()) + " and " +
             std::to_string(else_g.outputs.size()));
  const Tensor* cond = ctx.input_value(0);
  for (size_t i = 0; i < n; ++i) {
    const ir::Value& tv = graph_output(then_g, i);
    const ir::Value& ev = graph_output(else_g, i);
    require_tensor(ctx, tv, "then_branch output");
    require_tensor(ctx, ev, "else_branch output");
    if (tv.dtype != DType::kUndefined && ev.dtype != DType::kUndefined && tv.dtype != ev.dtype)
      ctx.fail("output " + std::to_string(i) + " is " + dtype_name(tv.dtype) +
               " in then_branch but " + dtype_name(ev.dtype) + " in else_branch");
    DType dt = tv.dtype != DType::kUndefined ? tv.dtype : ev.dtype;
    ir::Shape shape;
    if (ctx.is_runtime()) {
      shape = ir::Shape::unranked();
    } else if (cond && cond->numel() == 1) {
      shape = cond->element_as_int(0) != 0 ? tv.shape : ev.shape;
    } else {
      shape = merge_shapes(ctx, tv.shape, ev.shape);
    }
    ctx.set_output(int(i), dt, shape);
  }
}

void run_if(KernelContext& ctx) {
  bool cond = scalar_true(ctx, ctx.input(0), "cond");
  const ir::Graph& g = ctx.required_graph(cond ? "then_branch" : "else_branch");
  std::vector<Tensor> outs = ctx.run_subgraph(g, {});
  if (int(outs.size()) != ctx.num_outputs())
    ctx.fail("branch produced " + std::to_string(outs.size()) + " outputs, expected " +
             std::to_string(ctx.num_outputs()));
  for (size_t i = 0; i < outs.size(); ++i) ctx.set_output(int(i), outs[i]);
}

// ---- Loop ----
// Inputs: M (optional trip count), cond (optional), v_initial... Body: (iter, cond, v...) ->
// (cond, v..., scan...). Outputs: final v..., then each scan output stacked along a new axis 0.

void infer_loop(InferContext& ctx) {
  const ir::Graph& body = ctx.required_graph("body");
  int n = ctx.num_inputs() - 2;
  if (n < 0) ctx.fail("Loop needs the M and cond inputs (possibly empty)");
  if (int(body.inputs.size()) != n + 2)
    ctx.fail("body must have " + std::to_string(n + 2) + " inputs, has " +
             std::to_string(body.inputs.size()));
  int k = int(body.outputs.size()) - 1 - n;
  if (k < 0 || ctx.num_outputs() > n + k)
    ctx.fail("body has " + std::to_string(body.outputs.size()) + " outputs; expected cond, " +
             std::to_string(n) + " loop-carried values and the scan outputs");
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    const ir::Value& bv = graph_output(body, size_t(1 + i));
    require_tensor(ctx, bv, "body output");
    if (i < n) {
      DType dt = ctx.input_dtype(2 + i);
      ctx.set_output(i, dt,
                     ctx.is_runtime() ? ir::Shape::unranked()
                                      : merge_shapes(ctx, ctx.input_shape(2 + i), bv.shape));
    } else {
      ir::Shape s =
          ctx.is_runtime() ? ir::Shape::unranked() : insert_dim(bv.shape, 0, ctx.fresh_dim());
      ctx.set_output(i, bv.dtype, s);
    }
  }
}

void run_loop(KernelContext& ctx) {
  const ir::Graph& body = ctx.required_graph("body");
  int n = ctx.num_inputs() - 2;
  int k = int(body.outputs.size()) - 1 - n;
  int64_t max_trip = std::numeric_limits<int64_t>::max();
  if (ctx.has_input(0)) {
    const Tensor& m = ctx.input(0);
    if (m.numel() != 1) ctx.fail("M must be a scalar", ErrorCode::kInvalidArgument);
    max_trip = m.element_as_int(0);
  }
  bool cond = ctx.has_input(1) ? scalar_true(ctx, ctx.input(1), "cond") : true;
  std::vector<Tensor> carried;
  for (int i = 0; i < n; ++i) carried.push_back(ctx.input(2 + i));
  std::vector<std::vector<Tensor>> scans(size_t(std::max(k, 0)));
  for (int64_t it = 0; it < max_trip && cond; ++it) {
    std::vector<Tensor> ins = {Tensor::scalar<int64_t>(it), Tensor::scalar<bool>(cond)};
    ins.insert(ins.end(), carried.begin(), carried.end());
    std::vector<Tensor> outs = ctx.run_subgraph(body, ins);
    if (int(outs.size()) != 1 + n + k) ctx.fail("body produced the wrong number of outputs");
    cond = scalar_true(ctx, outs[0], "body's cond output");
    for (int i = 0; i < n; ++i) carried[size_t(i)] = outs[size_t(1 + i)];
    for (int j = 0; j < k; ++j) scans[size_t(j)].push_back(outs[size_t(1 + n + j)]);
  }
  for (int i = 0; i < n && i < ctx.num_outputs(); ++i) ctx.set_output(i, carried[size_t(i)]);
  for (int j = 0; j < k && n + j < ctx.num_outputs(); ++j) {
    const ir::Value& bv = graph_output(body, size_t(1 + n + j));
    ctx.set_output(n + j, stack_slices(ctx, scans[size_t(j)], 0, false, bv.dtype, fallback_dims(bv),
                                       "a Loop scan output"));
  }
}

// ---- Scan ----
// Opset 9+: inputs are N initial states then M scan inputs; each iteration feeds the states and
// one slice of every scan input (along its scan_input_axes entry, backwards where its direction
// is 1) and gets new states plus one slice of each scan output. Opset 8 has a leading optional
// sequence_lens input and a batch axis 0 on every input and output.

struct ScanAttrs {
  int n = 0, m = 0, k = 0;
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

ScanAttrs read_scan_attrs(const NodeAttrs& ctx, int num_inputs, const ir::Graph& body) {
  ScanAttrs a;
  int first = ctx.opset() < 9 ? 1 : 0;
  a.m = int(ctx.required_int("num_scan_inputs"));
  a.n = num_inputs - first - a.m;
  if (a.m < 1 || a.n < 0) ctx.fail("num_scan_inputs must be in [1, number of inputs]");
  if (int(body.inputs.size()) != a.n + a.m)
    ctx.fail("body must have " + std::to_string(a.n + a.m) + " inputs, has " +
             std::to_string(body.inputs.size()));
  a.k = int(body.outputs.size()) - a.n;
  if (a.k < 0) ctx.fail("body must have at least " + std::to_string(a.n) + " outputs");
  if (ctx.opset() < 9) {
    a.in_dirs = ctx.attr_ints("directions", std::vector<int64_t>(size_t(a.m), 0));
    a.in_axes.assign(size_t(a.m), 0);
  } else {
    a.in_axes = ctx.attr_ints("scan_input_axes", std::vector<int64_t>(size_t(a.m), 0));
    a.in_dirs = ctx.attr_ints("scan_input_directions", std::vector<int64_t>(size_t(a.m), 0));
  }
  a.out_axes = ctx.attr_ints("scan_output_axes", std::vector<int64_t>(size_t(a.k), 0));
  a.out_dirs = ctx.attr_ints("scan_output_directions", std::vector<int64_t>(size_t(a.k), 0));
  if (int(a.in_axes.size()) != a.m || int(a.in_dirs.size()) != a.m)
    ctx.fail("scan input axes/directions must have num_scan_inputs entries");
  if (int(a.out_axes.size()) != a.k || int(a.out_dirs.size()) != a.k)
    ctx.fail("scan output axes/directions must have one entry per scan output");
  return a;
}

void infer_scan(InferContext& ctx) {
  const ir::Graph& body = ctx.required_graph("body");
  ScanAttrs a = read_scan_attrs(ctx, ctx.num_inputs(), body);
  int first = ctx.opset() < 9 ? 1 : 0;
  bool batched = ctx.opset() < 9;
  if (ctx.num_outputs() > a.n + a.k) ctx.fail("too many outputs for the body");
  // The sequence length, from the first scan input.
  ir::Dim seq = ctx.fresh_dim();
  const ir::Shape& s0 = ctx.input_shape(first + a.n);
  if (s0.has_rank) {
    int ax = batched ? 1 : normalize_axis(ctx, a.in_axes[0], s0.rank());
    if (ax < s0.rank()) seq = s0.dims[size_t(ax)];
  }
  ir::Dim batch = s0.has_rank && s0.rank() > 0 ? s0.dims[0] : ctx.fresh_dim();
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    const ir::Value& bv = graph_output(body, size_t(i));
    require_tensor(ctx, bv, "body output");
    if (ctx.is_runtime()) {
      ctx.set_output(i, i < a.n ? ctx.input_dtype(first + i) : bv.dtype, ir::Shape::unranked());
      continue;
    }
    if (i < a.n) {
      ir::Shape body_shape = batched ? insert_dim(bv.shape, 0, batch) : bv.shape;
      ctx.set_output(i, ctx.input_dtype(first + i),
                     merge_shapes(ctx, ctx.input_shape(first + i), body_shape));
    } else if (batched) {
      ctx.set_output(i, bv.dtype, insert_dim(insert_dim(bv.shape, 0, seq), 0, batch));
    } else if (bv.shape.has_rank) {
      int ax = normalize_axis(ctx, a.out_axes[size_t(i - a.n)], bv.shape.rank() + 1);
      ctx.set_output(i, bv.dtype, insert_dim(bv.shape, ax, seq));
    } else {
      ctx.set_output(i, bv.dtype, ir::Shape::unranked());
    }
  }
}

// Runs the scan over `states` and `inputs`; returns final states then stacked scan outputs.
std::vector<Tensor> scan_core(const KernelContext& ctx, const ir::Graph& body, const ScanAttrs& a,
                              std::vector<Tensor> states, const std::vector<Tensor>& inputs) {
  int64_t seq = -1;
  std::vector<int> axes;
  for (int j = 0; j < a.m; ++j) {
    const Tensor& t = inputs[size_t(j)];
    int ax = normalize_axis(ctx, a.in_axes[size_t(j)], t.rank());
    if (t.rank() == 0) ctx.fail("scan inputs must have rank >= 1", ErrorCode::kInvalidArgument);
    axes.push_back(ax);
    if (seq >= 0 && t.dim(ax) != seq)
      ctx.fail("scan inputs have different sequence lengths: " + std::to_string(seq) + " and " +
                   std::to_string(t.dim(ax)),
               ErrorCode::kInvalidArgument);
    seq = t.dim(ax);
  }
  std::vector<std::vector<Tensor>> scans(size_t(a.k));
  for (int64_t t = 0; t < seq; ++t) {
    std::vector<Tensor> ins = states;
    for (int j = 0; j < a.m; ++j)
      ins.push_back(take_slice(inputs[size_t(j)], axes[size_t(j)],
                               a.in_dirs[size_t(j)] != 0 ? seq - 1 - t : t));
    std::vector<Tensor> outs = ctx.run_subgraph(body, ins);
    if (int(outs.size()) != a.n + a.k) ctx.fail("body produced the wrong number of outputs");
    for (int i = 0; i < a.n; ++i) states[size_t(i)] = outs[size_t(i)];
    for (int j = 0; j < a.k; ++j) scans[size_t(j)].push_back(outs[size_t(a.n + j)]);
  }
  std::vector<Tensor> result = states;
  for (int j = 0; j < a.k; ++j) {
    const ir::Value& bv = graph_output(body, size_t(a.n + j));
    result.push_back(stack_slices(ctx, scans[size_t(j)], a.out_axes[size_t(j)],
                                  a.out_dirs[size_t(j)] != 0, bv.dtype, fallback_dims(bv),
                                  "a Scan output"));
  }
  return result;
}

void run_scan(KernelContext& ctx) {
  const ir::Graph& body = ctx.required_graph("body");
  ScanAttrs a = read_scan_attrs(ctx, ctx.num_inputs(), body);
  std::vector<Tensor> results;
  if (ctx.opset() >= 9) {
    std::vector<Tensor> states, inputs;
    for (int i = 0; i < a.n; ++i) states.push_back(ctx.input(i));
    for (int j = 0; j < a.m; ++j) inputs.push_back(ctx.input(a.n + j));
    results = scan_core(ctx, body, a, states, inputs);
  } else {
    // Opset 8: run each batch entry separately, then stack along the batch axis.
    int64_t batch = ctx.input(1 + a.n).rank() > 0 ? ctx.input(1 + a.n).dim(0) : 0;
    int64_t max_seq = ctx.input(1 + a.n).rank() > 1 ? ctx.input(1 + a.n).dim(1) : 0;
    if (ctx.has_input(0)) {
      const Tensor& lens = ctx.input(0);
      for (int64_t b = 0; b < lens.numel(); ++b)
        if (lens.element_as_int(b) != max_seq)
          ctx.unsupported("sequence_lens shorter than the scan inputs are not supported");
    }
    std::vector<std::vector<Tensor>> per_out(size_t(a.n + a.k));
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<Tensor> states, inputs;
      for (int i = 0; i < a.n; ++i) {
        const Tensor& s = ctx.input(1 + i);
        if (s.rank() < 1 || s.dim(0) != batch)
          ctx.fail("states must have the batch axis 0", ErrorCode::kInvalidArgument);
        states.push_back(take_slice(s, 0, b));
      }
      for (int j = 0; j < a.m; ++j) {
        const Tensor& s = ctx.input(1 + a.n + j);
        if (s.rank() < 2 || s.dim(0) != batch)
          ctx.fail("scan inputs must be [batch, sequence, ...]", ErrorCode::kInvalidArgument);
        inputs.push_back(take_slice(s, 0, b));
      }
      std::vector<Tensor> r = scan_core(ctx, body, a, states, inputs);
      for (size_t i = 0; i < r.size(); ++i) per_out[i].push_back(r[i]);
    }
    for (int i = 0; i < a.n + a.k; ++i) {
      const ir::Value& bv = graph_output(body, size_t(i));
      Dims fb = fallback_dims(bv);
      if (i >= a.n) fb.insert(fb.begin(), max_seq);
      results.push_back(
          stack_slices(ctx, per_out[size_t(i)], 0, false, bv.dtype, fb, "a Scan output"));
    }
  }
  for (int i = 0; i < ctx.num_outputs() && i < int(results.size()); ++i)
    ctx.set_output(i, results[size_t(i)]);
}

}  // namespace

// Types the untyped inputs of a Loop or Scan body from the node's inputs, as ONNX shape inference
// does (function-expanded models, e.g. LinearAttention's Scan, leave body inputs untyped). The
// shape-inference driver calls it (OpSchema::seed_subgraph) before inferring `attr_name` of `node`.
void seed_subgraph_inputs(const ir::Graph& parent, const ir::Node& node,
                          const std::string& attr_name, ir::Graph& sub) {
  if (attr_name != "body" || (node.op_type != "Loop" && node.op_type != "Scan")) return;
  auto outer = [&](size_t i) -> const ir::Value* {
    if (i >= node.inputs.size() || node.inputs[i] < 0) return nullptr;
    return &parent.values[size_t(node.inputs[i])];
  };
  auto seed = [&](size_t body_input, DType dt, ir::Shape shape) {
    if (body_input >= sub.inputs.size()) return;
    ir::Value& v = sub.values[size_t(sub.inputs[body_input])];
    if (v.dtype != DType::kUndefined) return;
    v.dtype = dt;
    if (!v.shape.has_rank) v.shape = std::move(shape);
  };
  auto drop_axis = [](ir::Shape s, int64_t axis) {
    if (!s.has_rank || s.rank() == 0) return ir::Shape::unranked();
    if (axis < 0) axis += s.rank();
    if (axis < 0 || axis >= s.rank()) return ir::Shape::unranked();
    s.dims.erase(s.dims.begin() + axis);
    return s;
  };
  if (node.op_type == "Loop") {
    seed(0, DType::kI64, ir::Shape::of({}));
    seed(1, DType::kBool, ir::Shape::of({}));
    for (size_t i = 2; i < node.inputs.size(); ++i)
      if (const ir::Value* v = outer(i)) seed(i, v->dtype, v->shape);
    return;
  }
  int64_t m = 0;
  std::vector<int64_t> axes;
  if (auto it = node.attrs.find("num_scan_inputs"); it != node.attrs.end()) m = it->second.i;
  if (auto it = node.attrs.find("scan_input_axes"); it != node.attrs.end()) axes = it->second.ints;
  bool batched = node.opset < 9;
  size_t first = batched ? 1 : 0;
  if (m <= 0 || size_t(m) + first > node.inputs.size()) return;
  size_t n = node.inputs.size() - first - size_t(m);
  for (size_t i = 0; i < n; ++i)
    if (const ir::Value* v = outer(first + i))
      seed(i, v->dtype, batched ? drop_axis(v->shape, 0) : v->shape);
  for (size_t j = 0; j < size_t(m); ++j) {
    const ir::Value* v = outer(first + n + j);
    if (!v) continue;
    ir::Shape s = batched ? drop_axis(drop_axis(v->shape, 0), 0)
                          : drop_axis(v->shape, j < axes.size() ? axes[j] : 0);
    seed(n + j, v->dtype, s);
  }
}

void register_control_flow_ops(Registry& r) {
  r.add({"", "If", 1, PatternKind::kOpaque, infer_if, run_if});
  r.add({"", "Loop", 1, PatternKind::kOpaque, infer_loop, run_loop, seed_subgraph_inputs});
  r.add({"", "Scan", 8, PatternKind::kOpaque, infer_scan, run_scan, seed_subgraph_inputs});
}

}  // namespace kiln::kernels
