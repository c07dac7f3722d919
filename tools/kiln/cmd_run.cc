// kiln run MODEL.onnx [--input NAME=FILE.pb | NAME=random:DIMS]... [--out DIR] [--threads N]
//          [--device cpu|cuda|auto] [--tf32]
#include <cctype>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "cli.h"

namespace kiln::cli {

int cmd_run(Args& args) {
  std::string path, out_dir;
  std::vector<std::string> specs;
  SessionOptions so;
  while (!args.done()) {
    std::string v;
    if (args.flag_value("--input", &v))
      specs.push_back(v);
    else if (args.flag_value("--out", &v))
      out_dir = v;
    else if (args.flag_value("--device", &v))
      so.device = parse_device(v);
    else if (args.flag("--tf32"))
      so.allow_tf32 = true;
    else if (args.flag_value("--threads", &v))
      so.intra_op_threads = int(Args::to_int("--threads", v, 0, 1024));
    else {
      std::string a = args.next();
      if (a.rfind("--", 0) == 0) throw UsageError("run: unknown option " + a);
      if (!path.empty()) throw UsageError("run: one model at a time");
      path = a;
    }
  }
  if (path.empty()) throw UsageError("run: give a model file or folder");
  auto t0 = std::chrono::steady_clock::now();
  Session s(model_file(path), so);
  auto t1 = std::chrono::steady_clock::now();
  TensorMap inputs;
  uint64_t seed = 1;
  for (const auto& spec : specs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("--input expects NAME=FILE.pb or NAME=random:DIMS, got '" + spec + "'");
    std::string name = spec.substr(0, eq), what = spec.substr(eq + 1);
    const ValueInfo* info = nullptr;
    for (const auto& in : s.input_info())
      if (in.name == name) info = &in;
    if (!info) {
      std::string names;
      for (const auto& in : s.input_info()) names += (names.empty() ? "" : ", ") + in.name;
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown input '" + name + "'; the model's inputs are: " + names);
    }
    if (what.rfind("random:", 0) == 0)
      inputs[name] = random_input(info->dtype, parse_dims(what.substr(7)), seed++);
    else
      inputs[name] = read_tensor_proto(what);
  }
  for (const auto& in : s.input_info())
    if (!inputs.count(in.name) && !in.has_default)
      inputs[in.name] = random_input(in.dtype, concrete_dims(in), seed++);
  auto t2 = std::chrono::steady_clock::now();
  TensorMap outputs = s.run(inputs);
  auto t3 = std::chrono::steady_clock::now();
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  for (const auto& o : s.output_info()) {
    const Tensor& t = outputs.at(o.name);
    if (!out_dir.empty()) {
      std::filesystem::create_directories(out_dir);
      std::string safe = o.name;
      for (char& c : safe)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
      std::string file = (std::filesystem::path(out_dir) / (safe + ".pb")).string();
      write_tensor_proto(t, o.name, file);
      std::cout << o.name << ": " << dtype_name(t.dtype()) << dims_to_string(t.dims()) << " -> "
                << file << "\n";
    } else {
      std::cout << o.name << ": " << t.to_string(8) << "\n";
    }
  }
  std::cout << "load " << ms(t0, t1) << " ms, run " << ms(t2, t3) << " ms\n";
  return 0;
}

}  // namespace kiln::cli
