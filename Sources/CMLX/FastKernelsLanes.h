// Lane types of the fast kernels, shared by FastKernels.cpp (elementwise) and
// FusedKernels.cpp (row-wise): `scalar` (F = float) and, on x86-64, `avx2` (F = 8 floats,
// compiled for AVX2+FMA whatever the target's flags). Each namespace includes the math.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CMLX_HAVE_AVX2_PATH 1
#endif

namespace cmlx_fast {

// ---- scalar lane type (fallback, and the reference shape of the vector code) ----
namespace scalar {
using F = float;
static inline F splat(float v) { return v; }
static inline F fmadd(F a, F b, F c) { return std::fma(a, b, c); }
// minps/maxps semantics: the second operand wins when the first is NaN.
static inline F fmin_(F a, F b) { return a < b ? a : b; }
static inline F fmax_(F a, F b) { return a > b ? a : b; }
static inline F fabs_(F a) { return std::fabs(a); }
static inline F round_(F a) { return std::nearbyint(a); }
static inline bool lt(F a, F b) { return a < b; }
static inline bool ge(F a, F b) { return a >= b; }
static inline bool isnan_(F a) { return a != a; }
static inline bool all_(bool m) { return m; }
static inline F select(bool m, F a, F b) { return m ? a : b; }
static inline F copysign_(F mag, F sign) { return std::copysign(mag, sign); }
static inline F pow2(int k) {
  uint32_t bits = static_cast<uint32_t>(k + 127) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
static inline F scale2(F p, F n) {
  int k = static_cast<int>(n);
  int k1 = k >> 1;
  return p * pow2(k1) * pow2(k - k1);
}
#include "FastKernelsMath.h"
}  // namespace scalar

#ifdef CMLX_HAVE_AVX2_PATH
// Compiled for AVX2+FMA whatever the target's flags; used only when the CPU reports both.
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
namespace avx2 {
struct F {
  __m256 v;
};
static inline F splat(float v) { return {_mm256_set1_ps(v)}; }
static inline F operator+(F a, F b) { return {_mm256_add_ps(a.v, b.v)}; }
static inline F operator-(F a, F b) { return {_mm256_sub_ps(a.v, b.v)}; }
static inline F operator*(F a, F b) { return {_mm256_mul_ps(a.v, b.v)}; }
static inline F operator/(F a, F b) { return {_mm256_div_ps(a.v, b.v)}; }
static inline F operator-(F a) { return {_mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f))}; }
static inline F fmadd(F a, F b, F c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
static inline F fmin_(F a, F b) { return {_mm256_min_ps(a.v, b.v)}; }
static inline F fmax_(F a, F b) { return {_mm256_max_ps(a.v, b.v)}; }
static inline F fabs_(F a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
static inline F round_(F a) {
  return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
static inline F lt(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
static inline F ge(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
static inline F isnan_(F a) { return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)}; }
static inline bool all_(F m) { return _mm256_movemask_ps(m.v) == 0xFF; }
static inline F select(F m, F a, F b) { return {_mm256_blendv_ps(b.v, a.v, m.v)}; }
static inline F copysign_(F mag, F sign) {
  __m256 s = _mm256_set1_ps(-0.0f);
  return {_mm256_or_ps(_mm256_andnot_ps(s, mag.v), _mm256_and_ps(s, sign.v))};
}
static inline F scale2(F p, F n) {
  __m256i k = _mm256_cvtps_epi32(n.v);
  __m256i k1 = _mm256_srai_epi32(k, 1);
  __m256i k2 = _mm256_sub_epi32(k, k1);
  __m256i bias = _mm256_set1_epi32(127);
  __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  return {_mm256_mul_ps(_mm256_mul_ps(p.v, f1), f2)};
}
#include "FastKernelsMath.h"
}  // namespace avx2
#pragma clang attribute pop
#endif

}  // namespace cmlx_fast
