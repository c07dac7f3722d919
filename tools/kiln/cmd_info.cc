// kiln info MODEL.onnx [--json] [--opt-level N]
// kiln info --passes MODEL.onnx [--opt-level N]   (rewrites made by each graph pass at load)
// kiln info --plan MODEL.onnx [--shape NAME=DIMS]... [--specialization auto|exact|dynamic]   (the
// specialized plan: which nodes run as
//                                                      JIT kernels, on reference kernels, as views)
// Symbolic dims without a --shape are taken as 1.
#include <iostream>
#include <map>

#include "cli.h"

namespace kiln::cli {
namespace {

std::string dims_json(const ValueInfo& v) {
  if (!v.has_shape) return "null";
  std::string s = "[";
  for (size_t i = 0; i < v.shape.size(); ++i) {
    if (i) s += ",";
    const Dim& d = v.shape[i];
    s += d.is_constant() ? std::to_string(d.value) : json_quote(d.symbol.empty() ? "?" : d.symbol);
  }
  return s + "]";
}

std::string infos_json(const std::vector<ValueInfo>& vs) {
  std::string s = "[";
  for (size_t i = 0; i < vs.size(); ++i) {
    if (i) s += ",";
    s += "{\"name\":" + json_quote(vs[i].name) + ",\"dtype\":\"" + dtype_name(vs[i].dtype) +
         "\",\"shape\":" + dims_json(vs[i]);
    if (vs[i].has_default) s += ",\"has_default\":true";
    s += "}";
  }
  return s + "]";
}

}  // namespace

int cmd_info(Args& args) {
  bool json = false, plan = false, passes = false;
  SessionOptions so;
  std::string path;
  std::map<std::string, Dims> shapes;
  while (!args.done()) {
    std::string v;
    if (args.flag("--json"))
      json = true;
    else if (args.flag("--plan"))
      plan = true;
    else if (args.flag("--passes"))
      passes = true;
    else if (args.flag_value("--opt-level", &v))
      so.optimization_level = int(Args::to_int("--opt-level", v, 0, 3));
    else if (args.flag_value("--specialization", &v))
      so.specialization = parse_specialization(v);
    else if (args.flag_value("--shape", &v)) {
      auto [name, dims] = parse_shape_arg(v);
      shapes[name] = std::move(dims);
    } else {
      std::string a = args.next();
      if (a.rfind("--", 0) == 0) throw UsageError("info: unknown option " + a);
      if (!path.empty()) throw UsageError("info: one model at a time");
      path = a;
    }
  }
  if (path.empty()) throw UsageError("info: give a model file or folder");
  Session s(model_file(path), so);
  if (passes) {
    std::cout << "graph passes at level " << so.optimization_level << ":\n";
    for (const auto& [pass, n] : s.pass_stats()) std::cout << "  " << pass << " " << n << "\n";
    int64_t nodes = 0;
    for (const auto& [op, n] : s.op_histogram()) nodes += n;
    std::cout << "nodes after: " << nodes << "\n";
    return 0;
  }
  if (plan) {
    for (const auto& in : s.input_info()) {
      if (shapes.count(in.name) || in.has_default) continue;
      Dims dims;
      for (const auto& d : in.shape) dims.push_back(d.is_constant() ? d.value : 1);
      shapes[in.name] = dims;
    }
    std::cout << "plan for";
    for (const auto& [name, dims] : shapes) std::cout << " " << name << "=" << dims_to_string(dims);
    std::cout << ":\n";
    for (const auto& line : s.describe_plan(shapes)) std::cout << "  " << line << "\n";
    return 0;
  }
  auto hist = s.op_histogram();
  int64_t nodes = 0;
  for (auto& [op, n] : hist) nodes += n;
  if (json) {
    std::cout << "{\"model\":" << json_quote(path) << ",\"inputs\":" << infos_json(s.input_info())
              << ",\"outputs\":" << infos_json(s.output_info()) << ",\"opsets\":{";
    bool first = true;
    for (auto& [d, v] : s.opsets()) {
      std::cout << (first ? "" : ",") << json_quote(d.empty() ? "ai.onnx" : d) << ":" << v;
      first = false;
    }
    std::cout << "},\"nodes\":" << nodes << ",\"ops\":{";
    first = true;
    for (auto& [op, n] : hist) {
      std::cout << (first ? "" : ",") << json_quote(op) << ":" << n;
      first = false;
    }
    std::cout << "},\"values\":[";
    first = true;
    for (const auto& line : s.describe_values()) {
      std::cout << (first ? "" : ",") << json_quote(line);
      first = false;
    }
    std::cout << "]}\n";
    return 0;
  }
  std::cout << "model: " << path << "\n";
  std::cout << "opsets:";
  for (auto& [d, v] : s.opsets()) std::cout << " " << (d.empty() ? "ai.onnx" : d) << "=" << v;
  std::cout << "\ninputs:\n";
  for (const auto& v : s.input_info())
    std::cout << "  " << v.name << ": " << v.to_string() << (v.has_default ? "  (has default)" : "")
              << "\n";
  std::cout << "outputs:\n";
  for (const auto& v : s.output_info())
    std::cout << "  " << v.name << ": " << v.to_string() << "\n";
  std::cout << "ops (" << nodes << " nodes):\n";
  for (auto& [op, n] : hist) std::cout << "  " << op << " " << n << "\n";
  std::cout << "values:\n";
  for (const auto& line : s.describe_values()) std::cout << "  " << line << "\n";
  return 0;
}

}  // namespace kiln::cli
