/**
 * The reverse process: sampling an MNIST model (the full UNet with a chosen sampler, or a distilled student in
 * its few DDIM steps), watching x_t and x̂_0 at each step; and inpainting a painted region of a test digit with
 * the full UNet. The sampler is a generator; the loop yields to the browser after
 * each step so that the frame is drawn. Stop takes effect at once: the loop races each step's results against
 * it (a step already on the GPU finishes there, unseen, before its buffers are released).
 */
import {
  RollingScope, SAMPLER_KINDS, SAMPLERS, noGrad, tensor,
  type InpaintOptions, type SamplerKind, type UNet,
} from '../../src/index.js';
import { MNIST_MODELS, mnistModelLabel, type LoadedModel, type MnistModelEntry } from './assets.js';
import type { App, RunRecord } from './common.js';
import { $, RunControl, STOPPED, fillSelect, mean, readField, record, showFieldError, sliderValue } from './common.js';
import { drawGray, drawGrid, drawPlaceholder, nextFrame } from './draw.js';
import { digitTensor } from './forward.js';
import { samplingPlan, startSampling } from './sampling.js';
import { GUIDANCE, SEED, distilledHint, guidanceHint, parseField, samplerHint, stepsRule } from './validate.js';

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

/** The MNIST model chosen in the panel, and the descriptions of the students loaded so far (for the hint). */
let chosen: MnistModelEntry = MNIST_MODELS[0];
const studentGuidance = new Map<string, number>();
/** The full UNet's sampler, steps and guidance as typed, kept while a student shows its fixed ones. */
let fullFields: { sampler: string; steps: string; guidance: string } | null = null;
const FIXED_FIELDS = ['rv-sampler', 'rv-steps', 'rv-guidance'];

/** Shows a student's fixed sampler, steps and guidance in the (disabled) fields, keeping the full UNet's. */
function showStudentFields(entry: MnistModelEntry): void {
  const sampler = $<HTMLSelectElement>('rv-sampler'), steps = $<HTMLInputElement>('rv-steps'), guidance = $<HTMLInputElement>('rv-guidance');
  fullFields ??= { sampler: sampler.value, steps: steps.value, guidance: guidance.value };
  sampler.value = 'ddim';
  steps.value = String(entry.steps);
  const g = studentGuidance.get(entry.name);
  guidance.value = g === undefined ? '' : String(g);
  for (const id of FIXED_FIELDS) {
    const el = $<HTMLInputElement>(id);
    el.disabled = true;
    showFieldError(el, '');
  }
}

/** The full UNet's fields back, as they were typed. */
function showFullFields(): void {
  if (fullFields) {
    $<HTMLSelectElement>('rv-sampler').value = fullFields.sampler;
    $<HTMLInputElement>('rv-steps').value = fullFields.steps;
    $<HTMLInputElement>('rv-guidance').value = fullFields.guidance;
    fullFields = null;
  }
  for (const id of FIXED_FIELDS) $<HTMLInputElement>(id).disabled = false;
}

/**
 * The settings of the model chosen: for a student its fixed DDIM steps and folded guidance (only seed and class
 * are read); for the full UNet every field, each invalid one showing why.
 */
