/**
 * Augmentation and batching.
 *
 * `batchIterator` turns a dataset into an endless stream of full batches over shuffled epochs: each epoch
 * is a fresh permutation drawn from the generator, and batches run on across epoch boundaries (so every
 * batch has exactly batchSize examples, every example is seen once per epoch, and a dataset smaller than a
 * batch still works). Everything random comes from the one generator passed in, in a fixed order
 * (permutation when an epoch starts, then one flip draw per example), so the stream is a function of the
 * generator's state. `getState()` captures the iterator (and the generator) and `setState()` / the `state`
 * option restore it: a resumed run produces exactly the batches the uninterrupted run would have.
 *
 * Random horizontal flips: defaults to the dataset's `flipSafe` — off for MNIST and Fashion-MNIST, since a
 * mirrored 2, 3, 4, 7 or 9 is not that digit (and every Fashion-MNIST shoe faces left), on for folders of
 * photos. A diffusion model learns the augmented distribution, so only flip data whose mirror images are
 * as plausible as the originals.
 */
import { tensor, type Tensor } from '../tensor/index.js';
import type { Generator } from '../tensor/random.js';
import { copyImage, imageSize, type ImageDataset } from './dataset.js';

export interface Batch {
  /** [B, C, H, W] float32 in [−1, 1]. */
  x: Tensor;
  /** [B] int32 class labels (zeros for an unlabeled dataset). */
  y: Tensor;
  /** Dataset indices of the batch's examples. */
  indices: Int32Array;
}

/** Mirrors image `b` of an N×C×H×W array left–right, in place. */
export function flipHorizontalInPlace(data: Float32Array, b: number, C: number, H: number, W: number): void {
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const row = ((b * C + c) * H + y) * W;
      for (let i = 0, j = W - 1; i < j; i++, j--) { const t = data[row + i]; data[row + i] = data[row + j]; data[row + j] = t; }
    }
  }
}

/**
 * Flips each image of an N×C×H×W array with probability p, in place, drawing one uniform per image from
 * `gen`. Returns which images were flipped.
 */
export function randomFlip(data: Float32Array, shape: readonly [number, number, number, number], gen: Generator, p = 0.5): Uint8Array {
  const [B, C, H, W] = shape;
  if (data.length !== B * C * H * W) throw new Error(`randomFlip: ${data.length} values for shape [${shape.join(', ')}]`);
  const flipped = new Uint8Array(B);
  for (let b = 0; b < B; b++) {
    if (gen.uniform() < p) { flipHorizontalInPlace(data, b, C, H, W); flipped[b] = 1; }
  }
  return flipped;
}

export interface BatchIteratorOptions {
  /** Random horizontal flips with probability 1/2 (default: dataset.flipSafe). */
  flip?: boolean;
  /** Shuffle each epoch (default true); false walks the dataset in order and draws no permutation. */
  shuffle?: boolean;
  /** Resume from a state returned by getState(). Also restores the generator. */
  state?: BatchIteratorState;
}

/** A JSON-serialisable snapshot of a batch iterator and its generator. */
export interface BatchIteratorState {
  /** Epochs started so far (permutations drawn). */
  epoch: number;
  /** Position in the current epoch's order. */
  cursor: number;
  /** Generator state just before the current epoch's permutation was drawn (regenerates it). */
  epochGenState: (number | null)[];
  /** Generator state now. */
  genState: (number | null)[];
  /** For checks on restore. */
  n: number;
  batchSize: number;
}

export class BatchIterator implements IterableIterator<Batch> {
  readonly dataset: ImageDataset;
  readonly batchSize: number;
  readonly flip: boolean;
  readonly shuffle: boolean;
  private readonly gen: Generator;
  private order: Int32Array | null = null;
  private _epoch = 0;
  private cursor = 0;
  private epochGenState: (number | null)[];

