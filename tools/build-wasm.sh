#!/bin/sh
# Builds the wasm backend's kernels (src/backends/wasm/diffuse_kernels.wasm) from the native addon's C++
# sources (native/src: elementwise, norms, GEMM, convolutions) and native/wasm (runtime, thread pool, exports)
# with clang's wasm32 target: SIMD128, threads (atomics, shared memory), bulk memory; and
# diffuse_kernels_st.wasm, the same without threads (a non-shared memory: pages without cross-origin isolation).
#
#   sh tools/build-wasm.sh            # writes the committed artifact
#   sh tools/build-wasm.sh OUT.wasm   # writes OUT.wasm and OUT_st.wasm elsewhere (the CI check compares bytes)
#
# Needs Debian's clang-16, lld-16, wasi-libc and libc++-16-dev-wasm32 (headers; the math functions come from
# wasi-libc). The output is reproducible: no debug information, no producers section, file paths mapped to
# relative ones, the same bytes on every build with the same compiler.
# diffuse_kernels_relaxed.wasm: the threaded build with relaxed-SIMD fused multiply-adds, loaded where the engine
# runs relaxed SIMD (browsers, Node ≥ 21; Node 20 only with --experimental-wasm-relaxed-simd).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/src/backends/wasm/diffuse_kernels.wasm}
LLVM=${LLVM_BIN:-/usr/lib/llvm-16/bin}
CXX=$LLVM/clang++
LD=$LLVM/wasm-ld
SYSROOT_INC=/usr/include/wasm32-wasi
LIBC=/usr/lib/wasm32-wasi/libc.a
for f in "$CXX" "$LD" "$LIBC" "$SYSROOT_INC/c++/v1/cmath"; do
  [ -e "$f" ] || { echo "build-wasm: $f is missing (apt-get install clang-16 lld-16 wasi-libc libc++-16-dev-wasm32)" >&2; exit 1; }
done
SRCS="native/src/elementwise.cc native/src/norm.cc native/src/gemm.cc native/src/sgemm_kernels.cc native/src/conv.cc
native/src/conv_direct.cc native/src/cpu.cc native/wasm/runtime.cc native/wasm/pool.cc native/wasm/exports.cc"

build() {  # $1: output, $2: extra compiler flags, $3: extra linker flags
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  OBJS=""
  cd "$ROOT"
  for s in $SRCS; do
    o="$TMP/$(basename "$s" .cc).o"
    "$CXX" --target=wasm32-wasi --sysroot=/usr -nostdinc++ -isystem "$SYSROOT_INC/c++/v1" -isystem "$SYSROOT_INC" \
      -std=c++17 -O3 -DNDEBUG -msimd128 -mbulk-memory -mmutable-globals -mnontrapping-fptoint \
      -msign-ext $2 -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-math-errno -fopenmp-simd \
      -ffile-prefix-map="$ROOT"/= -Wall -Wno-unused-function -Wno-pass-failed -c "$s" -o "$o"
    OBJS="$OBJS $o"
  done
  # --shared-memory: one memory for every thread's instance; 4 GiB maximum (wasm32's limit; reserved, not used).
  "$LD" --no-entry --import-memory $3 --initial-memory=16777216 --max-memory=4294967296 \
    -z stack-size=1048576 ${WASM_LD_EXTRA:-} --strip-all --gc-sections $OBJS "$LIBC" -o "$TMP/out.wasm"
  "$LLVM/llvm-objcopy" --remove-section=producers "$TMP/out.wasm" "$TMP/out2.wasm" 2>/dev/null || cp "$TMP/out.wasm" "$TMP/out2.wasm"
  cp "$TMP/out2.wasm" "$1"
  rm -rf "$TMP"
  trap - EXIT
}

THREADS="-matomics"
build "$OUT" "$THREADS" "--shared-memory"
echo "build-wasm: wrote $OUT ($(wc -c < "$OUT") bytes)"
# The single-threaded build, for pages that are not cross-origin isolated (no shared memory there).
ST=$(dirname "$OUT")/$(basename "$OUT" .wasm)_st.wasm
build "$ST" "" ""
echo "build-wasm: wrote $ST ($(wc -c < "$ST") bytes)"
R=$(dirname "$OUT")/$(basename "$OUT" .wasm)_relaxed.wasm
build "$R" "$THREADS -mrelaxed-simd" "--shared-memory"
echo "build-wasm: wrote $R ($(wc -c < "$R") bytes)"

