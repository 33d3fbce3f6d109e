// Direct convolution for x86-64 CPUs with AVX-512F or AVX2+FMA (kernels compiled in target regions,
// chosen at run time; other CPUs use the im2col + GEMM path in conv.cc).
//
// Output channels are the vector lanes (tiles of 2 vectors, a 1-vector tail), input pixels are broadcast
// from a zero-padded copy of one image, so there is no im2col matrix at all:
//   forward      acc[o-lanes][NP pixels of one output row] += W[c,u,v][o-lanes] · Xpad[c][oy·sh+u][ox·sw+v]
//   backward-in  the same kernel on dY with the flipped, transposed weights (stride 1)
//   backward-w   acc[o-lanes][3×3 taps] += dYᵀ[p][o-lanes] · Xpad[c][oy·sh+u][ox·sw+v], summed over p
// A k-step is 2·NP FMAs for 2 vector loads and NP broadcasts: FMA bound on Zen 4 / Skylake-X / Haswell.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "common.h"
#include "conv_impl.h"
#include "cpu.h"
#include "pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DN_HAVE_DIRECT 1
#define DN_DIRECT_X86 1
#include <immintrin.h>
#elif defined(__wasm_simd128__)
// The WebAssembly build (src/backends/wasm): the same kernels on 4-lane SIMD128 vectors.
#define DN_HAVE_DIRECT 1
#include <wasm_simd128.h>
#endif

namespace dn {

#if !defined(DN_HAVE_DIRECT)

const char* direct_isa() { return nullptr; }
bool direct_prefer_avx2(int) { return false; }
int winograd_tile_setting(int) { return 0; }
bool direct_conv2d(const float*, const float*, const float*, const ConvGeom&, float*, bool*, const NormPre*,
                   const ConvEpilogue*) { return false; }
bool direct_conv2d_backward_input(const float*, const float*, const ConvGeom&, float*, bool*) { return false; }
bool direct_conv2d_backward_weight(const float*, const float*, const ConvGeom&, float*, bool*, const NormPre*) { return false; }

#else

namespace {

constexpr int kMaxNPAll = 14;

using FwdFn = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*);
using BwwFn = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*);
using WinoInFn = void (*)(const float*, int64_t, int64_t, int64_t, float*, int64_t, int64_t);
using WinoOutFn = void (*)(const float*, int64_t, int64_t, float*);
using TransposeFn = void (*)(const float*, int64_t, int64_t, int64_t, float*, int64_t);
using WinoDyFn = void (*)(const float* const*, int64_t, float*, int64_t);
using RedFn = void (*)(const float*, int64_t, int64_t, const float*, float*);
using NormRowsFn = void (*)(float*, int64_t, int64_t, const float*);

struct KernelSet {
  int W = 0;       // lanes per vector
  int max_np = 0;  // pixels per forward tile
  int bww_nv = 0;  // vectors per backward-weight tile
  FwdFn fwd[2][2][kMaxNPAll] = {};  // [nv − 1][sw − 1][np − 1]
  BwwFn bww[2][2] = {};             // [nv − 1][sw − 1]
  // Winograd transforms, [0] F(2×2, 3×3), [1] F(4×4, 3×3) (wino_set(m)); then [nv − 1]
  WinoInFn wino_in[2] = {};
  WinoOutFn wino_out[2][2] = {};
  WinoDyFn wino_dy[2][2] = {};
  TransposeFn transpose = nullptr;
  RedFn red[2][kMaxNPAll] = {};     // [nv − 1][np − 1]
  NormRowsFn norm_rows[2] = {};     // [silu]
};

}  // namespace

#if defined(DN_DIRECT_X86)
// ---- AVX-512F: 32 zmm → 2 × 14 accumulators
namespace cd_avx512 {
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
// predictive commoning would carry broadcast values across taps through the stack (no registers left)
#pragma GCC target("avx512f")
#pragma GCC optimize("no-predictive-commoning")
#endif
#define CD_W 16
#define CD_MAX_NP 14
#define CD_BWW_NV 2
#include "conv_direct_kernels.inc"
#undef CD_W
#undef CD_MAX_NP
#undef CD_BWW_NV
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
}  // namespace cd_avx512

// ---- AVX2 + FMA: 16 ymm → 2 × 6 accumulators
namespace cd_avx2 {
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC optimize("no-predictive-commoning")
#endif
#define CD_W 8
#define CD_MAX_NP 6
#define CD_BWW_NV 1
#include "conv_direct_kernels.inc"
#undef CD_W
#undef CD_MAX_NP
#undef CD_BWW_NV
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
}  // namespace cd_avx2
#else
// ---- WebAssembly SIMD128: V8 maps v128 onto 16 xmm registers on x86-64 → 2 × 6 accumulators, as AVX2
namespace cd_wasm {
#define CD_W 4
#define CD_MAX_NP 6
#define CD_BWW_NV 1
#include "conv_direct_kernels.inc"
#undef CD_W
#undef CD_MAX_NP
#undef CD_BWW_NV
}  // namespace cd_wasm
#endif

