// ONNX import: every initializer encoding, external data (and its confinement), Constant nodes,
// overridable defaults, node order, opsets.
#include <gtest/gtest.h>

#include <fstream>

#include "ir/onnx_import.h"
#include "ir/onnx_tensor.h"
#include "kiln/kiln.h"
#include "model_builder.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;
constexpr int32_t kF = onnx::TensorProto::FLOAT;

Session load(const ModelBuilder& b, const std::string& dir = "") {
  std::string bytes = b.serialize();
  return Session::from_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, {},
                             dir);
}

TEST(Import, TypedFieldEncodings) {
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(2);
  p.add_float_data(1.5f);
  p.add_float_data(-2.f);
  Tensor t = ir::tensor_from_proto(p, "", "t");
  EXPECT_EQ(t.dims(), (Dims{2}));
  EXPECT_EQ(t.data<float>()[1], -2.f);

  onnx::TensorProto h;  // float16 travels in int32_data as bits
  h.set_data_type(onnx::TensorProto::FLOAT16);
  h.add_dims(1);
  h.add_int32_data(Float16(0.5f).bits);
  EXPECT_EQ(float(ir::tensor_from_proto(h, "", "h").data<Float16>()[0]), 0.5f);

  onnx::TensorProto i8;
  i8.set_data_type(onnx::TensorProto::INT8);
  i8.add_dims(2);
  i8.add_int32_data(-3);
  i8.add_int32_data(7);
  EXPECT_EQ(ir::tensor_from_proto(i8, "", "i8").data<int8_t>()[0], -3);

  onnx::TensorProto u64;
  u64.set_data_type(onnx::TensorProto::UINT64);
  u64.add_uint64_data(~uint64_t(0));
  EXPECT_EQ(ir::tensor_from_proto(u64, "", "u").data<uint64_t>()[0], ~uint64_t(0));

  onnx::TensorProto d;
  d.set_data_type(onnx::TensorProto::DOUBLE);
  d.add_double_data(3.25);
  EXPECT_EQ(ir::tensor_from_proto(d, "", "d").data<double>()[0], 3.25);

  onnx::TensorProto s;
  s.set_data_type(onnx::TensorProto::STRING);
  s.add_dims(2);
  s.add_string_data("a");
  s.add_string_data("bc");
  EXPECT_EQ(ir::tensor_from_proto(s, "", "s").data<std::string>()[1], "bc");

  onnx::TensorProto b;
  b.set_data_type(onnx::TensorProto::BOOL);
  b.add_dims(2);
  b.set_raw_data(std::string("\x01\x00", 2));
  Tensor tb = ir::tensor_from_proto(b, "", "b");
  EXPECT_TRUE(tb.data<bool>()[0]);
  EXPECT_FALSE(tb.data<bool>()[1]);
}

TEST(Import, RawDataSizeMismatchIsAnError) {
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(3);
  p.set_raw_data(std::string(8, '\0'));
  EXPECT_THROW(ir::tensor_from_proto(p, "", "w"), Error);
  onnx::TensorProto q;
  q.set_data_type(onnx::TensorProto::INT64);
  q.add_dims(3);
  q.add_int64_data(1);
  EXPECT_THROW(ir::tensor_from_proto(q, "", "w"), Error);
}

TEST(Import, ProtoRoundTrip) {
  Tensor t = Tensor::from_vector<int32_t>({2, 2}, {1, -2, 3, -4});
  onnx::TensorProto p;
  ir::tensor_to_proto(t, "x", &p);
  Tensor back = ir::tensor_from_proto(p, "", "x");
  EXPECT_EQ(back.dims(), t.dims());
  EXPECT_EQ(back.data<int32_t>()[3], -4);
}

onnx::TensorProto external(const std::string& location, int64_t offset, int64_t length) {
  onnx::TensorProto p;
  p.set_name("w");
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(2);
  p.set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = p.add_external_data();
  kv->set_key("location");
  kv->set_value(location);
  kv = p.add_external_data();
  kv->set_key("offset");
  kv->set_value(std::to_string(offset));
  kv = p.add_external_data();
  kv->set_key("length");
  kv->set_value(std::to_string(length));
  return p;
}

TEST(Import, ExternalDataInsideModelDirectory) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("weights"));
  float data[3] = {9.f, 1.f, 2.f};
  std::ofstream(dir.file("weights/w.bin"), std::ios::binary)
      .write(reinterpret_cast<char*>(data), sizeof data);
  Tensor t = ir::tensor_from_proto(external("weights/w.bin", 4, 8), dir.path(), "w");
  EXPECT_EQ(t.data<float>()[0], 1.f);
  EXPECT_EQ(t.data<float>()[1], 2.f);
}

