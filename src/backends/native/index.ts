/**
 * The native CPU backend: the N-API addon build/Release/diffuse_native.node (sources in native/src,
 * built by `npm install` / `npm run build:native`), adapted to the `Backend` interface.
 *
 * - `loadNativeBackend()` loads the addon once and returns the backend, or `{ error }` saying why it is
 *   unavailable (never throws). The registry (../index.ts) calls it lazily.
 * - `nativeBackend()` returns the backend or throws that error.
 * - `nativeThreads(n?)` gets / sets the size of the addon's thread pool (the calling thread included;
 *   default: the number of CPUs, or DIFFUSE_NUM_THREADS); every kernel, GEMM included, runs on it.
 * - `nativeInfo()` says which GEMM, convolution implementation and instruction set the addon runs.
 *
 * The addon's functions take the Backend arguments in the same order, so the backend's methods are the
 * addon's functions themselves: no wrapper frame per kernel call. The addon validates every call (types,
 * integer sizes, buffer lengths against shapes) and throws an Error naming the kernel instead of crashing.
 * Which functions it must export is derived from the kernel table (../backend.ts `KERNELS`): every primitive
 * and the fused kernels in NATIVE_KERNELS. A missing one makes the backend unavailable when the addon loads,
 * saying which, instead of failing at the kernel's first call.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Backend, type FusedName, type KernelSignatures, PRIMITIVE_NAMES, type PrimitiveName } from '../backend.js';
import { jsBackend } from '../js/index.js';

/** The fused kernels the addon implements (the EMA update stays on the host: it is one loop either way). */
const NATIVE_FUSED = [
  'activation', 'activationBackward', 'groupNorm', 'groupNormBackward', 'groupNormStats', 'conv2dNormed',
  'conv2dBackwardWeightNormed', 'layerNorm', 'layerNormBackward', 'softmax',
  'softmaxBackward', 'logSoftmax', 'logSoftmaxBackward', 'upsampleNearest2x', 'avgPool2x2', 'adamW', 'free',
] as const satisfies readonly FusedName[];
type NativeKernelName = PrimitiveName | 'empty' | 'full' | (typeof NATIVE_FUSED)[number];

/** The addon's name table: each of these must be an exported function of the same name and signature
 *  (`empty` and `full` too, so that `free` can take back what concatenations and slices are written into). */
export const NATIVE_KERNELS: readonly NativeKernelName[] = [...PRIMITIVE_NAMES, 'empty', 'full', ...NATIVE_FUSED];

/** What the addon exports: those kernels plus pool / diagnostic helpers. */
export interface NativeAddon extends Pick<KernelSignatures, NativeKernelName> {
  /** Pool size; with an argument (1..256) resizes the pool first. */
  threads(n?: number): number;
  info(): NativeInfo;
  /** Convolution implementation: 'auto' (Winograd F(2×2, 3×3) or F(4×4, 3×3), chosen per shape, for 3×3
   *  stride-1 padding-1 layers, direct AVX-512 / AVX2 kernels for the rest, where the CPU has them), 'direct'
   *  (no Winograd), 'im2col' (im2col + GEMM everywhere), 'avx2' (the AVX2 kernels even on AVX-512 CPUs) or
   *  'winograd2' / 'winograd4' (one Winograd tile size wherever Winograd runs); the last three for tests.
   *  Returns the implementation in effect. */
  convImpl(mode?: 'auto' | 'direct' | 'im2col' | 'avx2' | 'winograd2' | 'winograd4'): string;
  /** Chains a SIGINT/SIGTERM handler in front of Node's that writes the signal number into the returned
   *  Int32Array(1) (null: no POSIX signals, or not the main thread). See native/src/signals.cc. */
  watchSignals(): Int32Array | null;
  unwatchSignals(): void;
  /** Caps the instruction set of the GEMM and convolution kernels ('auto': the CPU's best; 'avx2'; 'sse2' or
   *  'neon': the architecture's baseline) — every path can be tested on one machine. Returns the ISA in
   *  effect (never above the CPU's). DIFFUSE_ISA sets the cap at load. */
  isa(cap?: 'auto' | 'avx512' | 'avx2' | 'sse2' | 'neon'): string;
}

export interface NativeInfo {
  /** The GEMM in use: our packed kernels, their ISA and register tile, e.g. 'diffuse sgemm avx2 6x16'. */
  gemm: string;
  /** 'winograd+direct-avx512', 'direct-avx2', 'im2col+gemm', ... */
  conv: string;
  /** The ISA the kernels run ('avx512', 'avx2', 'sse2', 'neon', 'generic') and the best this CPU has. */
  isa: string;
  cpu: string;
  threads: number;
}

