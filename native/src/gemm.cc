// SGEMM on our own micro-kernels (sgemm_kernels.cc), packed and threaded on the addon's pool; no BLAS.
//
// Blocking as in BLIS (Van Zee & van de Geijn 2015): for each block of NC columns and each block of KC steps
// of k, B's block is packed once into NR-column micro-panels [k][NR] (shared by all threads, L3 / L2); each
// task packs its rows of A into MR-row micro-panels [k][MR] in MC-row blocks (L2) and runs the micro-kernel
// over (B micro-panel: L1) × (A micro-panels). Every element of C is accumulated by one task, over the KC
// blocks in order, with the same micro-kernel: results do not depend on the thread count or on how a
// product is split (sgemm1 inside conv tasks, or matmul across the pool).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels.h"
#include "pool.h"
#include "sgemm.h"

namespace dn {

namespace {

/** Grow-only, 64-byte aligned packing buffer, one per thread and role (A blocks, B blocks). */
struct PackBuffer {
  float* p = nullptr;
  size_t n = 0;
  ~PackBuffer() { std::free(p); }
  float* get(size_t floats) {
    if (floats <= n) return p;
    std::free(p);
    n = 0;
    const size_t bytes = (floats * sizeof(float) + 63) & ~size_t(63);
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (p) n = floats;
    return p;
  }
};
thread_local PackBuffer tl_pack_b;
/** A blocks are at most MC × KC floats for every kernel (sgemm_kernels.cc): a fixed per-thread buffer, so
 *  that no allocation can fail once C is being written. */
constexpr size_t kPackAFloats = 336 * 256;
alignas(64) thread_local float tl_pack_a[kPackAFloats];

constexpr int kMaxMR = 16;  // the largest MR in sgemm_kernels.cc

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/** Packs op(A)[i0 : i0 + mb, p0 : p0 + kb] into MR-row micro-panels: dst[panel][p][MR], zero past mb. */
void pack_a(bool ta, const float* a, int64_t lda, int64_t i0, int64_t mb, int64_t p0, int64_t kb, int MR,
            float* dst) {
  for (int64_t r0 = 0; r0 < mb; r0 += MR, dst += kb * MR) {
    const int rows = int(std::min<int64_t>(MR, mb - r0));
    if (ta) {  // op(A)(i, p) = a[p·lda + i]: MR contiguous values per k step
      for (int64_t p = 0; p < kb; p++) {
        const float* s = a + (p0 + p) * lda + i0 + r0;
        float* d = dst + p * MR;
        for (int i = 0; i < rows; i++) d[i] = s[i];
        for (int i = rows; i < MR; i++) d[i] = 0.0f;
      }
    } else {  // op(A)(i, p) = a[i·lda + p]: MR row streams, written in order
      const float* s[kMaxMR];
      for (int i = 0; i < MR; i++) s[i] = i < rows ? a + (i0 + r0 + i) * lda + p0 : nullptr;
      if (rows == MR) {
        for (int64_t p = 0; p < kb; p++)
          for (int i = 0; i < MR; i++) dst[p * MR + i] = s[i][p];
      } else {
        for (int64_t p = 0; p < kb; p++)
          for (int i = 0; i < MR; i++) dst[p * MR + i] = i < rows ? s[i][p] : 0.0f;
      }
    }
  }
}

/** Packs the micro-panels [q0, q1) of op(B)[p0 : p0 + kb, j0 : j0 + nb] (NR columns each, zero past nb):
 *  panel q at dst + q·kb·NR as [p][NR]. */
void pack_b(bool tb, const float* b, int64_t ldb, int64_t p0, int64_t kb, int64_t j0, int64_t nb, int NR,
            int64_t q0, int64_t q1, float* dst) {
  if (tb) {  // op(B)(p, j) = b[j·ldb + p]: read along rows of b
    for (int64_t q = q0; q < q1; q++) {
      float* d = dst + q * kb * NR;
      const int64_t c0 = q * NR;
      const int cols = int(std::min<int64_t>(NR, nb - c0));
      for (int j = 0; j < cols; j++) {
        const float* s = b + (j0 + c0 + j) * ldb + p0;
        for (int64_t p = 0; p < kb; p++) d[p * NR + j] = s[p];
      }
      for (int j = cols; j < NR; j++)
        for (int64_t p = 0; p < kb; p++) d[p * NR + j] = 0.0f;
    }
    return;
  }
  // op(B)(p, j) = b[p·ldb + j]: each row of b read in order, NR values to each panel
  const int64_t full_end = std::min(q1, nb / NR);  // panels [q0, full_end) are whole
  for (int64_t p = 0; p < kb; p++) {
    const float* s = b + (p0 + p) * ldb + j0;
    for (int64_t q = q0; q < full_end; q++) std::memcpy(dst + (q * kb + p) * NR, s + q * NR, size_t(NR) * sizeof(float));
    for (int64_t q = std::max(q0, full_end); q < q1; q++) {
      float* d = dst + (q * kb + p) * NR;
      const int cols = int(nb - q * NR);
      for (int j = 0; j < cols; j++) d[j] = s[q * NR + j];
      for (int j = cols; j < NR; j++) d[j] = 0.0f;
    }
  }
}

/** Unpacked reference loop: only when a packing buffer cannot be allocated (never on a healthy heap). */
void sgemm_unpacked(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++) s += double(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      float* cij = c + i * ldc + j;
      *cij = float(alpha * s) + (beta == 0.0f ? 0.0f : beta * *cij);
    }
}

/** C = alpha·op(A)·op(B) + beta·C; on the pool when `parallel` (and not already inside a pool task). */
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc, bool parallel) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; i++) {
      float* ci = c + i * ldc;
      if (beta == 0.0f) std::memset(ci, 0, size_t(n) * sizeof(float));
      else for (int64_t j = 0; j < n; j++) ci[j] *= beta;
    }
    return;
  }
  const GemmKernel& K = *gemm_kernel_for(active_isa());
  const int MR = K.mr, NR = K.nr;
  const int T = parallel && !pool_in_task() ? pool_threads() : 1;
  const int64_t NC = K.nc / NR * NR;
  float* bp = tl_pack_b.get(size_t(ceil_div(std::min(NC, n), NR) * NR * std::min<int64_t>(K.kc, k)));
  if (!bp || size_t(K.mc) * size_t(K.kc) > kPackAFloats) { sgemm_unpacked(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); return; }
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nb = std::min(NC, n - jc);
    const int64_t panels = ceil_div(nb, NR);
    for (int64_t pc = 0; pc < k; pc += K.kc) {
      const int64_t kb = std::min<int64_t>(K.kc, k - pc);
      const float be = pc == 0 ? beta : 1.0f;
      if (T > 1 && panels * kb * NR >= (1 << 15))
        parallel_for(panels, 4, [&](int64_t q0, int64_t q1) { pack_b(tb, b, ldb, pc, kb, jc, nb, NR, q0, q1, bp); });
      else
        pack_b(tb, b, ldb, pc, kb, jc, nb, NR, 0, panels, bp);

      // tasks: a grid of (row chunks) × (panel chunks), in whole tiles, a multiple of T where it can be
      const int64_t mtiles = ceil_div(m, MR);
      int64_t nm = std::min(mtiles, ceil_div(m, K.mc)), nn = 1;
      if (T > 1) {
        nm = std::min(mtiles, ceil_div(nm, T) * T);
        if (nm < T) nn = std::min(panels, ceil_div(T, nm));
      }
      auto task = [&](int64_t ti) {
        const int64_t mi = ti / nn, ni = ti % nn;
        const int64_t r0 = mtiles * mi / nm * MR, r1 = std::min(m, mtiles * (mi + 1) / nm * MR);
        const int64_t q0 = panels * ni / nn, q1 = panels * (ni + 1) / nn;
        if (r0 >= r1 || q0 >= q1) return;
        for (int64_t ic = r0; ic < r1; ic += K.mc) {
          const int64_t mb = std::min<int64_t>(K.mc, r1 - ic);
          float* ap = tl_pack_a;
          pack_a(ta, a, lda, ic, mb, pc, kb, MR, ap);
          for (int64_t q = q0; q < q1; q++) {
            const int64_t j = q * NR;
            const int nr = int(std::min<int64_t>(NR, nb - j));
            const float* bq = bp + q * kb * NR;
            for (int64_t ir = 0; ir < mb; ir += MR)
              K.micro(kb, ap + ir * kb, bq, c + (ic + ir) * ldc + jc + j, ldc, alpha, be,
                      int(std::min<int64_t>(MR, mb - ir)), nr);
          }
        }
      };
      const int64_t ntasks = nm * nn;
      if (T > 1 && ntasks > 1) parallel_dynamic(ntasks, [&](int, int64_t ti) { task(ti); });
      else for (int64_t ti = 0; ti < ntasks; ti++) task(ti);
    }
  }
}

}  // namespace

