/**
 * The in-memory image dataset every loader returns and every trainer consumes.
 *
 * Images are stored densely as float32, N×C×H×W (NCHW), scaled to [−1, 1]. Loaders of 8-bit sources
 * use x = v/127.5 − 1, so the byte is recovered exactly by `toUint8` (round((x + 1)·127.5)). Such a loader
 * may keep only the bytes (`bytes`, a quarter of the memory) and build `images` on its first read
 * (`withBytes`): the trainer's batches read the bytes, so a training run never builds the float copy.
 */
export interface ImageDataset {
  /** Short name for logs and checkpoints: 'mnist', 'fashion-mnist', or the folder's path. */
  name: string;
  /** N×C×H×W float32 in [−1, 1]. */
  images: Float32Array;
  /** The same images as bytes (x = byte/127.5 − 1), where the source is 8-bit and the loader kept them. */
  bytes?: Uint8Array;
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
  /** The k-means cluster of every image, for a model conditioned on labels and clusters (src/data/clusters.ts). */
  clusterOf?: Int32Array;
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

const BYTE_TO_FLOAT = Float32Array.from({ length: 256 }, (_, v) => fromUint8(v));

/** dst (float32) = the bytes src mapped to [−1, 1]. */
export function bytesToFloats(src: Uint8Array, dst: Float32Array, at = 0): void {
  for (let i = 0; i < src.length; i++) dst[at + i] = BYTE_TO_FLOAT[src[i]];
}

/**
 * A dataset over 8-bit `bytes` whose float `images` are built on their first read (and then kept): the rest
 * of `fields` as given.
 */
export function withBytes(fields: Omit<ImageDataset, 'images' | 'bytes'>, bytes: Uint8Array): ImageDataset {
  let images: Float32Array | undefined;
  const ds = { ...fields, bytes } as ImageDataset;
  Object.defineProperty(ds, 'images', {
    enumerable: true,
    get: () => {
      if (!images) bytesToFloats(bytes, images = new Float32Array(bytes.length));
      return images;
    },
  });
  return ds;
}

/** The dataset with some fields replaced; its images are shared as they are (a spread would read a
 *  bytes-backed dataset's `images` and build the float copy). */
export function withFields(ds: ImageDataset, fields: Partial<Omit<ImageDataset, 'images' | 'bytes'>>): ImageDataset {
  return Object.defineProperties({}, { ...Object.getOwnPropertyDescriptors(ds), ...Object.getOwnPropertyDescriptors(fields) }) as ImageDataset;
}

/** Image j's values (float32, copied into dst at `at`), from the bytes where the dataset keeps them. */
export function copyImage(ds: ImageDataset, j: number, dst: Float32Array, at: number): void {
  const sz = imageSize(ds);
  if (ds.bytes) bytesToFloats(ds.bytes.subarray(j * sz, (j + 1) * sz), dst, at);
  else dst.set(ds.images.subarray(j * sz, (j + 1) * sz), at);
}

/** A dataset holding only the examples at `indices` (copied), in that order. */
export function subset(ds: ImageDataset, indices: ArrayLike<number>, name = ds.name): ImageDataset {
  const sz = imageSize(ds);
  const labels = new Int32Array(indices.length);
  const bytes = ds.bytes ? new Uint8Array(indices.length * sz) : null;
  const images = bytes ? null : new Float32Array(indices.length * sz);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < ds.n) || !Number.isInteger(j)) throw new RangeError(`subset: index ${j} outside 0..${ds.n - 1}`);
    if (bytes) bytes.set(ds.bytes!.subarray(j * sz, (j + 1) * sz), i * sz);
    else images!.set(ds.images.subarray(j * sz, (j + 1) * sz), i * sz);
    labels[i] = ds.labels[j];
  }
  // the other fields as they are (descriptors: reading `images` would build the float copy)
  const rest: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(ds))) if (k !== 'images' && k !== 'bytes' && 'value' in d) rest[k] = d.value;
  const fields = { ...(rest as Omit<ImageDataset, 'images' | 'bytes'>), name, labels, n: indices.length, classNames: [...ds.classNames] };
  return bytes ? withBytes(fields, bytes) : { ...fields, images: images! };
}

/** Checks the invariants of a dataset (lengths, label range); throws a one-line error naming it. */
export function validateDataset(ds: ImageDataset): void {
  const sz = imageSize(ds), values = (ds.bytes ?? ds.images).length;
  if (values !== ds.n * sz) {
    throw new Error(`dataset ${ds.name}: ${values} values do not hold ${ds.n} images of ${ds.channels}×${ds.height}×${ds.width}`);
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
