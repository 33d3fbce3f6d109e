// Internal interface between conv.cc (dispatch + portable im2col/GEMM path) and conv_direct.cc (direct kernels).
#pragma once
#include "kernels.h"

namespace dn {

/** "avx512" or "avx2" when the CPU can run the direct kernels (and they were compiled in), else nullptr. */
const char* direct_isa();
/** Sets (prefer = 0 / 1) or reads (prefer = −1) the preference for the AVX2 kernels on AVX-512 CPUs. */
bool direct_prefer_avx2(int prefer);
/** Sets (enable = 0 / 1) or reads (−1) whether 3×3 stride-1 convolutions use Winograd (F(2×2, 3×3) or F(4×4, 3×3)). */
bool winograd_enabled(int enable);
/** Winograd's output tile: 2 or 4 forces F(2×2) / F(4×4) everywhere, 0 chooses per shape; returns the setting. */
int winograd_tile_setting(int m);

/** Direct convolutions. Each returns false when it does not handle the geometry (the caller then falls
 *  back to im2col + GEMM) or when scratch memory could not be allocated (*oom set). */
/** With `pre`, they also return false where they cannot apply it as they read the input (all but Winograd). */
bool direct_conv2d(const float* x, const float* w, const float* bias, const ConvGeom& g, float* y, bool* oom,
                   const NormPre* pre = nullptr, const ConvEpilogue* epi = nullptr);
bool direct_conv2d_backward_input(const float* dy, const float* w, const ConvGeom& g, float* dx, bool* oom);
bool direct_conv2d_backward_weight(const float* x, const float* dy, const ConvGeom& g, float* dw, bool* oom,
                                   const NormPre* pre = nullptr);

}  // namespace dn
