/**
 * The emoji dataset: real color images with classes, from the npm package emoji-datasource-twitter (Twemoji
 * graphics, CC-BY 4.0; loaded only when asked for, so it is not a dependency of diffuse: a missing package
 * gets a one-line error saying what to install).
 *
 * Every emoji with a Twitter image, skin-tone variants and the 'Component' swatches left out: 1,906 images in
 * 9 classes, the package's categories (Smileys & Emotion, People & Body, Animals & Nature, Food & Drink, Travel
 * & Places, Activities, Objects, Symbols, Flags). Each 64×64 RGBA PNG is composited on a white background (the
 * colour Twemoji is drawn for) and down-sampled to 32×32 by averaging 2×2 blocks of 8-bit values, then
 * rounded, so each pixel is again an exact byte. Split: within each class, in the package's sort order, every
 * 5th image is 'test' (20%), the rest 'train'. No flips: text, arrows and flags are not mirror-symmetric.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readImage } from '../io/image.js';
import { fromUint8, type ImageDataset } from './dataset.js';
import type { Split } from './mnist.js';

export const EMOJI_PACKAGE = 'emoji-datasource-twitter';
export const EMOJI_CLASS_NAMES: readonly string[] = [
  'Smileys & Emotion', 'People & Body', 'Animals & Nature', 'Food & Drink', 'Travel & Places', 'Activities',
  'Objects', 'Symbols', 'Flags',
];
/** Side of the stored images (the package's 64 px PNGs, averaged 2×2). */
export const EMOJI_SIZE = 32;
const SOURCE_SIZE = 64;

export interface EmojiOptions {
  split?: Split;
  /** Keep only the first `limit` images of the split. */
  limit?: number;
}

interface EmojiRecord { image: string; category: string; sort_order: number; has_img_twitter: boolean }

function packageRoot(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${EMOJI_PACKAGE}/package.json`));
  } catch {
    throw new Error(`dataset 'emoji' needs the npm package ${EMOJI_PACKAGE} (npm install ${EMOJI_PACKAGE})`);
  }
}

let cache: { bytes: Uint8Array; labels: Int32Array } | null = null;

/** All images as 32×32×3 bytes (HWC per image, composited and down-sampled) and their class indices. */
function loadAll(): { bytes: Uint8Array; labels: Int32Array } {
  if (cache) return cache;
  const root = packageRoot();
  const records = (JSON.parse(readFileSync(join(root, 'emoji.json'), 'utf8')) as EmojiRecord[])
    .filter((r) => r.has_img_twitter && EMOJI_CLASS_NAMES.includes(r.category))
    .sort((a, b) => a.sort_order - b.sort_order);
  const px = EMOJI_SIZE * EMOJI_SIZE;
  const bytes = new Uint8Array(records.length * px * 3), labels = new Int32Array(records.length);
  records.forEach((r, i) => {
    const file = join(root, 'img', 'twitter', String(SOURCE_SIZE), r.image);
    const img = readImage(file);
    if (img.width !== SOURCE_SIZE || img.height !== SOURCE_SIZE) {
      throw new Error(`${file}: expected ${SOURCE_SIZE}×${SOURCE_SIZE}, got ${img.width}×${img.height}`);
    }
    labels[i] = EMOJI_CLASS_NAMES.indexOf(r.category);
    const out = bytes.subarray(i * px * 3, (i + 1) * px * 3);
    for (let y = 0; y < EMOJI_SIZE; y++) {
      for (let x = 0; x < EMOJI_SIZE; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let dy = 0; dy < 2; dy++) {
            for (let dx = 0; dx < 2; dx++) {
              const o = ((2 * y + dy) * SOURCE_SIZE + 2 * x + dx) * 4;
              const a = img.rgba[o + 3] / 255;
              s += img.rgba[o + c] * a + 255 * (1 - a);  // over white
            }
          }
          out[(y * EMOJI_SIZE + x) * 3 + c] = Math.round(s / 4);
        }
      }
    }
  });
  cache = { bytes, labels };
  return cache;
}

/** The emoji dataset (see the module comment): N×3×32×32 in [−1, 1], 9 classes. */
export function loadEmoji(opts: EmojiOptions = {}): ImageDataset {
  const split = opts.split ?? 'all';
  if (!['train', 'test', 'all'].includes(split)) throw new Error(`emoji: split must be train, test or all, got '${split}'`);
  const all = loadAll();
  const seen = new Array<number>(EMOJI_CLASS_NAMES.length).fill(0);
  let keep: number[] = [];
  for (let i = 0; i < all.labels.length; i++) {
    const isTest = seen[all.labels[i]]++ % 5 === 4;
    if (split === 'all' || (split === 'test') === isTest) keep.push(i);
  }
  if (opts.limit !== undefined) {
    if (!Number.isInteger(opts.limit) || opts.limit < 1) throw new Error(`emoji: limit must be a whole number ≥ 1, got ${opts.limit}`);
    keep = keep.slice(0, opts.limit);
  }
  const px = EMOJI_SIZE * EMOJI_SIZE;
  const images = new Float32Array(keep.length * 3 * px), labels = new Int32Array(keep.length);
  keep.forEach((j, i) => {
    labels[i] = all.labels[j];
    const src = all.bytes.subarray(j * px * 3);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < px; p++) images[(i * 3 + c) * px + p] = fromUint8(src[p * 3 + c]);
    }
  });
  return {
    name: 'emoji', images, labels, n: keep.length, channels: 3, height: EMOJI_SIZE, width: EMOJI_SIZE,
    numClasses: EMOJI_CLASS_NAMES.length, classNames: [...EMOJI_CLASS_NAMES], flipSafe: false,
  };
}
