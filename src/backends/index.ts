/// <reference types="@webgpu/types" />
/**
 * Backend registry. `native` is the default in Node when its addon loads; otherwise `js`, with one
 * message saying what is missing. Chosen by API (`setBackend`) or by the DIFFUSE_BACKEND variable.
 * `wasm` (the kernels compiled to WebAssembly SIMD128, threaded) is chosen explicitly; in browsers after
 * `await initWasm()`.
 *
 * `webgpu` needs an asynchronous start (adapter and device): `await initWebGPU()` (Node: loads the `webgpu`
 * package, Dawn, lazily) or `await initWebGPU(navigator.gpu)` (browsers), then `setBackend('webgpu')`;
 * `await useBackendAsync(name)` does both. `availableBackends()` lists the CPU backends only (those that
 * start synchronously); `webgpuAvailable()` says whether WebGPU was initialized.
 */
import { type Backend, type BackendName, type Engine, missingKernels, withoutFused } from './backend.js';
import { jsBackend } from './js/index.js';

// Loaded only under Node. The specifier is a variable so that bundlers leave the loader (and the Node
// built-ins it imports) out of browser bundles: `diffuse` bundles for the browser as it is.
const isNode = typeof process !== 'undefined' && !!process.versions?.node;
const nativeLoader = './native/index.js';
const nativeModule: {
  loadNativeBackend: () => Backend | { error: string };
  nativeWatchSignals?: () => Int32Array | null;
  nativeUnwatchSignals?: () => void;
} | null = isNode
  ? await (import(/* @vite-ignore */ nativeLoader) as Promise<typeof import('./native/index.js')>).catch((e: unknown) => ({
    loadNativeBackend: () => ({ error: `cannot load the native backend module: ${(e as Error).message}` }),
  }))
  : null;
function loadNativeBackend(): Backend | { error: string } {
  return nativeModule ? nativeModule.loadNativeBackend() : { error: 'not running under Node' };
}

// The wasm backend: in Node it loads synchronously (./wasm/node.ts reads the module with fs); in browsers
// `await initWasm()` fetches and compiles it first (./wasm/browser.ts). A variable specifier, as for native:
// bundlers leave the Node loader (fs, worker_threads) out of browser bundles.
const wasmNodeLoader = './wasm/node.js';
const wasmNodeModule: { loadWasmBackend: () => Engine | { error: string } } | null = isNode
  ? await (import(/* @vite-ignore */ wasmNodeLoader) as Promise<typeof import('./wasm/node.js')>).catch((e: unknown) => ({
    loadWasmBackend: () => ({ error: `cannot load the wasm backend module: ${(e as Error).message}` }),
  }))
  : null;
let wasmBrowserResult: Engine | { error: string } | undefined;

/**
 * The native addon's signal word (set to the signal's number the moment SIGINT / SIGTERM arrives, even inside
 * a long synchronous step); null without the addon. See src/train/interrupt.ts.
 */
export function watchSignals(): Int32Array | null {
  return nativeModule?.nativeWatchSignals?.() ?? null;
}

export function unwatchSignals(): void {
  nativeModule?.nativeUnwatchSignals?.();
}

export type { Backend, BackendName, Engine } from './backend.js';

export { FUSED_NAMES, KERNELS, PRIMITIVE_NAMES, STORAGE_NAMES, withoutFused } from './backend.js';

const BACKEND_NAMES: readonly BackendName[] = ['js', 'native', 'wasm', 'webgpu'];

/** Checks a backend against the kernel table when it is registered, not at its first call. */
function checked<B extends Backend<any>>(b: B): B {
  const missing = missingKernels(b as unknown as Record<string, unknown>);
  if (missing.length) throw new Error(`backend '${b.name}' lacks the primitive kernels ${missing.join(', ')}`);
  return b;
}

const jsEngine: Engine = checked(jsBackend);
let nativeResult: Engine | { error: string } | undefined;
function native(): Engine | { error: string } {
  if (!nativeResult) {
    const n = loadNativeBackend();
    nativeResult = 'error' in n ? n : checked(n);
  }
  return nativeResult;
}

let wasmResult: Engine | { error: string } | undefined;
function wasm(): Engine | { error: string } {
  if (!wasmResult) {
    const w = wasmNodeModule ? wasmNodeModule.loadWasmBackend()
      : wasmBrowserResult ?? { error: 'not initialized: call `await initWasm()` first (browsers fetch the module asynchronously)' };
    if (!wasmNodeModule && !wasmBrowserResult) return w;
    wasmResult = 'error' in w ? w : checked(w);
  }
  return wasmResult;
}

/** Whether the wasm backend can run here, or why not (Node: loads it on first call; browsers: after initWasm). */
export function wasmAvailability(): { ok: true } | { ok: false; error: string } {
  const w = wasm();
  return 'error' in w ? { ok: false, error: w.error } : { ok: true };
}

/**
 * Browsers: fetches and compiles the wasm module (beside this package's src/backends/wasm/, or `url`) and
 * starts its Web Workers when the page is cross-origin isolated (SharedArrayBuffer), else runs it on one
 * thread. Resolves to wasmAvailability(). In Node nothing is needed (the module loads synchronously).
 */
export async function initWasm(opts: { url?: string | URL; threads?: number } = {}): Promise<{ ok: true } | { ok: false; error: string }> {
  if (!wasmNodeModule && !wasmBrowserResult) {
    const mod = await import('./wasm/browser.js');
    wasmBrowserResult = await mod.loadWasmBackendBrowser(opts);
  }
  return wasmAvailability();
}

