// The blocked convolution driver and the blocked data movers (nchwc.h).
//
// ConvNchwc splits the output into tasks of (image, group of output blocks, output row). A task
// gathers the R input rows its row needs into scratch, zero-padded left and right and converted to
// blocks when the input is NCHW, then walks the row in register tiles of P positions
// (nchwc_body.h via the ISA table). 1x1-style convolutions without padding on blocked input read
// the input in place. NCHW output goes through a tile buffer and is scattered per channel.
#include "kernels/fast/nchwc.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/fast/gemm.h"
#include "kernels/fast/isa.h"
#include "kernels/fast/tasks.h"
#include "kernels/multiversion.h"
#include "kiln/error.h"

namespace kiln::kernels::fast {
namespace {

bool depthwise_shape(const ConvShape& s) { return s.group > 1 && s.group == s.c && s.k == s.c; }

bool simple_activation(const Activation& a) {
  using K = Activation::Kind;
  return a.kind == K::kRelu || a.kind == K::kClip || a.kind == K::kLeakyRelu;
}

// Interleaves `lanes` rows of `len` floats (rows `stride` apart) into dst[i * cb + lane].
inline void interleave_lanes(const float* src, int64_t stride, int64_t lanes, int64_t len,
                             int64_t cb, float* dst) {
  for (int64_t l = 0; l < lanes; ++l)
    for (int64_t i = 0; i < len; ++i) dst[i * cb + l] = src[l * stride + i];
}

}  // namespace

int64_t nchwc_block() { return isa().nchwc_block; }

bool nchwc_conv_supported(const ConvShape& s) {
  const bool ok = s.n > 0 && s.c > 0 && s.k > 0 && s.r > 0 && s.s > 0 && s.stride_h > 0 &&
                  s.stride_w > 0 && s.dil_h > 0 && s.dil_w > 0 && s.pad_t >= 0 && s.pad_l >= 0 &&
                  s.pad_b >= 0 && s.pad_r >= 0 && s.out_h() > 0 && s.out_w() > 0;
  return ok && (s.group == 1 || depthwise_shape(s));
}

std::shared_ptr<const NchwcWeights> NchwcWeights::pack(const ConvShape& s, const float* weights) {
  if (!nchwc_conv_supported(s))
    throw Error(ErrorCode::kInvalidArgument, "blocked conv: unsupported shape or group");
  const IsaKernels& kr = isa();
  auto p = std::make_shared<NchwcWeights>();
  p->dims_ = FilterDims::of(s);
  p->level_ = kr.level;
  const int64_t cb = p->cb_ = kr.nchwc_block;
  const int64_t rs = s.r * s.s;
  const int64_t kb = nchwc_blocks(s.k, cb), cbk = nchwc_blocks(s.c, cb);
  if (s.group != 1) {  // depthwise: [C/cb][R][S][lane]
    const size_t count = size_t(cbk * rs * cb);
    float* d = p->data_.reserve(count);
    std::fill(d, d + count, 0.0f);
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t t = 0; t < rs; ++t) d[((c / cb) * rs + t) * cb + c % cb] = weights[c * rs + t];
    return p;
  }
  const size_t count = size_t(kb * cbk * rs * cb * cb);
  float* d = p->data_.reserve(count);
  std::fill(d, d + count, 0.0f);
  for (int64_t k = 0; k < s.k; ++k)
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t t = 0; t < rs; ++t)
        d[(((k / cb) * cbk + c / cb) * rs + t) * cb * cb + (c % cb) * cb + k % cb] =
            weights[(k * s.c + c) * rs + t];
  if (s.c <= cb) {
    const int64_t taps = s.c * rs;
    float* f = p->flat_.reserve(size_t(kb * taps * cb));
    std::fill(f, f + kb * taps * cb, 0.0f);
    for (int64_t k = 0; k < s.k; ++k)
      for (int64_t t = 0; t < taps; ++t)
        f[((k / cb) * taps + t) * cb + k % cb] = weights[k * taps + t];
  }
  return p;
}

bool NchwcWeights::fits(const ConvShape& s) const {
  return dims_ == FilterDims::of(s) && isa().level == level_;
}

