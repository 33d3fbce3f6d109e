// The sampling service end to end on a private redis-server: `diffuse serve` answers malformed requests with
// a 4xx naming the field and keeps serving; three `diffuse worker` processes draw 200 jobs while one is killed
// mid-job and Redis restarts, and every job completes exactly once with the images `diffuse sample` draws;
// a worker sent SIGTERM mid-job finishes that job and exits 143.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { loadModelFromCheckpoint } from '../src/train/index.js';
import { renderSamples, sampleArgs, startApi, type RunningApi, type SampleRequest } from '../src/serve/index.js';
import { makeTinyRun } from './helpers/tiny-run.js';
import { TestRedis, freePort, hasRedis } from './helpers/redis.js';

const skip = hasRedis() || process.env.CI ? false : 'redis-server is not installed (apt-get install redis-server)';
const root = mkdtempSync(join(tmpdir(), 'diffuse-serve-'));
const run = join(root, 'run');
const children: ChildProcess[] = [];
let redis: TestRedis;

/** Starts a `diffuse` long-running command and resolves with it once its stdout says `ready`. */
function start(args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<{ proc: ChildProcess; line: string; err: () => string }> {
  const proc = spawn(process.execPath, ['bin/diffuse.mjs', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(proc);
  let out = '', err = '';
  proc.stderr!.on('data', (d) => { err += String(d); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`diffuse ${args[0]} did not start in 60 s: ${err}`)), 60_000);
    proc.stdout!.on('data', (d) => {
      out += String(d);
      const m = out.split('\n').find((l) => ready.test(l));
      if (m) { clearTimeout(timer); resolve({ proc, line: m, err: () => err }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`diffuse ${args[0]} exited (${code}): ${err}`)); });
  });
}

const debug = (m: string) => { if (process.env.DIFFUSE_TEST_DEBUG) console.error(`[${new Date().toISOString().slice(11, 23)}] ${m}`); };

const exitCode = (p: ChildProcess) => new Promise<number | null>((resolve) => {
  if (p.exitCode !== null) resolve(p.exitCode);
  else p.once('exit', (code) => resolve(code));
});

before(async () => {
  if (skip) return;
  await makeTinyRun(run, { size: 8 });
  redis = new TestRedis(await freePort(), mkdtempSync(join(root, 'redis-')));
  await redis.start();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.stop();
});

