// Fused attention: softmax(scale * Q·Kᵀ (+ mask)) · V in one pass per query row, never holding
// the whole score matrix. Q, Kᵀ, V and the output are strided 4-D views ([B, H, rows, cols]),
// so the Split/Reshape/Transpose nodes that only re-index them need no kernel of their own.
//
// Per (batch, head, query row): scores over the keys into a row buffer (Sk floats), the mask,
// a max-subtracted exp, the sum, then the weighted sum of V rows. Rows are independent and run
// in parallel with oneTBB when the work pays for it. The inner loops are plain C++ written so
// GCC vectorizes them (independent lanes, no reductions across lanes), compiled for AVX-512,
// AVX2 and baseline x86-64 with function multi-versioning.
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/fast/gemm.h"
#include "kernels/native_ops.h"

namespace kiln::kernels {

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define KILN_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_MULTIVERSION
#endif

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
    s[j] = sum * a.scale;
  }
  if (a.add)
    for (int64_t j = 0; j < a.sk; ++j) s[j] += a.add[j * a.add_j];
  if (a.keep)
    for (int64_t j = 0; j < a.sk; ++j)
      if ((a.keep[j * a.keep_j] != 0) != a.keep_when_true) s[j] = a.fill;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < a.sk; ++j) mx = std::max(mx, s[j]);
  if (std::isinf(mx) && mx < 0)
    mx = 0;  // every score -inf: exp gives 0s, as the reference's NaN-free path
  float total = 0;
  for (int64_t j = 0; j < a.sk; ++j) {
    float e = std::isnan(s[j]) ? s[j] : exp_nonpositive(s[j] - mx);
    if (s[j] == -std::numeric_limits<float>::infinity()) e = 0;
    s[j] = e;
    total += e;
  }
  const float inv = 1.0f / total;
  for (int64_t c = 0; c < a.dv; ++c) a.out[c * a.out_c] = 0;
  if (a.v_c == 1 && a.out_c == 1) {
    for (int64_t j = 0; j < a.sk; ++j) {
      const float p = s[j] * inv;
      const float* vj = a.v + j * a.v_j;
      for (int64_t c = 0; c < a.dv; ++c) a.out[c] += p * vj[c];
    }
  } else {
    for (int64_t j = 0; j < a.sk; ++j) {
      const float p = s[j] * inv;
      for (int64_t c = 0; c < a.dv; ++c) a.out[c * a.out_c] += p * a.v[j * a.v_j + c * a.v_c];
    }
  }
}

// Scale and mask one row of scores, then softmax it in place (exp of the max-subtracted scores,
// divided by their sum). Loops without branches or cross-lane dependencies, so they vectorize.
KILN_MULTIVERSION
void softmax_row(float* s, int64_t n, float scale, const float* add, int64_t add_j,
                 const uint8_t* keep, int64_t keep_j, bool keep_when_true, float fill) {
  for (int64_t j = 0; j < n; ++j) s[j] *= scale;
  if (add)
    for (int64_t j = 0; j < n; ++j) s[j] += add[j * add_j];
  if (keep)
    for (int64_t j = 0; j < n; ++j)
      s[j] = ((keep[j * keep_j] != 0) == keep_when_true) ? s[j] : fill;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
  if (mx == -std::numeric_limits<float>::infinity()) mx = 0;
  float total = 0;
  for (int64_t j = 0; j < n; ++j) {
    float y = s[j] - mx;
    float e = exp_nonpositive(y);
    e = y < -87.0f ? 0.0f : e;
    s[j] = e;
    total += e;
  }
  const float inv = 1.0f / total;
  for (int64_t j = 0; j < n; ++j) s[j] *= inv;
}

class NativeAttention final : public NativeOp {
 public:
  explicit NativeAttention(const AttentionSpec& s)
      : s_(s),
        gemm_path_(fast::available() && s.q.strides[3] == 1 && s.kt.strides[2] == 1 &&
                   s.v.strides[3] == 1 && s.out_strides[3] == 1) {}

  void run(void* const* buffers, void* /*scratch*/) const override {
    if (gemm_path_) {
      run_blocked(buffers);
      return;
    }
    run_rows(buffers);
  }

