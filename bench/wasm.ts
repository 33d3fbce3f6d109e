/**
 * The wasm backend's speed bars (issue 11), both sides in one run, alternating rounds, medians:
 * 1. conv3×3 forward, B64 C64→64 28×28, padding 1: ours (wasm backend, NCHW; also on one thread) against
 *    @tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, its threaded build asked for the same thread count; NHWC, its
 *    native layout) in this process. It prints the thread count tfjs's pool reports and, for each side, process
 *    CPU time / wall time (how many cores it actually kept busy).
 * 2. One training step and one sampling step of the tiny UNet (bench/unet.ts --ours, batch 64) on the wasm
 *    backend against the native backend, each in its own child process.
 *
 * Usage: npx tsx bench/wasm.ts [--threads 2] [--rounds 5] [--reps 5] [--skip-unet] [--skip-conv]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' }, rounds: { type: 'string', default: '5' }, reps: { type: 'string', default: '5' },
    'skip-unet': { type: 'boolean', default: false }, 'skip-conv': { type: 'boolean', default: false },
  },
});
const threads = Number(o.threads), rounds = Number(o.rounds), reps = Number(o.reps);
process.env.DIFFUSE_NUM_THREADS = String(threads);

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;

if (!o['skip-conv']) {
  const D = await import('../src/index.js');
  const tf = await import('@tensorflow/tfjs-core');
  const tfw = await import('@tensorflow/tfjs-backend-wasm');
  const req = createRequire(import.meta.url);
  tfw.setWasmPaths(join(dirname(req.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  tfw.setThreadsCount(threads);
  // tfjs probes for threads with a browser's checks, and hands its Emscripten pthreads Blob URLs, which Node's
  // Worker refuses: give it the same scripts as files (wasm-out/), so that XNNPACK runs with its threads here.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  const wasmOut = join(dirname(req.resolve('@tensorflow/tfjs-backend-wasm')), '..', 'wasm-out');
  const workers = await import('node:worker_threads');
  const createObjectURL = URL.createObjectURL, postMessage = workers.Worker.prototype.postMessage;
  const workerJs = join(mkdtempSync(join(tmpdir(), 'tfjs-wasm-')), 'worker.js');
  writeFileSync(workerJs, (req(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string })
    .wasmWorkerContents.replace(/\n/g, '\\n'));
  URL.createObjectURL = (b: Blob) => (b.type === 'application/javascript' ? workerJs : createObjectURL(b));
  workers.Worker.prototype.postMessage = function (this: InstanceType<typeof workers.Worker>, m: unknown, ...rest: unknown[]) {
    const msg = m as { urlOrBlob?: unknown } | null;
    if (msg && typeof msg === 'object' && msg.urlOrBlob !== undefined && typeof msg.urlOrBlob !== 'string') {
      m = { ...msg, urlOrBlob: join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js') };
    }
    return (postMessage as (...a: unknown[]) => void).call(this, m, ...rest);
  } as typeof postMessage;
  await tf.setBackend('wasm');
  await tf.ready();

  D.setBackend('wasm');
  const info = D.wasmInfo()!;
  const B = 64, C = 64, H = 28, W = 28;
  const g = new D.Generator(0);
  const x = D.randn([B, C, H, W], g), w = D.randn([C, C, 3, 3], g).mul(0.05), bias = D.randn([C], g);
  const xt = tf.tensor4d(D.permute(x, [0, 2, 3, 1]).data as Float32Array, [B, H, W, C]);
  const wt = tf.tensor4d(D.permute(w, [2, 3, 1, 0]).data as Float32Array, [3, 3, C, C]);
  const bt = tf.tensor1d(bias.data as Float32Array);
  // read out (as tfjs's dataSync), in a scope: the wasm backend's tensors live in its memory until released
  const ours = () => D.scope(() => D.noGrad(() => D.conv2d(x, w, bias, { padding: 1 })).data as Float32Array);
  // ours on one thread too: tfjs's XNNPACK pool may come up with fewer threads than asked (it says so below)
  const { WasmRuntime, wasmBackendOver, createMemory } = await import('../src/backends/wasm/kernels.js');
  const { wasmModulePath } = await import('../src/backends/wasm/node.js');
  const one = wasmBackendOver(new WasmRuntime(new WebAssembly.Module(readFileSync(wasmModulePath())), createMemory(true)));
  const g1 = { n: B, c: C, h: H, w: W, o: C, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, oh: H, ow: W };
  const xd = x.data as Float32Array, wd = w.data as Float32Array, bd = bias.data as Float32Array;
  const oursOne = () => { const y = one.conv2d(xd, wd, bd, g1); const v = (y as { readSync(): Float32Array }).readSync(); (y as { release(): void }).release(); return v; };
  const theirs = () => tf.tidy(() => tf.add(tf.conv2d(xt, wt, 1, 'same'), bt)).dataSync();
  // same result (layouts differ): compare one output channel plane
  const a = ours(), b = theirs();
  let err = 0, ref = 0;
  for (let n = 0; n < B; n += 9) for (let c = 0; c < C; c += 7) for (let i = 0; i < H * W; i += 5) {
    const u = a[(n * C + c) * H * W + i], v = b[(n * H * W + i) * C + c];
    err = Math.max(err, Math.abs(u - v)); ref = Math.max(ref, Math.abs(v));
  }
  const time = (fn: () => unknown) => {
    for (let i = 0; i < 2; i++) fn();
    const ts: number[] = [];
    for (let i = 0; i < reps; i++) { const t0 = performance.now(); fn(); ts.push((performance.now() - t0) / 1000); }
    return ts;
  };
  const tOurs: number[] = [], tTheirs: number[] = [], tOne: number[] = [];
  // CPU time / wall time of each side's loops: how many threads each kept busy (on a loaded machine, fewer)
  const cpu = { ours: 0, theirs: 0, one: 0 }, wall = { ours: 0, theirs: 0, one: 0 };
  const track = (k: 'ours' | 'theirs' | 'one', fn: () => number[]) => {
    const c0 = process.cpuUsage(), w0 = performance.now();
    const ts = fn();
    const c = process.cpuUsage(c0);
    cpu[k] += (c.user + c.system) / 1000; wall[k] += performance.now() - w0;
    return ts;
  };
  for (let r = 0; r < rounds; r++) {
    tOurs.push(...track('ours', () => time(ours)));
    tTheirs.push(...track('theirs', () => time(theirs)));
    tOne.push(...track('one', () => time(oursOne)));
  }
  const mo = median(tOurs), mt = median(tTheirs);
  console.log(`# conv3×3 forward B${B} C${C}→${C} ${H}×${W} pad 1, ${threads} threads, ${rounds} rounds × ${reps} reps, medians`);
  console.log(`  ours  wasm (${info.isa}, ${info.conv}, ${info.threads} threads, NCHW, result read out): ${ms(mo)}`);
  console.log(`  tfjs-backend-wasm ${tfw.version_wasm} (XNNPACK, ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD'}, ` +
    `${tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? `threaded build, setThreadsCount(${threads}), getThreadsCount() ${tfw.getThreadsCount()}` : 'one thread'}, NHWC): ${ms(mt)}`);
  console.log(`  ours  wasm, 1 thread: ${ms(median(tOne))} (tfjs / ours-1-thread ${(mt / median(tOne)).toFixed(2)}×)`);
  console.log(`  busy threads (process CPU time / wall time): ours ${(cpu.ours / wall.ours).toFixed(2)}, tfjs ${(cpu.theirs / wall.theirs).toFixed(2)}, ours-1-thread ${(cpu.one / wall.one).toFixed(2)}`);
  console.log(`  ratio tfjs / ours: ${(mt / mo).toFixed(2)}× (> 1: ours faster); max |ours − tfjs| ${err.toExponential(2)} (max |y| ${ref.toFixed(2)})`);
}

if (!o['skip-unet']) {
  const run = (backend: string) => JSON.parse(execFileSync(process.execPath,
    ['--import', 'tsx', 'bench/unet.ts', '--ours', '--preset', 'tiny', '--batch', '64', '--reps', String(reps)],
    { env: { ...process.env, DIFFUSE_BACKEND: backend, DIFFUSE_NUM_THREADS: String(threads) }, encoding: 'utf8' }).trim().split('\n').pop()!);
  const res: Record<string, { train: number[]; sample: number[] }> = { wasm: { train: [], sample: [] }, native: { train: [], sample: [] } };
  const unetRounds = Math.max(1, Math.min(rounds, 3));
  for (let r = 0; r < unetRounds; r++) for (const be of ['wasm', 'native']) {
    const j = run(be);
    res[be].train.push(...j.train_s); res[be].sample.push(...j.sample_s);
  }
  console.log(`# tiny UNet, batch 64, 28×28, ${threads} threads, ${unetRounds} rounds × ${reps} reps, medians`);
  for (const k of ['train', 'sample'] as const) {
    const w = median(res.wasm[k]), n = median(res.native[k]);
    console.log(`  ${k === 'train' ? 'training step' : 'sampling step'}: wasm ${ms(w)}, native ${ms(n)}, wasm / native ${(w / n).toFixed(2)}×`);
  }
}
