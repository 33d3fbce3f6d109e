/**
 * The diffusion trainer: AdamW with warmup + cosine decay, gradient clipping and accumulation, an EMA of the
 * weights, periodic sample grids, a JSON-lines metrics log with a loss-curve picture, and resumable,
 * crash-safe checkpoints.
 *
 * Reproducibility: every random choice (data order, timesteps, noise, label dropout, dropout masks) comes from
 * generators whose states the checkpoint stores, so a run interrupted and resumed ends with the same weights
 * as an uninterrupted run with the same seed.
 */
import {
  makeSchedule, runSampler, trainingLoss, type NoiseSchedule, type PredictionType, type SamplerConfig,
  type ScheduleConfig, type VarianceType, type LossWeighting, type Model,
} from '../diffusion/index.js';
import { classifierFreeGuidance } from '../diffusion/guidance.js';
import type { ImageDataset } from '../data/dataset.js';
import { drawClusters } from '../data/clusters.js';
import { batchIterator, type Batch, type BatchIteratorState } from '../data/transforms.js';
import { joinPath as join, node } from '../io/files.js';
import { UNet, unetConfigFromJSON, unetParameterCount, type UNetConfig } from '../nn/unet.js';
import {
  CancelledError, Generator, RollingScope, Tensor, cancellable, concat, noGrad, randn, scope, tensor, toHost,
} from '../tensor/index.js';
import {
  CHECKPOINT_JSON, CheckpointError, checkpointDir, loadCheckpointGroup, readCheckpointJson, saveCheckpoint, type CheckpointJson,
  type TensorGroup,
} from './checkpoint.js';
import { validateRunConfig, validateTrainerState } from './run-config.js';
import { EMA } from './ema.js';
import type { DistilledRecord } from './distill.js';
import { AdamW, clipGradNorm, warmupCosine } from './optim.js';

// PNG writing (pngjs) is loaded when a grid or plot is written, so that the trainer imports in a browser; the
// specifiers are variables so that bundlers leave them out.
const PNG_MODULE = '../io/png.js', PLOT_MODULE = '../io/plot.js';

/** Lets the host run (progress output, signals, a page's events) between steps: setImmediate in Node. */
const yieldToHost = () => new Promise<void>((resolve) => {
  if (typeof setImmediate === 'function') setImmediate(resolve);
  else setTimeout(resolve, 0);
});

export interface ObjectiveConfig {
  prediction: PredictionType;
  variance: VarianceType;
  weighting: LossWeighting;
}

export interface TrainerConfig {
  /** Optimizer steps to run in total. */
  steps: number;
  batchSize: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  accumulate: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  gradClip: number;
  emaDecay: number;
  /** Probability of replacing a label by the null class (classifier-free guidance training). */
  condDropout: number;
  seed: number;
  /** Sample grid every N steps (0: never). */
  sampleEvery: number;
  /** Checkpoint every N steps (0: only at the end). */
  checkpointEvery: number;
  /** The sampler for preview grids. */
  previewSampler: SamplerConfig;
  previewCount: number;
}

/** Everything a checkpoint's JSON holds as configuration. */
export interface RunConfig {
  dataset: string;
  /** Only the first N training images (undefined: all). */
  datasetLimit?: number;
  model: { kind: 'unet'; preset?: string; config: UNetConfig };
  schedule: ScheduleConfig;
  objective: ObjectiveConfig;
  trainer: TrainerConfig;
  /** Set on a distilled student (src/train/distill.ts): sample it with DDIM in `steps` steps. */
  distilled?: DistilledRecord;
  /** Set when the model's classes are k-means clusters of the images, not labels (src/data/clusters.ts). */
  clusters?: ClusterRecord;
}

/**
 * A cluster-conditioned model: (some of) its classes are k-means clusters of the training images, found
 * without labels. Unconditional samples draw a cluster by its size and apply classifier-free guidance at
 * `guidance`. Without labels the clusters are all of the model's classes; with labels they follow them
 * (classes firstClass…firstClass+k−1), and training gives a fraction `share` of the images their cluster's
 * class instead of their label, so that the model samples well without a label too.
 */
export interface ClusterRecord {
  /** Training images per cluster (the model's class firstClass + c is cluster c). */
  sizes: number[];
  /** The default guidance scale for sampling without a class (1 in a distilled student: its teacher's is folded in). */
  guidance: number;
  /** The k-means seed: the clusters are recomputed from the images, not stored. */
  seed: number;
  /** The class of cluster 0: the number of labelled classes before the clusters (0 or absent: no labels). */
  firstClass?: number;
  /** With labels: the fraction of training images given their cluster's class instead of their label. */
  share?: number;
}

