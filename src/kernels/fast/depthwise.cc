// The depthwise path of the fast Conv2d (group == C, K = C * multiplier). Where the ISA has a
// direct kernel for the shape (AVX-512, 3x3, stride_w 1 or 2) each plane is convolved straight
// from the input with bias, residual and activation applied in registers. Otherwise, per (image,
// output channel) plane, the input plane is copied into scratch with its zero padding and enough
// slack columns that the kernel reads whole vectors (no bounds checks, no scalar tails), convolved
// by the ISA's direct kernel along output rows, then bias, residual and activation are applied in
// one vectorized pass over the plane.
#include <algorithm>
#include <cstring>

#include "kernels/fast/conv.h"
#include "kernels/fast/depthwise_body.h"
#include "kernels/fast/isa.h"
#include "kernels/fast/pack.h"
#include "kernels/fast/tasks.h"

namespace kiln::kernels::fast {

void Conv2d::run_depthwise(const float* x, float* y, const float* residual, void* scratch) const {
  const IsaKernels& kr = isa_for_level(level_);
  const ConvShape& sh = shape_;
  const int64_t oh = sh.out_h(), ow = sh.out_w(), p_total = oh * ow;
  const int64_t hp = sh.h + sh.pad_t + sh.pad_b;
  const int64_t wp =
      depthwise_row_width(sh.w + sh.pad_l + sh.pad_r, ow, sh.s, sh.stride_w, sh.dil_w);
  const int64_t mult = sh.k / sh.c;
  const int64_t planes = sh.n * sh.k;
  const double plane_fma = static_cast<double>(p_total) * sh.r * sh.s;
  const int64_t budget = task_budget(plane_fma * planes);
  const int64_t tasks = std::min(planes, budget);
  const int64_t per_task = ceil_div(planes, tasks);
  const bool epilogue =
      bias_.data() != nullptr || residual != nullptr || act_.kind != Activation::Kind::kNone;

  if (kr.depthwise_direct != nullptr && kr.depthwise_direct_ok(sh)) {
    auto direct = [&](int64_t t, float*) {
      const int64_t first = t * per_task, last = std::min(planes, first + per_task);
      for (int64_t pl = first; pl < last; ++pl) {
        const int64_t img = pl / sh.k, oc = pl % sh.k;
        kr.depthwise_direct(DepthwiseDirect{
            x + (img * sh.c + oc / mult) * sh.h * sh.w, sh.h, sh.w,
            weights_->data() + oc * sh.r * sh.s, sh.r, sh.s, sh.stride_h, sh.stride_w, sh.dil_h,
            sh.dil_w, sh.pad_t, sh.pad_l, oh, ow, bias_.data() != nullptr ? bias_.data()[oc] : 0.0f,
            residual != nullptr ? residual + pl * p_total : nullptr, &act_, y + pl * p_total});
      }
    };
    run_tasks(tasks, budget > 1, scratch, 0, direct);
    return;
  }
  auto body = [&](int64_t t, float* pad_buf) {
    const int64_t first = t * per_task, last = std::min(planes, first + per_task);
    for (int64_t pl = first; pl < last; ++pl) {
      const int64_t img = pl / sh.k, oc = pl % sh.k;
      const float* xc = x + (img * sh.c + oc / mult) * sh.h * sh.w;
      // Zero only the border the copy does not overwrite.
      std::memset(pad_buf, 0, static_cast<size_t>(sh.pad_t * wp) * sizeof(float));
      for (int64_t ih = 0; ih < sh.h; ++ih) {
        float* row = pad_buf + (ih + sh.pad_t) * wp;
        for (int64_t j = 0; j < sh.pad_l; ++j) row[j] = 0.0f;
        std::memcpy(row + sh.pad_l, xc + ih * sh.w, static_cast<size_t>(sh.w) * sizeof(float));
        for (int64_t j = sh.pad_l + sh.w; j < wp; ++j) row[j] = 0.0f;
      }
      std::memset(pad_buf + (sh.pad_t + sh.h) * wp, 0,
                  static_cast<size_t>(sh.pad_b * wp) * sizeof(float));
      float* yc = y + pl * p_total;
      kr.depthwise_plane(DepthwisePlane{pad_buf, wp, weights_->data() + oc * sh.r * sh.s, sh.r,
                                        sh.s, sh.stride_h, sh.stride_w, sh.dil_h, sh.dil_w, oh, ow,
                                        yc});
      if (epilogue) {
        kr.epilogue_row(yc, p_total, bias_.data() != nullptr ? bias_.data()[oc] : 0.0f,
                        residual != nullptr ? residual + pl * p_total : nullptr, act_);
      }
    }
  };
  run_tasks(tasks, budget > 1, scratch, static_cast<size_t>(hp * wp), body);
}

}  // namespace kiln::kernels::fast
