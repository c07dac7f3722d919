// Mutated models: random byte flips, truncations and splices of a valid model either load and run
// or fail with kiln::Error — never a crash, never another exception type.
#include <gtest/gtest.h>

#include <random>

#include "kiln/kiln.h"
#include "model_builder.h"

namespace kiln::testing {
namespace {

TEST(Fuzz, MutatedModelsFailCleanly) {
  const std::string good = dev::make_demo_cnn().serialize();
  std::mt19937_64 rng(12345);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string m = good;
    int flips = 1 + int(rng() % 8);
    for (int k = 0; k < flips; ++k) {
      size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[at] = char(rng());
          break;  // overwrite a byte
        case 1:
          m[at] = char(m[at] ^ (1 << (rng() % 8)));
          break;  // flip a bit
        default:
          m.insert(at, 1, char(rng()));
          break;  // insert a byte
      }
    }
    try {
      Session s = Session::from_bytes({reinterpret_cast<const uint8_t*>(m.data()), m.size()});
      ++loaded;
      TensorMap in;
      for (const auto& info : s.input_info()) {
        Dims dims;
        bool ok = info.has_shape;
        for (const auto& d : info.shape) {
          int64_t v = d.is_constant() ? d.value : 2;
          if (v > 64) ok = false;
          dims.push_back(v);
        }
        if (!ok || info.dtype == DType::kUndefined) continue;
        in[info.name] = Tensor(info.dtype, dims);
      }
      s.run(in);
    } catch (const Error& e) {
      ++rejected;
      EXPECT_NE(e.code(), ErrorCode::kInternal) << "trial " << trial << ": " << e.what();
    }
  }
  EXPECT_GT(rejected, 0);
  std::printf("fuzz: %d of 400 mutated models loaded, %d rejected or failed cleanly\n", loaded,
              rejected);
}

}  // namespace
}  // namespace kiln::testing
