/**
 * WebGPU speed: one training step (forward, backward, AdamW, EMA) and one sampling step (a no-grad network
 * evaluation) of the UNet (default: the tiny preset, MNIST-sized, 10 classes) on whatever WebGPU adapter is
 * present, against the native CPU backend (bench/unet.ts --ours, in a child process) and, where CUDA is
 * available, against PyTorch CUDA float32 on the same GPU (bench/webgpu_torch.py, the transcription in
 * bench/unet_torch.py). Every timed step ends with a wait for the GPU (webgpuSync / torch.cuda.synchronize).
 * Prints medians and ratios, with the adapter's vendor / architecture / description.
 *
 * Usage: node --import tsx bench/webgpu.ts [--batch 64] [--steps 10] [--preset tiny] [--no-cpu] [--no-torch] [--tf32]
 * The PyTorch peer runs with $DIFFUSE_TORCH_PYTHON (default /usr/bin/python3 if it exists, else python3).
 * Needs only node_modules/webgpu and tsx besides the sources (no native addon when --no-cpu).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';

process.env.XDG_RUNTIME_DIR ??= tmpdir();
const { values: o } = parseArgs({
  options: {
    batch: { type: 'string', default: '64' }, steps: { type: 'string', default: '10' }, preset: { type: 'string', default: 'tiny' },
    'no-cpu': { type: 'boolean', default: false }, 'no-torch': { type: 'boolean', default: false }, tf32: { type: 'boolean', default: false },
  },
});
const B = Number(o.batch), reps = Number(o.steps);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

// ---- WebGPU
const D = await import('../src/index.js');
await D.useBackendAsync('webgpu');
const info = D.webgpuStats()!.adapter;
console.log(`# adapter: ${info.description || info.device || '?'} (vendor ${info.vendor || '?'}, architecture ${info.architecture || '?'}, device ${info.device || '?'})`);
const model = new D.UNet(D.unetPreset(o.preset as 'tiny', { numClasses: 10 }), { seed: 0 });
const opt = new D.AdamW(model, { lr: 2e-4, weightDecay: 0 }), ema = new D.EMA(model, { decay: 0.999 });
const g = new D.Generator(0);
const x = D.randn([B, 1, 28, 28], g), noise = D.randn([B, 1, 28, 28], g);
const t = D.tensor(Array.from({ length: B }, () => g.int(1000)), [B]);
const y = D.tensor(Array.from({ length: B }, () => g.int(11)), [B], { dtype: 'int32' });
// Each step in a scope: its intermediates go back to the pool at its end (steady memory, no GC waits).
const trainStep = () => D.scope(() => {
  D.mseLoss(model.forward(x, t, y), noise).backward();
  opt.step();
  opt.zeroGrad();
  ema.update();
});
const sampleStep = () => D.scope(() => D.noGrad(() => { model.eval(); model.forward(x, t, y); model.train(); }));
async function timed(fn: () => void): Promise<{ times: number[]; dispatches: number }> {
  const w0 = performance.now();
  for (let i = 0; i < 3 || performance.now() - w0 < 1000; i++) { fn(); await D.webgpuSync(); }
  const times: number[] = [];
  const d0 = D.webgpuStats()!.dispatches;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    await D.webgpuSync();
    times.push((performance.now() - t0) / 1000);
  }
  return { times, dispatches: (D.webgpuStats()!.dispatches - d0) / reps };
}
const gpu = { train: await timed(trainStep), sample: await timed(sampleStep) };
const mem = D.webgpuStats()!;

// ---- native CPU (child process, as bench/unet.ts measures it)
let cpu: { train_s: number[]; sample_s: number[] } | string = 'skipped (--no-cpu)';
if (!o['no-cpu']) {
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/unet.ts', '--ours', '--preset', o.preset!, '--batch', String(B), '--reps', String(Math.min(reps, 5))],
      { env: { ...process.env, DIFFUSE_BACKEND: 'native', OPENBLAS_NUM_THREADS: '1' }, encoding: 'utf8' });
    cpu = JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    cpu = `failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

// ---- PyTorch CUDA
let torch: { train_s: number[]; sample_s: number[]; device: string; torch: string } | string = 'skipped (--no-torch)';
if (!o['no-torch']) {
  // $DIFFUSE_TORCH_PYTHON, else the first of /usr/bin/python3 and python3 that imports torch.
  const hasTorch = (py: string) => { try { execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' }); return true; } catch { return false; } };
  const candidates = existsSync('/usr/bin/python3') ? ['/usr/bin/python3', 'python3'] : ['python3'];
  const py = process.env.DIFFUSE_TORCH_PYTHON ?? candidates.find(hasTorch) ?? candidates[0];
  try {
    const out = execFileSync(py, ['bench/webgpu_torch.py', '--preset', o.preset!, '--batch', String(B), '--reps', String(reps), ...(o.tf32 ? ['--tf32'] : [])],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    torch = r.error ? `unavailable (${r.error})` : r;
  } catch (e) {
    const err = (e as { stderr?: string }).stderr?.trim().split('\n').pop();
    torch = `unavailable (${py}: ${err || (e as Error).message.split('\n')[0]})`;
  }
}

console.log(`# UNet ${o.preset} (${model.numParameters().toLocaleString('en-US')} parameters), batch ${B}, 28×28, ${reps} timed steps, medians`);
console.log(`# webgpu: ${gpu.train.dispatches.toFixed(0)} dispatches per training step, ${gpu.sample.dispatches.toFixed(0)} per sampling step; ` +
  `pool ${(mem.allocatedBytes / 2 ** 20).toFixed(0)} MiB in ${mem.allocatedBuffers} buffers`);
if (typeof cpu === 'string') console.log(`# native CPU: ${cpu}`);
if (typeof torch === 'string') console.log(`# PyTorch CUDA: ${torch}`);
else console.log(`# PyTorch ${torch.torch} on ${torch.device}, float32${o.tf32 ? ' (TF32 allowed)' : ' (TF32 off)'}`);
console.log('| step | webgpu (ms) | native CPU (ms) | webgpu / CPU | PyTorch CUDA (ms) | webgpu / PyTorch |\n|---|---:|---:|---:|---:|---:|');
for (const k of ['train', 'sample'] as const) {
  const a = median(gpu[k].times) * 1000;
  const c = typeof cpu === 'string' ? null : median(k === 'train' ? cpu.train_s : cpu.sample_s) * 1000;
  const p = typeof torch === 'string' ? null : median(k === 'train' ? torch.train_s : torch.sample_s) * 1000;
  const f = (v: number | null, d = 1) => (v === null ? '—' : v.toFixed(d));
  console.log(`| ${k === 'train' ? 'training step (fwd + bwd + AdamW + EMA)' : 'sampling step (one network evaluation)'} | ${f(a)} | ${f(c)} | ` +
    `${c === null ? '—' : (a / c).toFixed(2)} | ${f(p, 2)} | ${p === null ? '—' : (a / p).toFixed(2)} |`);
}
process.exit(0);
