/**
 * What every kernel family shares on one device: host arrays moved to the device, the elementwise and
 * strided kernel templates, row dispatch, reductions, fills, slices and the strided copy.
 */
import type { FStore, ReduceOp } from '../backend.js';
import { GpuArray, type Kernel, type ParamType, type Runtime } from './runtime.js';
import { COMMON, FLAT, GID, RED_SUM, ROW, ROWID, WG, grid, stridedIndex, stridedParams, stridedValues } from './wgsl.js';

export type Helpers = ReturnType<typeof makeHelpers>;

export function makeHelpers(rt: Runtime) {
  const arr = (x: FStore): GpuArray => {
    if (x instanceof GpuArray) return x;
    if (x instanceof Float32Array) { const a = rt.upload(x); a.host = x; return a; }
    throw new Error(`webgpu: a tensor on another device (${(x as { device: string }).device}) reached a webgpu kernel`);
  };
  const touch = (a: GpuArray) => { a.host = null; };

  const ew = (key: string, nIn: number, expr: string, params: [string, ParamType][], pre = ''): Kernel =>
    rt.kernel(`ew:${key}`, [['n', 'u32'], ...params], () => `${COMMON}
${Array.from({ length: nIn }, (_, j) => `@group(0) @binding(${j + 1}) var<storage, read> x${j}: array<f32>;`).join('\n')}
@group(0) @binding(${nIn + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  ${pre}
  out[i] = ${expr};
}`);

  const runEw = (k: Kernel, n: number, values: number[], inputs: GpuArray[]): GpuArray => {
    const out = rt.alloc(n);
    if (n) rt.dispatch(k, [n, ...values], [...inputs, out], grid(Math.ceil(n / WG)));
    return out;
  };

  const stridedKernel = (key: string, k: number, r: number, body: string, extra: [string, ParamType][] = []) =>
    rt.kernel(`st:${key}:${r}`, [...stridedParams(r, k), ...extra], () => `${COMMON}
${Array.from({ length: k }, (_, j) => `@group(0) @binding(${j + 1}) var<storage, read> x${j}: array<f32>;`).join('\n')}
@group(0) @binding(${k + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  ${stridedIndex(r, k)}
  ${body}
}`);

  const broadcastOp = (key: string, body: string, inputs: FStore[], strides: number[][], outShape: number[]): GpuArray => {
    // Dimensions arrive merged (the engine's mergeDims): one kernel variant per rank.
    const n = outShape.reduce((a, b) => a * b, 1);
    const k = stridedKernel(key, inputs.length, outShape.length, body);
    const out = rt.alloc(n);
    if (n) rt.dispatch(k, stridedValues(n, outShape, strides, inputs.map(() => 0)), [...inputs.map(arr), out], grid(Math.ceil(n / WG)));
    return out;
  };

  const rowsOp = (k: Kernel, values: number[], buffers: (GpuArray | null)[], rows: number) => rt.dispatch(k, values, buffers, grid(rows));

  // ---- reductions

  function reduceRaw(op: ReduceOp, x: GpuArray, outer: number, size: number, inner: number): GpuArray {
    const out = rt.alloc(outer * inner);
    if (outer * inner === 0) return out;
    const init = op === 'sum' ? '0.0' : 'ninf()';
    const accum = op === 'sum' ? 'acc += v;' : 'if (v > acc || v != v) { acc = v; }';
    if (inner === 1) {
      const k = rt.kernel(`reduceRow:${op}`, [['outer', 'u32'], ['size', 'u32']], () => `${COMMON}${RED_SUM}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.outer) { return; }
  var acc = ${init};
  for (var j = t; j < P.size; j += 256u) { let v = x[row * P.size + j]; ${accum} }
  let r = ${op === 'sum' ? 'reduceSum(acc, t)' : 'reduceMax(acc, t)'};
  if (t == 0u) { out[row] = r; }
}`);
      rt.dispatch(k, [outer, size], [x, out], grid(outer));
    } else {
      const k = rt.kernel(`reduceCol:${op}`, [['n', 'u32'], ['size', 'u32'], ['inner', 'u32']], () => `${COMMON}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  let o = i / P.inner; let j = i % P.inner;
  let base = o * P.size * P.inner + j;
  var acc = ${init};
  for (var r = 0u; r < P.size; r++) { let v = x[base + r * P.inner]; ${accum} }
  out[i] = acc;
}`);
      rt.dispatch(k, [outer * inner, size, inner], [x, out], grid(Math.ceil((outer * inner) / WG)));
    }
    return out;
  }

  const sumSplits = (partial: GpuArray, splits: number, size: number): GpuArray => {
    if (splits === 1) return partial;
    const out = reduceRaw('sum', partial, 1, splits, size);
    return out;
  };

  function stridedCopy(src: FStore, srcOffset: number, srcStrides: number[], shape: number[], dst: FStore, dstOffset: number, dstStrides: number[], accumulate: boolean): void {
    const d = arr(dst);
    touch(d);
    const n = shape.reduce((a, b) => a * b, 1);
    if (n === 0) return;
    const m = { shape, strides: [srcStrides, dstStrides] }; // merged by the engine
    const r = m.shape.length;
    // Accumulating into repeated destinations would race: then one thread does it all, in order.
    const injective = !accumulate || isInjective(m.shape, m.strides[1]);
    const body = accumulate ? 'out[o1] += x0[o0];' : 'out[o1] = x0[o0];';
    const k = rt.kernel(`copy:${accumulate}:${r}:${injective}`, stridedParams(r, 2), () => `
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${injective ? WG : 1})
fn main(${GID}) {
${injective ? `${FLAT}\n  if (i >= P.n) { return; }\n  ${stridedIndex(r, 2)}\n  ${body}`
  : `for (var i = 0u; i < P.n; i++) {\n  ${stridedIndex(r, 2)}\n  ${body}\n  }`}
}`);
    rt.dispatch(k, stridedValues(n, m.shape, m.strides, [srcOffset, dstOffset]), [arr(src), d], injective ? grid(Math.ceil(n / WG)) : [1]);
  }

  function isInjective(shape: number[], strides: number[]): boolean {
    const dims = shape.map((s, i) => [s, Math.abs(strides[i])]).filter(([s]) => s > 1).sort((a, b) => a[1] - b[1]);
    let extent = 1;
    for (const [s, st] of dims) {
      if (st < extent) return false;
      extent = st * s;
    }
    return true;
  }

  function fill(a: GpuArray, value: number): void {
    touch(a);
    const k = rt.kernel('fill', [['n', 'u32'], ['v', 'f32']], () => `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  out[i] = P.v;
}`);
    if (a.length) rt.dispatch(k, [a.length, value], [a], grid(Math.ceil(a.length / WG)));
  }

  /** A copy of a[off, off + n). */
  function sliceArr(a: GpuArray, off: number, n: number): GpuArray {
    const out = rt.alloc(n);
    const k = rt.kernel('slice', [['n', 'u32'], ['off', 'u32']], () => `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  out[i] = x[P.off + i];
}`);
    if (n) rt.dispatch(k, [n, off], [a, out], grid(Math.ceil(n / WG)));
    return out;
  }

  function joinStats(mean: FStore, rstd: FStore, rows: number): GpuArray {
    if (mean === rstd) return arr(mean);
    const out = rt.alloc(2 * rows);
    stridedCopy(mean, 0, [1], [rows], out, 0, [1], false);
    stridedCopy(rstd, 0, [1], [rows], out, rows, [1], false);
    return out;
  }

  return { arr, touch, ew, runEw, stridedKernel, broadcastOp, rowsOp, reduceRaw, sumSplits, stridedCopy, fill, sliceArr, joinStats };
}
