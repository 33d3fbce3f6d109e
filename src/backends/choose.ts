/// <reference types="@webgpu/types" />
/**
 * Which backend runs, and why: the fastest that starts here, unless one is asked for.
 *
 *   Node:     native → wasm → js
 *   browsers: webgpu (a hardware adapter) → wasm → js   (wasm threaded where the page is cross-origin isolated)
 *
 * An explicit choice — DIFFUSE_BACKEND, the CLI's --backend, the explorer's ?backend= — is used as asked or
 * fails with the reason; it never falls back. `chooseBackend` returns one line saying which backend runs and
 * why each faster one did not start; the CLI prints it at start, the explorer shows it.
 */
import type { BackendName, Engine } from './backend.js';
import { backendByName, initWasm, initWebGPU, setBackend } from './index.js';

export interface BackendChoice {
  name: BackendName;
  engine: Engine;
  /** Who chose it: 'default' (the chain) or the option / variable that named it. */
  chosenBy: string;
  /** Faster backends of the chain that did not start, with the reason (empty when chosen explicitly). */
  skipped: { name: BackendName; reason: string }[];
  /** One line for the user: which backend runs and why each faster one did not. */
  line: string;
}

export interface ChooseOptions {
  /** A backend asked for by name (overrides DIFFUSE_BACKEND); `chosenBy` names where it came from. */
  backend?: string;
  chosenBy?: string;
  /** The WebGPU entry point (browsers: navigator.gpu, the default there). */
  gpu?: GPU;
  /** Which chain to walk; default: 'node' under Node, else 'browser'. */
  platform?: 'node' | 'browser';
}

const NAMES: readonly BackendName[] = ['js', 'native', 'wasm', 'webgpu'];

/** Fastest first; js always starts. */
export const BACKEND_CHAINS: Readonly<Record<'node' | 'browser', readonly BackendName[]>> = {
  node: ['native', 'wasm', 'js'],
  browser: ['webgpu', 'wasm', 'js'],
};

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

function browserGPU(): GPU | undefined {
  return typeof navigator !== 'undefined' ? (navigator as Navigator & { gpu?: GPU }).gpu : undefined;
}

/** Starts one backend; resolves to the engine or rejects with the reason it cannot run here. In the default
 *  chain (`strict`), WebGPU must offer a hardware adapter: a software fallback adapter is slower than the CPU. */
async function start(name: BackendName, opts: ChooseOptions, strict: boolean, platform: 'node' | 'browser'): Promise<Engine> {
  if (name === 'webgpu') {
    const gpu = opts.gpu ?? browserGPU();
    if (strict) {
      if (!gpu) throw new Error(platform === 'node' ? 'not tried by default in Node (ask for it: --backend webgpu)' : 'this browser has no WebGPU (navigator.gpu)');
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) throw new Error('no WebGPU adapter');
      const info = adapter.info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
      if (info?.isFallbackAdapter || (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter) {
        throw new Error('only a software (fallback) WebGPU adapter');
      }
    }
    return initWebGPU(gpu);
  }
  // wasm: nothing to wait for in Node; browsers fetch and compile the module first
  if (name === 'wasm') await initWasm();
  return backendByName(name);
}

function message(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/^backend '\w+' is not available: /, '').split('\n')[0];
}

/**
 * Picks the backend (see the file comment), makes it the current one (setBackend) and says why.
 * Throws when a backend asked for by name is unknown or cannot start here (the message names the option).
 */
export async function chooseBackend(opts: ChooseOptions = {}): Promise<BackendChoice> {
  const platform = opts.platform ?? (isNode ? 'node' : 'browser');
  const env = isNode ? process.env.DIFFUSE_BACKEND : undefined;
  const asked = opts.backend ?? (env || undefined);
  const chosenBy = opts.backend !== undefined ? (opts.chosenBy ?? 'the caller') : 'DIFFUSE_BACKEND';
  if (asked !== undefined) {
    if (!NAMES.includes(asked as BackendName)) {
      throw new Error(`${chosenBy}: unknown backend '${asked}' (choose one of ${NAMES.join(', ')})`);
    }
    const name = asked as BackendName;
    let engine: Engine;
    try {
      engine = await start(name, opts, false, platform);
    } catch (e) {
      throw new Error(`${chosenBy} ${name}: not available here: ${message(e)}`);
    }
    setBackend(name);
    return { name, engine, chosenBy, skipped: [], line: `diffuse: backend ${name} (chosen by ${chosenBy})` };
  }
  const chain = BACKEND_CHAINS[platform];
  const skipped: { name: BackendName; reason: string }[] = [];
  for (const name of chain) {
    let engine: Engine;
    try {
      engine = await start(name, opts, true, platform);
    } catch (e) {
      skipped.push({ name, reason: message(e) });
      continue;
    }
    setBackend(name);
    const why = skipped.length
      ? `: ${skipped.map((s) => `${s.name} did not start (${s.reason})`).join('; ')}`
      : ' (the fastest here)';
    return { name, engine, chosenBy: 'default', skipped, line: `diffuse: backend ${name}${why}` };
  }
  // unreachable while js ends every chain
  throw new Error(`no backend starts here: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}
