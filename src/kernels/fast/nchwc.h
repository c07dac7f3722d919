// The blocked NCHWc layout and its kernels. A 4-D float tensor [N, C, H, W] is stored as
// [N, ceil(C/cb), H, W, cb]: cb channels (one SIMD vector: 16 floats with AVX-512, 8 otherwise)
// side by side for every pixel, so a convolution loads one vector of output channels per weight
// and broadcasts one input element per cb multiply-adds, with no im2col copies. Lanes past C in
// the last block hold unspecified values: no kernel reads them into a real channel (convolutions
// stop at the last real input lane, pools and reorders drop them).
//
// ConvNchwc is the blocked 2-D convolution (group 1, or depthwise with one output per channel):
// it reads its input blocked or NCHW and writes its output blocked or NCHW, so a chain of
// convolutions converts only at its ends. Everything else here moves or pools blocked data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/fast/activation.h"
#include "kernels/fast/buffer.h"
#include "kernels/fast/conv.h"
#include "kernels/fast/isa.h"

namespace kiln::kernels::fast {

/// The channel block at the current dispatch level (16 with AVX-512, else 8).
int64_t nchwc_block();
inline int64_t nchwc_blocks(int64_t c, int64_t cb) { return (c + cb - 1) / cb; }

/// Whether ConvNchwc computes `s`: group 1, or depthwise (group == C == K).
bool nchwc_conv_supported(const ConvShape& s);

/// Filters in the blocked kernel's order, zero in padded lanes: [K/cb][C/cb][R][S][in][out]
/// (group 1) or [C/cb][R][S][lane] (depthwise). Depends on K, C, R, S, the group and the
/// dispatch level only, so every image size of a layer shares one.
class NchwcWeights {
 public:
  static std::shared_ptr<const NchwcWeights> pack(const ConvShape& s, const float* weights);
  bool fits(const ConvShape& s) const;
  int level() const { return level_; }
  int64_t block() const { return cb_; }
  const float* data() const { return data_.data(); }
  /// Group 1 with C <= cb only (else null): [K/cb][C][R][S][out], one vector per tap, for the
  /// one-loop tile over an NCHW input's taps.
  const float* flat() const { return flat_.size() ? flat_.data() : nullptr; }

 private:
  FilterDims dims_;
  int64_t cb_ = 0;
  int level_ = 0;
  AlignedBuffer data_, flat_;
};

class ConvNchwc {
 public:
  /// y = act(conv(x) + bias + residual). `x_blocked` / `y_blocked` choose each side's layout; a
  /// residual is laid out like y. Throws kInvalidArgument when `packed` does not fit `s`.
  /// A blocked output whose images are `floats` apart (a Concat's output that this conv fills
  /// one slice of per image), not packed; the residual stays packed.
  void set_y_image_floats(int64_t floats) { y_image_ = floats; }
  /// `by_rows`: keep tasks on the output's rows even for a 1x1 stride-1 conv (for run_rows).
  ConvNchwc(const ConvShape& s, std::shared_ptr<const NchwcWeights> packed, const float* bias,
            Activation act, bool x_blocked, bool y_blocked, bool by_rows = false);
  void run(const float* x, float* y, const float* residual, void* scratch) const;
  size_t scratch_bytes() const;
  const ConvShape& shape() const { return shape_; }
  std::string algorithm() const;
  /// Whether tasks follow the output's rows (not a 1x1 stride-1 conv's image seen as one row).
  bool by_rows() const { return s_.h == shape_.h; }
  /// Output rows [oh0, oh1) of image n, every block, into `rows` laid out [block][block_rows]
  /// [row_floats] with each row's first position at col0 (defaults: oh1 - oh0 rows of W * cb
  /// floats, col0 0); group 1, blocked output only; `buf`: this call's scratch_bytes().
  void run_rows(int64_t n, int64_t oh0, int64_t oh1, const float* x, float* rows, float* buf,
                int64_t row_floats = 0, int64_t col0 = 0, int64_t block_rows = 0) const;
  /// Depthwise, blocked output only: output rows [oh0, oh1) of image n from `rows`, the input
  /// rows [row0, row0 + count) of every block already padded ([block][count][row_floats], the
  /// left pad's zero columns first; rows outside the image zero).
  void run_dw_rows(int64_t n, int64_t oh0, int64_t oh1, const float* rows, int64_t row0,
                   int64_t count, int64_t row_floats, float* y) const;

 private:
  struct Band {
    int64_t row0, rows;  // the first row's image row; rows between blocks
    int64_t row_floats, col0;
  };
  int64_t bands_per_image() const;
  void run_task(int64_t task, const float* x, float* y, const float* residual, float* buf) const;
  void run_unit(int64_t n, int64_t g, int64_t oh, int64_t chunk, const float* x, float* y,
                const float* residual, float* buf, const Band* band) const;
  struct Rows {
    const float* x;  // kernel row 0, block 0, lane 0, column 0 of the (padded) row
    int64_t row, block, lane;
  };
  void blocked_row(int64_t n, int64_t blk, int64_t ih, const float* x, float* dst) const;
  NchwcDepthwiseRow depthwise_args(int64_t g, int64_t row_floats) const;
  int64_t input_floats() const;
  Rows input_rows(int64_t n, int64_t oh, int64_t blocks, int64_t block0, const float* x,
                  float* buf) const;

