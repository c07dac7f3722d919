// DType names and the Float16 conversions.
#include <algorithm>
#include <cctype>

#include "kiln/dtype.h"
#include "kiln/error.h"

namespace kiln {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidModel:
      return "invalid model";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kInternal:
      return "internal error";
    case ErrorCode::kIo:
      return "i/o error";
  }
  return "error";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kI32:
    case DType::kU32:
      return 4;
    case DType::kF64:
    case DType::kI64:
    case DType::kU64:
      return 8;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
    case DType::kU16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
    case DType::kString:
      return sizeof(std::string);
    case DType::kUndefined:
      return 0;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32:
      return "f32";
    case DType::kF64:
      return "f64";
    case DType::kF16:
      return "f16";
    case DType::kBF16:
      return "bf16";
    case DType::kI8:
      return "i8";
    case DType::kI16:
      return "i16";
    case DType::kI32:
      return "i32";
    case DType::kI64:
      return "i64";
    case DType::kU8:
      return "u8";
    case DType::kU16:
      return "u16";
    case DType::kU32:
      return "u32";
    case DType::kU64:
      return "u64";
    case DType::kBool:
      return "bool";
    case DType::kString:
      return "string";
    case DType::kUndefined:
      return "undefined";
  }
  return "unknown";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::pair<const char*, DType> kNames[] = {
      {"f32", DType::kF32},       {"float", DType::kF32},   {"float32", DType::kF32},
      {"f64", DType::kF64},       {"double", DType::kF64},  {"float64", DType::kF64},
      {"f16", DType::kF16},       {"float16", DType::kF16}, {"bf16", DType::kBF16},
      {"bfloat16", DType::kBF16}, {"i8", DType::kI8},       {"int8", DType::kI8},
      {"i16", DType::kI16},       {"int16", DType::kI16},   {"i32", DType::kI32},
      {"int32", DType::kI32},     {"i64", DType::kI64},     {"int64", DType::kI64},
      {"u8", DType::kU8},         {"uint8", DType::kU8},    {"u16", DType::kU16},
      {"uint16", DType::kU16},    {"u32", DType::kU32},     {"uint32", DType::kU32},
      {"u64", DType::kU64},       {"uint64", DType::kU64},  {"bool", DType::kBool},
      {"string", DType::kString}};
  for (auto& [s, t] : kNames)
    if (n == s) return t;
  return std::nullopt;
}

bool dtype_is_float(DType t) {
  return t == DType::kF32 || t == DType::kF64 || t == DType::kF16 || t == DType::kBF16;
}
bool dtype_is_signed_int(DType t) {
  return t == DType::kI8 || t == DType::kI16 || t == DType::kI32 || t == DType::kI64;
}
bool dtype_is_int(DType t) {
  return dtype_is_signed_int(t) || t == DType::kU8 || t == DType::kU16 || t == DType::kU32 ||
         t == DType::kU64;
}

uint16_t Float16::from_float(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return uint16_t(sign | 0x7e00u);   // NaN
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow -> inf
  if (absx < 0x38800000u) {                                  // subnormal or zero
    if (absx < 0x33000000u) return uint16_t(sign);           // rounds to zero
    uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    int shift = 113 - int(absx >> 23) + 13;  // bits dropped
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t h = ((absx >> 13) - (112u << 10));  // rebias exponent
  uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;  // round to nearest even
  return uint16_t(sign | h);
}

float Float16::to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      x = sign | (uint32_t(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace kiln
