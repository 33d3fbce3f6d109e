/**
 * `diffuse/node`: what needs Node — files, checkpoints, datasets (MNIST, Fashion-MNIST, image folders), the
 * trainer, PNG / JPEG and plots, the MNIST judge and Fréchet distance, safetensors files, the native
 * backend's controls, the sampling service (BullMQ) and the PyTorch export. The engine itself (tensors, nn, diffusion, backends) is `diffuse` (src/index.ts).
 */
export * from './train/index.js';
export * from './data/index.js';
export * from './io/png.js';
export * from './io/plot.js';
export * from './io/image.js';
export * from './eval/index.js';
export * from './interop/index.js';
export { readSafetensorsFile, writeSafetensorsFile } from './io/safetensors.js';
export { nativeThreads, nativeInfo, nativeAddonPath, type NativeInfo } from './backends/native/index.js';
export * from './serve/index.js';
export * from './export/index.js';
