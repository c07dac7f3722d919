// Native steps on the blocked NCHWc layout (fast/nchwc.h): pooling, the global average pool,
// channel concatenation and the reorders at a blocked region's edges. engine/layout.cc places
// them; each computes exactly what its ONNX node computes, only on blocked memory.
#include <tbb/parallel_for.h>

#include <cstring>

#include "kernels/fast/nchwc.h"
#include "kernels/fast/tasks.h"
#include "kernels/native_ops.h"
#include "kernels/registry.h"

namespace kiln::kernels {

namespace {

bool f32_4d(const ir::Graph& g, int id, Dims* dims) {
  if (id < 0) return false;
  const ir::Value& v = g.values[size_t(id)];
  if (v.dtype != DType::kF32 || !v.shape.is_concrete() || v.shape.rank() != 4) return false;
  *dims = v.shape.concrete();
  for (int64_t d : *dims)
    if (d <= 0) return false;
  return true;
}

class NchwcPool final : public NativeOp {
 public:
  NchwcPool(const fast::PoolNchwc& p, int64_t cb) : p_(p), cb_(cb) {}
  NativeKind kind() const override { return NativeKind::kBlockedPool; }
  void run(void* const* buffers, void*) const override {
    fast::nchwc_pool(p_, static_cast<const float*>(buffers[0]), static_cast<float*>(buffers[1]),
                     cb_);
  }
  std::string describe() const override {
    return std::string(p_.max ? "maxpool" : "averagepool") + " nchwc " + std::to_string(p_.win.kh) +
           "x" + std::to_string(p_.win.kw) + "/" + std::to_string(p_.win.sh) + " " +
           std::to_string(p_.h) + "x" + std::to_string(p_.w) + " -> " + std::to_string(p_.oh) +
           "x" + std::to_string(p_.ow);
  }

 private:
  fast::PoolNchwc p_;
  int64_t cb_;
};

class NchwcGlobalAvgPool final : public NativeOp {
 public:
  NchwcGlobalAvgPool(const Dims& d, int64_t cb) : d_(d), cb_(cb) {}
  void run(void* const* buffers, void*) const override {
    fast::nchwc_global_avg_pool(static_cast<const float*>(buffers[0]),
                                static_cast<float*>(buffers[1]), d_[0], d_[1], d_[2] * d_[3], cb_);
  }
  std::string describe() const override {
    return "globalaveragepool nchwc " + std::to_string(d_[1]) + "x" + std::to_string(d_[2]) + "x" +
           std::to_string(d_[3]) + " -> nchw";
  }

 private:
  Dims d_;
  int64_t cb_;
};

// Channel concatenation: per image, each input's blocks follow the previous input's. Large
// copies split the image into bands across threads, each thread copying its band of every
// block: the band its thread's producers wrote (the blocked convolutions split images so too).
class NchwcConcat final : public NativeOp {
 public:
  NchwcConcat(std::vector<int64_t> floats_per_image, int64_t n, int64_t plane_floats)
      : per_image_(std::move(floats_per_image)), n_(n), plane_(plane_floats) {
    for (int64_t f : per_image_) out_per_image_ += f;
  }
  NativeKind kind() const override { return NativeKind::kBlockedConcat; }
  void run(void* const* buffers, void*) const override {
    float* y = static_cast<float*>(buffers[per_image_.size()]);
    // Copies floats [f0, f1) of every block plane (plane_ floats each) of every input.
    auto copy = [&](int64_t f0, int64_t f1) {
      for (int64_t i = 0; i < n_; ++i) {
        float* dst = y + i * out_per_image_;
        for (size_t k = 0; k < per_image_.size(); ++k) {
          const float* src = static_cast<const float*>(buffers[k]) + i * per_image_[k];
          for (int64_t b = 0; b < per_image_[k] / plane_; ++b)
            std::memcpy(dst + b * plane_ + f0, src + b * plane_ + f0,
                        size_t(f1 - f0) * sizeof(float));
          dst += per_image_[k];
        }
      }
    };
    const int64_t bands =
        std::min<int64_t>(fast::memory_bands(double(n_ * out_per_image_)), plane_ / 256 + 1);
    if (bands <= 1) return copy(0, plane_);
    // Band edges on 16-float (cache line) boundaries; the last band ends at the plane's end.
    auto edge = [&](int64_t t) { return t == bands ? plane_ : plane_ * t / bands / 16 * 16; };
    tbb::parallel_for(
        int64_t{0}, bands, [&](int64_t t) { copy(edge(t), edge(t + 1)); },
        tbb::static_partitioner());
  }
  std::string describe() const override {
    return "concat nchwc " + std::to_string(per_image_.size()) + " inputs";
  }

