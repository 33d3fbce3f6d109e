/**
 * The speed bar of the command-line issue: one training step (forward, backward, AdamW, EMA) and one sampling
 * step (a no-grad network evaluation) of the default UNet at the default batch size, in diffuse (native backend)
 * and in PyTorch (bench/unet_torch.py, the same UNet), side by side in one run, alternating rounds.
 * PyTorch gets its fair setting: OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(threads).
 *
 * Usage: npx tsx bench/unet.ts [--preset tiny] [--batch 64] [--threads 2] [--reps 5] [--rounds 3]
 *        npx tsx bench/unet.ts --paired [--pairs 15]   (both sides stay up and alternate single steps: each
 *                                           pair runs under the same load, its ratio is one sample; medians of those)
 *        npx tsx bench/unet.ts --profile   (ours only: where each step's time goes, by kernel kind; bench/profile.ts;
 *                                           PROFILE_BY_KERNEL=1: by kernel)
 */
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    preset: { type: 'string', default: 'tiny' }, batch: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' }, reps: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' },
    python: { type: 'string', default: '/usr/bin/python3' }, ours: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false }, serve: { type: 'boolean', default: false },
    paired: { type: 'boolean', default: false }, pairs: { type: 'string', default: '15' },
  },
});

if (o.ours) {
  // Child mode: our side, printing JSON like the PyTorch script.
  const { AdamW, EMA, Generator, UNet, getBackend, mseLoss, noGrad, randn, scope, tensor, unetPreset } = await import('../src/index.js');
  const B = Number(o.batch), reps = Number(o.reps);
  const model = new UNet(unetPreset(o.preset as 'tiny', { numClasses: 10 }), { seed: 0 });
  const opt = new AdamW(model, { lr: 2e-4, weightDecay: 0 }), ema = new EMA(model, { decay: 0.999 });
  const g = new Generator(0);
  const x = randn([B, 1, 28, 28], g), noise = randn([B, 1, 28, 28], g);
  const t = tensor(Array.from({ length: B }, () => g.int(1000)), [B]);
  const y = tensor(Array.from({ length: B }, () => g.int(11)), [B], { dtype: 'int32' });
  // Each step in a scope, as the trainer and samplers run them: backends that keep tensors in their own memory
  // (wasm, webgpu) release a step's intermediates at its end; on native it records nothing.
  const trainStep = () => scope(() => {
    mseLoss(model.forward(x, t, y), noise).backward();
    opt.step();
    opt.zeroGrad();
    ema.update();
  });
  const sampleStep = () => scope(() => noGrad(() => { model.eval(); model.forward(x, t, y); model.train(); }));
  const timed = (fn: () => void) => {
    // warm-up to a steady state, the same rule as unet_torch.py: at least 3 runs and 0.5 s
    const w0 = performance.now();
    for (let i = 0; i < 3 || performance.now() - w0 < 500; i++) fn();
    const ts: number[] = [];
    for (let i = 0; i < reps; i++) { const t0 = performance.now(); fn(); ts.push((performance.now() - t0) / 1000); }
    return ts;
  };
  if (o.profile) {
    const { profiler, profileTable } = await import('./profile.js');
    const measure = profiler(getBackend());
    console.log(`# Where the time goes — preset ${o.preset}, batch ${B}, ${getBackend().name} backend, ${process.env.DIFFUSE_NUM_THREADS ?? 'default'} threads, ${reps} steps each`);
    console.log(profileTable('training step (fwd + bwd + AdamW + EMA)', await measure(trainStep, reps)));
    console.log(profileTable('sampling step (one network evaluation)', await measure(sampleStep, reps)));
  } else if (o.serve) {
    // --paired's child: warm both steps, then time one step per line read
    timed(trainStep);
    timed(sampleStep);
    console.log('ready');
    const steps = { train: trainStep, sample: sampleStep };
    for await (const line of createInterface({ input: process.stdin })) {
      const t0 = performance.now();
      steps[line.trim() as 'train' | 'sample']();
      console.log((performance.now() - t0) / 1000);
    }
  } else {
    console.log(JSON.stringify({ params: model.numParameters(), train_s: timed(trainStep), sample_s: timed(sampleStep) }));
  }
} else if (o.paired) {
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const env = { ...process.env, DIFFUSE_BACKEND: 'native', DIFFUSE_NUM_THREADS: o.threads!, OPENBLAS_NUM_THREADS: '1' };
  /** A side kept running: `step(kind)` sends one request and resolves to its seconds. */
  const side = (cmd: string, args: string[]) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async () => { const r = await lines.next(); if (r.done) throw new Error(`${cmd} ${args[0]} ended`); return r.value; };
    return {
      ready: async () => { while ((await next()).trim() !== 'ready'); },
      step: async (kind: string) => { child.stdin!.write(`${kind}\n`); return Number(await next()); },
      close: () => child.stdin!.end(),
    };
  };
  const common = ['--preset', o.preset!, '--batch', o.batch!];
  const ours = side(process.execPath, ['--import', 'tsx', 'bench/unet.ts', '--ours', '--serve', ...common]);
  const torch = side(o.python!, ['bench/unet_torch.py', '--serve', '--threads', o.threads!, ...common]);
  await ours.ready();  // one side warms up while the other waits
  await torch.ready();
  const res = { train: [] as [number, number][], sample: [] as [number, number][] };
  for (let i = 0; i < Number(o.pairs); i++) {
    for (const k of ['train', 'sample'] as const) {
      // alternate which side goes first, so that neither always follows the other's cache and thermal state
      const [a, b] = i % 2 ? [await torch.step(k), await ours.step(k)].reverse() : [await ours.step(k), await torch.step(k)];
      res[k].push([a, b]);
    }
  }
  ours.close();
  torch.close();
  console.log(`# UNet step benchmark, paired — preset ${o.preset}, batch ${o.batch}, 28×28, ${o.threads} threads, ${o.pairs} pairs ` +
    `of single steps, medians; OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? 'unset'}`);
  console.log('| step | ours (s) | PyTorch (s) | median of pair ratios | pair ratios: quartiles |\n|---|---:|---:|---:|---:|');
  for (const k of ['train', 'sample'] as const) {
    const r = res[k].map(([a, b]) => a / b).sort((p, q) => p - q), q = (f: number) => r[Math.min(r.length - 1, Math.floor(f * r.length))];
    console.log(`| ${k === 'train' ? 'training step (fwd + bwd + AdamW + EMA)' : 'sampling step (one network evaluation)'} | ` +
      `${median(res[k].map((p) => p[0])).toFixed(3)} | ${median(res[k].map((p) => p[1])).toFixed(3)} | **${median(r).toFixed(3)}** | ` +
      `${q(0.25).toFixed(3)}–${q(0.75).toFixed(3)} |`);
  }
} else if (o.profile) {
  const env = { ...process.env, DIFFUSE_BACKEND: 'native', DIFFUSE_NUM_THREADS: o.threads! };
  execFileSync(process.execPath, ['--import', 'tsx', 'bench/unet.ts', '--ours', '--profile', '--preset', o.preset!, '--batch', o.batch!, '--reps', o.reps!],
    { env, stdio: 'inherit' });
} else {
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const ours = { train: [] as number[], sample: [] as number[] }, torch = { train: [] as number[], sample: [] as number[] };
  // per round: the ratio of the two sides' medians (the machine's speed drifts between rounds, not within one)
  const roundRatios = { train: [] as number[], sample: [] as number[] };
  const env = { ...process.env, DIFFUSE_BACKEND: 'native', DIFFUSE_NUM_THREADS: o.threads!, OPENBLAS_NUM_THREADS: '1' };
  let params = 0;
  for (let r = 0; r < Number(o.rounds); r++) {
    const a = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', 'bench/unet.ts', '--ours', '--preset', o.preset!, '--batch', o.batch!, '--reps', o.reps!],
      { env, encoding: 'utf8' }).trim().split('\n').pop()!);
    const b = JSON.parse(execFileSync(o.python!, ['bench/unet_torch.py', '--preset', o.preset!, '--batch', o.batch!, '--threads', o.threads!, '--reps', o.reps!],
      { env, encoding: 'utf8' }).trim().split('\n').pop()!);
    ours.train.push(...a.train_s); ours.sample.push(...a.sample_s); torch.train.push(...b.train_s); torch.sample.push(...b.sample_s);
    for (const k of ['train', 'sample'] as const) roundRatios[k].push(median(a[`${k}_s`]) / median(b[`${k}_s`]));
    params = a.params;
  }
  console.log(`# UNet step benchmark — preset ${o.preset} (${params.toLocaleString('en-US')} parameters), batch ${o.batch}, 28×28, ` +
    `${o.threads} threads, ${o.rounds} rounds × ${o.reps} reps, medians; OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? 'unset'}`);
  console.log('| step | ours (s) | PyTorch (s) | ratio ours/PyTorch | median of per-round ratios (range) |\n|---|---:|---:|---:|---:|');
  for (const k of ['train', 'sample'] as const) {
    const a = median(ours[k]), b = median(torch[k]), rr = roundRatios[k];
    console.log(`| ${k === 'train' ? 'training step (fwd + bwd + AdamW + EMA)' : 'sampling step (one network evaluation)'} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(a / b).toFixed(3)} | ` +
      `${median(rr).toFixed(3)} (${Math.min(...rr).toFixed(3)}–${Math.max(...rr).toFixed(3)}) |`);
  }
}