namespace {

/** The kernel set for the ISA in effect (cpu.h: the CPU's, capped by DIFFUSE_ISA / isa()): AVX-512, else
 *  AVX2+FMA, else none (the im2col + GEMM path). With prefer_avx2 (convImpl('avx2') / DIFFUSE_CONV_ISA=avx2:
 *  testing) the AVX2 kernels even on AVX-512 CPUs. */
bool g_prefer_avx2 = [] {
  const char* s = std::getenv("DIFFUSE_CONV_ISA");
  return s && std::strcmp(s, "avx2") == 0;
}();

const KernelSet* kernels() {
#if !defined(DN_DIRECT_X86)
  static const KernelSet kw = [] { KernelSet k; cd_wasm::fill_kernel_set(k); return k; }();
  return &kw;
#else
  // Each set is built only on a CPU that runs it: filling it runs code compiled for that ISA.
  const Isa isa = active_isa();
  if (isa == Isa::Avx512 && !g_prefer_avx2) {
    static const KernelSet k512 = [] { KernelSet k; cd_avx512::fill_kernel_set(k); return k; }();
    return &k512;
  }
  if (isa >= Isa::Avx2) {
    static const KernelSet k2 = [] { KernelSet k; cd_avx2::fill_kernel_set(k); return k; }();
    return &k2;
  }
  return nullptr;
#endif
}

/** Zero-padded copy of channels [c0, c1) of one image: xp[(c − c0)·cstride + i·Wp + j] = x[c][i − pt][j − pl]
 *  (0 outside), i < Hp, j < Wp; cstride = Hp·Wp by default. pt / pl may be negative (rows / columns skipped). */
void pad_image(const float* x, int64_t c0, int64_t c1, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t Hp,
               int64_t Wp, float* xp, int64_t cstride = -1) {
  if (cstride < 0) cstride = Hp * Wp;
  const int64_t j_lo = std::max<int64_t>(0, pl), j_hi = std::min<int64_t>(Wp, W + pl);  // copied column range
  for (int64_t c = c0; c < c1; c++) {
    const float* xc = x + c * H * W;
    float* pc = xp + (c - c0) * cstride;
    for (int64_t i = 0; i < Hp; i++) {
      float* d = pc + i * Wp;
      const int64_t si = i - pt;
      if (si < 0 || si >= H || j_lo >= j_hi) {
        std::memset(d, 0, size_t(Wp) * sizeof(float));
        continue;
      }
      if (j_lo > 0) std::memset(d, 0, size_t(j_lo) * sizeof(float));
      std::memcpy(d + j_lo, xc + si * W + (j_lo - pl), size_t(j_hi - j_lo) * sizeof(float));
      if (j_hi < Wp) std::memset(d + j_hi, 0, size_t(Wp - j_hi) * sizeof(float));
    }
  }
}

/** Output-channel tiles: 2 vectors (2W lanes) each, and a 1-vector tail when W lanes suffice. */
struct Tiles {
  int64_t count = 0;
  int64_t lanes_total = 0;
  int64_t start[2048];
  int64_t lanes_before[2048];  // Σ lanes of the tiles before
  int lanes[2048];
  Tiles(int64_t O, int W, int max_nv) {
    for (int64_t o = 0; o < O;) {
      const int64_t rem = O - o;
      const int l = (rem <= W || max_nv == 1) ? W : 2 * W;
      start[count] = o;
      lanes[count] = l;
      lanes_before[count] = lanes_total;
      lanes_total += l;
      count++;
      o += l;
    }
  }
};
constexpr int64_t kMaxChannels = 8192;  // ≤ 2048 tiles (and more than any real layer)

/** Packs weights for the forward form: for every tile, [C][KH][KW][lanes] (zero past O), tile t at
 *  C·KH·KW·lanes_before[t]. */
void pack_forward(const float* w, int64_t O, int64_t C, int64_t KH, int64_t KW, const Tiles& tiles, float* pk) {
  for (int64_t t = 0; t < tiles.count; t++) {
    const int L = tiles.lanes[t];
    const int64_t o0 = tiles.start[t];
    float* dst = pk + C * KH * KW * tiles.lanes_before[t];
    for (int64_t c = 0; c < C; c++)
      for (int64_t q = 0; q < KH * KW; q++) {
        float* d = dst + (c * KH * KW + q) * L;
        for (int l = 0; l < L; l++) d[l] = o0 + l < O ? w[((o0 + l) * C + c) * KH * KW + q] : 0.0f;
      }
  }
}

/** Whether two float arrays hold the same bits: blocks of 64 words OR-reduced (vectorizes; wasi-libc's
 *  memcmp goes byte by byte). */
bool same_bits(const float* a, const float* b, size_t n) {
  uint32_t x[64], y[64];
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    std::memcpy(x, a + i, sizeof x);
    std::memcpy(y, b + i, sizeof y);
    uint32_t d = 0;
    for (int j = 0; j < 64; j++) d |= x[j] ^ y[j];
    if (d) return false;
  }
  return std::memcmp(a + i, b + i, (n - i) * sizeof(float)) == 0;
}

/** Packed weights of recent small forward convolutions, kept while the weights are unchanged. A sampler calls
 *  the same layers with the same weights at every step, and at batch 1 packing them (the Winograd transform
 *  above all) costs about as much as the convolution. A hit needs the same form and sizes and weights equal
 *  byte for byte (compared in full, so weights updated in place always miss); least recently used entries go
 *  first, within a fixed budget. Used only by the JS thread's top-level calls (never inside pool tasks). */
class PackedWeightCache {
 public:
  /** The packed weights for w (o·c·kh·kw floats) in `form` (the layout: 2·lanes + 0 direct, + 1 Winograd), packing them with
   *  pack(dst) on a miss; nullptr when they do not fit the budget or memory is short (the caller packs into
   *  scratch instead). The pointer stays valid until the next call. */
  template <class Pack>
  const float* get(int form, int64_t o, int64_t c, int64_t kh, int64_t kw, const float* w, size_t packed_floats, Pack pack) {
    const size_t raw = size_t(o * c * kh * kw), cost = raw + packed_floats;
    if (cost > kBudgetFloats / 4) return nullptr;
    clock_++;
    for (Entry& e : entries_)
      if (e.raw && e.form == form && e.o == o && e.c == c && e.kh == kh && e.kw == kw &&
          same_bits(e.raw, w, raw)) {
        e.used = clock_;
        return e.packed;
      }
    // the same array with new contents (weights updated in place, as in training): its old packing is stale for
    // good, so it goes now instead of filling the budget with one dead entry per step
    for (Entry& e : entries_)
      if (e.raw && e.src == w && e.form == form) evict(e);
    while (used_ + cost > kBudgetFloats) evict_oldest();
    Entry* slot = free_slot();
    if (!slot) { evict_oldest(); slot = free_slot(); }
    float* r = static_cast<float*>(std::malloc(raw * sizeof(float)));
    float* pk = static_cast<float*>(std::aligned_alloc(64, (packed_floats * sizeof(float) + 63) & ~size_t(63)));
    if (!r || !pk) { std::free(r); std::free(pk); return nullptr; }
    std::memcpy(r, w, raw * sizeof(float));
    pack(pk);
    *slot = Entry{form, o, c, kh, kw, w, r, pk, cost, clock_};
    used_ += cost;
    return pk;
  }

 private:
  static constexpr size_t kBudgetFloats = size_t(8) << 20;  // 32 MiB
  struct Entry {
    int form = 0;
    int64_t o = 0, c = 0, kh = 0, kw = 0;
    const float* src = nullptr;  // the caller's array the raw copy was taken from (compared by address only)
    float* raw = nullptr;
    float* packed = nullptr;
    size_t cost = 0;
    uint64_t used = 0;
  };
  Entry* free_slot() {
    for (Entry& e : entries_) if (!e.raw) return &e;
    return nullptr;
  }
  void evict(Entry& e) {
    std::free(e.raw);
    std::free(e.packed);
    used_ -= e.cost;
    e = Entry{};
  }
  void evict_oldest() {
    Entry* old = nullptr;
    for (Entry& e : entries_) if (e.raw && (!old || e.used < old->used)) old = &e;
    if (old) evict(*old);
  }
  Entry entries_[64];
  size_t used_ = 0;
  uint64_t clock_ = 0;
};

PackedWeightCache& packed_weight_cache() {
  static PackedWeightCache cache;
  return cache;
}

/** Whether a forward convolution should take its packed weights from the cache: few output positions per
 *  weight (packing is then a large share of the work), on the JS thread. */
bool use_packed_cache(const ConvGeom& g) { return g.n * g.oh * g.ow < 4096 && !pool_in_task(); }

/** Packs the weights of one backward-input phase (a, b) of a stride (sh, sw) convolution: the forward-form
 *  kernel over dY has input channels o, output channels (lanes) c and taps (j, k) ∈ [0, Ja) × [0, Kb),
 *  tap (j, k) = W[o][c][a + sh·(Ja−1−j)][b + sw·(Kb−1−k)]. */
