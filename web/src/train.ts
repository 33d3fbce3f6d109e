/**
 * The Train view: trains a small UNet in the tab with the library's own Trainer (the backend in use: WebGPU
 * where the browser gives an adapter, else the TypeScript backend), on the page's 500 digits or on images the
 * user drops in. A live loss curve, a sample grid every N steps (EMA weights), pause and resume, and the
 * checkpoint as a zip of exactly the files `diffuse train` writes (checkpoint.json + safetensors with PyTorch
 * names), which `diffuse sample --checkpoint <folder>` reads; a zip (or the files) uploaded here continues.
 */
import { unzipSync, zipSync, type Zippable } from 'fflate';
import {
  Trainer, checkpointJsonBytes, encodeCheckpointFiles, normalizeScheduleConfig, parseSafetensors, sampleImages,
  unetPreset, validateRunConfig, validateTrainerState, type ImageDataset, type RunConfig, type StepInfo, type TrainerState, type UNetConfig,
} from '../../src/index.js';
import type { App, TrainRecord } from './common.js';
import { $, fillSelect, readField, showFieldError } from './common.js';
import { drawImages, drawLossCurve, drawPlaceholder, nextFrame } from './draw.js';
import { isBusy, setBusy } from './reverse.js';
import { TRAIN_RULES } from './validate.js';

/**
 * Model sizes on offer: two small UNets without attention (fast on the CPU) and the CLI's tiny preset. The two small
 * ones keep the per-channel group counts they were sized with (normGroups an upper bound per norm).
 */
const MODELS: Record<string, { label: string; config: Partial<UNetConfig>; preset?: 'tiny'; sizes: number[] }> = {
  micro: {
    label: 'micro: 8 channels, 2 levels (~41 k parameters)', sizes: [14, 28],
    config: { modelChannels: 8, channelMult: [1, 2], numResBlocks: 1, attentionLevels: [], midAttention: false, normGroups: 4, normGroupRule: 'perChannel', numHeads: 1, dropout: 0 },
  },
  small: {
    label: 'small: 16 channels, 2 levels (~160 k parameters)', sizes: [14, 28],
    config: { modelChannels: 16, channelMult: [1, 2], numResBlocks: 1, attentionLevels: [], midAttention: false, normGroups: 8, normGroupRule: 'perChannel', numHeads: 1, dropout: 0 },
  },
  tiny: { label: 'the CLI\'s tiny preset: 32 channels, attention (1.1 M; slow without a GPU)', config: {}, preset: 'tiny', sizes: [28] },
};

const DIGITS = 'explorer-digits';
const IMAGES = 'explorer-images';
const GRID = 16;
const CHECKPOINT_ROLES = ['model', 'ema', 'optimizer'] as const;

type Groups = Record<(typeof CHECKPOINT_ROLES)[number], Map<string, { shape: number[]; data: Float32Array }>>;

/** The page's digits as a training set at `size` (28, or 14 by averaging 2×2 blocks). */
function digitsDataset(app: App, size: number): ImageDataset {
  const { n, height: H, width: W, pixels, labels } = app.digits;
  const f = H / size;
  const images = new Float32Array(n * size * size);
  for (let i = 0; i < n; i++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    let s = 0;
    for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += pixels[i * H * W + (y * f + dy) * W + x * f + dx];
    images[i * size * size + y * size + x] = s / (f * f) / 127.5 - 1;
  }
  return {
    name: DIGITS, images, labels: Int32Array.from(labels), n, channels: 1, height: size, width: size, numClasses: 10,
    classNames: Array.from({ length: 10 }, (_, i) => String(i)), flipSafe: false,
  };
}

/** Dropped images, centre-cropped to squares and scaled to `size`; grayscale when every image is. */
async function imagesDataset(files: File[], size: number): Promise<ImageDataset> {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const rgba: Uint8ClampedArray[] = [];
  for (const file of files) {
    let bmp: ImageBitmap;
    try {
      bmp = await createImageBitmap(file);
    } catch {
      throw new Error(`${file.name}: not an image this browser can decode`);
    }
    const s = Math.min(bmp.width, bmp.height);
    ctx.imageSmoothingQuality = 'high';
    ctx.clearRect(0, 0, size, size);
    ctx.drawImage(bmp, (bmp.width - s) / 2, (bmp.height - s) / 2, s, s, 0, 0, size, size);
    bmp.close();
    rgba.push(ctx.getImageData(0, 0, size, size).data);
  }
  const gray = rgba.every((d) => { for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false; return true; });
  const C = gray ? 1 : 3, P = size * size;
  const images = new Float32Array(files.length * C * P);
  rgba.forEach((d, i) => {
    for (let c = 0; c < C; c++) for (let p = 0; p < P; p++) images[(i * C + c) * P + p] = d[4 * p + c] / 127.5 - 1;
  });
  return { name: IMAGES, images, labels: new Int32Array(files.length), n: files.length, channels: C, height: size, width: size, numClasses: 0, classNames: [], flipSafe: false };
}

