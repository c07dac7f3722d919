// TensorProto <-> kiln::Tensor in every encoding, external data confined to the model directory.
#include "ir/onnx_tensor.h"

#include <filesystem>
#include <fstream>
#include <type_traits>

#include "onnx/onnx_pb.h"

namespace kiln::ir {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void bad(const std::string& what, const std::string& msg) {
  throw Error(ErrorCode::kInvalidModel, what + ": " + msg);
}

// Reads [offset, offset+length) of an external data file that must lie inside base_dir.
std::string read_external(const onnx::TensorProto& p, const std::string& base_dir,
                          const std::string& what) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    try {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = std::stoll(kv.value());
      else if (kv.key() == "length")
        length = std::stoll(kv.value());
    } catch (const std::exception&) {
      bad(what, "external data " + kv.key() + " '" + kv.value() + "' is not a number");
    }
  }
  if (location.empty()) bad(what, "external data without a location");
  if (base_dir.empty())
    bad(what, "external data '" + location +
                  "' but the model was loaded from bytes without a base directory");
  fs::path rel(location);
  if (rel.is_absolute())
    bad(what, "external data path '" + location +
                  "' is absolute; it must be relative to the model's directory");
  for (const auto& part : rel)
    if (part == "..")
      bad(what, "external data path '" + location + "' escapes the model's directory");
  std::error_code ec;
  fs::path base = fs::weakly_canonical(fs::path(base_dir), ec);
  fs::path full = fs::weakly_canonical(base / rel, ec);
  if (ec) bad(what, "external data file '" + location + "' cannot be resolved");
  auto [b_end, f_it] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (b_end != base.end())
    bad(what, "external data path '" + location + "' escapes the model's directory");
  std::ifstream f(full, std::ios::binary);
  if (!f) bad(what, "external data file '" + location + "' cannot be opened");
  f.seekg(0, std::ios::end);
  int64_t size = int64_t(f.tellg());
  if (offset < 0 || offset > size)
    bad(what, "external data offset " + std::to_string(offset) + " is past the end of '" +
                  location + "'");
  if (length < 0) length = size - offset;
  if (length > size - offset)
    bad(what, "external data of " + std::to_string(length) + " bytes at offset " +
                  std::to_string(offset) + " runs past the end of '" + location + "' (" +
                  std::to_string(size) + " bytes)");
  std::string data(size_t(length), '\0');
  f.seekg(offset);
  f.read(data.data(), length);
  if (!f) bad(what, "external data file '" + location + "' could not be read");
  return data;
}

template <class T, class Src>
void fill_from(const Tensor& t, const Src& src, const std::string& what) {
  if (int64_t(src.size()) != t.numel())
    bad(what,
        "holds " + std::to_string(src.size()) + " values for dims " + dims_to_string(t.dims()));
  T* d = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
      d[i].bits = uint16_t(src[int(i)]);
    } else {
      d[i] = static_cast<T>(src[int(i)]);
    }
  }
}

}  // namespace

