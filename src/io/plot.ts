/**
 * A small line/scatter plot renderer to PNG, in pure TypeScript (no canvas): for loss curves, ᾱ/SNR
 * schedules and 2-D toy samples.
 *
 * Axes with "nice" ticks (1, 2, 5 × 10^k) and light grid lines, optional log scales (decade ticks with
 * minor ticks), several series (lines with anti-aliased coverage, or points), a legend, a title and axis
 * labels. Text uses a built-in 5×7 bitmap font (printable ASCII plus α ᾱ β σ ε × −), scaled by an integer.
 * Non-finite values (and values ≤ 0 on a log axis) are skipped and break the line.
 */
import { saveRaster, type Raster } from './png.js';

export type RGB = readonly [number, number, number];

export interface Series {
  /** Legend entry; series without a name are not listed. */
  name?: string;
  /** x values (default 0, 1, 2, …). */
  x?: ArrayLike<number>;
  y: ArrayLike<number>;
  /** Default: the next color of a 10-color palette (matplotlib's tab10). */
  color?: RGB;
  /** 'line' (default) or 'points'. */
  style?: 'line' | 'points';
  /** Line width, or point diameter, in pixels (default 1.6 for lines, 3 for points). */
  width?: number;
}

export interface PlotOptions {
  /** Image size in pixels (default 800×500). */
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  yLabel?: string;
  logX?: boolean;
  logY?: boolean;
  /** Fixed axis ranges (default: the data's, with a small margin). */
  xRange?: readonly [number, number];
  yRange?: readonly [number, number];
  /** Legend corner (default 'top-right'; 'none' hides it). */
  legend?: 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left' | 'none';
  /** Integer text scale (default 2: 10×14-pixel glyphs). */
  fontScale?: number;
  /** Equal scale on both axes (for 2-D point sets). */
  equalAspect?: boolean;
}

export const PALETTE: readonly RGB[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

/** Exponential moving average, a common smoothing for noisy loss curves (alpha = weight of the new value). */
export function emaSmooth(values: ArrayLike<number>, alpha = 0.05): Float64Array {
  const out = new Float64Array(values.length);
  let m = NaN;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) m = Number.isNaN(m) ? v : m + alpha * (v - m);
    out[i] = m;
  }
  return out;
}

