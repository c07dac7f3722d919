// The registry: every op has a shape function and a reference kernel, opset lookup picks the
// newest entry not newer than the model's opset, and every op of the shared models is registered.
#include <gtest/gtest.h>

#include <iostream>

#include "kernels/lower/lower.h"
#include "kernels/registry.h"

namespace kiln::testing {
namespace {

TEST(Registry, EveryOpHasShapeFunctionAndKernel) {
  const auto& r = kernels::Registry::global();
  auto all = r.all();
  EXPECT_GT(all.size(), 150u);
  for (const auto* s : all) {
    EXPECT_NE(s->infer, nullptr) << s->op;
    EXPECT_NE(s->kernel, nullptr) << s->op;
    EXPECT_GE(s->since_version, 1) << s->op;
  }
}

TEST(Registry, OpsOfTheSharedModels) {
  const auto& r = kernels::Registry::global();
  for (const char* op : {"Add",
                         "Cast",
                         "Clip",
                         "Concat",
                         "Constant",
                         "ConstantOfShape",
                         "Conv",
                         "Div",
                         "Erf",
                         "Flatten",
                         "Gather",
                         "Gemm",
                         "GlobalAveragePool",
                         "Identity",
                         "LayerNormalization",
                         "MatMul",
                         "MaxPool",
                         "Mul",
                         "Not",
                         "Range",
                         "Relu",
                         "Reshape",
                         "Shape",
                         "Softmax",
                         "Split",
                         "Transpose",
                         "Trilu",
                         "Unsqueeze",
                         "Where"})
    EXPECT_NE(r.find("", op, 17), nullptr) << op;
}

TEST(Registry, OpsetLookupAndDomains) {
  const auto& r = kernels::Registry::global();
  EXPECT_EQ(r.find("", "NoSuchOp", 17), nullptr);
  EXPECT_EQ(r.find("com.example", "Relu", 17), nullptr);
  EXPECT_EQ(r.find("ai.onnx", "Relu", 17), r.find("", "Relu", 17));
  const auto* reshape = r.find("", "Reshape", 17);
  ASSERT_NE(reshape, nullptr);
  EXPECT_LE(reshape->since_version, 17);
  // An opset older than every registration of the op finds nothing.
  EXPECT_EQ(r.find("", "Reshape", 0), nullptr);
  EXPECT_TRUE(r.knows("", "Reshape"));
}

// A lowering is an optimization of an op the registry runs: every lowered op has a reference
// kernel to fall back on and to be tested against.
TEST(Registry, EveryLoweringHasAReferenceKernel) {
  const auto& r = kernels::Registry::global();
  std::vector<std::string> ops = kernels::Lowerings::global().ops();
  EXPECT_GE(ops.size(), 80u);
  for (const auto& op : ops) {
    auto sep = op.rfind('.');  // "domain.Op", or "Op" for ai.onnx
    std::string domain = sep == std::string::npos ? "" : op.substr(0, sep);
    std::string name = sep == std::string::npos ? op : op.substr(sep + 1);
    EXPECT_TRUE(r.knows(domain, name)) << op;
  }
  std::cout << ops.size() << " ops have lowerings\n";
}

}  // namespace
}  // namespace kiln::testing