function runConfig(ds: ImageDataset, modelKey: string, t: { steps: number; batch: number; lr: number; every: number }): RunConfig {
  const m = MODELS[modelKey];
  const config = unetPreset('tiny', { ...m.config, imageSize: ds.height, inChannels: ds.channels, numClasses: ds.numClasses });
  return {
    dataset: ds.name,
    model: m.preset ? { kind: 'unet', preset: m.preset, config } : { kind: 'unet', config },
    schedule: normalizeScheduleConfig({ kind: 'linear', T: 1000 }),
    objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
    trainer: {
      steps: t.steps, batchSize: t.batch, accumulate: 1, lr: t.lr, minLr: t.lr / 20,
      warmupSteps: Math.max(1, Math.min(100, Math.round(t.steps / 20))), weightDecay: 0, gradClip: 1, emaDecay: 0.995,
      condDropout: ds.numClasses > 0 ? 0.1 : 0, seed: 0, sampleEvery: t.every, checkpointEvery: 0,
      previewSampler: { kind: 'ddim', steps: 20 }, previewCount: GRID,
    },
  };
}

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((v) => v.toString(16).padStart(2, '0')).join('');

async function sha256(bytes: Uint8Array): Promise<string> {
  if (!globalThis.crypto?.subtle) throw new Error('checksums need a secure context (https or localhost): this page has no crypto.subtle');
  return hex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

/** The files of an upload: a zip's entries (paths inside it) or the chosen files by name. */
async function uploadedFiles(list: File[]): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const f of list) {
    const bytes = new Uint8Array(await f.arrayBuffer());
    if (f.name.toLowerCase().endsWith('.zip')) {
      let entries: Record<string, Uint8Array>;
      try {
        entries = unzipSync(bytes);
      } catch (e) {
        throw new Error(`${f.name}: not a readable zip (${(e as Error).message})`);
      }
      for (const [path, b] of Object.entries(entries)) if (!path.endsWith('/')) out.set(path, b);
    } else {
      out.set(f.name, bytes);
    }
  }
  return out;
}

/**
 * Reads and checks a checkpoint from uploaded files, as the CLI's loader does: format and version 1, plain file
 * names next to checkpoint.json, sizes and SHA-256 as recorded, F32 weights, all finite, a valid UNet config.
 */
