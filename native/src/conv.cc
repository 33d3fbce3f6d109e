// conv2d forward / backward: dispatch to the direct kernels (AVX-512 or AVX2) when the CPU has them, otherwise
// (and for geometries they do not cover) im2col + single-threaded GEMMs split across the pool.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common.h"
#include "conv_impl.h"
#include "kernels.h"
#include "pool.h"

namespace dn {
namespace {

// 1: im2col + GEMM forced (DIFFUSE_CONV_IM2COL=1 or convImpl('im2col'), for comparison and tests)
int g_force_im2col = [] {
  const char* s = std::getenv("DIFFUSE_CONV_IM2COL");
  return (s && s[0] == '1') ? 1 : 0;
}();

bool direct_enabled() { return g_force_im2col == 0 && direct_isa() != nullptr; }

/** col[(ci·kh + u)·kw + v][j − j0] for output positions j in [j0, j1) of one image, channels [c0, c1). */
void im2col(const float* x, const ConvGeom& g, int64_t c0, int64_t c1, int64_t j0, int64_t j1, float* col) {
  const int64_t len = j1 - j0;
  for (int64_t c = c0; c < c1; c++) {
    const float* xc = x + c * g.h * g.w;
    for (int64_t u = 0; u < g.kh; u++) {
      for (int64_t v = 0; v < g.kw; v++) {
        float* dst = col + (((c - c0) * g.kh + u) * g.kw + v) * len;
        int64_t j = j0;
        while (j < j1) {
          const int64_t oy = j / g.ow, ox0 = j % g.ow;
          const int64_t run = std::min(g.ow - ox0, j1 - j);
          const int64_t iy = oy * g.sh - g.ph + u;
          float* d = dst + (j - j0);
          if (iy < 0 || iy >= g.h) {
            std::memset(d, 0, size_t(run) * sizeof(float));
          } else {
            const float* row = xc + iy * g.w;
            const int64_t ixb = ox0 * g.sw - g.pw + v;
            if (g.sw == 1 && ixb >= 0 && ixb + run <= g.w) {
              std::memcpy(d, row + ixb, size_t(run) * sizeof(float));
            } else {
              for (int64_t t = 0; t < run; t++) {
                const int64_t ix = ixb + t * g.sw;
                d[t] = (ix >= 0 && ix < g.w) ? row[ix] : 0.0f;
              }
            }
          }
          j += run;
        }
      }
    }
  }
}

/** dx (one image, channels [c0, c1), zeroed by the caller) += col2im(dcol) for all output positions. */
void col2im(const float* dcol, const ConvGeom& g, int64_t c0, int64_t c1, float* dx) {
  const int64_t P = g.oh * g.ow;
  for (int64_t c = c0; c < c1; c++) {
    float* xc = dx + c * g.h * g.w;
    for (int64_t u = 0; u < g.kh; u++) {
      for (int64_t v = 0; v < g.kw; v++) {
        const float* src = dcol + (((c - c0) * g.kh + u) * g.kw + v) * P;
        for (int64_t oy = 0; oy < g.oh; oy++) {
          const int64_t iy = oy * g.sh - g.ph + u;
          if (iy < 0 || iy >= g.h) continue;
          float* row = xc + iy * g.w;
          const float* s = src + oy * g.ow;
          for (int64_t ox = 0; ox < g.ow; ox++) {
            const int64_t ix = ox * g.sw - g.pw + v;
            if (ix >= 0 && ix < g.w) row[ix] += s[ox];
          }
        }
      }
    }
  }
}

bool is_pointwise(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.oh == g.h && g.ow == g.w;
}

bool gemm_conv2d(const float* x, const float* w, const float* bias, const ConvGeom& g, float* y) {
  const int64_t P = g.oh * g.ow, K = g.c * g.kh * g.kw, T = pool_threads();
  const bool pw = is_pointwise(g);
  // units: images × column pieces (pieces only when there are few images), handed out dynamically
  int64_t s = 1;
  if (g.n < 2 * T) s = std::min<int64_t>((2 * T + g.n - 1) / g.n, std::max<int64_t>(1, P / 64));
  bool ok = true;
  parallel_dynamic(g.n * s, [&](int tid, int64_t u) {
    const int64_t img = u / s, piece = u % s;
    const int64_t j0 = P * piece / s, j1 = P * (piece + 1) / s;
    if (j0 >= j1) return;
    const float* xi = x + img * g.c * g.h * g.w;
    float* yi = y + img * g.o * P;
    const float* col;
    int64_t ldb;
    if (pw) {
      col = xi + j0;
      ldb = P;
    } else {
      float* buf = scratch(0, tid, size_t(K * (j1 - j0)));
      if (!buf) { ok = false; return; }
      im2col(xi, g, 0, g.c, j0, j1, buf);
      col = buf;
      ldb = j1 - j0;
    }
    sgemm1(false, false, g.o, j1 - j0, K, 1.0f, w, K, col, ldb, 0.0f, yi + j0, P);
    if (bias)
      for (int64_t o = 0; o < g.o; o++) {
        float* r = yi + o * P;
        const float bo = bias[o];
        for (int64_t j = j0; j < j1; j++) r[j] += bo;
      }
  }, double(g.n) * double(g.o) * double(K) * double(P) > 1e6);
  return ok;
}

bool gemm_conv2d_backward_input(const float* dy, const float* w, const ConvGeom& g, float* dx) {
  const int64_t P = g.oh * g.ow, KK = g.kh * g.kw, K = g.c * KK, T = pool_threads();
  const bool pw = is_pointwise(g);
  int64_t s = 1;  // channel pieces per image
  if (g.n < 2 * T) s = std::min<int64_t>((2 * T + g.n - 1) / g.n, g.c);
  bool ok = true;
  parallel_dynamic(g.n * s, [&](int tid, int64_t u) {
    const int64_t img = u / s, piece = u % s;
    const int64_t c0 = g.c * piece / s, c1 = g.c * (piece + 1) / s;
    if (c0 >= c1) return;
    const float* dyi = dy + img * g.o * P;
    float* dxi = dx + img * g.c * g.h * g.w;
    // dcol[c0·KK .. c1·KK, :] = Wᵀ[rows] · dY: rows of Wᵀ are columns c0·KK.. of W [o, K]
    if (pw) {
      sgemm1(true, false, c1 - c0, P, g.o, 1.0f, w + c0, K, dyi, P, 0.0f, dxi + c0 * P, P);
      return;
    }
    float* buf = scratch(0, tid, size_t((c1 - c0) * KK * P));
    if (!buf) { ok = false; return; }
    sgemm1(true, false, (c1 - c0) * KK, P, g.o, 1.0f, w + c0 * KK, K, dyi, P, 0.0f, buf, P);
    std::memset(dxi + c0 * g.h * g.w, 0, size_t((c1 - c0) * g.h * g.w) * sizeof(float));
    col2im(buf, g, c0, c1, dxi);
  }, double(g.n) * double(g.o) * double(K) * double(P) > 1e6);
  return ok;
}

bool gemm_conv2d_backward_weight(const float* x, const float* dy, const ConvGeom& g, float* dw) {
  const int64_t P = g.oh * g.ow, K = g.c * g.kh * g.kw, T = pool_threads();
  const bool pw = is_pointwise(g);
  const int64_t wsize = g.o * K;
  // Work items: image groups × output-channel ranges, dynamic. Each image group accumulates into its own
  // partial dW (o ranges write disjoint rows of it); partials are summed in group order, so the result
  // does not depend on the thread count or on scheduling.
  const int64_t groups = std::max<int64_t>(1, std::min<int64_t>({g.n, 8, g.n * P / 512}));
  const int64_t ogroups = groups >= 2 * T ? 1 : std::min<int64_t>(g.o, 2 * T);
  float* partial = scratch(1, kShared, size_t(groups * wsize));
  if (!partial) return false;
  std::memset(partial, 0, size_t(groups * wsize) * sizeof(float));
  bool ok = true;
  parallel_dynamic(groups * ogroups, [&](int tid, int64_t item) {
    const int64_t gi = item / ogroups, og = item % ogroups;
    const int64_t i0 = g.n * gi / groups, i1 = g.n * (gi + 1) / groups;
    const int64_t o0 = g.o * og / ogroups, o1 = g.o * (og + 1) / ogroups;
    if (i0 >= i1 || o0 >= o1) return;
    float* pdw = partial + gi * wsize;
    for (int64_t img = i0; img < i1; img++) {
      const float* xi = x + img * g.c * g.h * g.w;
      const float* col;
      if (pw) {
        col = xi;
      } else {
        float* buf = scratch(0, tid, size_t(K * P));
        if (!buf) { ok = false; return; }
        im2col(xi, g, 0, g.c, 0, P, buf);
        col = buf;
      }
      // dW[o0:o1] += dY[o0:o1] · colᵀ
      sgemm1(false, true, o1 - o0, K, P, 1.0f, dy + img * g.o * P + o0 * P, P, col, P, 1.0f, pdw + o0 * K, K);
    }
  }, double(g.n) * double(g.o) * double(K) * double(P) > 1e6);
  if (!ok) return false;
  parallel_for(wsize, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      float s = 0.0f;
      for (int64_t gi = 0; gi < groups; gi++) s += partial[gi * wsize + i];
      dw[i] = s;
    }
  });
  return true;
}

}  // namespace