/** Renders a plot to an RGB raster. */
export function renderPlot(series: readonly Series[], opts: PlotOptions = {}): Raster {
  const W = Math.max(120, Math.floor(opts.width ?? 800)), H = Math.max(90, Math.floor(opts.height ?? 500));
  const fs = Math.max(1, Math.floor(opts.fontScale ?? 2));
  const canvas = new Canvas(W, H);
  const logX = !!opts.logX, logY = !!opts.logY;
  const tx = (v: number) => (logX ? Math.log10(v) : v), ty = (v: number) => (logY ? Math.log10(v) : v);
  const ok = (v: number, log: boolean) => Number.isFinite(v) && (!log || v > 0);

  // Data → transformed coordinates, with NaN for points to skip.
  const pts = series.map((s) => {
    const n = s.y.length;
    if (s.x && s.x.length !== n) throw new Error(`plot: series ${s.name ?? ''} has ${s.x.length} x values and ${n} y values`);
    const xs = new Float64Array(n), ys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const x = s.x ? s.x[i] : i, y = s.y[i];
      const good = ok(x, logX) && ok(y, logY);
      xs[i] = good ? tx(x) : NaN;
      ys[i] = good ? ty(y) : NaN;
    }
    return { xs, ys };
  });
  let [x0, x1] = opts.xRange ? [tx(opts.xRange[0]), tx(opts.xRange[1])] : dataRange(pts.map((p) => p.xs), 0.02);
  let [y0, y1] = opts.yRange ? [ty(opts.yRange[0]), ty(opts.yRange[1])] : dataRange(pts.map((p) => p.ys), 0.05);
  if (!(Number.isFinite(x0) && Number.isFinite(x1) && x1 > x0)) throw new Error(`plot: bad x range ${opts.xRange?.join('..')}`);
  if (!(Number.isFinite(y0) && Number.isFinite(y1) && y1 > y0)) throw new Error(`plot: bad y range ${opts.yRange?.join('..')}`);

  const yt = ticks(y0, y1, logY, Math.max(2, Math.floor(H / (30 * fs))));
  // As many x ticks as fit with their labels side by side (the plot is about W − 80 wide).
  let xt = ticks(x0, x1, logX, Math.max(2, Math.floor(W / (45 * fs))));
  for (let m = Math.floor(W / (45 * fs)); m > 2; m--) {
    xt = ticks(x0, x1, logX, m);
    const widest = Math.max(0, ...xt.major.map((t) => textWidth(t.label, fs)));
    if (xt.major.length * (widest + 6 * fs) <= W - 80 - 12 * fs) break;
  }
  const gh = 8 * fs, gw = 6 * fs; // glyph cell (7 rows + a descender row)
  const yLabelW = Math.max(0, ...yt.major.map((t) => textWidth(t.label, fs)));
  const left = 12 + (opts.yLabel ? gh + 10 : 0) + yLabelW + 8;
  const top = 12 + (opts.title ? gh + 12 : 0);
  const bottom = 10 + gh + 8 + (opts.xLabel ? gh + 10 : 0);
  const right = 16 + Math.ceil(textWidth(xt.major.at(-1)?.label ?? '', fs) / 2);
  let pw = W - left - right, ph = H - top - bottom;
  if (pw < 20 || ph < 20) throw new Error(`plot: ${W}×${H} is too small for the labels`);
  let px0 = left, py0 = top;
  if (opts.equalAspect) { // shrink one axis so that a unit is the same length on both, centered
    const sx = pw / (x1 - x0), sy = ph / (y1 - y0);
    if (sx > sy) { const w = Math.round((x1 - x0) * sy); px0 += Math.floor((pw - w) / 2); pw = w; }
    else { const h = Math.round((y1 - y0) * sx); py0 += Math.floor((ph - h) / 2); ph = h; }
  }
  const X = (v: number) => px0 + ((v - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => py0 + ph - ((v - y0) / (y1 - y0)) * ph;

  // Grid, minor ticks, frame.
  const grid: RGB = [232, 232, 232], minorGrid: RGB = [244, 244, 244], ink: RGB = [40, 40, 40];
  for (const t of xt.minor) canvas.vline(Math.round(X(t)), py0, py0 + ph, minorGrid);
  for (const t of yt.minor) canvas.hline(px0, px0 + pw, Math.round(Y(t)), minorGrid);
  for (const t of xt.major) canvas.vline(Math.round(X(t.v)), py0, py0 + ph, grid);
  for (const t of yt.major) canvas.hline(px0, px0 + pw, Math.round(Y(t.v)), grid);

  // Series, clipped to the plot area.
  const clip = { x0: px0, y0: py0, x1: px0 + pw, y1: py0 + ph };
  series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const mask = new Float32Array(W * H);
    const { xs, ys } = pts[k];
    if ((s.style ?? 'line') === 'points') {
      const r = (s.width ?? 3) / 2;
      for (let i = 0; i < xs.length; i++) if (!Number.isNaN(xs[i])) stampSegment(mask, W, clip, X(xs[i]), Y(ys[i]), X(xs[i]), Y(ys[i]), r);
    } else {
      const r = (s.width ?? 1.6) / 2;
      let prev = -1;
      for (let i = 0; i < xs.length; i++) {
        if (Number.isNaN(xs[i])) { prev = -1; continue; }
        const isolated = prev < 0 && (i + 1 >= xs.length || Number.isNaN(xs[i + 1]));
        if (prev >= 0) stampSegment(mask, W, clip, X(xs[prev]), Y(ys[prev]), X(xs[i]), Y(ys[i]), r);
        else if (isolated) stampSegment(mask, W, clip, X(xs[i]), Y(ys[i]), X(xs[i]), Y(ys[i]), r + 0.5);
        prev = i;
      }
    }
    canvas.composite(mask, color);
  });

  // Frame and ticks on top of the data.
  canvas.rect(px0, py0, px0 + pw, py0 + ph, ink);
  for (const t of xt.minor) canvas.vline(Math.round(X(t)), py0 + ph - 2, py0 + ph, ink);
  for (const t of yt.minor) canvas.hline(px0, px0 + 2, Math.round(Y(t)), ink);
  for (const t of xt.major) {
    const x = Math.round(X(t.v));
    canvas.vline(x, py0 + ph - 4, py0 + ph + 4, ink);
    canvas.text(t.label, x - textWidth(t.label, fs) / 2, py0 + ph + 8, fs, ink);
  }
  for (const t of yt.major) {
    const y = Math.round(Y(t.v));
    canvas.hline(px0 - 4, px0 + 4, y, ink);
    canvas.text(t.label, px0 - 8 - textWidth(t.label, fs), y - Math.floor(gh / 2), fs, ink);
  }
  if (opts.title) canvas.text(opts.title, px0 + pw / 2 - textWidth(opts.title, fs) / 2, 12, fs, ink);
  if (opts.xLabel) canvas.text(opts.xLabel, px0 + pw / 2 - textWidth(opts.xLabel, fs) / 2, H - 10 - gh, fs, ink);
  if (opts.yLabel) canvas.textUp(opts.yLabel, 12, py0 + ph / 2 + textWidth(opts.yLabel, fs) / 2, fs, ink);

  // Legend.
  const named = series.map((s, k) => ({ s, k })).filter(({ s }) => s.name);
  const where = opts.legend ?? 'top-right';
  if (named.length && where !== 'none') {
    const sw = 8 * gw / 2 * 1.5, lh = gh + 6;
    const lw = 10 + sw + 8 + Math.max(...named.map(({ s }) => textWidth(s.name!, fs))) + 10;
    const lhTot = 8 + named.length * lh + 2;
    const lx = where.endsWith('right') ? px0 + pw - lw - 8 : px0 + 8;
    const ly = where.startsWith('top') ? py0 + 8 : py0 + ph - lhTot - 8;
    canvas.fillRect(lx, ly, lx + lw, ly + lhTot, [255, 255, 255], 0.88);
    canvas.rect(lx, ly, lx + lw, ly + lhTot, [200, 200, 200]);
    named.forEach(({ s, k }, i) => {
      const color = s.color ?? PALETTE[k % PALETTE.length];
      const cy = ly + 8 + i * lh + gh / 2;
      const mask = new Float32Array(W * H);
      const all = { x0: 0, y0: 0, x1: W, y1: H };
      if ((s.style ?? 'line') === 'points') stampSegment(mask, W, all, lx + 10 + sw / 2, cy, lx + 10 + sw / 2, cy, Math.max(2, (s.width ?? 3) / 2));
      else stampSegment(mask, W, all, lx + 10, cy, lx + 10 + sw, cy, Math.max(1, (s.width ?? 1.6) / 2));
      canvas.composite(mask, color);
      canvas.text(s.name!, lx + 10 + sw + 8, ly + 8 + i * lh, fs, ink);
    });
  }
  return { width: W, height: H, channels: 3, pixels: canvas.px };
}

