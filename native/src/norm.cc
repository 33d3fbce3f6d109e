// Normalization and softmax kernels. Statistics are accumulated in double; each row / group is read from
// memory once and revisited from cache, and rows / groups are split across the pool.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common.h"
#include "kernels.h"
#include "pool.h"

namespace dn {
namespace {

constexpr int64_t kGrain = 1 << 14;

// Σ EXPR over i in [0, N) accumulated in double: float lanes within blocks of 256 (vectorizes on every ISA,
// unlike a float→double reduction), blocks summed in double. EXPR may use `i`.
#define DN_BLOCK_SUM(ACC, N, EXPR)                                    \
  for (int64_t b_ = 0; b_ < (N); b_ += 256) {                          \
    const int64_t e_ = std::min<int64_t>((N), b_ + 256);               \
    float s_ = 0.0f;                                                   \
    _Pragma("omp simd reduction(+ : s_)") for (int64_t i = b_; i < e_; i++) s_ += (EXPR); \
    ACC += double(s_);                                                 \
  }

// Two sums in one pass (same blocking as DN_BLOCK_SUM).
#define DN_BLOCK_SUM2(ACC1, EXPR1, ACC2, EXPR2, N)                    \
  for (int64_t b_ = 0; b_ < (N); b_ += 256) {                          \
    const int64_t e_ = std::min<int64_t>((N), b_ + 256);               \
    float s1_ = 0.0f, s2_ = 0.0f;                                      \
    _Pragma("omp simd reduction(+ : s1_, s2_)") for (int64_t i = b_; i < e_; i++) { \
      s1_ += (EXPR1);                                                  \
      s2_ += (EXPR2);                                                  \
    }                                                                  \
    ACC1 += double(s1_);                                               \
    ACC2 += double(s2_);                                               \
  }

DN_CLONES double sum_d(const float* DN_RESTRICT x, int64_t n) {
  double s = 0.0;
  DN_BLOCK_SUM(s, n, x[i])
  return s;
}

/** Σ (x − mean)²; the float shift keeps full precision when |mean| ≫ std (x − m is exact-ish in float). */
DN_CLONES double sqdev_d(const float* DN_RESTRICT x, int64_t n, double mean) {
  const float m = float(mean);
  const double dm = mean - double(m);  // Σ(x − mean)² = Σ(x − m)² − 2·dm·Σ(x − m) + n·dm²
  double s2 = 0.0, s1 = 0.0;
  DN_BLOCK_SUM2(s2, (x[i] - m) * (x[i] - m), s1, x[i] - m, n)
  return s2 - 2.0 * dm * s1 + double(n) * dm * dm;
}

/** Two-pass mean / rstd of x[0..n) (second pass hits cache). */
DN_INLINE void stats(const float* x, int64_t n, double eps, float& mean_out, float& rstd_out, double& mean_d,
                     double& rstd_d) {
  double mean = n > 0 ? sum_d(x, n) / double(n) : 0.0;
  double var = n > 0 ? sqdev_d(x, n, mean) / double(n) : 0.0;
  double rs = 1.0 / std::sqrt(var + eps);
  mean_d = mean;
  rstd_d = rs;
  mean_out = float(mean);
  rstd_out = float(rs);
}

/** y = norm_act(x) over one channel: (x − mu)·s + b, optionally followed by SiLU. */
DN_CLONES void norm_affine(const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t n, float mu, float s, float b,
                           bool silu) {
  if (silu) {
    for (int64_t i = 0; i < n; i++) y[i] = norm_act(x[i], mu, s, b, true);
  } else {
    for (int64_t i = 0; i < n; i++) y[i] = norm_act(x[i], mu, s, b, false);
  }
}

/** Backward pass 1 of one channel: g = dL/dz (through SiLU if set; then stored in dz), returns
 *  Σg and Σg·x̂ (x̂ = (x − mu)·rs). */
DN_CLONES void gn_bwd_sums(const float* DN_RESTRICT dy, const float* DN_RESTRICT x, float* DN_RESTRICT dz, int64_t n,
                           float mu, float rs, float ga, float be, bool silu, double* sg_out, double* sgx_out) {
  double sg = 0.0, sgx = 0.0;
  if (silu) {  // dz and both sums in one pass
    for (int64_t b = 0; b < n; b += 256) {
      const int64_t e = std::min<int64_t>(n, b + 256);
      float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t i = b; i < e; i++) {
        const float xh = (x[i] - mu) * rs, z = xh * ga + be;
        const float s = 1.0f / (1.0f + vexp(-z));
        const float g = dy[i] * (s * (1.0f + z * (1.0f - s)));
        dz[i] = g;
        s1 += g;
        s2 += g * xh;
      }
      sg += double(s1);
      sgx += double(s2);
    }
  } else {
    DN_BLOCK_SUM2(sg, dy[i], sgx, dy[i] * ((x[i] - mu) * rs), n)
  }
  *sg_out = sg;
  *sgx_out = sgx;
}

/** dx = c1·g + c2 + c3·(x − mu) */
DN_CLONES void gn_bwd_dx(const float* DN_RESTRICT g, const float* DN_RESTRICT x, float* DN_RESTRICT dx, int64_t n,
                         float mu, float c1, float c2, float c3) {
  for (int64_t i = 0; i < n; i++) dx[i] = c1 * g[i] + c2 + c3 * (x[i] - mu);
}

DN_CLONES void ln_row(const float* DN_RESTRICT x, float* DN_RESTRICT y, const float* DN_RESTRICT gamma,
                      const float* DN_RESTRICT beta, int64_t d, float mu, float rs) {
  if (gamma && beta) for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mu) * rs * gamma[i] + beta[i];
  else if (gamma) for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mu) * rs * gamma[i];
  else if (beta) for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mu) * rs + beta[i];
  else for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mu) * rs;
}

