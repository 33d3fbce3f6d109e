/**
 * The reverse process: sampling the MNIST UNet with a chosen sampler, watching x_t and x̂_0 at each step; and
 * inpainting a painted region of a test digit. The sampler is a generator; the loop yields to the browser after
 * each step so that the frame is drawn, and the Stop button ends the generator.
 */
import {
  Generator, RollingScope, SAMPLER_KINDS, classifierFreeGuidance, noGrad, randn, runSampler, tensor,
  type InpaintOptions, type Model, type SamplerKind,
} from '../../src/index.js';
import type { App, RunRecord } from './common.js';
import { $, fillSelect, mean, num, record } from './common.js';
import { drawGray, drawGrid, nextFrame } from './draw.js';
import { digitTensor } from './forward.js';

const SAMPLER_LABELS: Record<SamplerKind, string> = {
  ddpm: 'DDPM (ancestral)', ddim: 'DDIM (η = 0)', dpmSolverPlusPlus: 'DPM-Solver++ (2M)', euler: 'Euler (Karras σ)',
  heun: 'Heun (Karras σ)', predictorCorrector: 'predictor–corrector',
};

let stopRequested = false;
let busy = false;

interface RunOptions {
  what: 'sample' | 'inpaint';
  count: number;
  /** The class to condition on (default: the panel's choice). */
  cls?: number;
  inpaint?: InpaintOptions;
  /** Where x_t and x̂_0 go at each step (their values, read back from the backend). */
  onStep: (xt: ArrayLike<number>, x0: ArrayLike<number>, info: string, step: number, total: number) => void;
  onStart?: (noise: ArrayLike<number>) => void;
}

/**
 * Runs one sampling with the panel's settings; resolves with the final sample's values. The time of a step is
 * the sampler's step (model evaluations and update) plus reading x_t and x̂_0 back, which on WebGPU waits
 * for the GPU to finish the step.
 */
async function runSampling(app: App, o: RunOptions): Promise<ArrayLike<number> | null> {
  const { model, schedule, json } = app.unet;
  const c = model.config;
  const kind = $<HTMLSelectElement>('rv-sampler').value as SamplerKind;
  const steps = Math.max(1, Math.min(schedule.T, Math.round(num('rv-steps', 20))));
  const seed = Math.round(num('rv-seed', 0));
  const classValue = $<HTMLSelectElement>('rv-class').value;
  const cls = o.cls ?? (classValue === 'none' ? c.numClasses : Number(classValue));
  const guidance = num('rv-guidance', 1);
  const n = o.count;
  const gen = new Generator(seed);
  const noise = randn([n, c.inChannels, c.imageSize, c.imageSize], gen);
  o.onStart?.(await noise.read());
  let fn: Model = (x, t, cond) => model.forward(x, t, cond);
  const cond = tensor(new Int32Array(n).fill(cls), [n], { dtype: 'int32' });
  const guided = cls !== c.numClasses && guidance !== 1;
  if (guided) fn = classifierFreeGuidance(fn, { scale: guidance, nullCond: tensor(new Int32Array([c.numClasses]), [1], { dtype: 'int32' }) });
  const rec = record({ what: o.what, sampler: kind, steps, nfe: 0, msPerStep: [], backend: app.backend, state: 'running' });
  const run = runSampler({ kind, steps }, fn, schedule, noise, {
    prediction: json.prediction, cond, gen, clip: { kind: 'clip', min: -1, max: 1 }, inpaint: o.inpaint,
  });
  stopRequested = false;
  // Tensors made by a step are freed two steps later (device memory does not wait for the garbage collector).
  const rolling = new RollingScope(2);
  try {
    for (;;) {
      const t0 = performance.now();
      const r = rolling.step(() => noGrad(() => run.next()));
      if (r.done) {
        rec.state = 'done';
        return await rolling.finish(r.value).read();
      }
      const e = r.value;
      const [xt, x0] = await Promise.all([e.xt.read(), e.x0Pred.read()]);
      const ms = performance.now() - t0;
      rec.msPerStep.push(ms);
      rec.nfe = e.nfe;
      const info = `step ${e.step}/${e.totalSteps}  t = ${e.t.toFixed(1)}  σ = ${e.sigma.toPrecision(3)}  NFE ${e.nfe}  ` +
        `${ms.toFixed(0)} ms this step, ${mean(rec.msPerStep).toFixed(0)} ms/step on average  [${app.backend}${guided ? ', guided: 2 evaluations per step' : ''}]`;
      o.onStep(xt, x0, info, e.step, e.totalSteps);
      await nextFrame();
      if (stopRequested) {
        run.return(e.x0Pred);
        rolling.finish(null);
        rec.state = 'stopped';
        return x0;
      }
    }
  } catch (err) {
    rec.state = 'error';
    rec.error = (err as Error).message;
    throw err;
  }
}

export function setBusy(v: boolean): void {
  busy = v;
  for (const id of ['rv-run', 'ip-run', 'sc-run']) $<HTMLButtonElement>(id).disabled = v;
  $<HTMLButtonElement>('rv-stop').disabled = !v;
}

export function isBusy(): boolean {
  return busy;
}

/** True once after the Stop button was pressed (the score view's loop polls it). */
export function takeStop(): boolean {
  const s = stopRequested;
  stopRequested = false;
  return s;
}