/** Renders a plot and writes it as a PNG (atomically). */
export function savePlot(path: string, series: readonly Series[], opts: PlotOptions = {}): void {
  saveRaster(path, renderPlot(series, opts));
}

// ---- ranges and ticks ----

function dataRange(arrays: Float64Array[], margin: number): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) for (const v of a) if (!Number.isNaN(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === Infinity) return [0, 1];
  if (hi === lo) { const d = lo === 0 ? 1 : Math.abs(lo) * 0.1; return [lo - d, hi + d]; }
  const d = (hi - lo) * margin;
  return [lo - d, hi + d];
}

interface Ticks { major: { v: number; label: string }[]; minor: number[] }

/** Ticks in transformed coordinates (log10 for a log axis), with labels in data units. */
export function ticks(lo: number, hi: number, log: boolean, maxTicks: number): Ticks {
  if (log && hi - lo >= 1) {
    const step = Math.max(1, Math.ceil((Math.floor(hi) - Math.ceil(lo) + 1) / maxTicks));
    const major: Ticks['major'] = [], minor: number[] = [];
    for (let k = Math.ceil(lo); k <= hi + 1e-9; k++) if (k % step === 0) major.push({ v: k, label: formatPow10(k) });
    if (step === 1 && hi - lo <= 8) {
      for (let k = Math.floor(lo); k <= hi; k++) for (let m = 2; m <= 9; m++) {
        const v = k + Math.log10(m);
        if (v >= lo && v <= hi) minor.push(v);
      }
    }
    return { major, minor };
  }
  if (log) { // less than a decade: linear nice ticks in data units, placed logarithmically
    const a = 10 ** lo, b = 10 ** hi;
    const lin = niceTicks(a, b, maxTicks);
    return { major: lin.map((v) => ({ v: Math.log10(v), label: formatLinear(v, lin) })).filter((t) => t.v >= lo && t.v <= hi), minor: [] };
  }
  const lin = niceTicks(lo, hi, maxTicks);
  return { major: lin.map((v) => ({ v, label: formatLinear(v, lin) })), minor: [] };
}