async function readUploadedCheckpoint(files: Map<string, Uint8Array>): Promise<{ config: RunConfig; state: TrainerState; groups: Groups; metrics: number[] }> {
  const jsonPaths = [...files.keys()].filter((p) => p === 'checkpoint.json' || p.endsWith('/checkpoint.json'));
  if (jsonPaths.length !== 1) throw new Error(jsonPaths.length ? 'the upload holds several checkpoint.json files: upload one checkpoint' : 'no checkpoint.json in the upload');
  const dir = jsonPaths[0].slice(0, -'checkpoint.json'.length);
  let json: { format?: unknown; version?: unknown; config?: unknown; state?: unknown; files?: Record<string, { file: string; bytes: number; sha256: string }> };
  try {
    json = JSON.parse(new TextDecoder().decode(files.get(jsonPaths[0]))) as typeof json;
  } catch (e) {
    throw new Error(`checkpoint.json: not valid JSON (${(e as Error).message})`);
  }
  if (json.format !== 'diffuse-checkpoint') throw new Error('checkpoint.json: not a diffuse checkpoint');
  if (json.version !== 1) throw new Error(`checkpoint.json: version ${String(json.version)} is not supported (expected 1)`);
  if (!json.files || typeof json.files !== 'object') throw new Error('checkpoint.json: no weight files listed');
  // The library's own checks, field by field, before anything is built from the JSON.
  const config = validateRunConfig(json.config);
  const state = validateTrainerState(json.state, config);
  const groups = {} as Groups;
  for (const role of CHECKPOINT_ROLES) {
    const rec = json.files[role];
    if (!rec) throw new Error(`checkpoint.json: no '${role}' weights listed`);
    if (typeof rec.file !== 'string' || !/^[\w.-]+$/.test(rec.file) || rec.file.startsWith('.')) throw new Error(`checkpoint.json: '${String(rec.file)}' is not a plain file name`);
    const bytes = files.get(dir + rec.file);
    if (!bytes) throw new Error(`${rec.file}: missing from the upload (listed in checkpoint.json)`);
    if (bytes.length !== rec.bytes) throw new Error(`${rec.file}: ${bytes.length} bytes, checkpoint.json says ${rec.bytes}`);
    if ((await sha256(bytes)) !== rec.sha256) throw new Error(`${rec.file}: checksum does not match checkpoint.json (the file was modified)`);
    const m = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of parseSafetensors(bytes, { name: rec.file }).tensors) {
      if (!(t.data instanceof Float32Array)) throw new Error(`${rec.file}: tensor ${name} is ${t.dtype}, expected floating point`);
      if (!t.data.every(Number.isFinite)) throw new Error(`${rec.file}: tensor ${name} holds non-finite values`);
      m.set(name, { shape: t.shape, data: t.data });
    }
    groups[role] = m;
  }
  const metricsBytes = files.get(`${dir}metrics.jsonl`);
  const metrics = metricsBytes
    ? new TextDecoder().decode(metricsBytes).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as StepInfo).loss).filter((v) => typeof v === 'number')
    : [];
  return { config, state, groups, metrics };
}