/** Layer-norm backward for one row; accumulates dgamma/dbeta partials (double) when given. */
DN_CLONES void ln_bwd_row(const float* DN_RESTRICT dy, const float* DN_RESTRICT x, const float* DN_RESTRICT gamma,
                          float* DN_RESTRICT dx, int64_t d, float mu, float rs, double* DN_RESTRICT pg,
                          double* DN_RESTRICT pb) {
  double sg = 0.0, sgx = 0.0;
  if (gamma) {
    DN_BLOCK_SUM(sg, d, dy[i] * gamma[i])
    DN_BLOCK_SUM(sgx, d, (dy[i] * gamma[i]) * ((x[i] - mu) * rs))
  } else {
    DN_BLOCK_SUM(sg, d, dy[i])
    DN_BLOCK_SUM(sgx, d, dy[i] * ((x[i] - mu) * rs))
  }
  const float a = float(sg / double(d)), b = float(sgx / double(d));
  if (gamma) {
    for (int64_t i = 0; i < d; i++) {
      float xh = (x[i] - mu) * rs;
      dx[i] = rs * (dy[i] * gamma[i] - a - xh * b);
    }
  } else {
    for (int64_t i = 0; i < d; i++) {
      float xh = (x[i] - mu) * rs;
      dx[i] = rs * (dy[i] - a - xh * b);
    }
  }
  if (pg) for (int64_t i = 0; i < d; i++) pg[i] += double(dy[i] * ((x[i] - mu) * rs));
  if (pb) for (int64_t i = 0; i < d; i++) pb[i] += double(dy[i]);
}

DN_CLONES void softmax_rows(const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < d; i++) m = xr[i] > m ? xr[i] : m;
    if (m == -INFINITY) m = 0.0f;  // all −inf: exp(−inf − 0) = 0, 0/0 = NaN like the reference
    for (int64_t i = 0; i < d; i++) yr[i] = vexp(xr[i] - m);
    double s = 0.0;
    DN_BLOCK_SUM(s, d, yr[i])
    const float inv = float(1.0 / s);
    for (int64_t i = 0; i < d; i++) yr[i] *= inv;
  }
}

DN_CLONES void softmax_bwd_rows(const float* DN_RESTRICT y, const float* DN_RESTRICT dy, float* DN_RESTRICT dx,
                                int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; r++) {
    const float* yr = y + r * d;
    const float* gr = dy + r * d;
    float* o = dx + r * d;
    double dot = 0.0;
    DN_BLOCK_SUM(dot, d, yr[i] * gr[i])
    const float df = float(dot);
    for (int64_t i = 0; i < d; i++) o[i] = yr[i] * (gr[i] - df);
  }
}

DN_CLONES void log_softmax_rows(const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < d; i++) m = xr[i] > m ? xr[i] : m;
    const float mm = m == -INFINITY ? 0.0f : m;
    double s = 0.0;
    DN_BLOCK_SUM(s, d, vexp(xr[i] - mm))
    const float lse = float(double(mm) + std::log(s));
    const float lse_lo = float(double(mm) + std::log(s) - double(lse));  // x − lse in two steps: ~exact
    for (int64_t i = 0; i < d; i++) yr[i] = (xr[i] - lse) - lse_lo;
  }
}

