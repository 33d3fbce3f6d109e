/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend: every kernel of the interface as a WGSL compute shader (runtime.ts runs them).
 *
 * Kernel families (WGSL generated per variant and cached), one file each: elementwise.ts, gemm.ts, norm.ts,
 * softmax.ts, over the shared templates of base.ts and wgsl.ts:
 * - elementwise: one thread per element, 256 per workgroup, 2-D grids past 65,535 workgroups; broadcasting
 *   binaries/where/strided copies over dimensions the engine has merged (src/tensor/shape.ts mergeDims);
 * - GEMM: 64×64 output tiles, 16-deep K slices staged in workgroup memory, 16×16 threads computing 4×4 outputs
 *   each (register blocking). The same template runs matmul (batched, transposed operands by index) and the
 *   three convolutions as implicit GEMMs (the im2col matrix is gathered while loading the tile, never stored).
 *   Weight gradients, whose K (batch × pixels) dwarfs M×N, are split over K into partial tiles summed after.
 * - row reductions (sum/max, norms, softmax): one 256-thread workgroup per row with a tree reduction in
 *   workgroup memory; column reductions (dgamma, bias sums): one thread per output.
 *
 * Numerics: float32 throughout; sums accumulate in a different order than the CPU backends (1e-3 relative
 * agreement where reductions reorder, see test/webgpu.test.ts). erf (GELU) uses Abramowitz–Stegun 7.1.26
 * (|error| ≤ 1.5e-7).
 */
import type { Engine } from '../backend.js';
import { makeHelpers } from './base.js';
import { elementwiseKernels } from './elementwise.js';
import { gemmKernels } from './gemm.js';
import { normKernels } from './norm.js';
import { type AdapterDescription, Runtime } from './runtime.js';
import { softmaxKernels } from './softmax.js';

export { GpuArray, Runtime } from './runtime.js';

export interface WebGPUEngine extends Engine {
  readonly runtime: Runtime;
  readonly adapterInfo: AdapterDescription;
}

/** Builds the backend on a device. */
export function makeWebGPUBackend(rt: Runtime): WebGPUEngine {
  const h = makeHelpers(rt);
  return {
    name: 'webgpu',
    device: true,
    ...elementwiseKernels(rt, h),
    ...gemmKernels(rt, h),
    ...normKernels(rt, h),
    ...softmaxKernels(rt, h),
    empty: (n) => rt.alloc(n),
    full: (n, value) => { const a = rt.alloc(n); h.fill(a, value); return a; },
    fromHost: (data) => { const a = rt.upload(data); a.host = data; return a; },
    runtime: rt,
    adapterInfo: rt.adapter,
  };
}

/**
 * Requests an adapter and a device and returns the backend. Node: without `gpu`, the `webgpu` package (Dawn)
 * is imported here, lazily (XDG_RUNTIME_DIR is set to the temp folder when unset: Dawn's Vulkan loader wants it).
 */
export async function createWebGPUBackend(gpu?: GPU, opts: { powerPreference?: GPUPowerPreference } = {}): Promise<WebGPUEngine> {
  if (!gpu) {
    if (typeof navigator !== 'undefined' && (navigator as { gpu?: GPU }).gpu) gpu = (navigator as { gpu?: GPU }).gpu;
    else gpu = await nodeGPU();
  }
  const adapter = await gpu!.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error('webgpu: no GPU adapter found (in Node without a GPU, install Mesa lavapipe 25+: see .ci/install-webgpu.sh)');
  const lim = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(lim.maxStorageBuffersPerShaderStage, 10),
    },
  });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const desc: AdapterDescription = {
    vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '',
  };
  const rt = new Runtime(device, desc);
  // Dawn's instance (the GPU object) must outlive the device: a collected instance takes the device with it.
  rt.keepAlive = [gpu, adapter];
  return makeWebGPUBackend(rt);
}

async function nodeGPU(): Promise<GPU> {
  const proc = (globalThis as { process?: { env: Record<string, string | undefined> } }).process;
  if (!proc) throw new Error('webgpu: no navigator.gpu here; pass a GPU object to initWebGPU');
  if (!proc.env.XDG_RUNTIME_DIR) {
    const osName = 'node:os';
    const os = await import(/* @vite-ignore */ osName) as { tmpdir(): string };
    proc.env.XDG_RUNTIME_DIR = os.tmpdir();
  }
  const name = 'webgpu';
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = await import(/* @vite-ignore */ name) as typeof mod;
  } catch (e) {
    throw new Error(`webgpu: cannot load the 'webgpu' package (Dawn for Node): ${(e as Error).message}`);
  }
  // GPUBufferUsage, GPUMapMode, … as globals, as in browsers.
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return mod.create([]);
}

