// Native 2-D MaxPool (f32, NCHW): the JIT's generic window loop nest is several times slower than
// memory speed on the CNN stems (squeezenet's 3x3/2 pools, resnet18's), so a plan step runs this
// instead. Per output row: the max over the kernel's in-bounds input rows into a row buffer whose
// borders hold -inf (the padding, and ceil_mode's partial last window), then per output the max
// over the kernel's columns of that buffer, with no bounds checks. Both loops are plain C++ that
// GCC vectorizes, compiled for AVX-512, AVX2 and baseline x86-64 (function multi-versioning).
//
// As in the JIT lowering, padding never contributes and an output whose window holds no input
// element is -inf; the output sizes come from the output value (shape inference applied
// ceil_mode). Planes (image, channel) run in parallel with oneTBB when the work pays for it.
#include <tbb/parallel_for.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/multiversion.h"
#include "kernels/native_ops.h"
#include "kernels/registry.h"

namespace kiln::kernels {

namespace {

struct PoolShape {
  int64_t planes, h, w, oh, ow;
  fast::PoolWindow win;
  int64_t row_len;  // padded row buffer: pl + w + slack, every tap of every output inside
};

// One plane. `row` holds row_len floats whose [0, pl) and [pl + w, row_len) are -inf.
KILN_MULTIVERSION
void max_pool_plane(const PoolShape& p, const float* x, float* y, float* row) {
  const float lowest = -std::numeric_limits<float>::infinity();
  float* mid = row + p.win.pl;
  for (int64_t oh = 0; oh < p.oh; ++oh) {
    const int64_t ih0 = oh * p.win.sh - p.win.pt;
    for (int64_t j = 0; j < p.w; ++j) mid[j] = lowest;
    for (int64_t r = 0; r < p.win.kh; ++r) {
      const int64_t ih = ih0 + r * p.win.dh;
      if (ih < 0 || ih >= p.h) continue;
      const float* xr = x + ih * p.w;
      for (int64_t j = 0; j < p.w; ++j) mid[j] = std::max(mid[j], xr[j]);
    }
    float* yr = y + oh * p.ow;
    if (p.win.sw == 1 && p.win.dw == 1) {
      for (int64_t j = 0; j < p.ow; ++j) yr[j] = row[j];
      for (int64_t s = 1; s < p.win.kw; ++s)
        for (int64_t j = 0; j < p.ow; ++j) yr[j] = std::max(yr[j], row[j + s]);
    } else if (p.win.sw == 2 && p.win.dw == 1) {
      for (int64_t j = 0; j < p.ow; ++j) yr[j] = row[2 * j];
      for (int64_t s = 1; s < p.win.kw; ++s)
        for (int64_t j = 0; j < p.ow; ++j) yr[j] = std::max(yr[j], row[2 * j + s]);
    } else {
      for (int64_t j = 0; j < p.ow; ++j) yr[j] = row[j * p.win.sw];
      for (int64_t s = 1; s < p.win.kw; ++s)
        for (int64_t j = 0; j < p.ow; ++j)
          yr[j] = std::max(yr[j], row[j * p.win.sw + s * p.win.dw]);
    }
  }
}

class NativeMaxPool final : public NativeOp {
 public:
  explicit NativeMaxPool(const PoolShape& p) : p_(p) {}

