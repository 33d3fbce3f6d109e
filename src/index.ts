/** diffuse: the public API. The CLI and the web app import only from here. */
export * from './tensor/index.js';
export {
  setBackend, getBackend, availableBackends, backendByName, initWebGPU, useBackendAsync, webgpuAvailable, webgpuStats, webgpuSync,
  withoutFused, KERNELS, PRIMITIVE_NAMES, STORAGE_NAMES, FUSED_NAMES,
} from './backends/index.js';
export type { Backend, BackendName, BackendOptions, Engine } from './backends/index.js';
export { chooseBackend, BACKEND_CHAINS, type BackendChoice, type ChooseOptions } from './backends/choose.js';
export * from './nn/index.js';
export * from './train/index.js';
export * from './diffusion/index.js';
export * from './interop/index.js';
export * from './data/index.js';
export * from './io/safetensors.js';
export * from './io/png.js';
export * from './io/plot.js';
