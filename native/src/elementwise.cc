// Elementwise, broadcasting, reduction, copy, pooling, indexing and optimizer kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"
#include "kernels.h"
#include "pool.h"

namespace dn {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements below which a memory-bound loop runs inline

// ---------------------------------------------------------------- unary

DN_CLONES void unary_loop(int op, const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t n) {
  switch (op) {
    case U_NEG: for (int64_t i = 0; i < n; i++) y[i] = -x[i]; break;
    case U_EXP: for (int64_t i = 0; i < n; i++) y[i] = vexp(x[i]); break;
    case U_LOG: for (int64_t i = 0; i < n; i++) y[i] = std::log(x[i]); break;
    case U_SQRT: for (int64_t i = 0; i < n; i++) y[i] = std::sqrt(x[i]); break;
    case U_RSQRT: for (int64_t i = 0; i < n; i++) y[i] = 1.0f / std::sqrt(x[i]); break;
    case U_SIN: for (int64_t i = 0; i < n; i++) y[i] = std::sin(x[i]); break;
    case U_COS: for (int64_t i = 0; i < n; i++) y[i] = std::cos(x[i]); break;
    case U_TANH: for (int64_t i = 0; i < n; i++) y[i] = vtanh(x[i]); break;
    case U_SIGMOID: for (int64_t i = 0; i < n; i++) y[i] = vsigmoid(x[i]); break;
    case U_SILU: for (int64_t i = 0; i < n; i++) y[i] = x[i] * vsigmoid(x[i]); break;
    // gelu(x) = x·Φ(x) = ½·x·erfc(−x/√2): erfc keeps full relative accuracy in the far negative tail.
    case U_GELU: for (int64_t i = 0; i < n; i++) y[i] = vgelu(x[i]); break;
    case U_RELU: for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
    case U_ABS: for (int64_t i = 0; i < n; i++) y[i] = std::fabs(x[i]); break;
    case U_SQUARE: for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i]; break;
    case U_RECIPROCAL: for (int64_t i = 0; i < n; i++) y[i] = 1.0f / x[i]; break;
    case U_ERF: for (int64_t i = 0; i < n; i++) y[i] = std::erf(x[i]); break;
  }
}

// The other unary ops' derivatives are engine ops (src/tensor/gradients.ts).
DN_CLONES void activation_bwd_loop(int op, const float* DN_RESTRICT x, const float* DN_RESTRICT dy,
                                   float* DN_RESTRICT dx, int64_t n) {
  switch (op) {
    case U_SIGMOID:
      for (int64_t i = 0; i < n; i++) { float s = vsigmoid(x[i]); dx[i] = dy[i] * (s * (1.0f - s)); }
      break;
    case U_SILU:
      for (int64_t i = 0; i < n; i++) {
        float s = vsigmoid(x[i]);
        dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
      }
      break;
    case U_GELU: for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * vgelu_grad(x[i]); break;
  }
}

// ---------------------------------------------------------------- binary / where

// JS semantics (Math.pow): NaN exponent → NaN; |base| = 1 with infinite exponent → NaN.
DN_INLINE float js_pow(float a, float b) {
  if (b != b) return std::numeric_limits<float>::quiet_NaN();
  if (std::isinf(b) && std::fabs(a) == 1.0f) return std::numeric_limits<float>::quiet_NaN();
  return std::pow(a, b);
}

#define DN_BIN_CASES(EXPR)                                                              \
  if (sa == 1 && sb == 1) {                                                             \
    for (int64_t i = 0; i < n; i++) { float A = a[i], B = b[i]; o[i] = (EXPR); }        \
  } else if (sa == 1 && sb == 0) {                                                      \
    const float B = b[0];                                                               \
    for (int64_t i = 0; i < n; i++) { float A = a[i]; o[i] = (EXPR); }                  \
  } else if (sa == 0 && sb == 1) {                                                      \
    const float A = a[0];                                                               \
    for (int64_t i = 0; i < n; i++) { float B = b[i]; o[i] = (EXPR); }                  \
  } else {                                                                              \
    for (int64_t i = 0; i < n; i++) { float A = a[i * sa], B = b[i * sb]; o[i] = (EXPR); } \
  }

