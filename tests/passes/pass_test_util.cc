// Graph pass test helpers.
#include "pass_test_util.h"

#include "ir/onnx_import.h"
#include "ir/passes/to_text.h"
#include "ir/passes/verify.h"
#include "ir/shape_inference.h"
#include "kiln/session.h"
#include "op_test_util.h"

namespace kiln::testing {

std::unique_ptr<ir::Graph> import_model(const dev::ModelBuilder& b) {
  std::string bytes = b.serialize();
  auto g = ir::import_onnx({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "");
  ir::infer_shapes(*g);
  return g;
}

std::string after_pass(const dev::ModelBuilder& b, PassFn pass, int* rewrites) {
  auto g = import_model(b);
  auto interface = ir::passes::interface_names(*g);
  int n = 0;
  bool changed = pass(*g, &n);
  EXPECT_EQ(changed, n > 0) << "a pass reports a change exactly when it counts rewrites";
  ir::passes::verify(*g, interface, "test");
  if (rewrites) *rewrites = n;
  return ir::passes::to_text(*g);
}

std::string without_values(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    if (line.rfind("const ", 0) == 0 && line.find(" = ") != std::string::npos)
      line = line.substr(0, line.find(" = "));
    out += line + "\n";
    pos = nl + 1;
  }
  return out;
}

void expect_same_outputs(const dev::ModelBuilder& b, const std::map<std::string, Dims>& inputs,
                         int level) {
  std::string bytes = b.serialize();
  std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  SessionOptions o0, o1;
  o0.optimization_level = 0;
  o1.optimization_level = level;
  Session s0 = Session::from_bytes(span, o0, "");
  Session s1 = Session::from_bytes(span, o1, "");
  TensorMap in;
  uint64_t seed = 7;
  for (const auto& info : s0.input_info()) {
    auto it = inputs.find(info.name);
    if (it == inputs.end()) continue;
    in[info.name] = info.dtype == DType::kI64
                        ? random_tensor(DType::kI64, it->second, 0, 4, seed++)
                        : random_tensor(info.dtype, it->second, -2, 2, seed++);
  }
  TensorMap want = s0.run(in), got = s1.run(in);
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_TRUE(tensors_near(got.at(name), t, 1e-5, 1e-4)) << "output " << name;
  }
}

}  // namespace kiln::testing
