// The WebAssembly build's entry points: one export per kernel of native/src/kernels.h, over pointers into
// linear memory. src/backends/wasm/kernels.ts copies the operands in, calls these and copies the results out;
// it has checked every length against the shapes (as native/src/addon.cc does for the addon), so nothing
// here re-checks. Sizes arrive as int32 (a wasm32 memory holds < 2^30 floats) and are widened here.
#include <cstdint>
#include <cstring>

#include "../src/conv_impl.h"
#include "../src/cpu.h"
#include "../src/kernels.h"
#include "../src/pool.h"

#define DN_EXPORT(name) extern "C" __attribute__((export_name(#name)))

using namespace dn;

namespace {
void widen(const int32_t* s, int n, int64_t* d) {
  for (int i = 0; i < n; i++) d[i] = s[i];
}
}  // namespace

DN_EXPORT(dn_unary) void dn_unary(int op, const float* x, float* y, int n) { unary(op, x, y, n); }
DN_EXPORT(dn_activation_backward) void dn_activation_backward(int op, const float* x, const float* dy, float* dx, int n) {
  activation_backward(op, x, dy, dx, n);
}

DN_EXPORT(dn_binary) void dn_binary(int op, const float* a, const int32_t* as, const float* b, const int32_t* bs,
                                    const int32_t* shape, int nd, float* out) {
  int64_t a64[kMaxDims], b64[kMaxDims], s64[kMaxDims];
  widen(as, nd, a64), widen(bs, nd, b64), widen(shape, nd, s64);
  binary(op, a, a64, b, b64, s64, nd, out);
}

DN_EXPORT(dn_where) void dn_where(const float* c, const int32_t* cs, const float* a, const int32_t* as, const float* b,
                                  const int32_t* bs, const int32_t* shape, int nd, float* out) {
  int64_t c64[kMaxDims], a64[kMaxDims], b64[kMaxDims], s64[kMaxDims];
  widen(cs, nd, c64), widen(as, nd, a64), widen(bs, nd, b64), widen(shape, nd, s64);
  where(c, c64, a, a64, b, b64, s64, nd, out);
}

DN_EXPORT(dn_affine) void dn_affine(const float* x, float* y, int n, double s, double t) { affine(x, y, n, s, t); }
DN_EXPORT(dn_pow_scalar) void dn_pow_scalar(const float* x, float* y, int n, double p) { pow_scalar(x, y, n, p); }
DN_EXPORT(dn_clamp) void dn_clamp(const float* x, float* y, int n, double lo, double hi) { clamp(x, y, n, lo, hi); }
DN_EXPORT(dn_reduce) void dn_reduce(int op, const float* x, float* out, int outer, int size, int inner) {
  reduce(op, x, out, outer, size, inner);
}

DN_EXPORT(dn_strided_copy) void dn_strided_copy(const float* src, int so, const int32_t* ss, const int32_t* shape, int nd,
                                                float* dst, int doff, const int32_t* ds, int acc) {
  int64_t s64[kMaxDims], d64[kMaxDims], sh64[kMaxDims];
  widen(ss, nd, s64), widen(ds, nd, d64), widen(shape, nd, sh64);
  strided_copy(src, so, s64, sh64, nd, dst, doff, d64, acc != 0);
}

DN_EXPORT(dn_matmul) void dn_matmul(const float* a, const float* b, float* out, int batch, int m, int n, int k, int ta,
                                    int tb, int sa, int sb) {
  if (k == 0) { std::memset(out, 0, size_t(batch) * size_t(m) * size_t(n) * sizeof(float)); return; }
  matmul(a, b, out, batch, m, n, k, ta != 0, tb != 0, sa, sb);
}

namespace {
ConvGeom geom(const int32_t* g) {
  return ConvGeom{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12]};
}
}  // namespace

// The convolutions return 0 when scratch memory could not be allocated.
DN_EXPORT(dn_conv2d) int dn_conv2d(const float* x, const float* w, const float* bias, const int32_t* g, float* y) {
  return conv2d(x, w, bias, geom(g), y);
}
DN_EXPORT(dn_conv2d_backward_input) int dn_conv2d_backward_input(const float* dy, const float* w, const int32_t* g, float* dx) {
  return conv2d_backward_input(dy, w, geom(g), dx);
}
DN_EXPORT(dn_conv2d_backward_weight) int dn_conv2d_backward_weight(const float* x, const float* dy, const int32_t* g, float* dw) {
  return conv2d_backward_weight(x, dy, geom(g), dw);
}

