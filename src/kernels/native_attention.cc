// Fused attention: softmax(scale * Q·Kᵀ (+ mask)) · V in one pass per query row, never holding
// the whole score matrix. Q, Kᵀ, V and the output are strided 4-D views ([B, H, rows, cols]),
// so the Split/Reshape/Transpose nodes that only re-index them need no kernel of their own.
//
// When Q, K, V and the output have unit stride along their rows, blocks of query rows run on the
// fast GEMM (src/kernels/fast/): S = Q·Kᵀ for the block, then per row the scale, mask,
// max-subtracted exp and normalization, then out = P·V. Otherwise, per (batch, head, query row):
// scores over the keys into a row buffer (Sk floats), the same softmax, then the weighted sum of
// V rows. Rows are independent and run
// in parallel with oneTBB when the work pays for it. The inner loops are plain C++ written so
// GCC vectorizes them (independent lanes, no reductions across lanes), compiled for AVX-512,
// AVX2 and baseline x86-64 with function multi-versioning.
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/fast/buffer.h"
#include "kernels/fast/gemm.h"
#include "kernels/multiversion.h"
#include "kernels/native_ops.h"

namespace kiln::kernels {

namespace {

constexpr int kLanes = 16;

// exp(x) for x <= 0 (scores minus their max), to ~2 ulp: 2^n * p(r), r in [-ln2/2, ln2/2].
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  float n = std::nearbyint(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;
  r -= n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

struct RowArgs {
  const float* q;  // query row, stride q_d
  int64_t q_d;
  const float* k;  // key 0, element d of key j at k[j * k_j + d * k_d]
  int64_t k_j, k_d;
  const float* v;  // value row 0, element c of row j at v[j * v_j + c * v_c]
  int64_t v_j, v_c;
  const float* add;     // additive mask row (stride add_j) or null
  const uint8_t* keep;  // Where condition row (stride keep_j) or null
  int64_t add_j, keep_j;
  bool keep_when_true;
  float fill;
  float scale;
  int64_t sk, d, dv;
  float* out;  // output row, stride out_c
  int64_t out_c;
  float* scores;  // sk floats
};

// Scale, mask and softmax of one row of raw scores q·k (in place): s[j] becomes the
// probability of key j, already divided by the row's total.
KILN_MULTIVERSION
void softmax_row(float* s, const RowArgs& a) {
  for (int64_t j = 0; j < a.sk; ++j) s[j] *= a.scale;
  if (a.add)
    for (int64_t j = 0; j < a.sk; ++j) s[j] += a.add[j * a.add_j];
  if (a.keep)
    for (int64_t j = 0; j < a.sk; ++j)
      if ((a.keep[j * a.keep_j] != 0) != a.keep_when_true) s[j] = a.fill;
  // Max and total in kLanes partial lanes, and the exps in a loop of their own: without a
  // reduction carried from element to element, each loop vectorizes.
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float lanes[kLanes];
  std::fill(lanes, lanes + kLanes, kNegInf);
  int64_t j = 0;
  for (; j + kLanes <= a.sk; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] = lanes[l] < s[j + l] ? s[j + l] : lanes[l];
  float mx = kNegInf;
  for (int l = 0; l < kLanes; ++l) mx = std::max(mx, lanes[l]);
  for (; j < a.sk; ++j) mx = std::max(mx, s[j]);
  if (std::isinf(mx) && mx < 0)
    mx = 0;  // every score -inf: exp gives 0s, as the reference's NaN-free path
  for (j = 0; j < a.sk; ++j) {
    const float x = s[j];
    const float e = exp_nonpositive(x - mx);
    s[j] = x != x ? x : x == kNegInf ? 0.0f : e;  // NaN stays NaN, -inf (masked) gives 0
  }
  std::fill(lanes, lanes + kLanes, 0.0f);
  for (j = 0; j + kLanes <= a.sk; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += s[j + l];
  float total = 0;
  for (; j < a.sk; ++j) total += s[j];
  for (int l = 0; l < kLanes; ++l) total += lanes[l];
  const float inv = 1.0f / total;
  for (j = 0; j < a.sk; ++j) s[j] *= inv;
}

// One query row on its own (views the GEMM path cannot read): dot products, softmax, then the
// probability-weighted sum of V rows.
KILN_MULTIVERSION
void attention_row(const RowArgs& a) {
  float* s = a.scores;
  // Scores: contiguous key rows get lane-parallel partial sums.
  for (int64_t j = 0; j < a.sk; ++j) {
    const float* kj = a.k + j * a.k_j;
    float acc[kLanes] = {};
    int64_t d = 0;
    if (a.k_d == 1 && a.q_d == 1) {
      for (; d + kLanes <= a.d; d += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += a.q[d + l] * kj[d + l];
    }
    float sum = 0;
    for (; d < a.d; ++d) sum += a.q[d * a.q_d] * kj[d * a.k_d];
    for (int l = 0; l < kLanes; ++l) sum += acc[l];
    s[j] = sum;
  }
  softmax_row(s, a);
  for (int64_t c = 0; c < a.dv; ++c) a.out[c * a.out_c] = 0;
  if (a.v_c == 1 && a.out_c == 1) {
    for (int64_t j = 0; j < a.sk; ++j) {
      const float p = s[j];
      const float* vj = a.v + j * a.v_j;
      for (int64_t c = 0; c < a.dv; ++c) a.out[c] += p * vj[c];
    }
  } else {
    for (int64_t j = 0; j < a.sk; ++j) {
      const float p = s[j];
      for (int64_t c = 0; c < a.dv; ++c) a.out[c * a.out_c] += p * a.v[j * a.v_j + c * a.v_c];
    }
  }
}

class NativeAttention final : public NativeOp {
 public:
  explicit NativeAttention(const AttentionSpec& s) : s_(s) {
    // Blocks of query rows on the fast GEMM when every view has unit stride along its rows.
    gemm_ = fast::available() && s_.q.strides[3] == 1 && s_.v.strides[3] == 1 &&
            s_.out_strides[3] == 1 && (s_.kt.strides[2] == 1 || s_.kt.strides[3] == 1);
  }

  void run(void* const* buffers, void* /*scratch*/) const override {
    const float* q = static_cast<const float*>(buffers[0]) + s_.q.offset;
    const float* kt = static_cast<const float*>(buffers[1]) + s_.kt.offset;
    const float* v = static_cast<const float*>(buffers[2]) + s_.v.offset;
    const void* mask = buffers[3];
    float* out = static_cast<float*>(buffers[4]);
    const int64_t b = s_.q.dims[0], h = s_.q.dims[1], sq = s_.q.dims[2];
    const int64_t rows = b * h * sq;
    const int64_t sk = s_.kt.dims[3];
    if (gemm_) return run_gemm(q, kt, v, mask, out);
    auto body = [&](int64_t r0, int64_t r1) {
      thread_local std::vector<float> scores;
      if (scores.size() < size_t(sk)) scores.resize(size_t(sk));
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t bi = r / (h * sq), hi = (r / sq) % h, i = r % sq;
        RowArgs a{};
        set_row(a, bi, hi, i, mask);
        a.q = q + bi * s_.q.strides[0] + hi * s_.q.strides[1] + i * s_.q.strides[2];
        a.q_d = s_.q.strides[3];
        a.k = kt + bi * s_.kt.strides[0] + hi * s_.kt.strides[1];
        a.k_d = s_.kt.strides[2];
        a.k_j = s_.kt.strides[3];
        a.v = v + bi * s_.v.strides[0] + hi * s_.v.strides[1];
        a.v_j = s_.v.strides[2];
        a.v_c = s_.v.strides[3];
        a.out = out + bi * s_.out_strides[0] + hi * s_.out_strides[1] + i * s_.out_strides[2];
        a.out_c = s_.out_strides[3];
        a.scores = scores.data();
        attention_row(a);
      }
    };
    const int64_t work = sk * (s_.q.dims[3] + s_.v.dims[3]);  // FMAs per row
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, work));
    if (rows <= grain) {
      body(0, rows);
    } else {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, grain),
                        [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
    }
  }

  // Mask row, scale and sizes of query row i of (batch bi, head hi).
  void set_row(RowArgs& a, int64_t bi, int64_t hi, int64_t i, const void* mask) const {
    if (s_.mask_kind != AttentionSpec::kNone) {
      const int64_t off =
          bi * s_.mask_strides[0] + hi * s_.mask_strides[1] + i * s_.mask_strides[2];
      if (s_.mask_kind == AttentionSpec::kAdd) {
        a.add = static_cast<const float*>(mask) + off;
        a.add_j = s_.mask_strides[3];
      } else {
        a.keep = static_cast<const uint8_t*>(mask) + off;
        a.keep_j = s_.mask_strides[3];
      }
    }
    a.keep_when_true = s_.keep_when_true;
    a.fill = s_.fill;
    a.scale = s_.scale;
    a.sk = s_.kt.dims[3];
    a.d = s_.q.dims[3];
    a.dv = s_.v.dims[3];
  }

  // Per task (batch, head, block of query rows): S = Q·Kᵀ into a per-thread buffer with the fast
  // GEMM, softmax per row, then out = P·V, the GEMM writing straight into the output's rows.
  void run_gemm(const float* q, const float* kt, const float* v, const void* mask,
                float* out) const {
    const int64_t b = s_.q.dims[0], h = s_.q.dims[1], sq = s_.q.dims[2];
    const int64_t sk = s_.kt.dims[3], d = s_.q.dims[3], dv = s_.v.dims[3];
    // Rows per block: the score block stays near L2 size (and below 64 rows).
    const int64_t rows = std::clamp<int64_t>((int64_t(1) << 16) / sk, 1, 64);
    const int64_t blocks = (sq + rows - 1) / rows;
    const int64_t tasks = b * h * blocks;
    const bool k_rows = s_.kt.strides[2] == 1;  // K stored as rows (Kᵀ read transposed)
    const size_t gemm_floats = std::max(fast::gemm_dynamic_scratch_bytes(rows, sk, d),
                                        fast::gemm_dynamic_scratch_bytes(rows, dv, sk)) /
                                   sizeof(float) +
                               16;
    auto body = [&](int64_t t0, int64_t t1) {
      thread_local fast::AlignedBuffer buf;
      float* scores = buf.reserve(size_t(rows * sk) + gemm_floats);
      float* gemm_scratch = scores + ((rows * sk + 15) / 16) * 16;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t bi = t / (h * blocks), hi = (t / blocks) % h, i0 = (t % blocks) * rows;
        const int64_t m = std::min(rows, sq - i0);
        const float* qb = q + bi * s_.q.strides[0] + hi * s_.q.strides[1] + i0 * s_.q.strides[2];
        const float* kb = kt + bi * s_.kt.strides[0] + hi * s_.kt.strides[1];
        const float* vb = v + bi * s_.v.strides[0] + hi * s_.v.strides[1];
        float* ob = out + bi * s_.out_strides[0] + hi * s_.out_strides[1] + i0 * s_.out_strides[2];
        fast::GemmEpilogue none;
        fast::gemm_dynamic(m, sk, d, qb, s_.q.strides[2], false, kb,
                           k_rows ? s_.kt.strides[3] : s_.kt.strides[2], k_rows, scores, sk, none,
                           gemm_scratch, true);
        for (int64_t i = 0; i < m; ++i) {
          RowArgs a{};
          set_row(a, bi, hi, i0 + i, mask);
          softmax_row(scores + i * sk, a);
        }
        fast::gemm_dynamic(m, dv, sk, scores, sk, false, vb, s_.v.strides[2], false, ob,
                           s_.out_strides[2], none, gemm_scratch, true);
      }
    };
    const double work = double(sk) * double(d + dv) * double(rows);  // FMAs per task
    if (tasks <= 1 || work * double(tasks) < 2e5) {
      body(0, tasks);
    } else {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, tasks, 1),
                        [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
    }
  }

