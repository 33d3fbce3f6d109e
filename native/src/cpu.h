// Instruction-set dispatch for the register-tiled kernels (GEMM, direct / Winograd convolution): which ISA
// this CPU runs, capped by DIFFUSE_ISA or isa_cap() (to test every path on one machine). Kernel files map an
// Isa to their kernel set; this file is the only one that asks the CPU.
#pragma once

namespace dn {

/** Ordered: a CPU that runs one level runs every level below it (on its architecture). */
enum class Isa {
  Base = 0,    // x86-64: SSE2; arm64: NEON; elsewhere: portable C++
  Avx2 = 1,    // AVX2 + FMA
  Avx512 = 2,  // AVX-512F
};

/** The best ISA this CPU supports (x86-64: cpuid, checked once; arm64: Base). */
Isa cpu_isa();
/** min(cpu_isa(), cap): what the kernels run now. */
Isa active_isa();
/** Caps the ISA (kernels never use a higher one); Isa::Avx512 removes the cap. Not while a kernel runs. */
void set_isa_cap(Isa cap);
/** "sse2" / "neon" / "generic", "avx2", "avx512". */
const char* isa_name(Isa isa);
/** Parses an isa_name() (and "auto" = no cap); false when unknown. */
bool parse_isa(const char* name, Isa* out);

}  // namespace dn
