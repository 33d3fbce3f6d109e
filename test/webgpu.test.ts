/**
 * The WebGPU backend (Dawn through the `webgpu` package; Mesa lavapipe where there is no GPU).
 *
 * - Parity: every PyTorch fixture of test/parity.test.ts, forward and gradients, read back asynchronously.
 *   Tolerance 1e-3 in the parity metric (max |error| / max |reference|): GPU reductions, tiled GEMMs and
 *   the erf approximation reorder or round differently from the CPU backends' 1e-4.
 * - Without an adapter these tests skip with a message, except under CI (CI set), where they fail: CI
 *   installs lavapipe (.ci/install-webgpu.sh) and must run them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';

import * as D from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { normalizedMaxError, worstElement } from './helpers/compare.js';
import { BUILDERS, block, fixtureNames, loadFixture, makeInputs, type Fixture } from './helpers/fixtures.js';
import { Trainer, type RunConfig } from '../src/train/index.js';
import { unetPreset } from '../src/nn/unet.js';
import { normalizeScheduleConfig } from '../src/diffusion/index.js';
import type { ImageDataset } from '../src/data/index.js';

process.env.XDG_RUNTIME_DIR ??= tmpdir();
const TOL = 1e-3;

let unavailable: string | null = null;
try {
  await D.initWebGPU();
} catch (e) {
  unavailable = (e as Error).message;
}
/** Options for every WebGPU test: skip without an adapter, unless under CI. */
const opts = unavailable && !process.env.CI ? { skip: `no WebGPU adapter: ${unavailable}` } : {};

if (unavailable && process.env.CI) {
  test('WebGPU adapter (required under CI)', () => {
    assert.fail(`CI is set but WebGPU did not start: ${unavailable}`);
  });
}

async function check(label: string, actual: Tensor | null | undefined, expected: { shape: number[]; data: ArrayLike<number> },
  problems: string[]): Promise<number> {
  if (!actual) { problems.push(`${label}: missing (no gradient computed)`); return Infinity; }
  if (actual.shape.join(',') !== expected.shape.join(',')) {
    problems.push(`${label}: shape [${actual.shape.join(', ')}], expected [${expected.shape.join(', ')}]`);
    return Infinity;
  }
  const a = await actual.read();
  const err = normalizedMaxError(a, expected.data);
  if (!(err <= TOL)) problems.push(`${label}: error ${err.toExponential(2)} > ${TOL} (${worstElement(a, expected.data)})`);
  return err;
}

async function runFixture(fx: Fixture, build: (x: Record<string, Tensor>, args: Record<string, any>) => Tensor | Tensor[]):
  Promise<{ problems: string[]; worst: number }> {
  const inputs = makeInputs(fx);
  const result = build(inputs, fx.args);
  const outs = Array.isArray(result) ? result : [result];
  const problems: string[] = [];
  let worst = 0;
  if (outs.length !== fx.outs.length) return { problems: [`op returned ${outs.length} outputs, expected ${fx.outs.length}`], worst: Infinity };
  for (const [i, o] of outs.entries()) {
    worst = Math.max(worst, await check(outs.length > 1 ? `out.${i}` : 'out', o, fx.outs[i], problems));
  }
  if (fx.grads.size > 0) {
    outs.forEach((o, i) => {
      const g = fx.gouts[i];
      if (o.requiresGrad) o.backward(D.tensor(Float32Array.from(g.data), g.shape));
    });
    for (const [name, ref] of fx.grads) worst = Math.max(worst, await check(`grad.${name}`, inputs[name].grad, ref, problems));
  }
  return { problems, worst };
}

