/**
 * What the engine suites (engine, fused, parity, unet, optim: every backend that loads) do not cover of the wasm
 * backend: its single-threaded build (pages without cross-origin isolation), results that do not depend on the
 * thread count, the length checks in front of the module, the loader's report, and the browser path: a page
 * that imports the registry, bundled by vite, in headless Chromium with and without cross-origin isolation
 * (Web Workers over a shared memory / the single-threaded build). Without chromium that case is skipped
 * (test/web-e2e.test.ts fails under CI when it is missing).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { describe, test } from 'node:test';

import * as D from '../src/index.js';
import { jsBackend } from '../src/backends/js/index.js';
import { type DeviceArray, type FStore, isDeviceArray } from '../src/backends/backend.js';
import { createMemory, wasmBackendOver, WasmRuntime, type WasmBackend } from '../src/backends/wasm/kernels.js';
import { loadWasmBackend, wasmModulePath } from '../src/backends/wasm/node.js';
import { normalizedMaxError } from './helpers/compare.js';

const loaded = loadWasmBackend();
/** A kernel result on the host (the wasm backend returns arrays in its linear memory). */
const h = (a: FStore): Float32Array => (isDeviceArray(a) ? a.readSync!() : a);
const skip = 'error' in loaded ? `wasm backend unavailable: ${loaded.error}` : false;

function rand(n: number, seed: number): Float32Array {
  const g = new D.Generator(seed);
  return D.randn([n], g).data as Float32Array;
}

/** A backend over a fresh instance of `file` with no worker threads. */
function singleThreaded(file: string, shared: boolean): WasmBackend {
  const module = new WebAssembly.Module(readFileSync(file));
  return wasmBackendOver(new WasmRuntime(module, createMemory(shared)));
}

const geom = { n: 3, c: 16, h: 12, w: 10, o: 24, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, oh: 12, ow: 10 };
const x = rand(3 * 16 * 12 * 10, 1), w = rand(24 * 16 * 9, 2), bias = rand(24, 3), dy = rand(3 * 24 * 12 * 10, 4);
const a = rand(130 * 70, 5), b = rand(70 * 90, 6);