/** The classes of a model that are labels, asked for in turn by conditional sampling (0 for a model without labels). */
export function labelledClassCount(numClasses: number, clusters?: ClusterRecord): number {
  return clusters ? clusters.firstClass ?? 0 : numClasses;
}

/**
 * What to sample from a model with `numClasses` classes (and its cluster record): class `cls`, or the labelled
 * classes in turn; without a class (a model without labels, `unconditional`), its clusters drawn by size
 * (sampleImages' `clusters`) where it has them, else the null class, also with `nullClass`. `sample`, `eval`,
 * the service and the preview grids all ask this.
 */
export function sampledClasses(numClasses: number, clusters: ClusterRecord | undefined, count: number,
  o: { cls?: number; unconditional?: boolean; nullClass?: boolean } = {}): { classes?: number[]; clusters?: ClusterRecord } {
  const labelled = labelledClassCount(numClasses, clusters);
  if (numClasses === 0) return {};
  if (o.cls === undefined && (o.nullClass || o.unconditional || labelled === 0)) return clusters && !o.nullClass ? { clusters } : {};
  return { classes: Array.from({ length: count }, (_, i) => o.cls ?? i % labelled) };
}

export interface TrainerState {
  step: number;
  elapsedSec: number;
  trainGen: (number | null)[];
  dropoutGen: (number | null)[];
  data: BatchIteratorState;
  emaUpdates: number;
  optimizerSteps: Record<string, number>;
  optimizerHyper: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };
  lastLoss: number | null;
}

export interface StepInfo {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  itPerSec: number;
  elapsedSec: number;
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

export interface TrainOptions {
  outDir: string;
  /** Continue the run in outDir from its checkpoint. */
  resume?: boolean;
  /** Stop (and checkpoint) after this many seconds of this session. */
  timeBudgetSec?: number;
  onStep?: (info: StepInfo) => void;
  onEvent?: (message: string) => void;
  /** Polled after each step; when true the trainer checkpoints and returns (Ctrl-C). */
  shouldStop?: () => boolean;
}

export interface TrainResult {
  step: number;
  stoppedEarly: boolean;
  elapsedSec: number;
  lastLoss: number | null;
}

export type Checkpoint = CheckpointJson<RunConfig, TrainerState>;

/** Builds the model a run config describes. */
export function buildModel(cfg: RunConfig, seed = cfg.trainer.seed): UNet {
  if (cfg.model.kind !== 'unet') throw new Error(`unknown model kind '${String(cfg.model.kind)}'`);
  return new UNet(unetConfigFromJSON(cfg.model.config), { seed });
}

/** The function (x_t, t, class) → output that the diffusion layer sees. */
export function modelFunction(model: UNet): Model {
  return (xt, t, cond) => model.forward(xt, t, cond);
}

/**
 * A batch's classes: a fraction `p` replaced by the null class (index numClasses) and, for a model with labels
 * and clusters, a further fraction `share` by the image's cluster class (firstClass + its cluster). One uniform
 * per image either way, so a run without clusters draws the same stream as before they existed.
 */
export function trainingClasses(batch: Batch, numClasses: number, p: number, gen: Generator, clusters?: { of: Int32Array; firstClass: number; share: number }): Tensor {
  const src = batch.y.data as Int32Array, out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const u = gen.uniform();
    out[i] = u < p ? numClasses : clusters && u < p + clusters.share ? clusters.firstClass + clusters.of[batch.indices[i]] : src[i];
  }
  return tensor(out, [src.length], { dtype: 'int32' });
}

/**
 * Keeps the metrics lines of steps up to `step` (the resumed checkpoint's): the lines a killed run wrote
 * after its last checkpoint are written again when those steps are re-run. Torn lines go too.
 */
function keepMetricsUpTo(path: string, step: number): void {
  const { existsSync, readFileSync, writeFileSync } = node('keepMetricsUpTo').fs;
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8').split('\n').filter((line) => {
    try {
      const row = JSON.parse(line) as { step?: unknown };
      return typeof row.step === 'number' && row.step <= step;
    } catch {
      return false;
    }
  });
  writeFileSync(path, kept.length ? `${kept.join('\n')}\n` : '');
}

