// The GEMM micro-kernels (sgemm_kernels.inc), compiled once per instruction set in target regions, and the
// table that maps an Isa to its kernel and cache blocks. Only this file and conv_direct.cc hold ISA-specific
// code; cpu.cc says which ISA runs.
#include "common.h"
#include "sgemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SG_X86 1
#include <immintrin.h>
#elif defined(__aarch64__)
#define SG_NEON 1
#include <arm_neon.h>
#elif defined(__wasm_simd128__)
#define SG_WASM 1
#include <wasm_simd128.h>
#endif

namespace dn {

#if defined(SG_X86)

// ---- AVX-512F: 32 zmm → 14 × 2 accumulators, 2 vectors of B, 1 broadcast (as the convolution kernels)
namespace sg_avx512 {
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#pragma GCC optimize("no-predictive-commoning")
#endif
#define SG_W 16
using V = __m512;
static inline V vzero() { return _mm512_setzero_ps(); }
static inline V vload(const float* p) { return _mm512_load_ps(p); }
static inline V vloadu(const float* p) { return _mm512_loadu_ps(p); }
static inline void vstore(float* p, V v) { _mm512_store_ps(p, v); }
static inline void vstoreu(float* p, V v) { _mm512_storeu_ps(p, v); }
static inline V vset1(float f) { return _mm512_set1_ps(f); }
static inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
static inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
#include "sgemm_kernels.inc"
#undef SG_W
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
}  // namespace sg_avx512

// ---- AVX2 + FMA: 16 ymm → 6 × 2 accumulators
namespace sg_avx2 {
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC optimize("no-predictive-commoning")
#endif
#define SG_W 8
using V = __m256;
static inline V vzero() { return _mm256_setzero_ps(); }
static inline V vload(const float* p) { return _mm256_load_ps(p); }
static inline V vloadu(const float* p) { return _mm256_loadu_ps(p); }
static inline void vstore(float* p, V v) { _mm256_store_ps(p, v); }
static inline void vstoreu(float* p, V v) { _mm256_storeu_ps(p, v); }
static inline V vset1(float f) { return _mm256_set1_ps(f); }
static inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
static inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
#include "sgemm_kernels.inc"
#undef SG_W
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
}  // namespace sg_avx2

// ---- SSE2 (every x86-64 CPU), no FMA: 16 xmm → 6 × 2 accumulators, products added separately
namespace sg_sse2 {
#define SG_W 4
using V = __m128;
static inline V vzero() { return _mm_setzero_ps(); }
static inline V vload(const float* p) { return _mm_load_ps(p); }
static inline V vloadu(const float* p) { return _mm_loadu_ps(p); }
static inline void vstore(float* p, V v) { _mm_store_ps(p, v); }
static inline void vstoreu(float* p, V v) { _mm_storeu_ps(p, v); }
static inline V vset1(float f) { return _mm_set1_ps(f); }
static inline V vmul(V a, V b) { return _mm_mul_ps(a, b); }
static inline V vfma(V a, V b, V c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
#include "sgemm_kernels.inc"
#undef SG_W
}  // namespace sg_sse2

const GemmKernel* gemm_kernel_for(Isa isa) {
  // KC·NR·4 bytes of B stay in L1 (32 KiB); the A block MC·KC·4 bytes in L2
  static const GemmKernel k512{"avx512", 14, 32, 14 * 24, 192, 4096, &sg_avx512::micro<14, 2>};
  static const GemmKernel k2{"avx2", 6, 16, 6 * 24, 384, 4096, &sg_avx2::micro<6, 2>};
  static const GemmKernel kb{"sse2", 6, 8, 6 * 24, 256, 4096, &sg_sse2::micro<6, 2>};
  switch (isa) {
    case Isa::Avx512: return &k512;
    case Isa::Avx2: return &k2;
    default: return &kb;
  }
}

#elif defined(SG_NEON)

// ---- NEON (every arm64 CPU): 32 q registers → 8 × 3 accumulators
namespace sg_neon {
#define SG_W 4
using V = float32x4_t;
static inline V vzero() { return vdupq_n_f32(0.0f); }
static inline V vload(const float* p) { return vld1q_f32(p); }
static inline V vloadu(const float* p) { return vld1q_f32(p); }
static inline void vstore(float* p, V v) { vst1q_f32(p, v); }
static inline void vstoreu(float* p, V v) { vst1q_f32(p, v); }
static inline V vset1(float f) { return vdupq_n_f32(f); }
static inline V vmul(V a, V b) { return vmulq_f32(a, b); }
static inline V vfma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
#include "sgemm_kernels.inc"
#undef SG_W
}  // namespace sg_neon

const GemmKernel* gemm_kernel_for(Isa) {
  static const GemmKernel k{"neon", 8, 12, 8 * 16, 256, 4096, &sg_neon::micro<8, 3>};
  return &k;
}

#elif defined(SG_WASM)

// ---- WebAssembly SIMD128 (src/backends/wasm): V8 maps v128 onto 16 xmm registers on x86-64 → 6 × 2
// accumulators as SSE2; a fused multiply-add only with relaxed SIMD (__wasm_relaxed_simd__), else mul + add.
namespace sg_wasm {
#define SG_W 4
using V = v128_t;
static inline V vzero() { return wasm_f32x4_splat(0.0f); }
static inline V vload(const float* p) { return wasm_v128_load(p); }
static inline V vloadu(const float* p) { return wasm_v128_load(p); }
static inline void vstore(float* p, V v) { wasm_v128_store(p, v); }
static inline void vstoreu(float* p, V v) { wasm_v128_store(p, v); }
static inline V vset1(float f) { return wasm_f32x4_splat(f); }
static inline V vmul(V a, V b) { return wasm_f32x4_mul(a, b); }
#if defined(__wasm_relaxed_simd__)
static inline V vfma(V a, V b, V c) { return (V)__builtin_wasm_relaxed_madd_f32x4((__f32x4)a, (__f32x4)b, (__f32x4)c); }
#else
static inline V vfma(V a, V b, V c) { return wasm_f32x4_add(wasm_f32x4_mul(a, b), c); }
#endif
#include "sgemm_kernels.inc"
#undef SG_W
}  // namespace sg_wasm

const GemmKernel* gemm_kernel_for(Isa) {
  static const GemmKernel k{"simd128", 6, 8, 6 * 24, 256, 4096, &sg_wasm::micro<6, 2>};
  return &k;
}

#else

// ---- portable C++ (other architectures): scalar lanes, left to the compiler's vectorizer
namespace sg_generic {
#define SG_W 1
using V = float;
static inline V vzero() { return 0.0f; }
static inline V vload(const float* p) { return *p; }
static inline V vloadu(const float* p) { return *p; }
static inline void vstore(float* p, V v) { *p = v; }
static inline void vstoreu(float* p, V v) { *p = v; }
static inline V vset1(float f) { return f; }
static inline V vmul(V a, V b) { return a * b; }
static inline V vfma(V a, V b, V c) { return a * b + c; }
#include "sgemm_kernels.inc"
#undef SG_W
}  // namespace sg_generic

const GemmKernel* gemm_kernel_for(Isa) {
  static const GemmKernel k{"generic", 4, 8, 4 * 32, 256, 4096, &sg_generic::micro<4, 8>};
  return &k;
}

#endif

}  // namespace dn