  constructor(dataset: ImageDataset, batchSize: number, gen: Generator, opts: BatchIteratorOptions = {}) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchIterator: batch size must be a whole number ≥ 1, got ${batchSize}`);
    if (dataset.n < 1) throw new Error(`batchIterator: dataset ${dataset.name} is empty`);
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.gen = gen;
    this.flip = opts.flip ?? dataset.flipSafe;
    this.shuffle = opts.shuffle ?? true;
    this.epochGenState = gen.getState();
    if (opts.state) this.setState(opts.state);
  }

  /** Epochs started so far (1 during the first epoch). */
  get epoch(): number {
    return this._epoch;
  }

  /** Examples drawn so far, over all epochs. */
  get examplesSeen(): number {
    return this._epoch === 0 ? 0 : (this._epoch - 1) * this.dataset.n + this.cursor;
  }

  /** Batches per epoch (fractional when batchSize does not divide n). */
  get batchesPerEpoch(): number {
    return this.dataset.n / this.batchSize;
  }

  nextBatch(): Batch {
    const ds = this.dataset, B = this.batchSize, sz = imageSize(ds);
    const indices = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      if (this.order === null || this.cursor >= ds.n) this.startEpoch();
      indices[b] = this.order![this.cursor++];
    }
    const x = new Float32Array(B * sz), y = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const j = indices[b];
      copyImage(ds, j, x, b * sz);
      y[b] = ds.labels[j];
    }
    if (this.flip) randomFlip(x, [B, ds.channels, ds.height, ds.width], this.gen);
    return { x: tensor(x, [B, ds.channels, ds.height, ds.width]), y: tensor(y, [B], { dtype: 'int32' }), indices };
  }

  next(): IteratorResult<Batch> {
    return { value: this.nextBatch(), done: false };
  }

  [Symbol.iterator](): this {
    return this;
  }

  getState(): BatchIteratorState {
    return {
      epoch: this._epoch, cursor: this.cursor, epochGenState: [...this.epochGenState], genState: this.gen.getState(),
      n: this.dataset.n, batchSize: this.batchSize,
    };
  }

  /** Restores a snapshot (and the generator's state); the dataset must be the same one. */
  setState(s: BatchIteratorState): void {
    if (s.n !== this.dataset.n) throw new Error(`batchIterator: saved state is for a dataset of ${s.n} examples, this one has ${this.dataset.n}`);
    if (s.batchSize !== this.batchSize) {
      throw new Error(`batchIterator: saved state has batch size ${s.batchSize}, this iterator ${this.batchSize}`);
    }
    if (!(s.cursor >= 0 && s.cursor <= s.n) || !(s.epoch >= 0)) throw new Error('batchIterator: corrupt saved state');
    this._epoch = s.epoch;
    this.cursor = s.cursor;
    this.epochGenState = [...s.epochGenState];
    this.order = null;
    if (s.epoch > 0) {
      this.gen.setState(s.epochGenState);
      this.order = this.drawOrder();
    }
    this.gen.setState(s.genState);
  }

  private startEpoch(): void {
    this.epochGenState = this.gen.getState();
    this.order = this.drawOrder();
    this.cursor = 0;
    this._epoch++;
  }

  private drawOrder(): Int32Array {
    if (this.shuffle) return this.gen.permutation(this.dataset.n);
    const o = new Int32Array(this.dataset.n);
    for (let i = 0; i < o.length; i++) o[i] = i;
    return o;
  }
}

/** An endless stream of shuffled batches; see the module comment. */
export function batchIterator(dataset: ImageDataset, batchSize: number, gen: Generator, opts: BatchIteratorOptions = {}): BatchIterator {
  return new BatchIterator(dataset, batchSize, gen, opts);
}

/**
 * One pass over the dataset in order, no augmentation, no randomness: for evaluation (e.g. a classifier
 * judge on the test split). The last batch may be smaller.
 */
export function* sequentialBatches(dataset: ImageDataset, batchSize: number): Generator_<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`sequentialBatches: batch size must be a whole number ≥ 1, got ${batchSize}`);
  const sz = imageSize(dataset);
  for (let start = 0; start < dataset.n; start += batchSize) {
    const B = Math.min(batchSize, dataset.n - start);
    const indices = new Int32Array(B);
    for (let b = 0; b < B; b++) indices[b] = start + b;
    yield {
      x: tensor(dataset.images.slice(start * sz, (start + B) * sz), [B, dataset.channels, dataset.height, dataset.width]),
      y: tensor(dataset.labels.slice(start, start + B), [B], { dtype: 'int32' }),
      indices,
    };
  }
}

type Generator_<T> = globalThis.Generator<T, void, undefined>;
