/** Shape arithmetic shared by every op. Errors name the operation and the shapes involved. */
import type { Conv2dGeometry } from '../backends/backend.js';

export class ShapeError extends Error {
  override name = 'ShapeError';
}

export const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major element strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

/** Most elements in one tensor (kernels index with 32-bit signed integers); checked before allocating. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;
const MAX_NDIM = 32;

/** Throws for a zero-size tensor (ops whose result would be undefined on one). */
export function checkNonEmpty(op: string, ...ts: { size: number; shape: readonly number[] }[]): void {
  for (const t of ts) {
    if (t.size === 0) throw new ShapeError(`${op}: zero-size tensor of shape ${fmt(t.shape)}`);
  }
}

export function checkShape(op: string, shape: readonly number[]): void {
  if (!Array.isArray(shape)) throw new ShapeError(`${op}: a shape must be an array of dimensions, got ${typeof shape}`);
  if (shape.length > MAX_NDIM) throw new ShapeError(`${op}: ${shape.length} dimensions, more than ${MAX_NDIM}`);
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      const shown = shape.every((x) => typeof x === 'number') ? fmt(shape) : `with a dimension of type ${typeof shape.find((x) => typeof x !== 'number')}`;
      throw new ShapeError(`${op}: invalid shape ${shown} (dimensions must be non-negative integers)`);
    }
    n *= d;
  }
  if (n > MAX_TENSOR_ELEMENTS) throw new ShapeError(`${op}: shape ${fmt(shape)} has ${n} elements, more than ${MAX_TENSOR_ELEMENTS}`);
}

/** NumPy broadcasting of any number of shapes. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(nd).fill(1);
  for (let i = 0; i < nd; i++) {
    for (const s of shapes) {
      const d = s[s.length - nd + i] ?? 1;
      if (d === 1) continue;
      if (out[i] !== 1 && out[i] !== d) {
        throw new ShapeError(`${op}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together`);
      }
      out[i] = d;
    }
  }
  return out;
}

/** Strides that read a dense tensor of `shape` as if it had `outShape` (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = stridesOf(shape), nd = outShape.length, off = nd - shape.length;
  const out = new Array<number>(nd).fill(0);
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : st[i];
  return out;
}

export function normalizeAxis(op: string, axis: number, ndim: number): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for a tensor of rank ${ndim}`);
  }
  return axis < 0 ? axis + ndim : axis;
}

/** Sorted, de-duplicated, non-negative axes; undefined means all axes. */
export function normalizeAxes(op: string, axes: number | readonly number[] | undefined, ndim: number): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normalizeAxis(op, a, ndim)))].sort((a, b) => a - b);
  if (out.length !== list.length) throw new ShapeError(`${op}: repeated axis in ${fmt(list)}`);
  return out;
}

/**
 * Simplifies a strided walk before it reaches a kernel (the only place this happens): drops size-1 dimensions
 * and merges adjacent dimensions that every operand walks contiguously (stride_k[d] = stride_k[d+1]·shape[d+1]),
 * so a broadcast over [N, C, H, W] usually becomes rank 1–2 and the innermost run is as long as possible.
 * A dense output walked in the same order stays dense. Rank 0 becomes [1] with stride 0.
 */
export function mergeDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const s: number[] = [], st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = s.length - 1;
    if (last >= 0 && strides.every((o, k) => st[k][last] === o[d] * shape[d])) {
      s[last] *= shape[d];
      strides.forEach((o, k) => { st[k][last] = o[d]; });
    } else {
      s.push(shape[d]);
      strides.forEach((o, k) => st[k].push(o[d]));
    }
  }
  if (s.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: s, strides: st };
}

/** What shape checks read of a tensor. */
type Dims = { readonly shape: readonly number[]; readonly ndim: number; readonly size: number };

/** The geometry of conv2d(x, w, bias, opts), checked (shape errors name `op`). */
export function conv2dGeometry(op: string, x: Dims, w: Dims, bias: Dims | null | undefined,
  opts: { stride?: number | [number, number]; padding?: number | [number, number] }): Conv2dGeometry {
  const [sh, sw] = typeof opts.stride === 'number' || opts.stride === undefined ? [opts.stride ?? 1, opts.stride ?? 1] : opts.stride;
  const [ph, pw] = typeof opts.padding === 'number' || opts.padding === undefined ? [opts.padding ?? 0, opts.padding ?? 0] : opts.padding;
  const desc = `input ${fmt(x.shape)}, weight ${fmt(w.shape)}`;
  if (x.ndim !== 4 || w.ndim !== 4) throw new ShapeError(`${op}: expected 4-D input and weight, got ${desc}`);
  const [n, c, h, W] = x.shape, [o, wc, kh, kw] = w.shape;
  if (wc !== c) throw new ShapeError(`${op}: weight expects ${wc} input channels, input has ${c} (${desc})`);
  if (![sh, sw, ph, pw].every((v) => Number.isInteger(v)) || sh < 1 || sw < 1 || ph < 0 || pw < 0) {
    throw new ShapeError(`${op}: invalid stride (${sh}, ${sw}) or padding (${ph}, ${pw})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== o)) throw new ShapeError(`${op}: bias ${fmt(bias.shape)} does not match ${o} output channels`);
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1, ow = Math.floor((W + 2 * pw - kw) / sw) + 1;
  if (oh < 1 || ow < 1) throw new ShapeError(`${op}: kernel ${kh}×${kw} is larger than the padded input (${desc})`);
  checkNonEmpty(op, x, w);
  return { n, c, h, w: W, o, kh, kw, sh, sw, ph, pw, oh, ow };
}
