// Conversion between ONNX TensorProto and kiln::Tensor, in every encoding ONNX allows: raw_data
// (little-endian), the typed repeated fields (float_data, int32_data for the small types and
// 16-bit floats, int64_data, uint64_data, double_data, string_data) and external data files.
//
// External data is resolved relative to `base_dir` and must stay inside it: an absolute path, a
// `..` component or a symlink leading out is an error, as is an offset/length past the file's end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "kiln/tensor.h"

namespace onnx {
class TensorProto;
}

namespace kiln::ir {

/// The DType of an ONNX TensorProto.DataType number, or nullopt for the types Kiln does not
/// support (complex, float8, int4/uint4, int2/uint2, float4, ...) and for 0 (undefined).
std::optional<DType> dtype_from_onnx(int64_t onnx_type);

/// Decodes `proto`; `what` names the tensor in error messages ("initializer 'w'").
Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& base_dir,
                         const std::string& what);
/// Encodes `t` (as raw_data, strings as string_data).
void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* proto);

}  // namespace kiln::ir
