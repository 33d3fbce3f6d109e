/** Other frameworks' formats: diffusers folders (read and written) and ONNX export. */
export {
  loadDiffusersUNet, loadDiffusersPipeline, saveDiffusersUNet, saveDiffusersPipeline, diffusersFolderKind, DiffusersFolderError,
  pipelineDefaultSteps, sampleDiffusersPipeline,
  MODEL_INDEX, UNET_CONFIG, UNET_WEIGHTS, SCHEDULER_CONFIG,
} from './diffusers.js';
export type { DiffusersPipeline } from './diffusers.js';
