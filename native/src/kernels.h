// Kernel entry points behind the N-API layer. Arguments are trusted here: addon.cc validates every
// shape and buffer length before calling. Outputs are written in full (they may be uninitialized memory).
#pragma once
#include <cstdint>

namespace dn {

// The primitive unary ops (src/backends/backend.ts UNARY_OPS, same order), then the fused activations
// (ACTIVATIONS), which only `activation` / `activationBackward` accept.
enum UnaryOp {
  U_NEG, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_SIN, U_COS, U_TANH, U_RELU, U_ABS, U_SQUARE, U_RECIPROCAL, U_ERF,
  U_SIGMOID, U_SILU, U_GELU, U_COUNT
};
constexpr int U_FIRST_ACTIVATION = U_SIGMOID;
enum BinaryOp { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAX, B_MIN, B_EQ, B_GT, B_LT, B_COUNT };

constexpr int kMaxDims = 16;

void unary(int op, const float* x, float* y, int64_t n);
/** dx = dy·act'(x) for the activations (U_SIGMOID … U_GELU). */
void activation_backward(int op, const float* x, const float* dy, float* dx, int64_t n);
/** out over shape[nd] (dense), operands walked with element strides (0 on broadcast dims). Dimensions come
 *  merged by the engine (src/tensor/shape.ts mergeDims); the kernels merge nothing. */
void binary(int op, const float* a, const int64_t* as, const float* b, const int64_t* bs,
            const int64_t* shape, int nd, float* out);
void where(const float* c, const int64_t* cs, const float* a, const int64_t* as, const float* b,
           const int64_t* bs, const int64_t* shape, int nd, float* out);
void affine(const float* x, float* y, int64_t n, double scale, double shift);
void pow_scalar(const float* x, float* y, int64_t n, double p);
void clamp(const float* x, float* y, int64_t n, double lo, double hi);
void reduce(int op /*0 sum, 1 max*/, const float* x, float* out, int64_t outer, int64_t size, int64_t inner);
void strided_copy(const float* src, int64_t srcOff, const int64_t* ss, const int64_t* shape, int nd,
                  float* dst, int64_t dstOff, const int64_t* ds, bool accumulate);
void upsample_nearest2x(const float* x, float* y, int64_t planes, int64_t h, int64_t w);
void avg_pool2x2(const float* x, float* y, int64_t planes, int64_t h, int64_t w);
void gather_rows(const float* table, const int32_t* idx, int64_t n, int64_t d, float* out);
void scatter_add_rows(const float* dy, const int32_t* idx, int64_t n, int64_t rows, int64_t d, float* out);
void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double b1, double b2, double eps,
           double wd, double step);

// norm.cc
/**
 * A group norm with its statistics already computed (mean, rstd [n, groups]), then optionally SiLU, as a
 * convolution applies it to its input while reading it (conv2d / conv2d_backward_weight with `pre`): the
 * normalized tensor silu?((x − mean_g)·rstd_g·gamma_c + beta_c) is never stored. gamma / beta may be null.
 */
struct NormPre {
  const float* mean;
  const float* rstd;
  const float* gamma;
  const float* beta;
  int64_t groups;
  bool silu;
  /** The constants of norm_act (common.h) for channel ch of unit u (image · group): the one rule for them. */
  void constants(int64_t u, int64_t ch, float* mu, float* s, float* b) const {
    *mu = mean[u];
    *s = gamma ? rstd[u] * gamma[ch] : rstd[u];
    *b = beta ? beta[ch] : 0.0f;
  }
  /** Image img's constants for its C channels: mu, s, b [Cp], zero past C. */
  void lanes(int64_t img, int64_t C, int64_t Cp, float* mu, float* s, float* b) const {
    const int64_t cg = C / groups;
    for (int64_t ch = 0; ch < Cp; ch++) {
      if (ch >= C) mu[ch] = s[ch] = b[ch] = 0.0f;
      else constants(img * groups + ch / cg, ch, mu + ch, s + ch, b + ch);
    }
  }
};
/** group_norm's statistics alone (mean, rstd [n, groups]). */
void group_norm_stats(const float* x, int64_t n, int64_t c, int64_t hw, int64_t groups, double eps, float* mean,
                      float* rstd);
/** y = the normalized x of `p` (the same bits as group_norm's output). */
void group_norm_apply(const float* x, const NormPre& p, int64_t n, int64_t c, int64_t hw, float* y);
void group_norm(const float* x, const float* gamma, const float* beta, int64_t n, int64_t c, int64_t hw,
                int64_t groups, double eps, bool silu, float* y, float* mean, float* rstd);
/** dgamma / dbeta may be null (not wanted). Returns false when scratch memory could not be allocated. */
bool group_norm_backward(const float* dy, const float* x, const float* gamma, const float* beta, const float* mean,
                         const float* rstd, int64_t n, int64_t c, int64_t hw, int64_t groups, bool silu, float* dx,
                         float* dgamma, float* dbeta);
void layer_norm(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t d, double eps, float* y,
                float* mean, float* rstd);
bool layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd,
                         int64_t rows, int64_t d, float* dx, float* dgamma, float* dbeta);
void softmax(const float* x, float* y, int64_t rows, int64_t d);
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t d);
void log_softmax(const float* x, float* y, int64_t rows, int64_t d);
void log_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t d);

// gemm.cc
/** The GEMM implementation in use, e.g. "diffuse sgemm avx2 6x16" (ISA, register tile). */
const char* gemm_info();
/** out[bi] = op(A[bi]) · op(B[bi]) (row-major), split over the pool. */
void matmul(const float* a, const float* b, float* out, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta,
            bool tb, int64_t aBatchStride, int64_t bBatchStride);
/** Single-threaded row-major sgemm (our packed kernels; the same result as matmul for the same operands): C = alpha·op(A)·op(B) + beta·C. */
void sgemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// conv.cc
struct ConvGeom {
  int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, oh, ow;
};
/** What a convolution adds to its output after its bias, in this order (that of separate additions, so the
 *  same bits): a per-image bias [n, o] (a time embedding), then a residual [n, o, oh, ow]. Either may be null. */
struct ConvEpilogue {
  const float* image_bias;
  const float* residual;
};
/** y += the epilogue, for paths that add it after the convolution (parallel over output planes). */
void apply_epilogue(float* y, const ConvGeom& g, const ConvEpilogue& e);
/** Return false when scratch memory could not be allocated. With `pre`, the convolution's input is the
 *  normalized x (NormPre): applied as the input is read where the kernels can (Winograd), else stored first.
 *  With `epi`, its additions are made while the output is in cache (Winograd), else after. */
bool conv2d(const float* x, const float* w, const float* bias, const ConvGeom& g, float* y, const NormPre* pre = nullptr,
            const ConvEpilogue* epi = nullptr);
bool conv2d_backward_input(const float* dy, const float* w, const ConvGeom& g, float* dx);
bool conv2d_backward_weight(const float* x, const float* dy, const ConvGeom& g, float* dw, const NormPre* pre = nullptr);
/** Which conv implementation runs here ("direct-avx512", "direct-avx2" or "im2col+gemm"). */
const char* conv_impl();
/** Forces the portable im2col + GEMM path (true) or restores automatic selection (false). */
void set_conv_im2col(bool force);

}  // namespace dn