  // Blocks of query rows per (batch, head): scores = Q·Kᵀ and out = P·V on the fast GEMM, the
  // softmax in between on a [rows x Sk] tile (never the whole score matrix for long sequences).
  void run_blocked(void* const* buffers) const {
    const float* q = static_cast<const float*>(buffers[0]) + s_.q.offset;
    const float* kt = static_cast<const float*>(buffers[1]) + s_.kt.offset;
    const float* v = static_cast<const float*>(buffers[2]) + s_.v.offset;
    const void* mask = buffers[3];
    float* out = static_cast<float*>(buffers[4]);
    const int64_t b = s_.q.dims[0], h = s_.q.dims[1], sq = s_.q.dims[2], d = s_.q.dims[3];
    const int64_t sk = s_.kt.dims[3], dv = s_.v.dims[3];
    const int64_t blocks = (sq + kRowBlock - 1) / kRowBlock;
    auto body = [&](int64_t t0, int64_t t1) {
      thread_local std::vector<float> scores;
      thread_local std::vector<char> scratch;
      const size_t need = size_t(kRowBlock * sk);
      if (scores.size() < need) scores.resize(need);
      const size_t sbytes = std::max(fast::gemm_dynamic_scratch_bytes(kRowBlock, sk, d),
                                     fast::gemm_dynamic_scratch_bytes(kRowBlock, dv, sk)) +
                            64;
      if (scratch.size() < sbytes) scratch.resize(sbytes);
      void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) &
                                              ~uintptr_t(63));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t bi = t / (h * blocks), hi = (t / blocks) % h, i0 = (t % blocks) * kRowBlock;
        const int64_t rows = std::min(kRowBlock, sq - i0);
        const float* qb = q + bi * s_.q.strides[0] + hi * s_.q.strides[1] + i0 * s_.q.strides[2];
        const float* kb = kt + bi * s_.kt.strides[0] + hi * s_.kt.strides[1];
        const float* vb = v + bi * s_.v.strides[0] + hi * s_.v.strides[1];
        float* ob = out + bi * s_.out_strides[0] + hi * s_.out_strides[1] + i0 * s_.out_strides[2];
        fast::GemmEpilogue none;
        // Kᵀ's columns are the keys: as B stored N x K (trans_b) with the key stride as ldb.
        fast::gemm_dynamic(rows, sk, d, qb, s_.q.strides[2], false, kb, s_.kt.strides[3], true,
                           scores.data(), sk, none, aligned);
        for (int64_t r = 0; r < rows; ++r) {
          const float* add = nullptr;
          const uint8_t* keep = nullptr;
          if (s_.mask_kind != AttentionSpec::kNone) {
            const int64_t off =
                bi * s_.mask_strides[0] + hi * s_.mask_strides[1] + (i0 + r) * s_.mask_strides[2];
            if (s_.mask_kind == AttentionSpec::kAdd)
              add = static_cast<const float*>(mask) + off;
            else
              keep = static_cast<const uint8_t*>(mask) + off;
          }
          const int64_t mj = s_.mask_strides.empty() ? 0 : s_.mask_strides[3];
          softmax_row(scores.data() + r * sk, sk, s_.scale, add, mj, keep, mj, s_.keep_when_true,
                      s_.fill);
        }
        fast::gemm_dynamic(rows, dv, sk, scores.data(), sk, false, vb, s_.v.strides[2], false, ob,
                           s_.out_strides[2], none, aligned);
      }
    };
    const int64_t tasks = b * h * blocks;
    if (tasks == 1) {
      body(0, 1);
    } else {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, tasks, 1),
                        [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
    }
  }

  void run_rows(void* const* buffers) const {
    const float* q = static_cast<const float*>(buffers[0]) + s_.q.offset;
    const float* kt = static_cast<const float*>(buffers[1]) + s_.kt.offset;
    const float* v = static_cast<const float*>(buffers[2]) + s_.v.offset;
    const void* mask = buffers[3];
    float* out = static_cast<float*>(buffers[4]);
    const int64_t b = s_.q.dims[0], h = s_.q.dims[1], sq = s_.q.dims[2];
    const int64_t rows = b * h * sq;
    const int64_t sk = s_.kt.dims[3];
    auto body = [&](int64_t r0, int64_t r1) {
      thread_local std::vector<float> scores;
      if (scores.size() < size_t(sk)) scores.resize(size_t(sk));
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t bi = r / (h * sq), hi = (r / sq) % h, i = r % sq;
        RowArgs a{};
        a.q = q + bi * s_.q.strides[0] + hi * s_.q.strides[1] + i * s_.q.strides[2];
        a.q_d = s_.q.strides[3];
        a.k = kt + bi * s_.kt.strides[0] + hi * s_.kt.strides[1];
        a.k_d = s_.kt.strides[2];
        a.k_j = s_.kt.strides[3];
        a.v = v + bi * s_.v.strides[0] + hi * s_.v.strides[1];
        a.v_j = s_.v.strides[2];
        a.v_c = s_.v.strides[3];
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
        a.sk = sk;
        a.d = s_.q.dims[3];
        a.dv = s_.v.dims[3];
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

  std::string describe() const override {
    std::string m = s_.mask_kind == AttentionSpec::kAdd     ? "+mask"
                    : s_.mask_kind == AttentionSpec::kWhere ? "+where"
                                                            : "";
    return "attention " + std::to_string(s_.q.dims[0]) + "x" + std::to_string(s_.q.dims[1]) +
           " heads, " + std::to_string(s_.q.dims[2]) + "x" + std::to_string(s_.kt.dims[3]) +
           " scores, head dim " + std::to_string(s_.q.dims[3]) + m;
  }

 private:
  static constexpr int64_t kRowBlock = 64;
  AttentionSpec s_;
  bool gemm_path_;
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
