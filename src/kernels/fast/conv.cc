// The fast Conv2d (conv.h): weights pre-packed as the GEMM A operand per group, B panels packed
// from X straight into L1-sized scratch (1x1: contiguous rows of X; otherwise the im2col gather
// with padding zeros), bias per output channel = per GEMM row, residual in the NCHW layout of Y.
// Tasks split (image, group, row block, column chunk); depthwise lives in depthwise.cc.
#include "kernels/fast/conv.h"

#include <algorithm>
#include <cstring>

#include "kernels/fast/depthwise_body.h"
#include "kernels/fast/isa.h"
#include "kernels/fast/pack.h"
#include "kernels/fast/tasks.h"
#include "kiln/error.h"

namespace kiln::kernels::fast {
namespace {

constexpr int64_t kNcConv = 256;  // output positions per C chunk kept hot across K-blocks
// Rows (output channels) per task: every B panel packed from X serves this many rows, so it is
// larger than the GEMM's kMc (B packing, an im2col gather here, is the costlier side); the
// A block (kMcConv x kKc, 256 KB) still fits L2.
constexpr int64_t kMcConv = 256;

void check_shape(const ConvShape& s) {
  const bool ok = s.n >= 0 && s.c > 0 && s.k > 0 && s.r > 0 && s.s > 0 && s.group > 0 &&
                  s.c % s.group == 0 && s.k % s.group == 0 && s.stride_h > 0 && s.stride_w > 0 &&
                  s.dil_h > 0 && s.dil_w > 0 && s.pad_t >= 0 && s.pad_l >= 0 && s.pad_b >= 0 &&
                  s.pad_r >= 0 && s.out_h() > 0 && s.out_w() > 0;
  if (!ok) {
    throw Error(ErrorCode::kInvalidArgument,
                "fast Conv2d: bad shape (channels " + std::to_string(s.c) + " -> " +
                    std::to_string(s.k) + ", group " + std::to_string(s.group) + ", kernel " +
                    std::to_string(s.r) + "x" + std::to_string(s.s) + " on " + std::to_string(s.h) +
                    "x" + std::to_string(s.w) + ")");
  }
}

bool is_depthwise(const ConvShape& s) { return s.group > 1 && s.group == s.c; }

}  // namespace

std::shared_ptr<const ConvWeights> ConvWeights::pack(const ConvShape& shape, const float* weights) {
  check_shape(shape);
  const IsaKernels& kr = isa();
  auto p = std::make_shared<ConvWeights>();
  p->dims_ = FilterDims::of(shape);
  p->level_ = kr.level;
  if (is_depthwise(shape)) {
    const size_t count = static_cast<size_t>(shape.k * shape.r * shape.s);
    p->data_.reserve(count);
    std::memcpy(p->data_.data(), weights, count * sizeof(float));
    return p;
  }
  const int64_t kg = shape.k / shape.group;
  const int64_t kdim = (shape.c / shape.group) * shape.r * shape.s;
  const int64_t kc = kc_size(kdim);
  const int64_t m_pad = round_up(kg, kr.mr);
  p->data_.reserve(static_cast<size_t>(shape.group * m_pad * kdim));
  for (int64_t g = 0; g < shape.group; ++g) {
    const float* wg = weights + g * kg * kdim;
    float* dst = p->data_.data() + g * m_pad * kdim;
    for (int64_t k0 = 0; k0 < kdim; k0 += kc) {
      pack_a(wg, kdim, false, 0, kg, k0, std::min(kc, kdim - k0), kr.mr, dst + k0 * m_pad);
    }
  }
  return p;
}

bool ConvWeights::fits(const ConvShape& shape) const { return dims_ == FilterDims::of(shape); }

Conv2d::Conv2d(const ConvShape& shape, const float* weights, const float* bias, Activation act)
    : Conv2d(shape, ConvWeights::pack(shape, weights), bias, act) {}

Conv2d::Conv2d(const ConvShape& shape, std::shared_ptr<const ConvWeights> packed, const float* bias,
               Activation act)
    : shape_(shape), act_(act), weights_(std::move(packed)) {
  check_shape(shape_);
  if (!weights_ || !weights_->fits(shape_)) {
    throw Error(ErrorCode::kInvalidArgument,
                "fast Conv2d: packed filters of another layer (channels " +
                    std::to_string(shape_.c) + " -> " + std::to_string(shape_.k) + ", kernel " +
                    std::to_string(shape_.r) + "x" + std::to_string(shape_.s) + ")");
  }
  level_ = weights_->level();
  const IsaKernels& kr = isa_for_level(level_);
  kg_ = shape_.k / shape_.group;
  kdim_ = (shape_.c / shape_.group) * shape_.r * shape_.s;
  kc_ = kc_size(kdim_);
  m_pad_ = round_up(kg_, kr.mr);
  if (bias != nullptr) {
    bias_.reserve(static_cast<size_t>(shape_.k));
    std::memcpy(bias_.data(), bias, static_cast<size_t>(shape_.k) * sizeof(float));
  }
  if (is_depthwise(shape_)) {
    algo_ = Algo::kDepthwise;
    return;
  }
  const bool pointwise = shape_.r == 1 && shape_.s == 1 && shape_.stride_h == 1 &&
                         shape_.stride_w == 1 && shape_.pad_t == 0 && shape_.pad_l == 0 &&
                         shape_.pad_b == 0 && shape_.pad_r == 0;
  algo_ = pointwise ? Algo::kGemm1x1 : Algo::kIm2col;
}

std::string Conv2d::algorithm() const {
  switch (algo_) {
    case Algo::kGemm1x1:
      return "gemm1x1";
    case Algo::kIm2col:
      return "im2col-gemm";
    case Algo::kDepthwise:
      return "depthwise";
  }
  return "?";
}

size_t Conv2d::scratch_bytes() const {
  if (algo_ == Algo::kDepthwise) {
    const ConvShape& s = shape_;
    const int64_t wp =
        depthwise_row_width(s.w + s.pad_l + s.pad_r, s.out_w(), s.s, s.stride_w, s.dil_w);
    return static_cast<size_t>((s.h + s.pad_t + s.pad_b) * wp) * sizeof(float);
  }
  return static_cast<size_t>(kKc * isa_for_level(level_).nr) * sizeof(float);
}

void Conv2d::run(const float* x, float* y, const float* residual, void* scratch) const {
  if (shape_.n == 0) return;
  if (algo_ == Algo::kDepthwise) {
    run_depthwise(x, y, residual, scratch);
  } else {
    run_gemm(x, y, residual, scratch);
  }
}

void Conv2d::run_gemm(const float* x, float* y, const float* residual, void* scratch) const {
  const IsaKernels& kr = isa_for_level(level_);
  const int mr = kr.mr, nr = kr.nr;
  const ConvShape& sh = shape_;
  const int64_t p_total = sh.out_h() * sh.out_w();
  const int64_t cg = sh.c / sh.group;
  const int64_t images = sh.n * sh.group;

  const int64_t m_blocks = ceil_div(kg_, kMcConv);
  const int64_t mb = round_up(ceil_div(kg_, m_blocks), mr);
  const int64_t p_panels = ceil_div(p_total, nr);
  const int64_t budget = task_budget(static_cast<double>(sh.n) * sh.k * p_total * kdim_);
  const int64_t p_chunks = std::clamp<int64_t>(ceil_div(budget, images * m_blocks), 1, p_panels);
  const int64_t chunk_panels = ceil_div(p_panels, p_chunks);
  const int64_t chunks = ceil_div(p_panels, chunk_panels);
  const int64_t tasks = images * m_blocks * chunks;
  const bool pointwise = algo_ == Algo::kGemm1x1;

  auto body = [&](int64_t t, float* bpanel) {
    const int64_t ig = t / (m_blocks * chunks);
    const int64_t rest = t % (m_blocks * chunks);
    const int64_t img = ig / sh.group, g = ig % sh.group;
    const int64_t i0 = (rest % m_blocks) * mb, i1 = std::min(kg_, i0 + mb);
    if (i0 >= i1) return;
    const int64_t p0 = (rest / m_blocks) * chunk_panels * nr;
    const int64_t p1 = std::min(p_total, p0 + chunk_panels * nr);
    const float* xg = x + (img * sh.c + g * cg) * sh.h * sh.w;
    const int64_t y_off = (img * sh.k + g * kg_) * p_total;
    const float* wg = weights_->data() + g * m_pad_ * kdim_;
    const float* bias = bias_.data() != nullptr ? bias_.data() + g * kg_ : nullptr;
    for (int64_t pc = p0; pc < p1; pc += kNcConv) {
      const int64_t pc_end = std::min(p1, pc + kNcConv);
      for (int64_t k0 = 0; k0 < kdim_; k0 += kc_) {
        const int64_t kcb = std::min(kc_, kdim_ - k0);
        const bool last = k0 + kcb >= kdim_;
        for (int64_t j = pc; j < pc_end; j += nr) {
          const int64_t cols = std::min<int64_t>(nr, p_total - j);
          if (pointwise) {
            pack_b_panel(xg, p_total, false, k0, kcb, j, cols, nr, bpanel);
          } else {
            kr.im2col_panel(xg, sh, k0, kcb, j, cols, nr, bpanel);
          }
          for (int64_t i = i0; i < i1; i += mr) {
            TileEpilogue te;
            if (last) {
              te.bias_m = bias != nullptr ? bias + i : nullptr;
              te.residual = residual != nullptr ? residual + y_off + i * p_total + j : nullptr;
              te.ld_residual = p_total;
              te.act = &act_;
            }
            kr.tile(kcb, wg + k0 * m_pad_ + i * kcb, bpanel, y + y_off + i * p_total + j, p_total,
                    static_cast<int>(std::min<int64_t>(mr, i1 - i)), static_cast<int>(cols), k0 > 0,
                    last ? &te : nullptr);
          }
        }
      }
    }
  };
  run_tasks(tasks, budget > 1, scratch, static_cast<size_t>(kKc * nr), body);
}

}  // namespace kiln::kernels::fast