DN_CLONES void log_softmax_bwd_rows(const float* DN_RESTRICT y, const float* DN_RESTRICT dy, float* DN_RESTRICT dx,
                                    int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; r++) {
    const float* yr = y + r * d;
    const float* gr = dy + r * d;
    float* o = dx + r * d;
    double s = 0.0;
    DN_BLOCK_SUM(s, d, gr[i])
    const float sf = float(s);
    for (int64_t i = 0; i < d; i++) o[i] = gr[i] - vexp(yr[i]) * sf;
  }
}

}  // namespace

void group_norm_stats(const float* x, int64_t n, int64_t c, int64_t hw, int64_t groups, double eps, float* mean,
                      float* rstd) {
  const int64_t m = (c / groups) * hw;
  parallel_for(n * groups, std::max<int64_t>(1, kGrain / (m + 1)), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; u++) {
      double md, rd;
      stats(x + u * m, m, eps, mean[u], rstd[u], md, rd);
    }
  });
}

/** Units [u0, u1) (image · group) of the normalized x (NormPre::constants, as the convolutions use them). */
static void apply_units(const float* x, const NormPre& p, int64_t c, int64_t hw, int64_t u0, int64_t u1, float* y) {
  const int64_t cg = c / p.groups;
  for (int64_t u = u0; u < u1; u++) {
    const int64_t gi = u % p.groups, base = u * cg * hw;
    for (int64_t ci = 0; ci < cg; ci++) {
      float mu, s, b;
      p.constants(u, gi * cg + ci, &mu, &s, &b);
      norm_affine(x + base + ci * hw, y + base + ci * hw, hw, mu, s, b, p.silu);
    }
  }
}

void group_norm_apply(const float* x, const NormPre& p, int64_t n, int64_t c, int64_t hw, float* y) {
  const int64_t m = (c / p.groups) * hw;
  parallel_for(n * p.groups, std::max<int64_t>(1, kGrain / (m + 1)),
               [&](int64_t u0, int64_t u1) { apply_units(x, p, c, hw, u0, u1, y); });
}

void group_norm(const float* x, const float* gamma, const float* beta, int64_t n, int64_t c, int64_t hw,
                int64_t groups, double eps, bool silu, float* y, float* mean, float* rstd) {
  const int64_t m = (c / groups) * hw;
  const NormPre p{mean, rstd, gamma, beta, groups, silu};
  // statistics, then the group's output while it is still in cache
  parallel_for(n * groups, std::max<int64_t>(1, kGrain / (m + 1)), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; u++) {
      double md, rd;
      stats(x + u * m, m, eps, mean[u], rstd[u], md, rd);
      apply_units(x, p, c, hw, u, u + 1, y);
    }
  });
}

// Adds per-chunk partial [chunks][2n] (dgamma | dbeta) in chunk order, so results do not depend on threads.
static void sum_param_partials(const double* partial, int64_t chunks, int64_t n, float* dgamma, float* dbeta) {
  for (int64_t i = 0; i < n; i++) {
    double sg = 0.0, sb = 0.0;
    for (int64_t t = 0; t < chunks; t++) {
      sg += partial[size_t(t) * 2 * size_t(n) + size_t(i)];
      sb += partial[size_t(t) * 2 * size_t(n) + size_t(n) + size_t(i)];
    }
    if (dgamma) dgamma[i] = float(sg);
    if (dbeta) dbeta[i] = float(sb);
  }
}

