/**
 * `diffuse worker`: takes sampling jobs from the BullMQ queue and draws them, --concurrency at a time, each in
 * its own sampling process (sampler-process.ts) with the model loaded once.
 *
 * Reliability is BullMQ's: a job is held under a lock this process renews (its event loop never samples, so
 * renewals are on time); a worker that dies stops renewing, the stalled-job check of any other worker puts
 * the job back in the queue, and another worker draws it. Completion is an atomic script that needs the lock,
 * so a job completes once. `close()` drains: BullMQ's worker.close() takes no new job and waits for the
 * current ones.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
// bullmq and ioredis (~25 MB resident) load when a worker starts, not with every `diffuse` command.
import type { Job } from 'bullmq';
import { checkpointDir, readCheckpointJson } from '../train/index.js';
import type { SampleRequest } from './request.js';
import {
  DEFAULT_QUEUE, modelFingerprint, redisConnection, resultKey, type SampleJobData, type SampleJobResult, type SampleProgress,
} from './queue.js';

export interface WorkerOptions {
  checkpoint: string;
  redis: string;
  concurrency: number;
  queue?: string;
  weights?: 'ema' | 'model';
  /** Milliseconds a job's lock lasts without renewal (a dead worker's jobs return to the queue after it). */
  lockDuration?: number;
  /** Milliseconds between stalled-job checks. */
  stalledInterval?: number;
  /** Times a job may be recovered from a dead worker before it fails (a job that kills its workers). */
  maxStalled?: number;
  /** Native threads per sampling process (default: the cores divided among them). */
  threads?: number;
  backend?: string;
  log?: (message: string) => void;
}

interface Rendered { grid: Uint8Array; images: Uint8Array[]; seconds: number }

interface PendingJob {
  id: string;
  request: SampleRequest;
  resolve: (r: Rendered) => void;
  reject: (e: Error) => void;
  onProgress: (p: SampleProgress) => void;
}

interface Slot {
  child: ChildProcess;
  ready: boolean;
  job: PendingJob | null;
}

const here = import.meta.url;
const childModule = fileURLToPath(new URL(`./sampler-process.${here.endsWith('.ts') ? 'ts' : 'js'}`, here));

/** A fixed number of sampling processes; a process that dies is replaced (its job fails, BullMQ decides). */
export class SamplerPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: PendingJob[] = [];
  private stopping = false;
  private nextId = 0;

  constructor(private readonly size: number, private readonly env: Record<string, string>, private readonly log: (m: string) => void) {}

  /** Starts every process and waits until each has loaded the model (rejects with the first load error). */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.size }, () => this.spawn()));
  }

  private spawn(): Promise<void> {
    const child = fork(childModule, [], {
      env: { ...process.env, ...this.env },
      execArgv: childModule.endsWith('.ts') ? ['--import', 'tsx'] : [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const slot: Slot = { child, ready: false, job: null };
    this.slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      child.on('message', (m: { type: string; id?: string; message?: string; step?: number; total?: number } & Partial<Rendered>) => {
        if (m.type === 'ready') { slot.ready = true; resolve(); this.release(slot); return; }
        if (m.type === 'failed') { reject(new Error(m.message)); return; }
        const job = slot.job;
        if (!job || m.id !== job.id) return;
        if (m.type === 'progress') job.onProgress({ step: m.step!, total: m.total! });
        else if (m.type === 'result') { slot.job = null; job.resolve({ grid: m.grid!, images: m.images!, seconds: m.seconds! }); this.release(slot); }
        else if (m.type === 'error') { slot.job = null; job.reject(new Error(m.message)); this.release(slot); }
      });
      child.on('exit', (code, signal) => {
        this.slots.splice(this.slots.indexOf(slot), 1);
        const why = `sampling process ${child.pid} exited (${signal ?? `code ${code}`})`;
        if (!slot.ready) reject(new Error(why));
        if (slot.job) slot.job.reject(new Error(why));
        if (slot.ready && !this.stopping) {
          this.log(`${why}; starting another`);
          this.spawn().catch((e: Error) => this.log(`cannot restart a sampling process: ${e.message}`));
        }
      });
    });
  }

  private release(slot: Slot): void {
    if (this.stopping || slot.job) return;
    const next = this.waiting.shift();
    if (next) this.dispatch(slot, next);
  }

  private dispatch(slot: Slot, job: PendingJob): void {
    slot.job = job;
    slot.child.send({ type: 'job', id: job.id, request: job.request }, (e) => {
      if (e && slot.job === job) { slot.job = null; job.reject(new Error(`sampling process ${slot.child.pid}: ${e.message}`)); }
    });
  }

  /** Draws one request in the first free process (queued until one is free). */
  run(request: SampleRequest, onProgress: (p: SampleProgress) => void): Promise<Rendered> {
    return new Promise<Rendered>((resolve, reject) => {
      const job: PendingJob = { id: String(this.nextId++), request, resolve, reject, onProgress };
      const free = this.slots.find((s) => s.ready && !s.job);
      if (free) this.dispatch(free, job);
      else this.waiting.push(job);
    });
  }

  /** Ends every process (call after the jobs are done). */
  stop(): void {
    this.stopping = true;
    for (const s of this.slots) if (s.child.connected) s.child.disconnect();
  }
}

