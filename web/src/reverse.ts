/**
 * The reverse process: sampling the MNIST UNet with a chosen sampler, watching x_t and x̂_0 at each step; and
 * inpainting a painted region of a test digit. The sampler is a generator; the loop yields to the browser after
 * each step so that the frame is drawn. Stop takes effect at once: the loop races each step's results against
 * it (a step already on the GPU finishes there, unseen, before its buffers are released).
 */
import {
  Generator, RollingScope, SAMPLER_KINDS, SAMPLERS, classifierFreeGuidance, noGrad, randn, runSampler, tensor,
  type InpaintOptions, type Model, type SamplerKind,
} from '../../src/index.js';
import type { App, RunRecord } from './common.js';
import { $, RunControl, STOPPED, fillSelect, mean, readField, record, sliderValue } from './common.js';
import { drawGray, drawGrid, drawPlaceholder, nextFrame } from './draw.js';
import { digitTensor } from './forward.js';
import { GUIDANCE, SEED, guidanceHint, samplerHint, stepsRule } from './validate.js';

/** Menu labels, from the sampler registry. */
export const SAMPLER_LABELS = Object.fromEntries(SAMPLER_KINDS.map((k) => [k, SAMPLERS[k].label])) as Record<SamplerKind, string>;

let busy: false | 'sample' | 'train' = false;
/** The Stop of the sampling in progress (null when none runs). */
let active: RunControl | null = null;
/** Models whose GPU kernels have run once (the first WebGPU use compiles them). */
const warm = new Set<string>();

const RUN_BUTTONS = ['rv-run', 'ip-run', 'sc-run', 'tr-run'];
const STOP_BUTTONS = ['rv-stop', 'ip-stop', 'sc-stop'];

/** Marks the page busy with a sampling or a training (they share the engine), or idle. */
export function setBusy(v: false | 'sample' | 'train'): void {
  busy = v;
  for (const id of RUN_BUTTONS) {
    const b = document.getElementById(id) as HTMLButtonElement | null;
    if (b && !(id === 'tr-run' && v === 'train')) b.disabled = v !== false || b.dataset.blocked === '1';
  }
  for (const id of STOP_BUTTONS) $<HTMLButtonElement>(id).disabled = v !== 'sample';
}

export function isBusy(): boolean {
  return busy !== false;
}

/** A fresh Stop for a new sampling (Stop buttons press the active one). */
export function startControl(): RunControl {
  active = new RunControl();
  return active;
}

/** The message to show before a model's first step: on WebGPU its kernels compile first. */
export function firstStepNote(app: App, model: string): string {
  return app.backend === 'webgpu' && !warm.has(model)
    ? 'compiling GPU kernels… (the first WebGPU run of this model builds its shaders: up to half a minute on a slow GPU; Stop works now)'
    : '';
}

export function markWarm(model: string): void {
  warm.add(model);
}

/** The panel's validated settings, or null (each invalid field then shows why). */
export interface SamplingSettings {
  kind: SamplerKind;
  steps: number;
  seed: number;
  /** 'none' or a class index. */
  classValue: string;
  guidance: number;
}

export function readSamplingSettings(): SamplingSettings | null {
  const kind = $<HTMLSelectElement>('rv-sampler').value as SamplerKind;
  const steps = readField('rv-steps', stepsRule(kind));
  const seed = readField('rv-seed', SEED);
  const guidance = readField('rv-guidance', GUIDANCE);
  const classValue = $<HTMLSelectElement>('rv-class').value;
  const hints = [
    steps !== null ? samplerHint(kind, steps) : '',
    guidance !== null ? guidanceHint(guidance, true) : '',
    classValue === 'none' && guidance !== null && guidance !== 1
      ? 'class “none”: Sample asks for no class, so guidance is not used there (inpainting uses the digit\'s class and the guidance).' : '',
  ].filter(Boolean);
  $('rv-hint').textContent = hints.join(' ');
  if (steps === null || seed === null || guidance === null) return null;
  return { kind, steps, seed, classValue, guidance };
}

interface RunOptions {
  what: 'sample' | 'inpaint';
  settings: SamplingSettings;
  count: number;
  /** The class to condition on (default: the panel's choice). */
  cls?: number;
  inpaint?: InpaintOptions;
  /** Where progress lines go. */
  say: (line: string) => void;
  /** Where x_t and x̂_0 go at each step (their values, read back from the backend). */
  onStep: (xt: ArrayLike<number>, x0: ArrayLike<number>, info: string, step: number, total: number) => void;
  onStart?: (noise: ArrayLike<number>) => void;
}

export interface RunOutcome {
  state: 'done' | 'stopped';
  /** Steps whose results were shown. */
  stepsShown: number;
  totalSteps: number;
  final: ArrayLike<number> | null;
  rec: RunRecord;
  /** What was run, in words (for the lines that report it). */
  described: string;
}

