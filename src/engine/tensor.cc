// kiln::Tensor: storage, views, copies and printing.
#include "kiln/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>

#ifdef KILN_WITH_CUDA
#include "devices/cuda/cuda_device.h"
#endif

namespace kiln {

int64_t num_elements(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0)
      throw Error(ErrorCode::kInvalidArgument, "negative dimension in " + dims_to_string(dims));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error(ErrorCode::kInvalidArgument,
                  "tensor of dims " + dims_to_string(dims) + " is too large");
    n *= d;
  }
  return n;
}

std::string dims_to_string(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

namespace {
constexpr size_t kAlign = 64;
// One tensor may not exceed 64 GiB: a corrupt dim fails cleanly instead of exhausting memory.
constexpr int64_t kMaxBytes = int64_t(1) << 36;
}  // namespace

Tensor::Tensor(DType dtype, Dims dims) : dtype_(dtype), dims_(std::move(dims)) {
  if (dtype == DType::kUndefined)
    throw Error(ErrorCode::kInvalidArgument, "cannot create a tensor of undefined element type");
  numel_ = num_elements(dims_);
  if (numel_ > kMaxBytes / int64_t(dtype_size(dtype)))
    throw Error(ErrorCode::kInvalidArgument,
                "tensor of dims " + dims_to_string(dims_) + " is too large to allocate");
  if (dtype == DType::kString) {
    auto* p = new std::string[size_t(numel_ ? numel_ : 1)];
    owner_ = std::shared_ptr<void>(p, [](void* q) { delete[] static_cast<std::string*>(q); });
    data_ = p;
    return;
  }
  size_t bytes = (nbytes() + kAlign - 1) / kAlign * kAlign;
  if (bytes == 0) bytes = kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p)
    throw Error(ErrorCode::kInvalidArgument, "out of memory allocating " + dims_to_string(dims_));
  std::memset(p, 0, bytes);
  owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  data_ = p;
}

Tensor Tensor::view(DType dtype, Dims dims, void* data) {
  if (dtype == DType::kUndefined)
    throw Error(ErrorCode::kInvalidArgument, "cannot view memory as undefined element type");
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.numel_ = num_elements(t.dims_);
  if (!data && t.numel_ > 0)
    throw Error(ErrorCode::kInvalidArgument,
                "tensor view of " + dims_to_string(t.dims_) + " over a null pointer");
  t.data_ = data;
  return t;
}

namespace {

// Storage of device tensors, through the CUDA backend when it is built in.
std::shared_ptr<void> device_memory(Device device, size_t bytes) {
  if (device != Device::kCuda)
    throw Error(ErrorCode::kInvalidArgument,
                std::string("tensors cannot live on device '") + device_name(device) + "'");
#ifdef KILN_WITH_CUDA
  return devices::cuda::allocate_tensor_memory(bytes);
#else
  (void)bytes;
  throw Error(ErrorCode::kUnsupported,
              "GPU tensors need the CUDA backend, which is not compiled into this build");
#endif
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (dst_dev == Device::kCpu && src_dev == Device::kCpu) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef KILN_WITH_CUDA
  devices::cuda::copy_memory(dst, dst_dev != Device::kCpu, src, src_dev != Device::kCpu, bytes);
#else
  throw Error(ErrorCode::kUnsupported,
              "GPU tensors need the CUDA backend, which is not compiled into this build");
#endif
}

}  // namespace

Tensor Tensor::device_view(DType dtype, Dims dims, void* device_data, Device device) {
  if (device == Device::kAuto)
    throw Error(ErrorCode::kInvalidArgument, "a tensor lives on the CPU or on a GPU, not 'auto'");
  if (device != Device::kCpu && dtype == DType::kString)
    throw Error(ErrorCode::kInvalidArgument, "string tensors cannot live on a GPU");
  Tensor t = view(dtype, std::move(dims), device_data);
  t.device_ = device;
  return t;
}

Tensor Tensor::on_device(DType dtype, Dims dims, Device device) {
  if (device == Device::kCpu) return Tensor(dtype, std::move(dims));
  if (dtype == DType::kUndefined || dtype == DType::kString)
    throw Error(ErrorCode::kInvalidArgument,
                std::string("no GPU tensor of element type ") + dtype_name(dtype));
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.numel_ = num_elements(t.dims_);
  t.device_ = device;
  if (t.nbytes() > 0) {
    t.owner_ = device_memory(device, t.nbytes());
    t.data_ = t.owner_.get();
  }
  return t;
}

Tensor Tensor::to(Device device) const {
  if (!defined() || device == device_) return *this;
  Tensor t = on_device(dtype_, dims_, device);
  t.copy_from(*this);
  return t;
}

void Tensor::not_on_host() const {
  throw Error(ErrorCode::kInvalidArgument,
              std::string("the elements of this ") + dtype_name(dtype_) + dims_to_string(dims_) +
                  " tensor are on device '" + device_name(device_) +
                  "': copy it to the host with to(Device::kCpu) first");
}

