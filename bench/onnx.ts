/**
 * The sampling step (one no-grad evaluation of the default UNet) in diffuse (native backend) and in
 * onnxruntime-node (CPU execution provider) running diffuse's ONNX export of the same model, with the same
 * thread count, side by side in one run, alternating rounds; prints medians and the ratio.
 *
 * Usage: npx tsx bench/onnx.ts [--preset tiny] [--batch 64] [--threads 2] [--reps 5] [--rounds 3]
 */
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';

const { values: o } = parseArgs({
  options: {
    preset: { type: 'string', default: 'tiny' }, batch: { type: 'string', default: '64' }, threads: { type: 'string', default: '2' },
    reps: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, side: { type: 'string' },
  },
});

if (o.side) {
  // Child mode: one side, printing JSON. Each side runs in its own process, so their thread pools never meet.
  const D = await import('../src/index.js');
  const { exportOnnx } = await import('../src/interop/onnx.js');
  const B = Number(o.batch), reps = Number(o.reps), threads = Number(o.threads);
  const model = new D.UNet(D.unetPreset(o.preset as 'tiny', { numClasses: 10 }), { seed: 0, zeroInit: false }).eval();
  const g = new D.Generator(0);
  const x = D.randn([B, 1, 28, 28], g);
  const tv = Float32Array.from({ length: B }, () => g.int(1000));
  const cv = Int32Array.from({ length: B }, () => g.int(11));
  let step: () => Promise<void> | void;
  if (o.side === 'ort') {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(exportOnnx(model), { intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: ['cpu'] });
    const feeds = {
      sample: new ort.Tensor('float32', Float32Array.from(x.data), [...x.shape]), timestep: new ort.Tensor('float32', tv, [B]),
      class_labels: new ort.Tensor('int64', BigInt64Array.from([...cv].map(BigInt)), [B]),
    };
    step = async () => { await session.run(feeds); };
  } else {
    const t = D.tensor(tv, [B]), c = D.tensor(cv, [B], { dtype: 'int32' });
    step = () => { D.noGrad(() => model.forward(x, t, c)); };
  }
  const w0 = performance.now();
  for (let i = 0; i < 3 || performance.now() - w0 < 500; i++) await step();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); await step(); ts.push((performance.now() - t0) / 1000); }
  console.log(JSON.stringify({ params: model.numParameters(), sample_s: ts }));
} else {
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const env = { ...process.env, DIFFUSE_BACKEND: 'native', DIFFUSE_NUM_THREADS: o.threads!, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: o.threads! };
  const res = { diffuse: [] as number[], ort: [] as number[] };
  let params = 0;
  for (let r = 0; r < Number(o.rounds); r++) {
    for (const side of ['diffuse', 'ort'] as const) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/onnx.ts', '--side', side, '--preset', o.preset!, '--batch', o.batch!,
        '--threads', o.threads!, '--reps', o.reps!], { env, encoding: 'utf8' });
      const j = JSON.parse(out.trim().split('\n').pop()!);
      res[side].push(...j.sample_s);
      params = j.params;
    }
  }
  const a = median(res.diffuse), b = median(res.ort);
  console.log(`# sampling step — UNet preset ${o.preset} (${params.toLocaleString('en-US')} parameters), batch ${o.batch}, 28×28, ` +
    `${o.threads} threads each, ${o.rounds} rounds × ${o.reps} reps, medians`);
  console.log(`diffuse native          ${(a * 1000).toFixed(1)} ms`);
  console.log(`onnxruntime-node (CPU)  ${(b * 1000).toFixed(1)} ms`);
  console.log(`ratio diffuse / onnxruntime: ${(a / b).toFixed(2)}× the time`);
}
