// Writes Kiln's demo model (a small CNN classifier with a dynamic batch) to the given path.
#include <iostream>

#include "model_builder.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_demo_model OUT.onnx\n";
    return 2;
  }
  try {
    kiln::dev::make_demo_cnn().save(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "make_demo_model: " << e.what() << "\n";
    return 1;
  }
  std::cout << "wrote " << argv[1] << "\n";
  return 0;
}
