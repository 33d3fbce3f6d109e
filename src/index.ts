/// <reference types="@webgpu/types" preserve="true" />
/**
 * `diffuse`: the browser-safe API — tensors and autograd, the backends (and the choice among them), nn
 * layers and models, diffusion (schedules, objectives, samplers, guidance), optimizers and EMA, image-batch
 * transforms and synthetic 2-D data, safetensors from and to bytes, and the trainer's in-memory part (steps,
 * sampling, checkpoints as bytes). Nothing here touches files or Node built-ins at import time; the native
 * backend's loader runs only under Node. Files, checkpoints on disk, datasets, PNG, eval and the diffusers and
 * ONNX formats are in `diffuse/node` (src/node.ts).
 */
export * from './tensor/index.js';
export {
  setBackend, getBackend, availableBackends, backendByName, initWebGPU, useBackendAsync, webgpuAvailable, webgpuStats, webgpuSync,
  initWasm, wasmAvailability, wasmInfo,
  withoutFused, KERNELS, PRIMITIVE_NAMES, STORAGE_NAMES, FUSED_NAMES,
} from './backends/index.js';
export type { Backend, BackendName, BackendOptions, Engine } from './backends/index.js';
export { chooseBackend, BACKEND_CHAINS, type BackendChoice, type ChooseOptions } from './backends/choose.js';
export * from './nn/index.js';
export * from './diffusion/index.js';
export { AdamW, clipGradNorm, gradNorm, warmupCosine, namedParams } from './train/optim.js';
export type { AdamWOptions, AdamWHyper, OptimizerState, ParamsLike, WarmupCosineOptions } from './train/optim.js';
export { EMA } from './train/ema.js';
export type { EMAOptions, EMAState } from './train/ema.js';
// The trainer runs in a page too (the explorer's Train view): steps, sampling and checkpoints as bytes. Its
// file functions (run folders, checkpoints on disk) need Node; `diffuse/node` exports the rest of src/train.
export { Trainer, NonFiniteLossError, buildModel, modelFunction, sampleImages } from './train/trainer.js';
export type {
  Checkpoint, ObjectiveConfig, RunConfig, SampleImagesOptions, StepInfo, TrainerConfig, TrainerState,
} from './train/trainer.js';
export { CheckpointError, checkpointJsonBytes, encodeCheckpointFiles } from './train/checkpoint.js';
export type { CheckpointJson, FileRecord, TensorGroup } from './train/checkpoint.js';
export { RunConfigError, TRAIN_LIMITS, validateRunConfig, validateTrainerState } from './train/run-config.js';
export * from './data/dataset.js';
export * from './data/transforms.js';
export * from './data/toy2d.js';
export {
  parseSafetensors, serializeSafetensors, halfToFloat, floatToHalf,
  type SafetensorsDType, type SafetensorsData, type SafetensorsTensor, type SafetensorsContents, type SafetensorsInput,
  type ParseOptions,
} from './io/safetensors.js';