  ConvShape shape_, s_;  // s_: a 1x1 unpadded stride-1 convolution sees its image as one row
  std::shared_ptr<const NchwcWeights> w_;
  AlignedBuffer bias_;  // K rounded up to blocks
  Activation act_;
  bool x_blocked_, y_blocked_, depthwise_, copy_input_;
  int level_;
  int64_t cb_, cblocks_, kblocks_, ob_, groups_, p_, wp_;  // groups_: output block groups
  int64_t tiles_, chunks_, chunk_tiles_;                   // a row's tasks, and the tiles of each
  // Task order: positions outermost (each thread takes a band of the image across every group,
  // the band the layers before and after it take too) unless the filters are too big to stream
  // once per row, when groups are outermost.
  bool spatial_major_;
  int64_t dw_rows_;  // output rows per depthwise task
  int64_t y_image_;  // floats between a blocked y's images
  // An NCHW input of a group-1 convolution is read planar (a lane is a row or plane apart), in
  // place when unpadded, else from rows copied with memcpy: no interleaving into blocks.
  bool planar_;
  std::vector<int64_t> taps_;  // planar with one input block: offset of each (c, r, s) tap
};

/// NCHW [n, c, hw] -> blocked [n, c/cb, hw, cb] (padded lanes zero), and back.
void nchwc_from_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb);
void nchwc_to_nchw(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb);

/// A 2-D pooling window: kernel, strides, dilations and pads (top, left, bottom, right).
struct PoolWindow {
  int64_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
};

/// 2-D max or average pooling of blocked data (output blocked). Padding never contributes; an
/// average divides by the window's in-image size, or by the whole window with
/// count_include_pad; a max over no input element is -inf.
struct PoolNchwc {
  bool max = true, count_include_pad = false;
  int64_t n, c, h, w, oh, ow;
  PoolWindow win;
};
void nchwc_pool(const PoolNchwc& p, const float* x, float* y, int64_t cb);
/// GlobalAveragePool of blocked x into NCHW [n, c, 1, 1].
void nchwc_global_avg_pool(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int64_t cb);

/// A blocked convolution (group 1, blocked output, no residual; built by_rows) whose output
/// only a blocked depthwise convolution reads (MobileNet's expand and depthwise pair): a task
/// computes the conv rows one band of depthwise rows reads into padded scratch rows (about
/// 256 KiB) and runs the depthwise on them, so the expanded tensor never goes to memory.
class ConvDwNchwc {
 public:
  /// `conv` built by_rows; `apart`, optional, the same conv as usual (a 1x1 one flattened): a
  /// call on one thread whose expanded tensor is small runs it and then `dw` over scratch, as
  /// two steps would (measured faster there: a small tensor stays in cache, and a 14x14 or 7x7
  /// map's rows make short tiles), while threads and large tensors take the fused bands.
  ConvDwNchwc(ConvNchwc conv, ConvNchwc dw, std::optional<ConvNchwc> apart = std::nullopt);
  /// y = dw(conv(x)); `residual` must be null.
  void run(const float* x, float* y, const float* residual, void* scratch) const;
  size_t scratch_bytes() const;
  const ConvShape& shape() const { return conv_.shape(); }
  std::string algorithm() const;

 private:
  ConvNchwc conv_, dw_;
  std::optional<ConvNchwc> apart_;
  int64_t cb_, wp_, band_, band_rows_;  // padded row, depthwise rows per band, conv rows read
  size_t band_floats_ = 0;              // a band's conv rows in scratch
  size_t mid_floats_ = 0;               // the expanded tensor when it may run apart
};

/// A blocked convolution (group 1, blocked output, no residual) whose output only feeds a
/// blocked pool: a task computes the conv rows one band of pooled rows reads into scratch (about
/// 256 KiB) and pools them there, so the conv output never goes to memory (a stem's 3 MB
/// output and its MaxPool). Rows shared by two bands are computed by both.
class ConvPoolNchwc {
 public:
  ConvPoolNchwc(ConvNchwc conv, const PoolNchwc& pool);
  /// y = pool(conv(x)); `residual` must be null (the signature is ConvNchwc's).
  void run(const float* x, float* y, const float* residual, void* scratch) const;
  size_t scratch_bytes() const;
  const ConvShape& shape() const { return conv_.shape(); }
  std::string algorithm() const;

 private:
  ConvNchwc conv_;
  PoolNchwc pool_;
  int64_t cb_, band_, band_rows_;  // pooled rows per band, conv rows they read at most
  size_t band_floats_ = 0;         // a band's conv rows in scratch
};

}  // namespace kiln::kernels::fast