bool group_norm_backward(const float* dy, const float* x, const float* gamma, const float* beta, const float* mean,
                         const float* rstd, int64_t n, int64_t c, int64_t hw, int64_t groups, bool silu, float* dx,
                         float* dgamma, float* dbeta) {
  const int64_t cg = c / groups, m = cg * hw, units = n * groups;
  const int64_t grain = std::max<int64_t>(1, kGrain / (m + 1));
  const int64_t T = parallel_chunks(units, grain);
  const bool want_params = dgamma || dbeta;
  // per-chunk partial dgamma / dbeta in double: [chunks][2c], summed in chunk order
  double* partial = nullptr;
  if (want_params) {
    partial = reinterpret_cast<double*>(scratch(1, kShared, size_t(T) * 2 * size_t(c) * 2));
    if (!partial) return false;
    std::memset(partial, 0, size_t(T) * 2 * size_t(c) * sizeof(double));
  }
  bool ok = true;
  parallel_for_tid(units, grain, [&](int tid, int64_t u0, int64_t u1) {
    float* dz = silu ? scratch(0, tid, size_t(m)) : nullptr;
    if (silu && !dz) { ok = false; return; }
    double* pg = partial ? partial + size_t(tid) * 2 * size_t(c) : nullptr;
    double* pb = pg ? pg + c : nullptr;
    for (int64_t u = u0; u < u1; u++) {
      const int64_t b = u / groups, gi = u % groups;
      const int64_t base = (b * c + gi * cg) * hw;
      const float mu = mean[u], rs = rstd[u];
      double sumG = 0.0, sumGX = 0.0;
      for (int64_t ci = 0; ci < cg; ci++) {
        const int64_t ch = gi * cg + ci;
        const float ga = gamma ? gamma[ch] : 1.0f, be = beta ? beta[ch] : 0.0f;
        double sg, sgx;
        gn_bwd_sums(dy + base + ci * hw, x + base + ci * hw, silu ? dz + ci * hw : nullptr, hw, mu, rs, ga, be, silu,
                    &sg, &sgx);
        if (pg) { pg[ch] += sgx; pb[ch] += sg; }
        sumG += double(ga) * sg;
        sumGX += double(ga) * sgx;
      }
      const double invm = 1.0 / double(m);
      const float c2 = float(-double(rs) * sumG * invm);
      const float c3 = float(-double(rs) * double(rs) * sumGX * invm);
      for (int64_t ci = 0; ci < cg; ci++) {
        const int64_t ch = gi * cg + ci;
        const float ga = gamma ? gamma[ch] : 1.0f;
        const float* g = silu ? dz + ci * hw : dy + base + ci * hw;
        gn_bwd_dx(g, x + base + ci * hw, dx + base + ci * hw, hw, mu, rs * ga, c2, c3);
      }
    }
  });
  if (!ok) return false;
  if (want_params) sum_param_partials(partial, T, c, dgamma, dbeta);
  return true;
}

void layer_norm(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t d, double eps, float* y,
                float* mean, float* rstd) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / (d + 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      double md, rd;
      stats(x + r * d, d, eps, mean[r], rstd[r], md, rd);
      ln_row(x + r * d, y + r * d, gamma, beta, d, float(md), float(rd));
    }
  });
}

bool layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                         int64_t rows, int64_t d, float* dx, float* dgamma, float* dbeta) {
  const int64_t grain = std::max<int64_t>(1, kGrain / (d + 1));
  const int64_t T = parallel_chunks(rows, grain);
  const bool want = dgamma || dbeta;
  double* partial = nullptr;  // per-chunk partial dgamma / dbeta: [chunks][2d], summed in chunk order
  if (want) {
    partial = reinterpret_cast<double*>(scratch(1, kShared, size_t(T) * 2 * size_t(d) * 2));
    if (!partial) return false;
    std::memset(partial, 0, size_t(T) * 2 * size_t(d) * sizeof(double));
  }
  parallel_for_tid(rows, grain, [&](int tid, int64_t r0, int64_t r1) {
    double* pg = partial && dgamma ? partial + size_t(tid) * 2 * size_t(d) : nullptr;
    double* pb = partial && dbeta ? partial + size_t(tid) * 2 * size_t(d) + d : nullptr;
    for (int64_t r = r0; r < r1; r++)
      ln_bwd_row(dy + r * d, x + r * d, gamma, dx + r * d, d, mean[r], rstd[r], pg, pb);
  });
  if (want) sum_param_partials(partial, T, d, dgamma, dbeta);
  return true;
}

void softmax(const float* x, float* y, int64_t rows, int64_t d) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / (d + 1)),
               [&](int64_t r0, int64_t r1) { softmax_rows(x + r0 * d, y + r0 * d, r1 - r0, d); });
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t d) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / (d + 1)),
               [&](int64_t r0, int64_t r1) { softmax_bwd_rows(y + r0 * d, dy + r0 * d, dx + r0 * d, r1 - r0, d); });
}

void log_softmax(const float* x, float* y, int64_t rows, int64_t d) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / (d + 1)),
               [&](int64_t r0, int64_t r1) { log_softmax_rows(x + r0 * d, y + r0 * d, r1 - r0, d); });
}

void log_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t d) {
  parallel_for(rows, std::max<int64_t>(1, kGrain / (d + 1)), [&](int64_t r0, int64_t r1) {
    log_softmax_bwd_rows(y + r0 * d, dy + r0 * d, dx + r0 * d, r1 - r0, d);
  });
}

}  // namespace dn