const groupFromEntries = (m: Map<string, { shape: readonly number[]; data: Float32Array }>) =>
  new Map([...m].map(([k, v]) => [k, { dtype: 'F32' as const, shape: [...v.shape], data: v.data }]));

export class Trainer {
  readonly model: UNet;
  readonly schedule: NoiseSchedule;
  readonly optimizer: AdamW;
  readonly ema: EMA;
  readonly trainGen: Generator;
  private readonly data: ReturnType<typeof batchIterator>;
  private readonly lrAt: (step: number) => number;
  private readonly clusterClasses?: { of: Int32Array; firstClass: number; share: number };
  step = 0;
  private elapsedBefore = 0;
  private lastLoss: number | null = null;

  constructor(readonly config: RunConfig, readonly dataset: ImageDataset, resumeFrom?: { dir: string; json: Checkpoint }) {
    const t = config.trainer;
    this.model = buildModel(config);
    this.schedule = makeSchedule(config.schedule);
    this.optimizer = new AdamW(this.model, {
      lr: t.lr, weightDecay: t.weightDecay,
      // No weight decay on biases and norm gains, as is usual.
      decay: (name, p) => p.ndim > 1 && !name.includes('norm'),
    });
    this.ema = new EMA(this.model, { decay: t.emaDecay, warmup: true });
    this.trainGen = new Generator(t.seed * 7919 + 1);
    this.data = batchIterator(dataset, t.batchSize, new Generator(t.seed * 7919 + 2));
    const c = config.clusters;
    if (c?.firstClass) {
      if (dataset.clusterOf?.length !== dataset.n) throw new Error('Trainer: a model with labels and clusters needs the dataset\'s clusterOf (src/data/clusters.ts withClusters)');
      this.clusterClasses = { of: dataset.clusterOf, firstClass: c.firstClass, share: c.share ?? 0 };
    }
    this.lrAt = warmupCosine({ baseLr: t.lr, warmupSteps: t.warmupSteps, totalSteps: t.steps, minLr: t.minLr });
    if (resumeFrom) this.restore(resumeFrom.dir, resumeFrom.json);
  }

  private restore(dir: string, json: Checkpoint): void {
    const s = json.state;
    const group = (role: string) => loadCheckpointGroup(dir, json as CheckpointJson, role, { maxBytes: weightFileBound(this.config, role) });
    namingFile(dir, json, 'model', () => this.model.loadStateDict(group('model')));
    namingFile(dir, json, 'optimizer', () => this.optimizer.loadStateDict({ hyper: s.optimizerHyper, steps: s.optimizerSteps, tensors: group('optimizer') }));
    namingFile(dir, json, 'ema', () => this.ema.loadStateDict({ decay: this.config.trainer.emaDecay, warmup: true, numUpdates: s.emaUpdates, tensors: group('ema') }));
    this.trainGen.setState(s.trainGen);
    this.model.dropoutGen.setState(s.dropoutGen);
    try {
      this.data.setState(s.data);
    } catch (e) {
      throw new CheckpointError(`${join(dir, CHECKPOINT_JSON)}: field state.data: ${(e as Error).message}`);
    }
    this.step = s.step;
    this.elapsedBefore = s.elapsedSec;
    this.lastLoss = s.lastLoss;
  }

  /**
   * restore's twin for weight groups already read (the browser reads them from files the user gives it; its
   * errors name tensors, not files). With `keepDataOrder` false the data order restarts (another data set).
   */
  restoreState(s: TrainerState, groups: Record<'model' | 'optimizer' | 'ema', Map<string, { shape: number[]; data: Float32Array }>>,
    keepDataOrder = true): void {
    this.model.loadStateDict(groups.model);
    this.optimizer.loadStateDict({ hyper: s.optimizerHyper, steps: s.optimizerSteps, tensors: groups.optimizer });
    this.ema.loadStateDict({ decay: this.config.trainer.emaDecay, warmup: true, numUpdates: s.emaUpdates, tensors: groups.ema });
    this.trainGen.setState(s.trainGen);
    this.model.dropoutGen.setState(s.dropoutGen);
    if (keepDataOrder) this.data.setState(s.data);
    this.step = s.step;
    this.elapsedBefore = s.elapsedSec;
    this.lastLoss = s.lastLoss;
  }

