// Shared helpers for the kernels: multiversioning macro, branch-free vectorizable math.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

// Hot loops are compiled three times (AVX-512, AVX2+FMA, baseline) and picked at load time by the
// dynamic linker (ifunc). GCC on x86-64 Linux only (ifunc; clang's target_clones syntax differs by version):
// elsewhere they are compiled once for the baseline ISA (SSE2 / NEON), still auto-vectorized.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && !defined(DIFFUSE_NO_CLONES)
#define DN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define DN_X86 1
#else
#define DN_CLONES
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DN_INLINE inline __attribute__((always_inline))
#define DN_RESTRICT __restrict__
#else
#define DN_INLINE inline
#define DN_RESTRICT
#endif

namespace dn {

DN_INLINE float bits_to_float(int32_t i) { float f; std::memcpy(&f, &i, 4); return f; }
DN_INLINE int32_t float_to_bits(float f) { int32_t i; std::memcpy(&i, &f, 4); return i; }

/** expf to ~1 ulp, branch-free (vectorizes): Cody–Waite reduction, Cephes polynomial, 2^n applied in two
 *  halves so that overflow gives +inf and the subnormal range is kept. NaN in → NaN out. */
DN_INLINE float vexp(float x) {
  const float hi = 89.0f, lo = -104.0f;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const float magic = 12582912.0f;  // 1.5 · 2^23: adding it rounds to an integer kept in the low mantissa bits
  float t = x * 1.44269504088896341f + magic;
  int32_t n = float_to_bits(t) - float_to_bits(magic);
  float fn = t - magic;
  float r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  int32_t n1 = n >> 1, n2 = n - n1;
  float s1 = bits_to_float((n1 + 127) << 23), s2 = bits_to_float((n2 + 127) << 23);
  return p * s1 * s2;
}

/** A group norm's output element, (x − mu)·s + b, then SiLU if set: one definition for group_norm and for the
 *  convolutions that apply the norm as they read their input (NormPre), so both give the same bits. */
DN_INLINE float norm_act(float x, float mu, float s, float b, bool silu) {
  const float z = (x - mu) * s + b;
  return silu ? z / (1.0f + vexp(-z)) : z;
}

DN_INLINE float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }

/** erfc(z) for z ≥ 0, branch-free: Numerical Recipes' Chebyshev fit (relative error < 1.2e-7 in exact
 *  arithmetic, ~1e-6 in float), i.e. full relative accuracy in the tail, unlike 1 − erf. */
DN_INLINE float verfc_pos(float z) {
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * vexp(p - z * z);
}

/** gelu(x) = x·Φ(x) = ½·x·erfc(−x/√2), exact-erf form, relative accuracy ~1e-6 everywhere (tails included). */
DN_INLINE float vgelu(float x) {
  const float z = x * 0.70710678118654752f;
  const float e = verfc_pos(z < 0.0f ? -z : z);  // erfc(|z|)
  const float phi = z < 0.0f ? 0.5f * e : 1.0f - 0.5f * e;  // Φ(x)
  return x * phi;
}

/** d gelu / dx = Φ(x) + x·φ(x). */
DN_INLINE float vgelu_grad(float x) {
  const float z = x * 0.70710678118654752f;
  const float e = verfc_pos(z < 0.0f ? -z : z);
  const float phi = z < 0.0f ? 0.5f * e : 1.0f - 0.5f * e;
  return phi + x * 0.39894228040143268f * vexp(-0.5f * x * x);
}

/** tanh, branch-free: odd polynomial for |x| < 0.625 (Cephes tanhf), 1 − 2/(e^{2|x|} + 1) above. */
DN_INLINE float vtanh(float x) {
  const float a = x < 0.0f ? -x : x;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float big = 1.0f - 2.0f / (vexp(2.0f * a) + 1.0f);
  const float r = a < 0.625f ? small : (x < 0.0f ? -big : big);
  return x != x ? x : r;
}

}  // namespace dn
