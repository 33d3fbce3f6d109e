import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { Generator } from '../src/tensor/random.js';
import {
  loadMnist, loadFashionMnist, scanImages, loadImageFolder, axisWeights, sampleToy2d, TOY2D_NAMES,
  batchIterator, sequentialBatches, randomFlip, subset, validateDataset, toUint8, fromUint8, loadImageDataset,
  loadEmoji, EMOJI_CLASS_NAMES, type ImageDataset,
} from '../src/data/index.js';
import { jpegComponents } from '../src/io/image.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'images');

function fnv(a: Float32Array, off: number, len: number): string {
  let h = 0x811c9dc5;
  for (let i = off; i < off + len; i++) h = Math.imul(h ^ toUint8(a[i]), 0x01000193);
  return (h >>> 0).toString(16);
}

// ---- emoji (color) ----

test('emoji: 1,906 color images in 9 classes, split 4:1 within each class, composited and averaged exactly', () => {
  const all = loadEmoji(), train = loadEmoji({ split: 'train' }), held = loadEmoji({ split: 'test' });
  assert.equal(all.n, 1906);
  assert.deepEqual([all.channels, all.height, all.width, all.numClasses], [3, 32, 32, 9]);
  assert.deepEqual(all.classNames, [...EMOJI_CLASS_NAMES]);
  assert.equal(train.n + held.n, all.n);
  for (let k = 0; k < 9; k++) {
    const n = all.labels.filter((l) => l === k).length, t = held.labels.filter((l) => l === k).length;
    assert.ok(n > 0, `class ${k} is empty`);
    assert.equal(t, Math.floor(n / 5), `class ${k}: ${t} of ${n} held out`);
  }
  for (const v of all.images.subarray(0, 3 * 32 * 32 * 50)) assert.equal(Math.fround(fromUint8(toUint8(v))), v);
  // An independent oracle for one image: its 64 px PNG decoded by pngjs, over white, 2×2 averages, rounded.
  const meta = (JSON.parse(readFileSync('node_modules/emoji-datasource-twitter/emoji.json', 'utf8')) as
    { image: string; category: string; sort_order: number; has_img_twitter: boolean }[])
    .filter((r) => r.has_img_twitter && EMOJI_CLASS_NAMES.includes(r.category)).sort((a, b) => a.sort_order - b.sort_order);
  assert.equal(meta.length, all.n);
  const i = 123, png = PNG.sync.read(readFileSync(join('node_modules/emoji-datasource-twitter/img/twitter/64', meta[i].image)));
  assert.equal(all.labels[i], EMOJI_CLASS_NAMES.indexOf(meta[i].category));
  let worst = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        let s = 0;
        for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
          const o = ((2 * y + dy) * 64 + 2 * x + dx) * 4, a = png.data[o + 3] / 255;
          s += png.data[o + c] * a + 255 * (1 - a);
        }
        worst = Math.max(worst, Math.abs(toUint8(all.images[((i * 3 + c) * 32 + y) * 32 + x]) - Math.round(s / 4)));
      }
    }
  }
  assert.equal(worst, 0);
  assert.equal(loadImageDataset('emoji', { split: 'test', limit: 10 }).n, 10);
});

// ---- MNIST ----

test('MNIST: 10,000 labelled digits in [-1, 1], 8-bit exact, every class present', () => {
  const ds = loadMnist();
  validateDataset(ds);
  assert.equal(ds.n, 10000);
  assert.deepEqual([ds.channels, ds.height, ds.width, ds.numClasses], [1, 28, 28, 10]);
  assert.equal(ds.images.length, 10000 * 784);
  assert.deepEqual(ds.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  const counts = new Array(10).fill(0);
  for (const y of ds.labels) counts[y]++;
  assert.deepEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  let lo = Infinity, hi = -Infinity, notExact = 0;
  const levels = new Set<number>();
  for (const x of ds.images) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
    const v = toUint8(x);
    if (Math.fround(fromUint8(v)) !== x) notExact++;
    levels.add(v);
  }
  assert.deepEqual([lo, hi], [-1, 1]);
  assert.equal(notExact, 0, 'every value is v/127.5 − 1 for a byte v');
  assert.equal(levels.size, 256);
  assert.equal(ds.flipSafe, false, 'no flips for digits');
  // Background is black: the mean is well below 0 and the corner pixels are -1.
  assert.equal(ds.images[0], -1);
});

