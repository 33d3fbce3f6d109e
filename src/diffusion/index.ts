/** diffuse/diffusion: schedules, the forward and reverse processes, losses, the variational bound and samplers. */
export {
  NoiseSchedule, makeSchedule, scheduleFromJSON, normalizeScheduleConfig, betasFor, rescaleZeroTerminalSnr,
} from './schedules.js';
export type {
  ScheduleConfig, ScheduleKind, LinearScheduleConfig, ScaledLinearScheduleConfig, CosineScheduleConfig, SigmoidScheduleConfig,
  CustomScheduleConfig,
} from './schedules.js';
export type { TimeLike } from './util.js';
export { qStep, qStepMeanVariance, qSample, qMeanVariance, qPosteriorMeanVariance, qPosterior } from './forward.js';
export type { MeanVariance, PosteriorMeanVariance } from './forward.js';
export {
  PREDICTION_TYPES, predictStartFromNoise, predictNoiseFromStart, predictStartFromV, predictNoiseFromV, velocity, convertPrediction, score,
} from './parameterization.js';
export type { PredictionType } from './parameterization.js';
export { VARIANCE_TYPES, pMeanVariance, pSample, splitModelOutput, learnedRangeLogVariance } from './reverse.js';
export type { VarianceType, ReverseOptions, PMeanVariance } from './reverse.js';
export { applyX0Clip, dynamicThreshold } from './thresholding.js';
export type { X0Clip } from './thresholding.js';
export { trainingLoss, minSnrWeights } from './losses.js';
export type { TrainingLossOptions, TrainingLoss, LossWeighting } from './losses.js';
export { normalKl, approxStandardNormalCdf, discretizedGaussianLogLikelihood, priorBpd, vlbTerm, bitsPerDim, meanFlat } from './vlb.js';
export type { BpdOptions, BpdResult } from './vlb.js';
export { classifierFreeGuidance } from './guidance.js';
export type { GuidanceOptions } from './guidance.js';
export { sample, spacedTimesteps, SPACINGS } from './samplers/common.js';
export type { Model, SamplerEvent, SamplerRun, SampleOptions, InpaintOptions, Img2ImgOptions, Spacing } from './samplers/common.js';
export { ddpm } from './samplers/ddpm.js';
export type { DdpmOptions } from './samplers/ddpm.js';
export { ddim, ddimInvert } from './samplers/ddim.js';
export type { DdimOptions, DdimInversionOptions } from './samplers/ddim.js';
export { dpmSolverPlusPlus, sampleDpmPp2M, sampleDpmPp2MSde } from './samplers/dpmSolverPlusPlus.js';
export type { DpmSolverOptions } from './samplers/dpmSolverPlusPlus.js';
export { euler, heun, sampleEuler, sampleHeun } from './samplers/karras.js';
export type { KarrasSamplerOptions, ChurnOptions } from './samplers/karras.js';
export { predictorCorrector } from './samplers/predictorCorrector.js';
export type { PredictorCorrectorOptions } from './samplers/predictorCorrector.js';
export { denoiserFromModel, karrasSigmas, sigmaGrid } from './samplers/denoiser.js';
export type { Denoiser, DenoiserOptions, SigmaSpacing, SigmaGridOptions, SigmaStep, SigmaSamplerHooks } from './samplers/denoiser.js';
export { runSampler, SAMPLER_KINDS, SAMPLERS, normalizeSamplerConfig, samplerSteps } from './samplers/index.js';
export type { SamplerEntry } from './samplers/index.js';
export type { SamplerConfig, SamplerKind } from './samplers/index.js';
export { parseDiffusersScheduler, diffusersGrid, diffusersSamplerConfig, diffusersSchedule, diffusersTables, parsePythonJson, DIFFUSERS_SCHEDULERS } from './diffusers.js';
export type { DiffusersScheduler, DiffusersSchedulerClass, DiffusersGrid, DiffusersTables } from './diffusers.js';
export { roundHalfEven } from './samplers/common.js';
export type { MultistepOptions } from './samplers/dpmSolverPlusPlus.js';
export { distillationStep, teacherDdimStep, progressiveDistillationTarget, progressiveDistillationLoss } from './distillation.js';
export type { DistillTeacher } from './distillation.js';