ConvNchwc::ConvNchwc(const ConvShape& shape, std::shared_ptr<const NchwcWeights> packed,
                     const float* bias, Activation act, bool x_blocked, bool y_blocked,
                     bool by_rows)
    : shape_(shape),
      s_(shape),
      w_(std::move(packed)),
      act_(act),
      x_blocked_(x_blocked),
      y_blocked_(y_blocked) {
  if (!nchwc_conv_supported(shape) || !w_ || !w_->fits(shape))
    throw Error(ErrorCode::kInvalidArgument, "blocked conv: filters packed for another shape");
  const bool padded = shape.pad_t || shape.pad_l || shape.pad_b || shape.pad_r;
  if (!by_rows && shape.r == 1 && shape.s == 1 && shape.stride_h == 1 && shape.stride_w == 1 &&
      !padded && shape.group == 1) {
    // Both layouts store an image's positions in one run per block (or channel): one long row
    // gives whole tiles over the row ends, and the tasks split it into chunks below.
    s_.w = shape.h * shape.w;
    s_.h = 1;
  }
  const ConvShape& s = s_;
  const IsaKernels& kr = isa();
  level_ = kr.level;
  cb_ = kr.nchwc_block;
  depthwise_ = s.group != 1;
  cblocks_ = nchwc_blocks(s.c, cb_);
  kblocks_ = nchwc_blocks(s.k, cb_);
  float* b = bias_.reserve(size_t(kblocks_ * cb_));
  for (int64_t k = 0; k < kblocks_ * cb_; ++k) b[k] = bias != nullptr && k < s.k ? bias[k] : 0.0f;
  planar_ = !x_blocked && !depthwise_;
  copy_input_ = padded || (!x_blocked && depthwise_);
  wp_ = std::max(s.pad_l + s.w + s.pad_r, (s.out_w() - 1) * s.stride_w + (s.s - 1) * s.dil_w + 1);
  if (planar_ && w_->flat() != nullptr) {
    // The strides input_rows gives a planar input of one block: copied rows or in place.
    const int64_t lane = copy_input_ ? wp_ : s.h * s.w;
    const int64_t row = copy_input_ ? wp_ * cb_ : s.dil_h * s.w;
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t r = 0; r < s.r; ++r)
        for (int64_t t = 0; t < s.s; ++t) taps_.push_back(c * lane + r * row + t * s.dil_w);
  }
  // Output blocks per tile: the most the accumulators allow (3 where that divides the blocks
  // and the most does not); the last group of a layer takes the remainder. Then positions per
  // tile, spread evenly over the row.
  ob_ = 1;
  if (!depthwise_) {
    ob_ = std::min<int64_t>(kr.nchwc_max_ob, kblocks_);
    if (kblocks_ % ob_ != 0 && ob_ == 4 && kblocks_ % 3 == 0) ob_ = 3;
  }
  groups_ = (kblocks_ + ob_ - 1) / ob_;
  int64_t pmax = depthwise_ ? s.out_w() : kr.nchwc_acc / ob_;
  if (!depthwise_ && s.out_w() <= kr.nchwc_acc_max / ob_) pmax = s.out_w();  // one tile a row
  tiles_ = (s.out_w() + pmax - 1) / pmax;
  p_ = (s.out_w() + tiles_ - 1) / tiles_;  // the longest tile; lengths differ by at most 1
  // A row of more than 8 tiles (a flattened image) splits into tasks of about 8 tiles.
  chunks_ = depthwise_ ? 1 : (tiles_ + 7) / 8;
  // A depthwise task takes rows of one block until it has about 256 positions (a row of a small
  // image is too little work to pay for a task, and the band's input rows are copied once), but
  // at most half the image: two threads then take the top and bottom halves across all blocks,
  // as they do in the layers before and after.
  dw_rows_ = std::clamp<int64_t>(256 / s.out_w(), 1, (s.out_h() + 1) / 2);
  y_image_ = kblocks_ * s.out_h() * s.out_w() * cb_;
  chunk_tiles_ = (tiles_ + chunks_ - 1) / chunks_;
  const double filter_bytes = double(s.k) * double(s.c / s.group) * double(s.r * s.s) * 4.0;
  spatial_major_ = filter_bytes <= 512.0 * 1024.0;
}

std::string ConvNchwc::algorithm() const {
  return std::string(depthwise_ ? "nchwc-depthwise" : "nchwc") + (x_blocked_ ? "" : " from-nchw") +
         (y_blocked_ ? "" : " to-nchw");
}

// Floats of copied input rows a task needs: R rows of every block, or a depthwise band's rows.
int64_t ConvNchwc::input_floats() const {
  const ConvShape& s = s_;
  if (!depthwise_) return s.r * cblocks_ * wp_ * cb_;
  return ((dw_rows_ - 1) * s.stride_h + (s.r - 1) * s.dil_h + 1) * wp_ * cb_;
}

size_t ConvNchwc::scratch_bytes() const {
  const int64_t rows = copy_input_ ? input_floats() : 0;
  const int64_t tile = (depthwise_ ? s_.out_w() : ob_ * p_) * cb_;
  return size_t(rows + tile + 16) * sizeof(float);
}

