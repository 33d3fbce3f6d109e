#!/bin/sh
# CI: rebuilds the wasm kernels from source and fails unless the result is byte-identical to the committed
# artifacts (src/backends/wasm/diffuse_kernels.wasm, diffuse_kernels_st.wasm, diffuse_kernels_relaxed.wasm).
# Needs clang-16, lld-16, wasi-libc and libc++-16-dev-wasm32 (.ci/run installs them).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
sh "$ROOT/tools/build-wasm.sh" "$TMP/diffuse_kernels.wasm" >/dev/null
for f in diffuse_kernels.wasm diffuse_kernels_st.wasm diffuse_kernels_relaxed.wasm; do
  if ! cmp -s "$TMP/$f" "$ROOT/src/backends/wasm/$f"; then
    echo "check-wasm: src/backends/wasm/$f differs from a rebuild of its sources: run \`npm run build:wasm\` and commit the result" >&2
    exit 1
  fi
done
echo "check-wasm: the committed .wasm files match their sources"