const char* gemm_info() {
  static char s[4][64];
  const GemmKernel& K = *gemm_kernel_for(active_isa());
  char* out = s[int(active_isa())];
  std::snprintf(out, 64, "diffuse sgemm %s %dx%d", K.isa, K.mr, K.nr);
  return out;
}

void sgemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false);
}

void matmul(const float* a, const float* b, float* out, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta,
            bool tb, int64_t sA, int64_t sB) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  const int T = pool_threads();
  const double fmas = double(m) * double(n) * double(std::max<int64_t>(k, 1));
  const bool parallel = T > 1 && fmas * double(batch) >= double(1 << 17);
  if (parallel && batch >= 2 * int64_t(T)) {  // many matrices: one per item, handed out dynamically
    parallel_dynamic(batch, [&](int, int64_t bi) {
      sgemm(ta, tb, m, n, k, 1.0f, a + bi * sA, lda, b + bi * sB, ldb, 0.0f, out + bi * m * n, n, false);
    });
    return;
  }
  for (int64_t bi = 0; bi < batch; bi++)
    sgemm(ta, tb, m, n, k, 1.0f, a + bi * sA, lda, b + bi * sB, ldb, 0.0f, out + bi * m * n, n,
          parallel && fmas >= double(1 << 15));
}

}  // namespace dn