// The R input rows of output row `oh` for input blocks [block0, block0 + blocks): where (row 0,
// block 0, lane 0, column 0 of the padded row) is and the strides between rows, blocks, lanes.
// Copied rows are [R][blocks][wp][cb] (blocked or depthwise) or [R][blocks][cb][wp] (planar).
ConvNchwc::Rows ConvNchwc::input_rows(int64_t n, int64_t oh, int64_t blocks, int64_t block0,
                                      const float* x, float* buf) const {
  const ConvShape& s = s_;
  const int64_t cb = cb_, plane = s.h * s.w;
  const int64_t ih0 = oh * s.stride_h - s.pad_t;
  if (!copy_input_) {
    if (planar_)
      return {x + (n * s.c + block0 * cb) * plane + ih0 * s.w, s.dil_h * s.w, cb * plane, plane};
    return {x + (((n * cblocks_ + block0) * s.h + ih0) * s.w) * cb, s.dil_h * s.w * cb, plane * cb,
            1};
  }
  const int64_t row_floats = blocks * wp_ * cb;
  for (int64_t r = 0; r < s.r; ++r) {
    const int64_t ih = ih0 + r * s.dil_h;
    float* dst_r = buf + r * row_floats;
    if (ih < 0 || ih >= s.h) {
      std::fill(dst_r, dst_r + row_floats, 0.0f);
      continue;
    }
    for (int64_t b = 0; b < blocks; ++b) {
      float* dst = dst_r + b * wp_ * cb;
      const int64_t blk = block0 + b;
      const int64_t lanes = std::min(cb, s.c - blk * cb);
      if (planar_) {
        // Lanes past C are never read (the tiles stop at the last real input lane).
        for (int64_t l = 0; l < lanes; ++l) {
          float* d = dst + l * wp_;
          std::fill(d, d + s.pad_l, 0.0f);
          std::memcpy(d + s.pad_l, x + ((n * s.c + blk * cb + l) * s.h + ih) * s.w,
                      size_t(s.w) * sizeof(float));
          std::fill(d + s.pad_l + s.w, d + wp_, 0.0f);
        }
        continue;
      }
      blocked_row(n, blk, ih, x, dst);
    }
  }
  if (planar_) return {buf, row_floats, wp_ * cb, wp_};
  return {buf, row_floats, wp_ * cb, 1};
}

// Input row ih (in the image) of block blk as a zero-padded blocked row of wp_ positions.
void ConvNchwc::blocked_row(int64_t n, int64_t blk, int64_t ih, const float* x, float* dst) const {
  const ConvShape& s = s_;
  const int64_t cb = cb_;
  std::fill(dst, dst + s.pad_l * cb, 0.0f);
  std::fill(dst + (s.pad_l + s.w) * cb, dst + wp_ * cb, 0.0f);
  float* mid = dst + s.pad_l * cb;
  if (x_blocked_)
    std::memcpy(mid, x + (((n * cblocks_ + blk) * s.h + ih) * s.w) * cb,
                size_t(s.w * cb) * sizeof(float));
  else
    interleave_lanes(x + ((n * s.c + blk * cb) * s.h + ih) * s.w, s.h * s.w,
                     std::min(cb, s.c - blk * cb), s.w, cb, mid);
}

// Bands of an image: (row, chunk) pairs, or a depthwise conv's bands of dw_rows_ rows.
int64_t ConvNchwc::bands_per_image() const {
  const int64_t oh = s_.out_h();
  return depthwise_ ? (oh + dw_rows_ - 1) / dw_rows_ : chunks_ * oh;
}

void ConvNchwc::run_task(int64_t task, const float* x, float* y, const float* residual,
                         float* buf) const {
  const int64_t bands = bands_per_image();
  const int64_t per_image = bands * groups_;
  const int64_t n = task / per_image, in_image = task % per_image;
  // Band and group: one of them outermost (spatial_major_).
  const int64_t band = spatial_major_ ? in_image / groups_ : in_image % bands;
  const int64_t g = spatial_major_ ? in_image % groups_ : in_image / bands;
  const int64_t chunk = depthwise_ ? 0 : band % chunks_;
  run_unit(n, g, depthwise_ ? band * dw_rows_ : band / chunks_, chunk, x, y, residual, buf,
           nullptr);
}

