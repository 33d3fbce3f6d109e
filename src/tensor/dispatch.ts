/**
 * Where ops reach the backend's strided kernels: every walk is simplified here, once (mergeDims), so no
 * backend merges dimensions itself.
 */
import type { BinaryOp, FStore } from '../backends/backend.js';
import { mergeDims, sizeOf } from './shape.js';
import { backend } from './tensor.js';

export function binaryKernel(op: BinaryOp, a: FStore, aStrides: readonly number[], b: FStore, bStrides: readonly number[],
  outShape: readonly number[]): FStore {
  const m = mergeDims(outShape, [aStrides, bStrides]);
  return backend().binary(op, a, m.strides[0], b, m.strides[1], m.shape);
}

export function whereKernel(cond: FStore, cStrides: readonly number[], a: FStore, aStrides: readonly number[], b: FStore,
  bStrides: readonly number[], outShape: readonly number[]): FStore {
  const m = mergeDims(outShape, [cStrides, aStrides, bStrides]);
  return backend().where(cond, m.strides[0], a, m.strides[1], b, m.strides[2], m.shape);
}

/** dst[dstOffset + Σ idx·dstStrides] (= or +=) src[srcOffset + Σ idx·srcStrides] over `shape`. */
export function copyKernel(src: FStore, srcOffset: number, srcStrides: readonly number[], shape: readonly number[],
  dst: FStore, dstOffset: number, dstStrides: readonly number[], accumulate = false): void {
  if (sizeOf(shape) === 0) return;
  const m = mergeDims(shape, [srcStrides, dstStrides]);
  backend().stridedCopy(src, srcOffset, m.strides[0], m.shape, dst, dstOffset, m.strides[1], accumulate);
}