export function setupTrain(app: App): void {
  const section = $('train');
  const rec: TrainRecord = { state: 'idle', step: 0, totalSteps: 0, losses: [], grids: [] };
  window.explorer!.train = rec;
  fillSelect($<HTMLSelectElement>('tr-model'), Object.entries(MODELS).map(([k, m]) => [k, m.label]), 'micro');
  const info = (line: string) => { $('tr-info').textContent = line; };
  const settingIds = ['tr-data', 'tr-files', 'tr-size', 'tr-model', 'tr-batch', 'tr-lr'];
  let droppedFiles: File[] = [];
  let images: ImageDataset | null = null;
  let trainer: Trainer | null = null;
  let dataset: ImageDataset | null = null;
  let pauseRequested = false;
  /** Training seconds before this page's session (from an uploaded checkpoint) and in it. */
  let elapsedBefore = 0, elapsedHere = 0;
  let metrics: string[] = [];
  /** Steps and checkpoint reads take turns (a download never sees a half-done step). */
  let lock: Promise<unknown> = Promise.resolve();
  const withLock = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = lock.then(fn, fn);
    lock = next.catch(() => {});
    return next;
  };

  const setState = (s: TrainRecord['state']) => {
    rec.state = s;
    section.dataset.state = s;
    $<HTMLButtonElement>('tr-run').textContent = s === 'paused' ? 'Resume' : 'Train';
    $<HTMLButtonElement>('tr-pause').disabled = s !== 'running';
    $<HTMLButtonElement>('tr-run').disabled = s === 'running' || isBusy();
    $<HTMLButtonElement>('tr-reset').disabled = !trainer || s === 'running';
    $<HTMLButtonElement>('tr-download').disabled = !trainer || trainer.step === 0;
    // Data and model are fixed once a run exists (Start over frees them); steps and the grid period are not.
    for (const id of settingIds) ($<HTMLInputElement>(id)).disabled = !!trainer;
  };

  const readSettings = () => {
    const batch = readField('tr-batch', TRAIN_RULES.batch), steps = readField('tr-steps', TRAIN_RULES.steps);
    const lr = readField('tr-lr', TRAIN_RULES.lr), every = readField('tr-every', TRAIN_RULES.every);
    const size = Number($<HTMLSelectElement>('tr-size').value), modelKey = $<HTMLSelectElement>('tr-model').value;
    const useImages = $<HTMLSelectElement>('tr-data').value === 'images';
    let ok = batch !== null && steps !== null && lr !== null && every !== null;
    const sizeError = MODELS[modelKey].sizes.includes(size) ? '' : `${MODELS[modelKey].label.split(':')[0]} needs ${MODELS[modelKey].sizes.join(' or ')} × ${MODELS[modelKey].sizes.join(' or ')} images`;
    showFieldError($('tr-size'), trainer ? '' : sizeError);
    if (sizeError && !trainer) ok = false;
    const dataError = useImages && droppedFiles.length === 0 ? 'drop or choose some images first' : '';
    showFieldError($('tr-files'), trainer ? '' : dataError);
    if (dataError && !trainer) ok = false;
    const n = trainer ? dataset!.n : useImages ? droppedFiles.length : app.digits.n;
    if (batch !== null && batch > n) { showFieldError($('tr-batch'), `at most ${n}: the number of training images`); ok = false; }
    if (steps !== null && trainer && steps <= trainer.step && rec.state !== 'running') {
      showFieldError($('tr-steps'), `the run is at step ${trainer.step}: enter more steps to continue`);
      ok = false;
    }
    return ok ? { batch: batch!, steps: steps!, lr: lr!, every: every!, size, modelKey, useImages } : null;
  };
  for (const id of ['tr-batch', 'tr-steps', 'tr-lr', 'tr-every', 'tr-size', 'tr-model', 'tr-data']) $(id).addEventListener('input', () => readSettings());

  const showData = (ds: ImageDataset) => {
    const k = Math.min(GRID, ds.n);
    drawImages($<HTMLCanvasElement>('tr-data-preview'), ds.images.subarray(0, k * ds.channels * ds.height * ds.width), k, ds.channels, ds.height, ds.width);
    $('tr-data-cap').textContent = `training images: ${ds.n} × ${ds.channels === 1 ? 'gray' : 'color'} ${ds.height}×${ds.width}` +
      (ds.name === DIGITS ? ' (the page\'s 500 MNIST test digits)' : ' (yours)');
  };

  const setFiles = async (files: File[]) => {
    droppedFiles = files.filter((f) => f.type.startsWith('image/') || /\.(png|jpe?g|gif|webp|bmp)$/i.test(f.name));
    images = null;
    if (droppedFiles.length === 0) { showFieldError($('tr-files'), 'no images among the files'); return; }
    $<HTMLSelectElement>('tr-data').value = 'images';
    try {
      images = await imagesDataset(droppedFiles, Number($<HTMLSelectElement>('tr-size').value));
      showFieldError($('tr-files'), '');
      showData(images);
      info(`${images.n} images ready`);
    } catch (e) {
      showFieldError($('tr-files'), (e as Error).message);
    }
    readSettings();
  };
  $<HTMLInputElement>('tr-files').addEventListener('change', (ev) => void setFiles([...((ev.target as HTMLInputElement).files ?? [])]));
  const drop = $('tr-drop');
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    if (trainer) { info('Start over first to train on other images'); return; }
    void setFiles([...(ev.dataTransfer?.files ?? [])]);
  });

  const sampleGrid = async () => {
    const t = trainer!, m = t.model, nc = m.config.numClasses;
    const out = await t.ema.withWeights(() => sampleImages(m, t.schedule, t.config.objective, {
      count: GRID, sampler: { kind: 'ddim', steps: 20 }, seed: 1234, classes: nc > 0 ? Array.from({ length: GRID }, (_, i) => i % nc) : undefined,
    }));
    const c = m.config;
    drawImages($<HTMLCanvasElement>('tr-grid'), await out.read(), GRID, c.inChannels, c.imageSize, c.imageSize);
    out.dispose();
    rec.grids.push(t.step);
    $('tr-grid-cap').textContent = `samples at step ${t.step} (EMA weights, DDIM 20 steps${nc > 0 ? ', classes 0–9 in turn' : ''})`;
  };

  /** A trainer for a new total of steps, continuing the current one (the learning-rate schedule stretches). */
  const retarget = async (steps: number, every: number) => {
    const t = trainer!;
    if (t.config.trainer.steps === steps) { t.config.trainer.sampleEvery = every; return; }
    const { state, groups } = await t.checkpointContents(elapsedBefore + elapsedHere);
    const cfg: RunConfig = { ...t.config, trainer: { ...t.config.trainer, steps, sampleEvery: every } };
    const next = new Trainer(cfg, dataset!);
    next.restoreState(state, groups as unknown as Groups);
    trainer = next;
  };

  const loop = async () => {
    const t0 = performance.now();
    let lastDraw = 0;
    setState('running');
    setBusy('train');
    try {
      while (trainer!.step < trainer!.config.trainer.steps) {
        if (pauseRequested) break;
        const t = trainer!;
        const started = performance.now();
        const r = await withLock(() => t.trainStep());
        elapsedHere += (performance.now() - started) / 1000;
        rec.losses.push(r.loss);
        rec.step = t.step;
        const itPerSec = rec.losses.length / Math.max((performance.now() - t0) / 1000, 1e-3);
        metrics.push(JSON.stringify({ step: t.step, totalSteps: t.config.trainer.steps, loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, itPerSec, elapsedSec: elapsedBefore + elapsedHere } satisfies StepInfo));
        info(`step ${t.step}/${t.config.trainer.steps}  loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  ` +
          `${(performance.now() - started).toFixed(0)} ms this step [${app.backend}]`);
        const every = t.config.trainer.sampleEvery;
        if (every > 0 && t.step % every === 0) await withLock(sampleGrid);
        if (performance.now() - lastDraw > 250 || t.step === t.config.trainer.steps) {
          drawLossCurve($<HTMLCanvasElement>('tr-loss'), rec.losses);
          lastDraw = performance.now();
        }
        await nextFrame();
      }
      const t = trainer!;
      drawLossCurve($<HTMLCanvasElement>('tr-loss'), rec.losses);
      if (t.step >= t.config.trainer.steps) {
        if (rec.grids.at(-1) !== t.step) await withLock(sampleGrid);
        setState('done');
        info(`done: ${t.step} steps, last loss ${rec.losses.at(-1)?.toFixed(4)} [${app.backend}]; download the checkpoint, or raise steps and press Train to go on`);
      } else {
        setState('paused');
        info(`paused at step ${t.step} of ${t.config.trainer.steps}: press Resume to go on`);
      }
    } catch (e) {
      rec.error = (e as Error).message;
      setState('error');
      info(`error: ${(e as Error).message}`);
    } finally {
      pauseRequested = false;
      setBusy(false);
      setState(rec.state);
    }
  };

  $('tr-run').addEventListener('click', async () => {
    if (isBusy()) return;
    const s = readSettings();
    if (!s) { info('not started: fix the fields marked in red'); return; }
    try {
      if (!trainer) {
        dataset = s.useImages ? images : digitsDataset(app, s.size);
        if (!dataset) { info('the images are still loading'); return; }
        if (dataset.height !== s.size) dataset = await imagesDataset(droppedFiles, s.size);
        trainer = new Trainer(runConfig(dataset, s.modelKey, s), dataset);
        rec.losses = [];
        rec.grids = [];
        metrics = [];
        elapsedBefore = elapsedHere = 0;
        showData(dataset);
        const p = trainer.model.parameters().reduce((a, x) => a + x.size, 0);
        info(`a new ${s.modelKey} UNet (${p.toLocaleString('en-US')} parameters) on ${dataset.n} images, batch ${s.batch} [${app.backend}]`);
      } else {
        await withLock(() => retarget(s.steps, s.every));
      }
      rec.totalSteps = trainer.config.trainer.steps;
      await loop();
    } catch (e) {
      rec.error = (e as Error).message;
      setState('error');
      info(`error: ${(e as Error).message}`);
    }
  });
  $('tr-pause').addEventListener('click', () => {
    pauseRequested = true;
    info(`pausing after step ${(trainer?.step ?? 0) + 1}…`);
  });
  $('tr-reset').addEventListener('click', () => {
    if (rec.state === 'running') return;
    trainer = null;
    dataset = null;
    rec.losses = [];
    rec.grids = [];
    rec.step = 0;
    rec.error = undefined;
    drawLossCurve($<HTMLCanvasElement>('tr-loss'), []);
    drawPlaceholder($<HTMLCanvasElement>('tr-grid'), 'samples appear here');
    setState('idle');
    info('not started');
    readSettings();
  });

  $('tr-download').addEventListener('click', async () => {
    if (!trainer) return;
    try {
      const { folder, zip } = await withLock(async () => {
        const t = trainer!;
        const { config, state, groups } = await t.checkpointContents(elapsedBefore + elapsedHere);
        const files = await Promise.all(encodeCheckpointFiles(t.step, groups).map(async (f) => ({ ...f, sha256: await sha256(f.bytes) })));
        const { bytes } = checkpointJsonBytes(config, state, files);
        const folder = `diffuse-explorer-step${t.step}`;
        const entries: Zippable = { 'checkpoint.json': bytes, 'metrics.jsonl': new TextEncoder().encode(metrics.length ? `${metrics.join('\n')}\n` : '') };
        for (const f of files) entries[f.file] = [f.bytes, { level: 0 }];
        return { folder, zip: zipSync({ [folder]: entries }) };
      });
      const url = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `${folder}.zip`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      info(`${rec.state === 'running' ? `training; ` : ''}downloaded ${folder}.zip (${(zip.length / 1024).toFixed(0)} KiB): unzip it and run  node bin/diffuse.mjs sample --checkpoint ${folder}`);
    } catch (e) {
      info(`download failed: ${(e as Error).message}`);
    }
  });

  $<HTMLInputElement>('tr-upload').addEventListener('change', async (ev) => {
    const input = ev.target as HTMLInputElement;
    const list = [...(input.files ?? [])];
    input.value = '';
    if (!list.length) return;
    if (rec.state === 'running') { showFieldError(input, 'pause the training first'); return; }
    try {
      const ck = await readUploadedCheckpoint(await uploadedFiles(list));
      const mc = ck.config.model.config;
      // The data to continue on: the run's own when this page has it, else (for 1-channel 28 or 14 px models)
      // the page's digits with a fresh data order.
      let ds: ImageDataset;
      if (ck.config.dataset === IMAGES && images && images.channels === mc.inChannels && images.height === mc.imageSize) ds = images;
      else if (mc.inChannels === 1 && (mc.imageSize === 28 || mc.imageSize === 14)) ds = digitsDataset(app, mc.imageSize);
      else throw new Error(`this checkpoint was trained on ${mc.inChannels}-channel ${mc.imageSize}×${mc.imageSize} images (${ck.config.dataset}): drop such images first`);
      if (mc.numClasses !== ds.numClasses && mc.numClasses !== 0) throw new Error(`the model has ${mc.numClasses} classes; the data here has ${ds.numClasses}`);
      const sameData = ds.name === ck.config.dataset && ck.state.data?.n === ds.n && ck.state.data?.batchSize === ck.config.trainer.batchSize;
      const t = new Trainer(ck.config, ds);
      t.restoreState(ck.state, ck.groups, sameData);
      trainer = t;
      dataset = ds;
      elapsedBefore = ck.state.elapsedSec ?? 0;
      elapsedHere = 0;
      rec.losses = ck.metrics.length === t.step ? ck.metrics : [];
      metrics = [];
      rec.grids = [];
      rec.step = t.step;
      rec.totalSteps = t.config.trainer.steps;
      $<HTMLInputElement>('tr-batch').value = String(ck.config.trainer.batchSize);
      $<HTMLInputElement>('tr-steps').value = String(ck.config.trainer.steps);
      $<HTMLInputElement>('tr-lr').value = String(ck.config.trainer.lr);
      $<HTMLSelectElement>('tr-size').value = String(mc.imageSize);
      const key = ck.config.model.preset === 'tiny' ? 'tiny' : Object.keys(MODELS).find((k) => MODELS[k].config.modelChannels === mc.modelChannels && !MODELS[k].preset);
      if (key) $<HTMLSelectElement>('tr-model').value = key;
      showFieldError(input, '');
      showData(ds);
      drawLossCurve($<HTMLCanvasElement>('tr-loss'), rec.losses);
      await withLock(sampleGrid);
      setState(t.step < t.config.trainer.steps ? 'paused' : 'done');
      info(`loaded a checkpoint at step ${t.step} of ${t.config.trainer.steps} (${ck.config.dataset}${sameData ? '' : '; continuing on the page\'s digits with a new data order'}): ` +
        (t.step < t.config.trainer.steps ? 'press Resume to continue' : 'raise steps and press Train to continue'));
    } catch (e) {
      showFieldError(input, (e as Error).message);
      info(`upload failed: ${(e as Error).message}`);
    }
  });

  drawLossCurve($<HTMLCanvasElement>('tr-loss'), []);
  drawPlaceholder($<HTMLCanvasElement>('tr-grid'), 'samples appear here');
  showData(digitsDataset(app, 28));
  setState('idle');
  readSettings();
}