void pack_backward_phase(const float* w, int64_t O, int64_t C, int64_t KH, int64_t KW, int64_t sh, int64_t sw,
                         int64_t a, int64_t b, int64_t Ja, int64_t Kb, const Tiles& tiles, float* pk) {
  for (int64_t t = 0; t < tiles.count; t++) {
    const int L = tiles.lanes[t];
    const int64_t c0 = tiles.start[t];
    float* dst = pk + O * Ja * Kb * tiles.lanes_before[t];
    for (int64_t o = 0; o < O; o++)
      for (int64_t j = 0; j < Ja; j++)
        for (int64_t k = 0; k < Kb; k++) {
          const int64_t u = a + sh * (Ja - 1 - j), v = b + sw * (Kb - 1 - k);
          float* d = dst + ((o * Ja + j) * Kb + k) * L;
          for (int l = 0; l < L; l++) d[l] = c0 + l < C ? w[((o * C + c0 + l) * KH + u) * KW + v] : 0.0f;
        }
  }
}

/** One output grid of a direct convolution in forward form:
 *  y[img][o][y0 + sy·oy][x0 + sx·ox] = bias[o] + Σ_{c,u,v} wk[c][u][v][o] · xpad[c][oy·sh + u][ox·sw + v]
 *  for oy < OH, ox < OW, where xpad[c][i][j] = x[c][i − pt][j − pl] (zero outside). KH·KW = 0: zeros. */
struct Phase {
  int64_t KH = 0, KW = 0, pt = 0, pl = 0, OH = 0, OW = 0, y0 = 0, x0 = 0;
  const float* wpk = nullptr;  // packed weights of this phase (tile t at C·KH·KW·lanes_before[t])
};

struct DirectFwd {
  const float* x;
  int64_t n, C, H, W;  // input [n][C][H][W]
  int64_t O, sh, sw;   // output channels; input strides
  int64_t YH, YW, sy, sx;  // output plane [n][O][YH][YW]; output strides of the phase grids
  const Tiles* tiles;
  const float* bias;  // [O] or null
  float* y;
  int nphases;
  Phase phase[16];
};

bool run_direct_fwd(const KernelSet& ks, const DirectFwd& d) {
  const int64_t nt = d.tiles->count, YP = d.YH * d.YW;
  const int T = pool_threads();
  int64_t maxOH = 0;
  for (int f = 0; f < d.nphases; f++) maxOH = std::max(maxOH, d.phase[f].OH);
  // units = (image, phase, block of output rows), all channel tiles; handed out dynamically. Row blocks only
  // when there are few images (each unit pads its image once).
  int64_t rb = 1;
  while (d.n * d.nphases * rb < 4 * T && rb < maxOH) rb++;
  const int64_t units = d.n * d.nphases * rb;
  const int swi = int(d.sw) - 1;
  double fmas = 0;  // small convolutions run on the calling thread
  for (int f = 0; f < d.nphases; f++)
    fmas += double(d.n) * double(d.O) * double(d.C) * double(d.phase[f].KH * d.phase[f].KW) * double(d.phase[f].OH * d.phase[f].OW);
  bool ok = true;
  parallel_dynamic(units, [&](int tid, int64_t u) {
    const int64_t img = u / (d.nphases * rb), f = (u / rb) % d.nphases, blk = u % rb;
    const Phase& ph = d.phase[f];
    const int64_t oy0 = ph.OH * blk / rb, oy1 = ph.OH * (blk + 1) / rb;
    if (oy0 >= oy1 || ph.OW <= 0) return;
    float* ybase = d.y + img * d.O * YP + ph.y0 * d.YW + ph.x0;
    if (ph.KH * ph.KW == 0) {  // no tap reaches these outputs
      for (int64_t o = 0; o < d.O; o++)
        for (int64_t oy = oy0; oy < oy1; oy++) {
          float* yr = ybase + o * YP + oy * d.sy * d.YW;
          const float bv = d.bias ? d.bias[o] : 0.0f;
          for (int64_t ox = 0; ox < ph.OW; ox++) yr[ox * d.sx] = bv;
        }
      return;
    }
    // padded rows needed by output rows [oy0, oy1) only
    const int64_t Hp = (oy1 - oy0 - 1) * d.sh + ph.KH, Wp = (ph.OW - 1) * d.sw + ph.KW, plane = Hp * Wp;
    float* xp = scratch(0, tid, size_t(d.C * plane));
    float* tmp = scratch(2, tid, size_t((ph.OW + 1) * 2 * ks.W));
    if (!xp || !tmp) { ok = false; return; }
    pad_image(d.x + img * d.C * d.H * d.W, 0, d.C, d.H, d.W, ph.pt - oy0 * d.sh, ph.pl, Hp, Wp, xp);
    // pixel tiles of one output row: as few as possible, evenly split (e.g. 28 = 14 + 14 on AVX-512)
    const int64_t ntx = (ph.OW + ks.max_np - 1) / ks.max_np;
    for (int64_t t = 0; t < nt; t++) {
      const int L = d.tiles->lanes[t];
      const int nvi = L / ks.W - 1;
      const int64_t o0 = d.tiles->start[t], on = std::min<int64_t>(L, d.O - o0);
      const float* wk = ph.wpk + d.C * ph.KH * ph.KW * d.tiles->lanes_before[t];
      for (int64_t oy = oy0; oy < oy1; oy++) {
        // the whole output row into tmp[OW][L], then written transposed
        const float* xr = xp + (oy - oy0) * d.sh * Wp;
        int64_t ox0 = 0;
        for (int64_t tx = 0; tx < ntx; tx++) {
          const int64_t ox1 = ph.OW * (tx + 1) / ntx;
          ks.fwd[nvi][swi][ox1 - ox0 - 1](xr + ox0 * d.sw, plane, Wp, d.C, ph.KH, ph.KW, wk, tmp + ox0 * L);
          ox0 = ox1;
        }
        float* yb = ybase + o0 * YP + oy * d.sy * d.YW;
        for (int64_t l = 0; l < on; l++) {
          float* yr = yb + l * YP;
          const float bv = d.bias ? d.bias[o0 + l] : 0.0f;
          const float* src = tmp + l;
          if (d.sx == 1) for (int64_t ox = 0; ox < ph.OW; ox++) yr[ox] = src[ox * L] + bv;
          else for (int64_t ox = 0; ox < ph.OW; ox++) yr[ox * d.sx] = src[ox * L] + bv;
        }
      }
    }
  }, fmas > 1e6);
  return ok;
}

// ---- Winograd F(m×m, 3×3), m = 2 or 4, for 3×3, stride 1, padding 1 (the UNet's convolutions): 16 products per
// 2×2 output tile instead of 36 (2.25× fewer multiply-adds than the direct kernel), or 36 per 4×4 tile instead
// of 144 (4×). Per work unit (one image, a block of tile rows): transform the input tiles to V[ξ][c][tile], run
// the (m + 2)² products V_ξ · U_ξ as 1×1 convolutions on the direct kernel (channels as lanes, tiles as pixels),
// and transform each channel tile's products back to m×m outputs.

/** DIFFUSE_CONV_WINOGRAD=0 (or convImpl('direct')) turns it off: the direct kernels then run every 3×3.
 *  =2 / =4 (convImpl('winograd2') / 'winograd4') use only F(2×2, 3×3) / F(4×4, 3×3); by default the tile size
 *  is chosen per shape (winograd_tile). */
