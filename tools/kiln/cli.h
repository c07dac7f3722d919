// Shared pieces of the `kiln` command-line tool: argument parsing, input construction and the
// subcommands' entry points. Everything here uses Kiln's public API only.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::cli {

/// A command-line mistake: printed as one line, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Walks argv; flags take their value from the next argument or after '='.
class Args {
 public:
  Args(int argc, char** argv, int first);
  bool done() const { return i_ >= args_.size(); }
  /// The next argument as it is.
  std::string next();
  /// If the next argument is `flag` (or `flag=value`), consumes it and its value.
  bool flag_value(const std::string& flag, std::string* value);
  /// If the next argument is `flag`, consumes it.
  bool flag(const std::string& flag);
  /// Integer/float values of flags with range checks; UsageError naming the flag otherwise.
  static int64_t to_int(const std::string& flag, const std::string& v, int64_t lo, int64_t hi);
  static double to_double(const std::string& flag, const std::string& v);

 private:
  std::vector<std::string> args_;
  size_t i_ = 0;
};

/// "auto" | "exact" | "dynamic"; UsageError otherwise.
Specialization parse_specialization(const std::string& s);
/// "cpu" | "cuda" | "auto"; UsageError otherwise.
Device parse_device(const std::string& s);
/// "1x3x224x224" or "1,3,224,224" -> dims ("" or "scalar" -> 0-d).
Dims parse_dims(const std::string& s);
/// A --shape value, "NAME=DIMS" -> {NAME, dims}; UsageError otherwise.
std::pair<std::string, Dims> parse_shape_arg(const std::string& v);
/// A deterministic random tensor for an input: floats in [-1,1), ints in [0,16), bools.
Tensor random_input(DType dtype, const Dims& dims, uint64_t seed);
/// Dims of an input from its model shape, with every dim constant; UsageError otherwise.
Dims concrete_dims(const ValueInfo& info);
/// Repeats `t` along dim 0 to `batch` rows (t must have rank >= 1).
Tensor tile_batch(const Tensor& t, int64_t batch);
/// Inputs of an ONNX test data set folder (input_N.pb), matched to the model's inputs by the
/// tensor's name when it names an input, else by position.
TensorMap load_data_set_inputs(const Session& s, const std::string& dir);
/// Output tensors of a data set folder (output_N.pb), in file order.
std::vector<Tensor> load_data_set_outputs(const std::string& dir);
/// The model file a path names: the path itself, or FOLDER/model.onnx for a test case folder.
std::string model_file(const std::string& path);
/// Sorted test_data_set_N folders of a test case folder.
std::vector<std::string> data_set_dirs(const std::string& case_dir);
/// JSON string literal.
std::string json_quote(const std::string& s);

int cmd_info(Args& args);
int cmd_run(Args& args);
int cmd_check(Args& args);
int cmd_bench(Args& args);
int cmd_devices(Args& args);
int cmd_ptx(Args& args);

}  // namespace kiln::cli