  std::string describe() const override {
    std::string m = s_.mask_kind == AttentionSpec::kAdd     ? "+mask"
                    : s_.mask_kind == AttentionSpec::kWhere ? "+where"
                                                            : "";
    return "attention " + std::to_string(s_.q.dims[0]) + "x" + std::to_string(s_.q.dims[1]) +
           " heads, " + std::to_string(s_.q.dims[2]) + "x" + std::to_string(s_.kt.dims[3]) +
           " scores, head dim " + std::to_string(s_.q.dims[3]) + m;
  }

 private:
  AttentionSpec s_;
  bool gemm_ = false;
};

}  // namespace

std::shared_ptr<const NativeOp> make_native_attention(const AttentionSpec& spec) {
  auto four = [](const StridedView& v) { return v.dims.size() == 4 && v.strides.size() == 4; };
  if (!four(spec.q) || !four(spec.kt) || !four(spec.v) || spec.out_strides.size() != 4)
    return nullptr;
  if (spec.q.dims[3] != spec.kt.dims[2] || spec.kt.dims[3] != spec.v.dims[2] ||
      spec.q.dims[0] != spec.kt.dims[0] || spec.q.dims[1] != spec.kt.dims[1] ||
      spec.q.dims[0] != spec.v.dims[0] || spec.q.dims[1] != spec.v.dims[1])
    return nullptr;
  if (spec.kt.dims[3] == 0 || spec.q.dims[3] == 0) return nullptr;
  if (spec.mask_kind != AttentionSpec::kNone && spec.mask_strides.size() != 4) return nullptr;
  return std::make_shared<NativeAttention>(spec);
}

}  // namespace kiln::kernels