test('MNIST: deterministic stratified split, 8,000 train / 2,000 test, disjoint, covering all', () => {
  const all = loadMnist(), train = loadMnist({ split: 'train' }), test = loadMnist({ split: 'test' });
  assert.equal(train.n, 8000);
  assert.equal(test.n, 2000);
  assert.equal(train.name, 'mnist:train');
  const cTrain = new Array(10).fill(0), cTest = new Array(10).fill(0);
  for (const y of train.labels) cTrain[y]++;
  for (const y of test.labels) cTest[y]++;
  assert.deepEqual(cTest, [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]);
  assert.ok(cTrain.every((c, i) => c + cTest[i] === [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978][i]));
  // Round-robin order: the first 10 labels are 0..9.
  assert.deepEqual(Array.from(train.labels.subarray(0, 20)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const hashes = (ds: ImageDataset) => Array.from({ length: ds.n }, (_, i) => `${ds.labels[i]}:${fnv(ds.images, i * 784, 784)}`);
  const hAll = hashes(all).sort(), hSplit = [...hashes(train), ...hashes(test)].sort();
  assert.deepEqual(hSplit, hAll, 'train ∪ test is the whole set');
  const trainSet = new Set(hashes(train));
  assert.equal(hashes(test).filter((h) => trainSet.has(h)).length, 0, 'no test image is in train');
  // Deterministic: a second load is identical; limit gives a prefix.
  const again = loadMnist({ split: 'test', limit: 30 });
  assert.equal(again.n, 30);
  assert.deepEqual(again.images, test.images.subarray(0, 30 * 784));
  assert.deepEqual(again.labels, test.labels.subarray(0, 30));
  assert.throws(() => loadMnist({ split: 'val' as never }), /unknown split 'val'/);
});

test('Fashion-MNIST: 10,000 test images, 1,000 per class, bytes 0..255 exact', () => {
  const ds = loadFashionMnist({ split: 'test' });
  validateDataset(ds);
  assert.equal(ds.n, 10000);
  assert.equal(ds.classNames[9], 'Ankle boot');
  const counts = new Array(10).fill(0);
  for (const y of ds.labels) counts[y]++;
  assert.deepEqual(counts, new Array(10).fill(1000));
  let bad = 0;
  for (let i = 0; i < ds.images.length; i += 97) if (Math.fround(fromUint8(toUint8(ds.images[i]))) !== ds.images[i]) bad++;
  assert.equal(bad, 0);
  assert.equal(loadImageDataset('fashion-mnist', { split: 'train', limit: 20 }).n, 20);
});

test('scanImages reads flat and nested JSON arrays and rejects malformed ones', () => {
  const row = (v: string) => new Array(784).fill(v).join(',');
  const flat = Buffer.from(`{ "data": [${row('0.5')},${row('1')}] }`);
  const b = scanImages(flat, 'unit', 'flat.json');
  assert.equal(b.length, 2 * 784);
  assert.equal(b[0], 128);
  assert.equal(b[784], 255);
  const nested = Buffer.from(`{"data":[[${row('7')}],[],[${row('255')}]]}`);
  const n = scanImages(nested, 'byte', 'nested.json');
  assert.deepEqual([n.length, n[0], n[784]], [2 * 784, 7, 255]);
  assert.throws(() => scanImages(Buffer.from('{"data":[[1,2,3]]}'), 'byte', 'short.json'), /short\.json: an array of 3 values/);
  assert.throws(() => scanImages(Buffer.from(`{"data":[[${row('256')}]]}`), 'byte', 'big.json'), /big\.json: value 256/);
});

// ---- image folders ----

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-data-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** Writes a PNG; `px(x, y)` gives [r, g, b, a] (or [v] for a grayscale file). */
function writePng(path: string, w: number, h: number, px: (x: number, y: number) => number[], gray = false): void {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = px(x, y), k = (y * w + x) * 4;
    const [r, g, b, a] = gray ? [p[0], p[0], p[0], 255] : [p[0], p[1], p[2], p[3] ?? 255];
    png.data[k] = r; png.data[k + 1] = g; png.data[k + 2] = b; png.data[k + 3] = a;
  }
  const hasAlpha = !gray && png.data.some((v, i) => i % 4 === 3 && v !== 255);
  writeFileSync(path, PNG.sync.write(png, { colorType: gray ? 0 : hasAlpha ? 6 : 2 }));
}

function writeJpeg(path: string, w: number, h: number, px: (x: number, y: number) => number[], quality = 95): void {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = px(x, y), k = (y * w + x) * 4;
    data[k] = p[0]; data[k + 1] = p[1]; data[k + 2] = p[2]; data[k + 3] = 255;
  }
  writeFileSync(path, jpeg.encode({ data, width: w, height: h }, quality).data);
}