  /** Writes the checkpoint for the current step (weights and optimizer state read back from a device first). */
  async saveCheckpoint(outDir: string, elapsedSec: number): Promise<void> {
    const { state, groups } = await this.checkpointContents(elapsedSec);
    saveCheckpoint(outDir, this.step, this.config, state, groups);
  }

  private checkpointParts(elapsedSec: number, modelState: Map<string, { shape: readonly number[]; data: Float32Array }>,
    opt: Awaited<ReturnType<AdamW['stateDict']>>, ema: Awaited<ReturnType<EMA['stateDict']>>) {
    const state: TrainerState = {
      step: this.step, elapsedSec, trainGen: this.trainGen.getState(), dropoutGen: this.model.dropoutGen.getState(),
      data: this.data.getState(), emaUpdates: ema.numUpdates, optimizerSteps: opt.steps, optimizerHyper: opt.hyper,
      lastLoss: this.lastLoss,
    };
    return { state, groups: { model: groupFromEntries(modelState), ema: groupFromEntries(ema.tensors), optimizer: groupFromEntries(opt.tensors) } };
  }

  /**
   * What saveCheckpoint would write for the current step, in memory (no file system; read back from a device
   * first): the trainer state and the model, EMA and optimizer tensors. The browser's trainer encodes it with
   * encodeCheckpointFiles and checkpointJsonBytes.
   */
  async checkpointContents(elapsedSec: number): Promise<{ config: RunConfig; state: TrainerState; groups: Record<string, TensorGroup> }> {
    const model = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const [name, p] of this.model.namedParameters()) model.set(name, { shape: [...p.shape], data: Float32Array.from(await p.read()) });
    const parts = this.checkpointParts(elapsedSec, model, await this.optimizer.stateDict(), await this.ema.stateDict());
    return { config: this.config, ...parts };
  }


  /**
   * The forward and backward passes of one step, cancellable between kernels (a signal, see
   * src/train/interrupt.ts). A cancelled step leaves no trace: the random streams and the data order go
   * back to where the step began and the gradients are dropped, so the state is that of the last completed
   * step and a checkpoint of it resumes exactly.
   */
  private passes(fn: () => void): void {
    const before = { train: this.trainGen.getState(), dropout: this.model.dropoutGen.getState(), data: this.data.getState() };
    try {
      cancellable(fn);
    } catch (e) {
      if (e instanceof CancelledError) {
        this.trainGen.setState(before.train);
        this.model.dropoutGen.setState(before.dropout);
        this.data.setState(before.data);
        this.optimizer.zeroGrad();
      }
      throw e;
    }
  }

  /** The loss of the next micro-batch: draws its images, labels (some dropped to the null class), timesteps and noise. */
  private microBatchLoss(): Tensor {
    const t = this.config.trainer, numClasses = this.model.config.numClasses;
    const batch = this.data.nextBatch();
    const cond = numClasses > 0 ? trainingClasses(batch, numClasses, t.condDropout, this.trainGen, this.clusterClasses) : undefined;
    return this.objectiveLoss(batch.x, cond);
  }

  /** The scalar loss of a batch of images (and labels, some null); the diffusion objective of the config, or a
   *  subclass's own (distillation: src/train/distill.ts). Draws its timesteps and noise from trainGen. */
  protected objectiveLoss(x0: Tensor, cond: Tensor | undefined): Tensor {
    const obj = this.config.objective;
    return trainingLoss(modelFunction(this.model), this.schedule, x0, {
      prediction: obj.prediction, variance: obj.variance, weighting: obj.weighting, cond, gen: this.trainGen,
    }).loss;
  }

  /**
   * One optimizer step over `accumulate` micro-batches; returns the mean loss and the gradient norm. The whole
   * step (forward, backward, clipping, AdamW, EMA) runs in one scope that releases its intermediates, and the
   * loss and gradient norm are read once at the end (at once on the CPU; on a GPU the device never waits for
   * the host mid-step). A non-finite loss or norm is detected after the update (the step's weights are
   * discarded with the run; the last checkpoint is kept).
   */
  async trainStep(): Promise<{ loss: number; gradNorm: number; lr: number }> {
    const t = this.config.trainer;
    const lr = this.lrAt(this.step);
    this.model.train();
    const { losses, norm } = scope(() => {
      const losses: Tensor[] = [];
      this.passes(() => {
        for (let micro = 0; micro < t.accumulate; micro++) {
          const loss = this.microBatchLoss();
          losses.push(loss);
          (t.accumulate > 1 ? loss.mul(1 / t.accumulate) : loss).backward();
        }
      });
      const norm = clipGradNorm(this.model, t.gradClip > 0 ? t.gradClip : Infinity);
      this.optimizer.step(lr);
      this.optimizer.zeroGrad();
      this.ema.update();
      return { losses, norm };
    });
    const values = await Promise.all([...losses, norm].map(async (x) => (await x.read())[0]));
    for (const x of [...losses, norm]) x.dispose();
    const gradNorm = values.pop()!;
    values.forEach((value, micro) => {
      if (!Number.isFinite(value)) {
        throw new NonFiniteLossError(`training loss is ${value} at step ${this.step + 1} (micro-batch ${micro + 1}): stopping; the last checkpoint is kept`);
      }
    });
    if (!Number.isFinite(gradNorm)) {
      throw new NonFiniteLossError(`gradient norm is ${gradNorm} at step ${this.step + 1}: stopping; the last checkpoint is kept`);
    }
    this.step++;
    this.lastLoss = values.reduce((a, b) => a + b, 0) / t.accumulate;
    return { loss: this.lastLoss, gradNorm, lr };
  }

  /** Samples a preview grid with the EMA weights (labelled classes in turn; clusters drawn without labels). */
  async sampleGrid(path: string, count = this.config.trainer.previewCount, sampler = this.config.trainer.previewSampler, seed = 1234): Promise<Tensor> {
    const m = this.model;
    // In batches no larger than the training batch: sampling reuses the step's memory instead of adding a peak.
    const out = await this.ema.withWeights(() => sampleImages(m, this.schedule, this.config.objective, {
      count, sampler, seed, batchSize: Math.min(100, this.config.trainer.batchSize),
      ...sampledClasses(m.config.numClasses, this.config.clusters, count),
    }));
    const { saveImageGrid } = await (import(/* @vite-ignore */ PNG_MODULE) as Promise<typeof import('../io/png.js')>);
    saveImageGrid(path, out, { nrow: Math.ceil(Math.sqrt(count)), scale: 2 });
    return out;
  }

  /**
   * The training loop. It yields to the event loop after every step, so signal handlers (Ctrl-C) and timers
   * run while it trains.
   */
  async train(opts: TrainOptions): Promise<TrainResult> {
    const t = this.config.trainer;
    const start = performance.now();
    const elapsed = () => this.elapsedBefore + (performance.now() - start) / 1000;
    const metricsPath = join(opts.outDir, 'metrics.jsonl');
    const { appendFileSync, writeFileSync } = node('Trainer.train').fs;
    if (!opts.resume) writeFileSync(metricsPath, '');
    else keepMetricsUpTo(metricsPath, this.step);
    let stoppedEarly = false, lastSaved = this.step, windowStart = performance.now(), windowSteps = 0;
    while (this.step < t.steps) {
      await yieldToHost();
      if (opts.shouldStop?.()) { stoppedEarly = true; break; }
      let stepResult;
      try {
        stepResult = await this.trainStep();
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
        opts.onEvent?.(`stopped during step ${this.step + 1}; saving step ${this.step}`);
        stoppedEarly = true;
        break;
      }
      const { loss, gradNorm, lr } = stepResult;
      windowSteps++;
      const now = performance.now();
      const itPerSec = (windowSteps * 1000) / Math.max(now - windowStart, 1);
      if (now - windowStart > 20_000) { windowStart = now; windowSteps = 0; }
      const info: StepInfo = { step: this.step, totalSteps: t.steps, loss, lr, gradNorm, itPerSec, elapsedSec: elapsed() };
      appendFileSync(metricsPath, `${JSON.stringify(info)}\n`);
      opts.onStep?.(info);
      if (t.sampleEvery > 0 && this.step % t.sampleEvery === 0) {
        const p = join(opts.outDir, `samples-${String(this.step).padStart(6, '0')}.png`);
        try {
          await cancellable(() => this.sampleGrid(p));
          opts.onEvent?.(`samples → ${p}`);
        } catch (e) {
          if (!(e instanceof CancelledError)) throw e;
        }
      }
      const stop = opts.shouldStop?.() ?? false;
      const outOfTime = opts.timeBudgetSec !== undefined && (performance.now() - start) / 1000 >= opts.timeBudgetSec;
      if ((t.checkpointEvery > 0 && this.step % t.checkpointEvery === 0) || stop || outOfTime || this.step === t.steps) {
        await this.saveCheckpoint(opts.outDir, elapsed());
        await this.plotLoss(opts.outDir);
        lastSaved = this.step;
        opts.onEvent?.(`checkpoint at step ${this.step} → ${join(opts.outDir, CHECKPOINT_JSON)}`);
      }
      if (stop || outOfTime) { stoppedEarly = this.step < t.steps; break; }
    }
    if (lastSaved !== this.step) {
      await this.saveCheckpoint(opts.outDir, elapsed());
      await this.plotLoss(opts.outDir);
      opts.onEvent?.(`checkpoint at step ${this.step} → ${join(opts.outDir, CHECKPOINT_JSON)}`);
    }
    return { step: this.step, stoppedEarly, elapsedSec: elapsed(), lastLoss: this.lastLoss };
  }

  /** loss.png from metrics.jsonl: raw loss and a smoothed curve, log scale. */
  async plotLoss(outDir: string): Promise<void> {
    const { existsSync, readFileSync } = node('Trainer.plotLoss').fs;
    const path = join(outDir, 'metrics.jsonl');
    if (!existsSync(path)) return;
    const rows = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as StepInfo);
    if (rows.length < 2) return;
    const x = rows.map((r) => r.step), y = rows.map((r) => r.loss);
    const { savePlot, emaSmooth } = await (import(/* @vite-ignore */ PLOT_MODULE) as Promise<typeof import('../io/plot.js')>);
    savePlot(join(outDir, 'loss.png'), [
      { name: 'loss', x, y, color: [180, 200, 230] },
      { name: 'smoothed', x, y: emaSmooth(y, 0.02) },
    ], { title: 'training loss', xLabel: 'step', yLabel: 'loss', logY: true });
  }
}

