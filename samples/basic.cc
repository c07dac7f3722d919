// The Kiln C++ API in one page: load a model, inspect its inputs, run it, read the outputs.
// Usage: sample_basic MODEL.onnx   (e.g. the demo model written by build/tools/make_demo_model)
#include <iostream>
#include <vector>

#include "kiln/kiln.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: sample_basic MODEL.onnx\n";
    return 2;
  }
  try {
    kiln::Session session(argv[1]);  // load + prepare once

    kiln::TensorMap inputs;
    for (const kiln::ValueInfo& in : session.input_info()) {
      std::cout << "input  " << in.name << ": " << in.to_string() << "\n";
      kiln::Dims dims;  // symbolic dims ("batch") take 1 here
      for (const kiln::Dim& d : in.shape) dims.push_back(d.is_constant() ? d.value : 1);
      kiln::Tensor t(in.dtype, dims);  // owning, zero-filled; Tensor::view wraps your memory
      if (in.dtype == kiln::DType::kF32)
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i % 7) / 7.0f;
      inputs[in.name] = t;
    }

    kiln::TensorMap outputs = session.run(inputs);  // thread-safe; any shape the model allows
    for (const kiln::ValueInfo& out : session.output_info()) {
      const kiln::Tensor& t = outputs.at(out.name);
      std::cout << "output " << out.name << ": " << t.to_string(5) << "\n";
    }
  } catch (const kiln::Error& e) {  // the only exception type Kiln throws
    std::cerr << "error (" << kiln::error_code_name(e.code()) << "): " << e.what() << "\n";
    return 1;
  }
  return 0;
}