DN_CLONES void binary_run(int op, const float* DN_RESTRICT a, int64_t sa, const float* DN_RESTRICT b, int64_t sb,
                          float* DN_RESTRICT o, int64_t n) {
  switch (op) {
    case B_ADD: DN_BIN_CASES(A + B) break;
    case B_SUB: DN_BIN_CASES(A - B) break;
    case B_MUL: DN_BIN_CASES(A * B) break;
    case B_DIV: DN_BIN_CASES(A / B) break;
    case B_POW: DN_BIN_CASES(js_pow(A, B)) break;
    case B_MAX: DN_BIN_CASES((A >= B || A != A) ? A : B) break;
    case B_MIN: DN_BIN_CASES((A <= B || A != A) ? A : B) break;
    case B_EQ: DN_BIN_CASES(A == B ? 1.0f : 0.0f) break;
    case B_GT: DN_BIN_CASES(A > B ? 1.0f : 0.0f) break;
    case B_LT: DN_BIN_CASES(A < B ? 1.0f : 0.0f) break;
  }
}
#undef DN_BIN_CASES

DN_CLONES void where_run(const float* DN_RESTRICT c, int64_t sc, const float* DN_RESTRICT a, int64_t sa,
                         const float* DN_RESTRICT b, int64_t sb, float* DN_RESTRICT o, int64_t n) {
  if (sc == 1 && sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = c[i] != 0.0f ? a[i] : b[i];
  } else {
    for (int64_t i = 0; i < n; i++) o[i] = c[i * sc] != 0.0f ? a[i * sa] : b[i * sb];
  }
}

/** Dense output over a shape, walked by K operands' strides. The engine has already dropped size-1 dims and
 *  merged contiguous ones (src/tensor/shape.ts mergeDims), so the innermost run is as long as it gets. */
template <int K>
struct Walk {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t st[K][kMaxDims];
  int64_t total = 1;

  Walk(const int64_t* const* strides, const int64_t* shp, int ndim) {
    for (int d = 0; d < ndim; d++) {
      total *= shp[d];
      shape[nd] = shp[d];
      for (int k = 0; k < K; k++) st[k][nd] = strides[k][d];
      nd++;
    }
    if (nd == 0) {  // scalar
      shape[0] = 1;
      for (int k = 0; k < K; k++) st[k][0] = 0;
      nd = 1;
    }
  }

  int64_t inner() const { return shape[nd - 1]; }
  int64_t rows() const { return inner() == 0 ? 0 : total / inner(); }

  /** fn(offsets[K], rowIndexInOutput) for rows [r0, r1) (row = all dims but the last). */
  template <class F>
  void rows_range(int64_t r0, int64_t r1, const int64_t* base, F&& fn) const {
    int64_t idx[kMaxDims] = {0};
    int64_t off[K];
    int64_t r = r0;
    for (int k = 0; k < K; k++) off[k] = base[k];
    for (int d = nd - 2; d >= 0; d--) {
      idx[d] = r % shape[d];
      r /= shape[d];
      for (int k = 0; k < K; k++) off[k] += idx[d] * st[k][d];
    }
    for (int64_t row = r0; row < r1; row++) {
      fn(off, row);
      for (int d = nd - 2; d >= 0; d--) {
        idx[d]++;
        for (int k = 0; k < K; k++) off[k] += st[k][d];
        if (idx[d] < shape[d]) break;
        for (int k = 0; k < K; k++) off[k] -= st[k][d] * shape[d];
        idx[d] = 0;
      }
    }
  }
};

DN_CLONES void fill_run(float* DN_RESTRICT d, int64_t sd, float v, int64_t n) {
  if (sd == 1) for (int64_t i = 0; i < n; i++) d[i] = v;
  else for (int64_t i = 0; i < n; i++) d[i * sd] = v;
}

