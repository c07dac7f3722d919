#include "op_test_util.h"

#include <cmath>
#include <random>

namespace kiln::testing {

GraphBuilder::GraphBuilder(const std::string& name, int opset_version) : opset(opset_version) {
  g->name = name;
  g->opsets[""] = opset;
}

int GraphBuilder::input(const std::string& name, DType dtype, const std::vector<int64_t>& dims) {
  std::vector<ir::Dim> d;
  for (int64_t v : dims) d.push_back(ir::Dim::constant(v));
  return symbolic_input(name, dtype, std::move(d));
}

int GraphBuilder::symbolic_input(const std::string& name, DType dtype, std::vector<ir::Dim> dims) {
  ir::Value v;
  v.name = name;
  v.dtype = dtype;
  v.shape = ir::Shape(std::move(dims));
  v.is_graph_input = true;
  int id = g->add_value(std::move(v));
  g->inputs.push_back(id);
  return id;
}

int GraphBuilder::constant(const std::string& name, Tensor t) {
  ir::Value v;
  v.name = name;
  v.dtype = t.dtype();
  v.shape = ir::Shape::of(t.dims());
  v.constant = std::move(t);
  return g->add_value(std::move(v));
}

int GraphBuilder::node(const std::string& op, std::vector<int> inputs,
                       std::map<std::string, ir::Attribute> attrs) {
  ir::Node n;
  n.name = op + std::to_string(g->nodes.size());
  n.op_type = op;
  n.opset = opset;
  n.attrs = std::move(attrs);
  n.schema = kernels::Registry::global().find("", op, opset);
  if (!n.schema) throw Error(ErrorCode::kUnsupported, op + " not registered");
  n.inputs = std::move(inputs);
  ir::Value v;
  v.name = n.name + "_out";
  v.producer = int(g->nodes.size());
  int id = g->add_value(std::move(v));
  n.outputs.push_back(id);
  g->nodes.push_back(std::move(n));
  return id;
}

void GraphBuilder::finish(std::vector<int> outputs) {
  g->outputs = std::move(outputs);
  ir::infer_shapes(*g);
}

ir::Attribute GraphBuilder::attr() const {
  ir::Attribute a;
  a.kind = ir::Attribute::Kind::kGraph;
  a.g = g;
  return a;
}

std::unique_ptr<ir::Graph> make_op_graph(const OpCall& call) {
  auto g = std::make_unique<ir::Graph>();
  g->name = "test_" + call.op;
  g->opsets[kernels::canonical_domain(call.domain)] = call.opset;
  if (!call.domain.empty()) g->opsets[""] = 18;
  ir::Node n;
  n.name = call.op + "_node";
  n.op_type = call.op;
  n.domain = kernels::canonical_domain(call.domain);
  n.opset = call.opset;
  n.attrs = call.attrs;
  n.schema = kernels::Registry::global().find(n.domain, n.op_type, call.opset);
  if (!n.schema) throw Error(ErrorCode::kUnsupported, "op " + call.op + " not registered");
  for (size_t i = 0; i < call.inputs.size(); ++i) {
    const Tensor& t = call.inputs[i];
    if (!t.defined()) {
      n.inputs.push_back(-1);
      continue;
    }
    ir::Value v;
    v.name = "in" + std::to_string(i);
    v.dtype = t.dtype();
    v.shape = i < call.input_shapes.size() ? call.input_shapes[i] : ir::Shape::of(t.dims());
    if (call.inputs_as_graph_inputs) {
      v.is_graph_input = true;
    } else {
      v.constant = t;
    }
    int id = g->add_value(std::move(v));
    if (call.inputs_as_graph_inputs) g->inputs.push_back(id);
    n.inputs.push_back(id);
  }
  for (int i = 0; i < call.num_outputs; ++i) {
    ir::Value v;
    v.name = "out" + std::to_string(i);
    v.producer = 0;
    int id = g->add_value(std::move(v));
    n.outputs.push_back(id);
    g->outputs.push_back(id);
  }
  g->nodes.push_back(std::move(n));
  ir::infer_shapes(*g);
  return g;
}

std::vector<ir::Shape> infer_symbolic_shapes(const std::string& op,
                                             const std::vector<std::pair<DType, ir::Shape>>& inputs,
                                             const std::map<std::string, ir::Attribute>& attrs,
                                             int opset, int num_outputs) {
  OpCall call{op, {}, attrs, opset, num_outputs};
  for (const auto& [dtype, shape] : inputs) {
    call.inputs.push_back(Tensor(dtype, {}));  // only the dtype is used: the shape is declared
    call.input_shapes.push_back(shape);
  }
  auto g = make_op_graph(call);
  std::vector<ir::Shape> out;
  for (int id : g->nodes[0].outputs) out.push_back(g->values[size_t(id)].shape);
  return out;
}

std::vector<Tensor> run_op(const OpCall& call) {
  auto g = make_op_graph(call);
  engine::Executor ex(*g);
  std::vector<Tensor> ins;
  if (call.inputs_as_graph_inputs)
    for (const auto& t : call.inputs)
      if (t.defined()) ins.push_back(t);
  return ex.run(ins, {});
}

::testing::AssertionResult tensors_near(const Tensor& got, const Tensor& want, double atol,
                                        double rtol) {
  if (got.dtype() != want.dtype())
    return ::testing::AssertionFailure()
           << "dtype " << dtype_name(got.dtype()) << " vs " << dtype_name(want.dtype());
  if (got.dims() != want.dims())
    return ::testing::AssertionFailure()
           << "dims " << dims_to_string(got.dims()) << " vs " << dims_to_string(want.dims());
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (got.dtype() == DType::kString) {
      if (got.data<std::string>()[i] != want.data<std::string>()[i])
        return ::testing::AssertionFailure()
               << "element " << i << ": \"" << got.data<std::string>()[i] << "\" vs \""
               << want.data<std::string>()[i] << "\"";
    } else if (dtype_is_float(got.dtype())) {
      double a = got.element_as_double(i), b = want.element_as_double(i);
      if (std::isnan(a) && std::isnan(b)) continue;
      if (std::isinf(b) && a == b) continue;
      if (!(std::fabs(a - b) <= atol + rtol * std::fabs(b)))
        return ::testing::AssertionFailure() << "element " << i << ": got " << a << ", want " << b;
    } else if (got.element_as_int(i) != want.element_as_int(i)) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << got.element_as_int(i)
                                           << ", want " << want.element_as_int(i);
    }
  }
  return ::testing::AssertionSuccess();
}

