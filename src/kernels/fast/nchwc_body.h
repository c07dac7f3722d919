// Internal: the register-tile bodies of the blocked (NCHWc) convolution, written once over a
// vector "traits" type T (T::V a vector of T::kWidth floats = the channel block; zero, load,
// store, bcast, fma, add, max, min, mul) and instantiated by each ISA file inside
// `#pragma GCC target` so the bodies and the traits' intrinsics share one target.
//
// Conv tile: OB output-channel blocks x P output positions of one output row, accumulated over
// every input block, kernel row, kernel column and input lane in OB*P vector registers (each
// input element broadcast once per OB fused multiply-adds, each weight vector loaded once per P).
// Depthwise row: one channel block, P positions at a time, the R*S weight vectors reloaded per
// tile. Inputs are read without bounds checks: the driver hands padded rows (fast/nchwc.cc).
// Epilogue in registers: + bias, + residual (blocked like y), then relu / clip / leaky relu;
// other activations are applied by the driver on the stored tile.
#pragma once

#include <cstdint>
#include <utility>

#include "kernels/fast/isa.h"

namespace kiln::kernels::fast::nchwc_body {

template <class T>
[[gnu::always_inline]] inline typename T::V activate_simple(typename T::V v, const Activation* a) {
  if (a == nullptr) return v;
  using K = Activation::Kind;
  switch (a->kind) {
    case K::kRelu:
      return T::max(v, T::zero());
    case K::kClip:
      return T::min(T::max(v, T::bcast(&a->alpha)), T::bcast(&a->beta));
    case K::kLeakyRelu:
      return T::add(T::max(v, T::zero()), T::mul(T::min(v, T::zero()), T::bcast(&a->alpha)));
    default:
      return v;
  }
}

template <class T, int OB, int P>
[[gnu::always_inline]] inline void conv_tile(const NchwcConvTile& a) {
  using V = typename T::V;
  constexpr int64_t CB = T::kWidth;
  V acc[P][OB];
#pragma GCC unroll 32
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int ob = 0; ob < OB; ++ob) acc[p][ob] = T::zero();
  // One input lane at one kernel tap: OB weight vectors, P broadcasts, OB * P multiply-adds.
  auto step = [&](const float* xi, const float* ws) [[gnu::always_inline]] {
    V wv[OB];
#pragma GCC unroll 4
    for (int ob = 0; ob < OB; ++ob) wv[ob] = T::load(ws + ob * a.w_block);
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p) {
      const V b = T::bcast(xi + p * a.x_pos);
#pragma GCC unroll 4
      for (int ob = 0; ob < OB; ++ob) acc[p][ob] = T::fma(b, wv[ob], acc[p][ob]);
    }
  };
  if (a.taps != nullptr) {
    for (int64_t k = 0; k < a.ntaps; ++k) step(a.x + a.taps[k], a.w + k * CB);
  } else {
    const int64_t rs = a.r * a.s;
    for (int64_t icb = 0; icb < a.in_blocks; ++icb) {
      const int64_t lanes = icb + 1 == a.in_blocks ? a.last_lanes : CB;
      for (int64_t r = 0; r < a.r; ++r) {
        for (int64_t s = 0; s < a.s; ++s) {
          const float* xs = a.x + icb * a.x_block + r * a.x_row + s * a.x_col;
          const float* ws = a.w + (icb * rs + r * a.s + s) * CB * CB;
          for (int64_t ic = 0; ic < lanes; ++ic) step(xs + ic * a.x_lane, ws + ic * CB);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int ob = 0; ob < OB; ++ob) {
    const V bias = T::load(a.bias + ob * CB);
    float* y = a.y + ob * a.y_block;
    const float* res = a.residual != nullptr ? a.residual + ob * a.residual_block : nullptr;
#pragma GCC unroll 32
    for (int p = 0; p < P; ++p) {
      V v = T::add(acc[p][ob], bias);
      if (res != nullptr) v = T::add(v, T::load(res + p * CB));
      T::store(y + p * CB, activate_simple<T>(v, a.act));
    }
  }
}

template <class T, int P>
[[gnu::always_inline]] inline void depthwise_tile(const NchwcDepthwiseRow& a, int64_t p0) {
  using V = typename T::V;
  constexpr int64_t CB = T::kWidth;
  V acc[P];
  const V bias = T::load(a.bias);
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) acc[p] = bias;
  const float* x0 = a.x + p0 * a.x_pos;
  for (int64_t r = 0; r < a.r; ++r) {
    for (int64_t s = 0; s < a.s; ++s) {
      const V w = T::load(a.w + (r * a.s + s) * CB);
      const float* xs = x0 + r * a.x_row + s * a.x_col;
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) acc[p] = T::fma(T::load(xs + p * a.x_pos), w, acc[p]);
    }
  }
  float* y = a.y + p0 * CB;
  const float* res = a.residual != nullptr ? a.residual + p0 * CB : nullptr;
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
    V v = acc[p];
    if (res != nullptr) v = T::add(v, T::load(res + p * CB));
    T::store(y + p * CB, activate_simple<T>(v, a.act));
  }
}

template <class T, int P>
[[gnu::always_inline]] inline void depthwise_row(const NchwcDepthwiseRow& a) {
  int64_t p0 = 0;
  for (; p0 + P <= a.ow; p0 += P) depthwise_tile<T, P>(a, p0);
  // The rest in tiles of 8, 4, 2 and 1 (each reloads the R*S weights once, not per position).
  if constexpr (P > 8)
    if (p0 + 8 <= a.ow) {
      depthwise_tile<T, 8>(a, p0);
      p0 += 8;
    }
  if constexpr (P > 4)
    if (p0 + 4 <= a.ow) {
      depthwise_tile<T, 4>(a, p0);
      p0 += 4;
    }
  if constexpr (P > 2)
    if (p0 + 2 <= a.ow) {
      depthwise_tile<T, 2>(a, p0);
      p0 += 2;
    }
  for (; p0 < a.ow; ++p0) depthwise_tile<T, 1>(a, p0);
}

}  // namespace kiln::kernels::fast::nchwc_body

namespace kiln::kernels::fast::nchwc_body {

template <class T, int OB, int P>
void conv_tile_entry(const NchwcConvTile& a) {
  conv_tile<T, OB, P>(a);
}

template <class T, int OB, int... I>
inline void conv_dispatch_p(const NchwcConvTile& a, std::integer_sequence<int, I...>) {
  using Fn = void (*)(const NchwcConvTile&);
  static constexpr Fn kTable[] = {&conv_tile_entry<T, OB, I + 1>...};
  kTable[a.p - 1](a);
}

/// The tile for a.ob (1 .. MaxOB; MaxOB is 1, 2 or 4) and a.p (1 .. Acc / a.ob).
template <class T, int MaxOB, int Acc>
inline void conv_dispatch(const NchwcConvTile& a) {
  if constexpr (MaxOB >= 4) {
    if (a.ob == 4) return conv_dispatch_p<T, 4>(a, std::make_integer_sequence<int, Acc / 4>{});
    if (a.ob == 3) return conv_dispatch_p<T, 3>(a, std::make_integer_sequence<int, Acc / 3>{});
  }
  if constexpr (MaxOB >= 2) {
    if (a.ob == 2) return conv_dispatch_p<T, 2>(a, std::make_integer_sequence<int, Acc / 2>{});
  }
  conv_dispatch_p<T, 1>(a, std::make_integer_sequence<int, Acc>{});
}

}  // namespace kiln::kernels::fast::nchwc_body
