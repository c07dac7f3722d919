// kiln devices, and kiln ptx MODEL.onnx [--shape NAME=DIMS]... [--arch sm_90] [--tf32] --out DIR
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli.h"

namespace kiln::cli {
namespace fs = std::filesystem;

int cmd_devices(Args& args) {
  if (!args.done()) throw UsageError("devices: unexpected argument " + args.next());
  DeviceReport r = list_devices();
  std::cout << "cpu: " << r.cpu.name << ", " << r.cpu.cores << " hardware threads, f32 lanes "
            << r.cpu.vector_lanes_f32 << ", features " << r.cpu.features << "\n";
  const CudaDeviceInfo& c = r.cuda;
  std::string nvrtc = c.nvrtc_version.empty()
                          ? "NVRTC not found"
                          : "NVRTC " + c.nvrtc_version + " (" + c.nvrtc_library + ")";
  if (!c.compiled_in) {
    std::cout << "cuda: " << c.status << "\n";
  } else if (c.gpus.empty()) {
    std::cout << "cuda: no CUDA driver/GPU found: " << c.status << "; " << nvrtc << "\n";
  } else {
    std::cout << "cuda: driver " << c.driver_version / 1000 << "." << (c.driver_version % 1000) / 10
              << ", " << nvrtc << (c.usable ? "" : "; unusable: " + c.status) << "\n";
    for (const GpuInfo& g : c.gpus) {
      char mem[32];
      std::snprintf(mem, sizeof mem, "%.1f GiB", double(g.memory_bytes) / double(1ull << 30));
      std::cout << "  gpu " << g.index << ": " << g.name << ", compute capability "
                << g.compute_major << "." << g.compute_minor << ", " << mem << ", "
                << g.multiprocessors << " SMs\n";
    }
  }
  return 0;
}

int cmd_ptx(Args& args) {
  std::string path, out_dir, arch = "sm_90";
  std::map<std::string, Dims> shapes;
  SessionOptions so;
  while (!args.done()) {
    std::string v;
    if (args.flag_value("--out", &v)) {
      out_dir = v;
    } else if (args.flag_value("--arch", &v)) {
      arch = v;
    } else if (args.flag("--tf32")) {
      so.allow_tf32 = true;
    } else if (args.flag_value("--shape", &v)) {
      auto [name, dims] = parse_shape_arg(v);
      shapes[name] = std::move(dims);
    } else {
      std::string a = args.next();
      if (a.rfind("--", 0) == 0) throw UsageError("ptx: unknown option " + a);
      if (!path.empty()) throw UsageError("ptx: one model at a time");
      path = a;
    }
  }
  if (path.empty()) throw UsageError("ptx: give a model file or folder");
  if (out_dir.empty()) throw UsageError("ptx: give --out DIR");
  Session s(model_file(path), so);
  for (const ValueInfo& in : s.input_info()) {  // symbolic dims default to 1
    if (shapes.count(in.name) || in.has_default) continue;
    Dims dims;
    for (const Dim& d : in.shape) dims.push_back(d.is_constant() ? d.value : 1);
    shapes[in.name] = dims;
  }
  std::vector<CudaKernelCode> kernels = s.generate_cuda(shapes, arch, true);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot create " + out_dir + ": " + ec.message());
  auto write = [](const fs::path& file, const std::string& text) {
    std::ofstream f(file, std::ios::binary);
    f << text;
    if (!f) throw Error(ErrorCode::kIo, "cannot write " + file.string());
  };
  for (size_t i = 0; i < kernels.size(); ++i) {
    std::string stem = std::to_string(i);
    while (stem.size() < 3) stem = "0" + stem;
    std::string label = kernels[i].label.substr(0, 40);
    for (char& ch : label)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    stem += "_" + label;
    write(fs::path(out_dir) / (stem + ".cu"), kernels[i].cuda_c);
    write(fs::path(out_dir) / (stem + ".ptx"), kernels[i].ptx);
  }
  std::cout << kernels.size() << " kernels for " << arch << " written to " << out_dir << "\n";
  return 0;
}

}  // namespace kiln::cli