DN_CLONES void copy_run(const float* s, int64_t ss, float* d, int64_t sd, int64_t n, bool acc) {
  if (acc) {
    if (sd == 0) {  // many sources into one destination: keep the sequential order
      float t = d[0];
      for (int64_t i = 0; i < n; i++) t += s[i * ss];
      d[0] = t;
    } else if (ss == 1 && sd == 1) {
      for (int64_t i = 0; i < n; i++) d[i] += s[i];
    } else if (ss == 0) {
      const float v = s[0];
      for (int64_t i = 0; i < n; i++) d[i * sd] += v;
    } else {
      for (int64_t i = 0; i < n; i++) d[i * sd] += s[i * ss];
    }
  } else {
    if (ss == 1 && sd == 1) std::memmove(d, s, size_t(n) * sizeof(float));
    else if (ss == 0) fill_run(d, sd, s[0], n);
    else for (int64_t i = 0; i < n; i++) d[i * sd] = s[i * ss];
  }
}

// ---------------------------------------------------------------- misc loops

DN_CLONES void affine_loop(const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t n, double s, double t) {
  for (int64_t i = 0; i < n; i++) y[i] = float(double(x[i]) * s + t);
}

DN_CLONES void clamp_loop(const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) {
    double v = x[i];
    v = v < lo ? lo : v;  // NaN stays NaN, like Math.min(Math.max(x, lo), hi)
    v = v > hi ? hi : v;
    y[i] = float(v);
  }
}

DN_CLONES void pow_loop(const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t n, double p) {
  if (p == 2.0) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];
  } else if (p == 1.0) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i];
  } else if (p == 0.5) {
    // Math.pow(-0, 0.5) = +0 and Math.pow(-Infinity, 0.5) = +Infinity, unlike sqrt
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      y[i] = v == -INFINITY ? INFINITY : std::sqrt(v) + 0.0f;
    }
  } else if (p == 3.0) {
    for (int64_t i = 0; i < n; i++) { double v = x[i]; y[i] = float(v * v * v); }
  } else if (p == -1.0) {
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / x[i];
  } else {
    const float pf = float(p);
    if (double(pf) == p) {
      for (int64_t i = 0; i < n; i++) y[i] = js_pow(x[i], pf);
    } else {
      for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        y[i] = (std::isinf(p) && std::fabs(v) == 1.0) || p != p ? NAN : float(std::pow(v, p));
      }
    }
  }
}

/** Σ x in double: float lanes within blocks of 256 (vectorizes on every ISA), blocks added in double. */
DN_CLONES double sum_row(const float* DN_RESTRICT x, int64_t n) {
  double s = 0.0;
  for (int64_t b = 0; b < n; b += 256) {
    const int64_t e = std::min<int64_t>(n, b + 256);
    float p = 0.0f;
#pragma omp simd reduction(+ : p)
    for (int64_t i = b; i < e; i++) p += x[i];
    s += double(p);
  }
  return s;
}

DN_CLONES float max_row(const float* DN_RESTRICT x, int64_t n) {
  float m = -INFINITY;
  int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    m = v > m ? v : m;
    nan |= (v != v);
  }
  return nan ? NAN : m;
}

DN_CLONES void sum_cols_init(const float* DN_RESTRICT x, double* DN_RESTRICT acc, int64_t n) {
  for (int64_t j = 0; j < n; j++) acc[j] = double(x[j]);
}
DN_CLONES void sum_cols_add(const float* DN_RESTRICT x, double* DN_RESTRICT acc, int64_t n) {
  for (int64_t j = 0; j < n; j++) acc[j] += double(x[j]);
}
DN_CLONES void sum_cols_store(const double* DN_RESTRICT acc, float* DN_RESTRICT out, int64_t n) {
  for (int64_t j = 0; j < n; j++) out[j] = float(acc[j]);
}
DN_CLONES void max_cols_add(const float* DN_RESTRICT x, float* DN_RESTRICT acc, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    float v = x[j], a = acc[j];
    acc[j] = (v > a || v != v) ? v : a;
  }
}

