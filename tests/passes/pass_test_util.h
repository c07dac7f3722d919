// Helpers for the graph pass tests: build a model with dev::ModelBuilder, run one pass on its
// imported graph (verified, printed with passes::to_text), and check that a Session at
// optimization level 0 and at a higher level compute the same outputs on random inputs.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "ir/graph.h"
#include "kiln/tensor.h"
#include "model_builder.h"

namespace kiln::testing {

constexpr int32_t kF32 = 1, kI64 = 7, kBool = 9;  // onnx::TensorProto element types

using PassFn = bool (*)(ir::Graph&, int*);

/// A scalar bool initializer (Dropout's training_mode).
inline void init_bool(dev::ModelBuilder& b, const std::string& name, bool value) {
  auto& t = *b.proto().mutable_graph()->add_initializer();
  t.set_name(name);
  t.set_data_type(kBool);
  t.add_int32_data(value ? 1 : 0);
}

/// Imports the model and runs load-time shape inference, as a Session does.
std::unique_ptr<ir::Graph> import_model(const dev::ModelBuilder& b);

/// Runs `pass` once on the imported model, verifies the graph, and returns to_text of the result;
/// `rewrites` (optional) gets the count the pass reported.
std::string after_pass(const dev::ModelBuilder& b, PassFn pass, int* rewrites = nullptr);

/// The text with the values of "const" lines dropped (for folded weights checked numerically).
std::string without_values(const std::string& text);

/// Runs the model at level 0 and at `level` on the same random inputs (f32 in [-2, 2), i64 in
/// [0, 4)) and expects equal outputs within atol 1e-5, rtol 1e-4.
void expect_same_outputs(const dev::ModelBuilder& b, const std::map<std::string, Dims>& inputs,
                         int level = 3);

}  // namespace kiln::testing
