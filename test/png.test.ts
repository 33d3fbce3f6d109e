import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { tensor } from '../src/index.js';
import { encodePng, imageGrid, saveImage, saveImageGrid, toByte, writeFileAtomic } from '../src/io/png.js';
import { niceTicks, renderPlot, savePlot, textWidth, ticks, formatLinear } from '../src/io/plot.js';
import { decodeImage } from '../src/io/image.js';

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-png-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('toByte inverts v/127.5 − 1 exactly, rounds, clamps, maps NaN to 0', () => {
  for (let v = 0; v < 256; v++) assert.equal(toByte(Math.fround(v / 127.5 - 1)), v);
  assert.deepEqual([toByte(-3), toByte(2), toByte(NaN), toByte(0), toByte(-1 + 0.4 / 127.5)], [0, 255, 0, 128, 0]);
});

test('PNG round trip: RGB and grayscale images decode to the expected 8-bit values', () => {
  withTmp((dir) => {
    // RGB 3×2 image with known bytes.
    const bytes = [0, 1, 2, 127, 128, 129, 200, 254, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90];
    const C = 3, H = 2, W = 3;
    const chw = new Float32Array(C * H * W);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) chw[(c * H + y) * W + x] = bytes[(y * W + x) * 3 + c] / 127.5 - 1;
    const p = join(dir, 'rgb.png');
    saveImage(p, tensor(chw, [C, H, W]));
    const png = PNG.sync.read(readFileSync(p));
    assert.deepEqual([png.width, png.height, png.color, png.alpha], [3, 2, true, false]);
    const rgb = [];
    for (let i = 0; i < W * H; i++) rgb.push(png.data[i * 4], png.data[i * 4 + 1], png.data[i * 4 + 2]);
    assert.deepEqual(rgb, bytes);

    // Grayscale [1, 1, H, W], written as a colorType 0 PNG.
    const g = Float32Array.from([0, 64, 255, 3], (v) => v / 127.5 - 1);
    const pg = join(dir, 'gray.png');
    saveImage(pg, tensor(g, [1, 1, 2, 2]));
    const gp = PNG.sync.read(readFileSync(pg));
    assert.equal(gp.color, false);
    assert.equal(gp.colorType, 0);
    assert.deepEqual([0, 1, 2, 3].map((i) => gp.data[i * 4]), [0, 64, 255, 3]);
    // Our own decoder agrees and reports one channel.
    const d = decodeImage(readFileSync(pg), pg);
    assert.equal(d.channels, 1);
    // Upscaling repeats pixels.
    saveImage(pg, tensor(g, [1, 2, 2]), { scale: 3 });
    const up = PNG.sync.read(readFileSync(pg));
    assert.deepEqual([up.width, up.height], [6, 6]);
    assert.equal(up.data[(5 * 6 + 5) * 4], 3);
    assert.equal(up.data[(0 * 6 + 4) * 4], 64);
    // No temporary files are left behind.
    assert.deepEqual(readdirSync(dir).sort(), ['gray.png', 'rgb.png']);
  });
});

test('image grid: layout size, cell placement, padding value', () => {
  const B = 5, C = 1, H = 3, W = 4;
  const data = new Float32Array(B * C * H * W);
  for (let b = 0; b < B; b++) data.fill(b / 127.5 - 1, b * H * W, (b + 1) * H * W); // image b is the byte b
  const r = imageGrid(tensor(data, [B, C, H, W]), { nrow: 3, padding: 2, padValue: 1 });
  // 3 per row, 2 rows: width 3·(4+2)+2, height 2·(3+2)+2.
  assert.deepEqual([r.width, r.height, r.channels], [20, 12, 1]);
  const at = (x: number, y: number) => r.pixels[y * r.width + x];
  assert.equal(at(0, 0), 255, 'padding is white');
  assert.equal(at(2, 2), 0); // image 0 top-left
  assert.equal(at(2 + 6, 2), 1); // image 1
  assert.equal(at(2 + 12 + 3, 2 + 2), 2); // image 2 bottom-right pixel
  assert.equal(at(2, 2 + 5), 3); // image 3, second row
  assert.equal(at(2 + 6, 2 + 5), 4);
  assert.equal(at(2 + 12, 2 + 5), 255, 'the empty sixth cell stays padding');
  // Defaults: ceil(sqrt(B)) per row; scale multiplies cells, not padding.
  const d = imageGrid(tensor(new Float32Array(16 * 3 * 2 * 2), [16, 3, 2, 2]), { scale: 2, padding: 1 });
  assert.deepEqual([d.width, d.height, d.channels], [4 * 5 + 1, 4 * 5 + 1, 3]);
  assert.throws(() => imageGrid(tensor(new Float32Array(2 * 2 * 2 * 2), [2, 2, 2, 2])), /1 or 3 channels, got 2/);
  assert.throws(() => imageGrid(tensor(new Float32Array(4), [4])), /\[B, C, H, W\]/);
});

