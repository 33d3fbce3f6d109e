/**
 * The in-memory image dataset every loader returns and every trainer consumes.
 *
 * Images are stored densely as float32, N×C×H×W (NCHW), scaled to [−1, 1]. Loaders of 8-bit sources
 * use x = v/127.5 − 1, so the byte is recovered exactly by `toUint8` (round((x + 1)·127.5)).
 */
export interface ImageDataset {
  /** Short name for logs and checkpoints: 'mnist', 'fashion-mnist', or the folder's path. */
  name: string;
  /** N×C×H×W float32 in [−1, 1]. */
  images: Float32Array;
  /** N class indices in 0..numClasses−1; all 0 for an unlabeled dataset. */
  labels: Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  /** Number of classes; 0 for an unlabeled dataset (no conditioning possible). */
  numClasses: number;
  /** Human-readable class names, numClasses long. */
  classNames: string[];
  /**
   * Whether random horizontal flips are a sound augmentation for this dataset (the flipped image is
   * still a plausible member of its class). False for digits (a flipped 2, 3, 7 is not that digit) and
   * for Fashion-MNIST (every shoe and bag faces left; flips would add right-facing ones the data never
   * shows). `batchIterator` uses it as the default of its `flip` option.
   */
  flipSafe: boolean;
}

/** Number of values in one image. */
export function imageSize(ds: Pick<ImageDataset, 'channels' | 'height' | 'width'>): number {
  return ds.channels * ds.height * ds.width;
}

/** Maps an 8-bit value to [−1, 1]; exactly invertible by `toUint8`. */
export function fromUint8(v: number): number {
  return v / 127.5 - 1;
}

/** Maps [−1, 1] to 0..255, rounding and clamping (NaN → 0). */
export function toUint8(x: number): number {
  const v = Math.round((x + 1) * 127.5);
  return v > 255 ? 255 : v >= 0 ? v : 0;
}

/** A dataset holding only the examples at `indices` (copied), in that order. */
export function subset(ds: ImageDataset, indices: ArrayLike<number>, name = ds.name): ImageDataset {
  const sz = imageSize(ds);
  const images = new Float32Array(indices.length * sz);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < ds.n) || !Number.isInteger(j)) throw new RangeError(`subset: index ${j} outside 0..${ds.n - 1}`);
    images.set(ds.images.subarray(j * sz, (j + 1) * sz), i * sz);
    labels[i] = ds.labels[j];
  }
  return { ...ds, name, images, labels, n: indices.length, classNames: [...ds.classNames] };
}

/** Checks the invariants of a dataset (lengths, label range); throws a one-line error naming it. */
export function validateDataset(ds: ImageDataset): void {
  const sz = imageSize(ds);
  if (ds.images.length !== ds.n * sz) {
    throw new Error(`dataset ${ds.name}: ${ds.images.length} values do not hold ${ds.n} images of ${ds.channels}×${ds.height}×${ds.width}`);
  }
  if (ds.labels.length !== ds.n) throw new Error(`dataset ${ds.name}: ${ds.labels.length} labels for ${ds.n} images`);
  if (ds.classNames.length !== ds.numClasses) {
    throw new Error(`dataset ${ds.name}: ${ds.classNames.length} class names for ${ds.numClasses} classes`);
  }
  const hi = Math.max(ds.numClasses, 1);
  for (let i = 0; i < ds.n; i++) {
    const y = ds.labels[i];
    if (y < 0 || y >= hi) throw new Error(`dataset ${ds.name}: label ${y} of image ${i} outside 0..${hi - 1}`);
  }
}
