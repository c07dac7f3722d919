// The harness of the lowering tests: one op call, lowered and run two ways, against the reference.
//
// check_lowering() runs the op through the reference executor (the spec), builds the LowerContext
// the engine would build for the node (inputs as TensorArgs over the concrete tensors; the inputs
// a model would give as constants marked as such), calls the registered lowering and executes the
// kernel (a) in the kir interpreter, which bounds-checks every access, and (b) through the JIT
// inside a 2-thread CPU device. Both results must match the reference outputs (floats within
// atol/rtol, everything else exactly); output elements the kernel never writes are caught by a
// sentinel fill.
//
// Options widen what one call covers: `dynamic` turns every dim >= 2 into a kernel parameter
// (equal dims share one, as symbols would), `strided` lays the inputs out with padded rows and an
// offset base pointer (a non-contiguous, element-aligned view), `parallel_grain` shrinks the
// schedule's grain so small tensors take the parallel loop paths.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "op_test_util.h"

namespace kiln::testing {

struct LowerOptions {
  double atol = 1e-5;
  double rtol = 1e-4;
  /// Inputs known at specialization time; default: every integer input but input 0.
  std::optional<std::vector<int>> constant_inputs;
  /// The lowering must decline (return nullopt, or not exist) instead of producing a kernel.
  bool expect_fallback = false;
  bool dynamic = false;
  bool strided = false;
  bool jit = true;
  bool interp = true;
  /// Overrides Schedule::parallel_grain when > 0 (small values exercise the parallel paths).
  int64_t parallel_grain = 0;
  /// Lowers with the CUDA plans' schedule (every dim in the parallel loop, no vector loops).
  bool gpu_schedule = false;
};

/// Lowers `call` and runs the kernel in the interpreter and the JIT, comparing with run_op(call).
::testing::AssertionResult check_lowering(const OpCall& call, const LowerOptions& opt = {});

/// An OpCall for `op` (ai.onnx) at `opset`.
OpCall op_call(std::string op, std::vector<Tensor> inputs,
               std::map<std::string, ir::Attribute> attrs = {}, int opset = 18);

/// check_lowering with immediate dims, then with dynamic dims (params) over strided inputs and a
/// tiny parallel grain; `all` adds dynamic-only and strided-only runs. (Every run compiles a
/// kernel: two runs per case keep the suites fast.)
void check_variants(const OpCall& call, LowerOptions base = {}, bool all = false);

/// The printed kernel of `call` under `opt`, or "<fallback>" when the lowering declines.
std::string lowered_ir(const OpCall& call, const LowerOptions& opt = {});

}  // namespace kiln::testing