  void run(void* const* buffers, void* scratch) const override {
    const float* x = static_cast<const float*>(buffers[0]);
    float* y = static_cast<float*>(buffers[1]);
    const int64_t in_plane = p_.h * p_.w, out_plane = p_.oh * p_.ow;
    auto body = [&](int64_t c0, int64_t c1, float* row) {
      std::fill(row, row + p_.win.pl, -std::numeric_limits<float>::infinity());
      std::fill(row + p_.win.pl + p_.w, row + p_.row_len, -std::numeric_limits<float>::infinity());
      for (int64_t c = c0; c < c1; ++c)
        max_pool_plane(p_, x + c * in_plane, y + c * out_plane, row);
    };
    // Work per plane: the vertical and horizontal maxima.
    const double plane_work = double(p_.oh) * double(p_.win.kh * p_.w + p_.win.kw * p_.ow);
    const int64_t grain =
        std::max<int64_t>(1, static_cast<int64_t>(2e5 / std::max(1.0, plane_work)));
    if (p_.planes <= grain || tbb::this_task_arena::max_concurrency() <= 1) {
      body(0, p_.planes, static_cast<float*>(scratch));
      return;
    }
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, p_.planes, grain),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        thread_local std::vector<float> row;
                        if (row.size() < size_t(p_.row_len)) row.resize(size_t(p_.row_len));
                        body(r.begin(), r.end(), row.data());
                      });
  }

  size_t scratch_bytes() const override { return size_t(p_.row_len) * sizeof(float); }

  std::string describe() const override {
    return "maxpool " + std::to_string(p_.win.kh) + "x" + std::to_string(p_.win.kw) + "/" +
           std::to_string(p_.win.sh) + " " + std::to_string(p_.h) + "x" + std::to_string(p_.w) +
           " -> " + std::to_string(p_.oh) + "x" + std::to_string(p_.ow);
  }

 private:
  PoolShape p_;
};

std::shared_ptr<const NativeOp> make_max_pool(const ir::Graph& g, const ir::Node& n) {
  if (n.inputs.empty() || n.inputs[0] < 0 || n.outputs.size() != 1) return nullptr;
  const ir::Value& xv = g.values[size_t(n.inputs[0])];
  const ir::Value& yv = g.values[size_t(n.outputs[0])];
  if (xv.dtype != DType::kF32 || yv.dtype != DType::kF32 || !xv.shape.is_concrete() ||
      !yv.shape.is_concrete())
    return nullptr;
  const Dims xd = xv.shape.concrete(), yd = yv.shape.concrete();
  if (xd.size() != 4 || yd.size() != 4 || xd[0] != yd[0] || xd[1] != yd[1]) return nullptr;
  const std::optional<fast::PoolWindow> win = pool_window(n);
  if (!win) return nullptr;
  PoolShape p{};
  p.planes = xd[0] * xd[1];
  p.h = xd[2];
  p.w = xd[3];
  p.oh = yd[2];
  p.ow = yd[3];
  p.win = *win;
  if (p.planes * p.h * p.w * p.oh * p.ow == 0) return nullptr;
  // The last output's last tap, in the padded row; the buffer covers it and the input row.
  p.row_len = std::max(p.win.pl + p.w, (p.ow - 1) * p.win.sw + (p.win.kw - 1) * p.win.dw + 1);
  return std::make_shared<NativeMaxPool>(p);
}

}  // namespace

std::optional<fast::PoolWindow> pool_window(const ir::Node& n) {
  NodeAttrs a(n);
  if (a.attr_string("auto_pad", "NOTSET") != "NOTSET") return std::nullopt;
  const std::vector<int64_t> k = a.attr_ints("kernel_shape", {});
  const std::vector<int64_t> st = a.attr_ints("strides", {1, 1});
  const std::vector<int64_t> dil = a.attr_ints("dilations", {1, 1});
  const std::vector<int64_t> pads = a.attr_ints("pads", {0, 0, 0, 0});
  if (k.size() != 2 || st.size() != 2 || dil.size() != 2 || pads.size() != 4) return std::nullopt;
  fast::PoolWindow w{k[0], k[1], st[0], st[1], dil[0], dil[1], pads[0], pads[1], pads[2], pads[3]};
  if (w.kh <= 0 || w.kw <= 0 || w.sh <= 0 || w.sw <= 0 || w.dh <= 0 || w.dw <= 0 || w.pt < 0 ||
      w.pl < 0 || w.pb < 0 || w.pr < 0)
    return std::nullopt;
  return w;
}

std::shared_ptr<const NativeOp> make_native_single(const ir::Graph& g, const ir::Node& n) {
  if (n.domain.empty() && n.op_type == "MaxPool") return make_max_pool(g, n);
  return nullptr;
}

}  // namespace kiln::kernels