const char* conv_impl() {
  if (!direct_enabled()) return "im2col+gemm";
  const bool avx512 = std::strcmp(direct_isa(), "avx512") == 0, simd128 = std::strcmp(direct_isa(), "simd128") == 0;
  if (simd128) return winograd_enabled(-1) ? "winograd+direct-simd128" : "direct-simd128";
  if (winograd_enabled(-1)) return avx512 ? "winograd+direct-avx512" : "winograd+direct-avx2";
  return avx512 ? "direct-avx512" : "direct-avx2";
}

void set_conv_im2col(bool force) { g_force_im2col = force ? 1 : 0; }

/** run(input) on the normalized x of `pre`, stored first: for the paths that cannot apply it as they read. */
template <class Run>
bool with_normalized_input(const float* x, const ConvGeom& g, const NormPre& pre, Run run) {
  const size_t count = size_t(g.n * g.c * g.h * g.w);
  if (count == 0) return run(x);
  float* t = static_cast<float*>(std::malloc(count * sizeof(float)));
  if (!t) return false;
  group_norm_apply(x, pre, g.n, g.c, g.h * g.w, t);
  const bool ok = run(t);
  std::free(t);
  return ok;
}

void apply_epilogue(float* y, const ConvGeom& g, const ConvEpilogue& e) {
  const int64_t P = g.oh * g.ow;
  if (!e.image_bias && !e.residual) return;
  parallel_for(g.n * g.o, std::max<int64_t>(1, 16384 / (P + 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      float* r = y + p * P;
      if (e.image_bias) {
        const float t = e.image_bias[p];
        for (int64_t j = 0; j < P; j++) r[j] += t;
      }
      if (e.residual) {
        const float* s = e.residual + p * P;
        for (int64_t j = 0; j < P; j++) r[j] += s[j];
      }
    }
  });
}