// One task's work: output row oh (the first of a depthwise band) of group g, column chunk
// `chunk`, of image n. With `band`, a blocked output goes to band->y's rows instead of y.
void ConvNchwc::run_unit(int64_t n, int64_t g, int64_t oh, int64_t chunk, const float* x, float* y,
                         const float* residual, float* buf, const Band* band) const {
  const ConvShape& s = s_;
  const IsaKernels& kr = isa_for_level(level_);
  const int64_t cb = cb_, oh_count = s.out_h(), ow_count = s.out_w();
  const int64_t k0 = g * ob_;                       // first output block
  const int64_t ob = std::min(ob_, kblocks_ - k0);  // the last group takes the remainder
  const Activation* simple = simple_activation(act_) ? &act_ : nullptr;
  const bool late_act = act_.kind != Activation::Kind::kNone && simple == nullptr;
  float* tile_buf = buf + (copy_input_ ? input_floats() : 0);
  const int64_t out_plane = oh_count * ow_count;

  // Writes a finished blocked tile [ob][len][cb] at position ow0 into NCHW y.
  auto scatter = [&](const float* t, int64_t t_block, int64_t ow0, int64_t len) {
    for (int64_t o = 0; o < ob; ++o)
      for (int64_t l = 0; l < cb; ++l) {
        const int64_t k = (k0 + o) * cb + l;
        if (k >= s.k) break;
        float* yr = y + (n * s.k + k) * out_plane + oh * ow_count + ow0;
        const float* rr = residual != nullptr
                              ? residual + (n * s.k + k) * out_plane + oh * ow_count + ow0
                              : nullptr;
        for (int64_t p = 0; p < len; ++p) {
          float v = t[o * t_block + p * cb + l];
          if (rr != nullptr) v += rr[p];
          yr[p] = v;
        }
        if (late_act || (simple != nullptr && rr != nullptr))
          kr.epilogue_row(yr, len, 0.0f, nullptr, act_);
      }
  };
  // Blocked output (and residual) of block k at position ow0: in the image, or the band's rows.
  const int64_t y_block = band != nullptr ? band->rows * band->row_floats : out_plane * cb;
  // y's images may be further apart than a packed residual's (set_y_image_floats).
  auto out_at = [&](auto* base, int64_t k, int64_t ow0, int64_t image_floats) {
    if (band != nullptr)
      return base + (k * band->rows + oh - band->row0) * band->row_floats + (band->col0 + ow0) * cb;
    return base + n * image_floats + (k * oh_count + oh) * ow_count * cb + ow0 * cb;
  };
  const int64_t packed = kblocks_ * out_plane * cb;

  if (depthwise_) {
    // The band's input rows, copied once (padded) or read in place: row i is input row ih0 + i.
    const int64_t oh0 = oh, oh1 = std::min(oh_count, oh0 + dw_rows_);
    const int64_t ih0 = oh0 * s.stride_h - s.pad_t;
    const float* base = x + (((n * cblocks_ + g) * s.h + ih0) * s.w) * cb;
    int64_t row_floats = s.w * cb;
    if (copy_input_) {
      row_floats = wp_ * cb;
      const int64_t in_rows = (oh1 - oh0 - 1) * s.stride_h + (s.r - 1) * s.dil_h + 1;
      for (int64_t i = 0; i < in_rows; ++i) {
        const int64_t ih = ih0 + i;
        if (ih < 0 || ih >= s.h)
          std::fill(buf + i * row_floats, buf + (i + 1) * row_floats, 0.0f);
        else
          blocked_row(n, g, ih, x, buf + i * row_floats);
      }
      base = buf;
    }
    NchwcDepthwiseRow a = depthwise_args(g, row_floats);
    for (; oh < oh1; ++oh) {
      a.x = base + (oh - oh0) * s.stride_h * row_floats;
      if (y_blocked_) {
        a.y = out_at(y, g, 0, y_image_);
        a.residual = residual != nullptr ? out_at(residual, g, 0, packed) : nullptr;
        a.act = simple;
        kr.nchwc_depthwise_row(a);
        if (late_act) kr.epilogue_row(a.y, ow_count * cb, 0.0f, nullptr, act_);
      } else {
        a.y = tile_buf;
        a.act = residual == nullptr ? simple : nullptr;
        kr.nchwc_depthwise_row(a);
        scatter(tile_buf, 0, 0, ow_count);
      }
    }
    return;
  }

  const Rows in = input_rows(n, oh, cblocks_, 0, x, buf);
  const float* xr = in.x;

  NchwcConvTile t{};
  const int64_t col = planar_ ? 1 : cb;  // floats between columns
  t.x_block = in.block;
  t.x_row = in.row;
  t.x_lane = in.lane;
  t.x_col = s.dil_w * col;
  t.x_pos = s.stride_w * col;
  t.in_blocks = cblocks_;
  t.last_lanes = s.c - (cblocks_ - 1) * cb;
  t.r = s.r;
  t.s = s.s;
  const int64_t w_block =
      taps_.empty() ? cblocks_ * s.r * s.s * cb * cb : int64_t(taps_.size()) * cb;
  t.w = (taps_.empty() ? w_->data() : w_->flat()) + k0 * w_block;
  t.w_block = w_block;
  t.taps = taps_.empty() ? nullptr : taps_.data();
  t.ntaps = int64_t(taps_.size());
  t.bias = bias_.data() + k0 * cb;
  t.ob = int(ob);
  const int64_t tile_end = std::min(tiles_, (chunk + 1) * chunk_tiles_);
  for (int64_t tile = chunk * chunk_tiles_; tile < tile_end; ++tile) {
    // Tiles spread the row evenly (49 positions: 4 of 6 and 5 of 5, not 8 of 6 and 1 of 1).
    const int64_t ow0 = tile * ow_count / tiles_;
    const int64_t len = (tile + 1) * ow_count / tiles_ - ow0;
    t.p = int(len);
    // Without input padding on the left, x starts at the tile's first input column.
    t.x = xr + ow0 * t.x_pos;
    if (y_blocked_) {
      t.y = out_at(y, k0, ow0, y_image_);
      t.y_block = y_block;
      t.residual = residual != nullptr ? out_at(residual, k0, ow0, packed) : nullptr;
      t.residual_block = t.y_block;
      t.act = simple;
      kr.nchwc_conv_tile(t);
      if (late_act)
        for (int64_t o = 0; o < ob; ++o)
          kr.epilogue_row(t.y + o * t.y_block, len * cb, 0.0f, nullptr, act_);
    } else {
      t.y = tile_buf;
      t.y_block = len * cb;
      t.residual = nullptr;
      t.act = residual == nullptr ? simple : nullptr;
      kr.nchwc_conv_tile(t);
      scatter(tile_buf, t.y_block, ow0, len);
    }
  }
}