export function readSamplingSettings(): SamplingSettings | null {
  if (chosen.steps !== undefined) {
    const seed = readField('rv-seed', SEED);
    const classValue = $<HTMLSelectElement>('rv-class').value;
    const g = studentGuidance.get(chosen.name);
    $('rv-hint').textContent = distilledHint(chosen.steps, g, classValue !== 'none');
    $('rv-hint').classList.remove('warn'); // an explanation, not a warning
    if (seed === null) return null;
    return { kind: 'ddim', steps: chosen.steps, seed, classValue, guidance: g ?? 1 };
  }
  $('rv-hint').classList.add('warn');
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

/**
 * The full UNet's settings, for inpainting: the fields, or while a student is chosen the values typed for the
 * full UNet before (null with the reason when one of them is invalid).
 */
function readFullSettings(): { settings: SamplingSettings } | { error: string } {
  if (!fullFields) {
    const settings = readSamplingSettings();
    return settings ? { settings } : { error: 'not run: fix the fields marked in red in the panel above' };
  }
  const kind = fullFields.sampler as SamplerKind;
  const steps = parseField(fullFields.steps, stepsRule(kind)), guidance = parseField(fullFields.guidance, GUIDANCE);
  const seed = readField('rv-seed', SEED);
  if (!steps.ok || !guidance.ok) return { error: 'not run: the full UNet\'s steps or guidance are invalid (choose it above to fix them)' };
  if (seed === null) return { error: 'not run: fix the seed above' };
  return { settings: { kind, steps: steps.value, seed, classValue: $<HTMLSelectElement>('rv-class').value, guidance: guidance.value } };
}

interface RunOptions {
  what: 'sample' | 'inpaint';
  /** The MNIST model and its name (MNIST_MODELS). */
  model: LoadedModel<UNet>;
  modelName: string;
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
  const loaded = o.model, c = loaded.model.config;
  const { seed, classValue } = o.settings;
  const plan = samplingPlan(loaded.json, o.settings);
  const { kind, steps, guidance, folded } = plan;
  const cls = o.cls ?? (classValue === 'none' ? c.numClasses : Number(classValue));
  const n = o.count;
  const guided = cls !== c.numClasses && guidance !== 1;
  const names = loaded.json.classNames ?? [];
  const described = `${folded !== undefined ? `distilled student, ` : ''}${SAMPLER_LABELS[kind]}, ${steps} steps, seed ${seed}, ` +
    `class ${cls === c.numClasses ? 'none' : (names[cls] ?? cls)}` +
    `${folded !== undefined ? `, guidance ${folded} folded in` : guided ? `, guidance ${guidance}` : cls === c.numClasses ? '' : ', no guidance'}`;
  const rec = record({ what: o.what, model: o.modelName, sampler: kind, steps, nfe: 0, msPerStep: [], stepEndedAt: [], backend: app.backend, state: 'running' });
  const outcome = (state: 'done' | 'stopped', final: ArrayLike<number> | null): RunOutcome => {
    rec.state = state;
    if (state === 'stopped') { rec.stopPressedAt = ctl.pressedAt; rec.stoppedAt = performance.now(); }
    return { state, stepsShown: rec.msPerStep.length, totalSteps: steps, final, rec, described };
  };
  const compiling = firstStepNote(app, o.modelName);
  o.say(compiling || `starting: ${described}`);
  await nextFrame();
  try {
    const { noise, run } = startSampling(loaded, plan, { seed, cls, count: n, inpaint: o.inpaint });
    const noiseValues = await Promise.race([noise.read(), ctl.stopped]);
    if (noiseValues === STOPPED) { run.return(noise); return outcome('stopped', null); }
    o.onStart?.(noiseValues);
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
      markWarm(o.modelName);
      const ms = performance.now() - t0;
      rec.msPerStep.push(ms);
      rec.stepEndedAt.push(performance.now());
      rec.nfe = e.nfe;
      last = x0;
      const info = `step ${e.step}/${e.totalSteps}  t = ${e.t.toFixed(1)}  σ = ${e.sigma.toPrecision(3)}  NFE ${e.nfe}  ` +
        `${ms.toFixed(0)} ms this step, ${mean(rec.msPerStep).toFixed(0)} ms/step on average  ` +
        `[${app.backend}${guided ? ', guided: 2 evaluations per step' : folded !== undefined ? ', guidance folded in: 1 evaluation per step' : ''}]`;
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
  fillSelect($<HTMLSelectElement>('rv-model'), MNIST_MODELS.map((e) => [e.name, mnistModelLabel(e)]), MNIST_MODELS[0].name);
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

  // The model: a student is fetched when first chosen (page load does not), and fixes sampler, steps, guidance.
  const say = (line: string) => { $('rv-info').textContent = line; };
  $('rv-model').addEventListener('change', async () => {
    const entry = MNIST_MODELS.find((e) => e.name === $<HTMLSelectElement>('rv-model').value) ?? MNIST_MODELS[0];
    chosen = entry;
    if (entry.steps === undefined) {
      showFullFields();
      readSamplingSettings();
      return;
    }
    showStudentFields(entry);
    readSamplingSettings();
    if (studentGuidance.has(entry.name)) return;
    if (!busy) say(`loading the distilled ${entry.steps}-step student…`);
    try {
      const m = await app.mnist(entry.name);
      studentGuidance.set(entry.name, m.json.distilled!.guidance);
      if (chosen !== entry) return;
      showStudentFields(entry);
      readSamplingSettings();
      if (!busy) say(`distilled ${entry.steps}-step student loaded (step ${m.json.source.step ?? '?'} of ${m.json.source.from}): press Sample`);
    } catch (err) {
      if (chosen !== entry) return;
      section.dataset.state = 'error';
      say(`error: ${(err as Error).message}`);
    }
  });

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
    const entry = chosen;
    let loaded: LoadedModel<UNet>;
    try {
      if (entry.steps !== undefined && !studentGuidance.has(entry.name)) say(`loading the distilled ${entry.steps}-step student…`);
      loaded = await app.mnist(entry.name);
    } catch (err) {
      section.dataset.state = 'error';
      say(`error: ${(err as Error).message}`);
      active = null;
      setBusy(false);
      return;
    }
    const n = Number($<HTMLSelectElement>('rv-count').value) || 1;
    const sctx = strip.getContext('2d')!;
    sctx.fillStyle = '#fff';
    sctx.fillRect(0, 0, strip.width, strip.height);
    const cell = document.createElement('canvas');
    cell.width = cell.height = 72;
    let k = 0;
    $('rv-xt-cap').textContent = 'xₜ: the image being denoised';
    $('rv-x0-cap').textContent = 'x̂₀: the network\'s guess of the end result';
    try {
      const out = await runSampling(app, {
        what: 'sample', model: loaded, modelName: entry.name, settings, count: n, say,
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
    const full = readFullSettings();
    if ('error' in full) {
      ipSection.dataset.state = 'invalid';
      $('ip-cap').textContent = full.error;
      return;
    }
    const { settings } = full;
    setBusy('sample');
    const ctl = startControl();
    ipSection.dataset.state = 'running';
    const known = digitTensor(app);
    const keep = tensor(mask.map((v) => 1 - v), [1, 1, H, W]);
    const say = (line: string) => { $('ip-cap').textContent = line; };
    try {
      const out = await runSampling(app, {
        what: 'inpaint', model: app.unet, modelName: MNIST_MODELS[0].name, settings, count: 1, inpaint: { known, mask: keep }, cls: app.digits.labels[app.digitIndex], say,
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