/** The wasm backend's instruction set, convolution path and thread count (null when it is not loaded). */
export function wasmInfo(): import('./wasm/kernels.js').WasmInfo | null {
  const w = wasmResult;
  return w && !('error' in w) ? (w as unknown as import('./wasm/kernels.js').WasmBackend).wasm.info() : null;
}

let webgpuEngine: Engine | undefined;
let webgpuInit: Promise<Engine> | undefined;

/**
 * Starts the WebGPU backend once (later calls return the same engine). Node: without `gpu`, the `webgpu`
 * package (Dawn) is imported here and only here. Browsers: pass `navigator.gpu`. Throws when no adapter is
 * found, saying so.
 */
export function initWebGPU(gpu?: GPU, opts: { powerPreference?: GPUPowerPreference } = {}): Promise<Engine> {
  const init = webgpuInit ?? (async (): Promise<Engine> => {
    const mod = await import('./webgpu/index.js');
    const engine: Engine = checked(await mod.createWebGPUBackend(gpu, opts));
    webgpuEngine = engine;
    return engine;
  })().catch((e: unknown) => {
    webgpuInit = undefined;
    throw e;
  });
  webgpuInit = init;
  return init;
}

/** WebGPU pool and queue counters (null before initWebGPU): bytes in pooled buffers, bytes in use, dispatches, submits. */
export function webgpuStats(): { allocatedBytes: number; allocatedBuffers: number; inUseBytes: number; peakInUseBytes: number;
  dispatches: number; submits: number; adapter: { vendor: string; architecture: string; device: string; description: string } } | null {
  const rt = (webgpuEngine as { runtime?: import('./webgpu/runtime.js').Runtime } | undefined)?.runtime;
  if (!rt) return null;
  const p = rt.pool;
  return { allocatedBytes: p.allocatedBytes, allocatedBuffers: p.allocatedBuffers, inUseBytes: p.inUseBytes, peakInUseBytes: p.peakInUseBytes,
    dispatches: rt.dispatches, submits: rt.submits, adapter: rt.adapter };
}

/** Waits until the GPU has finished the work queued so far (for timing); a no-op on CPU backends. */
export async function webgpuSync(): Promise<void> {
  const rt = (webgpuEngine as { runtime?: import('./webgpu/runtime.js').Runtime } | undefined)?.runtime;
  if (rt) await rt.sync();
}

/** True once initWebGPU has succeeded. */
export function webgpuAvailable(): boolean {
  return !!webgpuEngine;
}

/** Names of the CPU backends that can run here (WebGPU needs `initWebGPU` first; see webgpuAvailable). */
export function availableBackends(): BackendName[] {
  const out: BackendName[] = ['js'];
  if (!('error' in native())) out.push('native');
  if (!('error' in wasm())) out.push('wasm');
  return out;
}

export function backendByName(name: BackendName): Engine {
  if (name === 'js') return jsEngine;
  if (name === 'native') {
    const n = native();
    if ('error' in n) throw new Error(`backend 'native' is not available: ${n.error}`);
    return n;
  }
  if (name === 'wasm') {
    const w = wasm();
    if ('error' in w) throw new Error(`backend 'wasm' is not available: ${w.error}`);
    return w;
  }
  if (name === 'webgpu') {
    if (!webgpuEngine) throw new Error("backend 'webgpu' is not initialized: call `await initWebGPU()` (or `await useBackendAsync('webgpu')`) first");
    return webgpuEngine;
  }
  const never: never = name;
  throw new Error(`unknown backend '${String(never)}' (choose one of ${BACKEND_NAMES.join(', ')})`);
}

let current: Engine | undefined;
let warned = false;
const primitiveOnly = new Map<Engine, Engine>();

export interface BackendOptions {
  /** false: the backend with its fused kernels switched off, every composite written out over the primitives
   *  (for tests and comparisons; DIFFUSE_FUSED=0 does the same for the default backend). */
  fused?: boolean;
}

function variant(be: Engine, fused: boolean): Engine {
  if (fused) return be;
  let p = primitiveOnly.get(be);
  if (!p) { p = withoutFused(be); primitiveOnly.set(be, p); }
  return p;
}

const envFused = () => (typeof process !== 'undefined' ? process.env?.DIFFUSE_FUSED !== '0' : true);

export function setBackend(name: BackendName, { fused = envFused() }: BackendOptions = {}): Engine {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`setBackend: unknown backend '${name}' (choose one of ${BACKEND_NAMES.join(', ')})`);
  }
  current = variant(backendByName(name), fused);
  return current;
}

/** setBackend, after initializing WebGPU when that is the one asked for. */
export async function useBackendAsync(name: BackendName, gpu?: GPU, opts: BackendOptions = {}): Promise<Engine> {
  if (name === 'webgpu') await initWebGPU(gpu);
  return setBackend(name, opts);
}

/** Whether the current backend keeps data on a device (false while none is chosen). */
export function currentBackendIsDevice(): boolean {
  return current?.device === true;
}

export function getBackend(): Engine {
  if (current) return current;
  const env = typeof process !== 'undefined' ? process.env?.DIFFUSE_BACKEND : undefined;
  if (env) {
    if (!BACKEND_NAMES.includes(env as BackendName)) {
      throw new Error(`DIFFUSE_BACKEND=${env}: unknown backend (choose one of ${BACKEND_NAMES.join(', ')})`);
    }
    return setBackend(env as BackendName);
  }
  const n = native();
  if ('error' in n) {
    if (!warned) {
      warned = true;
      console.warn(`diffuse: backend js: native did not start (${n.error})`);
    }
    current = variant(jsEngine, envFused());
  } else {
    current = variant(n, envFused());
  }
  return current;
}
