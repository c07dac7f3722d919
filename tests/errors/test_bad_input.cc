// Bad input gets a specific kiln::Error naming what is wrong; nothing crashes.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "kiln/kiln.h"
#include "model_builder.h"
#include "test_paths.h"

namespace kiln::testing {
namespace {

using dev::ModelBuilder;
constexpr int32_t kF = onnx::TensorProto::FLOAT;

Session from(const std::string& bytes) {
  return Session::from_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

// Expects `f` to throw kiln::Error with `code` and a message containing every needle.
template <class F>
void expect_error(F&& f, ErrorCode code, std::vector<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "'" << n << "' not in: " << e.what();
  }
}

ModelBuilder add_model() {
  ModelBuilder b(13);
  b.input("a", kF, {-1, 3}, {"batch"});
  b.input("b", kF, {-1, 3}, {"batch"});
  b.output("y", kF, {-1, 3}, {"batch"});
  b.node("Identity", {"a"}, {"y"}, "id");
  b.node("Identity", {"b"}, {"unused"}, "id2");
  return b;
}

TEST(Errors, EmptyTruncatedAndGarbageModels) {
  expect_error([] { from(""); }, ErrorCode::kInvalidModel, {"empty"});
  std::string good = dev::make_demo_cnn().serialize();
  for (size_t cut : {size_t(1), size_t(10), good.size() / 2, good.size() - 3})
    expect_error([&] { from(good.substr(0, cut)); }, ErrorCode::kInvalidModel, {});
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    std::string junk(size_t(1 + rng() % 4096), '\0');
    for (auto& c : junk) c = char(rng());
    try {
      from(junk);
      ADD_FAILURE() << "garbage accepted";
    } catch (const Error& e) {
      EXPECT_NE(e.code(), ErrorCode::kInternal) << e.what();
    }
  }
}

TEST(Errors, MissingFileNamesThePath) {
  expect_error([] { Session s("/nonexistent/dir/model.onnx"); }, ErrorCode::kIo,
               {"/nonexistent/dir/model.onnx"});
  const std::string folder = ::testing::TempDir();
  expect_error([&] { Session s(folder); }, ErrorCode::kIo, {folder, "is a folder"});
}

TEST(Errors, UnknownOperatorNamesOpDomainOpsetNode) {
  ModelBuilder b(15);
  b.input("x", kF, {2});
  b.output("y", kF, {2});
  b.node("FrobnicateTensor", {"x"}, {"y"}, "frob_1");
  expect_error([&] { from(b.serialize()); }, ErrorCode::kUnsupported,
               {"FrobnicateTensor", "ai.onnx", "15", "frob_1"});
  ModelBuilder c(15);
  c.input("x", kF, {2});
  c.output("y", kF, {2});
  c.node("Relu", {"x"}, {"y"}, "r").set_domain("com.example");
  expect_error([&] { from(c.serialize()); }, ErrorCode::kInvalidModel, {"com.example", "'r'"});
}

TEST(Errors, InputNameTypeRankAndDims) {
  Session s = from(add_model().serialize());
  Tensor ok = Tensor(DType::kF32, {2, 3});
  expect_error([&] { s.run({{"a", ok}, {"b", ok}, {"c", ok}}); }, ErrorCode::kInvalidArgument,
               {"unknown input 'c'", "a", "b"});
  expect_error([&] { s.run({{"a", ok}}); }, ErrorCode::kInvalidArgument, {"input 'b'", "missing"});
  expect_error([&] { s.run({{"a", ok}, {"b", Tensor(DType::kI32, {2, 3})}}); },
               ErrorCode::kInvalidArgument, {"input 'b'", "i32", "f32"});
  expect_error([&] { s.run({{"a", ok}, {"b", Tensor(DType::kF32, {2, 3, 1})}}); },
               ErrorCode::kInvalidArgument, {"input 'b'", "rank"});
  expect_error([&] { s.run({{"a", ok}, {"b", Tensor(DType::kF32, {2, 4})}}); },
               ErrorCode::kInvalidArgument, {"input 'b'", "dim 1 is 4", "requires 3"});
  expect_error([&] { s.run({{"a", ok}, {"b", Tensor(DType::kF32, {5, 3})}}); },
               ErrorCode::kInvalidArgument, {"input 'b' dim 0 is 5", "'batch' is 2"});
  expect_error([&] { s.run({{"a", ok}, {"b", Tensor()}}); }, ErrorCode::kInvalidArgument,
               {"input 'b'"});
  EXPECT_NO_THROW(s.run({{"a", ok}, {"b", ok}}));
}

TEST(Errors, CallerOutputOfWrongShape) {
  Session s = from(add_model().serialize());
  Tensor ok = Tensor(DType::kF32, {2, 3});
  expect_error([&] { s.run({{"a", ok}, {"b", ok}}, {{"y", Tensor(DType::kF32, {3, 3})}}); },
               ErrorCode::kInvalidArgument, {"output 'y'"});
  expect_error([&] { s.run({{"a", ok}, {"b", ok}}, {{"nope", ok}}); }, ErrorCode::kInvalidArgument,
               {"unknown output 'nope'"});
}

TEST(Errors, InconsistentShapesInsideTheGraphFailAtLoad) {
  ModelBuilder b(13);
  b.input("x", kF, {2, 3});
  b.init_f32("w", {4}, {1, 2, 3, 4});
  b.output("y", kF, {2, 3});
  b.node("Add", {"x", "w"}, {"y"}, "bad_add");
  expect_error([&] { from(b.serialize()); }, ErrorCode::kInvalidModel, {"bad_add", "[2,3]", "[4]"});
}

TEST(Errors, DeclaredOutputShapeThatContradictsInference) {
  ModelBuilder b(13);
  b.input("x", kF, {2, 3});
  b.output("y", kF, {2, 5});
  b.node("Identity", {"x"}, {"y"}, "id");
  expect_error([&] { from(b.serialize()); }, ErrorCode::kInvalidModel, {"'id'", "[2,5]", "[2,3]"});
}

TEST(Errors, BadOptions) {
  std::string bytes = add_model().serialize();
  SessionOptions o;
  o.optimization_level = 7;
  expect_error(
      [&] {
        Session::from_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, o);
      },
      ErrorCode::kInvalidArgument, {"optimization_level"});
}

}  // namespace
}  // namespace kiln::testing
