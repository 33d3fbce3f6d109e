/**
 * A folder of PNG/JPEG images of any size → a square ImageDataset.
 *
 * Each image is decoded (pngjs / jpeg-js; format from the file header), alpha-composited over a background
 * (white by default), center-cropped to its largest centered square, and resized to size×size: area
 * averaging (exact box filter with fractional coverage) when shrinking, bilinear with half-pixel centers when
 * enlarging. Values are then scaled to [−1, 1] (v/127.5 − 1; an image already size×size keeps its bytes
 * exactly). Grayscale conversion uses the ITU-R 601 luma weights 0.299 R + 0.587 G + 0.114 B.
 *
 * Files are read in code-point order of their names (deterministic). Files whose extension is not .png,
 * .jpg or .jpeg (any case), and hidden files, are skipped and counted (`skipped`). Subfolders are ignored
 * unless `labels: 'subfolders'`, where each subfolder is one class (ImageNet-folder style; names sorted).
 *
 * Errors are one line: an unreadable or corrupt image names the file; an empty folder names the folder;
 * with channels 'auto' (the default), grayscale files among color ones (or the reverse) name the minority
 * files and suggest forcing 'rgb' or 'gray'.
 *
 * Horizontal flips are considered sound for photos (`flipSafe: true`); pass `flip: false` to the batch
 * iterator for data where orientation matters (text, digits).
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { readImage, type DecodedImage } from '../io/image.js';
import type { ImageDataset } from './dataset.js';

export interface FolderOptions {
  /** Side of the square output images, in pixels. */
  size: number;
  /** 'auto' (default): the files' own channel count, which must agree; 'rgb' or 'gray' converts. */
  channels?: 'auto' | 'rgb' | 'gray';
  /** 'none' (default): unlabeled, images directly in the folder; 'subfolders': one class per subfolder. */
  labels?: 'none' | 'subfolders';
  /** Gray level 0..255 transparent pixels are composited over (default 255, white). */
  background?: number;
  /** Load only the first `limit` image files (in name order). */
  limit?: number;
  /** Called after each image is decoded. */
  onProgress?: (done: number, total: number) => void;
}

export interface FolderDataset extends ImageDataset {
  /** The image files, in dataset order. */
  files: string[];
  /** Entries skipped: files of other types (hidden files included), and entries named like images that are
   *  not readable files (folders, dangling links, link loops). */
  skipped: string[];
  /** Why each entry of `skipped` was skipped (same order). */
  skippedReasons: string[];
}

/** The most float values a folder dataset may hold in memory (1 GiB), checked before decoding. */
export const MAX_FOLDER_DATASET_VALUES = 2 ** 28;

/** One line naming the skipped entries of a folder dataset and why ('' when none were skipped). */
export function skippedSummary(ds: Pick<FolderDataset, 'skipped' | 'skippedReasons' | 'name'>): string {
  if (ds.skipped.length === 0) return '';
  const shown = ds.skipped.slice(0, 8).map((f, i) => `${basename(f)} (${ds.skippedReasons[i]})`).join(', ');
  const more = ds.skipped.length > 8 ? `, and ${ds.skipped.length - 8} more` : '';
  return `${ds.name}: skipped ${ds.skipped.length} entr${ds.skipped.length === 1 ? 'y' : 'ies'}: ${shown}${more}`;
}

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg'];