void ConvNchwc::run(const float* x, float* y, const float* residual, void* scratch) const {
  const ConvShape& s = s_;
  if (isa().level != level_)
    throw Error(ErrorCode::kInvalidArgument, "blocked conv: built for another dispatch level");
  const int64_t tasks = s.n * groups_ * bands_per_image();
  const size_t floats = scratch_bytes() / sizeof(float);
  // A depthwise conv is memory-bound: split it like the other memory-bound passes (tasks.h).
  const bool parallel = task_budget(s.fma()) > 1 ||
                        (depthwise_ && memory_bands(double(s.n * cblocks_ * s.h * s.w * cb_)) > 1);
  run_tasks(tasks, parallel, scratch, floats,
            [&](int64_t task, float* buf) { run_task(task, x, y, residual, buf); });
}

void ConvNchwc::run_rows(int64_t n, int64_t oh0, int64_t oh1, const float* x, float* rows,
                         float* buf, int64_t row_floats, int64_t col0, int64_t block_rows) const {
  if (depthwise_ || !y_blocked_ || !by_rows())
    throw Error(ErrorCode::kInternal, "blocked conv: rows into a band need a blocked output");
  const Band band{oh0, block_rows > 0 ? block_rows : oh1 - oh0,
                  row_floats > 0 ? row_floats : s_.out_w() * cb_, col0};
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t g = 0; g < groups_; ++g)
      for (int64_t chunk = 0; chunk < chunks_; ++chunk)
        run_unit(n, g, oh, chunk, x, rows, nullptr, buf, &band);
}

// The depthwise row arguments of block g over padded input rows `row_floats` apart (x, y,
// residual and act per call).
NchwcDepthwiseRow ConvNchwc::depthwise_args(int64_t g, int64_t row_floats) const {
  const ConvShape& s = s_;
  NchwcDepthwiseRow a{};
  a.x_row = s.dil_h * row_floats;
  a.x_col = s.dil_w * cb_;
  a.x_pos = s.stride_w * cb_;
  a.r = s.r;
  a.s = s.s;
  a.ow = s.out_w();
  a.w = w_->data() + g * s.r * s.s * cb_;
  a.bias = bias_.data() + g * cb_;
  return a;
}

void ConvNchwc::run_dw_rows(int64_t n, int64_t oh0, int64_t oh1, const float* rows, int64_t row0,
                            int64_t count, int64_t row_floats, float* y) const {
  if (!depthwise_ || !y_blocked_)
    throw Error(ErrorCode::kInternal, "blocked conv: band rows need a blocked depthwise conv");
  const ConvShape& s = s_;
  const IsaKernels& kr = isa_for_level(level_);
  const int64_t cb = cb_, oh_count = s.out_h(), ow_count = s.out_w();
  const Activation* simple = simple_activation(act_) ? &act_ : nullptr;
  const bool late_act = act_.kind != Activation::Kind::kNone && simple == nullptr;
  for (int64_t g = 0; g < kblocks_; ++g) {
    NchwcDepthwiseRow a = depthwise_args(g, row_floats);
    a.act = simple;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      a.x = rows + (g * count + oh * s.stride_h - s.pad_t - row0) * row_floats;
      a.y = y + ((n * kblocks_ + g) * oh_count + oh) * ow_count * cb;
      kr.nchwc_depthwise_row(a);
      if (late_act) kr.epilogue_row(a.y, ow_count * cb, 0.0f, nullptr, act_);
    }
  }
}

// ---- Data movement and pooling on blocked data ----
// (Multi-versioned bodies stay internal: their ifunc resolvers would otherwise be exported.)

namespace {

KILN_MULTIVERSION
void nchwc_from_nchw_impl(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb) {
  const int64_t blocks = nchwc_blocks(c, cb);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks; ++b) {
      float* dst = y + (i * blocks + b) * hw * cb;
      const int64_t lanes = std::min(cb, c - b * cb);
      interleave_lanes(x + (i * c + b * cb) * hw, hw, lanes, hw, cb, dst);
      for (int64_t l = lanes; l < cb; ++l)
        for (int64_t p = 0; p < hw; ++p) dst[p * cb + l] = 0.0f;
    }
}

KILN_MULTIVERSION
void nchwc_to_nchw_impl(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb) {
  const int64_t blocks = nchwc_blocks(c, cb);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks; ++b) {
      const float* src = x + (i * blocks + b) * hw * cb;
      const int64_t lanes = std::min(cb, c - b * cb);
      for (int64_t l = 0; l < lanes; ++l) {
        float* dst = y + (i * c + b * cb + l) * hw;
        for (int64_t p = 0; p < hw; ++p) dst[p] = src[p * cb + l];
      }
    }
}

// Taps [lo, hi) of a window starting at `start` (step d, k taps) that land in [0, size).
inline void tap_range(int64_t start, int64_t k, int64_t d, int64_t size, int64_t* lo, int64_t* hi) {
  *lo = start >= 0 ? 0 : (-start + d - 1) / d;
  *hi = start >= size ? 0 : start + (k - 1) * d < size ? k : (size - 1 - start) / d + 1;
  if (*hi < *lo) *hi = *lo;
}

// Whole-block vectors (GCC vector extensions: one zmm in the AVX-512 clone, split into narrower
// registers in the others). Only used inside functions, never passed by value across calls.
typedef float BlockVec16 __attribute__((vector_size(64)));
typedef float BlockVec8 __attribute__((vector_size(32)));

