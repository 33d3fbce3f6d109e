import './methods.js';

export { Tensor, noGrad, withGrad, checkpoint, isGradEnabled, tensor, scalar, zeros, ones, full, arange, randn, rand, scope, keep, toHost, RollingScope, freeAfterUse, recomputable } from './tensor.js';
export type { CheckpointOptions, DType, Storage, TensorData, TensorOptions } from './tensor.js';
export * from './api.js';
export type { TensorLike, MatmulOptions, Conv2dOptions } from './ops.js';
export type { AdamWStep, GroupNormConv2dOptions, GroupNormOptions } from './composites.js';
export { Generator, defaultGenerator } from './random.js';
export { CancelledError, cancellable, requestCancel, setCancelFlag } from './cancel.js';
export { ShapeError, broadcastShapes, fmt, mergeDims, sameShape, sizeOf, stridesOf } from './shape.js';
