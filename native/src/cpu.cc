#include "cpu.h"

#include <cstdlib>
#include <cstring>

namespace dn {

Isa cpu_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const Isa isa = [] {
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0), as it must
    if (__builtin_cpu_supports("avx512f")) return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
    return Isa::Base;
  }();
  return isa;
#else
  return Isa::Base;
#endif
}

namespace {
Isa initial_cap() {
  const char* s = std::getenv("DIFFUSE_ISA");
  Isa cap = Isa::Avx512;
  if (s && *s && !parse_isa(s, &cap)) cap = Isa::Avx512;  // unknown: no cap (the loader warns)
  return cap;
}
Isa g_cap = initial_cap();
}  // namespace

Isa active_isa() {
  const Isa c = cpu_isa();
  return int(g_cap) < int(c) ? g_cap : c;
}

void set_isa_cap(Isa cap) { g_cap = cap; }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: break;
  }
#if defined(__x86_64__)
  return "sse2";
#elif defined(__aarch64__)
  return "neon";
#elif defined(__wasm_simd128__)
  return "simd128";
#else
  return "generic";
#endif
}

bool parse_isa(const char* name, Isa* out) {
  if (std::strcmp(name, "auto") == 0 || std::strcmp(name, "avx512") == 0) { *out = Isa::Avx512; return true; }
  if (std::strcmp(name, "avx2") == 0) { *out = Isa::Avx2; return true; }
  if (std::strcmp(name, "sse2") == 0 || std::strcmp(name, "neon") == 0 || std::strcmp(name, "generic") == 0 ||
      std::strcmp(name, "base") == 0) {
    *out = Isa::Base;
    return true;
  }
  return false;
}

}  // namespace dn