export function setupReverse(app: App): void {
  const { model } = app.unet;
  const c = model.config, names = app.unet.json.classNames ?? [];
  fillSelect($<HTMLSelectElement>('rv-sampler'), SAMPLER_KINDS.map((k) => [k, SAMPLER_LABELS[k]]), 'dpmSolverPlusPlus');
  fillSelect($<HTMLSelectElement>('rv-class'), [
    ['none', 'none (unconditional)'],
    ...Array.from({ length: c.numClasses }, (_, i): [string, string] => [String(i), names[i] ?? String(i)]),
  ], '3');
  const H = c.imageSize, W = c.imageSize;
  const section = $('reverse'), strip = $<HTMLCanvasElement>('rv-strip');

  $('rv-stop').addEventListener('click', () => { stopRequested = true; });
  $('rv-run').addEventListener('click', async () => {
    if (busy) return;
    setBusy(true);
    section.dataset.state = 'running';
    const n = Number($<HTMLSelectElement>('rv-count').value) || 1;
    const sctx = strip.getContext('2d')!;
    sctx.fillStyle = '#fff';
    sctx.fillRect(0, 0, strip.width, strip.height);
    const cell = document.createElement('canvas');
    cell.width = cell.height = 72;
    let k = 0;
    try {
      await runSampling(app, {
        what: 'sample', count: n,
        onStart: (noise) => {
          drawGrid($<HTMLCanvasElement>('rv-xT'), noise, n, H, W);
          drawGrid($<HTMLCanvasElement>('rv-xt'), noise, n, H, W);
          drawGrid($<HTMLCanvasElement>('rv-x0'), new Float32Array(n * H * W).fill(-1), n, H, W);
        },
        onStep: (xt, x0, info, step, total) => {
          drawGrid($<HTMLCanvasElement>('rv-xt'), xt, n, H, W);
          drawGrid($<HTMLCanvasElement>('rv-x0'), x0, n, H, W);
          $('rv-info').textContent = info;
          // Up to 10 evenly spaced x̂_0 (first image) along the run.
          const slots = Math.min(10, total);
          if (Math.round((step * slots) / total) > k) {
            drawGray(cell, x0, H, W);
            sctx.drawImage(cell, k * 72, 0);
            k++;
          }
        },
      });
      section.dataset.state = 'done';
    } catch (err) {
      section.dataset.state = 'error';
      $('rv-info').textContent = `error: ${(err as Error).message}`;
    } finally {
      setBusy(false);
    }
  });

  // ---- inpainting
  const paint = $<HTMLCanvasElement>('ip-canvas'), ipSection = $('inpaint');
  const mask = new Float32Array(H * W); // 1: regenerate
  const drawPaint = () => {
    const x0 = digitTensor(app).data;
    drawGray(paint, x0, H, W);
    const ctx = paint.getContext('2d')!, s = paint.width / W;
    ctx.fillStyle = 'rgba(230, 40, 40, 0.55)';
    for (let i = 0; i < H * W; i++) if (mask[i] > 0) ctx.fillRect((i % W) * s, Math.floor(i / W) * s, s, s);
  };
  const brushAt = (ev: PointerEvent) => {
    const r = paint.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W, py = ((ev.clientY - r.top) / r.height) * H;
    const rad = num('ip-brush', 3) / 2 + 0.25;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      if ((x + 0.5 - px) ** 2 + (y + 0.5 - py) ** 2 <= rad * rad) mask[y * W + x] = 1;
    }
    drawPaint();
  };
  let down = false;
  paint.addEventListener('pointerdown', (ev) => { down = true; paint.setPointerCapture(ev.pointerId); brushAt(ev); });
  paint.addEventListener('pointermove', (ev) => { if (down) brushAt(ev); });
  paint.addEventListener('pointerup', () => { down = false; });
  $('ip-clear').addEventListener('click', () => { mask.fill(0); drawPaint(); });
  $('ip-half').addEventListener('click', () => { mask.fill(0); mask.fill(1, (H * W) / 2); drawPaint(); });
  app.onDigitChange.push(drawPaint);
  drawPaint();

  $('ip-run').addEventListener('click', async () => {
    if (busy) return;
    if (!mask.some((v) => v > 0)) {
      $('ip-cap').textContent = 'paint a region first';
      return;
    }
    setBusy(true);
    ipSection.dataset.state = 'running';
    const known = digitTensor(app);
    const keep = tensor(mask.map((v) => 1 - v), [1, 1, H, W]);
    try {
      const out = await runSampling(app, {
        what: 'inpaint', count: 1, inpaint: { known, mask: keep }, cls: app.digits.labels[app.digitIndex],
        onStep: (xt, x0, info) => {
          drawGray($<HTMLCanvasElement>('ip-xt'), xt, H, W);
          drawGray($<HTMLCanvasElement>('ip-out'), x0, H, W);
          $('ip-cap').textContent = info.split('  ').slice(0, 2).join('  ');
        },
      });
      if (out) drawGray($<HTMLCanvasElement>('ip-out'), out, H, W);
      $('ip-cap').textContent = 'result: the unpainted pixels are the digit\'s own';
      ipSection.dataset.state = 'done';
    } catch (err) {
      ipSection.dataset.state = 'error';
      $('ip-cap').textContent = `error: ${(err as Error).message}`;
    } finally {
      setBusy(false);
    }
  });
}