bool g_winograd = [] {
  const char* s = std::getenv("DIFFUSE_CONV_WINOGRAD");
  return !(s && s[0] == '0');
}();
int g_wino_tile = [] {
  const char* s = std::getenv("DIFFUSE_CONV_WINOGRAD");
  return s && (s[0] == '2' || s[0] == '4') ? s[0] - '0' : 0;
}();

/** The output tile size m of F(m×m, 3×3) for an h×w image, forward and backward-input: 4 where its products
 *  (36 per 4×4 tile, padding included) are at least 10% fewer than F(2×2)'s (16 per 2×2 tile). */
int winograd_tile(int64_t h, int64_t w) {
  if (g_wino_tile) return g_wino_tile;
  const double p4 = 36.0 * double((h + 3) / 4) * double((w + 3) / 4), p2 = 16.0 * double((h + 1) / 2) * double((w + 1) / 2);
  return p4 <= 0.9 * p2 ? 4 : 2;
}

/** The weight gradient's tile (0: the direct kernel): the forward pass's rule from 8×8 up. Measured here (AVX2,
 *  2 threads, medians of 7 interleaved rounds, after the transposes of session 8): F(4×4) took 0.84–0.86× F(2×2)'s
 *  time at 14×14 (64 and 128 channels) and 0.69–0.78× at 28×28; at 7×7 the direct kernel is faster (3.5 ms
 *  against 3.7 for F(4×4) and 4.0 for F(2×2), 64 channels: few tiles per image, the last ones mostly padding). */
int winograd_tile_backward_weight(int64_t h, int64_t w) {
  if (g_wino_tile) return g_wino_tile;
  if (h < 8 || w < 8) return 0;
  return winograd_tile(h, w);
}

/** Channel-last, zero-padded copy of rows [r0, r0 + rows) of the padded image (padding 1 on every side) of
 *  x[C][H][W]: xcl[i][j][c] = x[c][r0 + i − 1][j − 1], zero outside the image and for c ≥ C (Cp ≥ C). With
 *  `lanes` (a NormPre's constants for this image, NormPre::lanes), the image's pixels are normalized in the
 *  copy: the padding stays zero, as it is in the normalized tensor. */
void pad_channel_last(const KernelSet& ks, const float* x, int64_t C, int64_t H, int64_t W, int64_t r0, int64_t rows,
                      int64_t Wp, int64_t Cp, float* xcl, const float* lanes = nullptr, bool silu = false) {
  const int64_t w = std::min<int64_t>(W, Wp - 1);  // image columns copied
  for (int64_t i = 0; i < rows; i++) {  // the padding
    float* d = xcl + i * Wp * Cp;
    const int64_t sy = r0 + i - 1;
    if (sy < 0 || sy >= H) {
      std::memset(d, 0, size_t(Wp * Cp) * sizeof(float));
      continue;
    }
    std::memset(d, 0, size_t(Cp) * sizeof(float));  // left padding column
    if (w + 1 < Wp) std::memset(d + (w + 1) * Cp, 0, size_t((Wp - w - 1) * Cp) * sizeof(float));
    if (Cp > C)
      for (int64_t j = 1; j <= w; j++) std::memset(d + j * Cp + C, 0, size_t(Cp - C) * sizeof(float));
  }
  // the image's rows, one block of W channels at a time: W input streams for the prefetchers, not C
  const int64_t i0 = std::max<int64_t>(0, 1 - r0), i1 = std::min<int64_t>(rows, H + 1 - r0);
  for (int64_t c0 = 0; c0 < C; c0 += ks.W) {
    const int64_t nc = std::min<int64_t>(ks.W, C - c0);
    for (int64_t i = i0; i < i1; i++)
      ks.transpose(x + c0 * H * W + (r0 + i - 1) * W, H * W, nc, w, xcl + i * Wp * Cp + Cp + c0, Cp);
  }
  if (lanes)
    for (int64_t i = i0; i < i1; i++) ks.norm_rows[silu](xcl + i * Wp * Cp + Cp, w, Cp, lanes);
}

/** Image img's NormPre constants in a task's scratch ([mu | s | b], Cp each); nullptr without `pre` or memory. */
float* norm_lanes(const NormPre* pre, int64_t img, int64_t C, int64_t Cp, int tid, bool* ok) {
  if (!pre) return nullptr;
  float* l = scratch(6, tid, size_t(3 * Cp));
  if (!l) { *ok = false; return nullptr; }
  pre->lanes(img, C, Cp, l, l + Cp, l + 2 * Cp);
  return l;
}

/** G[i][j] of F(m×m, 3×3): [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]] for m = 2;
 *  [[¼,0,0],[−⅙,−⅙,−⅙],[−⅙,⅙,−⅙],[1/24,1/12,⅙],[1/24,−1/12,⅙],[0,0,1]] for m = 4. */
