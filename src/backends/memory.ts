/**
 * The scope stack shared by the Tensor layer and device backends (no imports either way): a scope records
 * the tensors and the device arrays created while it is open, so that its end can release them at once
 * instead of waiting for the garbage collector (see `scope` in ../tensor/tensor.ts).
 */
import type { BackendName, DeviceArray } from './backend.js';

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

/** What frees a device array's storage, kept apart from the array so the collector can still take the array. */
interface Holding { freed: boolean; free: () => void }

const finalizer = new FinalizationRegistry<Holding>((h) => {
  if (!h.freed) { h.freed = true; h.free(); }
});

/**
 * The lifetime every device array shares (DeviceArray's contract): one reference per Tensor holding it; the
 * storage is freed through `free` when the count drops to zero by `release` (Tensor.dispose, a scope's end) or
 * when the array is garbage-collected; recorded by the open scope. `free` must not capture the array.
 */
export abstract class RefCountedArray implements DeviceArray {
  abstract readonly device: BackendName;
  host: Float32Array | null = null;
  refs = 0;
  private readonly holding: Holding;

  constructor(readonly length: number, free: () => void) {
    this.holding = { freed: false, free };
    finalizer.register(this, this.holding, this.holding);
    trackArray(this);
  }

  get released(): boolean {
    return this.holding.freed;
  }

  retain(): void {
    this.refs++;
  }

  release(): void {
    if (this.holding.freed) return;
    if (this.refs > 0) this.refs--;
    if (this.refs > 0) return;
    this.holding.freed = true;
    finalizer.unregister(this.holding);
    this.holding.free();
    this.host = null;
  }

  abstract read(): Promise<Float32Array>;
}
