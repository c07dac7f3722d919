// Element types of Kiln tensors and the 16-bit float storage types.
//
// DType values equal ONNX's TensorProto.DataType numbers, so conversion at the ONNX boundary is a
// cast. Float16 and BFloat16 are storage types: arithmetic converts them to float (round to
// nearest even on the way back).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "kiln/export.h"

namespace kiln {

/// Element type of a tensor (numbering as ONNX TensorProto.DataType).
enum class DType : uint8_t {
  kUndefined = 0,
  kF32 = 1,
  kU8 = 2,
  kI8 = 3,
  kU16 = 4,
  kI16 = 5,
  kI32 = 6,
  kI64 = 7,
  kString = 8,
  kBool = 9,
  kF16 = 10,
  kF64 = 11,
  kU32 = 12,
  kU64 = 13,
  kBF16 = 16,
};

/// Bytes per element (sizeof(std::string) for kString, 0 for kUndefined).
KILN_API size_t dtype_size(DType t);
/// Short name: "f32", "i64", "bool", "string", ...
KILN_API const char* dtype_name(DType t);
/// Parses a short name ("f32") or an ONNX name ("float", "FLOAT", "int64").
KILN_API std::optional<DType> dtype_from_name(std::string_view name);
/// True for f16, bf16, f32, f64.
KILN_API bool dtype_is_float(DType t);
/// True for the signed and unsigned integer types (not bool).
KILN_API bool dtype_is_int(DType t);
/// True for the signed integer types.
KILN_API bool dtype_is_signed_int(DType t);

inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

/// IEEE 754 half precision, stored as bits.
struct KILN_API Float16 {
  uint16_t bits = 0;
  Float16() = default;
  explicit Float16(float f) : bits(from_float(f)) {}
  operator float() const { return to_float(bits); }
  static uint16_t from_float(float f);
  static float to_float(uint16_t h);
};

/// bfloat16: the upper half of an IEEE float, stored as bits.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  explicit BFloat16(float f) : bits(from_float(f)) {}
  operator float() const {
    uint32_t u = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static uint16_t from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1);  // round to nearest even
    return uint16_t(u >> 16);
  }
};

/// Maps a C++ element type to its DType (bool, std::string, Float16, ... included).
template <class T>
struct DTypeOf;
#define KILN_DTYPE_OF(T, D)                  \
  template <>                                \
  struct DTypeOf<T> {                        \
    static constexpr DType value = DType::D; \
  };
KILN_DTYPE_OF(float, kF32)
KILN_DTYPE_OF(double, kF64)
KILN_DTYPE_OF(Float16, kF16)
KILN_DTYPE_OF(BFloat16, kBF16)
KILN_DTYPE_OF(int8_t, kI8)
KILN_DTYPE_OF(int16_t, kI16)
KILN_DTYPE_OF(int32_t, kI32)
KILN_DTYPE_OF(int64_t, kI64)
KILN_DTYPE_OF(uint8_t, kU8)
KILN_DTYPE_OF(uint16_t, kU16)
KILN_DTYPE_OF(uint32_t, kU32)
KILN_DTYPE_OF(uint64_t, kU64)
KILN_DTYPE_OF(bool, kBool)
KILN_DTYPE_OF(std::string, kString)
#undef KILN_DTYPE_OF

}  // namespace kiln