export interface RunningWorker {
  name: string;
  /** Drains: takes no new job, finishes the current ones, then stops the processes and connections. */
  close(): Promise<void>;
}

/** Starts a worker; resolves once the sampling processes have loaded the model and the queue is being read. */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const [{ UnrecoverableError, Worker }, { Redis }] = await Promise.all([import('bullmq'), import('ioredis')]);
  const log = o.log ?? ((m: string) => console.error(m));
  const queue = o.queue ?? DEFAULT_QUEUE, weights = o.weights ?? 'ema';
  const name = `${hostname()}:${process.pid}`;
  const dir = checkpointDir(o.checkpoint);
  const fingerprint = modelFingerprint(readCheckpointJson(dir), weights);
  const connection = redisConnection(o.redis, true);
  const threads = o.threads ?? Math.max(1, Math.floor(cpus().length / o.concurrency));
  const pool = new SamplerPool(o.concurrency, {
    DIFFUSE_SERVE_CHECKPOINT: dir, DIFFUSE_SERVE_WEIGHTS: weights, DIFFUSE_NUM_THREADS: String(threads),
    ...(o.backend ? { DIFFUSE_SERVE_BACKEND: o.backend } : {}),
  }, log);
  await pool.start();
  const results = new Redis(o.redis, { maxRetriesPerRequest: null });
  results.on('error', () => { /* ioredis reconnects; commands wait (maxRetriesPerRequest: null) */ });

  const process_ = async (job: Job<SampleJobData, SampleJobResult>): Promise<SampleJobResult> => {
    const d = job.data;
    if (d.model !== fingerprint) {
      throw new UnrecoverableError(`this worker's weights (sha256 ${fingerprint.slice(0, 12)}…) are not the ones the job was checked against (${String(d.model).slice(0, 12)}…): run serve and workers on the same checkpoint`);
    }
    let last = 0;
    const out = await pool.run(d.request, (p) => {
      const now = Date.now();
      if (p.step === p.total || now - last >= 100) { last = now; job.updateProgress(p).catch(() => { /* the next one will do */ }); }
    });
    const key = resultKey(queue, job.id!);
    const fields: (string | Buffer)[] = ['grid', Buffer.from(out.grid)];
    out.images.forEach((png, i) => fields.push(String(i), Buffer.from(png)));
    await results.multi().del(key).hset(key, ...fields).expire(key, d.ttl).exec();
    return { seed: d.request.seed, count: d.request.count, seconds: out.seconds, worker: name, expiresAt: Date.now() + d.ttl * 1000 };
  };

  const worker = new Worker<SampleJobData, SampleJobResult>(queue, process_, {
    connection, name, concurrency: o.concurrency,
    lockDuration: o.lockDuration ?? 30_000, stalledInterval: o.stalledInterval ?? 30_000, maxStalledCount: o.maxStalled ?? 2,
  });
  worker.on('error', (e) => log(`worker: ${e.message}`));
  worker.on('failed', (job, e) => log(`job ${job?.id} failed: ${e.message}`));
  await worker.waitUntilReady();

  let closing: Promise<void> | null = null;
  return {
    name,
    close: () => closing ??= (async () => {
      await worker.close();
      pool.stop();
      await results.quit().catch(() => results.disconnect());
    })(),
  };
}