export interface SampleImagesOptions {
  count: number;
  sampler: SamplerConfig;
  seed: number;
  /** Class per sample (conditional models); omitted: the null class, or for a cluster-conditioned model
   *  (`clusters`) a cluster per sample drawn by its size. */
  classes?: number[];
  /** The record of a cluster-conditioned model (RunConfig.clusters): samples without `classes` draw clusters
   *  and use its guidance unless guidanceScale is given. */
  clusters?: ClusterRecord;
  guidanceScale?: number;
  onStep?: (step: number, total: number) => void;
  /** Called with every sampler event's x0 prediction / x_t, for strips of intermediate steps. */
  onFrame?: (step: number, xt: Tensor, x0Pred: Tensor) => void;
  batchSize?: number;
}

/** The sampler run of one batch of sampleImages: noise, labels (and guidance) for samples [start, start + n). */
function batchRun(model: UNet, schedule: NoiseSchedule, objective: ObjectiveConfig, o: SampleImagesOptions, gen: Generator,
  start: number, n: number): ReturnType<typeof runSampler> {
  const c = model.config;
  const noise = randn([n, c.inChannels, c.imageSize, c.imageSize], gen);
  let fn = modelFunction(model);
  let cond: Tensor | undefined;
  if (c.numClasses > 0) {
    const labels = Int32Array.from({ length: n }, (_, i) => o.classes?.[start + i] ?? c.numClasses);
    cond = tensor(labels, [n], { dtype: 'int32' });
    if (o.guidanceScale !== undefined && o.guidanceScale !== 1) {
      fn = classifierFreeGuidance(fn, { scale: o.guidanceScale, nullCond: tensor(new Int32Array(n).fill(c.numClasses), [n], { dtype: 'int32' }) });
    }
  }
  return runSampler(o.sampler, fn, schedule, noise, {
    prediction: objective.prediction, learnedVariance: objective.variance === 'learnedRange', cond, gen,
    clip: { kind: 'clip', min: -1, max: 1 },
  });
}

