// Batched matmul on CBLAS, split across the addon's pool. OpenBLAS runs single-threaded inside our pool's
// workers, except for one big matrix, which OpenBLAS threads itself (it shares its packed panels between
// threads, which splitting the matrix across our workers cannot): our pool's workers are parked then, and the
// loader sets OPENBLAS_THREAD_TIMEOUT so OpenBLAS's threads park right after, so two pools never run at once.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "kernels.h"
#include "pool.h"

#if defined(DIFFUSE_ACCELERATE)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_config(void);
#endif

namespace dn {

void blas_init() {
#if !defined(DIFFUSE_ACCELERATE)
  openblas_set_num_threads(1);
#endif
}

const char* blas_info() {
#if defined(DIFFUSE_ACCELERATE)
  return "Accelerate";
#else
  return openblas_get_config();
#endif
}

void sgemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; i++) {
      float* ci = c + i * ldc;
      if (beta == 0.0f) std::memset(ci, 0, size_t(n) * sizeof(float));
      else for (int64_t j = 0; j < n; j++) ci[j] *= beta;
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

void matmul(const float* a, const float* b, float* out, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta,
            bool tb, int64_t sA, int64_t sB) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  auto item = [&](int64_t bi, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const float* A = a + bi * sA + (ta ? m0 : m0 * k);
    const float* B = b + bi * sB + (tb ? n0 * k : n0);
    float* C = out + bi * m * n + m0 * n + n0;
    sgemm1(ta, tb, m1 - m0, n1 - n0, k, 1.0f, A, lda, B, ldb, 0.0f, C, n);
  };
  const int T = pool_threads();
  const double fmas = double(batch) * double(m) * double(n) * double(std::max<int64_t>(k, 1));
  if (T <= 1 || fmas < double(1 << 17)) {
    for (int64_t bi = 0; bi < batch; bi++) item(bi, 0, m, 0, n);
    return;
  }
  // units = batch × s pieces; s makes the unit count a multiple of T (perfect static balance) when the
  // matrices are big enough to be cut; pieces cut the larger of m and n.
  if (batch >= 2 * int64_t(T)) {  // many matrices: one per item, handed out dynamically
    parallel_dynamic(batch, [&](int, int64_t bi) { item(bi, 0, m, 0, n); });
    return;
  }
#if !defined(DIFFUSE_ACCELERATE)
  if (batch == 1 && fmas >= double(1 << 24)) {
    openblas_set_num_threads(T);
    item(0, 0, m, 0, n);
    openblas_set_num_threads(1);
    return;
  }
#endif
  int64_t s = T / std::gcd<int64_t>(batch, T);
  const bool splitN = n >= m;
  const int64_t dim = splitN ? n : m;
  while (s > 1 && dim / s < 32) s--;
  const int64_t units = batch * s;
  const int nth = int(std::min<int64_t>(T, units));
  parallel_run(nth, [&](int t, int nt) {
    const int64_t u0 = units * t / nt, u1 = units * (t + 1) / nt;
    for (int64_t u = u0; u < u1; u++) {
      const int64_t bi = u / s, piece = u % s;
      // keep piece boundaries on multiples of 16 columns / rows where possible
      int64_t lo = dim * piece / s, hi = dim * (piece + 1) / s;
      if (piece > 0) lo = std::min(dim, (lo + 15) & ~int64_t(15));
      if (piece + 1 < s) hi = std::min(dim, (hi + 15) & ~int64_t(15));
      if (lo >= hi) continue;
      if (splitN) item(bi, 0, m, lo, hi);
      else item(bi, lo, hi, 0, n);
    }
  });
}

}  // namespace dn
