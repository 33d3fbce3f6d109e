/**
 * `diffuse serve`: the HTTP API of the sampling service. It validates requests against the checkpoint's
 * config (it never loads weights) and the server's limits, puts jobs on the BullMQ queue, and answers from
 * Redis: job status and progress, the PNGs the workers stored, progress as server-sent events, Prometheus
 * metrics. Any number of API processes can share one Redis; they keep no state of their own but counters.
 *
 *   POST /v1/samples                 {count, class?, guidance?, sampler?, steps?, seed?} → 202 {id, …}
 *   GET  /v1/samples/:id             status (queued | running | completed | failed), progress, result
 *   GET  /v1/samples/:id/grid.png    the grid;  GET /v1/samples/:id/<index>.png  one sample
 *   GET  /v1/samples/:id/events      progress and the final status as server-sent events
 *   GET  /healthz                    200 when Redis answers (never needs the token)
 *   GET  /metrics                    Prometheus text: queue depth, jobs done and failed, sampling seconds
 *
 * Every error is JSON {"error": "<field or subject>: <one line>"} with a 4xx (5xx when Redis is away).
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
// bullmq and ioredis (~25 MB resident) load when the API starts, not with every `diffuse` command.
import type { Job } from 'bullmq';
import { makeSchedule } from '../diffusion/index.js';
import { checkpointDir, labelledClassCount, readCheckpointJson, type RunConfig } from '../train/index.js';
import { DEFAULT_LIMITS, RequestError, parseSampleRequest, type ModelInfo, type RequestLimits } from './request.js';
import {
  DEFAULT_QUEUE, modelFingerprint, redisConnection, resultKey, type SampleJobData, type SampleJobResult, type SampleProgress,
} from './queue.js';

export interface ApiOptions {
  checkpoint: string;
  redis: string;
  port: number;
  host?: string;
  queue?: string;
  weights?: 'ema' | 'model';
  limits?: RequestLimits;
  /** Jobs waiting to start above which POST answers 429. */
  maxQueue?: number;
  /** Seconds results are kept. */
  ttl?: number;
  /** Largest request body in bytes. */
  maxBody?: number;
  /** Bearer token every request but /healthz must carry (DIFFUSE_API_TOKEN). */
  token?: string;
  log?: (message: string) => void;
}

export interface RunningApi {
  server: Server;
  port: number;
  /** Drains: refuses new connections, ends event streams, waits for requests in flight, closes Redis. */
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) { super(message); }
}

type JobState = 'queued' | 'running' | 'completed' | 'failed';
const stateOf = (s: string): JobState => (s === 'active' ? 'running' : s === 'completed' ? 'completed' : s === 'failed' ? 'failed' : 'queued');

const BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const ID = /^[A-Za-z0-9-]{1,64}$/;
const sha = (s: string) => createHash('sha256').update(s).digest();

/** Rejects after `ms` with a 503: Redis did not answer (down, or restarting). */
function withTimeout<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new HttpError(503, 'queue: Redis is not answering; try again shortly', { 'Retry-After': '5' })), ms); }),
  ]);
}

