/** Training utilities: AdamW, gradient clipping, learning-rate schedules, EMA. */
export { AdamW, clipGradNorm, gradNorm, warmupCosine, namedParams } from './optim.js';
export type { AdamWOptions, AdamWHyper, OptimizerState, ParamsLike, WarmupCosineOptions } from './optim.js';
export { EMA } from './ema.js';
export type { EMAOptions, EMAState } from './ema.js';
export * from './checkpoint.js';
export * from './trainer.js';
export * from './run-config.js';
export { watchInterrupts } from './interrupt.js';
export type { InterruptWatch, InterruptOptions } from './interrupt.js';
export { ProgressiveDistiller, distillRunConfig, distillTeacher } from './distill.js';
export type { DistilledRecord, DistillRoundOptions } from './distill.js';
