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