/**
 * Runs one sampling with the given settings. The time of a step is the sampler's step (model evaluations and
 * update) plus reading x_t and x̂_0 back, which on WebGPU waits for the GPU to finish the step.
 */
async function runSampling(app: App, o: RunOptions, ctl: RunControl): Promise<RunOutcome> {
  const { model, schedule, json } = app.unet;
  const c = model.config;
  const { kind, steps, seed, guidance, classValue } = o.settings;
  const cls = o.cls ?? (classValue === 'none' ? c.numClasses : Number(classValue));
  const n = o.count;
  const guided = cls !== c.numClasses && guidance !== 1;
  const names = app.unet.json.classNames ?? [];
  const described = `${SAMPLER_LABELS[kind]}, ${steps} steps, seed ${seed}, class ${cls === c.numClasses ? 'none' : (names[cls] ?? cls)}` +
    `${guided ? `, guidance ${guidance}` : cls === c.numClasses ? '' : ', no guidance'}`;
  const rec = record({ what: o.what, sampler: kind, steps, nfe: 0, msPerStep: [], stepEndedAt: [], backend: app.backend, state: 'running' });
  const outcome = (state: 'done' | 'stopped', final: ArrayLike<number> | null): RunOutcome => {
    rec.state = state;
    if (state === 'stopped') { rec.stopPressedAt = ctl.pressedAt; rec.stoppedAt = performance.now(); }
    return { state, stepsShown: rec.msPerStep.length, totalSteps: steps, final, rec, described };
  };
  const compiling = firstStepNote(app, 'unet');
  o.say(compiling || `starting: ${described}`);
  await nextFrame();
  try {
    const gen = new Generator(seed);
    const noise = randn([n, c.inChannels, c.imageSize, c.imageSize], gen);
    const noiseValues = await Promise.race([noise.read(), ctl.stopped]);
    if (noiseValues === STOPPED) return outcome('stopped', null);
    o.onStart?.(noiseValues);
    let fn: Model = (x, t, cond) => model.forward(x, t, cond);
    const cond = tensor(new Int32Array(n).fill(cls), [n], { dtype: 'int32' });
    if (guided) fn = classifierFreeGuidance(fn, { scale: guidance, nullCond: tensor(new Int32Array([c.numClasses]), [1], { dtype: 'int32' }) });
    const run = runSampler({ kind, steps }, fn, schedule, noise, {
      prediction: json.prediction, cond, gen, clip: { kind: 'clip', min: -1, max: 1 }, inpaint: o.inpaint,
    });
    // Tensors made by a step are freed two steps later (device memory does not wait for the garbage collector).
    const rolling = new RollingScope(2);
    let last: ArrayLike<number> | null = null;
    for (;;) {
      if (ctl.requested) {
        run.return(noise);
        rolling.finish(null);
        return outcome('stopped', last);
      }
      const t0 = performance.now();
      const r = rolling.step(() => noGrad(() => run.next()));
      if (r.done) {
        const finalT = r.value;
        const final = await Promise.race([finalT.read(), ctl.stopped]);
        if (final === STOPPED) { void finalT.read().finally(() => rolling.finish(null)).catch(() => {}); return outcome('stopped', last); }
        rolling.finish(null);
        return outcome('done', final);
      }
      const e = r.value;
      const reads = Promise.all([e.xt.read(), e.x0Pred.read()]);
      const got = await Promise.race([reads, ctl.stopped]);
      if (got === STOPPED) {
        // The step is still running on the device: release its buffers only once it is done.
        run.return(e.x0Pred);
        void reads.finally(() => rolling.finish(null)).catch(() => {});
        return outcome('stopped', last);
      }
      const [xt, x0] = got;
      markWarm('unet');
      const ms = performance.now() - t0;
      rec.msPerStep.push(ms);
      rec.stepEndedAt.push(performance.now());
      rec.nfe = e.nfe;
      last = x0;
      const info = `step ${e.step}/${e.totalSteps}  t = ${e.t.toFixed(1)}  σ = ${e.sigma.toPrecision(3)}  NFE ${e.nfe}  ` +
        `${ms.toFixed(0)} ms this step, ${mean(rec.msPerStep).toFixed(0)} ms/step on average  [${app.backend}${guided ? ', guided: 2 evaluations per step' : ''}]`;
      o.onStep(xt, x0, info, e.step, e.totalSteps);
      await nextFrame();
    }
  } catch (err) {
    rec.state = 'error';
    rec.error = (err as Error).message;
    throw err;
  }
}

