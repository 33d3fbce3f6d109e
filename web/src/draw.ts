/** Canvas helpers: grayscale images from [−1, 1] values, line plots, arrows, points. */

/** Draws an H×W image of values in [−1, 1] (−1 black) scaled to fill the canvas, pixels kept square and sharp. */
export function drawGray(canvas: HTMLCanvasElement, values: ArrayLike<number>, h: number, w: number, offset = 0): void {
  const img = new ImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = Math.round((values[offset + i] + 1) * 127.5);
    const b = v < 0 ? 0 : v > 255 ? 255 : v;
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = b;
    img.data[4 * i + 3] = 255;
  }
  const tmp = document.createElement('canvas');
  tmp.width = w;
  tmp.height = h;
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

/** Draws a batch [B, 1, H, W] as a grid of `cols` columns. */
export function drawGrid(canvas: HTMLCanvasElement, values: ArrayLike<number>, b: number, h: number, w: number, cols = Math.ceil(Math.sqrt(b))): void {
  const rows = Math.ceil(b / cols);
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const cw = canvas.width / cols, ch = canvas.height / rows;
  const cell = document.createElement('canvas');
  cell.width = w;
  cell.height = h;
  for (let i = 0; i < b; i++) {
    drawGray(cell, values, h, w, i * h * w);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cell, (i % cols) * cw, Math.floor(i / cols) * ch, cw - (cols > 1 ? 2 : 0), ch - (rows > 1 ? 2 : 0));
  }
}

export interface Series {
  label: string;
  color: string;
  values: ArrayLike<number>;
  /** Drawn on its own axis (left for the first series, right for the second). */
  min: number;
  max: number;
  format?: (v: number) => string;
}

/** Line plot of up to two series over t = 0 … n−1, with a vertical marker at `marker`. */
export function drawPlot(canvas: HTMLCanvasElement, series: Series[], marker: number, xLabel = 't'): void {
  const ctx = canvas.getContext('2d')!;
  const W = canvas.width, H = canvas.height, L = 44, R = 44, T = 10, B = 24;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  const n = series[0].values.length;
  const px = (t: number) => L + ((W - L - R) * t) / (n - 1);
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.font = '11px sans-serif';
  ctx.fillStyle = '#444';
  ctx.textAlign = 'center';
  for (const t of [0, Math.round((n - 1) / 2), n - 1]) ctx.fillText(String(t), px(t), H - 8);
  ctx.fillText(xLabel, (px(0) + px(Math.round((n - 1) / 2))) / 2, H - 8);
  series.forEach((s, k) => {
    const py = (v: number) => T + (H - T - B) * (1 - (Math.min(Math.max(v, s.min), s.max) - s.min) / (s.max - s.min));
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let t = 0; t < n; t++) (t ? ctx.lineTo : ctx.moveTo).call(ctx, px(t), py(s.values[t]));
    ctx.stroke();
    ctx.fillStyle = s.color;
    ctx.textAlign = k === 0 ? 'right' : 'left';
    const fmt = s.format ?? ((v: number) => v.toFixed(2));
    const x = k === 0 ? L - 4 : W - R + 4;
    ctx.fillText(fmt(s.max), x, T + 9);
    ctx.fillText(fmt(s.min), x, H - B);
    ctx.fillText(s.label, x, (T + H - B) / 2);
  });
  ctx.strokeStyle = '#d33';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(px(marker), T);
  ctx.lineTo(px(marker), H - B);
  ctx.stroke();
}

/** Maps data coordinates in [−r, r]² to the canvas. */
export function view2d(canvas: HTMLCanvasElement, r: number) {
  const s = canvas.width / (2 * r);
  return { x: (v: number) => (v + r) * s, y: (v: number) => (r - v) * s, scale: s };
}

export function drawArrow(ctx: CanvasRenderingContext2D, x0: number, y0: number, x1: number, y1: number): void {
  const dx = x1 - x0, dy = y1 - y0, len = Math.hypot(dx, dy);
  if (len < 0.5) return;
  const ux = dx / len, uy = dy / len, head = Math.min(5, len / 2);
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - head * (ux - 0.5 * uy), y1 - head * (uy + 0.5 * ux));
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - head * (ux + 0.5 * uy), y1 - head * (uy - 0.5 * ux));
  ctx.stroke();
}