/**
 * Draws `count` images from a model with a sampler, in batches, without recording gradients; a host tensor
 * on every backend. Each sampler step runs in a rolling scope (its intermediates are released two steps
 * later), so device memory stays flat over any number of steps; tensors passed to onFrame live two steps:
 * copy what you keep (narrow/clone outside the step does).
 */
export async function sampleImages(model: UNet, schedule: NoiseSchedule, objective: ObjectiveConfig, o: SampleImagesOptions): Promise<Tensor> {
  const gen = new Generator(o.seed);
  if (o.clusters && !o.classes) {
    // A stream of its own, so that the noise of sample i is the same as for a class-conditional model.
    const first = o.clusters.firstClass ?? 0;
    o = { ...o, classes: drawClusters(o.clusters.sizes, o.count, new Generator(o.seed * 7919 + 3)).map((c) => first + c), guidanceScale: o.guidanceScale ?? o.clusters.guidance };
  }
  const bs = o.batchSize ?? 100;
  const wasTraining = model.training;
  model.eval();
  const parts: Tensor[] = [];
  try {
    for (let start = 0; start < o.count; start += bs) {
      const run = batchRun(model, schedule, objective, o, gen, start, Math.min(bs, o.count - start));
      const rolling = new RollingScope(2);
      for (;;) {
        const r = rolling.step(() => noGrad(() => run.next()));
        if (r.done) { parts.push(await toHost(rolling.finish(r.value))); break; }
        o.onStep?.(r.value.step, r.value.totalSteps);
        noGrad(() => o.onFrame?.(r.value.step, r.value.xt, r.value.x0Pred));
        // Let the host breathe (progress output, signals) without waiting for the GPU.
        await yieldToHost();
      }
    }
  } finally {
    model.train(wasTraining);
  }
  return parts.length === 1 ? parts[0] : toHost(concat(parts, 0));
}