std::optional<DType> dtype_from_onnx(int64_t t) {
  switch (t) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
    case 8:
    case 9:
    case 10:
    case 11:
    case 12:
    case 13:
    case 16:
      return DType(uint8_t(t));
    default:
      return std::nullopt;
  }
}

Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir,
                         const std::string& what) {
  if (p.has_segment())
    throw Error(ErrorCode::kUnsupported, what + ": segmented tensors are not supported");
  int32_t dt = p.data_type();
  if (!dtype_from_onnx(dt))
    throw Error(ErrorCode::kUnsupported, what + ": element type " + std::to_string(dt) +
                                             " (TensorProto.DataType) is not supported");
  DType dtype = DType(dt);
  Dims dims(p.dims().begin(), p.dims().end());
  for (int64_t d : dims)
    if (d < 0) bad(what, "negative dimension in " + dims_to_string(dims));
  Tensor t;
  try {
    t = Tensor(dtype, dims);
  } catch (const Error& e) {
    bad(what, e.what());
  }
  const bool external = p.data_location() == onnx::TensorProto::EXTERNAL;
  if (external || p.has_raw_data()) {
    if (dtype == DType::kString) bad(what, "string tensors cannot use raw_data");
    std::string ext;
    const std::string* raw = &p.raw_data();
    if (external) {
      ext = read_external(p, base_dir, what);
      raw = &ext;
    }
    if (raw->size() != t.nbytes())
      bad(what, "raw data has " + std::to_string(raw->size()) + " bytes, dims " +
                    dims_to_string(dims) + " of " + dtype_name(dtype) + " need " +
                    std::to_string(t.nbytes()));
    if (dtype == DType::kBool) {
      auto* d = t.data<bool>();
      for (int64_t i = 0; i < t.numel(); ++i) d[i] = (*raw)[size_t(i)] != 0;
    } else if (t.nbytes()) {
      std::memcpy(t.raw_data(), raw->data(), t.nbytes());
    }
    return t;
  }
  switch (dtype) {
    case DType::kF32:
      fill_from<float>(t, p.float_data(), what);
      break;
    case DType::kF64:
      fill_from<double>(t, p.double_data(), what);
      break;
    case DType::kI64:
      fill_from<int64_t>(t, p.int64_data(), what);
      break;
    case DType::kU32:
      fill_from<uint32_t>(t, p.uint64_data(), what);
      break;
    case DType::kU64:
      fill_from<uint64_t>(t, p.uint64_data(), what);
      break;
    case DType::kI32:
      fill_from<int32_t>(t, p.int32_data(), what);
      break;
    case DType::kI16:
      fill_from<int16_t>(t, p.int32_data(), what);
      break;
    case DType::kI8:
      fill_from<int8_t>(t, p.int32_data(), what);
      break;
    case DType::kU16:
      fill_from<uint16_t>(t, p.int32_data(), what);
      break;
    case DType::kU8:
      fill_from<uint8_t>(t, p.int32_data(), what);
      break;
    case DType::kBool:
      fill_from<bool>(t, p.int32_data(), what);
      break;
    case DType::kF16:
      fill_from<Float16>(t, p.int32_data(), what);
      break;
    case DType::kBF16:
      fill_from<BFloat16>(t, p.int32_data(), what);
      break;
    case DType::kString: {
      if (int64_t(p.string_data_size()) != t.numel())
        bad(what, "holds " + std::to_string(p.string_data_size()) + " strings for dims " +
                      dims_to_string(dims));
      auto* d = t.data<std::string>();
      for (int64_t i = 0; i < t.numel(); ++i) d[i] = p.string_data(int(i));
      break;
    }
    default:
      bad(what, "unexpected element type");
  }
  return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->Clear();
  p->set_name(name);
  p->set_data_type(int32_t(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  if (t.dtype() == DType::kString) {
    auto* s = t.data<std::string>();
    for (int64_t i = 0; i < t.numel(); ++i) p->add_string_data(s[i]);
  } else if (t.dtype() == DType::kBool) {
    std::string raw(size_t(t.numel()), '\0');
    for (int64_t i = 0; i < t.numel(); ++i) raw[size_t(i)] = t.data<bool>()[i] ? 1 : 0;
    p->set_raw_data(raw);
  } else {
    p->set_raw_data(std::string(static_cast<const char*>(t.raw_data()), t.nbytes()));
  }
}

}  // namespace kiln::ir

namespace kiln {

Tensor parse_tensor_proto(const void* data, size_t size, std::string* name) {
  onnx::TensorProto p;
  if (size > size_t(std::numeric_limits<int>::max()) || !p.ParseFromArray(data, int(size)))
    throw Error(ErrorCode::kInvalidModel, "not a valid ONNX TensorProto");
  if (name) *name = p.name();
  return ir::tensor_from_proto(p, "", "tensor '" + p.name() + "'");
}

Tensor read_tensor_proto(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorCode::kIo, "cannot open '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  try {
    return parse_tensor_proto(bytes.data(), bytes.size());
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

void write_tensor_proto(const Tensor& t, const std::string& name, const std::string& path) {
  onnx::TensorProto p;
  ir::tensor_to_proto(t, name, &p);
  std::ofstream f(path, std::ios::binary);
  if (!f || !p.SerializeToOstream(&f)) throw Error(ErrorCode::kIo, "cannot write '" + path + "'");
}

}  // namespace kiln