const ADDON_RELATIVE = join('build', 'Release', 'diffuse_native.node');

/** The package root: the nearest ancestor of this file holding package.json (works from src/ and dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  let fallback: string | undefined;
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, ADDON_RELATIVE))) return dir;
    if (fallback === undefined && existsSync(join(dir, 'package.json'))) fallback = dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return fallback ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** Absolute path of the addon (DIFFUSE_NATIVE_ADDON overrides it). */
export function nativeAddonPath(): string {
  const env = typeof process !== 'undefined' ? process.env?.DIFFUSE_NATIVE_ADDON : undefined;
  return env ? resolve(env) : join(packageRoot(), ADDON_RELATIVE);
}

let loaded: { addon: NativeAddon; backend: Backend } | { error: string } | undefined;

function load(): { addon: NativeAddon; backend: Backend } | { error: string } {
  if (loaded) return loaded;
  if (typeof process === 'undefined' || !process.versions?.node) {
    loaded = { error: 'not running in Node.js' };
    return loaded;
  }
  const path = nativeAddonPath();
  if (!existsSync(path)) {
    loaded = { error: `addon not built (${path} is missing; run \`npm run build:native\`)` };
    return loaded;
  }
  const isa = process.env.DIFFUSE_ISA;
  if (isa && !['auto', 'avx512', 'avx2', 'sse2', 'neon', 'generic'].includes(isa)) {
    loaded = { error: `DIFFUSE_ISA=${isa}: unknown instruction set (choose auto, avx512, avx2, sse2 or neon)` };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    const backend = adaptAddon(addon);
    loaded = 'missing' in backend
      ? { error: `${path} lacks the kernels ${backend.missing.join(', ')} (an old build? run \`npm run build:native\`)` }
      : { addon, backend };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    loaded = { error: `could not load ${path}: ${msg}` };
  }
  return loaded;
}

/** The backend over a loaded addon, or the names of the kernels it lacks. */
export function adaptAddon(a: NativeAddon): Backend | { missing: string[] } {
  const missing = NATIVE_KERNELS.filter((k) => typeof (a as unknown as Record<string, unknown>)[k] !== 'function');
  if (missing.length) return { missing };
  const kernels = Object.fromEntries(NATIVE_KERNELS.map((k) => [k, a[k]]));
  return {
    name: 'native',
    device: false,
    // Storage is host memory, as on the js backend (`empty` and `full` are the addon's: among the kernels below).
    fromHost: jsBackend.fromHost,
    lerpInPlace: jsBackend.lerpInPlace,
    ...kernels,
  } as Backend;
}

/** The native backend, or `{ error }` when the addon is missing or cannot load here. Never throws. */
export function loadNativeBackend(): Backend | { error: string } {
  const r = load();
  return 'error' in r ? { error: r.error } : r.backend;
}

/** The native backend; throws when it is unavailable. */
export function nativeBackend(): Backend {
  const r = load();
  if ('error' in r) throw new Error(`diffuse: native backend unavailable: ${r.error}`);
  return r.backend;
}

/** The raw addon (pool and diagnostic helpers included); throws when it is unavailable. */
export function nativeAddon(): NativeAddon {
  const r = load();
  if ('error' in r) throw new Error(`diffuse: native backend unavailable: ${r.error}`);
  return r.addon;
}

/** Gets (no argument) or sets the native thread pool size (1..256); returns the size in effect. */
export function nativeThreads(n?: number): number {
  return n === undefined ? nativeAddon().threads() : nativeAddon().threads(n);
}

/** GEMM and convolution implementation, ISA and thread count of the loaded addon. */
export function nativeInfo(): NativeInfo {
  return nativeAddon().info();
}

/**
 * A flag word the addon's signal handler sets to the signal's number the moment SIGINT or SIGTERM arrives,
 * even while JavaScript runs a long synchronous step (Node's own handlers wait for the event loop). Null
 * when the addon is unavailable. Call after process.on(...) for those signals; `nativeUnwatchSignals()`
 * before process.off(...).
 */
export function nativeWatchSignals(): Int32Array | null {
  const r = load();
  if ('error' in r || typeof r.addon.watchSignals !== 'function') return null;
  return r.addon.watchSignals();
}

export function nativeUnwatchSignals(): void {
  const r = load();
  if (!('error' in r) && typeof r.addon.unwatchSignals === 'function') r.addon.unwatchSignals();
}
