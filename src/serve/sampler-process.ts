/**
 * A sampling process of a worker (one per unit of --concurrency). It loads the model once, then draws the
 * requests its parent sends, one at a time, reporting each sampler step. Sampling is synchronous; running it
 * here keeps the worker's event loop free to renew BullMQ's job locks and talk to Redis.
 *
 * Messages in: { type: 'job', id, request }. Out: { type: 'ready', fingerprint } once, then per job
 * { type: 'progress', id, step, total }…, { type: 'result', id, grid, images, seconds } or { type: 'error', id, message }.
 */
import { loadModelFromCheckpoint } from '../train/index.js';
import { setBackend, availableBackends, type BackendName } from '../index.js';
import { renderSamples, type LoadedModel } from './render.js';
import type { SampleRequest } from './request.js';

interface JobMessage { type: 'job'; id: string; request: SampleRequest }

const send = (m: unknown) => { if (process.connected) process.send!(m); };
const parent = process.ppid;
/** A SIGKILLed worker cannot tell its processes; mid-job (the event loop is busy) they notice being orphaned. */
const exitIfOrphaned = () => { if (process.ppid !== parent) process.exit(0); };

function start(): void {
  const checkpoint = process.env.DIFFUSE_SERVE_CHECKPOINT!, weights = (process.env.DIFFUSE_SERVE_WEIGHTS ?? 'ema') as 'ema' | 'model';
  const backend = process.env.DIFFUSE_SERVE_BACKEND;
  if (backend) {
    if (!availableBackends().includes(backend as BackendName)) throw new Error(`--backend ${backend}: not available here`);
    setBackend(backend as BackendName);
  }
  const { model, schedule, config } = loadModelFromCheckpoint(checkpoint, weights);
  const loaded: LoadedModel = { model, schedule, objective: config.objective, clusters: config.clusters };
  process.on('message', async (m: JobMessage) => {
    if (m?.type !== 'job') return;
    const t0 = performance.now();
    try {
      const out = await renderSamples(loaded, m.request, (step, total) => {
        exitIfOrphaned();
        send({ type: 'progress', id: m.id, step, total });
      });
      send({ type: 'result', id: m.id, grid: out.grid, images: out.images, seconds: (performance.now() - t0) / 1000 });
    } catch (e) {
      send({ type: 'error', id: m.id, message: (e as Error).message.split('\n')[0] });
    }
  });
  send({ type: 'ready' });
}

// The parent gone (killed or exited): nothing left to work for. Signals are the parent's to handle: a
// SIGTERM or Ctrl-C sent to the whole process group must not cut a job short while the worker drains.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});
try {
  start();
} catch (e) {
  send({ type: 'failed', message: (e as Error).message.split('\n')[0] });
  process.exitCode = 1;
  process.disconnect?.();
}