 private:
  std::vector<int64_t> per_image_;
  int64_t n_, plane_, out_per_image_ = 0;
};

class NchwcReorder final : public NativeOp {
 public:
  NchwcReorder(const Dims& d, bool to_blocked, int64_t cb) : d_(d), to_(to_blocked), cb_(cb) {}
  void run(void* const* buffers, void*) const override {
    const float* x = static_cast<const float*>(buffers[0]);
    float* y = static_cast<float*>(buffers[1]);
    const int64_t hw = d_[2] * d_[3];
    // Images in parallel when there are several (each reorder is one pass over memory).
    auto body = [&](int64_t i0, int64_t i1) {
      const int64_t blocked = fast::nchwc_blocks(d_[1], cb_) * cb_ * hw, plain = d_[1] * hw;
      if (to_) {
        fast::nchwc_from_nchw(x + i0 * plain, y + i0 * blocked, i1 - i0, d_[1], hw, cb_);
      } else {
        fast::nchwc_to_nchw(x + i0 * blocked, y + i0 * plain, i1 - i0, d_[1], hw, cb_);
      }
    };
    if (d_[0] == 1) {
      body(0, 1);
      return;
    }
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, d_[0]),
                      [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
  }
  std::string describe() const override {
    return std::string(to_ ? "reorder nchw -> nchwc " : "reorder nchwc -> nchw ") +
           std::to_string(d_[1]) + "x" + std::to_string(d_[2]) + "x" + std::to_string(d_[3]);
  }

 private:
  Dims d_;
  bool to_;
  int64_t cb_;
};

std::shared_ptr<const NativeOp> make_pool(const ir::Graph& g, const ir::Node& n, bool max,
                                          int64_t cb) {
  Dims xd, yd;
  if (n.inputs.empty() || n.outputs.size() != 1 || !f32_4d(g, n.inputs[0], &xd) ||
      !f32_4d(g, n.outputs[0], &yd) || xd[0] != yd[0] || xd[1] != yd[1])
    return nullptr;
  const std::optional<fast::PoolWindow> win = pool_window(n);
  if (!win) return nullptr;
  fast::PoolNchwc p{};
  p.max = max;
  p.count_include_pad = !max && NodeAttrs(n).attr_int("count_include_pad", 0) != 0;
  p.n = xd[0];
  p.c = xd[1];
  p.h = xd[2];
  p.w = xd[3];
  p.oh = yd[2];
  p.ow = yd[3];
  p.win = *win;
  return std::make_shared<NchwcPool>(p, cb);
}

}  // namespace

std::shared_ptr<const NativeOp> make_nchwc_single(const ir::Graph& g, const ir::Node& n,
                                                  int64_t cb) {
  if (!n.domain.empty() || cb <= 0) return nullptr;
  if (n.op_type == "MaxPool") return make_pool(g, n, true, cb);
  if (n.op_type == "AveragePool") return make_pool(g, n, false, cb);
  if (n.op_type == "GlobalAveragePool") {
    Dims xd, yd;
    if (n.inputs.size() != 1 || n.outputs.size() != 1 || !f32_4d(g, n.inputs[0], &xd) ||
        !f32_4d(g, n.outputs[0], &yd) || yd != Dims{xd[0], xd[1], 1, 1})
      return nullptr;
    return std::make_shared<NchwcGlobalAvgPool>(xd, cb);
  }
  if (n.op_type == "Concat") {
    Dims yd;
    if (n.outputs.size() != 1 || n.inputs.empty() || !f32_4d(g, n.outputs[0], &yd)) return nullptr;
    int64_t axis = NodeAttrs(n).attr_int("axis", 0);
    if (axis != 1 && axis != -3) return nullptr;
    std::vector<int64_t> per_image;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      Dims xd;
      if (!f32_4d(g, n.inputs[i], &xd) || xd[0] != yd[0] || xd[2] != yd[2] || xd[3] != yd[3])
        return nullptr;
      // Blocks line up only when every input but the last fills whole blocks.
      if (i + 1 < n.inputs.size() && xd[1] % cb != 0) return nullptr;
      per_image.push_back(fast::nchwc_blocks(xd[1], cb) * cb * xd[2] * xd[3]);
    }
    return std::make_shared<NchwcConcat>(std::move(per_image), yd[0], yd[2] * yd[3] * cb);
  }
  return nullptr;
}

std::shared_ptr<const NativeOp> make_nchwc_reorder(const Dims& nchw, bool to_blocked, int64_t cb) {
  if (nchw.size() != 4 || cb <= 0) return nullptr;
  return std::make_shared<NchwcReorder>(nchw, to_blocked, cb);
}

}  // namespace kiln::kernels