// One output row of one block: every position over the window's in-image taps.
template <class V, bool kMax>
[[gnu::always_inline]] inline void pool_row(const PoolNchwc& p, const float* xb, int64_t row0,
                                            float* yr, int64_t oh) {
  constexpr int64_t CB = sizeof(V) / sizeof(float);
  const int64_t ih0 = oh * p.win.sh - p.win.pt;
  int64_t r_lo, r_hi;
  tap_range(ih0, p.win.kh, p.win.dh, p.h, &r_lo, &r_hi);
  for (int64_t ow = 0; ow < p.ow; ++ow) {
    const int64_t iw0 = ow * p.win.sw - p.win.pl;
    int64_t q_lo, q_hi;
    tap_range(iw0, p.win.kw, p.win.dw, p.w, &q_lo, &q_hi);
    V acc;
    for (int64_t l = 0; l < CB; ++l) acc[l] = kMax ? -std::numeric_limits<float>::infinity() : 0.0f;
    for (int64_t r = r_lo; r < r_hi; ++r) {
      const float* row = xb + ((ih0 + r * p.win.dh - row0) * p.w + iw0) * CB;  // xb: row row0
      for (int64_t q = q_lo; q < q_hi; ++q) {
        V v;
        std::memcpy(&v, row + q * p.win.dw * CB, sizeof v);
        if constexpr (kMax) {
          acc = acc < v ? v : acc;
        } else {
          acc += v;
        }
      }
    }
    if constexpr (!kMax) {
      int64_t div = (r_hi - r_lo) * (q_hi - q_lo);
      if (p.count_include_pad) {  // the window clipped to the padded input, not beyond
        int64_t a, b, c, d;
        tap_range(ih0 + p.win.pt, p.win.kh, p.win.dh, p.h + p.win.pt + p.win.pb, &a, &b);
        tap_range(iw0 + p.win.pl, p.win.kw, p.win.dw, p.w + p.win.pl + p.win.pr, &c, &d);
        div = (b - a) * (d - c);
      }
      acc *= div > 0 ? 1.0f / float(div) : 0.0f;
    }
    std::memcpy(yr + ow * CB, &acc, sizeof acc);
  }
}

template <class V>
[[gnu::always_inline]] inline void pool_rows(const PoolNchwc& p, const float* x, float* y,
                                             int64_t r0, int64_t r1) {
  constexpr int64_t CB = sizeof(V) / sizeof(float);
  const int64_t blocks = (p.c + CB - 1) / CB;
  for (int64_t row = r0; row < r1; ++row) {
    // Rows in (image, output row, block) order: a thread's range is a band of the image.
    const int64_t b = row % blocks, oh = (row / blocks) % p.oh, n = row / (blocks * p.oh);
    const int64_t nb = n * blocks + b;
    const float* xb = x + nb * p.h * p.w * CB;
    float* yr = y + (nb * p.oh + oh) * p.ow * CB;
    if (p.max) {
      pool_row<V, true>(p, xb, 0, yr, oh);
    } else {
      pool_row<V, false>(p, xb, 0, yr, oh);
    }
  }
}

// Output rows [oh0, oh1) of image n from a band holding input rows [row0, row0 + rows) of every
// block ([block][rows][w][cb]).
template <class V>
[[gnu::always_inline]] inline void pool_band(const PoolNchwc& p, const float* band, int64_t row0,
                                             int64_t rows, float* y, int64_t n, int64_t oh0,
                                             int64_t oh1) {
  constexpr int64_t CB = sizeof(V) / sizeof(float);
  const int64_t blocks = (p.c + CB - 1) / CB;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = band + b * rows * p.w * CB;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      float* yr = y + ((n * blocks + b) * p.oh + oh) * p.ow * CB;
      if (p.max) {
        pool_row<V, true>(p, xb, row0, yr, oh);
      } else {
        pool_row<V, false>(p, xb, row0, yr, oh);
      }
    }
  }
}

KILN_MULTIVERSION
void pool_band16(const PoolNchwc& p, const float* band, int64_t row0, int64_t rows, float* y,
                 int64_t n, int64_t oh0, int64_t oh1) {
  pool_band<BlockVec16>(p, band, row0, rows, y, n, oh0, oh1);
}
KILN_MULTIVERSION
void pool_band8(const PoolNchwc& p, const float* band, int64_t row0, int64_t rows, float* y,
                int64_t n, int64_t oh0, int64_t oh1) {
  pool_band<BlockVec8>(p, band, row0, rows, y, n, oh0, oh1);
}

KILN_MULTIVERSION
void pool_rows16(const PoolNchwc& p, const float* x, float* y, int64_t r0, int64_t r1) {
  pool_rows<BlockVec16>(p, x, y, r0, r1);
}
KILN_MULTIVERSION
void pool_rows8(const PoolNchwc& p, const float* x, float* y, int64_t r0, int64_t r1) {
  pool_rows<BlockVec8>(p, x, y, r0, r1);
}

}  // namespace