/** Multiples of 1, 2 or 5 × 10^k inside [lo, hi], at most about maxTicks of them. */
export function niceTicks(lo: number, hi: number, maxTicks: number): number[] {
  const raw = (hi - lo) / Math.max(1, maxTicks);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) {
    const v = Number((i * step).toPrecision(12)); // 0.6, not 0.6000000000000001
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

function formatPow10(k: number): string {
  if (k >= 0 && k <= 4) return String(10 ** k);
  if (k < 0 && k >= -3) return (10 ** k).toFixed(-k);
  return `1e${k}`;
}

/**
 * A tick label with the fewest decimals that keep every tick of the axis exact (so 0.25 steps get two);
 * exponent form (2.5e7, 1e-4) when the largest tick is ≥ 1e7 or < 1e-3.
 */
export function formatLinear(v: number, all: readonly number[]): string {
  const big = Math.max(...all.map(Math.abs));
  const e = big >= 1e7 || big < 1e-3 ? Math.floor(Math.log10(big)) : 0;
  const step = all.length > 1 ? Math.abs(all[1] - all[0]) : Math.abs(v);
  const tol = (step / 10 ** e) * 1e-6;
  let d = 0;
  while (d < 10 && all.some((t) => Math.abs(Number((t / 10 ** e).toFixed(d)) - t / 10 ** e) > tol)) d++;
  const m = (v / 10 ** e).toFixed(d).replace(/^-(0\.?0*)$/, '$1');
  return e === 0 || v === 0 ? m : `${m}e${e}`;
}

// ---- rasterization ----

/** Adds to `mask` the coverage of a round-capped segment of half-width r (max with what is there). */
function stampSegment(mask: Float32Array, W: number, clip: { x0: number; y0: number; x1: number; y1: number },
  ax: number, ay: number, bx: number, by: number, r: number): void {
  const xa = Math.max(clip.x0, Math.floor(Math.min(ax, bx) - r - 1)), xb = Math.min(clip.x1, Math.ceil(Math.max(ax, bx) + r + 1));
  const ya = Math.max(clip.y0, Math.floor(Math.min(ay, by) - r - 1)), yb = Math.min(clip.y1, Math.ceil(Math.max(ay, by) + r + 1));
  const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  for (let y = ya; y <= yb; y++) {
    for (let x = xa; x <= xb; x++) {
      const cx = x + 0.5, cy = y + 0.5; // pixel center
      let t = len2 > 0 ? ((cx - ax) * dx + (cy - ay) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = ax + t * dx - cx, ey = ay + t * dy - cy;
      const cov = r + 0.5 - Math.sqrt(ex * ex + ey * ey);
      if (cov > 0) { const k = y * W + x; const c = cov > 1 ? 1 : cov; if (c > mask[k]) mask[k] = c; }
    }
  }
}

class Canvas {
  readonly px: Uint8Array;
  constructor(readonly w: number, readonly h: number) {
    this.px = new Uint8Array(w * h * 3).fill(255);
  }

  blend(x: number, y: number, c: RGB, a: number): void {
    x = Math.round(x); y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.w || y >= this.h || a <= 0) return;
    const k = (y * this.w + x) * 3;
    for (let i = 0; i < 3; i++) this.px[k + i] = Math.round(this.px[k + i] * (1 - a) + c[i] * a);
  }

  composite(mask: Float32Array, c: RGB): void {
    for (let k = 0; k < mask.length; k++) {
      const a = mask[k];
      if (a > 0) for (let i = 0; i < 3; i++) this.px[k * 3 + i] = Math.round(this.px[k * 3 + i] * (1 - a) + c[i] * a);
    }
  }

  hline(xa: number, xb: number, y: number, c: RGB): void {
    for (let x = Math.round(xa); x <= Math.round(xb); x++) this.blend(x, y, c, 1);
  }

  vline(x: number, ya: number, yb: number, c: RGB): void {
    for (let y = Math.round(ya); y <= Math.round(yb); y++) this.blend(x, y, c, 1);
  }

  rect(xa: number, ya: number, xb: number, yb: number, c: RGB): void {
    this.hline(xa, xb, Math.round(ya), c); this.hline(xa, xb, Math.round(yb), c);
    this.vline(Math.round(xa), ya, yb, c); this.vline(Math.round(xb), ya, yb, c);
  }

  fillRect(xa: number, ya: number, xb: number, yb: number, c: RGB, a = 1): void {
    for (let y = Math.round(ya); y <= Math.round(yb); y++) for (let x = Math.round(xa); x <= Math.round(xb); x++) this.blend(x, y, c, a);
  }

  /** Left-to-right text with its top-left corner at (x, y). */
  text(s: string, x: number, y: number, scale: number, c: RGB): void {
    this.glyphs(s, scale, (gx, gy) => this.fillRect(Math.round(x) + gx, Math.round(y) + gy, Math.round(x) + gx + scale - 1, Math.round(y) + gy + scale - 1, c));
  }

  /** Text rotated a quarter turn counter-clockwise (reading upwards), starting at (x, y) = its bottom-left. */
  textUp(s: string, x: number, y: number, scale: number, c: RGB): void {
    this.glyphs(s, scale, (gx, gy) => {
      const px = Math.round(x) + gy, py = Math.round(y) - gx - scale;
      this.fillRect(px, py + 1, px + scale - 1, py + scale, c);
    });
  }

  /** Calls `dot` with the offset of each lit font pixel (in output pixels). */
  private glyphs(s: string, scale: number, dot: (gx: number, gy: number) => void): void {
    let pen = 0;
    for (const ch of s) {
      if (ch === '\u0304') { // combining macron: a bar over the previous glyph
        for (let col = 0; col < 4; col++) dot(pen - 6 * scale + col * scale, 0);
        continue;
      }
      const g = glyph(ch);
      for (let col = 0; col < 5; col++) {
        for (let row = 0; row < 8; row++) if ((g[col] >> row) & 1) dot(pen + col * scale, row * scale);
      }
      pen += 6 * scale;
    }
  }
}

/** Width of a string in pixels at `scale`. */
export function textWidth(s: string, scale: number): number {
  let n = 0;
  for (const ch of s) if (ch !== '\u0304') n++;
  return n === 0 ? 0 : n * 6 * scale - scale;
}

// ---- the 5×7 font: five column bytes per glyph, bit 0 = top row, bit 7 = descender row (g j p q y);
// after the classic HD44780-style font ----

const ASCII = [
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5f, 0x00, 0x00, 0x00, 0x07, 0x00, 0x07, 0x00, 0x14, 0x7f, 0x14, 0x7f, 0x14, // space ! " #
  0x24, 0x2a, 0x7f, 0x2a, 0x12, 0x23, 0x13, 0x08, 0x64, 0x62, 0x36, 0x49, 0x55, 0x22, 0x50, 0x00, 0x05, 0x03, 0x00, 0x00, // $ % & '
  0x00, 0x1c, 0x22, 0x41, 0x00, 0x00, 0x41, 0x22, 0x1c, 0x00, 0x08, 0x2a, 0x1c, 0x2a, 0x08, 0x08, 0x08, 0x3e, 0x08, 0x08, // ( ) * +
  0x00, 0x50, 0x30, 0x00, 0x00, 0x08, 0x08, 0x08, 0x08, 0x08, 0x00, 0x60, 0x60, 0x00, 0x00, 0x20, 0x10, 0x08, 0x04, 0x02, // , - . /
  0x3e, 0x51, 0x49, 0x45, 0x3e, 0x00, 0x42, 0x7f, 0x40, 0x00, 0x42, 0x61, 0x51, 0x49, 0x46, 0x21, 0x41, 0x45, 0x4b, 0x31, // 0 1 2 3
  0x18, 0x14, 0x12, 0x7f, 0x10, 0x27, 0x45, 0x45, 0x45, 0x39, 0x3c, 0x4a, 0x49, 0x49, 0x30, 0x01, 0x71, 0x09, 0x05, 0x03, // 4 5 6 7
  0x36, 0x49, 0x49, 0x49, 0x36, 0x06, 0x49, 0x49, 0x29, 0x1e, 0x00, 0x36, 0x36, 0x00, 0x00, 0x00, 0x56, 0x36, 0x00, 0x00, // 8 9 : ;
  0x08, 0x14, 0x22, 0x41, 0x00, 0x14, 0x14, 0x14, 0x14, 0x14, 0x00, 0x41, 0x22, 0x14, 0x08, 0x02, 0x01, 0x51, 0x09, 0x06, // < = > ?
  0x32, 0x49, 0x79, 0x41, 0x3e, 0x7e, 0x11, 0x11, 0x11, 0x7e, 0x7f, 0x49, 0x49, 0x49, 0x36, 0x3e, 0x41, 0x41, 0x41, 0x22, // @ A B C
  0x7f, 0x41, 0x41, 0x22, 0x1c, 0x7f, 0x49, 0x49, 0x49, 0x41, 0x7f, 0x09, 0x09, 0x09, 0x01, 0x3e, 0x41, 0x49, 0x49, 0x7a, // D E F G
  0x7f, 0x08, 0x08, 0x08, 0x7f, 0x00, 0x41, 0x7f, 0x41, 0x00, 0x20, 0x40, 0x41, 0x3f, 0x01, 0x7f, 0x08, 0x14, 0x22, 0x41, // H I J K
  0x7f, 0x40, 0x40, 0x40, 0x40, 0x7f, 0x02, 0x0c, 0x02, 0x7f, 0x7f, 0x04, 0x08, 0x10, 0x7f, 0x3e, 0x41, 0x41, 0x41, 0x3e, // L M N O
  0x7f, 0x09, 0x09, 0x09, 0x06, 0x3e, 0x41, 0x51, 0x21, 0x5e, 0x7f, 0x09, 0x19, 0x29, 0x46, 0x46, 0x49, 0x49, 0x49, 0x31, // P Q R S
  0x01, 0x01, 0x7f, 0x01, 0x01, 0x3f, 0x40, 0x40, 0x40, 0x3f, 0x1f, 0x20, 0x40, 0x20, 0x1f, 0x3f, 0x40, 0x38, 0x40, 0x3f, // T U V W
  0x63, 0x14, 0x08, 0x14, 0x63, 0x07, 0x08, 0x70, 0x08, 0x07, 0x61, 0x51, 0x49, 0x45, 0x43, 0x00, 0x7f, 0x41, 0x41, 0x00, // X Y Z [
  0x02, 0x04, 0x08, 0x10, 0x20, 0x00, 0x41, 0x41, 0x7f, 0x00, 0x04, 0x02, 0x01, 0x02, 0x04, 0x40, 0x40, 0x40, 0x40, 0x40, // \ ] ^ _
  0x00, 0x01, 0x02, 0x04, 0x00, 0x20, 0x54, 0x54, 0x54, 0x78, 0x7f, 0x48, 0x44, 0x44, 0x38, 0x38, 0x44, 0x44, 0x44, 0x20, // ` a b c
  0x38, 0x44, 0x44, 0x48, 0x7f, 0x38, 0x54, 0x54, 0x54, 0x18, 0x08, 0x7e, 0x09, 0x01, 0x02, 0x18, 0xa4, 0xa4, 0xa4, 0x7c, // d e f g
  0x7f, 0x08, 0x04, 0x04, 0x78, 0x00, 0x44, 0x7d, 0x40, 0x00, 0x40, 0x80, 0x80, 0x7d, 0x00, 0x7f, 0x10, 0x28, 0x44, 0x00, // h i j k
  0x00, 0x41, 0x7f, 0x40, 0x00, 0x7c, 0x04, 0x18, 0x04, 0x78, 0x7c, 0x08, 0x04, 0x04, 0x78, 0x38, 0x44, 0x44, 0x44, 0x38, // l m n o
  0xfc, 0x24, 0x24, 0x24, 0x18, 0x18, 0x24, 0x24, 0x24, 0xfc, 0x7c, 0x08, 0x04, 0x04, 0x08, 0x48, 0x54, 0x54, 0x54, 0x20, // p q r s
  0x04, 0x3f, 0x44, 0x40, 0x20, 0x3c, 0x40, 0x40, 0x20, 0x7c, 0x1c, 0x20, 0x40, 0x20, 0x1c, 0x3c, 0x40, 0x30, 0x40, 0x3c, // t u v w
  0x44, 0x28, 0x10, 0x28, 0x44, 0x1c, 0xa0, 0xa0, 0xa0, 0x7c, 0x44, 0x64, 0x54, 0x4c, 0x44, 0x00, 0x08, 0x36, 0x41, 0x00, // x y z {
  0x00, 0x00, 0x7f, 0x00, 0x00, 0x00, 0x41, 0x36, 0x08, 0x00, 0x08, 0x04, 0x08, 0x10, 0x08, // | } ~
];

const EXTRA: Record<string, readonly number[]> = {
  'α': [0x38, 0x44, 0x44, 0x38, 0x44],
  'ᾱ': [0x39, 0x45, 0x45, 0x39, 0x44], // alpha with macron (U+1FB1)
  'β': [0x7e, 0x25, 0x25, 0x1a, 0x00],
  'σ': [0x38, 0x44, 0x44, 0x3c, 0x04],
  'ε': [0x28, 0x54, 0x54, 0x44, 0x00],
  '×': [0x22, 0x14, 0x08, 0x14, 0x22],
  '−': [0x08, 0x08, 0x08, 0x08, 0x08],
  '·': [0x00, 0x00, 0x08, 0x00, 0x00],
};

function glyph(ch: string): readonly number[] {
  const code = ch.codePointAt(0)!;
  if (code >= 0x20 && code <= 0x7e) return ASCII.slice((code - 0x20) * 5, (code - 0x20) * 5 + 5);
  return EXTRA[ch] ?? ASCII.slice((0x3f - 0x20) * 5, (0x3f - 0x20) * 5 + 5); // '?'
}