export function loadImageFolder(dir: string, opts: FolderOptions): FolderDataset {
  const size = opts.size;
  if (!Number.isInteger(size) || size < 1) throw new Error(`loadImageFolder: size must be a whole number ≥ 1, got ${size}`);
  const mode = opts.channels ?? 'auto';
  if (mode !== 'auto' && mode !== 'rgb' && mode !== 'gray') throw new Error(`loadImageFolder: channels must be auto, rgb or gray, got '${mode}'`);
  const bg = opts.background ?? 255;

  const skipped: string[] = [], skippedReasons: string[] = [];
  const skip = { add(path: string, why: string) { skipped.push(path); skippedReasons.push(why); } };
  const entries: { file: string; label: number }[] = [];
  let classNames: string[] = [];
  if ((opts.labels ?? 'none') === 'subfolders') {
    const { files, dirs } = listFolder(dir, skip);
    for (const f of files) skip.add(join(dir, f), 'outside the class subfolders');
    classNames = dirs;
    if (dirs.length === 0) throw new Error(`folder ${dir} has no subfolders (labels: 'subfolders' takes one subfolder per class)`);
    dirs.forEach((d, label) => {
      const sub = join(dir, d);
      const { files: imgs } = listFolder(sub, skip);
      if (imgs.length === 0) throw new Error(`folder ${sub} (class '${d}') has no PNG or JPEG images`);
      for (const f of imgs) entries.push({ file: join(sub, f), label });
    });
  } else {
    const { files } = listFolder(dir, skip);
    for (const f of files) entries.push({ file: join(dir, f), label: 0 });
  }
  if (entries.length === 0) {
    const why = skipped.length ? ` (${skipped.length} file${skipped.length === 1 ? '' : 's'} skipped for unsupported extensions)` : '';
    throw new Error(`folder ${dir} has no PNG or JPEG images${why}`);
  }
  if (opts.limit !== undefined) entries.splice(Math.max(0, Math.floor(opts.limit)));
  const maxChannels = mode === 'gray' ? 1 : 3;
  if (entries.length * maxChannels * size * size > MAX_FOLDER_DATASET_VALUES) {
    throw new Error(`folder ${dir}: ${entries.length} images of ${maxChannels}×${size}×${size} would take ` +
      `${entries.length * maxChannels * size * size} values, over the limit of ${MAX_FOLDER_DATASET_VALUES}; use a smaller size or a limit`);
  }

  // Decode and resize each image at its own channel count (or the forced one).
  const per: { data: Float32Array; channels: 1 | 3 }[] = [];
  for (let i = 0; i < entries.length; i++) {
    const img = readImage(entries[i].file);
    const channels = mode === 'auto' ? img.channels : mode === 'rgb' ? 3 : 1;
    per.push({ data: toSquare(img, channels, size, bg), channels });
    opts.onProgress?.(i + 1, entries.length);
  }
  const gray = per.filter((p) => p.channels === 1).length;
  if (gray !== 0 && gray !== per.length) {
    const minorityGray = gray <= per.length - gray;
    const names = entries.filter((_, i) => (per[i].channels === 1) === minorityGray).map((e) => basename(e.file));
    const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, and ${names.length - 5} more` : '');
    const [few, many] = minorityGray ? ['grayscale', 'RGB'] : ['RGB', 'grayscale'];
    throw new Error(`folder ${dir}: mixed channel counts: ${names.length} ${few} image${names.length === 1 ? '' : 's'} (${shown}) among ` +
      `${per.length - names.length} ${many}; pass channels 'rgb' or 'gray' to convert`);
  }
  const C = per[0].channels, sz = C * size * size;
  const images = new Float32Array(per.length * sz);
  per.forEach((p, i) => images.set(p.data, i * sz));
  const labeled = classNames.length > 0;
  return {
    name: dir, images, labels: Int32Array.from(entries, (e) => e.label), n: per.length, channels: C, height: size, width: size,
    numClasses: labeled ? classNames.length : 0, classNames, flipSafe: true,
    files: entries.map((e) => e.file), skipped, skippedReasons,
  };
}

function listFolder(dir: string, skip: { add(path: string, why: string): void }): { files: string[]; dirs: string[] } {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new Error(`cannot read folder ${dir} (${(e as Error).message.split('\n')[0]})`);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: string[] = [], dirs: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const imageName = IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
    let st;
    try {
      st = statSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      skip.add(path, code === 'ELOOP' ? 'a symbolic link loop' : code === 'ENOENT' ? 'a dangling link' : `unreadable: ${code}`);
      continue;
    }
    if (st.isDirectory()) {
      if (imageName) skip.add(path, 'a folder');
      else if (!name.startsWith('.')) dirs.push(name);
      continue;
    }
    if (name.startsWith('.')) skip.add(path, 'hidden');
    else if (!imageName) skip.add(path, 'not .png, .jpg or .jpeg');
    else if (!st.isFile()) skip.add(path, 'not a regular file');
    else files.push(name);
  }
  return { files, dirs };
}

/**
 * Center-crops a decoded image to a square and resizes it to size×size with `channels` channels;
 * returns C×size×size values in [−1, 1]. Exported for tests and for single-image use.
 */
export function toSquare(img: DecodedImage, channels: 1 | 3, size: number, background = 255): Float32Array {
  const { width: w, height: h, rgba } = img;
  const s = Math.min(w, h), x0 = Math.floor((w - s) / 2), y0 = Math.floor((h - s) / 2);
  const wts = axisWeights(s, size);
  // Horizontal pass straight from the decoded bytes, one source row at a time (alpha composited, gray
  // converted), into tmp: channels × s rows × size columns. Never holds a float copy of a large photo.
  const row = new Float32Array(channels * s);
  const tmp = new Float32Array(channels * s * size);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const k = ((y + y0) * w + (x + x0)) * 4, a = rgba[k + 3] / 255;
      let r = rgba[k], g = rgba[k + 1], b = rgba[k + 2];
      if (a < 1) { r = r * a + background * (1 - a); g = g * a + background * (1 - a); b = b * a + background * (1 - a); }
      if (channels === 3) { row[x] = r; row[s + x] = g; row[2 * s + x] = b; }
      else row[x] = r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b;
    }
    for (let c = 0; c < channels; c++) {
      const src = c * s, dst = (c * s + y) * size;
      for (let x = 0; x < size; x++) {
        let acc = 0;
        for (let k = wts.start[x]; k < wts.start[x + 1]; k++) acc += wts.weight[k] * row[src + wts.index[k]];
        tmp[dst + x] = acc;
      }
    }
  }
  // Vertical pass, then scale to [−1, 1].
  const out = new Float32Array(channels * size * size);
  for (let c = 0; c < channels; c++) {
    const base = c * size * size, tbase = c * s * size;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let acc = 0;
        for (let k = wts.start[y]; k < wts.start[y + 1]; k++) acc += wts.weight[k] * tmp[tbase + wts.index[k] * size + x];
        const v = acc / 127.5 - 1;
        out[base + y * size + x] = v < -1 ? -1 : v > 1 ? 1 : v;
      }
    }
  }
  return out;
}

/** Resampling weights along one axis, CSR-style: output i reads index[k]·weight[k] for k in start[i]..start[i+1]. */
export function axisWeights(inSize: number, outSize: number): { start: Int32Array; index: Int32Array; weight: Float64Array } {
  const start = new Int32Array(outSize + 1);
  const index: number[] = [], weight: number[] = [];
  const r = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    start[i] = index.length;
    if (inSize === outSize) {
      index.push(i); weight.push(1);
    } else if (inSize > outSize) { // area: the source interval [i·r, (i+1)·r)
      const a = i * r, b = (i + 1) * r;
      for (let j = Math.floor(a); j < Math.min(inSize, Math.ceil(b)); j++) {
        const cover = Math.min(b, j + 1) - Math.max(a, j);
        if (cover > 1e-12) { index.push(j); weight.push(cover / r); }
      }
    } else { // bilinear, half-pixel centers, edges clamped
      const x = Math.min(Math.max((i + 0.5) * r - 0.5, 0), inSize - 1);
      const j = Math.floor(x), f = x - j;
      index.push(j); weight.push(1 - f);
      if (f > 0) { index.push(j + 1); weight.push(f); }
    }
  }
  start[outSize] = index.length;
  return { start, index: Int32Array.from(index), weight: Float64Array.from(weight) };
}