void nchwc_pool(const PoolNchwc& p, const float* x, float* y, int64_t cb) {
  const int64_t rows = p.n * nchwc_blocks(p.c, cb) * p.oh;
  const double work = double(rows) * double(p.ow) * double(p.win.kh * p.win.kw) * double(cb);
  auto body = [&](int64_t r0, int64_t r1) {
    if (cb == 16) {
      pool_rows16(p, x, y, r0, r1);
    } else {
      pool_rows8(p, x, y, r0, r1);
    }
  };
  const int64_t bands = std::min(rows, memory_bands(work / double(p.win.kh * p.win.kw) * 4.0));
  if (bands <= 1) {
    body(0, rows);
    return;
  }
  // Each thread pools one band of the image (rows are in image, output row, block order).
  tbb::parallel_for(
      int64_t{0}, bands, [&](int64_t t) { body(rows * t / bands, rows * (t + 1) / bands); },
      tbb::static_partitioner());
}

namespace {

KILN_MULTIVERSION
void global_avg_pool_impl(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb) {
  const int64_t blocks = nchwc_blocks(c, cb);
  float acc[16];
  const float inv = 1.0f / float(hw);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks; ++b) {
      const float* src = x + (i * blocks + b) * hw * cb;
      for (int64_t l = 0; l < cb; ++l) acc[l] = 0.0f;
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t l = 0; l < cb; ++l) acc[l] += src[p * cb + l];
      const int64_t lanes = std::min(cb, c - b * cb);
      for (int64_t l = 0; l < lanes; ++l) y[i * c + b * cb + l] = acc[l] * inv;
    }
}

}  // namespace

void nchwc_from_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb) {
  nchwc_from_nchw_impl(x, y, n, c, hw, cb);
}

void nchwc_to_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb) {
  nchwc_to_nchw_impl(x, y, n, c, hw, cb);
}

void nchwc_global_avg_pool(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb) {
  global_avg_pool_impl(x, y, n, c, hw, cb);
}

namespace {

// Rows per band of a fused pair: `out_rows` rows of the second step, whose windows span `reach`
// rows of the first's output `stride` apart, as many as keep the rows they read (`row_floats`
// floats each) within ~256 KiB (L2). Sets *band and *band_rows (the rows a band reads at most)
// and returns the floats of those rows, rounded to whole cache lines.
size_t l2_band(int64_t row_floats, int64_t reach, int64_t stride, int64_t out_rows, int64_t* band,
               int64_t* band_rows) {
  const int64_t max_rows = std::max<int64_t>(reach, (256 << 10) / (row_floats * 4));
  *band = std::clamp<int64_t>((max_rows - reach) / stride + 1, 1, out_rows);
  *band_rows = (*band - 1) * stride + reach;
  return size_t(*band_rows * row_floats + 15) & ~size_t(15);
}

}  // namespace

ConvPoolNchwc::ConvPoolNchwc(ConvNchwc conv, const PoolNchwc& pool)
    : conv_(std::move(conv)), pool_(pool) {
  const ConvShape& s = conv_.shape();
  if (pool_.n != s.n || pool_.c != s.k || pool_.h != s.out_h() || pool_.w != s.out_w())
    throw Error(ErrorCode::kInvalidArgument, "conv+pool: the pool does not read the conv");
  if (!conv_.by_rows())
    throw Error(ErrorCode::kInvalidArgument, "conv+pool: a 1x1 stride-1 conv runs as one row");
  cb_ = nchwc_block();
  // Pooled rows per band: the conv rows they read (all blocks).
  band_floats_ =
      l2_band(nchwc_blocks(s.k, cb_) * s.out_w() * cb_, (pool_.win.kh - 1) * pool_.win.dh + 1,
              pool_.win.sh, pool_.oh, &band_, &band_rows_);
}

size_t ConvPoolNchwc::scratch_bytes() const {
  return band_floats_ * sizeof(float) + conv_.scratch_bytes() + 64;
}

std::string ConvPoolNchwc::algorithm() const {
  return conv_.algorithm() + " +" + (pool_.max ? "maxpool " : "averagepool ") +
         std::to_string(pool_.win.kh) + "x" + std::to_string(pool_.win.kw) + "/" +
         std::to_string(pool_.win.sh);
}

void ConvPoolNchwc::run(const float* x, float* y, const float* residual, void* scratch) const {
  if (residual != nullptr) throw Error(ErrorCode::kInvalidArgument, "conv+pool: no residual input");
  const ConvShape& s = conv_.shape();
  const int64_t bands = (pool_.oh + band_ - 1) / band_;
  const int64_t tasks = s.n * bands;
  run_tasks(tasks, task_budget(s.fma()) > 1, scratch, scratch_bytes() / sizeof(float),
            [&](int64_t task, float* buf) {
              const int64_t n = task / bands, b = task % bands;
              const int64_t oh0 = b * band_, oh1 = std::min(pool_.oh, oh0 + band_);
              // The conv rows the band's windows touch, clipped to the conv output.
              const int64_t r0 = std::max<int64_t>(0, oh0 * pool_.win.sh - pool_.win.pt);
              const int64_t r1 = std::min(s.out_h(), (oh1 - 1) * pool_.win.sh - pool_.win.pt +
                                                         (pool_.win.kh - 1) * pool_.win.dh + 1);
              float* rows = buf;
              if (r1 > r0) conv_.run_rows(n, r0, r1, x, rows, buf + band_floats_);
              if (cb_ == 16)
                pool_band16(pool_, rows, r0, std::max<int64_t>(r1 - r0, 0), y, n, oh0, oh1);
              else
                pool_band8(pool_, rows, r0, std::max<int64_t>(r1 - r0, 0), y, n, oh0, oh1);
            });
}