/** Resolves after the browser has had a chance to draw a frame (or after 50 ms when frames are paused). */
export function nextFrame(): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => { if (!done) { done = true; resolve(); } };
    requestAnimationFrame(() => setTimeout(finish, 0));
    setTimeout(finish, 50);
  });
}

/** A dark canvas with a centred line of text: what will appear there, before anything has run. */
export function drawPlaceholder(canvas: HTMLCanvasElement, text: string): void {
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#22272e';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#aab4c0';
  ctx.font = `${Math.max(11, Math.round(canvas.width / 14))}px sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, canvas.width / 2, canvas.height / 2, canvas.width - 8);
  ctx.textBaseline = 'alphabetic';
}

/** A training-loss curve: every step's loss (grey) and an exponential moving average (blue), log y axis. */
export function drawLossCurve(canvas: HTMLCanvasElement, losses: number[]): void {
  const ctx = canvas.getContext('2d')!;
  const W = canvas.width, H = canvas.height, L = 48, R = 10, T = 10, B = 26;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.font = '11px sans-serif';
  ctx.fillStyle = '#444';
  if (losses.length === 0) {
    ctx.textAlign = 'center';
    ctx.fillText('the loss appears here while training', (L + W - R) / 2, H / 2);
    return;
  }
  const finite = losses.filter((v) => v > 0 && Number.isFinite(v));
  let lo = Math.log10(Math.min(...finite)), hi = Math.log10(Math.max(...finite));
  if (hi - lo < 0.2) { lo -= 0.1; hi += 0.1; }
  const n = losses.length;
  const px = (i: number) => L + ((W - L - R) * i) / Math.max(n - 1, 1);
  const py = (v: number) => T + (H - T - B) * (1 - (Math.log10(Math.max(v, 1e-12)) - lo) / (hi - lo));
  const line = (vals: number[], color: string, width: number) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    vals.forEach((v, i) => (i ? ctx.lineTo(px(i), py(v)) : ctx.moveTo(px(i), py(v))));
    ctx.stroke();
  };
  line(losses, '#bbb', 1);
  const smooth: number[] = [];
  let m = losses[0];
  for (const v of losses) { m = 0.9 * m + 0.1 * v; smooth.push(m); }
  line(smooth, '#2a6fdb', 2);
  ctx.fillStyle = '#444';
  ctx.textAlign = 'right';
  ctx.fillText((10 ** hi).toPrecision(2), L - 4, T + 9);
  ctx.fillText((10 ** lo).toPrecision(2), L - 4, H - B);
  ctx.textAlign = 'center';
  ctx.fillText('step 1', px(0) + 14, H - 8);
  ctx.fillText(`step ${n}`, px(n - 1) - 20, H - 8);
}

/** Draws a batch [B, C, H, W] of values in [−1, 1] (C = 1: gray, C = 3: RGB) as a square grid. */
export function drawImages(canvas: HTMLCanvasElement, values: ArrayLike<number>, b: number, c: number, h: number, w: number): void {
  const cols = Math.ceil(Math.sqrt(b)), rows = Math.ceil(b / cols);
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const cell = document.createElement('canvas');
  cell.width = w;
  cell.height = h;
  const cctx = cell.getContext('2d')!;
  const cw = canvas.width / cols, ch = canvas.height / rows, P = h * w;
  const byte = (v: number) => { const x = Math.round((v + 1) * 127.5); return x < 0 ? 0 : x > 255 ? 255 : x; };
  ctx.imageSmoothingEnabled = false;
  for (let i = 0; i < b; i++) {
    const img = new ImageData(w, h);
    for (let p = 0; p < P; p++) {
      for (let k = 0; k < 3; k++) img.data[4 * p + k] = byte(values[(i * c + (c === 3 ? k : 0)) * P + p]);
      img.data[4 * p + 3] = 255;
    }
    cctx.putImageData(img, 0, 0);
    ctx.drawImage(cell, (i % cols) * cw, Math.floor(i / cols) * ch, cw - (cols > 1 ? 2 : 0), ch - (rows > 1 ? 2 : 0));
  }
}
