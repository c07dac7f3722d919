// ModelBuilder and the demo model.
#include "model_builder.h"

#include <fstream>
#include <random>
#include <stdexcept>

namespace kiln::dev {

ModelBuilder::ModelBuilder(int64_t opset, const std::string& name) {
  model_.set_ir_version(8);
  model_.set_producer_name("kiln");
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name(name);
}

namespace {
void set_type(onnx::ValueInfoProto* vi, int32_t elem_type, const std::vector<int64_t>& dims,
              const std::vector<std::string>& symbols) {
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  size_t sym = 0;
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d >= 0)
      dim->set_dim_value(d);
    else if (sym < symbols.size())
      dim->set_dim_param(symbols[sym++]);
  }
}
}  // namespace

ModelBuilder& ModelBuilder::input(const std::string& name, int32_t elem_type,
                                  const std::vector<int64_t>& dims,
                                  const std::vector<std::string>& symbols) {
  auto* vi = model_.mutable_graph()->add_input();
  vi->set_name(name);
  set_type(vi, elem_type, dims, symbols);
  return *this;
}

ModelBuilder& ModelBuilder::output(const std::string& name, int32_t elem_type,
                                   const std::vector<int64_t>& dims,
                                   const std::vector<std::string>& symbols) {
  auto* vi = model_.mutable_graph()->add_output();
  vi->set_name(name);
  set_type(vi, elem_type, dims, symbols);
  return *this;
}

ModelBuilder& ModelBuilder::output_untyped_shape(const std::string& name, int32_t elem_type) {
  auto* vi = model_.mutable_graph()->add_output();
  vi->set_name(name);
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(elem_type);
  return *this;
}

ModelBuilder& ModelBuilder::init_f32(const std::string& name, const std::vector<int64_t>& dims,
                                     const std::vector<float>& values) {
  auto* t = model_.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return *this;
}

ModelBuilder& ModelBuilder::init_i64(const std::string& name, const std::vector<int64_t>& dims,
                                     const std::vector<int64_t>& values) {
  auto* t = model_.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t v : values) t->add_int64_data(v);
  return *this;
}

ModelBuilder& ModelBuilder::init_random(const std::string& name, const std::vector<int64_t>& dims,
                                        float scale, uint64_t seed) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return init_f32(name, dims, v);
}

onnx::NodeProto& ModelBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& outputs,
                                    const std::string& name) {
  auto* n = model_.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? op + "_" + std::to_string(model_.graph().node_size() - 1) : name);
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return *n;
}

void ModelBuilder::set_int(onnx::NodeProto& n, const std::string& name, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void ModelBuilder::set_ints(onnx::NodeProto& n, const std::string& name,
                            const std::vector<int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void ModelBuilder::set_float(onnx::NodeProto& n, const std::string& name, float v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

std::string ModelBuilder::serialize() const {
  std::string s;
  if (!model_.SerializeToString(&s)) throw std::runtime_error("cannot serialize the model");
  return s;
}

void ModelBuilder::save(const std::string& path) const {
  std::ofstream f(path, std::ios::binary);
  std::string s = serialize();
  f.write(s.data(), std::streamsize(s.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

ModelBuilder make_demo_cnn() {
  ModelBuilder b(17, "kiln_demo_cnn");
  const int32_t F = onnx::TensorProto::FLOAT;
  b.input("image", F, {-1, 3, 32, 32}, {"batch"});
  b.output("probs", F, {-1, 10}, {"batch"});
  b.init_random("conv1.w", {16, 3, 3, 3}, 0.3f, 1).init_random("conv1.b", {16}, 0.1f, 2);
  b.init_random("conv2.w", {32, 16, 3, 3}, 0.1f, 3).init_random("conv2.b", {32}, 0.1f, 4);
  b.init_random("fc.w", {10, 32}, 0.3f, 5).init_random("fc.b", {10}, 0.1f, 6);
  auto& c1 = b.node("Conv", {"image", "conv1.w", "conv1.b"}, {"c1"}, "conv1");
  ModelBuilder::set_ints(c1, "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"}, "relu1");
  auto& p1 = b.node("MaxPool", {"r1"}, {"p1"}, "pool1");
  ModelBuilder::set_ints(p1, "kernel_shape", {2, 2});
  ModelBuilder::set_ints(p1, "strides", {2, 2});
  auto& c2 = b.node("Conv", {"p1", "conv2.w", "conv2.b"}, {"c2"}, "conv2");
  ModelBuilder::set_ints(c2, "pads", {1, 1, 1, 1});
  ModelBuilder::set_ints(c2, "strides", {2, 2});
  b.node("Relu", {"c2"}, {"r2"}, "relu2");
  b.node("GlobalAveragePool", {"r2"}, {"gap"}, "gap");
  auto& fl = b.node("Flatten", {"gap"}, {"flat"}, "flatten");
  ModelBuilder::set_int(fl, "axis", 1);
  auto& fc = b.node("Gemm", {"flat", "fc.w", "fc.b"}, {"logits"}, "fc");
  ModelBuilder::set_int(fc, "transB", 1);
  auto& sm = b.node("Softmax", {"logits"}, {"probs"}, "softmax");
  ModelBuilder::set_int(sm, "axis", -1);
  return b;
}

}  // namespace kiln::dev