namespace {
constexpr double kApartBytes = 1.5e6;  // expanded tensors below this may run as two steps
}  // namespace

ConvDwNchwc::ConvDwNchwc(ConvNchwc conv, ConvNchwc dw, std::optional<ConvNchwc> apart)
    : conv_(std::move(conv)), dw_(std::move(dw)), apart_(std::move(apart)) {
  const ConvShape &s = conv_.shape(), &d = dw_.shape();
  if (!conv_.by_rows() || d.group == 1 || d.n != s.n || d.c != s.k || d.h != s.out_h() ||
      d.w != s.out_w())
    throw Error(ErrorCode::kInvalidArgument,
                "conv+depthwise: the depthwise does not read the conv");
  cb_ = nchwc_block();
  wp_ = std::max(d.pad_l + d.w + d.pad_r, (d.out_w() - 1) * d.stride_w + (d.s - 1) * d.dil_w + 1);
  // Depthwise rows per band: the conv rows they read (all blocks, padded).
  band_floats_ = l2_band(nchwc_blocks(d.c, cb_) * wp_ * cb_, (d.r - 1) * d.dil_h + 1, d.stride_h,
                         d.out_h(), &band_, &band_rows_);
  const int64_t mid = nchwc_blocks(d.c, cb_) * d.n * d.h * d.w * cb_;
  if (apart_ && double(mid) * 4.0 < kApartBytes) mid_floats_ = size_t(mid + 15) & ~size_t(15);
}

size_t ConvDwNchwc::scratch_bytes() const {
  const size_t fused = band_floats_ * sizeof(float) + conv_.scratch_bytes() + 64;
  if (mid_floats_ == 0) return fused;
  const size_t apart =
      mid_floats_ * sizeof(float) + std::max(apart_->scratch_bytes(), dw_.scratch_bytes()) + 64;
  return std::max(fused, apart);
}

std::string ConvDwNchwc::algorithm() const {
  return conv_.algorithm() + " +depthwise " + std::to_string(dw_.shape().r) + "x" +
         std::to_string(dw_.shape().s) + "/" + std::to_string(dw_.shape().stride_h);
}

void ConvDwNchwc::run(const float* x, float* y, const float* residual, void* scratch) const {
  if (residual != nullptr)
    throw Error(ErrorCode::kInvalidArgument, "conv+depthwise: no residual input");
  const ConvShape &s = conv_.shape(), &d = dw_.shape();
  const double fma = s.fma();
  if (mid_floats_ > 0 && task_budget(fma) <= 1) {  // one thread, a small expanded tensor
    float* mid =
        static_cast<float*>(scratch != nullptr ? scratch : thread_scratch(scratch_bytes() / 4));
    float* rest = mid + mid_floats_;
    apart_->run(x, mid, nullptr, rest);
    dw_.run(mid, y, nullptr, rest);
    return;
  }
  const int64_t bands = (d.out_h() + band_ - 1) / band_;
  const int64_t blocks = nchwc_blocks(d.c, cb_), row_floats = wp_ * cb_;
  run_tasks(s.n * bands, task_budget(fma) > 1, scratch, scratch_bytes() / sizeof(float),
            [&](int64_t task, float* buf) {
              const int64_t n = task / bands, b = task % bands;
              const int64_t oh0 = b * band_, oh1 = std::min(d.out_h(), oh0 + band_);
              // The input rows of the band's windows, [i0, i1), inside the image [r0, r1).
              const int64_t i0 = oh0 * d.stride_h - d.pad_t;
              const int64_t i1 = (oh1 - 1) * d.stride_h - d.pad_t + (d.r - 1) * d.dil_h + 1;
              const int64_t r0 = std::max<int64_t>(0, i0), r1 = std::min(d.h, i1);
              const int64_t count = i1 - i0;
              float* rows = buf;
              // Zero the pad columns and the rows outside the image; the conv fills the rest.
              for (int64_t k = 0; k < blocks; ++k)
                for (int64_t i = 0; i < count; ++i) {
                  float* row = rows + (k * count + i) * row_floats;
                  if (i0 + i < r0 || i0 + i >= r1) {
                    std::fill(row, row + row_floats, 0.0f);
                  } else {
                    std::fill(row, row + d.pad_l * cb_, 0.0f);
                    std::fill(row + (d.pad_l + d.w) * cb_, row + row_floats, 0.0f);
                  }
                }
              if (r1 > r0)
                conv_.run_rows(n, r0, r1, x, rows + (r0 - i0) * row_floats, buf + band_floats_,
                               row_floats, d.pad_l, count);
              dw_.run_dw_rows(n, oh0, oh1, rows, i0, count, row_floats, y);
            });
}

}  // namespace kiln::kernels::fast
