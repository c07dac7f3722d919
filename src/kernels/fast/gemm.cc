// The fast GEMM driver (gemm.h): BLIS-style blocking around the per-ISA register-tile kernels.
// A task owns a block of <= kMc rows and a range of columns: it packs its rows of A for every
// K-block once (or, in a parallel call whose tasks share row blocks, uses A packed once up
// front), then walks column chunks of kNc (C chunk stays in L2 across K-blocks), K-blocks,
// B panels (L1) and A panels (L2), accumulating into C and applying the epilogue on the last
// K-block while the tile is in registers.
#include "kernels/fast/gemm.h"

#include <algorithm>

#include "kernels/fast/isa.h"
#include "kernels/fast/pack.h"
#include "kernels/fast/tasks.h"

namespace kiln::kernels::fast {
namespace {

constexpr int64_t kNc = 256;    // columns per C chunk kept hot across K-blocks
constexpr int64_t kMaxNr = 32;  // widest panel of any ISA (scratch sizing)
constexpr int64_t kMaxMr = 12;  // tallest panel of any ISA

struct PanelsView {
  const float* data;
  int64_t n_pad;
  int nr;
  const float* panel(int64_t k0, int64_t kc, int64_t jp) const {
    return data + k0 * n_pad + jp * kc * nr;
  }
};

size_t a_scratch_floats(int64_t m, int64_t k) {
  return static_cast<size_t>((std::min(m, kMc) + kMaxMr) * std::max<int64_t>(k, 1));
}

void gemm_packed(const IsaKernels& kr, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 bool trans_a, const PanelsView& b, float* c, int64_t ldc, const GemmEpilogue& ep,
                 void* scratch, bool serial = false) {
  if (m <= 0 || n <= 0) return;
  const int mr = kr.mr, nr = kr.nr;
  const int64_t kc = kc_size(k);
  const int64_t k_steps = std::max<int64_t>(k, 1);  // K == 0 still runs one (empty) block
  const int64_t n_panels = ceil_div(n, nr);

  const int64_t m_blocks = ceil_div(m, kMc);
  const int64_t mb = round_up(ceil_div(m, m_blocks), mr);
  const int64_t budget = serial ? 1 : task_budget(static_cast<double>(m) * n * k);
  const int64_t n_chunks = std::clamp<int64_t>(ceil_div(budget, m_blocks), 1, n_panels);
  const int64_t chunk_panels = ceil_div(n_panels, n_chunks);
  const int64_t tasks = m_blocks * ceil_div(n_panels, chunk_panels);

  // A row block packed for every K-block: block kb of rows [i0, i1) at apack + k0 * rows_pad.
  auto pack_rows = [&](int64_t i0, int64_t i1, float* apack) {
    const int64_t rows_pad = round_up(i1 - i0, mr);
    for (int64_t k0 = 0; k0 < k; k0 += kc) {
      pack_a(a, lda, trans_a, i0, i1 - i0, k0, std::min(kc, k - k0), mr, apack + k0 * rows_pad);
    }
  };
  // When several column chunks share a row block, its A is packed once up front and shared
  // (read-only) instead of once per task.
  const bool parallel = budget > 1 && tasks > 1;
  const bool shared_a = parallel && tasks > m_blocks;
  const int64_t block_floats = round_up(mb, mr) * std::max<int64_t>(k, 1);
  AlignedBuffer shared;
  if (shared_a) {
    shared.reserve(static_cast<size_t>(block_floats * m_blocks));
    tbb::parallel_for(int64_t{0}, m_blocks, [&](int64_t bi) {
      const int64_t i0 = bi * mb;
      if (i0 < m) pack_rows(i0, std::min(m, i0 + mb), shared.data() + bi * block_floats);
    });
  }

  auto body = [&](int64_t t, float* task_scratch) {
    const int64_t i0 = (t % m_blocks) * mb;
    const int64_t i1 = std::min(m, i0 + mb);
    if (i0 >= i1) return;
    const int64_t j0 = (t / m_blocks) * chunk_panels * nr;
    const int64_t j1 = std::min(n, j0 + chunk_panels * nr);
    const int64_t rows_pad = round_up(i1 - i0, mr);
    float* apack = task_scratch;
    if (shared_a) {
      apack = shared.data() + (t % m_blocks) * block_floats;
    } else {
      pack_rows(i0, i1, apack);
    }
    for (int64_t jc = j0; jc < j1; jc += kNc) {
      const int64_t jc_end = std::min(j1, jc + kNc);
      for (int64_t k0 = 0; k0 < k_steps; k0 += std::max<int64_t>(kc, 1)) {
        const int64_t kcb = std::min(kc, k - k0);
        const bool last = k0 + kcb >= k;
        for (int64_t j = jc; j < jc_end; j += nr) {
          const float* pb = b.panel(k0, kcb, j / nr);
          const int cols = static_cast<int>(std::min<int64_t>(nr, n - j));
          for (int64_t i = i0; i < i1; i += mr) {
            TileEpilogue te;
            if (last) {
              te.bias_m = ep.bias_m != nullptr ? ep.bias_m + i : nullptr;
              te.bias_n = ep.bias_n != nullptr ? ep.bias_n + j : nullptr;
              te.residual = ep.residual != nullptr ? ep.residual + i * ep.ld_residual + j : nullptr;
              te.ld_residual = ep.ld_residual;
              te.act = &ep.act;
            }
            kr.tile(kcb, apack + k0 * rows_pad + (i - i0) * kcb, pb, c + i * ldc + j, ldc,
                    static_cast<int>(std::min<int64_t>(mr, i1 - i)), cols, k0 > 0,
                    last ? &te : nullptr);
          }
        }
      }
    }
  };
  run_tasks(tasks, parallel, scratch, shared_a ? 0 : a_scratch_floats(m, k), body);
}

}  // namespace

PackedB PackedB::pack(const float* b, int64_t k, int64_t n, bool trans_b) {
  const IsaKernels& kr = isa();
  PackedB p;
  p.k_ = k;
  p.n_ = n;
  p.level_ = kr.level;
  p.nr_ = kr.nr;
  p.n_pad_ = round_up(n, kr.nr);
  p.data_.reserve(static_cast<size_t>(p.n_pad_ * k));
  pack_b_all(b, trans_b ? k : n, trans_b, k, n, kr.nr, p.data_.data());
  return p;
}

const float* PackedB::panel(int64_t k0, int64_t kc, int64_t jp) const {
  return PanelsView{data_.data(), n_pad_, nr_}.panel(k0, kc, jp);
}

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
          const PackedB& b, float* c, int64_t ldc, const GemmEpilogue& ep, void* scratch,
          bool serial) {
  const IsaKernels& kr = isa_for_level(b.level());
  gemm_packed(kr, m, n, k, a, lda, trans_a,
              PanelsView{b.panel(0, 0, 0), round_up(b.n(), kr.nr), kr.nr}, c, ldc, ep, scratch,
              serial);
}

