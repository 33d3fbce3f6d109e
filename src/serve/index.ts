/** The sampling service: HTTP API (startApi), workers (startWorker), the request schema and the job format. */
export { startApi, type ApiOptions, type RunningApi } from './api.js';
export { startWorker, SamplerPool, type WorkerOptions, type RunningWorker } from './worker.js';
export { parseSampleRequest, sampleArgs, samplerConfig, effectiveSteps, RequestError, DEFAULT_LIMITS } from './request.js';
export type { SampleRequest, RequestLimits, ModelInfo } from './request.js';
export { renderSamples, type RenderedSamples, type LoadedModel } from './render.js';
export { DEFAULT_QUEUE, resultKey, redisConnection, modelFingerprint } from './queue.js';
export type { SampleJobData, SampleJobResult, SampleProgress } from './queue.js';