DN_CLONES void upsample_rows(const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t rows, int64_t w) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * w;
    float* y0 = y + r * 4 * w;
    float* y1 = y0 + 2 * w;
    for (int64_t j = 0; j < w; j++) {
      float v = xr[j];
      y0[2 * j] = v;
      y0[2 * j + 1] = v;
    }
    for (int64_t j = 0; j < 2 * w; j++) y1[j] = y0[j];
  }
}

/** rows: output rows (= planes·h/2); each reads two input rows of width w. */
DN_CLONES void avgpool_rows(const float* DN_RESTRICT x, float* DN_RESTRICT y, int64_t rows, int64_t w) {
  const int64_t w2 = w / 2;
  for (int64_t r = 0; r < rows; r++) {
    const float* r0 = x + r * 2 * w;
    const float* r1 = r0 + w;
    float* yr = y + r * w2;
    for (int64_t j = 0; j < w2; j++) {
      double s = (double(r0[2 * j]) + double(r0[2 * j + 1])) + (double(r1[2 * j]) + double(r1[2 * j + 1]));
      yr[j] = float(0.25 * s);
    }
  }
}

DN_CLONES void adamw_loop(float* DN_RESTRICT p, const float* DN_RESTRICT g, float* DN_RESTRICT m,
                          float* DN_RESTRICT v, int64_t n, double lr, double b1, double b2, double eps, double decay,
                          double bc1, double bc2) {
  const double c1 = 1.0 - b1, c2 = 1.0 - b2;
  for (int64_t i = 0; i < n; i++) {
    double gi = g[i];
    double pi = double(p[i]) * decay;
    double mi = b1 * double(m[i]) + c1 * gi;
    double vi = b2 * double(v[i]) + c2 * gi * gi;
    m[i] = float(mi);
    v[i] = float(vi);
    pi -= (lr * (mi / bc1)) / (std::sqrt(vi / bc2) + eps);
    p[i] = float(pi);
  }
}

}  // namespace

// ================================================================ entry points

void unary(int op, const float* x, float* y, int64_t n) {
  // transcendental ops are compute-bound: split finer
  int64_t grain = (op == U_NEG || op == U_ABS || op == U_RELU || op == U_SQUARE) ? kGrain : kGrain / 8;
  parallel_for(n, grain, [&](int64_t b, int64_t e) { unary_loop(op, x + b, y + b, e - b); });
}

void activation_backward(int op, const float* x, const float* dy, float* dx, int64_t n) {
  parallel_for(n, kGrain / 8, [&](int64_t b, int64_t e) { activation_bwd_loop(op, x + b, dy + b, dx + b, e - b); });
}

void binary(int op, const float* a, const int64_t* as, const float* b, const int64_t* bs, const int64_t* shape, int nd,
            float* out) {
  const int64_t* strides[2] = {as, bs};
  Walk<2> wk(strides, shape, nd);
  if (wk.total == 0) return;
  const int64_t inner = wk.inner(), rows = wk.rows();
  const int64_t sa = wk.st[0][wk.nd - 1], sb = wk.st[1][wk.nd - 1];
  const int64_t grain = std::max<int64_t>(1, (op == B_POW ? kGrain / 8 : kGrain) / inner);
  const int64_t base[2] = {0, 0};
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    wk.rows_range(r0, r1, base, [&](const int64_t* off, int64_t row) {
      binary_run(op, a + off[0], sa, b + off[1], sb, out + row * inner, inner);
    });
  });
}

void where(const float* c, const int64_t* cs, const float* a, const int64_t* as, const float* b, const int64_t* bs,
           const int64_t* shape, int nd, float* out) {
  const int64_t* strides[3] = {cs, as, bs};
  Walk<3> wk(strides, shape, nd);
  if (wk.total == 0) return;
  const int64_t inner = wk.inner(), rows = wk.rows();
  const int64_t sc = wk.st[0][wk.nd - 1], sa = wk.st[1][wk.nd - 1], sb = wk.st[2][wk.nd - 1];
  const int64_t base[3] = {0, 0, 0};
  parallel_for(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t r0, int64_t r1) {
    wk.rows_range(r0, r1, base, [&](const int64_t* off, int64_t row) {
      where_run(c + off[0], sc, a + off[1], sa, b + off[2], sb, out + row * inner, inner);
    });
  });
}

