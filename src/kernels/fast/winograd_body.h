// Internal: the Winograd F(2x2, 3x3) transforms of fast/winograd.h, written once over a vector
// "traits" type T (one vector = one channel block: load, store, add, sub) and instantiated by
// each ISA file inside its `#pragma GCC target`; `act(v, a)` applies an activation to a vector.
//
// With d a 4x4 input patch, g a 3x3 filter and Y the 2x2 outputs (Lavin and Gray, 2016):
//   V = B^T d B,  U = G g G^T,  M = U . V (per channel, summed over input channels),
//   Y = A^T M A,  B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  A^T = [1 1 1 0; 0 1 -1 -1].
#pragma once

#include "kernels/fast/isa.h"

namespace kiln::kernels::fast::winograd_body {

template <class T>
[[gnu::always_inline]] inline void input(const WinogradInTile& t) {
  using V = typename T::V;
  V d[16], u[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) d[i] = T::load(t.in[i]);
  // Rows: u = B^T d.
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    u[0 * 4 + j] = T::sub(d[0 * 4 + j], d[2 * 4 + j]);
    u[1 * 4 + j] = T::add(d[1 * 4 + j], d[2 * 4 + j]);
    u[2 * 4 + j] = T::sub(d[2 * 4 + j], d[1 * 4 + j]);
    u[3 * 4 + j] = T::sub(d[1 * 4 + j], d[3 * 4 + j]);
  }
  // Columns: V = u B.
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    float* o = t.out + (i * 4) * t.out_stride;
    T::store(o, T::sub(u[i * 4 + 0], u[i * 4 + 2]));
    T::store(o + t.out_stride, T::add(u[i * 4 + 1], u[i * 4 + 2]));
    T::store(o + 2 * t.out_stride, T::sub(u[i * 4 + 2], u[i * 4 + 1]));
    T::store(o + 3 * t.out_stride, T::sub(u[i * 4 + 1], u[i * 4 + 3]));
  }
}

template <class T, class Act>
[[gnu::always_inline]] inline void output(const WinogradOutTile& t, const Act& act) {
  using V = typename T::V;
  V m[16], r[8];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) m[i] = T::load(t.m + i * t.m_stride);
  // Rows: r = A^T m (2 x 4).
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[0 * 4 + j] = T::add(T::add(m[0 * 4 + j], m[1 * 4 + j]), m[2 * 4 + j]);
    r[1 * 4 + j] = T::sub(T::sub(m[1 * 4 + j], m[2 * 4 + j]), m[3 * 4 + j]);
  }
  const V bias = T::load(t.bias);
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    // Columns: Y = r A (2 x 2).
    V y[2] = {T::add(T::add(r[i * 4 + 0], r[i * 4 + 1]), r[i * 4 + 2]),
              T::sub(T::sub(r[i * 4 + 1], r[i * 4 + 2]), r[i * 4 + 3])};
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      float* dst = t.y[i * 2 + j];
      if (dst == nullptr) continue;
      V v = T::add(y[j], bias);
      if (t.residual[i * 2 + j] != nullptr) v = T::add(v, T::load(t.residual[i * 2 + j]));
      if (t.act != nullptr) v = act(v, *t.act);
      T::store(dst, v);
    }
  }
}

}  // namespace kiln::kernels::fast::winograd_body