describe('wasm backend', { skip }, () => {
  const mt = loaded as WasmBackend;

  test('loads with threads, reports what runs', () => {
    assert.deepEqual(D.wasmAvailability(), { ok: true });
    assert.ok(D.availableBackends().includes('wasm'));
    const info = mt.wasm.info();
    assert.equal(info.isa, 'simd128');
    assert.equal(info.conv, 'winograd+direct-simd128');
    assert.ok(info.threads >= 1);
  });

  test('the single-threaded build (non-shared memory) matches the js reference', () => {
    const st = singleThreaded(wasmModulePath().replace(/\.wasm$/, '_st.wasm'), false);
    assert.equal(st.wasm.info().threads, 1);
    assert.ok(normalizedMaxError(h(st.conv2d(x, w, bias, geom)), jsBackend.conv2d(x, w, bias, geom)) < 1e-5);
    assert.ok(normalizedMaxError(h(st.conv2dBackwardInput(dy, w, geom)), jsBackend.conv2dBackwardInput(dy, w, geom)) < 1e-5);
    assert.ok(normalizedMaxError(h(st.conv2dBackwardWeight(x, dy, geom)), jsBackend.conv2dBackwardWeight(x, dy, geom)) < 1e-5);
    assert.ok(normalizedMaxError(h(st.matmul(a, b, 1, 130, 90, 70, false, false, 0, 0)), jsBackend.matmul(a, b, 1, 130, 90, 70, false, false, 0, 0)) < 1e-5);
    const gn = st.groupNorm!(x, null, null, 3, 16, 120, 4, 1e-5, true), gr = jsBackend.groupNorm!(x, null, null, 3, 16, 120, 4, 1e-5, true);
    assert.ok(normalizedMaxError(h(gn.y), gr.y) < 1e-5);
  });

  test('results do not depend on the thread count (bit for bit)', () => {
    const one = singleThreaded(wasmModulePath(), true);
    assert.equal(one.wasm.info().threads, 1);
    assert.deepEqual(h(one.conv2d(x, w, bias, geom)), h(mt.conv2d(x, w, bias, geom)));
    assert.deepEqual(h(one.conv2dBackwardWeight(x, dy, geom)), h(mt.conv2dBackwardWeight(x, dy, geom)));
    assert.deepEqual(h(one.matmul(a, b, 1, 130, 90, 70, false, false, 0, 0)), h(mt.matmul(a, b, 1, 130, 90, 70, false, false, 0, 0)));
  });

  test('in-place kernels write through; a strided copy moves only the span it touches', () => {
    const dst = new Float32Array(40).fill(7), src = Float32Array.from({ length: 30 }, (_, i) => i);
    const ref = dst.slice();
    jsBackend.stridedCopy(src, 3, [5, 1], [4, 2], ref, 10, [6, 2], true);
    mt.stridedCopy(src, 3, [5, 1], [4, 2], dst, 10, [6, 2], true);
    assert.deepEqual(dst, ref);
    // a dense (permuting) write, which skips copying dst in, and a gapped one, which must keep what it skips
    for (const [dstStrides, off] of [[[1, 4], 0], [[1, 8], 3]] as [number[], number][]) {
      const d1 = new Float32Array(40).fill(-1), d2 = d1.slice();
      jsBackend.stridedCopy(src, 0, [5, 1], [4, 5], d2, off, dstStrides, false);
      mt.stridedCopy(src, 0, [5, 1], [4, 5], d1, off, dstStrides, false);
      assert.deepEqual(d1, d2);
    }
    const s = rand(1000, 8), v = rand(1000, 9), s2 = s.slice();
    mt.lerpInPlace!(s, v, 0.25);
    jsBackend.lerpInPlace!(s2, v, 0.25);
    assert.deepEqual(s, s2);
    // the same on arrays in the linear memory: written in place, a stale host copy dropped
    const ds = mt.fromHost(new Float32Array(40).fill(7)), r2 = new Float32Array(40).fill(7);
    h(ds);
    mt.stridedCopy(mt.fromHost(src), 3, [5, 1], [4, 2], ds, 10, [6, 2], true);
    jsBackend.stridedCopy(src, 3, [5, 1], [4, 2], r2, 10, [6, 2], true);
    assert.deepEqual(h(ds), r2);
    const sw = mt.fromHost(s);
    h(sw);
    mt.lerpInPlace!(sw, mt.fromHost(v), 0.5);
    jsBackend.lerpInPlace!(s2, v, 0.5);
    assert.deepEqual(h(sw), s2);
  });

  test('storage in the linear memory: freed on release and reused; a released array refuses use', () => {
    const a1 = mt.empty(5000) as DeviceArray & { ptr: number };
    const p = a1.ptr;
    a1.release();
    assert.equal(a1.released, true);
    assert.throws(() => mt.unary('neg', a1), /used after it was disposed/);
    const a2 = mt.full(5000, 3) as DeviceArray & { ptr: number };
    assert.equal(a2.ptr, p, 'the freed block is reused');
    assert.deepEqual(h(mt.affine(a2, 2, 1)), new Float32Array(5000).fill(7));
    // a tensor scope releases what it made
    D.setBackend('wasm');
    let inner: D.Tensor | undefined;
    const kept = D.scope(() => { inner = D.tensor([1, 2, 3], [3]).mul(2); return inner.add(1); });
    assert.equal(inner!.isDisposed, true);
    assert.deepEqual(Array.from(kept.data), [3, 5, 7]);
    D.setBackend('js');
  });

  test('conv2d at batch 1: packed weights are reused only while unchanged', () => {
    const g1 = { n: 1, c: 16, h: 9, w: 9, o: 24, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, oh: 9, ow: 9 };
    const xs = rand(16 * 81, 12), ws = rand(24 * 16 * 9, 13);
    const y1 = h(mt.conv2d(xs, ws, null, g1));
    assert.ok(normalizedMaxError(y1, jsBackend.conv2d(xs, ws, null, g1)) < 1e-5);
    ws[ws.length - 1] += 0.5;
    const y2 = h(mt.conv2d(xs, ws, null, g1));
    assert.ok(normalizedMaxError(y2, jsBackend.conv2d(xs, ws, null, g1)) < 1e-5);
    assert.notDeepEqual(y2, y1);
  });

  test('wrong lengths throw a one-line Error naming the kernel, before the module is touched', () => {
    assert.throws(() => mt.conv2d(x.subarray(1), w, bias, geom), /^Error: wasm conv2d: x has \d+ elements, expected \d+$/);
    assert.throws(() => mt.matmul(a, b.subarray(7), 1, 130, 90, 70, false, false, 0, 0), /wasm matmul: b has/);
    assert.throws(() => mt.binary('add', a, [1], b, [2], [a.length]), /wasm binary: b .* too short/);
    assert.throws(() => mt.gatherRows(a, Int32Array.of(0, 1000), 70), /wasm gatherRows: index 1000 out of range/);
    assert.throws(() => mt.stridedCopy(a, 0, [1], [10], b, b.length - 5, [1], false), /wasm stridedCopy: the walk writes/);
    // still healthy afterwards
    assert.ok(normalizedMaxError(h(mt.conv2d(x, w, bias, geom)), jsBackend.conv2d(x, w, bias, geom)) < 1e-5);
  });

  test('DIFFUSE_BACKEND / setBackend select it', () => {
    D.setBackend('wasm');
    assert.equal(D.getBackend().name, 'wasm');
    const y = D.conv2d(D.tensor(Array.from(x), [3, 16, 12, 10]), D.tensor(Array.from(w), [24, 16, 3, 3]), null, { padding: 1 });
    assert.deepEqual(y.shape, [3, 24, 12, 10]);
    D.setBackend('js');
  });
});

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROOT = resolve(import.meta.dirname, '..');