void affine(const float* x, float* y, int64_t n, double scale, double shift) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) { affine_loop(x + b, y + b, e - b, scale, shift); });
}

void pow_scalar(const float* x, float* y, int64_t n, double p) {
  parallel_for(n, kGrain / 8, [&](int64_t b, int64_t e) { pow_loop(x + b, y + b, e - b, p); });
}

void clamp(const float* x, float* y, int64_t n, double lo, double hi) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) { clamp_loop(x + b, y + b, e - b, lo, hi); });
}

void reduce(int op, const float* x, float* out, int64_t outer, int64_t size, int64_t inner) {
  if (outer * inner == 0) return;
  if (size == 0) {
    const float v = op == 0 ? 0.0f : -INFINITY;
    std::fill(out, out + outer * inner, v);
    return;
  }
  if (inner == 1) {
    parallel_for(outer, std::max<int64_t>(1, kGrain / size), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; o++)
        out[o] = op == 0 ? float(sum_row(x + o * size, size)) : max_row(x + o * size, size);
    });
    return;
  }
  // Split outer × inner-chunks; each task accumulates its columns over the reduced axis.
  const int64_t chunk = std::min<int64_t>(inner, 4096);
  const int64_t nchunks = (inner + chunk - 1) / chunk;
  const int64_t tasks = outer * nchunks;
  const int64_t per_task = size * std::min(inner, chunk);
  parallel_for(tasks, std::max<int64_t>(1, kGrain / per_task), [&](int64_t b, int64_t e) {
    double* acc = nullptr;
    double local[4096];
    acc = local;
    for (int64_t t = b; t < e; t++) {
      const int64_t o = t / nchunks, j0 = (t % nchunks) * chunk, len = std::min(chunk, inner - j0);
      const float* base = x + o * size * inner + j0;
      float* dst = out + o * inner + j0;
      if (op == 0) {
        sum_cols_init(base, acc, len);
        for (int64_t r = 1; r < size; r++) sum_cols_add(base + r * inner, acc, len);
        sum_cols_store(acc, dst, len);
      } else {
        std::memcpy(dst, base, size_t(len) * sizeof(float));
        for (int64_t r = 1; r < size; r++) max_cols_add(base + r * inner, dst, len);
      }
    }
  });
}

