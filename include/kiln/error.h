// kiln::Error — the only exception Kiln's public API throws.
//
// User mistakes (a malformed model, a bad input, an unsupported operator) carry a code that says
// whose fault it is and a message that names the node, input or dimension involved. `Internal`
// means a bug in Kiln, never the caller's fault.
#pragma once

#include <stdexcept>
#include <string>

#include "kiln/export.h"

namespace kiln {

/// Why an operation failed.
enum class ErrorCode {
  kInvalidModel,     ///< the model file or graph is malformed or inconsistent
  kInvalidArgument,  ///< the caller passed a bad input, name, dtype, shape or option
  kUnsupported,      ///< valid ONNX that Kiln does not implement (op, dtype, feature)
  kInternal,         ///< a broken invariant inside Kiln
  kIo,               ///< a file could not be read or written
};

/// Returns "invalid model", "invalid argument", ...
KILN_API const char* error_code_name(ErrorCode code);

/// The exception type of the public API.
class KILN_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace kiln
