#!/usr/bin/env bash
# Packs what bench/webgpu.ts needs on a GPU machine without Node into .scratch/gpu (≈ 30 MB, git-ignored):
#   bundle.tar.xz     this machine's node binary + node_modules/webgpu (linux-x64 only: index.js, package.json, dawn.node)
#   webgpu-bench.mjs  bench/webgpu.ts bundled with esbuild (no tsx needed there)
#   lib/libvulkan.so.1  the Vulkan loader, for machines whose NVIDIA driver ships the ICD but no loader
#   run.sh            unpacks, sets XDG_RUNTIME_DIR / the loader / an EGL-based NVIDIA ICD, runs the bench per batch size
# Then, on the device:  bash .scratch/gpu/run.sh 256 64      (carry: .scratch/gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.scratch/gpu
rm -rf "$out" && mkdir -p "$out/lib"
npx esbuild bench/webgpu.ts --bundle --platform=node --format=esm --target=node20 --external:webgpu \
  --outfile="$out/webgpu-bench.mjs" --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" --log-level=warning
stage=$(mktemp -d)
mkdir -p "$stage/node_modules/webgpu/dist"
cp "$(command -v node)" "$stage/node"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$stage/node_modules/webgpu/"
cp -r node_modules/webgpu/dist/linux-x64 "$stage/node_modules/webgpu/dist/"
tar cJf "$out/bundle.tar.xz" -C "$stage" node node_modules
rm -rf "$stage"
# (awk reads to the end: exiting early would break ldconfig's pipe and, under pipefail, this script)
lib=$(ldconfig -p | awk '/libvulkan.so.1 .*x86-64/ && !found {print $NF; found = 1}')
[ -n "$lib" ] && cp -L "$lib" "$out/lib/libvulkan.so.1"
cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Device side (run from the repository root): bash .scratch/gpu/run.sh [batch ...]   (default: 256)
mkdir -p /tmp/gb && tar xJf .scratch/gpu/bundle.tar.xz -C /tmp/gb && ln -sfn /tmp/gb/node_modules node_modules
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg}; mkdir -p "$XDG_RUNTIME_DIR"
# No Vulkan loader installed: use the carried one. NVIDIA's GLX-based ICD creates no instance headless; the EGL
# library of the same driver does.
if ! ldconfig -p | grep -q libvulkan.so.1; then
  export LD_LIBRARY_PATH=$PWD/.scratch/gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  for d in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
    if [ -e "$d/libEGL_nvidia.so.0" ]; then
      printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s/libEGL_nvidia.so.0","api_version":"1.3.0"}}' "$d" > /tmp/nvidia_egl_icd.json
      export VK_ICD_FILENAMES=/tmp/nvidia_egl_icd.json; break
    fi
  done
fi
nvidia-smi -L 2>/dev/null || true
for b in "${@:-256}"; do
  /tmp/gb/node .scratch/gpu/webgpu-bench.mjs --batch "$b" --no-cpu --steps 10 2>&1 | grep -v "^Warning: max"
done
RUN
chmod +x "$out/run.sh"
du -sh "$out"