export async function startApi(o: ApiOptions): Promise<RunningApi> {
  const [{ Queue, QueueEvents }, { Redis }] = await Promise.all([import('bullmq'), import('ioredis')]);
  const log = o.log ?? ((m: string) => console.error(m));
  const queueName = o.queue ?? DEFAULT_QUEUE, weights = o.weights ?? 'ema';
  const limits = o.limits ?? DEFAULT_LIMITS, maxQueue = o.maxQueue ?? 1000, ttl = o.ttl ?? 3600, maxBody = o.maxBody ?? 16 * 1024;
  const dir = checkpointDir(o.checkpoint);
  const json = readCheckpointJson<RunConfig>(dir);
  const model: ModelInfo = {
    numClasses: json.config.model.config.numClasses, T: makeSchedule(json.config.schedule).T,
    // A model without labels draws its clusters for a request without a class, at their guidance.
    defaultGuidance: labelledClassCount(json.config.model.config.numClasses, json.config.clusters) === 0 ? json.config.clusters?.guidance : undefined,
    unconditionalGuidance: json.config.clusters?.guidance,
  };
  const fingerprint = modelFingerprint(json, weights);
  const tokenDigest = o.token ? sha(o.token) : null;

  const queue = new Queue<SampleJobData, SampleJobResult>(queueName, { connection: redisConnection(o.redis) });
  queue.on('error', (e) => log(`queue: ${e.message}`));
  const events = new QueueEvents(queueName, { connection: redisConnection(o.redis, true) });
  events.on('error', (e) => log(`queue events: ${e.message}`));
  // Reads fail at once while Redis is away (503), instead of queueing behind a reconnect.
  const redis = new Redis(o.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on('error', () => { /* reconnects by itself; requests meanwhile get 503 */ });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);

  // ---- metrics and event fan-out (this process's view: counters start at 0 with it)
  const metrics = { completed: 0, failed: 0, seconds: { sum: 0, count: 0, buckets: BUCKETS.map(() => 0) }, http: new Map<number, number>() };
  type Listener = (event: string, data: unknown) => void;
  const listeners = new Map<string, Set<Listener>>();
  const emit = (id: string, event: string, data: unknown) => listeners.get(id)?.forEach((l) => l(event, data));
  events.on('completed', ({ jobId, returnvalue }) => {
    metrics.completed++;
    const r = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as SampleJobResult | undefined;
    if (r && typeof r.seconds === 'number') {
      metrics.seconds.sum += r.seconds;
      metrics.seconds.count++;
      BUCKETS.forEach((b, i) => { if (r.seconds <= b) metrics.seconds.buckets[i]++; });
    }
    emit(jobId, 'completed', null);
  });
  events.on('failed', ({ jobId }) => { metrics.failed++; emit(jobId, 'failed', null); });
  events.on('active', ({ jobId }) => emit(jobId, 'active', null));
  events.on('progress', ({ jobId, data }) => emit(jobId, 'progress', data));

  // ---- helpers
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    metrics.http.set(status, (metrics.http.get(status) ?? 0) + 1);
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': Buffer.isBuffer(body) ? 'image/png' : 'application/json', 'Content-Length': String(bytes.length), ...headers });
    res.end(bytes);
  };

  const authorize = (req: IncomingMessage) => {
    if (!tokenDigest) return;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    if (!m) throw new HttpError(401, 'authorization: a bearer token is required', { 'WWW-Authenticate': 'Bearer realm="diffuse"' });
    if (!timingSafeEqual(sha(m[1]), tokenDigest)) throw new HttpError(401, 'authorization: wrong token', { 'WWW-Authenticate': 'Bearer realm="diffuse", error="invalid_token"' });
  };

  const readBody = (req: IncomingMessage): Promise<unknown> => new Promise((resolve, reject) => {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\s*(;|$)/i.test(type)) { req.resume(); reject(new HttpError(415, `content-type: expected application/json, got '${type.slice(0, 40)}'`)); return; }
    const declared = Number(req.headers['content-length'] ?? NaN);
    const tooBig = new HttpError(413, `body: larger than the server's limit of ${maxBody} bytes`, { Connection: 'close' });
    if (declared > maxBody) { req.resume(); reject(tooBig); return; }
    const chunks: Buffer[] = [];
    let size = 0, over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (over) { if (size > 16 * maxBody) req.destroy(); return; }
      if (size > maxBody) { over = true; chunks.length = 0; reject(tooBig); return; }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (over) return;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new HttpError(400, `body: not valid JSON (${(e as Error).message.split('\n')[0].slice(0, 80)})`));
      }
    });
  });

  const depth = async () => {
    const c = await withTimeout(queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'));
    return { counts: c, waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0) };
  };

  const getJob = async (id: string): Promise<Job<SampleJobData, SampleJobResult>> => {
    if (!ID.test(id)) throw new HttpError(400, `id: not a job id: '${id.slice(0, 70)}'`);
    const job = await withTimeout(queue.getJob(id));
    if (!job) throw new HttpError(404, `id: no job ${id} (never made, or its result expired)`);
    return job as Job<SampleJobData, SampleJobResult>;
  };

  const status = async (job: Job<SampleJobData, SampleJobResult>) => {
    const state = stateOf(await withTimeout(job.getState()));
    const id = job.id!, base = `/v1/samples/${id}`;
    const r = job.returnvalue;
    const out: Record<string, unknown> = {
      id, status: state, progress: typeof job.progress === 'object' ? job.progress as SampleProgress : null, request: job.data.request,
      createdAt: new Date(job.timestamp).toISOString(),
      ...(job.processedOn ? { startedAt: new Date(job.processedOn).toISOString() } : {}),
      ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
    };
    if (state === 'completed' && r) {
      out.result = {
        seed: r.seed, count: r.count, seconds: r.seconds, worker: r.worker, expiresAt: new Date(r.expiresAt).toISOString(),
        grid: `${base}/grid.png`, images: Array.from({ length: r.count }, (_, i) => `${base}/${i}.png`),
      };
    }
    if (state === 'failed') out.error = job.failedReason;
    return out;
  };

  // ---- routes
  const postSample = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    let request;
    try {
      request = parseSampleRequest(body, model, limits);
    } catch (e) {
      if (e instanceof RequestError) throw new HttpError(400, e.message);
      throw e;
    }
    const { waiting } = await depth();
    if (waiting >= maxQueue) {
      const workers = Math.max(1, await withTimeout(queue.getWorkersCount()).catch(() => 1));
      const mean = metrics.seconds.count ? metrics.seconds.sum / metrics.seconds.count : 1;
      const wait = Math.min(300, Math.max(1, Math.ceil((waiting * mean) / workers)));
      throw new HttpError(429, `queue: full (${waiting} jobs waiting, the server's limit is ${maxQueue}); retry later`, { 'Retry-After': String(wait) });
    }
    const id = randomUUID();
    const data: SampleJobData = { request, model: fingerprint, ttl, createdAt: Date.now() };
    await withTimeout(queue.add('sample', data, { jobId: id, removeOnComplete: { age: ttl }, removeOnFail: { age: ttl } }));
    send(res, 202, { id, status: 'queued', request, links: { self: `/v1/samples/${id}`, events: `/v1/samples/${id}/events` } }, { Location: `/v1/samples/${id}` });
  };

  const png = async (res: ServerResponse, id: string, field: string) => {
    const job = await getJob(id);
    if (field !== 'grid') {
      const count = job.data.request.count;
      if (!/^\d+$/.test(field) || Number(field) >= count) throw new HttpError(404, `index: the job has images 0…${count - 1}, not '${field.slice(0, 20)}'`);
      field = String(Number(field));
    }
    const bytes = await redis.hgetBuffer(resultKey(queueName, id), field).catch(() => { throw new HttpError(503, 'queue: Redis is not answering; try again shortly', { 'Retry-After': '5' }); });
    if (!bytes) {
      const state = stateOf(await withTimeout(job.getState()));
      if (state === 'completed') throw new HttpError(410, `id: the result of job ${id} has expired`);
      throw new HttpError(409, `id: job ${id} is ${state}${state === 'failed' ? `: ${job.failedReason}` : ''}; no images`);
    }
    send(res, 200, bytes, { 'Cache-Control': 'private, max-age=60' });
  };

  const streams = new Set<ServerResponse>();
  const eventStream = async (res: ServerResponse, id: string) => {
    const job = await getJob(id);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    metrics.http.set(200, (metrics.http.get(200) ?? 0) + 1);
    streams.add(res);
    const write = (event: string, data: unknown) => { if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`); };
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(ping);
      listeners.get(id)?.delete(listener);
      if (!listeners.get(id)?.size) listeners.delete(id);
      streams.delete(res);
      res.end();
    };
    // Subscribe before reading the state, so no transition falls between the two.
    const listener: Listener = (event, data) => {
      if (event === 'progress') { write('progress', data); return; }
      queue.getJob(id).then(async (j) => {
        if (!j) return end();
        const s = await status(j as Job<SampleJobData, SampleJobResult>);
        write('status', s);
        if (s.status === 'completed' || s.status === 'failed') end();
      }).catch(() => { /* Redis away: the client reconnects (retry: 2000) */ });
    };
    if (!listeners.has(id)) listeners.set(id, new Set());
    listeners.get(id)!.add(listener);
    const ping = setInterval(() => { if (!res.writableEnded) res.write(': ping\n\n'); }, 15_000);
    res.on('close', end);
    res.write('retry: 2000\n\n');
    const s = await status(job);
    write('status', s);
    if (s.status === 'completed' || s.status === 'failed') end();
  };

  const metricsText = async () => {
    const { counts, waiting } = await depth();
    const workers = await withTimeout(queue.getWorkersCount()).catch(() => NaN);
    const lines = [
      '# HELP diffuse_queue_depth Sampling jobs waiting for a worker.', '# TYPE diffuse_queue_depth gauge', `diffuse_queue_depth ${waiting}`,
      '# HELP diffuse_queue_jobs Sampling jobs in the queue by state (finished ones until their TTL).', '# TYPE diffuse_queue_jobs gauge',
      ...Object.entries(counts).map(([k, v]) => `diffuse_queue_jobs{state="${k}"} ${v}`),
      '# HELP diffuse_workers Worker connections on the queue.', '# TYPE diffuse_workers gauge', `diffuse_workers ${workers}`,
      '# HELP diffuse_jobs_completed_total Jobs completed since this API process started.', '# TYPE diffuse_jobs_completed_total counter',
      `diffuse_jobs_completed_total ${metrics.completed}`,
      '# HELP diffuse_jobs_failed_total Jobs failed since this API process started.', '# TYPE diffuse_jobs_failed_total counter',
      `diffuse_jobs_failed_total ${metrics.failed}`,
      '# HELP diffuse_sampling_seconds Seconds a worker spent sampling a job (model loaded).', '# TYPE diffuse_sampling_seconds histogram',
      ...BUCKETS.map((b, i) => `diffuse_sampling_seconds_bucket{le="${b}"} ${metrics.seconds.buckets[i]}`),
      `diffuse_sampling_seconds_bucket{le="+Inf"} ${metrics.seconds.count}`,
      `diffuse_sampling_seconds_sum ${metrics.seconds.sum}`, `diffuse_sampling_seconds_count ${metrics.seconds.count}`,
      '# HELP diffuse_http_responses_total HTTP responses by status code.', '# TYPE diffuse_http_responses_total counter',
      ...[...metrics.http].sort(([a], [b]) => a - b).map(([code, n]) => `diffuse_http_responses_total{code="${code}"} ${n}`),
    ];
    return `${lines.join('\n')}\n`;
  };

  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname, method = req.method ?? 'GET';
    const allow = (methods: string) => { if (!methods.split(', ').includes(method)) throw new HttpError(405, `method: ${method} is not allowed on ${path} (allowed: ${methods})`, { Allow: methods }); };
    if (path === '/healthz') {
      allow('GET');
      const ok = await redis.ping().then(() => true, () => false);
      send(res, ok ? 200 : 503, { status: ok ? 'ok' : 'redis unavailable' });
      return;
    }
    authorize(req);
    if (path === '/metrics') {
      allow('GET');
      const text = Buffer.from(await metricsText());
      metrics.http.set(200, (metrics.http.get(200) ?? 0) + 1);
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4', 'Content-Length': String(text.length) });
      res.end(text);
      return;
    }
    if (path === '/v1/samples') { allow('POST'); await postSample(req, res); return; }
    const m = /^\/v1\/samples\/([^/]+)(?:\/(events|grid\.png|[^/]+\.png))?$/.exec(path);
    if (!m) throw new HttpError(404, `path: no such endpoint ${path.slice(0, 80)}`);
    allow('GET');
    const [, id, sub] = m;
    if (!sub) send(res, 200, await status(await getJob(id)));
    else if (sub === 'events') await eventStream(res, id);
    else await png(res, id, sub === 'grid.png' ? 'grid' : sub.slice(0, -4));
  };

  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    route(req, res).catch((e: unknown) => {
      const err = e instanceof HttpError ? e : new HttpError(500, `internal: ${(e as Error).message?.split('\n')[0] ?? String(e)}`);
      if (!(e instanceof HttpError)) log(`${req.method} ${req.url}: ${(e as Error).stack ?? String(e)}`);
      if (res.headersSent) { res.end(); return; }
      send(res, err.status, { error: err.message }, err.headers);
    });
  });
  server.on('clientError', (_e, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"request: malformed HTTP"}'); });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });

  let closing: Promise<void> | null = null;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of streams) { res.write('event: shutdown\ndata: {}\n\n'); res.end(); }
      server.closeIdleConnections();
      // Requests in flight get 10 s (each waits at most 5 s for Redis); then their connections are cut.
      const cut = setTimeout(() => server.closeAllConnections(), 10_000);
      await closed;
      clearTimeout(cut);
      await Promise.allSettled([queue.close(), events.close()]);
      await redis.quit().catch(() => redis.disconnect());
    })(),
  };
}
