// Internal interface between gemm.cc (packing, blocking, threading) and sgemm_kernels.cc (micro-kernels,
// one set per instruction set).
#pragma once
#include <cstdint>

#include "cpu.h"

namespace dn {

/** C[0:mr, 0:nr] = alpha · Σ_k A[k][i] · B[k][j] + beta · C (beta == 0: C is not read), over a packed A
 *  micro-panel [kc][MR] and a packed B micro-panel [kc][NR] (both zero-padded to whole tiles); mr ≤ MR and
 *  nr ≤ NR say how much of the tile is stored. */
using GemmMicroFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                             float beta, int mr, int nr);

struct GemmKernel {
  const char* isa;  // isa_name()
  int mr, nr;       // register tile: MR rows of A broadcast × NR columns of B (NR/lanes vectors)
  int mc, kc, nc;   // cache blocks: A block MC×KC (L2), B micro-panel KC×NR (L1), B block KC×NC
  GemmMicroFn micro;
};

/** The micro-kernel set for an ISA (one compiled in for every Isa value of this architecture). */
const GemmKernel* gemm_kernel_for(Isa isa);

}  // namespace dn
