/**
 * Progressive distillation as training runs (the math: src/diffusion/distillation.ts). Each round is a Trainer
 * whose loss is the distillation loss, so a round has the trainer's AdamW, EMA, clipping, checkpoints, resume
 * and Ctrl-C; its checkpoint is an ordinary run checkpoint (v-prediction) with a `distilled` record, which
 * `sample` and `eval` read to sample with DDIM in the distilled number of steps.
 */
import { Tensor, randn, tensor } from '../tensor/index.js';
import { type DistillTeacher, distillationStep, progressiveDistillationLoss } from '../diffusion/distillation.js';
import { qSample } from '../diffusion/forward.js';
import { classifierFreeGuidance } from '../diffusion/guidance.js';
import type { ImageDataset } from '../data/dataset.js';
import type { StateDict } from '../nn/module.js';
import type { UNet } from '../nn/unet.js';
import { type Checkpoint, type RunConfig, Trainer, modelFunction } from './trainer.js';

/** What a distilled checkpoint records of how it was made. */
export interface DistilledRecord {
  method: 'progressive';
  /** DDIM steps the student samples in (trailing spacing). */
  steps: number;
  /** DDIM steps of the teacher it learned from (2 × steps). */
  teacherSteps: number;
  /** Classifier-free guidance folded in (1: none); sample the student without further guidance. */
  guidance: number;
  /** The teacher's checkpoint folder, as given. */
  teacher: string;
}

export interface DistillRoundOptions {
  /** The student's DDIM steps (the teacher samples in twice as many). */
  steps: number;
  /** Optimizer steps of the round. */
  iterations: number;
  batchSize: number;
  lr: number;
  /** Guidance scale of the teacher; a distilled teacher has its own folded in and is not guided again. */
  guidance: number;
  emaDecay: number;
  seed: number;
  checkpointEvery: number;
  sampleEvery: number;
  /** The teacher's checkpoint folder, recorded in the student's config. */
  teacherPath: string;
}

/** The student's run config: the teacher's model, schedule and data; v-prediction; the round's trainer settings. */
export function distillRunConfig(teacher: RunConfig, o: DistillRoundOptions): RunConfig {
  if (teacher.distilled && teacher.distilled.steps !== 2 * o.steps) {
    throw new Error(`distill: the teacher samples in ${teacher.distilled.steps} steps, so its student samples in ${teacher.distilled.steps / 2}, not ${o.steps}`);
  }
  if (teacher.objective.variance === 'learnedRange') throw new Error('distill: a teacher with a learned variance is not supported (its student would carry unused variance channels)');
  return {
    dataset: teacher.dataset,
    ...(teacher.datasetLimit !== undefined ? { datasetLimit: teacher.datasetLimit } : {}),
    model: teacher.model,
    schedule: teacher.schedule,
    objective: { prediction: 'v', variance: teacher.objective.variance, weighting: { kind: 'none' } },
    trainer: {
      ...teacher.trainer,
      steps: o.iterations, batchSize: o.batchSize, accumulate: 1, lr: o.lr, minLr: o.lr * 0.1,
      warmupSteps: Math.min(20, o.iterations), weightDecay: 0, emaDecay: o.emaDecay, seed: o.seed,
      sampleEvery: o.sampleEvery, checkpointEvery: o.checkpointEvery,
      previewSampler: { kind: 'ddim', steps: o.steps },
    },
    distilled: { method: 'progressive', steps: o.steps, teacherSteps: 2 * o.steps, guidance: teacher.distilled?.guidance ?? o.guidance, teacher: o.teacherPath },
    // A student of a cluster-conditioned teacher draws clusters too; the guidance is folded into it.
    ...(teacher.clusters ? { clusters: { ...teacher.clusters, guidance: 1 } } : {}),
  };
}

/** The teacher as the distillation loss reads it: its prediction type, guidance (if any) and the CLI's x̂_0 clip. */
export function distillTeacher(model: UNet, config: RunConfig, guidance: number): DistillTeacher {
  model.eval();
  let fn = modelFunction(model);
  const nc = model.config.numClasses;
  if (nc > 0 && guidance !== 1 && !config.distilled) {
    fn = classifierFreeGuidance(fn, { scale: guidance, nullCond: tensor(new Int32Array([nc]), [1], { dtype: 'int32' }) });
  }
  return { model: fn, prediction: config.objective.prediction, clip: { kind: 'clip', min: -1, max: 1 } };
}

/** One round: a student learning to do in one DDIM step what the teacher does in two. */
export class ProgressiveDistiller extends Trainer {
  constructor(config: RunConfig, dataset: ImageDataset, readonly teacher: DistillTeacher,
    init?: StateDict, resumeFrom?: { dir: string; json: Checkpoint }) {
    if (!config.distilled) throw new Error('ProgressiveDistiller: the run config has no distilled record');
    if (config.objective.prediction !== 'v') throw new Error('ProgressiveDistiller: the student predicts v');
    super(config, dataset, resumeFrom);
    if (!resumeFrom && init) {
      this.model.loadStateDict(init);
      this.ema.reset();
    }
  }

  protected override objectiveLoss(x0: Tensor, cond: Tensor | undefined): Tensor {
    const n = this.config.distilled!.steps, b = x0.shape[0];
    const k = Array.from({ length: b }, () => this.trainGen.int(n));
    const t = k.map((ki) => distillationStep(this.schedule.T, n, ki)[0]);
    const zt = qSample(this.schedule, x0, t, randn(x0.shape, this.trainGen));
    return progressiveDistillationLoss(modelFunction(this.model), this.teacher, this.schedule, zt, n, k, cond);
  }
}