test('saveImageGrid writes a decodable PNG of the grid size, atomically', () => {
  withTmp((dir) => {
    const p = join(dir, 'grid.png');
    const x = new Float32Array(6 * 3 * 5 * 5).map((_, i) => Math.sin(i));
    saveImageGrid(p, tensor(x, [6, 3, 5, 5]), { nrow: 2, padding: 1 });
    const png = PNG.sync.read(readFileSync(p));
    assert.deepEqual([png.width, png.height], [2 * 6 + 1, 3 * 6 + 1]);
    assert.equal(png.data[(1 * png.width + 1) * 4], toByte(x[0]));
    // Overwrite in place; a failed write names the path and leaves no temp file.
    saveImageGrid(p, tensor(x, [6, 3, 5, 5]), { nrow: 6 });
    assert.equal(PNG.sync.read(readFileSync(p)).width, 6 * 7 + 2);
    assert.throws(() => writeFileAtomic(join(dir, 'missing', 'a.png'), new Uint8Array(3)), /cannot write .*missing.*a\.png/);
    assert.deepEqual(readdirSync(dir), ['grid.png']);
  });
});

test('encodePng handles RGBA rasters', () => {
  const px = Uint8Array.from([255, 0, 0, 128, 0, 255, 0, 255]);
  const png = PNG.sync.read(encodePng({ width: 2, height: 1, channels: 4, pixels: px }));
  assert.deepEqual(Array.from(png.data), Array.from(px));
});

test('plot: nice ticks and labels', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(-3, 17, 4), [0, 5, 10, 15]);
  assert.deepEqual(ticks(-3, 0.5, true, 10).major.map((t) => t.label), ['0.001', '0.01', '0.1', '1']);
  assert.deepEqual(ticks(-12, 3, true, 6).major.map((t) => t.label), ['1e-12', '1e-9', '1e-6', '0.001', '1', '1000']);
  assert.equal(formatLinear(0.30000000000000004, [0, 0.1, 0.2, 0.3]), '0.3');
  assert.equal(formatLinear(250000, [0, 250000, 500000]), '250000');
  assert.equal(formatLinear(2.5e7, [0, 2.5e7, 5e7]), '2.5e7');
  assert.deepEqual([0, 0.5, 1].map((v, _, a) => formatLinear(v, a)), ['0.0', '0.5', '1.0']);
  assert.equal(formatLinear(-0.00002, [-0.00002, 0, 0.00002]), '-2e-5');
  assert.equal(textWidth('ab', 2), 22);
});

test('plot: renders series to a PNG of the requested size with the series colors', () => {
  withTmp((dir) => {
    const y = Array.from({ length: 200 }, (_, i) => Math.exp(-i / 50) + 0.01);
    const r = renderPlot([{ name: 'loss', y, color: [255, 0, 0] }, { name: 'ema', y: y.map((v) => v * 2), color: [0, 0, 255] }],
      { width: 400, height: 300, title: 'Loss', xLabel: 'step', yLabel: 'loss', logY: true });
    assert.deepEqual([r.width, r.height, r.channels], [400, 300, 3]);
    let red = 0, blue = 0, dark = 0;
    for (let i = 0; i < r.pixels.length; i += 3) {
      const [R, G, B] = [r.pixels[i], r.pixels[i + 1], r.pixels[i + 2]];
      if (R > 200 && G < 60 && B < 60) red++;
      if (B > 200 && R < 60 && G < 60) blue++;
      if (R < 80 && G < 80 && B < 80) dark++;
    }
    assert.ok(red > 200 && blue > 200, `lines drawn (${red} red, ${blue} blue pixels)`);
    assert.ok(dark > 500, 'axes and text drawn');
    const p = join(dir, 'plot.png');
    savePlot(p, [{ y: [1, NaN, 3, 2], x: [0, 1, 2, 3] }, { y: [0.5], style: 'points' }], { width: 200, height: 150 });
    const png = PNG.sync.read(readFileSync(p));
    assert.deepEqual([png.width, png.height], [200, 150]);
    assert.throws(() => renderPlot([{ y: [1, 2], x: [1] }]), /1 x values and 2 y values/);
  });
});