size_t gemm_scratch_bytes(int64_t m, int64_t n, int64_t k) {
  return a_scratch_floats(m, k) * sizeof(float);
}

void gemm_dynamic(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
                  const float* b, int64_t ldb, bool trans_b, float* c, int64_t ldc,
                  const GemmEpilogue& ep, void* scratch, bool serial) {
  if (m <= 0 || n <= 0) return;
  const IsaKernels& kr = isa();
  const size_t b_floats = static_cast<size_t>(round_up(n, kMaxNr) * k);
  AlignedBuffer own;
  float* packed = scratch != nullptr ? static_cast<float*>(scratch) : own.reserve(b_floats);
  pack_b_all(b, ldb, trans_b, k, n, kr.nr, packed);
  void* rest = scratch != nullptr ? packed + round_up(b_floats, 16) : nullptr;
  gemm_packed(kr, m, n, k, a, lda, trans_a, PanelsView{packed, round_up(n, kr.nr), kr.nr}, c, ldc,
              ep, rest, serial);
}

size_t gemm_dynamic_scratch_bytes(int64_t m, int64_t n, int64_t k) {
  const size_t b_floats = static_cast<size_t>(round_up(round_up(n, kMaxNr) * k, 16));
  return b_floats * sizeof(float) + gemm_scratch_bytes(m, n, k);
}

}  // namespace kiln::kernels::fast