void strided_copy(const float* src, int64_t srcOff, const int64_t* ss, const int64_t* shape, int nd, float* dst,
                  int64_t dstOff, const int64_t* ds, bool accumulate) {
  const int64_t* strides[2] = {ss, ds};
  Walk<2> wk(strides, shape, nd);
  if (wk.total == 0) return;
  const int64_t inner = wk.inner(), rows = wk.rows();
  const int64_t s_in = wk.st[0][wk.nd - 1], d_in = wk.st[1][wk.nd - 1];
  const int64_t base[2] = {srcOff, dstOff};
  // Parallel only when no two positions share a destination (then the order of writes cannot matter):
  // sorted by |stride|, each destination stride must exceed the span of all smaller ones.
  bool injective = true;
  {
    int64_t dsz[kMaxDims], dst_st[kMaxDims];
    int k = 0;
    for (int d = 0; d < wk.nd; d++) { dsz[k] = wk.shape[d]; dst_st[k] = wk.st[1][d] < 0 ? -wk.st[1][d] : wk.st[1][d]; k++; }
    // insertion sort by stride
    for (int i = 1; i < k; i++)
      for (int j = i; j > 0 && dst_st[j] < dst_st[j - 1]; j--) { std::swap(dst_st[j], dst_st[j - 1]); std::swap(dsz[j], dsz[j - 1]); }
    int64_t span = 0;
    for (int i = 0; i < k; i++) {
      if (dsz[i] == 1) continue;
      if (dst_st[i] <= span) { injective = false; break; }
      span += (dsz[i] - 1) * dst_st[i];
    }
  }
  // Transpose-like copies: when the destination is contiguous along another dim than the last, make that
  // dim the innermost one (contiguous stores, strided loads: loads need no read-for-ownership, and the
  // source lines are reused across the next positions). Safe when every destination is written once.
  if (injective && d_in != 1 && wk.nd >= 2) {
    for (int d = 0; d < wk.nd - 1; d++) {
      if (wk.st[1][d] == 1 && wk.shape[d] >= 4) {
        int64_t shp[kMaxDims], s0[kMaxDims], s1[kMaxDims];
        int k = 0;
        for (int e = 0; e < wk.nd; e++)
          if (e != d) { shp[k] = wk.shape[e]; s0[k] = wk.st[0][e]; s1[k] = wk.st[1][e]; k++; }
        shp[k] = wk.shape[d]; s0[k] = wk.st[0][d]; s1[k] = wk.st[1][d]; k++;
        const int64_t* st2[2] = {s0, s1};
        Walk<2> w2(st2, shp, k);
        const int64_t in2 = w2.inner(), s2 = w2.st[0][w2.nd - 1], d2 = w2.st[1][w2.nd - 1];
        parallel_for(w2.rows(), std::max<int64_t>(1, kGrain / in2), [&](int64_t r0, int64_t r1) {
          w2.rows_range(r0, r1, base, [&](const int64_t* off, int64_t) {
            copy_run(src + off[0], s2, dst + off[1], d2, in2, accumulate);
          });
        });
        return;
      }
    }
  }
  auto body = [&](int64_t r0, int64_t r1) {
    wk.rows_range(r0, r1, base, [&](const int64_t* off, int64_t) {
      copy_run(src + off[0], s_in, dst + off[1], d_in, inner, accumulate);
    });
  };
  if (injective) parallel_for(rows, std::max<int64_t>(1, kGrain / inner), body);
  else body(0, rows);
}

void upsample_nearest2x(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t rows = planes * h;
  parallel_for(rows, std::max<int64_t>(1, kGrain / (4 * w + 1)), [&](int64_t b, int64_t e) {
    upsample_rows(x + b * w, y + b * 4 * w, e - b, w);
  });
}

void avg_pool2x2(const float* x, float* y, int64_t planes, int64_t h, int64_t w) {
  const int64_t rows = planes * (h / 2);
  parallel_for(rows, std::max<int64_t>(1, kGrain / (2 * w + 1)), [&](int64_t b, int64_t e) {
    avgpool_rows(x + b * 2 * w, y + b * (w / 2), e - b, w);
  });
}

void gather_rows(const float* table, const int32_t* idx, int64_t n, int64_t d, float* out) {
  parallel_for(n, std::max<int64_t>(1, kGrain / (d + 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) std::memcpy(out + i * d, table + int64_t(idx[i]) * d, size_t(d) * sizeof(float));
  });
}

void scatter_add_rows(const float* dy, const int32_t* idx, int64_t n, int64_t rows, int64_t d, float* out) {
  std::memset(out, 0, size_t(rows * d) * sizeof(float));
  // split columns: each destination element still receives its contributions in index order
  const int64_t cgrain = std::max<int64_t>(16, kGrain / (n + 1));
  parallel_for(d, cgrain, [&](int64_t j0, int64_t j1) {
    for (int64_t i = 0; i < n; i++) {
      const float* s = dy + i * d;
      float* o = out + int64_t(idx[i]) * d;
      for (int64_t j = j0; j < j1; j++) o[j] += s[j];
    }
  });
}

void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double b1, double b2, double eps,
           double wd, double step) {
  const double bc1 = 1.0 - std::pow(b1, step), bc2 = 1.0 - std::pow(b2, step);
  const double decay = 1.0 - lr * wd;
  parallel_for(n, kGrain / 2, [&](int64_t b, int64_t e) {
    adamw_loop(p + b, g + b, m + b, v + b, e - b, lr, b1, b2, eps, decay, bc1, bc2);
  });
}

}  // namespace dn
