/**
 * What the engine suites (engine, fused, parity, unet, optim: every backend that loads) do not cover of the wasm
 * backend: its single-threaded build (pages without cross-origin isolation), results that do not depend on the
 * thread count, the length checks in front of the module, and the loader's report.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import * as D from '../src/index.js';
import { jsBackend } from '../src/backends/js/index.js';
import { createMemory, wasmBackendOver, WasmRuntime, type WasmBackend } from '../src/backends/wasm/kernels.js';
import { loadWasmBackend, wasmModulePath } from '../src/backends/wasm/node.js';
import { normalizedMaxError } from './helpers/compare.js';

const loaded = loadWasmBackend();
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
    assert.ok(normalizedMaxError(st.conv2d(x, w, bias, geom), jsBackend.conv2d(x, w, bias, geom)) < 1e-5);
    assert.ok(normalizedMaxError(st.conv2dBackwardInput(dy, w, geom), jsBackend.conv2dBackwardInput(dy, w, geom)) < 1e-5);
    assert.ok(normalizedMaxError(st.conv2dBackwardWeight(x, dy, geom), jsBackend.conv2dBackwardWeight(x, dy, geom)) < 1e-5);
    assert.ok(normalizedMaxError(st.matmul(a, b, 1, 130, 90, 70, false, false, 0, 0), jsBackend.matmul(a, b, 1, 130, 90, 70, false, false, 0, 0)) < 1e-5);
    const gn = st.groupNorm!(x, null, null, 3, 16, 120, 4, 1e-5, true), gr = jsBackend.groupNorm!(x, null, null, 3, 16, 120, 4, 1e-5, true);
    assert.ok(normalizedMaxError(gn.y, gr.y) < 1e-5);
  });

  test('results do not depend on the thread count (bit for bit)', () => {
    const one = singleThreaded(wasmModulePath(), true);
    assert.equal(one.wasm.info().threads, 1);
    assert.deepEqual(one.conv2d(x, w, bias, geom), mt.conv2d(x, w, bias, geom));
    assert.deepEqual(one.conv2dBackwardWeight(x, dy, geom), mt.conv2dBackwardWeight(x, dy, geom));
    assert.deepEqual(one.matmul(a, b, 1, 130, 90, 70, false, false, 0, 0), mt.matmul(a, b, 1, 130, 90, 70, false, false, 0, 0));
  });

  test('in-place kernels write through; a strided copy moves only the span it touches', () => {
    const dst = new Float32Array(40).fill(7), src = Float32Array.from({ length: 30 }, (_, i) => i);
    const ref = dst.slice();
    jsBackend.stridedCopy(src, 3, [5, 1], [4, 2], ref, 10, [6, 2], true);
    mt.stridedCopy(src, 3, [5, 1], [4, 2], dst, 10, [6, 2], true);
    assert.deepEqual(dst, ref);
    const s = rand(1000, 8), v = rand(1000, 9), s2 = s.slice();
    mt.lerpInPlace!(s, v, 0.25);
    jsBackend.lerpInPlace!(s2, v, 0.25);
    assert.deepEqual(s, s2);
  });

  test('wrong lengths throw a one-line Error naming the kernel, before the module is touched', () => {
    assert.throws(() => mt.conv2d(x.subarray(1), w, bias, geom), /^Error: wasm conv2d: x has \d+ elements, expected \d+$/);
    assert.throws(() => mt.matmul(a, b.subarray(7), 1, 130, 90, 70, false, false, 0, 0), /wasm matmul: b has/);
    assert.throws(() => mt.binary('add', a, [1], b, [2], [a.length]), /wasm binary: b .* too short/);
    assert.throws(() => mt.gatherRows(a, Int32Array.of(0, 1000), 70), /wasm gatherRows: index 1000 out of range/);
    assert.throws(() => mt.stridedCopy(a, 0, [1], [10], b, b.length - 5, [1], false), /wasm stridedCopy: the walk writes/);
    // still healthy afterwards
    assert.ok(normalizedMaxError(mt.conv2d(x, w, bias, geom), jsBackend.conv2d(x, w, bias, geom)) < 1e-5);
  });

  test('DIFFUSE_BACKEND / setBackend select it', () => {
    D.setBackend('wasm');
    assert.equal(D.getBackend().name, 'wasm');
    const y = D.conv2d(D.tensor(Array.from(x), [3, 16, 12, 10]), D.tensor(Array.from(w), [24, 16, 3, 3]), null, { padding: 1 });
    assert.deepEqual(y.shape, [3, 24, 12, 10]);
    D.setBackend('js');
  });
});
