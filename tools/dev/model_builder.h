// A small programmatic ONNX model builder over the ONNX protobuf classes, for the demo model
// generator and for tests that need hand-made (also deliberately broken) models.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"

namespace kiln::dev {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 17, const std::string& name = "model");

  /// A graph input; dims use -1 for a symbolic dim named by `symbols` in order.
  ModelBuilder& input(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                      const std::vector<std::string>& symbols = {});
  ModelBuilder& output(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                       const std::vector<std::string>& symbols = {});
  /// An output with an element type and no declared shape.
  ModelBuilder& output_untyped_shape(const std::string& name, int32_t elem_type);
  /// A float initializer stored as raw_data.
  ModelBuilder& init_f32(const std::string& name, const std::vector<int64_t>& dims,
                         const std::vector<float>& values);
  ModelBuilder& init_i64(const std::string& name, const std::vector<int64_t>& dims,
                         const std::vector<int64_t>& values);
  /// Deterministic pseudo-random float initializer in [-scale, scale).
  ModelBuilder& init_random(const std::string& name, const std::vector<int64_t>& dims, float scale,
                            uint64_t seed);
  /// Adds a node and returns it so attributes can be set.
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "");

  static void set_int(onnx::NodeProto& n, const std::string& name, int64_t v);
  static void set_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v);
  static void set_float(onnx::NodeProto& n, const std::string& name, float v);

  onnx::ModelProto& proto() { return model_; }
  std::string serialize() const;
  void save(const std::string& path) const;

 private:
  onnx::ModelProto model_;
};

/// The demo model: a small CNN classifier, input f32[batch,3,32,32] -> probs f32[batch,10].
ModelBuilder make_demo_cnn();

}  // namespace kiln::dev