/** Static files of `dir`, with the cross-origin isolation headers or without. */
function serve(dir: string, isolated: boolean): Promise<Server> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer((req, res) => {
    const file = normalize(join(dir, new URL(req.url ?? '/', 'http://x').pathname.replace(/\/$/, '/index.html')));
    if (!file.startsWith(dir) || !existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, {
      'Content-Type': types[extname(file)] ?? 'application/octet-stream',
      ...(isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {}),
    }).end(readFileSync(file));
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res(server)));
}

const PAGE = `
import { backendByName, initWasm, setBackend, wasmInfo } from '${ROOT}/src/backends/index.ts';
import { jsBackend } from '${ROOT}/src/backends/js/index.ts';
(async () => {
  try {
    const r = await initWasm({ threads: 2 });
    if (!r.ok) throw new Error(r.error);
    setBackend('wasm');
    const g = { n: 4, c: 16, h: 14, w: 14, o: 24, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, oh: 14, ow: 14 };
    const x = new Float32Array(4 * 16 * 196).map((_, i) => Math.sin(i)), w = new Float32Array(24 * 16 * 9).map((_, i) => Math.cos(i) * 0.1);
    const y = backendByName('wasm').conv2d(x, w, null, g).readSync(), yr = jsBackend.conv2d(x, w, null, g);
    let err = 0;
    for (let i = 0; i < y.length; i++) err = Math.max(err, Math.abs(y[i] - yr[i]));
    document.title = 'OK ' + JSON.stringify({ ...wasmInfo(), err });
  } catch (e) { document.title = 'ERR ' + e.message; }
})();
`;

test('in a vite-bundled page in Chromium: threaded (the relaxed-SIMD build) when cross-origin isolated, else one thread', {
  skip: existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}`,
}, async () => {
  const { build } = await import('vite');
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-wasm-page-'));
  try {
    writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="./main.ts"></script>');
    writeFileSync(join(dir, 'main.ts'), PAGE);
    await build({ root: dir, configFile: false, logLevel: 'error', build: { outDir: join(dir, 'dist'), target: 'es2022' } });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-background-networking'] });
    try {
      for (const isolated of [true, false]) {
        const server = await serve(join(dir, 'dist'), isolated);
        try {
          const page = await browser.newPage();
          await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
          await page.waitForFunction(() => /^(OK|ERR)/.test(document.title), null, { timeout: 60_000 });
          const title = await page.title();
          assert.match(title, /^OK /, title);
          const r = JSON.parse(title.slice(3)) as { isa: string; conv: string; threads: number; err: number; note?: string };
          // Chromium runs relaxed SIMD: the threaded page loads the fused-multiply-add build
          assert.equal(r.isa, isolated ? 'simd128+relaxed' : 'simd128', title);
          assert.equal(r.threads, isolated ? 2 : 1, title);
          if (!isolated) assert.match(r.note ?? '', /not cross-origin isolated/);
          assert.ok(r.err < 1e-5, title);
        } finally {
          server.close();
        }
      }
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
