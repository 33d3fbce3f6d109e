/**
 * The `diffuse` command: train, sample, forward, eval, info. Uses only the package's two entries (`diffuse`:
 * ../index.ts, `diffuse/node`: ../node.ts) plus Node I/O.
 * Bad input gets one line naming the option or file and a non-zero exit; nothing existing is overwritten
 * unless asked (`--resume` continues a run in place; `--force` starts over in a used folder).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  Generator, SAMPLER_KINDS, Tensor, UNET_LIMITS, UNET_PRESETS, availableBackends, chooseBackend, concat, describeModel, getBackend,
  makeSchedule, narrow, normalizeSamplerConfig, normalizeScheduleConfig, qSample, randn, setBackend, toHost,
  unetParameterCount, unetPreset, type SamplerConfig, type SamplerKind, type UNetConfig, type UNetPresetName,
} from '../index.js';
import {
  CHECKPOINT_JSON, JUDGED_DATASETS, NonFiniteLossError, TRAIN_LIMITS, Trainer, checkpointDir, formatJudgeResult, frechetToHeldOut,
  judgeSamples, judgeSpec, loadImageDataset, loadJudge, loadModelFromCheckpoint, readImage, readRunCheckpoint, realDataReference, realImagesReference,
  removeCheckpointDebris, sampleImages, saveImage, saveImageGrid, savePlot, skippedSummary, verifyCheckpoint,
  watchInterrupts, loadTrainingSet, relabelByClusters, withClusters, defaultClusterCount, labelledClassCount, sampledClasses, ProgressiveDistiller, distillRunConfig, distillTeacher, type DistilledRecord, type FolderDataset, type RunConfig, type ClusterRecord, type ImageDataset,
  type TrainerConfig,
} from '../node.js';
import { isDiffusersFolder, sampleDiffusersFolder } from './diffusers.js';
import { registerServeCommands } from './serve.js';
import { registerExportCommands } from './export.js';

class UsageError extends Error {}

// ---------------------------------------------------------------- option parsers (one-line errors)

const int = (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) => (v: string): number => {
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in ${min}…${max}`}, got '${v}'`);
  }
  return n;
};

/** Bounds on sizes the command line asks for (the trainer's own are in TRAIN_LIMITS). */
const CLI_LIMITS = {
  imageSize: 1024,
  /** A training batch's full-resolution feature maps (batch × model channels × size²), which set the
   *  activation memory: 2^24 values is a few GiB of activations (the default run uses 1/10 of it). */
  batchValues: 2 ** 24,
  /** Values in all the images one sample/eval command holds (count × channels × size²): 512 MiB. */
  outputValues: 2 ** 27,
  count: 100_000,
} as const;

/** An --out folder: created if missing; an existing file there is refused. */
function outFolder(path: string, option = '--out'): string {
  const out = resolve(path);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`${option} ${out} is a file, not a folder`);
  return out;
}
const num = (name: string, lo = -Infinity, hi = Infinity) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi) throw new InvalidArgumentError(`${name} must be a number in [${lo}, ${hi}], got '${v}'`);
  return n;
};
const duration = (v: string): number => {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`--time must look like 90s, 25m or 1.5h, got '${v}'`);
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h']);
};

/** The line saying which backend runs and why each faster one did not, until it is printed. */
let backendLine: string | undefined;

/** Starts the backend for train, sample and eval — --backend, else DIFFUSE_BACKEND, else the fastest that
 *  starts here (native → wasm → js); the line saying so is printed when the command starts its work (announceBackend),
 *  so that bad options still get one line. */