bool conv2d(const float* x, const float* w, const float* bias, const ConvGeom& g, float* y, const NormPre* pre,
            const ConvEpilogue* epi) {
  if (g.n * g.o * g.oh * g.ow == 0) return true;
  if (g.c * g.kh * g.kw == 0) {  // empty reduction: bias only
    const int64_t P = g.oh * g.ow;
    for (int64_t i = 0; i < g.n * g.o; i++) std::fill(y + i * P, y + (i + 1) * P, bias ? bias[i % g.o] : 0.0f);
    if (epi) apply_epilogue(y, g, *epi);
    return true;
  }
  if (direct_enabled() && !is_pointwise(g)) {  // 1×1: a plain GEMM, the packed kernels do better
    bool oom = false;
    if (direct_conv2d(x, w, bias, g, y, &oom, pre, epi)) return true;
    if (oom) return false;
  }
  if (pre) return with_normalized_input(x, g, *pre, [&](const float* t) { return conv2d(t, w, bias, g, y, nullptr, epi); });
  if (!gemm_conv2d(x, w, bias, g, y)) return false;
  if (epi) apply_epilogue(y, g, *epi);
  return true;
}

bool conv2d_backward_input(const float* dy, const float* w, const ConvGeom& g, float* dx) {
  if (g.n * g.c * g.h * g.w == 0) return true;
  if (g.o * g.kh * g.kw * g.oh * g.ow == 0) {
    std::memset(dx, 0, size_t(g.n * g.c * g.h * g.w) * sizeof(float));
    return true;
  }
  if (direct_enabled() && !is_pointwise(g)) {
    bool oom = false;
    if (direct_conv2d_backward_input(dy, w, g, dx, &oom)) return true;
    if (oom) return false;
  }
  return gemm_conv2d_backward_input(dy, w, g, dx);
}

bool conv2d_backward_weight(const float* x, const float* dy, const ConvGeom& g, float* dw, const NormPre* pre) {
  const int64_t wsize = g.o * g.c * g.kh * g.kw;
  if (wsize == 0) return true;
  if (g.n * g.oh * g.ow == 0) {
    std::memset(dw, 0, size_t(wsize) * sizeof(float));
    return true;
  }
  if (direct_enabled()) {
    bool oom = false;
    if (direct_conv2d_backward_weight(x, dy, g, dw, &oom, pre)) return true;
    if (oom) return false;
  }
  if (pre) return with_normalized_input(x, g, *pre, [&](const float* t) { return conv2d_backward_weight(t, dy, g, dw); });
  return gemm_conv2d_backward_weight(x, dy, g, dw);
}

}  // namespace dn
