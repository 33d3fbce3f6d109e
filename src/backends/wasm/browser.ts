/**
 * The wasm backend in browsers: fetches diffuse_kernels.wasm, or diffuse_kernels_relaxed.wasm where the
 * browser runs relaxed SIMD (bundlers resolve the URLs beside this file), and where the page is cross-origin
 * isolated (SharedArrayBuffer available) starts Web Workers over a shared memory; otherwise it runs
 * diffuse_kernels_st.wasm, the single-threaded build (a non-shared memory).
 *
 * A browser's main thread may not block (Atomics.wait throws there), so its kernel calls spin while the
 * workers finish their last tickets (dn_set_can_block(0)); the pool hands every ticket out dynamically, so
 * that wait is at most one ticket long. In a worker (e.g. the explorer's training worker) it may block.
 */
import { createMemory, defaultThreads, relaxedSimdSupported, type WasmBackend, wasmBackendOver, WasmRuntime, type WorkerStart } from './kernels.js';

const WORKER_SOURCE = `
onmessage = (e) => {
  const { module, memory, stackTop, tls, tid } = e.data;
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  inst.exports.dn_worker_start(stackTop, tls, tid);
};
`;

declare const crossOriginIsolated: boolean | undefined;
declare const navigator: { hardwareConcurrency?: number } | undefined;
declare const Worker: { new (url: string): { postMessage(m: unknown): void } } | undefined;
declare const WorkerGlobalScope: unknown;

export async function loadWasmBackendBrowser(opts: { url?: string | URL; threads?: number } = {}): Promise<WasmBackend | { error: string }> {
  try {
    if (typeof WebAssembly === 'undefined') return { error: 'WebAssembly is not available' };
    const isolated = typeof crossOriginIsolated !== 'undefined' && crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined';
    const asked = opts.threads ?? defaultThreads(typeof navigator !== 'undefined' ? navigator.hardwareConcurrency ?? 1 : 1, undefined);
    if (typeof asked !== 'number') return asked;
    const threaded = isolated && typeof Worker !== 'undefined';
    // threaded: the relaxed-SIMD build where the browser runs it (fused multiply-adds), else the baseline one
    const url = opts.url ?? (!threaded ? new URL('./diffuse_kernels_st.wasm', import.meta.url)
      : relaxedSimdSupported() ? new URL('./diffuse_kernels_relaxed.wasm', import.meta.url)
        : new URL('./diffuse_kernels.wasm', import.meta.url));
    const res = await fetch(url);
    if (!res.ok) return { error: `fetching ${String(url)}: HTTP ${res.status}` };
    const module = await WebAssembly.compile(await res.arrayBuffer());
    const rt = new WasmRuntime(module, createMemory(threaded));
    if (!threaded) {
      rt.note = asked > 1 ? 'one thread: the page is not cross-origin isolated (no SharedArrayBuffer)' : undefined;
      return wasmBackendOver(rt);
    }
    // a worker scope may block; a window may not
    rt.ex.dn_set_can_block(typeof WorkerGlobalScope !== 'undefined' ? 1 : 0);
    const src = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
    rt.startWorkers(asked, (start: WorkerStart) => new Worker!(src).postMessage(start));
    return wasmBackendOver(rt);
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}
