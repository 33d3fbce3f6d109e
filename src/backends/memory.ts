/**
 * The scope stack shared by the Tensor layer and device backends (no imports either way): a scope records
 * the tensors and the device arrays created while it is open, so that its end can release them at once
 * instead of waiting for the garbage collector (see `scope` in ../tensor/tensor.ts).
 */
import type { DeviceArray } from './backend.js';

export interface ScopeFrame<T> {
  tensors: T[];
  arrays: DeviceArray[];
}

const frames: ScopeFrame<unknown>[] = [];

export function pushFrame<T>(): ScopeFrame<T> {
  const f: ScopeFrame<T> = { tensors: [], arrays: [] };
  frames.push(f as ScopeFrame<unknown>);
  return f;
}

export function popFrame<T>(f: ScopeFrame<T>): void {
  if (frames[frames.length - 1] !== f) throw new Error('scope: scopes closed out of order');
  frames.pop();
}

export function topFrame<T>(): ScopeFrame<T> | undefined {
  return frames[frames.length - 1] as ScopeFrame<T> | undefined;
}

/** Called by device backends for every array they allocate. */
export function trackArray(a: DeviceArray): void {
  if (frames.length) frames[frames.length - 1].arrays.push(a);
}
