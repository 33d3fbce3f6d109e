/**
 * The wasm backend in Node: reads diffuse_kernels.wasm beside this file (the relaxed-SIMD build where Node runs it), compiles it synchronously and starts
 * its worker threads (worker_threads, each instantiating the module over the shared memory). Node's main
 * thread may block (Atomics.wait), so a kernel's caller sleeps while the workers finish their last tickets.
 * Imported only under Node (../index.ts); browsers use ./browser.ts.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createMemory, defaultThreads, relaxedSimdSupported, type WasmBackend, wasmBackendOver, WasmRuntime, type WorkerStart } from './kernels.js';

/** A worker: instantiate, then run the pool loop until the process ends (dn_worker_start does not return). */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, stackTop, tls, tid } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
inst.exports.dn_worker_start(stackTop, tls, tid);
`;

/** DIFFUSE_WASM_MODULE, else the relaxed-SIMD build where this Node runs it (≥ 21), else the baseline one. */
export function wasmModulePath(): string {
  const file = relaxedSimdSupported() ? './diffuse_kernels_relaxed.wasm' : './diffuse_kernels.wasm';
  return process.env.DIFFUSE_WASM_MODULE || fileURLToPath(new URL(file, import.meta.url));
}

let loaded: WasmBackend | { error: string } | undefined;

/** The wasm backend (threads: DIFFUSE_NUM_THREADS, else min(cores, 4)), or why it cannot load. Never throws. */
export function loadWasmBackend(): WasmBackend | { error: string } {
  if (loaded) return loaded;
  try {
    const threads = defaultThreads(availableParallelism(), process.env.DIFFUSE_NUM_THREADS);
    if (typeof threads !== 'number') return (loaded = threads);
    let bytes: BufferSource;
    const path = wasmModulePath();
    try {
      bytes = readFileSync(path) as unknown as BufferSource;
    } catch (e) {
      return (loaded = { error: `cannot read ${path}: ${(e as Error).message.split('\n')[0]}` });
    }
    const module = new WebAssembly.Module(bytes);
    const rt = new WasmRuntime(module, createMemory(true));
    rt.ex.dn_set_can_block(1);
    rt.startWorkers(threads, (start: WorkerStart) => {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: start });
      w.unref(); // the pool never keeps the process alive
      // a worker that failed takes no tickets (the others and the caller carry on); say so once
      w.on('error', (e) => { console.warn(`diffuse: a wasm worker thread stopped: ${(e as Error).message.split('\n')[0]}`); });
    });
    loaded = wasmBackendOver(rt);
  } catch (e) {
    loaded = { error: (e as Error).message.split('\n')[0] };
  }
  return loaded;
}
