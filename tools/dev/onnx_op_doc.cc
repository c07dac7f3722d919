// Developer tool: prints the ONNX schema (doc, attributes, inputs, outputs, type constraints) of an
// operator from the packaged libonnx (opsets up to 17). Usage: onnx_op_doc OP [OPSET] [DOMAIN]
#include <iostream>
#include <string>

#include "onnx/defs/schema.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: onnx_op_doc OP [OPSET] [DOMAIN]\n";
    return 2;
  }
  std::string op = argv[1];
  int opset = argc > 2 ? std::stoi(argv[2]) : 1000;
  std::string domain = argc > 3 ? argv[3] : "";
  const auto* s = onnx::OpSchemaRegistry::Schema(op, opset, domain);
  if (!s) {
    std::cerr << "no schema for " << op << " at opset " << opset << "\n";
    return 1;
  }
  std::cout << op << " since version " << s->SinceVersion() << "\n\n"
            << (s->doc() ? s->doc() : "") << "\n";
  std::cout << "\nAttributes:\n";
  for (const auto& [name, a] : s->attributes())
    std::cout << "  " << name << (a.required ? " (required)" : "") << ": " << a.description << "\n";
  std::cout << "\nInputs:\n";
  for (const auto& f : s->inputs())
    std::cout << "  " << f.GetName() << " : " << f.GetTypeStr()
              << (f.GetOption() == onnx::OpSchema::Optional   ? " (optional)"
                  : f.GetOption() == onnx::OpSchema::Variadic ? " (variadic)"
                                                              : "")
              << " — " << f.GetDescription() << "\n";
  std::cout << "\nOutputs:\n";
  for (const auto& f : s->outputs())
    std::cout << "  " << f.GetName() << " : " << f.GetTypeStr()
              << (f.GetOption() == onnx::OpSchema::Optional ? " (optional)" : "") << " — "
              << f.GetDescription() << "\n";
  std::cout << "\nType constraints:\n";
  for (const auto& t : s->typeConstraintParams()) {
    std::cout << "  " << t.type_param_str << ":";
    for (const auto& a : t.allowed_type_strs) std::cout << " " << a;
    std::cout << "\n";
  }
  return 0;
}