describe('parity vs PyTorch [webgpu]', opts, () => {
  const names = fixtureNames();
  for (const name of names) {
    test(name, async (t) => {
      D.setBackend('webgpu');
      const fx = loadFixture(name);
      const build = BUILDERS[fx.op];
      assert.ok(build, `no builder for op ${fx.op}`);
      const { problems, worst } = await runFixture(fx, build);
      t.diagnostic(`max normalized error ${worst.toExponential(2)}`);
      assert.ok(problems.length === 0, `webgpu ${name} (op ${fx.op}):\n  ${problems.join('\n  ')}`);
    });
  }
  test('block (fused groupNorm+SiLU, scaledDotProductAttention)', async (t) => {
    D.setBackend('webgpu');
    const { problems, worst } = await runFixture(loadFixture('block'), (x, a) => block(x, a, true));
    t.diagnostic(`max normalized error ${worst.toExponential(2)}`);
    assert.ok(problems.length === 0, `webgpu block fused:\n  ${problems.join('\n  ')}`);
  });
});

// ---------------------------------------------------------------- training

/** A UNet small enough for lavapipe (C=8, two levels, 8×8 images) on a fixed random dataset of 32 images. */
function tinyRun(steps: number): { config: RunConfig; dataset: ImageDataset } {
  const n = 32, gen = new D.Generator(5);
  const images = gen.fillUniform(new Float32Array(n * 64), -1, 1);
  const dataset: ImageDataset = {
    name: 'toy', images, labels: Int32Array.from({ length: n }, (_, i) => i % 2), n, channels: 1, height: 8, width: 8,
    numClasses: 2, classNames: ['a', 'b'], flipSafe: true,
  };
  const config: RunConfig = {
    dataset: 'toy',
    model: { kind: 'unet', config: unetPreset('tiny', { modelChannels: 8, channelMult: [1, 2], attentionLevels: [1], imageSize: 8, numClasses: 2 }) },
    schedule: normalizeScheduleConfig({ kind: 'linear', T: 1000 }),
    objective: { prediction: 'epsilon', variance: 'fixedLarge', weighting: { kind: 'none' } },
    trainer: {
      steps, batchSize: 4, accumulate: 1, lr: 2e-3, minLr: 1e-4, warmupSteps: 1, weightDecay: 0, gradClip: 1, emaDecay: 0.99,
      condDropout: 0.1, seed: 3, sampleEvery: 0, checkpointEvery: 0, previewSampler: { kind: 'ddim', steps: 2 }, previewCount: 4,
    },
  };
  return { config, dataset };
}

