// kiln::Tensor: storage, views, copies and printing.
#include "kiln/tensor.h"

#include <cstdlib>
#include <limits>
#include <sstream>

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

int64_t Tensor::dim(int i) const {
  if (i < 0) i += rank();
  if (i < 0 || i >= rank())
    throw Error(ErrorCode::kInvalidArgument,
                "dim index out of range for rank " + std::to_string(rank()));
  return dims_[size_t(i)];
}

Tensor Tensor::clone() const {
  if (!defined()) return Tensor();
  Tensor t(dtype_, dims_);
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
  if (src.data_ == data_) return;
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
  os << dtype_name(dtype_) << dims_to_string(dims_) << " {";
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
