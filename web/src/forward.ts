/** The forward process view: a digit, a schedule, x_t at a slider's t, the ᾱ / log-SNR curves, a strip of x_t. */
import { Generator, fromUint8, makeSchedule, qSample, randn, tensor, type ScheduleConfig, type Tensor } from '../../src/index.js';
import type { App } from './common.js';
import { $, fillSelect, readField, sliderValue } from './common.js';
import { SEED, digitRule } from './validate.js';
import { drawGray, drawPlot } from './draw.js';

const SCHEDULES: [string, string, ScheduleConfig][] = [
  ['linear', 'linear (DDPM; the model\'s)', { kind: 'linear', T: 1000 }],
  ['cosine', 'cosine (improved DDPM)', { kind: 'cosine', T: 1000 }],
  ['sigmoid', 'sigmoid', { kind: 'sigmoid', T: 1000 }],
  ['scaledLinear', 'scaled linear (Stable Diffusion)', { kind: 'scaledLinear', T: 1000 }],
  ['linearZsnr', 'linear, zero terminal SNR', { kind: 'linear', T: 1000, rescaleZeroTerminalSnr: true }],
];
const STRIP_T = [0, 50, 100, 200, 300, 400, 500, 600, 800, 999];

/** The chosen digit as a [1, 1, H, W] tensor in [−1, 1]. */
export function digitTensor(app: App, index = app.digitIndex): Tensor {
  const { height: h, width: w, pixels } = app.digits;
  const x = new Float32Array(h * w);
  for (let i = 0; i < h * w; i++) x[i] = fromUint8(pixels[index * h * w + i]);
  return tensor(x, [1, 1, h, w]);
}

export function setupForward(app: App): void {
  const { n, height: h, width: w, labels } = app.digits;
  const sel = $<HTMLSelectElement>('fw-schedule'), slider = $<HTMLInputElement>('fw-t'), index = $<HTMLInputElement>('fw-index');
  fillSelect(sel, SCHEDULES.map(([v, l]) => [v, l]), 'linear');

  let latest = 0;
  const draw = async () => {
    // An invalid digit index or seed is shown under its field; the pictures keep the last valid values.
    const i = readField('fw-index', digitRule(n)), seed = readField('fw-seed', SEED);
    if (i === null || seed === null) return;
    const ticket = ++latest;
    if (i !== app.digitIndex) {
      app.digitIndex = i;
      app.onDigitChange.forEach((f) => f());
    }
    const cfg = SCHEDULES.find(([v]) => v === sel.value)![2];
    const schedule = makeSchedule(cfg);
    const t = sliderValue('fw-t');
    $('fw-t-out').textContent = String(t);
    $('fw-label').textContent = `label ${labels[i]} (test digit ${i + 1} of ${n})`;
    const x0 = digitTensor(app, i);
    const noise = randn(x0.shape, new Generator(seed));
    // x_t at the slider's t and at the strip's t's in one batch (one read from a device backend).
    const ts = [t, ...STRIP_T], k = ts.length;
    const x0s = tensor(new Float32Array(k * h * w).map((_, j) => x0.data[j % (h * w)] as number), [k, 1, h, w]);
    const eps = tensor(new Float32Array(k * h * w).map((_, j) => noise.data[j % (h * w)] as number), [k, 1, h, w]);
    const xtsT = qSample(schedule, x0s, ts, eps);
    const xts = await xtsT.read();
    xtsT.dispose();
    if (ticket !== latest) return; // a newer draw started meanwhile
    drawGray($<HTMLCanvasElement>('fw-x0'), x0.data, h, w);
    drawGray($<HTMLCanvasElement>('fw-xt'), xts, h, w);
    const ab = schedule.alphasCumprod[t];
    $('fw-xt-cap').textContent = `xₜ at t = ${t}: ᾱ = ${ab.toFixed(4)}, SNR = ${schedule.snr[t].toPrecision(3)}`;
    drawPlot($<HTMLCanvasElement>('fw-plot'), [
      { label: 'ᾱ', color: '#2a6fdb', values: schedule.alphasCumprod, min: 0, max: 1 },
      { label: 'log SNR', color: '#e07b00', values: schedule.logSnr, min: -12, max: 10, format: (v) => v.toFixed(0) },
    ], t);
    // The strip: the same ε at every t, so only the level changes.
    const strip = $<HTMLCanvasElement>('fw-strip'), ctx = strip.getContext('2d')!;
    const cell = document.createElement('canvas');
    cell.width = cell.height = 72;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, strip.width, strip.height);
    ctx.font = '11px sans-serif';
    ctx.fillStyle = '#333';
    ctx.textAlign = 'center';
    STRIP_T.forEach((st, j) => {
      drawGray(cell, xts, h, w, (j + 1) * h * w);
      ctx.drawImage(cell, j * 72, 0);
      ctx.fillText(`t=${st}`, j * 72 + 36, 88);
    });
    document.getElementById('forward')!.dataset.t = String(t);
  };
  const redraw = () => void draw().catch((e: unknown) => { $('fw-xt-cap').textContent = `error: ${(e as Error).message}`; });
  for (const el of [sel, slider, index, $('fw-seed')]) el.addEventListener('input', redraw);
  $('fw-prev').addEventListener('click', () => { index.value = String(Math.max(0, app.digitIndex - 1)); redraw(); });
  $('fw-next').addEventListener('click', () => { index.value = String(Math.min(n - 1, app.digitIndex + 1)); redraw(); });
  redraw();
}
