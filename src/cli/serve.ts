/**
 * `diffuse serve` (the HTTP API) and `diffuse worker` (sampling processes): the sampling service on a BullMQ
 * queue in Redis (src/serve/). Both run until SIGTERM or Ctrl-C, which drain them: the API stops accepting
 * and finishes requests in flight; a worker takes no new job and finishes its current ones. Exit 143 after
 * SIGTERM, 130 after SIGINT; a second signal exits at once.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_LIMITS, DEFAULT_QUEUE, redisConnection, startApi, startWorker } from '../node.js';

const int = (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) => (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}…${max}, got '${v}'`);
  return n;
};
const num = (name: string, lo: number, hi: number) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi) throw new InvalidArgumentError(`${name} must be a number in [${lo}, ${hi}], got '${v}'`);
  return n;
};
const redisUrl = (v: string): string => {
  try {
    redisConnection(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message.replace(/^--redis: /, ''));
  }
  return v;
};

/** Runs until a signal, then drains with `close` and exits 143 (SIGTERM) or 130 (SIGINT). */
function untilSignal(what: string, close: () => Promise<void>): Promise<never> {
  return new Promise<never>(() => {
    let draining = false;
    const onSignal = (signal: NodeJS.Signals) => {
      const code = signal === 'SIGTERM' ? 143 : 130;
      if (draining) process.exit(code);
      draining = true;
      console.error(`${what}: ${signal}: draining (again to quit at once)`);
      close().then(() => process.exit(code), (e: Error) => { console.error(`${what}: ${e.message}`); process.exit(code); });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

interface ServeFlags {
  checkpoint: string; port: number; host: string; redis: string; queue: string; weights: 'ema' | 'model';
  maxCount: number; maxSteps: number; maxGuidance: number; maxQueue: number; ttl: number; maxBody: number;
}

interface WorkerFlags {
  checkpoint: string; redis: string; concurrency: number; queue: string; weights: 'ema' | 'model'; threads?: number;
  backend?: string; lockDuration: number; stalledInterval: number; maxStalled: number;
}

export function registerServeCommands(p: Command): void {
  p.command('serve').description('HTTP API of the sampling service: queues requests for `diffuse worker` processes (Redis).')
    .requiredOption('--checkpoint <path>', 'run folder (or its checkpoint.json): requests are checked against its config')
    .option('--port <n>', 'port (0: any free one)', int('--port', 0, 65535), 8080)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--redis <url>', 'Redis URL', redisUrl, 'redis://127.0.0.1:6379')
    .option('--queue <name>', 'queue name (the workers must use the same)', DEFAULT_QUEUE)
    .addOption(new Option('--weights <which>', 'weights the workers must hold').choices(['ema', 'model']).default('ema'))
    .option('--max-count <n>', 'largest count per request', int('--max-count', 1, 10_000), DEFAULT_LIMITS.maxCount)
    .option('--max-steps <n>', 'most sampler steps per request', int('--max-steps', 1, 100_000), DEFAULT_LIMITS.maxSteps)
    .option('--max-guidance <scale>', 'largest guidance scale', num('--max-guidance', 0, 1000), DEFAULT_LIMITS.maxGuidance)
    .option('--max-queue <n>', 'jobs waiting above which requests get 429', int('--max-queue', 1), 1000)
    .option('--ttl <seconds>', 'how long results are kept', int('--ttl', 1), 3600)
    .option('--max-body <bytes>', 'largest request body', int('--max-body', 64, 1 << 24), 16 * 1024)
    .addHelpText('after', '\nDIFFUSE_API_TOKEN: when set, every request but GET /healthz needs "Authorization: Bearer <token>".')
    .action(async (f: ServeFlags) => {
      const api = await startApi({
        checkpoint: f.checkpoint, port: f.port, host: f.host, redis: f.redis, queue: f.queue, weights: f.weights,
        limits: { maxCount: f.maxCount, maxSteps: f.maxSteps, maxGuidance: f.maxGuidance }, maxQueue: f.maxQueue,
        ttl: f.ttl, maxBody: f.maxBody, token: process.env.DIFFUSE_API_TOKEN || undefined,
      });
      console.log(`diffuse serve: listening on http://${f.host}:${api.port} (queue ${f.queue} on ${f.redis}${process.env.DIFFUSE_API_TOKEN ? ', bearer token required' : ''})`);
      await untilSignal('diffuse serve', api.close);
    });
  p.command('worker').description('Sampling worker of the service: draws queued requests (run any number, on any machines).')
    .requiredOption('--checkpoint <path>', 'run folder (or its checkpoint.json): the same one `diffuse serve` has')
    .option('--redis <url>', 'Redis URL', redisUrl, 'redis://127.0.0.1:6379')
    .option('--concurrency <k>', 'jobs at a time (one sampling process each)', int('--concurrency', 1, 256), 1)
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
    .addOption(new Option('--weights <which>', 'ema or model').choices(['ema', 'model']).default('ema'))
    .option('--threads <n>', 'native threads per sampling process (default: cores / concurrency)', int('--threads', 1, 1024))
    .addOption(new Option('--backend <name>', 'js, native or wasm').choices(['js', 'native', 'wasm']))
    .option('--lock-duration <ms>', "a job's lock; a dead worker's jobs return to the queue after it", int('--lock-duration', 1000), 30_000)
    .option('--stalled-interval <ms>', 'milliseconds between checks for jobs of dead workers', int('--stalled-interval', 100), 30_000)
    .option('--max-stalled <n>', 'times a job may be taken back from dead workers before it fails', int('--max-stalled', 0, 100), 2)
    .action(async (f: WorkerFlags) => {
      const w = await startWorker({
        checkpoint: f.checkpoint, redis: f.redis, concurrency: f.concurrency, queue: f.queue, weights: f.weights, threads: f.threads,
        backend: f.backend, lockDuration: f.lockDuration, stalledInterval: f.stalledInterval, maxStalled: f.maxStalled,
      });
      console.log(`diffuse worker ${w.name}: ${f.concurrency} sampling process${f.concurrency > 1 ? 'es' : ''} ready (queue ${f.queue} on ${f.redis})`);
      await untilSignal('diffuse worker', w.close);
    });
}