// The norm inside the convolution (kernels.h NormPre, ConvEpilogue); image_bias / residual may be 0.
DN_EXPORT(dn_group_norm_stats) void dn_group_norm_stats(const float* x, int n, int c, int hw, int groups, double eps,
                                                        float* mean, float* rstd) {
  group_norm_stats(x, n, c, hw, groups, eps, mean, rstd);
}
DN_EXPORT(dn_conv2d_normed) int dn_conv2d_normed(const float* x, const float* gamma, const float* beta, const float* mean,
                                                 const float* rstd, int groups, int silu, const float* w, const float* bias,
                                                 const float* image_bias, const float* residual, const int32_t* g, float* y) {
  const NormPre pre{mean, rstd, gamma, beta, groups, silu != 0};
  const ConvEpilogue epi{image_bias, residual};
  return conv2d(x, w, bias, geom(g), y, &pre, &epi);
}
DN_EXPORT(dn_conv2d_backward_weight_normed) int dn_conv2d_backward_weight_normed(
    const float* x, const float* gamma, const float* beta, const float* mean, const float* rstd, int groups, int silu,
    const float* dy, const int32_t* g, float* dw) {
  const NormPre pre{mean, rstd, gamma, beta, groups, silu != 0};
  return conv2d_backward_weight(x, dy, geom(g), dw, &pre);
}

DN_EXPORT(dn_gather_rows) void dn_gather_rows(const float* table, const int32_t* idx, int n, int d, float* out) {
  gather_rows(table, idx, n, d, out);
}
DN_EXPORT(dn_scatter_add_rows) void dn_scatter_add_rows(const float* dy, const int32_t* idx, int n, int rows, int d, float* out) {
  scatter_add_rows(dy, idx, n, rows, d, out);
}

DN_EXPORT(dn_group_norm) void dn_group_norm(const float* x, const float* gamma, const float* beta, int n, int c, int hw,
                                            int groups, double eps, int silu, float* y, float* mean, float* rstd) {
  group_norm(x, gamma, beta, n, c, hw, groups, eps, silu != 0, y, mean, rstd);
}
DN_EXPORT(dn_group_norm_backward) int dn_group_norm_backward(const float* dy, const float* x, const float* gamma,
                                                             const float* beta, const float* mean, const float* rstd, int n,
                                                             int c, int hw, int groups, int silu, float* dx, float* dgamma,
                                                             float* dbeta) {
  return group_norm_backward(dy, x, gamma, beta, mean, rstd, n, c, hw, groups, silu != 0, dx, dgamma, dbeta);
}
DN_EXPORT(dn_layer_norm) void dn_layer_norm(const float* x, const float* gamma, const float* beta, int rows, int d, double eps,
                                            float* y, float* mean, float* rstd) {
  layer_norm(x, gamma, beta, rows, d, eps, y, mean, rstd);
}
DN_EXPORT(dn_layer_norm_backward) int dn_layer_norm_backward(const float* dy, const float* x, const float* gamma,
                                                             const float* mean, const float* rstd, int rows, int d,
                                                             float* dx, float* dgamma, float* dbeta) {
  return layer_norm_backward(dy, x, gamma, mean, rstd, rows, d, dx, dgamma, dbeta);
}
DN_EXPORT(dn_softmax) void dn_softmax(const float* x, float* y, int rows, int d) { softmax(x, y, rows, d); }
DN_EXPORT(dn_softmax_backward) void dn_softmax_backward(const float* y, const float* dy, float* dx, int rows, int d) {
  softmax_backward(y, dy, dx, rows, d);
}
DN_EXPORT(dn_log_softmax) void dn_log_softmax(const float* x, float* y, int rows, int d) { log_softmax(x, y, rows, d); }
DN_EXPORT(dn_log_softmax_backward) void dn_log_softmax_backward(const float* y, const float* dy, float* dx, int rows, int d) {
  log_softmax_backward(y, dy, dx, rows, d);
}
DN_EXPORT(dn_upsample_nearest2x) void dn_upsample_nearest2x(const float* x, float* y, int planes, int h, int w) {
  upsample_nearest2x(x, y, planes, h, w);
}
DN_EXPORT(dn_avg_pool2x2) void dn_avg_pool2x2(const float* x, float* y, int planes, int h, int w) {
  avg_pool2x2(x, y, planes, h, w);
}
DN_EXPORT(dn_adamw) void dn_adamw(float* p, const float* g, float* m, float* v, int n, double lr, double b1, double b2,
                                  double eps, double wd, double step) {
  adamw(p, g, m, v, n, lr, b1, b2, eps, wd, step);
}
/** s ← s + a·(v − s) (the EMA update), in float arithmetic like the js reference's Float32Array stores. */
DN_EXPORT(dn_lerp) void dn_lerp(float* s, const float* v, int n, double a) {
  for (int i = 0; i < n; i++) s[i] = float(double(s[i]) + a * (double(v[i]) - double(s[i])));
}

/** "simd128" or "simd128+relaxed" (fused multiply-add), and the convolution implementation. */
DN_EXPORT(dn_isa) const char* dn_isa() {
#if defined(__wasm_relaxed_simd__)
  return "simd128+relaxed";
#else
  return "simd128";
#endif
}
DN_EXPORT(dn_conv_impl) const char* dn_conv_impl() { return conv_impl(); }
DN_EXPORT(dn_winograd) int dn_winograd(int enable) { return winograd_enabled(enable); }