test('axisWeights: area weights sum to 1 and cover the input; bilinear uses half-pixel centers', () => {
  for (const [i, o] of [[7, 3], [30, 16], [16, 16], [3, 8], [1, 5]]) {
    const w = axisWeights(i, o);
    let total = 0;
    for (let k = 0; k < o; k++) {
      let s = 0;
      for (let j = w.start[k]; j < w.start[k + 1]; j++) s += w.weight[j];
      assert.ok(Math.abs(s - 1) < 1e-12, `${i}→${o}: row ${k} sums to ${s}`);
      total += s;
    }
    if (i > o) { // each input pixel contributes o/i of a unit in total
      const per = new Float64Array(i);
      for (let j = 0; j < w.index.length; j++) per[w.index[j]] += w.weight[j];
      for (const v of per) assert.ok(Math.abs(v - o / i) < 1e-12);
    }
  }
  const up = axisWeights(2, 4); // outputs at source coordinates -0.25, 0.25, 0.75, 1.25
  assert.deepEqual(Array.from(up.start), [0, 1, 3, 5, 6]);
  assert.deepEqual(Array.from(up.weight), [1, 0.75, 0.25, 0.25, 0.75, 1]);
});

test('image folder: RGB PNG, RGBA, JPEG of odd sizes → square [-1, 1], center-cropped', () => {
  withTmp((dir) => {
    // 12×8: red 2-column borders around an 8×8 blue center → the crop is all blue.
    writePng(join(dir, 'a-crop.png'), 12, 8, (x) => (x < 2 || x >= 10 ? [255, 0, 0] : [0, 0, 255]));
    // 37×23 constant color: any resize keeps it.
    writePng(join(dir, 'b-const.png'), 37, 23, () => [200, 100, 50]);
    // Fully transparent pixels composite over white.
    writePng(join(dir, 'c-alpha.png'), 5, 9, () => [0, 0, 0, 0]);
    // A JPEG of odd size, constant color (lossy: compare loosely).
    writeJpeg(join(dir, 'd-photo.JPG'), 19, 31, () => [30, 140, 220]);
    // 4×4 black/white checkerboard at size 2: each output averages 2 black + 2 white.
    writePng(join(dir, 'e-check.png'), 4, 4, (x, y) => ((x + y) % 2 ? [255, 255, 255] : [0, 0, 0]));
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    writeFileSync(join(dir, '.DS_Store'), 'junk');
    mkdirSync(join(dir, 'sub')); // ignored without labels: 'subfolders'

    const ds = loadImageFolder(dir, { size: 8 });
    validateDataset(ds);
    assert.equal(ds.n, 5);
    assert.deepEqual([ds.channels, ds.height, ds.width, ds.numClasses], [3, 8, 8, 0]);
    assert.equal(ds.skipped.length, 2);
    assert.ok(ds.files[3].endsWith('d-photo.JPG'));
    assert.equal(ds.flipSafe, true);
    const img = (i: number, c: number) => ds.images.subarray((i * 3 + c) * 64, (i * 3 + c + 1) * 64);
    // Exact: the 8×8 crop is copied without resampling.
    assert.ok(img(0, 0).every((v) => v === -1) && img(0, 1).every((v) => v === -1) && img(0, 2).every((v) => v === 1));
    for (const [c, v] of [[0, 200], [1, 100], [2, 50]]) {
      for (const x of img(1, c)) assert.ok(Math.abs(x - fromUint8(v)) < 1e-5);
    }
    assert.ok([0, 1, 2].every((c) => img(2, c).every((v) => v === 1)), 'transparent → white');
    for (const [c, v] of [[0, 30], [1, 140], [2, 220]]) {
      for (const x of img(3, c)) assert.ok(Math.abs(toUint8(x) - v) <= 6, `jpeg channel ${c}: ${toUint8(x)} vs ${v}`);
    }
    for (const x of ds.images) assert.ok(x >= -1 && x <= 1);

    const small = loadImageFolder(dir, { size: 2, limit: 5 });
    const check = small.images.subarray(4 * 12, 5 * 12);
    for (const x of check) assert.ok(Math.abs(x) < 1e-6, `area average of the checkerboard is mid-gray, got ${x}`);
    // Upscaling (bilinear) of the 8×8 crop stays exact on a constant image.
    const big = loadImageFolder(dir, { size: 40, limit: 2 });
    assert.ok(big.images.subarray(40 * 40 * 3 + 0, 40 * 40 * 4).every((x) => Math.abs(x - fromUint8(200)) < 1e-5));
  });
});

