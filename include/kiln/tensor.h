// kiln::Tensor — a dense, contiguous, row-major n-d array with an element type.
//
// A Tensor is a cheap handle (like std::shared_ptr): copies share the same elements. It either
// owns its elements (allocated, zero-initialized, 64-byte aligned) or borrows caller memory
// (`Tensor::view`, no copy; the caller keeps the memory alive while the tensor is used).
// Constness is shallow: a const Tensor still gives access to mutable elements, as a pointer does.
// Kiln never writes through an input tensor handed to Session::run.
//
// A tensor's elements live on the host (Device::kCpu) or in GPU memory (Device::kCuda): on_device
// allocates there, device_view borrows a caller's GPU allocation (say a CUDA runtime or PyTorch
// buffer), and to() copies between the two. The elements of a GPU tensor are not addressable from
// the host: data(), element_as_*() and to_string()'s values need to(Device::kCpu) first;
// raw_data() is then the device address.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kiln/device.h"
#include "kiln/dtype.h"
#include "kiln/error.h"

namespace kiln {

/// A tensor's dimensions.
using Dims = std::vector<int64_t>;

/// Number of elements of `dims` (1 for a scalar); throws kInvalidArgument on a negative dim or
/// an overflowing product.
KILN_API int64_t num_elements(const Dims& dims);
/// "[2,3,4]"
KILN_API std::string dims_to_string(const Dims& dims);

class KILN_API Tensor {
 public:
  /// An undefined tensor (defined() is false).
  Tensor() = default;
  /// An owning tensor with zero-initialized elements ("" for strings).
  Tensor(DType dtype, Dims dims);

  /// A borrowing tensor over caller memory of `num_elements(dims)` elements: no copy.
  static Tensor view(DType dtype, Dims dims, void* data);
  static Tensor view(DType dtype, Dims dims, const void* data) {
    return view(dtype, std::move(dims), const_cast<void*>(data));
  }
  /// A borrowing tensor over `num_elements(dims)` elements at device address `device_data` on
  /// `device` (kCuda: memory of the first GPU's primary context). No copy; the caller keeps the
  /// memory alive while the tensor is used.
  static Tensor device_view(DType dtype, Dims dims, void* device_data,
                            Device device = Device::kCuda);
  /// An owning tensor on `device` (zero-initialized on the host, uninitialized on a GPU);
  /// kiln::Error(kUnsupported) when that device cannot be used here.
  static Tensor on_device(DType dtype, Dims dims, Device device);
  /// The tensor on `device`: itself when it is already there, else a copy (synchronous).
  Tensor to(Device device) const;
  /// An owning tensor holding a copy of `values` (whose size must match `dims`).
  template <class T>
  static Tensor from_vector(Dims dims, const std::vector<T>& values) {
    Tensor t(DTypeOf<T>::value, std::move(dims));
    t.check_count(values.size());
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
    return t;
  }
  /// A 0-d tensor holding `value`.
  template <class T>
  static Tensor scalar(T value) {
    return from_vector<T>({}, std::vector<T>{value});
  }

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const Dims& dims() const { return dims_; }
  const Dims& shape() const { return dims_; }
  int rank() const { return int(dims_.size()); }
  int64_t dim(int i) const;
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return size_t(numel_) * dtype_size(dtype_); }
  bool owns_data() const { return bool(owner_); }
  /// Where the elements live.
  Device device() const { return device_; }
  bool on_host() const { return device_ == Device::kCpu; }

  /// The elements' address (a device address for a GPU tensor).
  void* raw_data() const { return data_; }
  /// Typed element pointer; throws kInvalidArgument when T does not match dtype() or the
  /// elements are on a GPU.
  template <class T>
  T* data() const {
    if (DTypeOf<T>::value != dtype_) type_mismatch(DTypeOf<T>::value);
    if (device_ != Device::kCpu) not_on_host();
    return static_cast<T*>(data_);
  }

  /// A deep, owning copy on the same device.
  Tensor clone() const;
  /// The same elements seen with other dims of the same element count (shares memory).
  Tensor reshaped(Dims dims) const;
  /// Copies the elements of `src` (same dtype and element count) into this tensor, across
  /// devices too (synchronous).
  void copy_from(const Tensor& src) const;

  /// Element `i` (flat index) converted to double; strings are not allowed.
  double element_as_double(int64_t i) const;
  /// Element `i` (flat index) converted to int64; floats are truncated, strings are not allowed.
  int64_t element_as_int(int64_t i) const;
  /// Short human-readable summary: dtype, dims and the first `max_values` elements (the device
  /// instead of values for a GPU tensor).
  std::string to_string(int max_values = 8) const;

 private:
  void check_count(size_t n) const;
  [[noreturn]] void type_mismatch(DType asked) const;
  [[noreturn]] void not_on_host() const;

  DType dtype_ = DType::kUndefined;
  Device device_ = Device::kCpu;
  Dims dims_;
  int64_t numel_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
};

/// Reads an ONNX TensorProto file (the `.pb` files of ONNX test data sets). Throws kIo when the
/// file cannot be read, kInvalidModel when it is not a valid TensorProto.
KILN_API Tensor read_tensor_proto(const std::string& path);
/// Parses a serialized TensorProto; `name` receives the tensor's name when not null.
KILN_API Tensor parse_tensor_proto(const void* data, size_t size, std::string* name = nullptr);
/// Writes `tensor` as an ONNX TensorProto named `name`.
KILN_API void write_tensor_proto(const Tensor& tensor, const std::string& name,
                                 const std::string& path);

}  // namespace kiln
