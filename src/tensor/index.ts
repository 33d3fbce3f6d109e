import './methods.js';

export { Tensor, noGrad, isGradEnabled, tensor, scalar, zeros, ones, full, arange, randn, rand, scope, keep, toHost, RollingScope } from './tensor.js';
export type { DType, Storage, TensorData, TensorOptions } from './tensor.js';
export * from './api.js';
export type { TensorLike, MatmulOptions, Conv2dOptions, GroupNormOptions } from './ops.js';
export { Generator, defaultGenerator } from './random.js';
export { CancelledError, cancellable, requestCancel, setCancelFlag } from './cancel.js';
export { ShapeError, broadcastShapes, sizeOf, stridesOf } from './shape.js';