Tensor random_tensor(DType t, const Dims& dims, double lo, double hi, uint64_t seed) {
  Tensor out(t, dims);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < out.numel(); ++i) {
    double v = u(rng);
    switch (t) {
      case DType::kF32:
        out.data<float>()[i] = float(v);
        break;
      case DType::kF64:
        out.data<double>()[i] = v;
        break;
      case DType::kF16:
        out.data<Float16>()[i] = Float16(float(v));
        break;
      case DType::kBF16:
        out.data<BFloat16>()[i] = BFloat16(float(v));
        break;
      case DType::kI8:
        out.data<int8_t>()[i] = int8_t(std::floor(v));
        break;
      case DType::kI16:
        out.data<int16_t>()[i] = int16_t(std::floor(v));
        break;
      case DType::kI32:
        out.data<int32_t>()[i] = int32_t(std::floor(v));
        break;
      case DType::kI64:
        out.data<int64_t>()[i] = int64_t(std::floor(v));
        break;
      case DType::kU8:
        out.data<uint8_t>()[i] = uint8_t(std::floor(std::fabs(v)));
        break;
      case DType::kU16:
        out.data<uint16_t>()[i] = uint16_t(std::floor(std::fabs(v)));
        break;
      case DType::kU32:
        out.data<uint32_t>()[i] = uint32_t(std::floor(std::fabs(v)));
        break;
      case DType::kU64:
        out.data<uint64_t>()[i] = uint64_t(std::floor(std::fabs(v)));
        break;
      case DType::kBool:
        out.data<bool>()[i] = v > (lo + hi) / 2;
        break;
      default:
        throw Error(ErrorCode::kInvalidArgument, "random_tensor: unsupported dtype");
    }
  }
  return out;
}

Session session_from_bytes(const std::string& bytes, const SessionOptions& options) {
  return Session::from_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                             options);
}

Session session_at_level(const std::string& bytes, bool jit, int level) {
  SessionOptions o;
  o.use_jit = jit;
  o.optimization_level = level;
  return session_from_bytes(bytes, o);
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) n++;
  return n;
}

std::string plan_text(const Session& s, const std::map<std::string, Dims>& shapes) {
  std::string all;
  for (const auto& line : s.describe_plan(shapes)) all += line + "\n";
  return all;
}

void expect_outputs_near(const TensorMap& got, const TensorMap& want, double rel_tol) {
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    const Tensor& g = got.at(name);
    ASSERT_EQ(g.dims(), w.dims()) << name;
    double scale = 1e-3;
    for (int64_t i = 0; i < w.numel(); ++i)
      scale = std::max(scale, std::abs(double(w.data<float>()[i])));
    for (int64_t i = 0; i < w.numel(); ++i)
      ASSERT_NEAR(g.data<float>()[i], w.data<float>()[i], rel_tol * scale)
          << name << " element " << i;
  }
}

}  // namespace kiln::testing