test('image folder: grayscale files, forced channels, and mixed channel counts', () => {
  withTmp((dir) => {
    writePng(join(dir, 'g1.png'), 9, 13, (x) => [x * 20], true);
    copyFileSync(join(FIXTURES, 'gray-13x9.jpg'), join(dir, 'g2.jpg'));
    const gray = loadImageFolder(dir, { size: 9 });
    assert.equal(gray.channels, 1);
    assert.equal(gray.images.length, 2 * 81);
    // g1 is 9×13: the crop drops rows, columns stay exact.
    assert.deepEqual(Array.from(gray.images.subarray(0, 9), toUint8), [0, 20, 40, 60, 80, 100, 120, 140, 160]);
    // The grayscale JPEG (13×9 ramp) center crop is columns 2..10 of round(255·x/12).
    const ramp = Array.from(gray.images.subarray(81, 90), toUint8);
    ramp.forEach((v, i) => assert.ok(Math.abs(v - Math.round((255 * (i + 2)) / 12)) <= 3, `ramp ${ramp}`));

    writePng(join(dir, 'rgb1.png'), 10, 10, () => [255, 0, 0]);
    writePng(join(dir, 'rgb2.png'), 10, 10, () => [0, 255, 0]);
    writePng(join(dir, 'rgb3.png'), 10, 10, () => [0, 0, 255]);
    assert.throws(() => loadImageFolder(dir, { size: 8 }),
      (e: Error) => /mixed channel counts: 2 grayscale images \(g1\.png, g2\.jpg\) among 3 RGB; pass channels 'rgb' or 'gray'/.test(e.message)
        && !e.message.includes('\n'));
    const rgb = loadImageFolder(dir, { size: 8, channels: 'rgb' });
    assert.equal(rgb.channels, 3);
    assert.equal(rgb.n, 5);
    const asGray = loadImageFolder(dir, { size: 8, channels: 'gray' });
    assert.equal(asGray.channels, 1);
    // Pure green → luma 0.587·255.
    assert.ok(Math.abs(toUint8(asGray.images[3 * 64]) - Math.round(0.587 * 255)) <= 1);
  });
});

test('image folder: progressive JPEG fixture and JPEG component detection', () => {
  withTmp((dir) => {
    copyFileSync(join(FIXTURES, 'progressive-11x7.jpg'), join(dir, 'p.jpeg'));
    const ds = loadImageFolder(dir, { size: 7 });
    assert.equal(ds.channels, 3);
    const red = ds.images.subarray(0, 49), blue = ds.images.subarray(98, 147);
    assert.ok(red[6] > red[0], 'red ramps up left to right');
    const meanBlue = blue.reduce((s, v) => s + toUint8(v), 0) / 49;
    assert.ok(Math.abs(meanBlue - 128) < 16, `blue ≈ 128, got ${meanBlue}`);
  });
  assert.equal(jpegComponents(readFileSync(join(FIXTURES, 'gray-13x9.jpg'))), 1);
  assert.equal(jpegComponents(readFileSync(join(FIXTURES, 'progressive-11x7.jpg'))), 3);
});

