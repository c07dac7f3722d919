// kiln::Session — load an ONNX model once, run it at any input shape the model allows.
//
// A Session owns the imported graph and its weights. run() is safe to call from many threads at
// once: each call works on its own buffers. Every failure is reported as kiln::Error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

/// How input shapes turn into compiled plans (used by the JIT; see docs/DESIGN.md).
enum class Specialization {
  kAuto,     ///< constants until a dim has been seen with a few values, then parameters
  kExact,    ///< every distinct shape gets kernels with all dims constant
  kDynamic,  ///< dims of dynamic model inputs stay kernel parameters
};

/// Where a session runs.
enum class Device { kCpu, kCuda, kAuto };

enum class LogLevel { kError, kWarning, kInfo, kDebug };

struct SessionOptions {
  /// Threads for one run's parallel loops; 0 = all cores. (Used once kernels run in parallel.)
  int intra_op_threads = 0;
  /// 0 none, 1 folding/cleanup, 2 +fusion, 3 +layout and packing. (Passes arrive with the
  /// optimizer; the reference executor runs the graph as imported at every level.)
  int optimization_level = 3;
  /// Specialization policy of the plan cache (used once the JIT lands).
  Specialization specialization = Specialization::kAuto;
  /// Plans kept per session, least recently used evicted first (used once the JIT lands).
  size_t max_specializations = 64;
  /// On-disk kernel cache; empty = $KILN_CACHE_DIR or none (used once the JIT lands).
  std::string cache_dir;
  /// Device to run on (only kCpu runs today; kAuto picks the CPU).
  Device device = Device::kCpu;
  /// Messages below this level are not printed (to stderr).
  LogLevel log_level = LogLevel::kWarning;
};

/// One dimension of a model input or output: a constant, a named symbol ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  ///< >= 0 when the dim is a constant
  std::string symbol;  ///< the symbol's name, when not a constant
  bool is_constant() const { return value >= 0; }
};

/// Name, element type and (symbolic) shape of a model input or output.
struct KILN_API ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  bool has_shape = false;  ///< false when the model does not say the rank
  std::vector<Dim> shape;
  bool has_default = false;  ///< an input with an initializer: may be left out of run()
  /// "f32[batch,3,224,224]"
  std::string to_string() const;
};

/// Named tensors, as run() takes and returns them.
using TensorMap = std::map<std::string, Tensor>;

/// Counters of one session since it was created.
struct SessionStats {
  uint64_t runs = 0;             ///< completed run() calls
  uint64_t failed_runs = 0;      ///< run() calls that threw
  uint64_t distinct_shapes = 0;  ///< distinct input shape keys seen
};

class KILN_API Session {
 public:
  /// Loads, validates and prepares the model at `path`. External data files are resolved inside
  /// the model's directory only.
  explicit Session(const std::string& path, const SessionOptions& options = {});
  /// Loads a model from serialized bytes. External data is resolved inside `base_dir`; with an
  /// empty base_dir a model that uses external data is rejected.
  static Session from_bytes(std::span<const uint8_t> bytes, const SessionOptions& options = {},
                            const std::string& base_dir = "");

  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  /// The model's inputs (initializer-backed ones have has_default set) and outputs.
  const std::vector<ValueInfo>& input_info() const;
  const std::vector<ValueInfo>& output_info() const;
  const std::vector<ValueInfo>& inputs() const { return input_info(); }
  const std::vector<ValueInfo>& outputs() const { return output_info(); }

  /// Runs the model; returns every model output as an owning tensor.
  TensorMap run(const TensorMap& inputs) const;
  /// Runs the model writing into caller-provided tensors (views or owning); each named output
  /// must already have the right dtype and dims, and must not overlap an input's memory. Outputs
  /// not named are computed and dropped.
  void run(const TensorMap& inputs, const TensorMap& outputs) const;

  SessionStats stats() const;
  const SessionOptions& options() const;
  /// ONNX opset imports, domain ("" = ai.onnx) to version.
  std::map<std::string, int64_t> opsets() const;
  /// Op histogram: "domain::op" (or "op" for ai.onnx) to node count.
  std::map<std::string, int64_t> op_histogram() const;
  /// One line per value in graph order: "name: f32[batch,seq,256]  (producer op)".
  std::vector<std::string> describe_values() const;

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  void run(const TensorMap& inputs, const TensorMap& outputs, TensorMap* result) const;
  std::unique_ptr<Impl> impl_;
};

/// Every operator Kiln runs, one entry per registration: "Conv (ai.onnx, opset 1+)".
KILN_API std::vector<std::string> supported_operators();

/// "0.1.0"
KILN_API const char* version();
/// Versions of Kiln, its LLVM and the host CPU with the features the JIT will target.
KILN_API std::string build_info();

}  // namespace kiln
