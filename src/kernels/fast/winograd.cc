// Winograd F(2x2, 3x3) on blocked data (winograd.h).
#include "kernels/fast/winograd.h"

#include <algorithm>
#include <vector>

#include "kernels/fast/isa.h"
#include "kernels/fast/nchwc.h"
#include "kernels/fast/pack.h"
#include "kernels/fast/tasks.h"
#include "kiln/error.h"

namespace kiln::kernels::fast {

bool winograd_supported(const ConvShape& s) {
  return s.n > 0 && s.c > 0 && s.k > 0 && s.r == 3 && s.s == 3 && s.stride_h == 1 &&
         s.stride_w == 1 && s.dil_h == 1 && s.dil_w == 1 && s.group == 1 && s.pad_t >= 0 &&
         s.pad_l >= 0 && s.pad_b >= 0 && s.pad_r >= 0 && s.out_h() > 0 && s.out_w() > 0;
}

bool winograd_preferred(const ConvShape& s) {
  const int64_t tiles = s.n * ((s.out_h() + 1) / 2) * ((s.out_w() + 1) / 2);
  return winograd_supported(s) && s.c >= 32 && s.k >= 16 && tiles >= 24;
}

std::shared_ptr<const WinogradWeights> WinogradWeights::pack(const ConvShape& s,
                                                             const float* weights) {
  if (!winograd_supported(s))
    throw Error(ErrorCode::kInvalidArgument, "winograd conv: unsupported shape");
  auto p = std::make_shared<WinogradWeights>();
  p->dims_ = FilterDims::of(s);
  p->level_ = isa().level;
  const int64_t kpad = nchwc_blocks(s.k, isa().nchwc_block) * isa().nchwc_block;
  // U = G g G^T per (c, k), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double.
  std::vector<std::vector<float>> u(16, std::vector<float>(size_t(s.c * kpad), 0.0f));
  const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  for (int64_t k = 0; k < s.k; ++k)
    for (int64_t c = 0; c < s.c; ++c) {
      const float* g = weights + (k * s.c + c) * 9;
      double t[4][3];  // G g
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 3; ++j)
          t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          u[size_t(i * 4 + j)][size_t(c * kpad + k)] =
              float(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
    }
  for (int xi = 0; xi < 16; ++xi)
    p->u_[size_t(xi)] = PackedB::pack(u[size_t(xi)].data(), s.c, kpad, false);
  return p;
}

bool WinogradWeights::fits(const ConvShape& s) const {
  return dims_ == FilterDims::of(s) && isa().level == level_;
}

WinogradConv::WinogradConv(const ConvShape& s, std::shared_ptr<const WinogradWeights> packed,
                           const float* bias, Activation act, bool x_blocked, bool y_blocked)
    : s_(s), w_(std::move(packed)), act_(act) {
  if (!winograd_supported(s) || !x_blocked || !y_blocked || !w_ || !w_->fits(s))
    throw Error(ErrorCode::kInvalidArgument,
                "winograd conv: needs a 3x3 stride-1 layer on blocked data and its own filters");
  const IsaKernels& kr = isa();
  level_ = kr.level;
  cb_ = kr.nchwc_block;
  cpad_ = nchwc_blocks(s.c, cb_) * cb_;
  kpad_ = nchwc_blocks(s.k, cb_) * cb_;
  float* b = bias_.reserve(size_t(kpad_));
  for (int64_t k = 0; k < kpad_; ++k) b[k] = bias != nullptr && k < s.k ? bias[k] : 0.0f;
  float* z = zero_.reserve(size_t(cb_));
  std::fill(z, z + cb_, 0.0f);
  tiles_h_ = (s.out_h() + 1) / 2;
  tiles_w_ = (s.out_w() + 1) / 2;
  tiles_ = s.n * tiles_h_ * tiles_w_;
  y_image_ = kpad_ * s.out_h() * s.out_w();
  // Tiles per block: V and M of a block (16 x tiles x channels each) stay within ~L2, in
  // multiples of the GEMM's 12-row tile; a small image is one block, so the transformed
  // filters stream through the cache once.
  const int64_t per = std::max<int64_t>(12, (8192 / std::max(cpad_, kpad_)) / 12 * 12);
  tile_block_ = tiles_ <= per + per / 2 ? tiles_ : per;
  blocks_ = (tiles_ + tile_block_ - 1) / tile_block_;
}

// Scratch floats: V, then M, then the GEMM's, each 64-byte aligned.
size_t WinogradConv::scratch_bytes() const {
  const int64_t v = round_up(16 * tile_block_ * cpad_, 16),
                m = round_up(16 * tile_block_ * kpad_, 16);
  return size_t(v + m) * sizeof(float) + gemm_scratch_bytes(tile_block_, kpad_, s_.c);
}

void WinogradConv::run_block(int64_t t0, int64_t count, const float* x, float* y,
                             const float* residual, float* buf, bool serial_gemm) const {
  const ConvShape& s = s_;
  const IsaKernels& kr = isa_for_level(level_);
  const int64_t cb = cb_, cblocks = cpad_ / cb, kblocks = kpad_ / cb;
  const int64_t oh = s.out_h(), ow = s.out_w();
  float* v = buf;
  float* m = v + round_up(16 * tile_block_ * cpad_, 16);
  float* gemm_scratch = m + round_up(16 * tile_block_ * kpad_, 16);

  // Input transform: every tile of the block, every input block.
  WinogradInTile in{};
  in.out_stride = tile_block_ * cpad_;
  for (int64_t t = 0; t < count; ++t) {
    const int64_t tile = t0 + t;
    const int64_t img = tile / (tiles_h_ * tiles_w_);
    const int64_t ti = (tile / tiles_w_) % tiles_h_, tj = tile % tiles_w_;
    const int64_t ih0 = 2 * ti - s.pad_t, iw0 = 2 * tj - s.pad_l;
    for (int64_t c = 0; c < cblocks; ++c) {
      const float* plane = x + (img * cblocks + c) * s.h * s.w * cb;
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          const int64_t ih = ih0 + i, iw = iw0 + j;
          in.in[i * 4 + j] = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w
                                 ? plane + (ih * s.w + iw) * cb
                                 : zero_.data();
        }
      in.out = v + t * cpad_ + c * cb;
      kr.winograd_input(in);
    }
  }
  // M[xi] = V[xi] U[xi]: input channels past C (unspecified lanes of the last block) are not
  // read; output columns past K get zero filters.
  for (int xi = 0; xi < 16; ++xi)
    gemm(count, kpad_, s.c, v + xi * tile_block_ * cpad_, cpad_, false, w_->u(xi),
         m + xi * tile_block_ * kpad_, kpad_, GemmEpilogue{}, gemm_scratch, serial_gemm);
  // Output transform.
  WinogradOutTile out{};
  out.m_stride = tile_block_ * kpad_;
  out.act = act_.kind == Activation::Kind::kNone ? nullptr : &act_;
  for (int64_t t = 0; t < count; ++t) {
    const int64_t tile = t0 + t;
    const int64_t img = tile / (tiles_h_ * tiles_w_);
    const int64_t ti = (tile / tiles_w_) % tiles_h_, tj = tile % tiles_w_;
    for (int64_t k = 0; k < kblocks; ++k) {
      const int64_t plane = k * oh * ow * cb;  // in image img (y's and residual's own strides)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
          const int64_t r = 2 * ti + i, q = 2 * tj + j;
          const bool inside = r < oh && q < ow;
          const int64_t at = plane + (r * ow + q) * cb;
          out.y[i * 2 + j] = inside ? y + img * y_image_ + at : nullptr;
          out.residual[i * 2 + j] =
              inside && residual != nullptr ? residual + img * kpad_ * oh * ow + at : nullptr;
        }
      out.m = m + t * kpad_ + k * cb;
      out.bias = bias_.data() + k * cb;
      kr.winograd_output(out);
    }
  }
}

void WinogradConv::run(const float* x, float* y, const float* residual, void* scratch) const {
  if (isa().level != level_)
    throw Error(ErrorCode::kInvalidArgument, "winograd conv: built for another dispatch level");
  const double fma = double(tiles_) * 16.0 * double(s_.c) * double(kpad_);
  const int64_t budget = task_budget(fma);
  // Tasks of whole tile blocks with their GEMMs on the task's thread. A layer of one block is
  // split into smaller ones (of whole 12-row GEMM tiles) when threads are there to take them;
  // only a layer of too few tiles for that leaves the splitting to its GEMMs.
  int64_t per = tile_block_;
  if (budget > 1 && blocks_ < budget)
    per = std::min(tile_block_, round_up(ceil_div(tiles_, budget), 12));
  const int64_t tasks = ceil_div(tiles_, per);
  const bool parallel = budget > 1 && tasks >= 2;
  const size_t floats = scratch_bytes() / sizeof(float);
  run_tasks(tasks, parallel, scratch, floats, [&](int64_t b, float* buf) {
    run_block(b * per, std::min(per, tiles_ - b * per), x, y, residual, buf,
              parallel || budget <= 1);
  });
}

}  // namespace kiln::kernels::fast