describe('diffuse serve: bad input', { skip }, () => {
  test('malformed requests get a 4xx with a one-line message naming the field, and the server keeps serving', async () => {
    const token = 'test-token-1234';
    const { proc, line } = await start(['serve', '--checkpoint', run, '--port', '0', '--redis', redis.url, '--queue', 'bad-input',
      '--max-count', '8', '--max-steps', '50', '--max-queue', '3', '--max-body', '4096'], /listening on/, { DIFFUSE_API_TOKEN: token });
    const base = /http:\/\/[^ ]+/.exec(line)![0];
    const auth = { authorization: `Bearer ${token}` };
    const json = { 'content-type': 'application/json', ...auth };
    const post = (body: string, headers: Record<string, string> = json) => fetch(`${base}/v1/samples`, { method: 'POST', headers, body });
    const cases: [string, () => Promise<Response>, number, RegExp][] = [
      ['no token', () => post('{"count":1}', { 'content-type': 'application/json' }), 401, /^authorization:/],
      ['wrong token', () => post('{"count":1}', { 'content-type': 'application/json', authorization: 'Bearer nope' }), 401, /^authorization: wrong token/],
      ['not a bearer token', () => post('{"count":1}', { 'content-type': 'application/json', authorization: `Basic ${token}` }), 401, /^authorization:/],
      ['token on GET', () => fetch(`${base}/metrics`), 401, /^authorization:/],
      ['bad JSON', () => post('{count: 1'), 400, /^body: not valid JSON/],
      ['empty body', () => post(''), 400, /^body: not valid JSON/],
      ['array body', () => post('[1,2]'), 400, /^body: expected a JSON object/],
      ['string body', () => post('"x"'), 400, /^body: expected a JSON object/],
      ['null body', () => post('null'), 400, /^body: expected a JSON object/],
      ['deeply nested', () => post(`${'['.repeat(2000)}${']'.repeat(2000)}`), 400, /^body:/],
      ['missing count', () => post('{}'), 400, /^count: required/],
      ['count as string', () => post('{"count":"1"}'), 400, /^count: expected an integer/],
      ['fractional count', () => post('{"count":1.5}'), 400, /^count: expected an integer/],
      ['zero count', () => post('{"count":0}'), 400, /^count: must be in 1…8/],
      ['huge count', () => post('{"count":1000000000}'), 400, /^count: must be in 1…8/],
      ['negative count', () => post('{"count":-3}'), 400, /^count:/],
      ['huge steps', () => post('{"count":1,"steps":1000000}'), 400, /^steps: must be in 1…50/],
      ['zero steps', () => post('{"count":1,"steps":0}'), 400, /^steps:/],
      ['steps as string', () => post('{"count":1,"steps":"many"}'), 400, /^steps: expected an integer/],
      ['ddpm default steps over the limit', () => post('{"count":1,"sampler":"ddpm"}'), 400, /^steps: ddpm defaults to 1000 steps/],
      ['negative seed', () => post('{"count":1,"seed":-1}'), 400, /^seed: must be in 0…/],
      ['fractional seed', () => post('{"count":1,"seed":0.5}'), 400, /^seed: expected an integer/],
      ['seed as string', () => post('{"count":1,"seed":"abc"}'), 400, /^seed: expected an integer/],
      ['huge seed', () => post('{"count":1,"seed":1e300}'), 400, /^seed: must be in/],
      ['unknown sampler', () => post('{"count":1,"sampler":"plms"}'), 400, /^sampler: expected one of ddpm, ddim/],
      ['sampler as number', () => post('{"count":1,"sampler":3}'), 400, /^sampler:/],
      ['class out of range', () => post('{"count":1,"class":10}'), 400, /^class: must be in 0…9/],
      ['negative class', () => post('{"count":1,"class":-1}'), 400, /^class:/],
      ['class as string', () => post('{"count":1,"class":"3"}'), 400, /^class: expected an integer/],
      ['negative guidance', () => post('{"count":1,"guidance":-1}'), 400, /^guidance: must be in \[0, 20\]/],
      ['huge guidance', () => post('{"count":1,"guidance":1e9}'), 400, /^guidance:/],
      ['guidance as string', () => post('{"count":1,"guidance":"high"}'), 400, /^guidance: expected a number/],
      ['unknown field', () => post('{"count":1,"prompt":"a cat"}'), 400, /^prompt: unknown field/],
      ['oversized body (declared)', () => post(JSON.stringify({ count: 1, pad: 'x'.repeat(20_000) })), 413, /^body: larger than the server's limit of 4096 bytes/],
      ['wrong content type', () => post('{"count":1}', { 'content-type': 'text/plain', ...auth }), 415, /^content-type:/],
      ['bad id', () => fetch(`${base}/v1/samples/..%2F..%2Fetc`, { headers: auth }), 400, /^id: not a job id/],
      ['unknown id', () => fetch(`${base}/v1/samples/00000000-0000-0000-0000-000000000000`, { headers: auth }), 404, /^id: no job/],
      ['wrong method', () => fetch(`${base}/v1/samples`, { method: 'DELETE', headers: auth }), 405, /^method: DELETE is not allowed/],
      ['unknown path', () => fetch(`${base}/v2/things`, { headers: auth }), 404, /^path: no such endpoint/],
    ];
    assert.ok(cases.length >= 30);
    for (const [name, call, status, message] of cases) {
      const r = await call();
      const body = await r.json() as { error?: string };
      assert.equal(r.status, status, `${name}: ${JSON.stringify(body)}`);
      assert.equal(typeof body.error, 'string', name);
      assert.match(body.error!, message, name);
      assert.ok(!body.error!.includes('\n'), `${name}: one line`);
      if (status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/, name);
    }
    // A body that streams past the limit without declaring its length.
    const chunked = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(new URL(base).port), '127.0.0.1', () => {
        s.write(`POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
        s.write(`2000\r\n${'x'.repeat(0x2000)}\r\n0\r\n\r\n`);
      });
      let got = '';
      s.on('data', (d) => { got += String(d); });
      s.on('close', () => resolve(got));
      s.on('error', reject);
      setTimeout(() => s.destroy(), 5000);
    });
    assert.match(chunked, /^HTTP\/1.1 413/);
    assert.match(chunked, /body: larger than the server's limit/);
    // Not HTTP at all.
    const garbage = await new Promise<string>((resolve) => {
      const s = connect(Number(new URL(base).port), '127.0.0.1', () => s.write('HELLO\x00\x01 nonsense\r\n\r\n'));
      let got = '';
      s.on('data', (d) => { got += String(d); });
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    assert.match(garbage, /^HTTP\/1.1 400/);

    // Still serving: no workers read this queue, so three jobs fill it and the fourth is refused.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await post(JSON.stringify({ count: 2, seed: i }));
      assert.equal(r.status, 202);
      ids.push(((await r.json()) as { id: string }).id);
    }
    const full = await post('{"count":1}');
    assert.equal(full.status, 429);
    assert.match(((await full.json()) as { error: string }).error, /^queue: full \(3 jobs waiting/);
    assert.ok(Number(full.headers.get('retry-after')) >= 1);
    const st = await (await fetch(`${base}/v1/samples/${ids[0]}`, { headers: auth })).json() as { status: string; request: SampleRequest };
    assert.equal(st.status, 'queued');
    assert.deepEqual(st.request, { count: 2, class: null, unconditional: false, guidance: 1, sampler: 'dpmSolverPlusPlus', steps: null, seed: 0 });
    const early = await fetch(`${base}/v1/samples/${ids[0]}/0.png`, { headers: auth });
    assert.equal(early.status, 409);
    const outOfRange = await fetch(`${base}/v1/samples/${ids[0]}/2.png`, { headers: auth });
    assert.equal(outOfRange.status, 404);
    assert.match(((await outOfRange.json()) as { error: string }).error, /^index: the job has images 0…1/);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`, { headers: auth })).text();
    assert.match(metrics, /^diffuse_queue_depth 3$/m);
    assert.match(metrics, /^diffuse_http_responses_total\{code="400"\} \d+$/m);

    proc.kill('SIGTERM');
    assert.equal(await exitCode(proc), 143);
  });
});

describe('diffuse serve + worker: faults', { skip }, () => {
  test('200 jobs on 3 workers, one killed mid-job and Redis restarted: each completes once with the images of diffuse sample', { timeout: 240_000 }, async () => {
    const queueName = 'faults';
    const workerArgs = ['worker', '--checkpoint', run, '--redis', redis.url, '--queue', queueName, '--concurrency', '1', '--threads', '1',
      '--lock-duration', '4000', '--stalled-interval', '1000', '--max-stalled', '3'];
    const [api, ...workers] = await Promise.all([
      startApi({ checkpoint: run, redis: redis.url, port: 0, queue: queueName, ttl: 600, maxQueue: 1000, limits: { maxCount: 100, maxSteps: 200, maxGuidance: 20 }, log: () => {} }),
      ...[0, 1, 2].map(() => start(workerArgs, /sampling process ready/)),
    ]) as [RunningApi, ...Awaited<ReturnType<typeof start>>[]];
    debug('API and workers ready');
    const base = `http://127.0.0.1:${api.port}`;
    const conn = { url: redis.url, maxRetriesPerRequest: null };
    const queue = new Queue(queueName, { connection: conn });
    const events = new QueueEvents(queueName, { connection: conn });
    events.on('error', () => {});
    queue.on('error', () => {});
    try {
      await events.waitUntilReady();
      // Job 0 is long: its worker is killed while it draws it. The 199 others are small and varied.
      const samplers = ['ddim', 'dpmSolverPlusPlus', 'euler'] as const;
      const requests: Record<string, unknown>[] = [{ count: 32, steps: 60, seed: 1000, sampler: 'ddim' }];
      for (let i = 1; i < 200; i++) {
        requests.push({ count: 1 + (i % 2), steps: 2 + (i % 2), seed: i, sampler: samplers[i % 3], ...(i % 4 === 0 ? { class: i % 10, guidance: 2 } : {}) });
      }
      const ids: string[] = [];
      const submitted: SampleRequest[] = [];
      const submit = async (body: Record<string, unknown>) => {
        const r = await fetch(`${base}/v1/samples`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal(r.status, 202);
        const j = await r.json() as { id: string; request: SampleRequest };
        ids.push(j.id);
        submitted.push(j.request);
      };
      await submit(requests[0]);
      const deadline = Date.now() + 60_000;
      let killed = '';
      while (!killed && Date.now() < deadline) {
        const j = await queue.getJob(ids[0]);
        const p = j?.progress as { step?: number; total?: number } | undefined;
        if (j?.processedBy && p && typeof p.step === 'number' && p.step >= 2) {
          assert.ok(p.step < p.total! && await j.getState() === 'active', `the long job is still running (${p.step}/${p.total})`);
          killed = j.processedBy;
          const w = workers.find((x) => x.line.includes(`${killed}:`));
          assert.ok(w, `worker ${killed} is one of ours`);
          w!.proc.kill('SIGKILL');
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(killed, 'the long job started');
      debug(`killed ${killed}`);
      // The queue is paused while the rest are submitted and Redis restarts, so jobs are surely waiting then
      // (on a fast machine the workers would otherwise drain them first); the pause is stored in Redis too.
      await queue.pause();
      for (const body of requests.slice(1)) await submit(body);
      debug('submitted');
      // Restart Redis (AOF on) while jobs are waiting.
      const waiting = (await queue.getJobCounts('waiting')).waiting;
      await redis.stop();
      await new Promise((r) => setTimeout(r, 300));
      await redis.start();
      const after = (await queue.getJobCounts('waiting')).waiting;
      debug(`restarted Redis with ${waiting} jobs waiting; ${after} after`);
      assert.ok(waiting >= 150, `jobs were queued during the restart (${waiting})`);
      // (one more may be waiting after: the killed worker's job, moved back by the stalled-job check meanwhile)
      assert.ok(after === waiting || after === waiting + 1, `the waiting jobs survived the restart (${waiting} before, ${after} after)`);
      await queue.resume();
      // Everything completes.
      const done = Date.now() + 120_000;
      let counts: Record<string, number> = {};
      while (Date.now() < done) {
        counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'active');
        if (counts.completed + counts.failed >= 200) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(counts, { completed: 200, failed: 0, waiting: 0, active: 0 });
      debug('all completed');

      // Exactly one completion per job in BullMQ's event log, none for ids we did not make.
      const direct = new Redis(redis.url);
      const log = await direct.xrange(`bull:${queueName}:events`, '-', '+');
      const completions = new Map<string, number>();
      for (const [, fields] of log) {
        const f = Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]));
        if (f.event === 'completed') completions.set(f.jobId, (completions.get(f.jobId) ?? 0) + 1);
      }
      await direct.quit();
      assert.equal(completions.size, 200);
      for (const id of ids) assert.equal(completions.get(id), 1, `job ${id} completed ${completions.get(id) ?? 0} times`);

      // The killed worker's job was taken back and drawn by another worker.
      const st0 = await (await fetch(`${base}/v1/samples/${ids[0]}`)).json() as { status: string; result: { worker: string } };
      assert.equal(st0.status, 'completed');
      assert.notEqual(st0.result.worker, killed);
      assert.ok(((await queue.getJob(ids[0]))?.stalledCounter ?? 0) >= 1, 'the long job was recovered as stalled');

      // Images: every job equals the library's draw of its request; two equal `diffuse sample`'s files.
      const { model, schedule, config } = loadModelFromCheckpoint(run);
      const loaded = { model, schedule, objective: config.objective };
      for (let i = 0; i < ids.length; i++) {
        const expected = await renderSamples(loaded, submitted[i]);
        const grid = Buffer.from(await (await fetch(`${base}/v1/samples/${ids[i]}/grid.png`)).arrayBuffer());
        assert.ok(grid.equals(Buffer.from(expected.grid)), `job ${i}: grid`);
        const last = submitted[i].count - 1;
        const single = Buffer.from(await (await fetch(`${base}/v1/samples/${ids[i]}/${last}.png`)).arrayBuffer());
        assert.ok(single.equals(Buffer.from(expected.images[last])), `job ${i}: image ${last}`);
      }
      debug('images equal the library\'s');
      for (const i of [4, 7]) {
        const out = join(root, `sample-${i}`);
        const r = spawnSync(process.execPath, ['bin/diffuse.mjs', 'sample', '--checkpoint', run, '--out', out, '--single', ...sampleArgs(submitted[i])], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const grid = Buffer.from(await (await fetch(`${base}/v1/samples/${ids[i]}/grid.png`)).arrayBuffer());
        assert.ok(grid.equals(readFileSync(join(out, 'samples.png'))), `job ${i}: grid differs from diffuse sample`);
        for (let k = 0; k < submitted[i].count; k++) {
          const png = Buffer.from(await (await fetch(`${base}/v1/samples/${ids[i]}/${k}.png`)).arrayBuffer());
          assert.ok(png.equals(readFileSync(join(out, `sample-${String(k).padStart(4, '0')}.png`))), `job ${i}: image ${k} differs from diffuse sample`);
        }
      }

      // Progress as server-sent events: a finished job's stream gives its final status and ends.
      const sse = await (await fetch(`${base}/v1/samples/${ids[1]}/events`)).text();
      assert.match(sse, /event: status\ndata: \{[^\n]*"status":"completed"/);

      // SIGTERM drains a worker: sent mid-job, the worker finishes that job, then exits 143.
      const alive = workers.filter((w) => !w.line.includes(`${killed}:`));
      await submit({ count: 32, steps: 60, seed: 2000, sampler: 'ddim' });
      const drainId = ids[ids.length - 1];
      let drained: (typeof workers)[number] | undefined;
      for (const until = Date.now() + 60_000; !drained && Date.now() < until;) {
        const j = await queue.getJob(drainId);
        const p = j?.progress as { step?: number; total?: number } | undefined;
        if (j?.processedBy && p && typeof p.step === 'number' && p.step < p.total!) {
          drained = alive.find((w) => w.line.includes(`${j.processedBy}:`));
          drained!.proc.kill('SIGTERM');
        } else await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(drained, 'the job to drain started');
      assert.equal(await exitCode(drained!.proc), 143, drained!.err());
      const drainedJob = await (await fetch(`${base}/v1/samples/${drainId}`)).json() as { status: string; result: { worker: string } };
      assert.equal(drainedJob.status, 'completed');
      assert.ok(drained!.line.includes(`${drainedJob.result.worker}:`), 'the draining worker finished its job');
      for (const w of alive) if (w !== drained) w.proc.kill('SIGTERM');
      for (const w of alive) assert.equal(await exitCode(w.proc), 143, w.err());
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /^diffuse_sampling_seconds_count \d+$/m);
    } finally {
      const bounded = (p: Promise<unknown>) => Promise.race([p, new Promise((r) => setTimeout(r, 15_000).unref())]);
      await bounded(Promise.allSettled([events.close(), queue.close(), api.close()]));
    }
  });
});