double winograd_g(int m, int i, int j) {
  static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static const double G4[6][3] = {{0.25, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                  {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  return m == 2 ? G2[i][j] : G4[i][j];
}

/** KernelSet's index of the F(m×m, 3×3) transforms. */
int wino_set(int m) { return m == 2 ? 0 : 1; }

/** Packs U = G g Gᵀ per channel tile for F(m×m, 3×3), m = 2 or 4: [ξ < (m + 2)²][Cin][lanes] (zero past Cout),
 *  tile t at (m + 2)²·Cin·lanes_before[t]. kernel_at(co, ci, k) gives the 3×3 kernel taking input channel ci to
 *  output channel co as k[u·3 + v]. */
template <int M, class KernelAt>
void pack_winograd_m(KernelAt kernel_at, int64_t Cout, int64_t Cin, const Tiles& tiles, float* pk) {
  constexpr int a = M + 2, XI = a * a;
  double G[a][3];
  for (int i = 0; i < a; i++)
    for (int j = 0; j < 3; j++) G[i][j] = winograd_g(M, i, j);
  // (per input channel in parallel: done on every call but the smallest, and F(4×4)'s is 2.25× F(2×2)'s work)
  parallel_for(Cin, 8, [&](int64_t cb, int64_t ce) {
    for (int64_t t = 0; t < tiles.count; t++) {
      const int L = tiles.lanes[t];
      const int64_t o0 = tiles.start[t];
      float* dst = pk + XI * Cin * tiles.lanes_before[t];
      for (int64_t ci = cb; ci < ce; ci++) {
        float u[XI][64] = {};  // one input channel's lanes, written out as whole rows of L floats
        for (int l = 0; l < L && o0 + l < Cout; l++) {
          float k[9];
          kernel_at(o0 + l, ci, k);
          double gk[a][3];  // G k
          for (int i = 0; i < a; i++)
            for (int v = 0; v < 3; v++) gk[i][v] = G[i][0] * k[v] + G[i][1] * k[3 + v] + G[i][2] * k[6 + v];
          for (int i = 0; i < a; i++)  // (G k) Gᵀ
            for (int j = 0; j < a; j++)
              u[a * i + j][l] = float(gk[i][0] * G[j][0] + gk[i][1] * G[j][1] + gk[i][2] * G[j][2]);
        }
        for (int xi = 0; xi < XI; xi++) std::memcpy(dst + (xi * Cin + ci) * L, u[xi], size_t(L) * sizeof(float));
      }
    }
  });
}

template <class KernelAt>
void pack_winograd(int m, KernelAt kernel_at, int64_t Cout, int64_t Cin, const Tiles& tiles, float* pk) {
  if (m == 2) pack_winograd_m<2>(kernel_at, Cout, Cin, tiles, pk);
  else pack_winograd_m<4>(kernel_at, Cout, Cin, tiles, pk);
}

/** y[n][Cout][H][W] (+ bias) = 3×3 convolution, stride 1, padding 1, of x[n][Cin][H][W] (normalized by `pre`
 *  as it is read, if given) with U packed for F(m×m, 3×3) (m = 2 or 4). */
bool run_winograd(const KernelSet& ks, int m, const float* x, int64_t n, int64_t Cin, int64_t H, int64_t W,
                  int64_t Cout, const Tiles& tiles, const float* upk, const float* bias, float* y,
                  const NormPre* pre = nullptr, const ConvEpilogue* epi = nullptr) {
  const float* ibias = epi ? epi->image_bias : nullptr;
  const float* resid = epi ? epi->residual : nullptr;
  const int XI = (m + 2) * (m + 2), ws = wino_set(m);
  const int64_t TH = (H + m - 1) / m, TW = (W + m - 1) / m, Wp = m * TW + 2, HW = H * W;
  const int64_t Cp = (Cin + ks.W - 1) / ks.W * ks.W;  // channels padded to whole vectors
  const int64_t Cs = Cp + ks.W;  // V's tile stride: not a multiple of 4 KiB apart (L1 set conflicts)
  const int T = pool_threads();
  // tile rows per unit: V (XI·Cs·tiles floats) within ~384 KiB of L2, and enough units for the pool
  int64_t rows = std::max<int64_t>(1, std::min<int64_t>(TH, (384 * 1024 / 4) / (XI * Cs * TW)));
  while (rows > 1 && n * ((TH + rows - 1) / rows) < 4 * T) rows--;
  const int64_t nblk = (TH + rows - 1) / rows, units = n * nblk, Lmax = 2 * ks.W;
  bool ok = true;
  parallel_dynamic(units, [&](int tid, int64_t u) {
    const int64_t img = u / nblk, ty0 = (u % nblk) * rows, ty1 = std::min(TH, ty0 + rows);
    const int64_t NTb = (ty1 - ty0) * TW, Hp = m * (ty1 - ty0) + 2;
    float* xcl = scratch(0, tid, size_t(Hp * Wp * Cp));
    float* v = scratch(4, tid, size_t(XI * NTb * Cs));
    float* prod = scratch(5, tid, size_t(XI * NTb * Lmax + m * m * TW * Lmax));
    const float* lanes = norm_lanes(pre, img, Cin, Cp, tid, &ok);
    if (!xcl || !v || !prod || (pre && !lanes)) { ok = false; return; }
    float* ob = prod + XI * NTb * Lmax;  // [m rows][m·TW columns][L]
    pad_channel_last(ks, x + img * Cin * HW, Cin, H, W, m * ty0, Hp, Wp, Cp, xcl, lanes, pre && pre->silu);
    for (int64_t ty = ty0; ty < ty1; ty++)
      ks.wino_in[ws](xcl + m * (ty - ty0) * Wp * Cp, Wp, Cp, TW, v + (ty - ty0) * TW * Cs, Cs, NTb * Cs);
    const int64_t nchunk = (NTb + ks.max_np - 1) / ks.max_np;
    for (int64_t t = 0; t < tiles.count; t++) {
      const int L = tiles.lanes[t];
      const int nvi = L / ks.W - 1;
      const int64_t o0 = tiles.start[t], on = std::min<int64_t>(L, Cout - o0);
      const float* ut = upk + XI * Cin * tiles.lanes_before[t];
      for (int xi = 0; xi < XI; xi++) {
        int64_t p0 = 0;
        for (int64_t ch = 0; ch < nchunk; ch++) {
          const int64_t p1 = NTb * (ch + 1) / nchunk;
          ks.red[nvi][p1 - p0 - 1](v + (xi * NTb + p0) * Cs, Cs, Cin, ut + xi * Cin * L, prod + (xi * NTb + p0) * L);
          p0 = p1;
        }
      }
      float bl[64] = {}, il[64] = {};  // the tile's bias and image-bias lanes (L ≤ 32), zero past Cout
      if (bias) std::memcpy(bl, bias + o0, size_t(on) * sizeof(float));
      if (ibias) std::memcpy(il, ibias + img * Cout + o0, size_t(on) * sizeof(float));
      for (int64_t ty = ty0; ty < ty1; ty++) {
        ks.wino_out[ws][nvi](prod + (ty - ty0) * TW * L, NTb * L, TW, ob);
        const int64_t oy = m * ty, nrows = std::min<int64_t>(m, H - oy);
        if (bias || ibias)  // channel-last here: contiguous lanes, added while the tile is in cache
          for (int64_t i = 0; i < nrows; i++)
            for (int64_t p = 0; p < W; p++) {
              float* q = ob + (i * m * TW + p) * L;
              if (bias) for (int l = 0; l < L; l++) q[l] += bl[l];
              if (ibias) for (int l = 0; l < L; l++) q[l] += il[l];
            }
        for (int64_t i = 0; i < nrows; i++)
          ks.transpose(ob + i * m * TW * L, L, W, on, y + (img * Cout + o0) * HW + (oy + i) * W, HW);
        if (resid)  // the rows just written, still in cache
          for (int64_t l = 0; l < on; l++)
            for (int64_t i = 0; i < nrows; i++) {
              const int64_t off = (img * Cout + o0 + l) * HW + (oy + i) * W;
              float* q = y + off;
              const float* r = resid + off;
              for (int64_t p = 0; p < W; p++) q[p] += r[p];
            }
      }
    }
  }, double(n) * double(Cout) * double(Cin) * XI * double(TH * TW) > 1e6);
  return ok;
}

/** dW[o][c] (3×3) of a 3×3, stride-1, padding-1 convolution by Winograd: with V = Bᵀ d B the input tiles (as in
 *  the forward pass) and Ŷ = A dY Aᵀ the output-gradient tiles (zero past the output), the forward
 *  Y = Aᵀ[(G g Gᵀ) ⊙ V]A gives dW = Gᵀ [Σ_tiles Ŷ ⊙ V] G for F(m×m, 3×3): (m + 2)² products per m×m tile instead
 *  of 9·m², reduced over all tiles of all images as (m + 2)² GEMM-like passes on the direct kernel (output
 *  channels as lanes, input channels as pixels, tiles as the reduction). */
bool run_winograd_backward_weight(const KernelSet& ks, int m, const float* x, const float* dy, int64_t n, int64_t C,
                                  int64_t H, int64_t W, int64_t O, const Tiles& tiles, float* dw,
                                  const NormPre* pre = nullptr) {
  const int a = m + 2, XI = a * a, ws = wino_set(m);
  const int64_t TH = (H + m - 1) / m, TW = (W + m - 1) / m, NT = TH * TW, Wp = m * TW + 2, Hp = m * TH + 2, HW = H * W;
  const int64_t lanes_total = tiles.lanes_total, Lmax = 2 * ks.W;
  const int64_t Cp = (C + ks.W - 1) / ks.W * ks.W;  // channels padded to whole vectors
  const int64_t Cs = Cp + ks.W;  // V's tile stride: not a multiple of 4 KiB apart (L1 set conflicts)
  const int T = pool_threads();
  // image groups accumulate into their own partial sums, added in group order: the result does not depend on
  // the thread count or on scheduling. Channel tiles split further when there are few groups.
  // (F(4×4)'s partials are 2.25× larger: at most 4 groups, which still feed 2 threads)
  const int64_t groups = std::max<int64_t>(1, std::min<int64_t>({n, m == 2 ? 8 : 4, n * HW / 512}));
  const int64_t ogroups = groups >= 2 * T ? 1 : std::min<int64_t>(tiles.count, 2 * T);
  const int64_t psize = XI * C * lanes_total;  // per group: tile t at XI·C·lanes_before[t], [ξ][C][L]
  float* partial = scratch(1, kShared, size_t(groups * psize));
  if (!partial) return false;
  // (every group writes all of its partial: no zeroing)
  bool ok = true;
  parallel_dynamic(groups * ogroups, [&](int tid, int64_t item) {
    const int64_t gi = item / ogroups, og = item % ogroups;
    const int64_t i0 = n * gi / groups, i1 = n * (gi + 1) / groups;
    const int64_t t0 = tiles.count * og / ogroups, t1 = tiles.count * (og + 1) / ogroups;
    if (i0 >= i1 || t0 >= t1) return;
    // images per pass: one ξ-slice of V (R·Cs floats) within ~128 KiB for F(2×2), so the products read it from
    // L2; ~32 KiB for F(4×4), whose 36 slices are otherwise too many (measured: 1.6× slower at 128 KiB, 64 channels)
    const int64_t slice = m == 2 ? 32 * 1024 : 8 * 1024;
    const int64_t sub = std::max<int64_t>(1, std::min<int64_t>(i1 - i0, (slice / Cs) / NT)), Rmax = sub * NT;
    const int64_t dyt_size = m * TH * m * TW * Lmax;
    float* xcl = scratch(0, tid, size_t(Hp * Wp * Cp));
    float* v = scratch(4, tid, size_t(XI * Rmax * Cs));
    float* yh = scratch(5, tid, size_t(XI * Rmax * Lmax + dyt_size + ks.max_np * Lmax));
    if (!xcl || !v || !yh) { ok = false; return; }
    float* dyt = yh + XI * Rmax * Lmax;    // one image's dY of one channel tile, [m·TH][m·TW][L], zero-padded
    float* prod = dyt + dyt_size;          // one product tile [NP][L]
    float* pg = partial + gi * psize;
    const int64_t nchunk = (C + ks.max_np - 1) / ks.max_np, W2 = m * TW;
    for (int64_t s0 = i0; s0 < i1; s0 += sub) {
      const int64_t ns = std::min(sub, i1 - s0), R = ns * NT;  // R: the reduction length of this pass
      // V of these images as [ξ][image·tile][c]
      for (int64_t k = 0; k < ns; k++) {
        const float* lanes = norm_lanes(pre, s0 + k, C, Cp, tid, &ok);
        if (pre && !lanes) return;
        pad_channel_last(ks, x + (s0 + k) * C * HW, C, H, W, 0, Hp, Wp, Cp, xcl, lanes, pre && pre->silu);
        for (int64_t ty = 0; ty < TH; ty++)
          ks.wino_in[ws](xcl + m * ty * Wp * Cp, Wp, Cp, TW, v + (k * NT + ty * TW) * Cs, Cs, R * Cs);
      }
      for (int64_t t = t0; t < t1; t++) {
        const int L = tiles.lanes[t];
        const int nvi = L / ks.W - 1;
        const int64_t o0 = tiles.start[t], on = std::min<int64_t>(L, O - o0);
        for (int64_t k = 0; k < ns; k++) {  // Ŷ[ξ][image·tile][L] from dY transposed to [row][column][L]
          const float* dyi = dy + (s0 + k) * O * HW;
          std::memset(dyt, 0, size_t(m * TH * W2 * L) * sizeof(float));
          for (int64_t q0 = 0; q0 < on; q0 += ks.W)  // W channels at a time, as in pad_channel_last
            for (int64_t yy = 0; yy < H; yy++)
              ks.transpose(dyi + (o0 + q0) * HW + yy * W, HW, std::min<int64_t>(ks.W, on - q0), W, dyt + yy * W2 * L + q0, L);
          for (int64_t ty = 0; ty < TH; ty++) {
            const float* rows[4];  // the tile row's m rows of dY
            for (int i = 0; i < m; i++) rows[i] = dyt + (m * ty + i) * W2 * L;
            ks.wino_dy[ws][nvi](rows, TW, yh + (k * NT + ty * TW) * L, R * L);
          }
        }
        float* pt = pg + XI * C * tiles.lanes_before[t];
        for (int xi = 0; xi < XI; xi++) {
          int64_t c0 = 0;
          for (int64_t ch = 0; ch < nchunk; ch++) {
            const int64_t c1 = C * (ch + 1) / nchunk;
            ks.fwd[nvi][0][c1 - c0 - 1](v + xi * R * Cs + c0, Cs, 0, R, 1, 1, yh + xi * R * L, prod);
            float* dst = pt + (xi * C + c0) * L;
            const int64_t len = (c1 - c0) * L;
            if (s0 == i0) std::memcpy(dst, prod, size_t(len) * sizeof(float));
            else for (int64_t q = 0; q < len; q++) dst[q] += prod[q];
            c0 = c1;
          }
        }
      }
    }
  }, double(n) * double(O) * double(C) * XI * double(NT) > 1e6);
  if (!ok) return false;
  // sum the partials (group order), then dW = Gᵀ M G (G as in pack_winograd)
  double G[6][3];
  for (int i = 0; i < a; i++)
    for (int j = 0; j < 3; j++) G[i][j] = winograd_g(m, i, j);
  parallel_for(C, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t t = 0; t < tiles.count; t++) {
      const int L = tiles.lanes[t];
      const int64_t o0 = tiles.start[t], on = std::min<int64_t>(L, O - o0), base = XI * C * tiles.lanes_before[t];
      for (int64_t c = cb; c < ce; c++)
        for (int64_t l = 0; l < on; l++) {
          double mm[36];
          for (int xi = 0; xi < XI; xi++) {
            double s = 0.0;
            for (int64_t gi = 0; gi < groups; gi++) s += partial[gi * psize + base + (xi * C + c) * L + l];
            mm[xi] = s;
          }
          double p[3][6];  // Gᵀ M
          for (int u = 0; u < 3; u++)
            for (int j = 0; j < a; j++) {
              double s = 0.0;
              for (int i = 0; i < a; i++) s += G[i][u] * mm[a * i + j];
              p[u][j] = s;
            }
          float* d = dw + ((o0 + l) * C + c) * 9;
          for (int u = 0; u < 3; u++)  // (Gᵀ M) G
            for (int v = 0; v < 3; v++) {
              double s = 0.0;
              for (int j = 0; j < a; j++) s += p[u][j] * G[j][v];
              d[3 * u + v] = float(s);
            }
        }
    }
  });
  return true;
}

/** Whether Winograd runs a 3×3 convolution over cin input channels to cout outputs at h×w. */
bool winograd_fits(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t cin, int64_t cout) {
  // few channels: the transforms cost more than the products save
  return g_winograd && kh == 3 && kw == 3 && sh == 1 && sw == 1 && ph == 1 && pw == 1 && cin >= 8 && cout >= 8;
}

int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

bool winograd_enabled(int enable) {
  if (enable >= 0) g_winograd = enable != 0;
  return g_winograd;
}

int winograd_tile_setting(int m) {
  if (m == 0 || m == 2 || m == 4) g_wino_tile = m;
  return g_wino_tile;
}

bool direct_prefer_avx2(int prefer) {
  if (prefer >= 0) g_prefer_avx2 = prefer != 0;
  return g_prefer_avx2;
}

const char* direct_isa() {
  const KernelSet* ks = kernels();
  return ks ? (ks->W == 16 ? "avx512" : ks->W == 8 ? "avx2" : "simd128") : nullptr;
}

bool direct_conv2d(const float* x, const float* w, const float* bias, const ConvGeom& g, float* y, bool* oom,
                   const NormPre* pre, const ConvEpilogue* epi) {
  const KernelSet* ks = kernels();
  if (!ks || g.sh > 2 || g.sw > 2 || g.o > kMaxChannels) return false;
  const bool wino = winograd_fits(g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.c, g.o);
  if (pre && !wino) return false;  // only Winograd's input copy applies a norm
  Tiles tiles(g.o, ks->W, 2);
  if (wino) {
    const int m = winograd_tile(g.h, g.w);
    const size_t nu = size_t((m + 2) * (m + 2) * g.c * tiles.lanes_total);
    auto pack = [&](float* dst) {
      pack_winograd(m, [&](int64_t o, int64_t c, float* k) { std::memcpy(k, w + (o * g.c + c) * 9, 9 * sizeof(float)); },
                    g.o, g.c, tiles, dst);
    };
    // (forms: 2W the direct kernels' packing, 2W + 1 F(2×2), 2W + 3 F(4×4))
    const float* upk = use_packed_cache(g) ? packed_weight_cache().get(2 * ks->W + m - 1, g.o, g.c, 3, 3, w, nu, pack) : nullptr;
    if (!upk) {
      float* buf = scratch(3, kShared, nu);
      if (!buf) { *oom = true; return false; }
      pack(buf);
      upk = buf;
    }
    if (!run_winograd(*ks, m, x, g.n, g.c, g.h, g.w, g.o, tiles, upk, bias, y, pre, epi)) { *oom = true; return false; }
    return true;
  }
  const size_t npk = size_t(g.c * g.kh * g.kw * tiles.lanes_total);
  auto pack = [&](float* dst) { pack_forward(w, g.o, g.c, g.kh, g.kw, tiles, dst); };
  const float* pk = use_packed_cache(g) ? packed_weight_cache().get(2 * ks->W, g.o, g.c, g.kh, g.kw, w, npk, pack) : nullptr;
  if (!pk) {
    float* buf = scratch(3, kShared, npk);
    if (!buf) { *oom = true; return false; }
    pack(buf);
    pk = buf;
  }
  DirectFwd d{x, g.n, g.c, g.h, g.w, g.o, g.sh, g.sw, g.oh, g.ow, 1, 1, &tiles, bias, y, 1, {}};
  d.phase[0] = Phase{g.kh, g.kw, g.ph, g.pw, g.oh, g.ow, 0, 0, pk};
  if (!run_direct_fwd(*ks, d)) { *oom = true; return false; }
  if (epi) apply_epilogue(y, g, *epi);
  return true;
}

bool direct_conv2d_backward_input(const float* dy, const float* w, const ConvGeom& g, float* dx, bool* oom) {
  // dX = Σ over phases (a, b) = (iy + ph) mod sh, (ix + pw) mod sw of stride-1 convolutions of dY with
  // the phase's flipped sub-kernel: dX[c][sh·q + a − ph][sw·r + b − pw] = Σ W[o][c][a + sh·j][b + sw·k] ·
  // dY[o][q − j][r − k]. Stride 1 is the single phase (0, 0): the full flipped, transposed kernel.
  const KernelSet* ks = kernels();
  // few input channels (a first layer): most lanes would be idle; im2col + GEMM does better
  if (!ks || g.sh > 4 || g.sw > 4 || g.c < 8 || g.c > kMaxChannels) return false;
  Tiles tiles(g.c, ks->W, 2);
  if (winograd_fits(g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.o, g.c)) {
    // dX = 3×3 convolution (padding 1) of dY with the flipped, transposed kernel
    const int m = winograd_tile(g.h, g.w);
    float* upk = scratch(3, kShared, size_t((m + 2) * (m + 2) * g.o * tiles.lanes_total));
    if (!upk) { *oom = true; return false; }
    pack_winograd(m, [&](int64_t c, int64_t o, float* k) {
      const float* src = w + (o * g.c + c) * 9;
      for (int q = 0; q < 9; q++) k[q] = src[8 - q];
    }, g.c, g.o, tiles, upk);
    if (!run_winograd(*ks, m, dy, g.n, g.o, g.h, g.w, g.c, tiles, upk, nullptr, dx)) { *oom = true; return false; }
    return true;
  }
  DirectFwd d{dy, g.n, g.o, g.oh, g.ow, g.c, 1, 1, g.h, g.w, g.sh, g.sw, &tiles, nullptr, dx, 0, {}};
  int64_t total = 0, offs[16];
  for (int64_t a = 0; a < g.sh; a++)
    for (int64_t b = 0; b < g.sw; b++) {
      Phase& p = d.phase[d.nphases];
      const int64_t Ja = a < g.kh ? ceil_div(g.kh - a, g.sh) : 0, Kb = b < g.kw ? ceil_div(g.kw - b, g.sw) : 0;
      const int64_t q0 = ceil_div(g.ph - a, g.sh), q1 = floor_div(g.h - 1 + g.ph - a, g.sh) + 1;
      const int64_t r0 = ceil_div(g.pw - b, g.sw), r1 = floor_div(g.w - 1 + g.pw - b, g.sw) + 1;
      if (q1 <= q0 || r1 <= r0) continue;  // no input position in this phase
      p.KH = Ja;
      p.KW = Kb;
      p.pt = Ja - 1 - q0;
      p.pl = Kb - 1 - r0;
      p.OH = q1 - q0;
      p.OW = r1 - r0;
      p.y0 = g.sh * q0 + a - g.ph;
      p.x0 = g.sw * r0 + b - g.pw;
      offs[d.nphases] = total;
      total += g.o * Ja * Kb * tiles.lanes_total;
      d.nphases++;
    }
  float* pk = scratch(3, kShared, size_t(std::max<int64_t>(total, 1)));
  if (!pk) { *oom = true; return false; }
  for (int f = 0; f < d.nphases; f++) {
    Phase& p = d.phase[f];
    p.wpk = pk + offs[f];
    const int64_t a = ((p.y0 + g.ph) % g.sh + g.sh) % g.sh, b = ((p.x0 + g.pw) % g.sw + g.sw) % g.sw;
    if (p.KH * p.KW > 0) pack_backward_phase(w, g.o, g.c, g.kh, g.kw, g.sh, g.sw, a, b, p.KH, p.KW, tiles, pk + offs[f]);
  }
  if (!run_direct_fwd(*ks, d)) { *oom = true; return false; }
  return true;
}

bool direct_conv2d_backward_weight(const float* x, const float* dy, const ConvGeom& g, float* dw, bool* oom,
                                   const NormPre* pre) {
  const KernelSet* ks = kernels();
  if (!ks || g.kh != 3 || g.kw != 3 || g.sh > 2 || g.sw > 2 || g.sh != g.sw || g.o > kMaxChannels) return false;
  const int m = winograd_tile_backward_weight(g.h, g.w);
  const bool wino = m && winograd_fits(g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.c, g.o);
  if (pre && !wino) return false;  // only Winograd's input copy applies a norm
  if (wino) {
    Tiles wt(g.o, ks->W, 2);
    if (!run_winograd_backward_weight(*ks, m, x, dy, g.n, g.c, g.h, g.w, g.o, wt, dw, pre)) {
      *oom = true;
      return false;
    }
    return true;
  }
  const int64_t Hp = (g.oh - 1) * g.sh + 3, Wp = (g.ow - 1) * g.sw + 3, plane = Hp * Wp, P = g.oh * g.ow;
  Tiles tiles(g.o, ks->W, ks->bww_nv);
  const int64_t nt = tiles.count, lanes_total = tiles.lanes_total;
  // Work items: image groups × channel ranges, handed out dynamically. Each image group accumulates into
  // its own partial dW (channel ranges write disjoint parts of it), and the partials are summed in group
  // order: the result does not depend on the thread count or on scheduling.
  const int T = pool_threads();
  // (enough pixels per group that the partial buffers cost little next to the arithmetic)
  const int64_t groups = std::max<int64_t>(1, std::min<int64_t>({g.n, 8, g.n * P / 512}));
  const int64_t cgroups = groups >= 2 * T ? 1 : std::min<int64_t>(g.c, 4 * T);
  const int64_t psize = lanes_total * g.c * 9;  // partial layout: per tile [C][9][L]
  float* partial = scratch(1, kShared, size_t(groups * psize));
  if (!partial) { *oom = true; return false; }
  std::memset(partial, 0, size_t(groups * psize) * sizeof(float));
  const int swi = int(g.sw) - 1;
  bool ok = true;
  // small images are processed several at a time (one kernel call runs over ≥ 256 pixels)
  const int64_t batch = std::max<int64_t>(1, std::min<int64_t>(8, 256 / std::max<int64_t>(P, 1)));
  parallel_dynamic(groups * cgroups, [&](int tid, int64_t item) {
    const int64_t gi = item / cgroups, cg = item % cgroups;
    const int64_t i0 = g.n * gi / groups, i1 = g.n * (gi + 1) / groups;
    const int64_t c0 = g.c * cg / cgroups, c1 = g.c * (cg + 1) / cgroups;
    if (i0 >= i1 || c0 >= c1) return;
    const int64_t nb_max = std::min(batch, i1 - i0);
    float* xp = scratch(0, tid, size_t((c1 - c0) * nb_max * plane));
    float* dyt = scratch(2, tid, size_t(lanes_total * P * nb_max + 16));
    if (!xp || !dyt) { ok = false; return; }
    float* pdw = partial + gi * psize;
    for (int64_t ib = i0; ib < i1; ib += nb_max) {
      const int64_t nb = std::min(nb_max, i1 - ib);
      // padded inputs [c][img][Hp][Wp] and transposed gradients per tile [img][P][L] (lanes past O zero)
      for (int64_t k = 0; k < nb; k++)
        pad_image(x + (ib + k) * g.c * g.h * g.w, c0, c1, g.h, g.w, g.ph, g.pw, Hp, Wp, xp + k * plane, nb * plane);
      int64_t toff = 0;
      for (int64_t t = 0; t < nt; t++) {
        const int L = tiles.lanes[t];
        const int64_t o0 = tiles.start[t], on = std::min<int64_t>(L, g.o - o0);
        for (int64_t k = 0; k < nb; k++) {
          const float* dyi = dy + (ib + k) * g.o * P;
          float* d = dyt + toff + k * P * L;
          for (int64_t p0 = 0; p0 < P; p0 += 16) {  // blocks of 16 pixels: the 16 destination rows stay in L1
            const int64_t p1 = std::min<int64_t>(P, p0 + 16);
            for (int64_t l = 0; l < on; l++) {
              const float* s = dyi + (o0 + l) * P;
              for (int64_t p = p0; p < p1; p++) d[p * L + l] = s[p];
            }
            for (int64_t l = on; l < L; l++)
              for (int64_t p = p0; p < p1; p++) d[p * L + l] = 0.0f;
          }
        }
        toff += nb * P * L;
      }
      toff = 0;
      int64_t poff = 0;
      for (int64_t t = 0; t < nt; t++) {
        const int L = tiles.lanes[t];
        const BwwFn fn = ks->bww[L / ks->W - 1][swi];
        for (int64_t c = c0; c < c1; c++)
          fn(xp + (c - c0) * nb * plane, Wp, g.sh, g.oh, g.ow, nb, plane, dyt + toff, pdw + poff + c * 9 * L);
        toff += nb * P * L;
        poff += g.c * 9 * L;
      }
    }
  }, double(g.n) * double(g.o) * double(g.c) * 9.0 * double(P) > 1e6);
  if (!ok) { *oom = true; return false; }
  // sum the partials (group order) and transpose to dW[o][c][3][3], split over channels
  parallel_for(g.c, std::max<int64_t>(1, 4096 / (9 * lanes_total + 1)), [&](int64_t cb, int64_t ce) {
    int64_t poff = 0;
    for (int64_t t = 0; t < nt; t++) {
      const int L = tiles.lanes[t];
      const int64_t o0 = tiles.start[t], on = std::min<int64_t>(L, g.o - o0);
      for (int64_t c = cb; c < ce; c++)
        for (int64_t q = 0; q < 9; q++)
          for (int64_t l = 0; l < on; l++) {
            float s = 0.0f;
            for (int64_t gi = 0; gi < groups; gi++) s += partial[gi * psize + poff + (c * 9 + q) * L + l];
            dw[((o0 + l) * g.c + c) * 9 + q] = s;
          }
      poff += g.c * 9 * L;
    }
  });
  return true;
}

#endif  // DN_HAVE_DIRECT

}  // namespace dn
