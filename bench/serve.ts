// Load on the sampling service: N concurrent clients against 1 worker, then against 2 workers, on a private
// redis-server. Each request is POST /v1/samples → server-sent events until completed → GET grid.png; its
// latency is that whole round trip. Rounds alternate 1 and 2 workers; prints each round, then the medians of
// requests/s, p50 and p99 latency per setting and the median of the per-round scaling ratios.
//
//   npx tsx bench/serve.ts [--clients 8] [--requests 24] [--rounds 3] [--count 1] [--steps 10] [--threads 1]
//
// The model is the default `tiny` preset (1.1 M parameters, 28×28, class-conditional) after one training step.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadMnist } from '../src/data/index.js';
import { normalizeScheduleConfig } from '../src/diffusion/index.js';
import { unetPreset } from '../src/nn/unet.js';
import { Trainer, type RunConfig } from '../src/train/index.js';
import { startApi } from '../src/serve/index.js';
import { TestRedis, freePort } from '../test/helpers/redis.js';

const { values: a } = parseArgs({ options: {
  clients: { type: 'string', default: '8' }, requests: { type: 'string', default: '24' }, rounds: { type: 'string', default: '3' },
  count: { type: 'string', default: '1' },
  steps: { type: 'string', default: '10' }, threads: { type: 'string', default: '1' },
} });
const clients = Number(a.clients), requests = Number(a.requests), count = Number(a.count), steps = Number(a.steps);

const root = mkdtempSync(join(tmpdir(), 'diffuse-bench-serve-'));
const run = join(root, 'run');
const config: RunConfig = {
  dataset: 'mnist', datasetLimit: 64,
  model: { kind: 'unet', preset: 'tiny', config: unetPreset('tiny', { numClasses: 10 }) },
  schedule: normalizeScheduleConfig({ kind: 'linear', T: 1000 }),
  objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
  trainer: {
    steps: 1, batchSize: 8, accumulate: 1, lr: 1e-3, minLr: 1e-4, warmupSteps: 1, weightDecay: 0, gradClip: 1, emaDecay: 0.999,
    condDropout: 0.1, seed: 0, sampleEvery: 0, checkpointEvery: 0, previewSampler: { kind: 'ddim', steps: 2 }, previewCount: 4,
  },
};
mkdirSync(run);
await new Trainer(config, loadMnist({ split: 'train', limit: 64 })).train({ outDir: run });

const redis = new TestRedis(await freePort(), mkdtempSync(join(root, 'redis-')));
await redis.start();
const api = await startApi({ checkpoint: run, redis: redis.url, port: 0, log: () => {} });
const base = `http://127.0.0.1:${api.port}`;

function startWorker(): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['bin/diffuse.mjs', 'worker', '--checkpoint', run, '--redis', redis.url, '--threads', String(a.threads)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    p.stdout!.on('data', (d) => { if (/ready/.test(String(d))) resolve(p); });
    p.on('exit', (c) => reject(new Error(`worker exited ${c}`)));
  });
}

async function one(seed: number): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/samples`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count, steps, seed, sampler: 'ddim', class: seed % 10 }) });
  if (r.status !== 202) throw new Error(`POST: ${r.status} ${await r.text()}`);
  const { id } = await r.json() as { id: string };
  const ev = await fetch(`${base}/v1/samples/${id}/events`);
  const reader = ev.body!.getReader();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
    if (/"status":"(completed|failed)"/.test(text)) { await reader.cancel(); break; }
  }
  if (!text.includes('"status":"completed"')) throw new Error(`job ${id} did not complete: ${text.slice(-300)}`);
  const png = await fetch(`${base}/v1/samples/${id}/grid.png`);
  if (png.status !== 200) throw new Error(`grid.png: ${png.status}`);
  await png.arrayBuffer();
  return performance.now() - t0;
}

async function load(): Promise<{ rps: number; p50: number; p99: number }> {
  for (let i = 0; i < 4; i++) await one(10_000 + i); // warm-up
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < requests) latencies.push(await one(next++));
  }));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((x, y) => x - y);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { rps: requests / seconds, p50: q(0.5), p99: q(0.99) };
}

const workers: ChildProcess[] = [];
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const results: Record<number, Awaited<ReturnType<typeof load>>[]> = { 1: [], 2: [] };
const what = `${clients} clients, ${requests} requests of ${count} image${count > 1 ? 's' : ''} × ${steps} ddim steps, tiny preset, ${a.threads} thread per worker`;
try {
  for (let round = 0; round < Number(a.rounds); round++) {
    for (const n of [1, 2]) {
      while (workers.length < n) workers.push(await startWorker());
      while (workers.length > n) {
        const w = workers.pop()!;
        w.kill('SIGTERM');
        await new Promise((r) => w.once('exit', r));
      }
      const r = await load();
      results[n].push(r);
      console.log(`round ${round + 1}, ${n} worker${n > 1 ? 's' : ''}: ${r.rps.toFixed(2)} requests/s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms`);
    }
  }
  for (const n of [1, 2]) {
    const rs = results[n];
    console.log(`${n} worker${n > 1 ? 's' : ''} (median of ${rs.length}): ${median(rs.map((r) => r.rps)).toFixed(2)} requests/s, ` +
      `p50 ${median(rs.map((r) => r.p50)).toFixed(0)} ms, p99 ${median(rs.map((r) => r.p99)).toFixed(0)} ms (${what})`);
  }
  const ratios = results[2].map((r, i) => r.rps / results[1][i].rps);
  console.log(`scaling 1 → 2 workers: ${median(ratios).toFixed(2)}× requests/s (median of rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')}) on ${cpus().length} cores`);
} finally {
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))));
  await api.close();
  await redis.stop();
}