/** The line a finished or stopped run leaves. */
export function endLine(out: RunOutcome, backend: string): string {
  const total = out.rec.msPerStep.reduce((s, v) => s + v, 0) / 1000;
  if (out.state === 'done') {
    return `done: ${out.described}; ${out.totalSteps} steps in ${total.toFixed(1)} s, ${mean(out.rec.msPerStep).toFixed(0)} ms/step, NFE ${out.rec.nfe} [${backend}]`;
  }
  return out.stepsShown === 0
    ? `stopped at step 0 of ${out.totalSteps}, before the first step finished (${out.described})`
    : `stopped at step ${out.stepsShown} of ${out.totalSteps}: the pictures are step ${out.stepsShown}'s (${out.described})`;
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
  for (const id of ['rv-xT', 'rv-xt', 'rv-x0']) drawPlaceholder($<HTMLCanvasElement>(id), 'press Sample');
  drawPlaceholder($<HTMLCanvasElement>('ip-xt'), 'press Regenerate');
  drawPlaceholder($<HTMLCanvasElement>('ip-out'), 'press Regenerate');
  for (const id of ['rv-sampler', 'rv-steps', 'rv-seed', 'rv-guidance', 'rv-class']) $(id).addEventListener('input', () => readSamplingSettings());
  readSamplingSettings();

  for (const id of STOP_BUTTONS) $(id).addEventListener('click', () => active?.request());
  $('rv-run').addEventListener('click', async () => {
    if (busy) return;
    const settings = readSamplingSettings();
    if (!settings) {
      section.dataset.state = 'invalid';
      $('rv-info').textContent = 'not run: fix the fields marked in red';
      return;
    }
    setBusy('sample');
    const ctl = startControl();
    section.dataset.state = 'running';
    const n = Number($<HTMLSelectElement>('rv-count').value) || 1;
    const sctx = strip.getContext('2d')!;
    sctx.fillStyle = '#fff';
    sctx.fillRect(0, 0, strip.width, strip.height);
    const cell = document.createElement('canvas');
    cell.width = cell.height = 72;
    let k = 0;
    const say = (line: string) => { $('rv-info').textContent = line; };
    $('rv-xt-cap').textContent = 'xₜ: the image being denoised';
    $('rv-x0-cap').textContent = 'x̂₀: the network\'s guess of the end result';
    try {
      const out = await runSampling(app, {
        what: 'sample', settings, count: n, say,
        onStart: (noise) => {
          drawGrid($<HTMLCanvasElement>('rv-xT'), noise, n, H, W);
          drawGrid($<HTMLCanvasElement>('rv-xt'), noise, n, H, W);
          drawPlaceholder($<HTMLCanvasElement>('rv-x0'), 'after step 1');
          $('rv-xt-cap').textContent = 'xₜ at step 0: the starting noise';
        },
        onStep: (xt, x0, info, step, total) => {
          drawGrid($<HTMLCanvasElement>('rv-xt'), xt, n, H, W);
          drawGrid($<HTMLCanvasElement>('rv-x0'), x0, n, H, W);
          say(info);
          $('rv-xt-cap').textContent = `xₜ after step ${step} of ${total}`;
          $('rv-x0-cap').textContent = `x̂₀: the network's guess at step ${step}`;
          // Up to 10 evenly spaced x̂_0 (first image) along the run.
          const slots = Math.min(10, total);
          if (Math.round((step * slots) / total) > k) {
            drawGray(cell, x0, H, W);
            sctx.drawImage(cell, k * 72, 0);
            k++;
          }
        },
      }, ctl);
      say(endLine(out, app.backend));
      if (out.state === 'done') $('rv-xt-cap').textContent = `x₀: the sample, after all ${out.totalSteps} steps`;
      section.dataset.state = out.state;
    } catch (err) {
      section.dataset.state = 'error';
      say(`error: ${(err as Error).message}`);
    } finally {
      active = null;
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
    const rad = sliderValue('ip-brush') / 2 + 0.25;
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
    const settings = readSamplingSettings();
    if (!settings) {
      ipSection.dataset.state = 'invalid';
      $('ip-cap').textContent = 'not run: fix the fields marked in red in the panel above';
      return;
    }
    setBusy('sample');
    const ctl = startControl();
    ipSection.dataset.state = 'running';
    const known = digitTensor(app);
    const keep = tensor(mask.map((v) => 1 - v), [1, 1, H, W]);
    const say = (line: string) => { $('ip-cap').textContent = line; };
    try {
      const out = await runSampling(app, {
        what: 'inpaint', settings, count: 1, inpaint: { known, mask: keep }, cls: app.digits.labels[app.digitIndex], say,
        onStep: (xt, x0, info) => {
          drawGray($<HTMLCanvasElement>('ip-xt'), xt, H, W);
          drawGray($<HTMLCanvasElement>('ip-out'), x0, H, W);
          say(info.split('  ').slice(0, 2).join('  '));
        },
      }, ctl);
      if (out.state === 'done') {
        if (out.final) drawGray($<HTMLCanvasElement>('ip-out'), out.final, H, W);
        say(`result (${out.described}): the unpainted pixels are the digit's own`);
      } else {
        say(endLine(out, app.backend));
      }
      ipSection.dataset.state = out.state;
    } catch (err) {
      ipSection.dataset.state = 'error';
      say(`error: ${(err as Error).message}`);
    } finally {
      active = null;
      setBusy(false);
    }
  });
}