async function startBackend(name?: string): Promise<void> {
  try {
    backendLine = (await chooseBackend({ backend: name, chosenBy: '--backend' })).line;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function announceBackend(): void {
  if (backendLine) console.error(backendLine);
  backendLine = undefined;
}

/** --sampler and --steps; without them, the sampler a distilled checkpoint was made for (DDIM in its steps), else DPM-Solver++. */
function samplerConfig(kindFlag: string | undefined, stepsFlag: number | undefined, T?: number, distilled?: DistilledRecord, sde = false): SamplerConfig {
  const kind = kindFlag ?? (distilled ? 'ddim' : 'dpmSolverPlusPlus');
  if (sde && kind !== 'dpmSolverPlusPlus') throw new UsageError(`--sde: only dpmSolverPlusPlus has an SDE variant, not --sampler ${kind}`);
  const steps = stepsFlag ?? (distilled && kind === 'ddim' ? distilled.steps : undefined);
  if (!SAMPLER_KINDS.includes(kind as SamplerKind)) throw new UsageError(`--sampler: unknown sampler '${kind}' (choose one of ${SAMPLER_KINDS.join(', ')})`);
  if (steps !== undefined && T !== undefined && steps > T) throw new UsageError(`--steps ${steps}: the model's schedule has ${T} timesteps; use at most ${T}`);
  // Without --steps the sampler runs its registry default (src/diffusion/samplers/defaults.ts), as in the library.
  return normalizeSamplerConfig({ kind, ...(steps !== undefined ? { steps } : {}), ...(sde ? { sde: true } : {}) }, '--sampler');
}

/** What the commands need of a progress bar. */
interface Progress {
  start(total: number, value: number, payload?: Record<string, string | number>): void;
  update(value: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

/** A bar on a terminal; elsewhere (logs, pipes) one plain line every 10 s, written from `update` itself:
 *  cli-progress redraws on a timer, which never fires while sampling runs synchronously. */
function progressBar(label: string, extra = ''): Progress {
  announceBackend();
  if (process.stderr.isTTY) {
    return new cliProgress.SingleBar({
      format: `${label} |{bar}| {value}/{total} ${extra}| {rate} it/s | ETA {eta_formatted}`,
      hideCursor: true, clearOnComplete: false, etaBuffer: 50,
    }, cliProgress.Presets.shades_classic);
  }
  let total = 0, value = 0, v0 = 0, t0 = 0, last = 0, fields: Record<string, string | number> = {};
  const line = () => {
    const elapsed = (performance.now() - t0) / 1000, rate = (value - v0) / Math.max(elapsed, 1e-9);
    const eta = value > v0 ? Math.round((total - value) / rate) : NaN;
    const shown = Object.entries(fields).filter(([k]) => k !== 'rate').map(([k, v]) => ` ${k} ${v}`).join('');
    process.stderr.write(`${label} ${value}/${total} (${((100 * value) / Math.max(total, 1)).toFixed(0)}%)${shown} | ` +
      `${rate.toFixed(2)} it/s | elapsed ${Math.round(elapsed)} s | ETA ${Number.isFinite(eta) ? `${eta} s` : '-'}\n`);
    last = performance.now();
  };
  return {
    start(n, v, payload) { total = n; value = v0 = v; fields = { ...payload }; t0 = last = performance.now(); },
    update(v, payload) {
      value = v;
      if (payload) fields = { ...fields, ...payload };
      if (performance.now() - last >= 10_000) line();
    },
    stop() { if (total > 0) line(); },
  };
}

/** Refuses a --count whose images would not fit the output bound. */
function checkOutputSize(count: number, channels: number, size: number): void {
  const values = count * channels * size * size;
  if (values > CLI_LIMITS.outputValues) {
    throw new UsageError(`--count ${count}: ${count} images of ${channels}×${size}×${size} hold ${values} values, over the limit of ` +
      `${CLI_LIMITS.outputValues} (at most ${Math.floor(CLI_LIMITS.outputValues / (channels * size * size))} here)`);
  }
}

// ---------------------------------------------------------------- train

interface TrainFlags {
  dataset: string; preset: string; imageSize?: number; schedule: string; prediction: string; variance: string;
  minSnr?: number; steps: number; time?: number; batchSize: number; accumulate: number; lr: number; warmup?: number;
  ema?: number; gradClip: number; seed: number; out: string; sampleEvery: number; checkpointEvery: number;
  classCond: boolean; condDropout: number; resume: boolean; force: boolean; backend?: string; limit?: number;
  normGroups?: number; clusters?: number; clusterShare?: number; gradientCheckpointing?: boolean;
}

/** The preset's UNet config with overrides and --norm-groups (one group count for every norm); a misfit count is a usage error. */
function trainModelConfig(f: TrainFlags, overrides: Partial<UNetConfig>): UNetConfig {
  const groups = f.normGroups !== undefined ? { normGroups: f.normGroups, normGroupRule: 'fixed' as const } : {};
  try {
    return unetPreset(f.preset as UNetPresetName, { ...overrides, ...groups });
  } catch (e) {
    if (f.normGroups !== undefined && /normGroups/.test((e as Error).message)) throw new UsageError(`--norm-groups ${f.normGroups}: ${(e as Error).message.replace(/^UNetConfig: /, '')}`);
    throw e;
  }
}

/** A run's images labelled by its k-means clusters again (they are recomputed, not stored: the same images and
 *  seed give the same clusters); other images are an error naming the checkpoint's field. */
function clusterDataset(dataset: ImageDataset, clusters: ClusterRecord, name: string, run: string): ImageDataset {
  const relabelled = (clusters.firstClass ? withClusters : relabelByClusters)(dataset, clusters.sizes.length, clusters.seed);
  if (relabelled.sizes.some((v, i) => v !== clusters.sizes[i])) {
    throw new UsageError(`dataset ${name}: its k-means clusters differ from field config.clusters.sizes of ${join(checkpointDir(run), CHECKPOINT_JSON)}; ` +
      'the images changed since that run began');
  }
  return relabelled.dataset;
}

async function train(f: TrainFlags): Promise<void> {
  await startBackend(f.backend);
  const out = outFolder(f.out);
  const hasCheckpoint = existsSync(join(out, CHECKPOINT_JSON));
  let config: RunConfig;
  let resumeFrom: ConstructorParameters<typeof Trainer>[2];
  if (f.resume) {
    if (!hasCheckpoint) throw new UsageError(`--resume: no checkpoint in ${out} (expected ${CHECKPOINT_JSON})`);
    removeCheckpointDebris(out);
    const { json } = readRunCheckpoint(out, { resume: true });
    config = json.config;
    if (f.steps !== config.trainer.steps && f.steps !== DEFAULT_STEPS) {
      if (f.steps < json.state.step) throw new UsageError(`--steps ${f.steps}: the run in ${out} is already at step ${json.state.step}`);
      config = { ...config, trainer: { ...config.trainer, steps: f.steps, warmupSteps: Math.min(config.trainer.warmupSteps, f.steps) } };
    }
    resumeFrom = { dir: out, json: json as never };
  } else {
    if (!(f.preset in UNET_PRESETS)) throw new UsageError(`--preset: unknown preset '${f.preset}' (choose one of ${Object.keys(UNET_PRESETS).join(', ')})`);
    if (!['epsilon', 'x0', 'v'].includes(f.prediction)) throw new UsageError(`--prediction must be epsilon, x0 or v, got '${f.prediction}'`);
    if (!['fixedLarge', 'fixedSmall', 'learnedRange'].includes(f.variance)) throw new UsageError(`--variance must be fixedLarge, fixedSmall or learnedRange, got '${f.variance}'`);
    if (!['linear', 'cosine', 'sigmoid', 'scaledLinear'].includes(f.schedule)) throw new UsageError(`--schedule must be linear, cosine, sigmoid or scaledLinear, got '${f.schedule}'`);
    // The options first: a bad one is named whatever the output folder holds.
    if (existsSync(out) && readdirSync(out).length > 0 && !f.force) {
      throw new UsageError(`--out ${out} is not empty: pass --resume to continue that run or --force to start over there`);
    }
    // Warmup: 200 steps, or a tenth of a shorter run; an explicit value longer than the run is cut to it.
    const warmup = f.warmup === undefined ? Math.min(DEFAULT_WARMUP, Math.ceil(f.steps / 10)) : Math.min(f.warmup, f.steps);
    if (f.warmup !== undefined && f.warmup > f.steps) console.error(`diffuse: --warmup ${f.warmup} is longer than the run; warming up over all ${f.steps} steps`);
    config = {
      dataset: f.dataset,
      datasetLimit: f.limit,
      model: { kind: 'unet', preset: f.preset, config: trainModelConfig(f, {}) },
      schedule: normalizeScheduleConfig({ kind: f.schedule, T: 1000 }),
      objective: {
        prediction: f.prediction as RunConfig['objective']['prediction'],
        variance: f.variance as RunConfig['objective']['variance'],
        weighting: f.minSnr !== undefined ? { kind: 'minSnr', gamma: f.minSnr } : { kind: 'none' },
      },
      trainer: {
        steps: f.steps, batchSize: f.batchSize, accumulate: f.accumulate, lr: f.lr, minLr: f.lr * 0.05,
        warmupSteps: warmup, weightDecay: 0, gradClip: f.gradClip, emaDecay: f.ema ?? 0.999, condDropout: f.condDropout, seed: f.seed,
        sampleEvery: f.sampleEvery, checkpointEvery: f.checkpointEvery,
        previewSampler: { kind: 'dpmSolverPlusPlus', steps: 20 }, previewCount: 100,
      } satisfies TrainerConfig,
    };
  }
  let dataset = loadTrainingSet(config.dataset, { limit: config.datasetLimit, size: f.imageSize ?? config.model.config.imageSize });
  const skippedLine = 'skipped' in dataset ? skippedSummary(dataset as FolderDataset) : '';
  if (skippedLine) console.error(`diffuse: ${skippedLine}`);
  let clusterLine = '';
  if (!f.resume) {
    const size = dataset.height;
    if (dataset.height !== dataset.width) throw new UsageError(`dataset ${config.dataset}: images are ${dataset.height}×${dataset.width}, expected square`);
    const labelled = f.classCond && dataset.numClasses > 0;
    // k-means clusters by default (src/data/clusters.ts): without labels they are the classes; with labels they
    // follow them, and a share of the images trains on its cluster, so that sampling without a label is good too.
    const clusters = f.clusters ?? defaultClusterCount(dataset.n, labelled);
    const share = f.clusterShare ?? DEFAULT_CLUSTER_SHARE;
    if (clusters > dataset.n) throw new UsageError(`--clusters ${clusters}: the dataset has only ${dataset.n} images`);
    if (f.clusterShare !== undefined && !(labelled && clusters > 0)) throw new UsageError(`--cluster-share: the run has no labels and clusters to share between`);
    if (labelled && clusters > 0) {
      if (dataset.numClasses + clusters > UNET_LIMITS.maxClasses) {
        throw new UsageError(`--clusters ${clusters}: with the dataset's ${dataset.numClasses} classes that is over the model's ${UNET_LIMITS.maxClasses}`);
      }
      if (share + config.trainer.condDropout > 1) throw new UsageError(`--cluster-share ${share}: with --cond-dropout ${config.trainer.condDropout} that is over all of the images`);
    }
    if (clusters > 0) {
      const t0 = performance.now();
      const found = labelled ? withClusters(dataset, clusters, config.trainer.seed) : relabelByClusters(dataset, clusters, config.trainer.seed);
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      config.clusters = { sizes: found.sizes, guidance: CLUSTER_GUIDANCE, seed: config.trainer.seed, ...(labelled ? { firstClass: dataset.numClasses, share } : {}) };
      if (labelled) {
        clusterLine = `, classes: ${dataset.numClasses} labels and ${clusters} k-means clusters (${Math.round(share * 100)}% of the images train on their cluster; ${seconds} s)`;
      } else {
        if (f.ema === undefined) config.trainer.emaDecay = CLUSTER_EMA;
        clusterLine = `, classes: ${clusters} k-means clusters of the images, no labels (${seconds} s)`;
      }
      dataset = found.dataset;
    }
    config.model.config = trainModelConfig(f, {
      imageSize: size, inChannels: dataset.channels,
      numClasses: (labelled ? dataset.numClasses : 0) + clusters,
      learnSigma: f.variance === 'learnedRange',
    });
  } else if (config.clusters) {
    dataset = clusterDataset(dataset, config.clusters, config.dataset, out);
  }
  const mc = config.model.config.modelChannels, batchValues = config.trainer.batchSize * mc * dataset.height * dataset.width;
  if (batchValues > CLI_LIMITS.batchValues) {
    throw new UsageError(`--batch-size ${config.trainer.batchSize}: its ${mc}×${dataset.height}×${dataset.width} feature maps hold ` +
      `${batchValues} values, over the limit of ${CLI_LIMITS.batchValues} (at most ${Math.floor(CLI_LIMITS.batchValues / (mc * dataset.height * dataset.width))} here)`);
  }
  const created = !existsSync(out);
  mkdirSync(out, { recursive: true });
  if (f.force) removeCheckpointDebris(out);
  let trainer: Trainer;
  try {
    trainer = new Trainer(config, dataset, resumeFrom);
    // (how the step is computed, not what: not recorded, and the same gradients either way)
    trainer.model.gradientCheckpointing = f.gradientCheckpointing === true;
  } catch (e) {
    if (created) try { rmdirSync(out); } catch { /* not empty: keep it */ }
    throw e;
  }
  announceBackend();
  console.log(`diffuse train: ${config.dataset} (${dataset.n} images ${dataset.channels}×${dataset.height}×${dataset.width}), ` +
    `${describeModel(trainer.model, `UNet/${config.model.preset ?? 'custom'}`)}, backend ${getBackend().name}, ` +
    `${config.trainer.steps} steps of batch ${config.trainer.batchSize}${clusterLine}${f.resume ? `, resuming at step ${trainer.step}` : ''} → ${out}`);

  // A signal stops the step in progress at its next kernel call; the last completed step is saved.
  const interrupts = watchInterrupts({
    onFirst: (sig) => console.error(`\n${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: saving a checkpoint before exiting (again to quit without it)`),
  });
  const bar = progressBar('train', 'loss {loss} ');
  bar.start(config.trainer.steps, trainer.step, { loss: '-', rate: '-' });
  let result;
  try {
    result = await trainer.train({
      outDir: out, resume: f.resume, timeBudgetSec: f.time,
      onStep: (s) => bar.update(s.step, { loss: s.loss.toFixed(4), rate: s.itPerSec.toFixed(2) }),
      onEvent: (m) => { if (!process.stdout.isTTY) console.log(m); },
      shouldStop: () => interrupts.signal !== null,
    });
  } finally {
    bar.stop();
    interrupts.dispose();
  }
  console.log(`step ${result.step}/${config.trainer.steps}, loss ${result.lastLoss?.toFixed(4)}, ${(result.elapsedSec / 60).toFixed(1)} min of training; ` +
    `checkpoint ${join(out, CHECKPOINT_JSON)}, loss curve ${join(out, 'loss.png')}`);
  if (interrupts.exitCode) process.exitCode = interrupts.exitCode;
}

// ---------------------------------------------------------------- distill

interface DistillFlags {
  checkpoint: string; out: string; teacherSteps?: number; to: number; guidance?: number; iterations: number; batchSize: number;
  lr: number; ema: number; seed: number; sampleEvery: number; checkpointEvery: number; resume: boolean; force: boolean; backend?: string;
}

/**
 * Progressive distillation (Salimans & Ho 2022; src/train/distill.ts): rounds that halve the DDIM step count,
 * from --teacher-steps down to --to, each student in --out/steps-N (an ordinary checkpoint that `sample` and
 * `eval` run with DDIM in N steps). With --resume, finished rounds are kept and an interrupted one continues.
 */
async function distill(f: DistillFlags): Promise<void> {
  await startBackend(f.backend);
  const pow2 = (n: number) => Number.isInteger(Math.log2(n));
  const first = loadModelFromCheckpoint(f.checkpoint, 'ema');
  const teacherSteps = f.teacherSteps ?? first.config.distilled?.steps ?? 8;
  if (first.config.distilled && teacherSteps !== first.config.distilled.steps) {
    throw new UsageError(`--teacher-steps ${teacherSteps}: ${f.checkpoint} is distilled to sample in ${first.config.distilled.steps} steps`);
  }
  if (!pow2(teacherSteps) || teacherSteps < 2 || teacherSteps > 512) throw new UsageError(`--teacher-steps must be a power of two in 2…512, got ${teacherSteps}`);
  if (!pow2(f.to) || f.to >= teacherSteps) throw new UsageError(`--to must be a power of two below --teacher-steps ${teacherSteps}, got ${f.to}`);
  if (first.config.objective.variance === 'learnedRange') throw new UsageError(`--checkpoint ${f.checkpoint}: a model with a learned variance cannot be distilled here`);
  // Folded-in guidance: a model without labels takes its clusters' own; one with labels 2.
  const clusterGuidance = labelledClassCount(first.model.config.numClasses, first.config.clusters) === 0 ? first.config.clusters?.guidance : undefined;
  const guidance = f.guidance ?? (first.config.distilled ? 1 : clusterGuidance ?? (first.model.config.numClasses > 0 ? 2 : 1));
  if (guidance !== 1 && first.model.config.numClasses === 0) throw new UsageError(`--guidance ${guidance}: the model in ${f.checkpoint} is unconditional`);
  if (guidance !== 1 && first.config.distilled) throw new UsageError(`--guidance: ${f.checkpoint} already has guidance ${first.config.distilled.guidance} folded in`);
  const out = outFolder(f.out);
  if (existsSync(out) && readdirSync(out).length > 0 && !f.resume && !f.force) {
    throw new UsageError(`--out ${out} is not empty: pass --resume to continue that distillation or --force to start over there`);
  }
  if (resolve(checkpointDir(f.checkpoint)).startsWith(out + '/') || resolve(checkpointDir(f.checkpoint)) === out) {
    throw new UsageError(`--out ${out} holds the teacher ${f.checkpoint}; write the students elsewhere`);
  }
  let dataset = loadTrainingSet(first.config.dataset, { limit: first.config.datasetLimit, size: first.config.model.config.imageSize });
  if (first.config.clusters) dataset = clusterDataset(dataset, first.config.clusters, first.config.dataset, f.checkpoint);
  mkdirSync(out, { recursive: true });
  let teacher = { model: first.model, config: first.config, dir: f.checkpoint };
  const interrupts = watchInterrupts({
    onFirst: (sig) => console.error(`\n${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: saving a checkpoint before exiting (again to quit without it)`),
  });
  try {
    for (let n = teacherSteps / 2; n >= f.to; n /= 2) {
      const dir = join(out, `steps-${n}`);
      const config = distillRunConfig(teacher.config, {
        steps: n, iterations: f.iterations, batchSize: f.batchSize, lr: f.lr, guidance, emaDecay: f.ema, seed: f.seed,
        checkpointEvery: f.checkpointEvery, sampleEvery: f.sampleEvery, teacherPath: resolve(checkpointDir(teacher.dir)),
      });
      let resumeFrom: { dir: string; json: ReturnType<typeof readRunCheckpoint>['json'] } | undefined;
      if (existsSync(join(dir, CHECKPOINT_JSON))) {
        removeCheckpointDebris(dir);
        if (f.resume) {
          const { json } = readRunCheckpoint(dir, { resume: true });
          if (json.config.distilled?.steps !== n) throw new UsageError(`--resume: ${dir} is not a ${n}-step student`);
          resumeFrom = { dir, json };
        }
      }
      mkdirSync(dir, { recursive: true });
      const init = resumeFrom ? undefined : teacher.model.stateDict();
      const student = new ProgressiveDistiller(resumeFrom?.json.config ?? config, dataset, distillTeacher(teacher.model, teacher.config, guidance), init, resumeFrom);
      if (student.step < f.iterations) {
        announceBackend();
        console.log(`diffuse distill: ${n}-step student of the ${2 * n}-step teacher ${teacher.dir}${guidance !== 1 && !teacher.config.distilled ? ` (guidance ${guidance} folded in)` : ''}, ` +
          `${f.iterations} steps of batch ${f.batchSize}${resumeFrom ? `, resuming at step ${student.step}` : ''} → ${dir}`);
        const bar = progressBar(`distill ${2 * n}→${n}`, 'loss {loss} ');
        bar.start(f.iterations, student.step, { loss: '-', rate: '-' });
        let result;
        try {
          result = await student.train({
            outDir: dir, resume: !!resumeFrom,
            onStep: (st) => bar.update(st.step, { loss: st.loss.toFixed(4), rate: st.itPerSec.toFixed(2) }),
            onEvent: (m) => { if (!process.stdout.isTTY) console.log(m); },
            shouldStop: () => interrupts.signal !== null,
          });
        } finally {
          bar.stop();
        }
        console.log(`${n} steps: step ${result.step}/${f.iterations}, loss ${result.lastLoss?.toFixed(4)}, ${(result.elapsedSec / 60).toFixed(1)} min → ${dir}`);
        if (interrupts.signal !== null) break;
      }
      const next = loadModelFromCheckpoint(dir, 'ema');
      teacher = { model: next.model, config: next.config, dir };
    }
  } finally {
    interrupts.dispose();
  }
  if (interrupts.exitCode) process.exitCode = interrupts.exitCode;
  else console.log(`students in ${out}: ${Array.from({ length: Math.log2(teacherSteps / f.to) }, (_, i) => `steps-${teacherSteps / 2 ** (i + 1)}`).join(', ')} ` +
    `(sample with: diffuse sample --checkpoint ${join(out, `steps-${f.to}`)})`);
}

// ---------------------------------------------------------------- sample

interface SampleFlags {
  checkpoint: string; sampler?: string; steps?: number; count: number; seed: number; class?: number; guidance?: number;
  out: string; single: boolean; strip: boolean; weights: string; backend?: string; sde?: boolean; unconditional: boolean;
}

/**
 * What `sample` and `eval` ask a model for (sampledClasses), with their default guidance: the clusters' own
 * where clusters are drawn or `cls` is a cluster class, 1 for labels; none for the null class or an
 * unconditional model.
 */
function requestedClasses(config: RunConfig, count: number, cls: number | undefined, unconditional: boolean, guidance?: number, nullClass = false):
  { clusters?: ClusterRecord; classes?: number[]; guidance?: number } {
  const nc = config.model.config.numClasses, picked = sampledClasses(nc, config.clusters, count, { cls, unconditional, nullClass });
  if (picked.clusters) return { ...picked, guidance: guidance ?? picked.clusters.guidance };
  if (!picked.classes) return picked;
  const clusterClass = config.clusters !== undefined && cls !== undefined && cls >= labelledClassCount(nc, config.clusters);
  return { ...picked, guidance: guidance ?? (clusterClass ? config.clusters!.guidance : 1) };
}

/** Drawn clusters sample with DPM-Solver++'s SDE variant unless a sampler is named (bench/quality.ts: +3 to +4
 *  points confident over the ODE one on MNIST); a distilled student keeps its DDIM steps. */
function defaultSde(samplerFlag: string | undefined, config: RunConfig, clusters: ClusterRecord | undefined): boolean {
  return clusters !== undefined && samplerFlag === undefined && !config.distilled;
}

async function sample(f: SampleFlags): Promise<void> {
  await startBackend(f.backend);
  if (f.weights !== 'ema' && f.weights !== 'model') throw new UsageError(`--weights must be ema or model, got '${f.weights}'`);
  const out = outFolder(f.out);
  if (existsSync(join(out, CHECKPOINT_JSON)) || (existsSync(out) && resolve(checkpointDir(f.checkpoint)) === out)) {
    throw new UsageError(`--out ${out} is a training run's folder; write samples elsewhere`);
  }
  if (isDiffusersFolder(f.checkpoint)) return sampleDiffusersFolder({ ...f, guidance: f.guidance ?? 1 }, out, (m) => new UsageError(m));
  const { model, config, schedule } = loadModelFromCheckpoint(f.checkpoint, f.weights);
  const nc = model.config.numClasses;
  if (f.class !== undefined && (nc === 0 || f.class >= nc)) {
    throw new UsageError(`--class ${f.class}: the model ${nc === 0 ? 'is unconditional' : `has classes 0…${nc - 1}`}`);
  }
  if (f.unconditional && f.class !== undefined) throw new UsageError(`--unconditional: --class ${f.class} names a class`);
  const { clusters, classes, guidance } = requestedClasses(config, f.count, f.class, f.unconditional, f.guidance);
  const sampler = samplerConfig(f.sampler, f.steps, schedule.T, config.distilled, f.sde ?? defaultSde(f.sampler, config, clusters));
  checkOutputSize(f.count, model.config.inChannels, model.config.imageSize);
  mkdirSync(out, { recursive: true });
  const bar = progressBar('sample');
  const batches = Math.ceil(f.count / 100);
  let total = 0, done = 0, started = 0;
  const frames: Tensor[] = [];
  const images = await sampleImages(model, schedule, config.objective, {
    count: f.count, sampler, seed: f.seed, classes, clusters, guidanceScale: guidance,
    onStep: (step, steps) => {
      if (total === 0) { total = steps * batches; started = performance.now(); bar.start(total, 0, { rate: '-' }); }
      done++;
      bar.update(done, { rate: ((done * 1000) / (performance.now() - started)).toFixed(2) });
      void step;
    },
    onFrame: f.strip ? (_step, _xt, x0) => { if (frames.length < 1000) frames.push(narrow(x0, 0, 0, 1)); } : undefined,
  });
  bar.stop();
  const grid = join(out, 'samples.png');
  saveImageGrid(grid, images, { nrow: Math.ceil(Math.sqrt(f.count)), scale: 2 });
  if (f.single) {
    for (let i = 0; i < f.count; i++) saveImage(join(out, `sample-${String(i).padStart(4, '0')}.png`), await toHost(narrow(images, 0, i, 1)), { scale: 2 });
  }
  if (f.strip && frames.length) {
    const keep = frames.filter((_, i) => i % Math.max(1, Math.floor(frames.length / 10)) === 0 || i === frames.length - 1);
    saveImageGrid(join(out, 'strip.png'), await toHost(concat(keep, 0)), { nrow: keep.length, scale: 3 });
  }
  console.log(`${f.count} samples (${sampler.kind}${'sde' in sampler && sampler.sde ? ' SDE' : ''}${'steps' in sampler && sampler.steps ? `, ${sampler.steps} steps` : ''}${guidance !== undefined ? `, guidance ${guidance}` : ''}${clusters ? ', clusters drawn by size' : ''}) → ${grid}`);
}

// ---------------------------------------------------------------- forward

function forward(f: { image?: string; dataset: string; index: number; schedule: string; t: string; out: string; seed: number }): void {
  if (!['linear', 'cosine', 'sigmoid', 'scaledLinear'].includes(f.schedule)) throw new UsageError(`--schedule must be linear, cosine, sigmoid or scaledLinear, got '${f.schedule}'`);
  const out = outFolder(f.out);
  const schedule = makeSchedule(normalizeScheduleConfig({ kind: f.schedule, T: 1000 }));
  const parts = f.t.split(',');
  if (parts.length > 100) throw new UsageError(`--t: at most 100 timesteps, got ${parts.length}`);
  const ts = parts.map((s) => {
    const n = Number(s);
    if (!/^\s*\d+\s*$/.test(s) || !Number.isInteger(n) || n >= schedule.T) throw new UsageError(`--t: each timestep must be an integer in 0…${schedule.T - 1}, got '${s}'`);
    return n;
  });
  let x0: Tensor;
  if (f.image) {
    const img = readImage(f.image);
    const c = img.channels, hw = img.height * img.width;
    const data = new Float32Array(c * hw);
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < hw; i++) data[ch * hw + i] = img.rgba[i * 4 + ch] / 127.5 - 1;
    x0 = new Tensor(data, [1, c, img.height, img.width]);
  } else {
    const ds = loadImageDataset(f.dataset, { split: 'test' });
    if (f.index < 0 || f.index >= ds.n) throw new UsageError(`--index must be in 0…${ds.n - 1}, got ${f.index}`);
    const per = ds.channels * ds.height * ds.width;
    x0 = new Tensor(ds.images.slice(f.index * per, (f.index + 1) * per), [1, ds.channels, ds.height, ds.width]);
  }
  const gen = new Generator(f.seed);
  const noise = randn(x0.shape, gen);
  const frames = ts.map((t) => qSample(schedule, x0, t, noise));
  mkdirSync(out, { recursive: true });
  saveImageGrid(join(out, 'forward.png'), concat(frames, 0), { nrow: frames.length, scale: 4 });
  const steps = Array.from({ length: schedule.T }, (_, i) => i);
  savePlot(join(out, 'schedule.png'), [
    { name: 'ᾱ_t', x: steps, y: schedule.alphasCumprod },
    { name: 'marked t', x: ts, y: ts.map((t) => schedule.alphasCumprod[t]), style: 'points', width: 7 },
  ], { title: `${f.schedule} schedule: ᾱ_t`, xLabel: 't', yLabel: 'ᾱ_t' });
  savePlot(join(out, 'snr.png'), [{ name: 'SNR', x: steps, y: schedule.snr }], { title: `${f.schedule} schedule: SNR`, xLabel: 't', yLabel: 'SNR', logY: true });
  console.log(`x_t at t = ${ts.join(', ')} → ${join(out, 'forward.png')}; ᾱ curve → ${join(out, 'schedule.png')}; SNR → ${join(out, 'snr.png')}`);
}

// ---------------------------------------------------------------- eval

interface EvalFlags {
  checkpoint: string; sampler?: string; steps?: number; count: number; seed: number; guidance?: number; sde?: boolean; out: string; backend?: string;
  unconditional: boolean; nullClass: boolean;
}

async function evaluate(f: EvalFlags): Promise<void> {
  await startBackend(f.backend);
  const { model, config, schedule } = loadModelFromCheckpoint(f.checkpoint, 'ema');
  const spec = judgeSpec(config.dataset);
  if (!spec) {
    throw new UsageError(`eval: no judge for dataset '${config.dataset}' (judges exist for ${JUDGED_DATASETS.join(', ')}); ` +
      'use diffuse sample to look at its images');
  }
  const { inChannels: C, imageSize: S } = model.config;
  if (C !== spec.inChannels || S !== spec.imageSize) {
    throw new UsageError(`eval: the ${spec.dataset} judge scores ${spec.inChannels}×${spec.imageSize}×${spec.imageSize} images; ` +
      `this checkpoint makes ${C}×${S}×${S}`);
  }
  const nc = model.config.numClasses;
  // A conditional model is asked for each labelled class equally often; without a class (a model without labels,
  // or --unconditional) its clusters are drawn by size, or the null class sampled; --null-class samples that.
  if (f.nullClass && nc === 0) throw new UsageError(`--null-class: the model in ${f.checkpoint} is unconditional`);
  const { clusters, classes, guidance } = requestedClasses(config, f.count, undefined, f.unconditional, f.guidance, f.nullClass);
  const sampler = samplerConfig(f.sampler, f.steps, schedule.T, config.distilled, f.sde ?? defaultSde(f.sampler, config, clusters));
  checkOutputSize(f.count, C, S);
  const out = outFolder(f.out);
  loadJudge(spec.dataset); // a missing or broken weights file fails before sampling
  const bar = progressBar('eval');
  const batches = Math.ceil(f.count / 100);
  let done = 0, started = 0;
  const t0 = performance.now();
  const images = await sampleImages(model, schedule, config.objective, {
    count: f.count, sampler, seed: f.seed, classes, clusters, guidanceScale: guidance,
    onStep: (_step, steps) => {
      if (done === 0) { started = performance.now(); bar.start(steps * batches, 0, { rate: '-' }); }
      done++;
      bar.update(done, { rate: ((done * 1000) / (performance.now() - started)).toFixed(2) });
    },
  });
  bar.stop();
  const seconds = (performance.now() - t0) / 1000;
  // The judge reads values synchronously: after sampling on a device it runs on a CPU backend.
  if (getBackend().device) setBackend(availableBackends().includes('native') ? 'native' : 'js');
  const judge = judgeSamples(images, spec.dataset);
  const fd = frechetToHeldOut(judge.features, spec.dataset);
  mkdirSync(out, { recursive: true });
  saveImageGrid(join(out, 'eval-samples.png'), narrow(images, 0, 0, Math.min(100, f.count)), { nrow: 10, scale: 2 });
  // How often the judge sees the class that was asked for (conditional sampling only).
  const agreement = classes ? classes.filter((c, i) => judge.predictions[i] === c).length / classes.length : undefined;
  const common = {
    checkpoint: resolve(f.checkpoint), sampler, count: f.count, seed: f.seed, guidance: guidance ?? 1, conditional: !!classes,
    ...(clusters ? { clusters: clusters.sizes.length } : {}), ...(nc > 0 && !classes && !clusters ? { nullClass: true } : {}),
    samplingSeconds: +seconds.toFixed(1),
  };
  if (spec.bar) {
    const ref = realDataReference(spec.dataset);
    const report = {
      ...common, confidentFraction: judge.confidentFraction, classHistogram: judge.classHistogram,
      perClassOk: judge.perClassOk, passes: judge.passes, agreementWithRequestedClass: agreement,
      frechetToHeldOut: fd, reference: ref,
    };
    writeFileSync(join(out, 'eval.json'), JSON.stringify(report, null, 2));
    console.log(formatJudgeResult(judge));
    if (agreement !== undefined) console.log(`the judge's class is the requested class for ${(100 * agreement).toFixed(1)}% of samples`);
    console.log(`Fréchet distance (judge features) samples vs held-out digits: ${fd.toFixed(2)}; real vs real: ` +
      `held-out halves ${ref.heldOutHalves.toFixed(2)}, 1,000 train vs held-out ${ref.train1000VsHeldOut.toFixed(2)}`);
  } else {
    // No bar: every figure beside the same figure for real images (the held-out split; a training subset of
    // the samples' size for the FD, so that both carry the same finite-sample bias).
    const ref = realImagesReference(spec.dataset, f.count);
    const report = {
      ...common, dataset: spec.dataset, classNames: spec.classNames, confidentFraction: judge.confidentFraction,
      classHistogram: judge.classHistogram, agreementWithRequestedClass: agreement, frechetToHeldOut: fd, reference: ref,
    };
    writeFileSync(join(out, 'eval.json'), JSON.stringify(report, null, 2));
    console.log(formatJudgeResult(judge, ref));
    if (agreement !== undefined) {
      console.log(`the judge's class is the requested class for ${(100 * agreement).toFixed(1)}% of samples ` +
        `(real held-out images: the judge's accuracy, ${(100 * ref.heldOutAccuracy).toFixed(1)}%)`);
    }
    console.log(`Fréchet distance (judge features) to the ${ref.nHeldOut} held-out images: samples ${fd.toFixed(2)}; ` +
      `${ref.trainSubsetSize} real training images ${ref.trainSubsetVsHeldOut.toFixed(2)} (held-out halves ${ref.heldOutHalves.toFixed(2)})`);
  }
  console.log(`sampling: ${seconds.toFixed(1)} s; report → ${join(out, 'eval.json')}`);
}

// ---------------------------------------------------------------- info

function info(f: { checkpoint: string }): void {
  const { dir, json } = verifyCheckpoint(f.checkpoint);
  console.log(JSON.stringify({
    checkpoint: join(dir, CHECKPOINT_JSON), step: json.state.step, trainingMinutes: +(json.state.elapsedSec / 60).toFixed(1),
    parameters: unetParameterCount(json.config.model.config), dataset: json.config.dataset, model: json.config.model, schedule: json.config.schedule,
    objective: json.config.objective, trainer: json.config.trainer, ...(json.config.distilled ? { distilled: json.config.distilled } : {}),
    ...(json.config.clusters ? { clusters: {
      count: json.config.clusters.sizes.length, guidance: json.config.clusters.guidance, seed: json.config.clusters.seed,
      ...(json.config.clusters.firstClass ? { firstClass: json.config.clusters.firstClass, share: json.config.clusters.share } : {}),
    } } : {}),
    files: json.files,
  }, null, 2));
}

// ---------------------------------------------------------------- program

const DEFAULT_STEPS = 2000;
/** Guidance of a cluster-conditioned model's samples (bench/quality.ts, docs/results.md). */
const CLUSTER_GUIDANCE = 2.5;
/** EMA decay of a cluster-conditioned run (bench/quality.ts: 91.1% confident against 88.5% at 0.999, SDE sampler). */
const CLUSTER_EMA = 0.995;
/** With labels: the share of training images given their cluster instead of their label. */
const DEFAULT_CLUSTER_SHARE = 0.2;
const DEFAULT_WARMUP = 200;

export function program(): Command {
  // Set before the subcommands exist, so they inherit them: a parse error throws (main() exits 2) instead
  // of commander calling process.exit(1) itself.
  const p = new Command('diffuse').description('Diffusion models: train, sample and inspect.').showHelpAfterError(false)
    .exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
  p.command('train').description('Train a diffusion model (default: class-conditional tiny UNet on MNIST).')
    .option('--dataset <name>', "'mnist', 'fashion-mnist', 'emoji' (color, 32×32; needs the npm package emoji-datasource-twitter) or a folder of PNG/JPEG images", 'mnist')
    .option('--preset <name>', `model preset (${Object.keys(UNET_PRESETS).join(', ')})`, 'tiny')
    .option('--norm-groups <n>', 'GroupNorm groups of every norm (must divide each norm\'s channels; presets: tiny 8, small 16, base 32)', int('--norm-groups', 1, UNET_LIMITS.fields.normGroups))
    .option('--image-size <n>', 'image size for a folder dataset', int('--image-size', 8, CLI_LIMITS.imageSize))
    .option('--schedule <kind>', 'noise schedule: linear, cosine, sigmoid, scaledLinear', 'linear')
    .option('--prediction <type>', 'what the model predicts: epsilon, x0, v', 'epsilon')
    .option('--variance <type>', 'fixedLarge, fixedSmall or learnedRange (hybrid loss)', 'fixedLarge')
    .option('--min-snr <gamma>', 'min-SNR-γ loss weighting', num('--min-snr', 0))
    .option('--steps <n>', 'optimizer steps', int('--steps', 1, TRAIN_LIMITS.steps), DEFAULT_STEPS)
    .option('--time <budget>', 'stop after this long (e.g. 25m), checkpointing', duration)
    .option('--batch-size <n>', 'batch size', int('--batch-size', 1, TRAIN_LIMITS.batchSize), 64)
    .option('--accumulate <n>', 'micro-batches per step (gradient accumulation)', int('--accumulate', 1, TRAIN_LIMITS.accumulate), 1)
    .option('--gradient-checkpointing', 'keep only each residual block\'s inputs for backward and run it again there: less memory, ~40% more time a step, the same result up to float rounding')
    .option('--lr <lr>', 'peak learning rate', num('--lr', 0, 1), 2e-3)
    .option('--warmup <n>', `warmup steps (default ${DEFAULT_WARMUP}, or a tenth of a shorter run)`, int('--warmup', 0, TRAIN_LIMITS.steps))
    .option('--ema <decay>', 'EMA decay (default 0.999; 0.995 on k-means clusters without labels, the shorter runs it is measured on)', num('--ema', 0, 1))
    .option('--grad-clip <norm>', 'clip the gradient norm (0: off)', num('--grad-clip', 0), 1)
    .option('--seed <n>', 'random seed', int('--seed', 0, 2 ** 32 - 1), 0)
    .option('--out <dir>', 'output folder', 'runs/mnist')
    .option('--sample-every <n>', 'sample grid every N steps (0: never)', int('--sample-every', 0), 1000)
    .option('--checkpoint-every <n>', 'checkpoint every N steps', int('--checkpoint-every', 0), 250)
    .option('--no-class-cond', 'train without labels (on k-means clusters unless --clusters 0)')
    .option('--clusters <k>', 'condition on k k-means clusters of the images; samples without a class draw a cluster by its size ' +
      'and are guided (default without labels: one per 50 images, at most 100, as the classes; with labels: one per 100 images, at most 50, ' +
      'after the labels; 0: none, a plain unconditional or label-conditional model)', int('--clusters', 0, UNET_LIMITS.maxClasses))
    .option('--cluster-share <p>', `with labels and clusters: the fraction of training images given their cluster instead of their label (default ${DEFAULT_CLUSTER_SHARE})`, num('--cluster-share', 0, 1))
    .option('--cond-dropout <p>', 'fraction of labels replaced by the null class (classifier-free guidance, unconditional sampling)', num('--cond-dropout', 0, 1), 0.1)
    .option('--limit <n>', 'use only the first N training images', int('--limit', 1, 1e9))
    .option('--resume', 'continue the run in --out', false)
    .option('--force', 'start over in a non-empty --out', false)
    .addOption(new Option('--backend <name>', 'js, native, wasm or webgpu (default: the fastest that starts: native → wasm → js)'))
    .action(async (o) => train(o as TrainFlags));
  p.command('distill').description('Distil a trained model to sample in few steps (progressive distillation, Salimans & Ho 2022).')
    .requiredOption('--checkpoint <path>', 'the teacher: a training run folder (or a distilled student)')
    .option('--out <dir>', 'output folder (one student per round: steps-4, steps-2, …)', 'runs/mnist-fast')
    .option('--teacher-steps <n>', "the teacher's DDIM steps, a power of two (default 8; a student's own)", int('--teacher-steps', 2, 512))
    .option('--to <n>', 'the last student\'s steps', int('--to', 1, 256), 1)
    .option('--guidance <scale>', 'classifier-free guidance folded into the students (default 2 for a conditional model)', num('--guidance', 0, 100))
    .option('--iterations <n>', 'optimizer steps per round', int('--iterations', 1, TRAIN_LIMITS.steps), 400)
    .option('--batch-size <n>', 'batch size', int('--batch-size', 1, TRAIN_LIMITS.batchSize), 32)
    .option('--lr <lr>', 'peak learning rate (cosine to a tenth)', num('--lr', 0, 1), 5e-4)
    .option('--ema <decay>', 'EMA decay', num('--ema', 0, 1), 0.995)
    .option('--seed <n>', 'random seed', int('--seed', 0, 2 ** 32 - 1), 0)
    .option('--sample-every <n>', 'sample grid every N steps (0: never)', int('--sample-every', 0), 0)
    .option('--checkpoint-every <n>', 'checkpoint every N steps', int('--checkpoint-every', 0), 100)
    .option('--resume', 'keep finished rounds in --out and continue the interrupted one', false)
    .option('--force', 'start over in a non-empty --out', false)
    .addOption(new Option('--backend <name>', 'js, native, wasm or webgpu'))
    .action(async (o) => distill(o as DistillFlags));
  p.command('sample').description('Sample images from a checkpoint.')
    .requiredOption('--checkpoint <path>', 'run folder (or its checkpoint.json), or a diffusers pipeline or UNet2DModel folder')
    .option('--sampler <kind>', `${SAMPLER_KINDS.join(', ')} (default dpmSolverPlusPlus; ddim in its own steps for a distilled checkpoint)`)
    .option('--sde', "DPM-Solver++'s stochastic (SDE) variant (the default when clusters are drawn and no --sampler is named)")
    .option('--no-sde', 'the ODE DPM-Solver++ even where clusters are drawn')
    .option('--steps <n>', 'sampler steps', int('--steps', 1, TRAIN_LIMITS.samplerSteps))
    .option('--count <n>', 'number of samples', int('--count', 1, CLI_LIMITS.count), 64)
    .option('--seed <n>', 'random seed', int('--seed', 0, 2 ** 32 - 1), 0)
    .option('--class <n>', 'class label (conditional models; default: cycle through the labelled classes)', int('--class', 0, 1e6))
    .option('--unconditional', 'sample without a class: clusters drawn by size where the model has them, else the null class', false)
    .option('--guidance <scale>', "classifier-free guidance scale (1: none; default 1, or the clusters' own for cluster classes)", num('--guidance', 0, 100))
    .option('--weights <which>', 'ema or model', 'ema')
    .option('--out <dir>', 'output folder', 'runs/samples')
    .option('--single', 'also write one PNG per sample', false)
    .option('--strip', 'also write a strip of the predicted x_0 over the steps (first sample)', false)
    .addOption(new Option('--backend <name>', 'js, native, wasm or webgpu (default: native → wasm → js)'))
    .action(async (o) => sample(o as SampleFlags));
  p.command('forward').description('Show the forward (noising) process on an image or a dataset sample.')
    .option('--image <file>', 'a PNG or JPEG image (default: a dataset sample)')
    .option('--dataset <name>', 'dataset for the sample', 'mnist')
    .option('--index <n>', 'dataset index (test split)', int('--index', 0, 1e9), 0)
    .option('--schedule <kind>', 'linear, cosine, sigmoid, scaledLinear', 'linear')
    .option('--t <list>', 'comma-separated timesteps', '0,50,100,200,300,500,700,999')
    .option('--seed <n>', 'noise seed', int('--seed', 0, 2 ** 32 - 1), 0)
    .option('--out <dir>', 'output folder', 'runs/forward')
    .action((o) => forward(o));
  p.command('eval').description("Judge samples with the dataset's classifier (mnist, emoji): confidence, classes, Fréchet distance.")
    .requiredOption('--checkpoint <path>', 'run folder (or its checkpoint.json)')
    .option('--sampler <kind>', `${SAMPLER_KINDS.join(', ')} (default dpmSolverPlusPlus; ddim in its own steps for a distilled checkpoint)`)
    .option('--sde', "DPM-Solver++'s stochastic (SDE) variant (the default when clusters are drawn and no --sampler is named)")
    .option('--no-sde', 'the ODE DPM-Solver++ even where clusters are drawn')
    .option('--steps <n>', 'sampler steps', int('--steps', 1, TRAIN_LIMITS.samplerSteps))
    .option('--count <n>', 'number of samples', int('--count', 1, CLI_LIMITS.count), 1000)
    .option('--seed <n>', 'random seed', int('--seed', 0, 2 ** 32 - 1), 0)
    .option('--guidance <scale>', "classifier-free guidance scale (1: none; default 1, or the clusters' own when they are drawn)", num('--guidance', 0, 100))
    .option('--unconditional', 'sample without a class: clusters drawn by size where the model has them, else the null class', false)
    .option('--null-class', 'sample the null class of a conditional model (no guidance)', false)
    .option('--out <dir>', 'output folder', 'runs/eval')
    .addOption(new Option('--backend <name>', 'js, native, wasm or webgpu (webgpu samples; the judge runs on the CPU)'))
    .action(async (o) => evaluate(o as EvalFlags));
  p.command('info').description("A checkpoint's config and parameter count, after checking every file it names.")
    .requiredOption('--checkpoint <path>', 'run folder (or its checkpoint.json)')
    .action((o) => info(o));
  registerServeCommands(p);
  registerExportCommands(p);
  return p;
}

export async function main(argv = process.argv): Promise<number> {
  const p = program();
  try {
    await p.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0; // 130 / 143 after a signal
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    // Exit codes (docs/reliability.md): 2 bad usage (commander's parse errors included), 1 a runtime failure,
    // 3 a training run that diverged, 130 / 143 a run stopped by SIGINT / SIGTERM after saving.
    if (err.code?.startsWith('commander.')) return 2;
    if (err instanceof NonFiniteLossError) { console.error(`diffuse: ${err.message}`); return 3; }
    console.error(`diffuse: ${(err.message || String(err)).split('\n')[0]}`);
    if (process.env.DIFFUSE_DEBUG) console.error(err.stack);
    return err instanceof UsageError ? 2 : 1;
  }
}