int64_t Tensor::dim(int i) const {
  if (i < 0) i += rank();
  if (i < 0 || i >= rank())
    throw Error(ErrorCode::kInvalidArgument,
                "dim index out of range for rank " + std::to_string(rank()));
  return dims_[size_t(i)];
}

Tensor Tensor::clone() const {
  if (!defined()) return Tensor();
  Tensor t = on_device(dtype_, dims_, device_);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::reshaped(Dims dims) const {
  if (num_elements(dims) != numel_)
    throw Error(ErrorCode::kInvalidArgument,
                "cannot reshape " + dims_to_string(dims_) + " to " + dims_to_string(dims));
  Tensor t = *this;
  t.dims_ = std::move(dims);
  return t;
}

void Tensor::copy_from(const Tensor& src) const {
  if (src.dtype_ != dtype_ || src.numel_ != numel_)
    throw Error(
        ErrorCode::kInvalidArgument,
        "copy between tensors of different type or size: " + std::string(dtype_name(src.dtype_)) +
            dims_to_string(src.dims_) + " -> " + dtype_name(dtype_) + dims_to_string(dims_));
  if (src.data_ == data_ && src.device_ == device_) return;
  if (device_ != Device::kCpu || src.device_ != Device::kCpu) {
    if (numel_ > 0) copy_bytes(data_, device_, src.data_, src.device_, nbytes());
    return;
  }
  if (dtype_ == DType::kString) {
    auto* d = static_cast<std::string*>(data_);
    auto* s = static_cast<const std::string*>(src.data_);
    for (int64_t i = 0; i < numel_; ++i) d[i] = s[i];
  } else if (numel_ > 0) {
    std::memcpy(data_, src.data_, nbytes());
  }
}

void Tensor::check_count(size_t n) const {
  if (int64_t(n) != numel_)
    throw Error(ErrorCode::kInvalidArgument,
                std::to_string(n) + " values given for a tensor of dims " + dims_to_string(dims_));
}

void Tensor::type_mismatch(DType asked) const {
  throw Error(ErrorCode::kInvalidArgument, std::string("tensor holds ") + dtype_name(dtype_) +
                                               ", accessed as " + dtype_name(asked));
}

double Tensor::element_as_double(int64_t i) const {
  if (i < 0 || i >= numel_) throw Error(ErrorCode::kInternal, "element index out of range");
  if (device_ != Device::kCpu) not_on_host();
  switch (dtype_) {
    case DType::kF32:
      return static_cast<const float*>(data_)[i];
    case DType::kF64:
      return static_cast<const double*>(data_)[i];
    case DType::kF16:
      return float(static_cast<const Float16*>(data_)[i]);
    case DType::kBF16:
      return float(static_cast<const BFloat16*>(data_)[i]);
    case DType::kI8:
      return static_cast<const int8_t*>(data_)[i];
    case DType::kI16:
      return static_cast<const int16_t*>(data_)[i];
    case DType::kI32:
      return static_cast<const int32_t*>(data_)[i];
    case DType::kI64:
      return double(static_cast<const int64_t*>(data_)[i]);
    case DType::kU8:
      return static_cast<const uint8_t*>(data_)[i];
    case DType::kU16:
      return static_cast<const uint16_t*>(data_)[i];
    case DType::kU32:
      return static_cast<const uint32_t*>(data_)[i];
    case DType::kU64:
      return double(static_cast<const uint64_t*>(data_)[i]);
    case DType::kBool:
      return static_cast<const bool*>(data_)[i] ? 1.0 : 0.0;
    default:
      throw Error(ErrorCode::kInvalidArgument,
                  std::string("no numeric value in a ") + dtype_name(dtype_) + " tensor");
  }
}

int64_t Tensor::element_as_int(int64_t i) const {
  if (device_ != Device::kCpu) not_on_host();
  switch (dtype_) {
    case DType::kI64:
      if (i < 0 || i >= numel_) throw Error(ErrorCode::kInternal, "element index out of range");
      return static_cast<const int64_t*>(data_)[i];
    case DType::kU64:
      if (i < 0 || i >= numel_) throw Error(ErrorCode::kInternal, "element index out of range");
      return int64_t(static_cast<const uint64_t*>(data_)[i]);
    default:
      return int64_t(element_as_double(i));
  }
}

std::string Tensor::to_string(int max_values) const {
  if (!defined()) return "(undefined)";
  std::ostringstream os;
  os << dtype_name(dtype_) << dims_to_string(dims_);
  if (device_ != Device::kCpu) {
    os << " on " << device_name(device_);
    return os.str();
  }
  os << " {";
  int64_t n = std::min<int64_t>(numel_, max_values);
  for (int64_t i = 0; i < n; ++i) {
    if (i) os << ", ";
    if (dtype_ == DType::kString)
      os << '"' << static_cast<const std::string*>(data_)[i] << '"';
    else if (dtype_ == DType::kBool)
      os << (static_cast<const bool*>(data_)[i] ? "true" : "false");
    else if (dtype_is_float(dtype_))
      os << element_as_double(i);
    else
      os << element_as_int(i);
  }
  if (numel_ > n) os << ", ...";
  os << "}";
  return os.str();
}

}  // namespace kiln
