// Registry, NodeAttrs and the two contexts.
#include "kernels/registry.h"

#include <mutex>

#include "kernels/ref/families.h"

namespace kiln::kernels {

std::string canonical_domain(const std::string& domain) {
  return domain == "ai.onnx" ? std::string() : domain;
}

// ---- NodeAttrs -------------------------------------------------------------------------------

const ir::Attribute* NodeAttrs::attr(const std::string& name) const {
  auto it = node_->attrs.find(name);
  return it == node_->attrs.end() ? nullptr : &it->second;
}

namespace {
const ir::Attribute* typed(const NodeAttrs& n, const std::string& name, ir::Attribute::Kind kind) {
  const ir::Attribute* a = n.attr(name);
  if (a && a->kind != kind)
    n.fail("attribute '" + name + "' is " + ir::attribute_kind_name(a->kind) + ", expected " +
           ir::attribute_kind_name(kind));
  return a;
}
}  // namespace

int64_t NodeAttrs::attr_int(const std::string& name, int64_t def) const {
  const auto* a = typed(*this, name, ir::Attribute::Kind::kInt);
  return a ? a->i : def;
}
float NodeAttrs::attr_float(const std::string& name, float def) const {
  const auto* a = typed(*this, name, ir::Attribute::Kind::kFloat);
  return a ? a->f : def;
}
std::string NodeAttrs::attr_string(const std::string& name, const std::string& def) const {
  const auto* a = typed(*this, name, ir::Attribute::Kind::kString);
  return a ? a->s : def;
}
std::vector<int64_t> NodeAttrs::attr_ints(const std::string& name,
                                          const std::vector<int64_t>& def) const {
  const auto* a = typed(*this, name, ir::Attribute::Kind::kInts);
  return a ? a->ints : def;
}
std::vector<float> NodeAttrs::attr_floats(const std::string& name,
                                          const std::vector<float>& def) const {
  const auto* a = typed(*this, name, ir::Attribute::Kind::kFloats);
  return a ? a->floats : def;
}
std::vector<std::string> NodeAttrs::attr_strings(const std::string& name) const {
  const auto* a = typed(*this, name, ir::Attribute::Kind::kStrings);
  return a ? a->strings : std::vector<std::string>{};
}
const Tensor* NodeAttrs::attr_tensor(const std::string& name) const {
  const auto* a = typed(*this, name, ir::Attribute::Kind::kTensor);
  return a ? &a->t : nullptr;
}
const ir::Graph* NodeAttrs::attr_graph(const std::string& name) const {
  const auto* a = typed(*this, name, ir::Attribute::Kind::kGraph);
  return a ? a->g.get() : nullptr;
}
int64_t NodeAttrs::required_int(const std::string& name) const {
  if (!has_attr(name)) fail("required attribute '" + name + "' is missing");
  return attr_int(name, 0);
}
std::vector<int64_t> NodeAttrs::required_ints(const std::string& name) const {
  if (!has_attr(name)) fail("required attribute '" + name + "' is missing");
  return attr_ints(name);
}
const ir::Graph& NodeAttrs::required_graph(const std::string& name) const {
  const ir::Graph* g = attr_graph(name);
  if (!g) fail("required graph attribute '" + name + "' is missing");
  return *g;
}

std::string NodeAttrs::where() const {
  return "node '" + node_->name + "' (" + ir::qualified_op(node_->domain, node_->op_type) + ")";
}

void NodeAttrs::fail(const std::string& msg, ErrorCode code) const {
  throw Error(code, where() + ": " + msg);
}

// ---- InferContext ----------------------------------------------------------------------------

const InputInfo& InferContext::in(int i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is required but missing");
  return inputs_[size_t(i)];
}
DType InferContext::input_dtype(int i) const { return in(i).dtype; }
const ir::Shape& InferContext::input_shape(int i) const { return in(i).shape; }
const Tensor* InferContext::input_value(int i) const { return in(i).value; }

int InferContext::input_rank(int i) const {
  const auto& s = in(i).shape;
  if (!s.has_rank) fail("the rank of input " + std::to_string(i) + " is unknown");
  return s.rank();
}

std::optional<std::vector<ir::Dim>> InferContext::input_dims_value(int i) const {
  const InputInfo& info = in(i);
  if (info.value && (dtype_is_int(info.value->dtype()))) {
    constexpr int64_t kMaxElements = 1 << 16;
    if (info.value->numel() > kMaxElements) return std::nullopt;
    std::vector<ir::Dim> dims;
    dims.reserve(size_t(info.value->numel()));
    for (int64_t k = 0; k < info.value->numel(); ++k) {
      dims.push_back(ir::Dim::constant(info.value->element_as_int(k)));
    }
    return dims;
  }
  if (info.dims_value && info.dims_value->has_value()) return **info.dims_value;
  return std::nullopt;
}

std::optional<std::vector<int64_t>> InferContext::input_ints(int i) const {
  const InputInfo& info = in(i);
  if (info.value) {
    if (!dtype_is_int(info.value->dtype())) return std::nullopt;
    std::vector<int64_t> v(size_t(info.value->numel()));
    for (int64_t k = 0; k < info.value->numel(); ++k) v[size_t(k)] = info.value->element_as_int(k);
    return v;
  }
  auto dims = input_dims_value(i);
  if (!dims) return std::nullopt;
  std::vector<int64_t> v;
  for (const auto& d : *dims) {
    if (!d.is_const()) return std::nullopt;
    v.push_back(d.value);
  }
  return v;
}

void InferContext::set_output(int i, DType dtype, ir::Shape shape) {
  if (i < 0 || i >= num_outputs()) fail("has no output " + std::to_string(i));
  auto& o = outputs_[size_t(i)];
  o.set = true;
  o.dtype = dtype;
  o.shape = std::move(shape);
}

void InferContext::set_output_dims_value(int i, std::vector<ir::Dim> v) {
  if (i < 0 || i >= num_outputs()) fail("has no output " + std::to_string(i));
  outputs_[size_t(i)].dims_value = std::move(v);
}

void InferContext::set_output_value(int i, Tensor value) {
  set_output(i, value.dtype(), ir::Shape::of(value.dims()));
  outputs_[size_t(i)].value = std::move(value);
}

// ---- KernelContext ---------------------------------------------------------------------------

const Tensor& KernelContext::input(int i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is required but missing");
  return *inputs_[size_t(i)];
}

Tensor& KernelContext::output(int i) {
  if (i < 0 || i >= num_outputs()) fail("has no output " + std::to_string(i));
  Tensor& t = (*outputs_)[size_t(i)];
  if (!t.defined())
    throw Error(ErrorCode::kInternal, where() + ": output " + std::to_string(i) +
                                          " was not pre-allocated (its shape was not inferred)");
  return t;
}

Tensor& KernelContext::output(int i, DType dtype, const Dims& dims) {
  if (i < 0 || i >= num_outputs()) fail("has no output " + std::to_string(i));
  Tensor& t = (*outputs_)[size_t(i)];
  if (!t.defined() || t.dtype() != dtype || t.dims() != dims) t = Tensor(dtype, dims);
  return t;
}

void KernelContext::set_output(int i, Tensor t) {
  if (i < 0 || i >= num_outputs()) fail("has no output " + std::to_string(i));
  Tensor& o = (*outputs_)[size_t(i)];
  // A pre-allocated output may be caller memory: copy into it rather than re-point it.
  if (o.defined() && o.dtype() == t.dtype() && o.dims() == t.dims()) {
    o.copy_from(t);
  } else {
    o = std::move(t);
  }
}

std::vector<Tensor> KernelContext::run_subgraph(const ir::Graph& g,
                                                const std::vector<Tensor>& inputs) const {
  if (!runner_) throw Error(ErrorCode::kInternal, where() + ": no subgraph runner");
  return runner_(g, inputs);
}

// ---- Registry --------------------------------------------------------------------------------

const Registry& Registry::global() {
  static const Registry* registry = [] {
    auto* r = new Registry();
    register_control_ops(*r);
    register_control_flow_ops(*r);
    register_elementwise_ops(*r);
    register_reduction_ops(*r);
    register_normalization_ops(*r);
    register_linalg_ops(*r);
    register_conv_ops(*r);
    register_pool_ops(*r);
    register_resize_ops(*r);
    register_shape_ops(*r);
    register_movement_ops(*r);
    register_index_ops(*r);
    register_attention_ops(*r);
    register_loss_ops(*r);
    register_quantize_ops(*r);
    register_sequence_model_ops(*r);
    register_signal_ops(*r);
    register_text_ops(*r);
    register_ml_ops(*r);
    return r;
  }();
  return *registry;
}

void Registry::add(OpSchema schema) {
  if (!schema.infer || !schema.kernel)
    throw Error(ErrorCode::kInternal,
                "op " + schema.op + " registered without shape function or kernel");
  schema.domain = canonical_domain(schema.domain);
  auto& list = ops_[{schema.domain, schema.op}];
  for (const auto& s : list)
    if (s.since_version == schema.since_version)
      throw Error(ErrorCode::kInternal, "op " + schema.op + " registered twice for opset " +
                                            std::to_string(schema.since_version));
  list.push_back(std::move(schema));
  std::sort(list.begin(), list.end(),
            [](const OpSchema& a, const OpSchema& b) { return a.since_version < b.since_version; });
}

const OpSchema* Registry::find(const std::string& domain, const std::string& op,
                               int64_t opset) const {
  auto it = ops_.find({canonical_domain(domain), op});
  if (it == ops_.end()) return nullptr;
  const OpSchema* best = nullptr;
  for (const auto& s : it->second)
    if (s.since_version <= opset) best = &s;
  return best;
}

bool Registry::knows(const std::string& domain, const std::string& op) const {
  return ops_.count({canonical_domain(domain), op}) != 0;
}

std::vector<const OpSchema*> Registry::all() const {
  std::vector<const OpSchema*> out;
  for (const auto& [key, list] : ops_)
    for (const auto& s : list) out.push_back(&s);
  return out;
}

}  // namespace kiln::kernels
