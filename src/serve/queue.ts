/**
 * What the HTTP API and the workers share through Redis: the BullMQ queue of sampling jobs, the job's data and
 * return value, and the result key that holds the PNG bytes.
 *
 * Results live under their own key with a Redis TTL (set by the worker in one MULTI with the bytes), not in
 * the job's return value: BullMQ copies return values into its event stream, and the PNGs should be stored
 * once and expire on time. A retried job rewrites the same bytes (sampling is deterministic), so a worker
 * that dies between writing the result and completing the job loses nothing.
 */
import type { ConnectionOptions } from 'bullmq';
import type { SampleRequest } from './request.js';

export const DEFAULT_QUEUE = 'diffuse-samples';

export interface SampleJobData {
  request: SampleRequest;
  /** The SHA-256 of the weights the API validated against; a worker with other weights refuses the job. */
  model: string;
  /** Seconds the result is kept after the job finishes. */
  ttl: number;
  createdAt: number;
}

export interface SampleJobResult {
  seed: number;
  count: number;
  /** Seconds the sampling itself took (model already loaded). */
  seconds: number;
  /** host:pid of the worker that drew it. */
  worker: string;
  /** When the result key expires (ms since the epoch). */
  expiresAt: number;
}

export interface SampleProgress {
  step: number;
  total: number;
}

/** The Redis hash with the PNGs of a job: fields `grid` and `0` … `count−1`. */
export const resultKey = (queue: string, jobId: string): string => `diffuse:${queue}:result:${jobId}`;

/** BullMQ connection options for a redis:// URL. Workers need `maxRetriesPerRequest: null` (wait out outages). */
export function redisConnection(url: string, forWorker = false): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--redis: not a URL: '${url}' (expected redis://host:port)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`--redis: expected a redis:// or rediss:// URL, got '${url}'`);
  return { url, ...(forWorker ? { maxRetriesPerRequest: null } : {}) };
}

/** The fingerprint of a checkpoint's weights: the SHA-256 its checkpoint.json records for them. */
export function modelFingerprint(json: { files: Record<string, { sha256: string }> }, weights: string): string {
  const rec = json.files[weights];
  if (!rec) throw new Error(`the checkpoint has no '${weights}' weights`);
  return rec.sha256;
}