/** Loads a checkpoint's model with its EMA (default) or raw weights, for sampling. */
export function loadModelFromCheckpoint(path: string, weights: 'ema' | 'model' = 'ema'): { model: UNet; config: RunConfig; schedule: NoiseSchedule; json: Checkpoint } {
  const { dir, json } = readRunCheckpoint(path);
  const model = buildModel(json.config);
  namingFile(dir, json, weights, () => model.loadStateDict(loadCheckpointGroup(dir, json as CheckpointJson, weights, { maxBytes: weightFileBound(json.config, weights) })));
  return { model, config: json.config, schedule: makeSchedule(json.config.schedule), json };
}

/**
 * Reads a training run's checkpoint.json (its folder or the file) and checks it whole: the file records
 * (see readCheckpointJson) and every config field, bounded, before anything is allocated from them. With
 * `resume`, the trainer state too.
 */
export function readRunCheckpoint(path: string, { resume = false } = {}): { dir: string; json: Checkpoint } {
  const dir = checkpointDir(path);
  const json = readCheckpointJson<RunConfig, TrainerState>(path);
  const where = join(dir, CHECKPOINT_JSON);
  try {
    json.config = validateRunConfig(json.config);
    if (resume) json.state = validateTrainerState(json.state, json.config);
  } catch (e) {
    throw new CheckpointError(`${where}: ${(e as Error).message}`);
  }
  for (const role of resume ? ['model', 'ema', 'optimizer'] : []) {
    if (!json.files[role]) throw new CheckpointError(`${where}: field files.${role} is missing (needed to resume)`);
  }
  // The weight files must be large enough for the model the config describes: a small file cannot make us
  // build (and fill with random values) a large model before its size is found to be wrong.
  const params = unetParameterCount(json.config.model.config);
  for (const [role, rec] of Object.entries(json.files)) {
    const least = params * 4 * (role === 'optimizer' ? 2 : 1);
    if (['model', 'ema', 'optimizer'].includes(role) && rec.bytes < least) {
      throw new CheckpointError(`${where}: field files.${role}.bytes is ${rec.bytes}, too small for the ${params} parameters config.model describes`);
    }
  }
  return { dir, json };
}

/** Reads a checkpoint whole: its JSON and state (as readRunCheckpoint with resume) and every weight file (size, checksum, finite values). */
export function verifyCheckpoint(path: string): { dir: string; json: Checkpoint } {
  const { dir, json } = readRunCheckpoint(path, { resume: true });
  for (const role of Object.keys(json.files)) loadCheckpointGroup(dir, json as CheckpointJson, role, { maxBytes: weightFileBound(json.config, role) });
  return { dir, json };
}

/** Runs a load of one weight group; an error that does not name the file yet (a shape mismatch) gets its name. */
function namingFile<T>(dir: string, json: Checkpoint, role: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${join(dir, String(json.files[role]?.file))}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The most bytes a weight file of this run can hold: float32 weights (two moments for the optimizer) and a header. */
function weightFileBound(config: RunConfig, role: string): number {
  return unetParameterCount(config.model.config) * 4 * (role === 'optimizer' ? 2 : 1) + 16 * 2 ** 20;
}