TEST(Import, ExternalDataMayNotEscape) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("m"));
  float data[2] = {1.f, 2.f};
  std::ofstream(dir.file("w.bin"), std::ios::binary)
      .write(reinterpret_cast<char*>(data), sizeof data);
  std::string model_dir = dir.file("m");
  for (const std::string& loc :
       {std::string("../w.bin"), dir.file("w.bin"), std::string("a/../../w.bin")}) {
    try {
      ir::tensor_from_proto(external(loc, 0, 8), model_dir, "initializer 'w'");
      ADD_FAILURE() << loc << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidModel);
      EXPECT_NE(std::string(e.what()).find("initializer 'w'"), std::string::npos) << e.what();
    }
  }
  // A symlink inside the folder that points outside is an escape too.
  std::filesystem::create_symlink(dir.file("w.bin"), dir.file("m/link.bin"));
  EXPECT_THROW(ir::tensor_from_proto(external("link.bin", 0, 8), model_dir, "w"), Error);
  // Past the end of the file, and no base directory at all.
  std::ofstream(dir.file("m/short.bin"), std::ios::binary).write(reinterpret_cast<char*>(data), 4);
  EXPECT_THROW(ir::tensor_from_proto(external("short.bin", 0, 8), model_dir, "w"), Error);
  EXPECT_THROW(ir::tensor_from_proto(external("short.bin", 100, 4), model_dir, "w"), Error);
  EXPECT_THROW(ir::tensor_from_proto(external("short.bin", 0, 4), "", "w"), Error);
}

TEST(Import, ConstantNodeAndDefaultInput) {
  ModelBuilder b(13);
  b.input("x", kF, {2});
  b.input("bias", kF, {2});  // also an initializer: an overridable default
  b.init_f32("bias", {2}, {10.f, 20.f});
  b.output("y", kF, {2});
  auto& c = b.node("Constant", {}, {"k"});
  auto* a = c.add_attribute();
  a->set_name("value_float");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(2.f);
  b.node("Identity", {"bias"}, {"y"});
  b.output_untyped_shape("kout", kF);
  b.node("Identity", {"k"}, {"kout"});
  Session s = load(b);
  ASSERT_EQ(s.input_info().size(), 2u);
  EXPECT_FALSE(s.input_info()[0].has_default);
  EXPECT_TRUE(s.input_info()[1].has_default);
  Tensor x = Tensor::from_vector<float>({2}, {1.f, 2.f});
  auto out = s.run({{"x", x}});
  EXPECT_EQ(out.at("y").data<float>()[1], 20.f);  // the default
  EXPECT_EQ(out.at("kout").data<float>()[0], 2.f);
  EXPECT_EQ(out.at("kout").rank(), 0);
  out = s.run({{"x", x}, {"bias", Tensor::from_vector<float>({2}, {5.f, 6.f})}});
  EXPECT_EQ(out.at("y").data<float>()[1], 6.f);  // overridden
}

TEST(Import, NodesOutOfOrderAreSorted) {
  ModelBuilder b(13);
  b.input("x", kF, {2});
  b.output("z", kF, {2});
  b.node("Identity", {"y"}, {"z"});
  b.node("Identity", {"x"}, {"y"});
  Session s = load(b);
  auto out = s.run({{"x", Tensor::from_vector<float>({2}, {1.f, 2.f})}});
  EXPECT_EQ(out.at("z").data<float>()[1], 2.f);
}

TEST(Import, CycleAndUndefinedInputAreErrors) {
  ModelBuilder cyc(13);
  cyc.input("x", kF, {2});
  cyc.output("a", kF, {2});
  cyc.node("Identity", {"b"}, {"a"}, "first");
  cyc.node("Identity", {"a"}, {"b"}, "second");
  try {
    load(cyc);
    ADD_FAILURE() << "cycle accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
  ModelBuilder undef(13);
  undef.input("x", kF, {2});
  undef.output("y", kF, {2});
  undef.node("Identity", {"nope"}, {"y"}, "id");
  try {
    load(undef);
    ADD_FAILURE() << "undefined input accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'id'"), std::string::npos) << e.what();
  }
}

TEST(Import, OpsetsPerDomainAndSymbolicInputs) {
  ModelBuilder b(11);
  auto* op = b.proto().add_opset_import();
  op->set_domain("ai.onnx.ml");
  op->set_version(3);
  b.input("x", kF, {-1, 4, -1}, {"batch"});  // second symbolic dim is unnamed
  b.output("y", kF, {-1, 4, -1}, {"batch"});
  b.node("Identity", {"x"}, {"y"});
  Session s = load(b);
  EXPECT_EQ(s.opsets().at(""), 11);
  EXPECT_EQ(s.opsets().at("ai.onnx.ml"), 3);
  const auto& in = s.input_info()[0];
  EXPECT_EQ(in.shape[0].symbol, "batch");
  EXPECT_EQ(in.shape[1].value, 4);
  EXPECT_FALSE(in.shape[2].symbol.empty());  // a fresh symbol for the unnamed dim
  EXPECT_EQ(s.output_info()[0].shape[0].symbol, "batch");
}

}  // namespace
}  // namespace kiln::testing