describe('training [webgpu]', opts, () => {
  test('reaches the CPU loss for the same seed and steps (1e-3 relative per step)', async (t) => {
    const steps = 6;
    const cpu = D.availableBackends().includes('native') ? 'native' : 'js';
    D.setBackend(cpu);
    const { config, dataset } = tinyRun(steps);
    const ref = new Trainer(config, dataset);
    const cpuLoss: number[] = [], cpuNorm: number[] = [];
    for (let i = 0; i < steps; i++) { const r = await ref.trainStep(); cpuLoss.push(r.loss); cpuNorm.push(r.gradNorm); }
    D.setBackend('webgpu');
    const gpu = new Trainer(config, dataset);
    const gpuLoss: number[] = [], gpuNorm: number[] = [];
    for (let i = 0; i < steps; i++) { const r = await gpu.trainStep(); gpuLoss.push(r.loss); gpuNorm.push(r.gradNorm); }
    const rel = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]) / Math.abs(b[i])));
    t.diagnostic(`${cpu} loss ${cpuLoss.map((v) => v.toFixed(6)).join(' ')}`);
    t.diagnostic(`webgpu loss ${gpuLoss.map((v) => v.toFixed(6)).join(' ')}`);
    t.diagnostic(`max relative difference: loss ${rel(gpuLoss, cpuLoss).toExponential(2)}, grad norm ${rel(gpuNorm, cpuNorm).toExponential(2)}`);
    assert.ok(rel(gpuLoss, cpuLoss) <= 1e-3, `losses differ: ${gpuLoss} vs ${cpuLoss}`);
    assert.ok(rel(gpuNorm, cpuNorm) <= 1e-3, `gradient norms differ: ${gpuNorm} vs ${cpuNorm}`);
    // The weights agree too (EMA shadows included).
    const [pg, pc] = [[...gpu.model.namedParameters()], [...ref.model.namedParameters()]];
    let worst = 0;
    for (let i = 0; i < pg.length; i++) worst = Math.max(worst, normalizedMaxError(await pg[i][1].read(), pc[i][1].data));
    const [eg, ec] = [await gpu.ema.stateDict(), await ref.ema.stateDict()];
    for (const [k, v] of ec.tensors) worst = Math.max(worst, normalizedMaxError(eg.tensors.get(k)!.data, v.data));
    // The checkpoint read back from the device (what saveCheckpointAsync and the explorer's download write)
    // holds the same weights, and the same trainer state apart from the elapsed time.
    const [ckGpu, ckCpu] = [await gpu.checkpointContents(0), await ref.checkpointContents(0)];
    for (const role of ['model', 'ema', 'optimizer']) {
      for (const [k, v] of ckCpu.groups[role]) worst = Math.max(worst, normalizedMaxError(ckGpu.groups[role].get(k)!.data as Float32Array, v.data as Float32Array));
    }
    assert.deepEqual({ ...ckGpu.state, lastLoss: 0 }, { ...ckCpu.state, lastLoss: 0 });
    t.diagnostic(`weights after ${steps} steps: max normalized difference ${worst.toExponential(2)}`);
    // Looser than the losses: AdamW divides by √v, so weights whose gradients are near zero move by amounts
    // that depend on the last bits of those gradients.
    assert.ok(worst <= 5e-3, `weights differ by ${worst}`);
  });

  test('200 training steps keep the buffer pool bounded (no GPU memory leak)', async (t) => {
    D.setBackend('webgpu');
    const { config, dataset } = tinyRun(200);
    const trainer = new Trainer(config, dataset);
    const at: { step: number; allocated: number; inUse: number; buffers: number }[] = [];
    for (let i = 0; i < 200; i++) {
      await trainer.trainStep();
      if (i === 9 || i === 99 || i === 199) {
        const s = D.webgpuStats()!;
        at.push({ step: i + 1, allocated: s.allocatedBytes, inUse: s.inUseBytes, buffers: s.allocatedBuffers });
      }
    }
    for (const a of at) t.diagnostic(`after step ${a.step}: ${a.buffers} buffers, ${(a.allocated / 1024).toFixed(0)} KiB pooled, ${(a.inUse / 1024).toFixed(0)} KiB in use`);
    // Steady state from step 10 on: no new buffers, and what is in use between steps does not grow. (In use
    // may shrink: buffers of earlier tests' tensors return to the pool when the collector finalizes them.)
    assert.ok(at[2].allocated <= at[0].allocated, `the pool grew between step 10 and step 200: ${at[0].allocated} → ${at[2].allocated} bytes`);
    assert.ok(at[2].inUse <= at[0].inUse, `memory in use between steps grew: ${at[0].inUse} → ${at[2].inUse} bytes`);
    assert.ok(at[2].inUse <= at[1].inUse, `memory in use between steps grew: ${at[1].inUse} → ${at[2].inUse} bytes`);
  });

  test('a scope releases intermediates, and keeps what it returns', async () => {
    D.setBackend('webgpu');
    const x = D.randn([64, 64], new D.Generator(1));
    const before = D.webgpuStats()!.inUseBytes;
    const y = D.scope(() => D.matmul(D.exp(x), D.softmax(x, -1)).mul(2));
    const after = D.webgpuStats()!.inUseBytes;
    assert.ok(y.onDevice && !y.isDisposed);
    // x migrated to the GPU inside the scope (one buffer, owned by x) and y survives: exactly two 16 KiB buffers.
    assert.equal(after - before, 2 * 64 * 64 * 4);
    const expected = D.matmul(D.exp(x), D.softmax(x, -1)).mul(2);
    assert.ok(normalizedMaxError(await y.read(), await expected.read()) === 0);
    assert.throws(() => y.dispose() ?? y.data, /disposed/);
  });

  test('sync .data on a GPU tensor says to read asynchronously', () => {
    D.setBackend('webgpu');
    const y = D.exp(D.tensor([1, 2, 3]));
    assert.throws(() => y.data, /lives on webgpu: read it with `await tensor.read\(\)`/);
  });
});