test('image folder errors are one line and name the file or folder', () => {
  withTmp((dir) => {
    const oneLine = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes('\n');
    // Empty folder.
    assert.throws(() => loadImageFolder(dir, { size: 8 }), oneLine(new RegExp(`folder ${escape(dir)} has no PNG or JPEG images$`)));
    // Only unsupported files.
    writeFileSync(join(dir, 'a.gif'), 'GIF89a');
    writeFileSync(join(dir, 'b.txt'), 'x');
    assert.throws(() => loadImageFolder(dir, { size: 8 }), oneLine(/has no PNG or JPEG images \(2 files skipped for unsupported extensions\)/));
    // Garbage with an image extension.
    writePng(join(dir, 'good.png'), 4, 4, () => [1, 2, 3]);
    writeFileSync(join(dir, 'junk.png'), Buffer.from('definitely not a png'));
    assert.throws(() => loadImageFolder(dir, { size: 8 }), oneLine(/junk\.png: not a PNG or JPEG image \(unrecognised header; corrupt\?\)/));
    rmSync(join(dir, 'junk.png'));
    // A truncated PNG (valid signature).
    const png = readFileSync(join(dir, 'good.png'));
    writeFileSync(join(dir, 'trunc.png'), png.subarray(0, 40));
    assert.throws(() => loadImageFolder(dir, { size: 8 }), oneLine(/trunc\.png: corrupt or unsupported PNG/));
    rmSync(join(dir, 'trunc.png'));
    // A truncated JPEG.
    writeJpeg(join(dir, 'photo.jpg'), 32, 32, (x, y) => [x * 8, y * 8, 100]);
    const jpg = readFileSync(join(dir, 'photo.jpg'));
    writeFileSync(join(dir, 'photo.jpg'), jpg.subarray(0, Math.floor(jpg.length / 3)));
    assert.throws(() => loadImageFolder(dir, { size: 8 }), oneLine(/photo\.jpg: corrupt/));
    rmSync(join(dir, 'photo.jpg'));
    // An empty file.
    writeFileSync(join(dir, 'zero.jpg'), '');
    assert.throws(() => loadImageFolder(dir, { size: 8 }), oneLine(/zero\.jpg: not a PNG or JPEG image \(empty file/));
    rmSync(join(dir, 'zero.jpg'));
    assert.equal(loadImageFolder(dir, { size: 8 }).n, 1);
    // A folder that does not exist.
    assert.throws(() => loadImageFolder(join(dir, 'nope'), { size: 8 }), oneLine(/cannot read folder .*nope/));
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('image folder with labels from subfolders', () => {
  withTmp((dir) => {
    for (const [cls, color] of [['cats', [255, 0, 0]], ['dogs', [0, 0, 255]]] as const) {
      mkdirSync(join(dir, cls));
      for (let i = 0; i < 2; i++) writePng(join(dir, cls, `${i}.png`), 6, 6, () => [...color]);
    }
    writeFileSync(join(dir, 'stray.png'), 'x'); // files at the top level are skipped
    const ds = loadImageFolder(dir, { size: 4, labels: 'subfolders' });
    validateDataset(ds);
    assert.deepEqual(ds.classNames, ['cats', 'dogs']);
    assert.equal(ds.numClasses, 2);
    assert.deepEqual(Array.from(ds.labels), [0, 0, 1, 1]);
    assert.equal(ds.skipped.length, 1);
  });
});

// ---- toy 2-D sets ----

test('toy 2-D sets: centered, unit average variance, deterministic, on their shapes', () => {
  for (const name of TOY2D_NAMES) {
    const n = 40000;
    const a = sampleToy2d(name, n, new Generator(7));
    assert.equal(a.length, 2 * n);
    assert.deepEqual(sampleToy2d(name, 100, new Generator(7)), a.subarray(0, 200), `${name}: deterministic`);
    const m = [0, 0], v = [0, 0];
    for (let i = 0; i < n; i++) for (let k = 0; k < 2; k++) m[k] += a[2 * i + k] / n;
    for (let i = 0; i < n; i++) for (let k = 0; k < 2; k++) v[k] += (a[2 * i + k] - m[k]) ** 2 / n;
    assert.ok(Math.abs(m[0]) < 0.03 && Math.abs(m[1]) < 0.03, `${name}: mean ${m}`);
    assert.ok(Math.abs((v[0] + v[1]) / 2 - 1) < 0.03, `${name}: variance ${v}`);
  }
  // Shape checks: checkerboard points sit on cells with even floor(x)+floor(y) (before scaling by sqrt(4/3)).
  const s = Math.sqrt(4 / 3), cb = sampleToy2d('checkerboard', 2000, new Generator(1));
  for (let i = 0; i < 2000; i++) {
    const x = cb[2 * i] * s, y = cb[2 * i + 1] * s;
    assert.ok(Math.abs(x) <= 2 + 1e-5 && Math.abs(y) <= 2 + 1e-5);
    assert.equal((Math.floor(x + 1e-6) + Math.floor(y + 1e-6)) & 1, 0);
  }
  // 8 gaussians: every point is near one of the 8 centers (radius 4/sqrt(8.25)).
  const g8 = sampleToy2d('8gaussians', 2000, new Generator(2)), r = 4 / Math.sqrt(8.25);
  for (let i = 0; i < 2000; i++) {
    const x = g8[2 * i], y = g8[2 * i + 1];
    const d = Math.min(...Array.from({ length: 8 }, (_, k) => Math.hypot(x - r * Math.cos((k * Math.PI) / 4), y - r * Math.sin((k * Math.PI) / 4))));
    assert.ok(d < 6 * 0.5 / Math.sqrt(8.25));
  }
  assert.throws(() => sampleToy2d('spiral' as never, 3, new Generator(0)), /unknown toy set 'spiral'/);
});

// ---- batching and flips ----

function tinyDataset(n: number, flipSafe = true): ImageDataset {
  const images = new Float32Array(n * 2 * 3); // C=1, H=2, W=3: image i holds i·0.01 + pixel index·0.001
  for (let i = 0; i < n; i++) for (let p = 0; p < 6; p++) images[i * 6 + p] = i * 0.01 + p * 0.001;
  return { name: 'tiny', images, labels: Int32Array.from({ length: n }, (_, i) => i % 3), n, channels: 1, height: 2, width: 3,
    numClasses: 3, classNames: ['a', 'b', 'c'], flipSafe };
}

test('randomFlip mirrors rows of the chosen images', () => {
  const d = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const flipped = randomFlip(d, [2, 1, 2, 3], new Generator(0), 1);
  assert.deepEqual(Array.from(flipped), [1, 1]);
  assert.deepEqual(Array.from(d), [3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
  const none = Float32Array.from([1, 2, 3]);
  randomFlip(none, [1, 1, 1, 3], new Generator(0), 0);
  assert.deepEqual(Array.from(none), [1, 2, 3]);
});

test('batchIterator: full batches over shuffled epochs, every example once per epoch', () => {
  const ds = tinyDataset(10, false);
  const it = batchIterator(ds, 4, new Generator(3));
  const seen: number[] = [];
  for (let b = 0; b < 5; b++) { // 20 examples = 2 epochs
    const { x, y, indices } = it.nextBatch();
    assert.deepEqual(x.shape, [4, 1, 2, 3]);
    assert.deepEqual(y.shape, [4]);
    assert.equal(y.dtype, 'int32');
    for (let k = 0; k < 4; k++) {
      const i = indices[k];
      assert.equal(y.data[k], i % 3);
      assert.ok(Math.abs(x.data[k * 6] - i * 0.01) < 1e-7, 'no flips by default for flipSafe: false');
    }
    seen.push(...indices);
  }
  assert.deepEqual([...seen.slice(0, 10)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...seen.slice(10)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notDeepEqual(seen.slice(0, 10), seen.slice(10), 'epochs are reshuffled');
  assert.equal(it.epoch, 2);
  assert.equal(it.examplesSeen, 20);
  // A dataset smaller than a batch still gives full batches.
  const small = batchIterator(tinyDataset(3), 8, new Generator(0), { flip: false }).nextBatch();
  assert.deepEqual(small.x.shape, [8, 1, 2, 3]);
  // Deterministic in the generator's seed.
  const a = batchIterator(ds, 4, new Generator(9)), b = batchIterator(ds, 4, new Generator(9));
  for (let k = 0; k < 4; k++) assert.deepEqual(a.nextBatch().x.data, b.nextBatch().x.data);
});

test('batchIterator: saved state resumes the exact stream (with flips)', () => {
  const ds = tinyDataset(7);
  const gen = new Generator(11);
  const it = batchIterator(ds, 3, gen);
  assert.equal(it.flip, true, 'flipSafe dataset flips by default');
  for (let k = 0; k < 4; k++) it.nextBatch(); // mid second epoch
  const state = JSON.parse(JSON.stringify(it.getState()));
  const expected = Array.from({ length: 6 }, () => { const b = it.nextBatch(); return [Array.from(b.x.data), Array.from(b.indices)]; });
  // A fresh process: new generator with a different seed, restored from the saved state.
  const gen2 = new Generator(999);
  const resumed = batchIterator(ds, 3, gen2, { state });
  const got = Array.from({ length: 6 }, () => { const b = resumed.nextBatch(); return [Array.from(b.x.data), Array.from(b.indices)]; });
  assert.deepEqual(got, expected);
  assert.deepEqual(gen2.getState(), gen.getState(), 'the generator continues identically too');
  // Some image was flipped (pixel 0 holds the row's last value).
  const flippedSome = expected.some(([x]) => x.some((v, k) => k % 6 === 0 && (Math.round(v * 1000) % 10) === 2));
  assert.ok(flippedSome);
  assert.throws(() => batchIterator(tinyDataset(8), 3, new Generator(0), { state }), /dataset of 7 examples/);
});

test('sequentialBatches and subset', () => {
  const ds = tinyDataset(7);
  const batches = [...sequentialBatches(ds, 3)];
  assert.deepEqual(batches.map((b) => b.x.shape[0]), [3, 3, 1]);
  assert.deepEqual(batches.flatMap((b) => Array.from(b.indices)), [0, 1, 2, 3, 4, 5, 6]);
  const sub = subset(ds, [6, 0]);
  assert.equal(sub.n, 2);
  assert.deepEqual(Array.from(sub.labels), [0, 0]);
  assert.ok(Math.abs(sub.images[0] - 0.06) < 1e-7);
  assert.throws(() => subset(ds, [7]), /index 7 outside/);
});

test('MNIST keeps bytes; the float images are built on first read and match; batches, subsets and checks use the bytes', () => {
  const ds = loadMnist({ split: 'train', limit: 300 });
  assert.ok(ds.bytes instanceof Uint8Array && ds.bytes.length === 300 * 784);
  const own = Object.getOwnPropertyDescriptor(ds, 'images')!;
  assert.ok(own.get, 'images is built on demand');
  validateDataset(ds);
  const batch = batchIterator(ds, 8, new Generator(3)).nextBatch();
  const sub = subset(ds, [5, 0, 299]);
  assert.ok(sub.bytes && Object.getOwnPropertyDescriptor(sub, 'images')!.get, 'a subset of bytes is bytes');
  // Only now the float copy: byte/127.5 − 1 exactly, the batches' and the subset's values included.
  const f = ds.images;
  assert.equal(f, ds.images, 'built once');
  for (let i = 0; i < ds.bytes.length; i++) if (f[i] !== Math.fround(ds.bytes[i] / 127.5 - 1)) assert.fail(`value ${i}: ${f[i]} from byte ${ds.bytes[i]}`);
  batch.indices.forEach((j, b) => assert.deepEqual(batch.x.data.subarray(b * 784, (b + 1) * 784), f.subarray(j * 784, (j + 1) * 784)));
  [5, 0, 299].forEach((j, i) => assert.deepEqual(sub.images.subarray(i * 784, (i + 1) * 784), f.subarray(j * 784, (j + 1) * 784)));
  assert.deepEqual(Array.from(sub.labels), [ds.labels[5], ds.labels[0], ds.labels[299]]);
  assert.throws(() => validateDataset({ ...sub, n: 4 }), /2352 values do not hold 4 images/);
});
