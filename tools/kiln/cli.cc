// Argument parsing and input helpers of the CLI.
#include "cli.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>

namespace kiln::cli {
namespace fs = std::filesystem;

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) args_.emplace_back(argv[i]);
}

std::string Args::next() { return args_[i_++]; }

bool Args::flag_value(const std::string& flag, std::string* value) {
  if (done()) return false;
  const std::string& a = args_[i_];
  if (a == flag) {
    if (i_ + 1 >= args_.size()) throw UsageError(flag + " needs a value");
    *value = args_[i_ + 1];
    i_ += 2;
    return true;
  }
  if (a.rfind(flag + "=", 0) == 0) {
    *value = a.substr(flag.size() + 1);
    ++i_;
    return true;
  }
  return false;
}

bool Args::flag(const std::string& flag) {
  if (done() || args_[i_] != flag) return false;
  ++i_;
  return true;
}

int64_t Args::to_int(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
  size_t used = 0;
  int64_t x = 0;
  try {
    x = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size())
    throw UsageError(flag + " expects an integer, got '" + v + "'");
  if (x < lo || x > hi)
    throw UsageError(flag + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "], got " + v);
  return x;
}

double Args::to_double(const std::string& flag, const std::string& v) {
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size() || !(x >= 0))
    throw UsageError(flag + " expects a non-negative number, got '" + v + "'");
  return x;
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::kCpu;
  if (s == "cuda") return Device::kCuda;
  if (s == "auto") return Device::kAuto;
  throw UsageError("--device expects cpu, cuda or auto, got '" + s + "'");
}

std::pair<std::string, Dims> parse_shape_arg(const std::string& v) {
  size_t eq = v.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("--shape expects NAME=DIMS, got '" + v + "'");
  return {v.substr(0, eq), parse_dims(v.substr(eq + 1))};
}

Dims parse_dims(const std::string& s) {
  Dims dims;
  if (s.empty() || s == "scalar") return dims;
  static const std::regex kDims(R"(\d+([x,]\d+)*)");
  if (!std::regex_match(s, kDims))
    throw UsageError("bad dims '" + s + "' (expected e.g. 1x3x224x224)");
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find_first_of("x,", pos);
    if (end == std::string::npos) end = s.size();
    dims.push_back(Args::to_int("dims", s.substr(pos, end - pos), 0, int64_t(1) << 40));
    pos = end + 1;
  }
  return dims;
}

Tensor random_input(DType dtype, const Dims& dims, uint64_t seed) {
  Tensor t(dtype, dims);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> small(0, 15);
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dtype) {
      case DType::kF32:
        t.data<float>()[i] = u(rng);
        break;
      case DType::kF64:
        t.data<double>()[i] = u(rng);
        break;
      case DType::kF16:
        t.data<Float16>()[i] = Float16(u(rng));
        break;
      case DType::kBF16:
        t.data<BFloat16>()[i] = BFloat16(u(rng));
        break;
      case DType::kI8:
        t.data<int8_t>()[i] = int8_t(small(rng));
        break;
      case DType::kI16:
        t.data<int16_t>()[i] = int16_t(small(rng));
        break;
      case DType::kI32:
        t.data<int32_t>()[i] = small(rng);
        break;
      case DType::kI64:
        t.data<int64_t>()[i] = small(rng);
        break;
      case DType::kU8:
        t.data<uint8_t>()[i] = uint8_t(small(rng));
        break;
      case DType::kU16:
        t.data<uint16_t>()[i] = uint16_t(small(rng));
        break;
      case DType::kU32:
        t.data<uint32_t>()[i] = uint32_t(small(rng));
        break;
      case DType::kU64:
        t.data<uint64_t>()[i] = uint64_t(small(rng));
        break;
      case DType::kBool:
        t.data<bool>()[i] = small(rng) & 1;
        break;
      case DType::kString:
        t.data<std::string>()[i] = std::to_string(small(rng));
        break;
      default:
        throw UsageError(std::string("cannot make random values of type ") + dtype_name(dtype));
    }
  }
  return t;
}

Specialization parse_specialization(const std::string& s) {
  if (s == "auto") return Specialization::kAuto;
  if (s == "exact") return Specialization::kExact;
  if (s == "dynamic") return Specialization::kDynamic;
  throw UsageError("--specialization expects auto, exact or dynamic, got '" + s + "'");
}

Dims concrete_dims(const ValueInfo& info) {
  if (!info.has_shape)
    throw UsageError("input '" + info.name + "' has no declared shape; give --input " + info.name +
                     "=random:DIMS");
  Dims dims;
  for (const auto& d : info.shape) {
    if (!d.is_constant())
      throw UsageError("input '" + info.name + "' " + info.to_string() +
                       " has symbolic dims; give its shape, e.g. " + info.name + "=random:DIMS");
    dims.push_back(d.value);
  }
  return dims;
}

Tensor tile_batch(const Tensor& t, int64_t batch) {
  if (t.rank() == 0) throw UsageError("--batch needs inputs with a batch dimension");
  Dims dims = t.dims();
  int64_t rows = dims[0];
  if (rows == 0) throw UsageError("--batch cannot tile an empty input");
  dims[0] = batch;
  Tensor out(t.dtype(), dims);
  int64_t row_elems = rows ? t.numel() / rows : 0;
  for (int64_t b = 0; b < batch; ++b) {
    Tensor dst = Tensor::view(
        out.dtype(), {row_elems},
        static_cast<char*>(out.raw_data()) + size_t(b * row_elems) * dtype_size(out.dtype()));
    Tensor src = Tensor::view(
        t.dtype(), {row_elems},
        static_cast<char*>(t.raw_data()) + size_t((b % rows) * row_elems) * dtype_size(t.dtype()));
    dst.copy_from(src);
  }
  return out;
}

std::string model_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return (fs::path(path) / "model.onnx").string();
  return path;
}

std::vector<std::string> data_set_dirs(const std::string& case_dir) {
  std::vector<std::pair<int, std::string>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(case_dir, ec)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("test_data_set_", 0) == 0) {
      try {
        found.emplace_back(std::stoi(name.substr(14)), e.path().string());
      } catch (const std::exception&) {
      }
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

namespace {
std::vector<std::string> numbered_files(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (int i = 0;; ++i) {
    fs::path p = fs::path(dir) / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    out.push_back(p.string());
  }
  return out;
}
}  // namespace

TensorMap load_data_set_inputs(const Session& s, const std::string& dir) {
  TensorMap inputs;
  const auto& infos = s.input_info();
  auto files = numbered_files(dir, "input_");
  for (size_t i = 0; i < files.size(); ++i) {
    std::string name;
    std::string bytes;
    {
      std::ifstream f(files[i], std::ios::binary);
      bytes.assign((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    }
    Tensor t = parse_tensor_proto(bytes.data(), bytes.size(), &name);
    bool named =
        std::any_of(infos.begin(), infos.end(), [&](const ValueInfo& v) { return v.name == name; });
    if (!named) {
      if (i >= infos.size())
        throw Error(ErrorCode::kInvalidArgument,
                    files[i] + ": the model has only " + std::to_string(infos.size()) + " inputs");
      name = infos[i].name;
    }
    inputs[name] = t;
  }
  return inputs;
}

std::vector<Tensor> load_data_set_outputs(const std::string& dir) {
  std::vector<Tensor> out;
  for (const auto& f : numbered_files(dir, "output_")) out.push_back(read_tensor_proto(f));
  return out;
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace kiln::cli
