// `diffuse export --format pytorch` against diffuse itself: on one batch (same images, timesteps, noise and
// labels) the exported project's loss equals diffuse's, its gradients after DDP's all-reduce over 2 gloo
// processes equal one process's gradients of the whole batch, and `torchrun` trains from the export and
// writes a checkpoint that `diffuse sample` and `diffuse train --resume` load.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Generator, randn, tensor } from '../src/index.js';
import { loadMnist } from '../src/data/index.js';
import { trainingLoss } from '../src/diffusion/index.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';
import { loadModelFromCheckpoint, modelFunction, readCheckpointJson } from '../src/train/index.js';
import { makeTinyRun } from './helpers/tiny-run.js';

const PY = '/usr/bin/python3';
const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const skip = hasTorch || process.env.CI ? false : 'PyTorch is not installed (apt-get install python3-torch)';
const env = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };
// Debian's PyTorch 1.13 on Python 3.11: torchrun's default --redirects/--tee (0) hit an enum change of 3.11
// ("'NoneType' object has no attribute 'get'"); non-zero values work.
const torchrun = (...args: string[]) => [PY, ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--redirects', '1', '--tee', '1', ...args]] as const;

function run(cmd: string, args: readonly string[], cwd?: string) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('diffuse export --format pytorch', { skip }, () => {
  test('same loss as diffuse, DDP gradients equal the whole batch\'s, and torchrun trains from the export', (t) => {
    const root = mkdtempSync(join(tmpdir(), 'diffuse-export-'));
    const runDir = join(root, 'run'), proj = join(root, 'torch');
    return (async () => {
      await makeTinyRun(runDir, { size: 28 });
      run(process.execPath, ['bin/diffuse.mjs', 'export', '--checkpoint', runDir, '--format', 'pytorch', '--out', proj]);
      for (const f of ['train.py', 'unet_torch.py', 'diffusion.py', 'checkpoint.py', 'data.py', 'data.safetensors', 'init/checkpoint.json']) {
        assert.ok(existsSync(join(proj, f)), f);
      }

      // One batch of 8: the first training digits, timesteps across the schedule, noise, labels with the null class.
      const B = 8, ds = loadMnist({ split: 'train', limit: 64 }), per = 28 * 28;
      const gen = new Generator(42);
      const x0 = tensor(ds.images.slice(0, B * per), [B, 1, 28, 28]);
      const ts = Int32Array.from({ length: B }, (_, i) => [0, 999, 17, 500, 250, 731, 3, 999][i]);
      const noise = randn([B, 1, 28, 28], gen);
      const labels = Int32Array.from({ length: B }, (_, i) => (i === 5 ? 10 : ds.labels[i]));
      const batch = join(root, 'batch.safetensors');
      writeFileSync(batch, serializeSafetensors({
        x0: { dtype: 'F32', shape: [B, 1, 28, 28], data: x0.data as Float32Array },
        t: { dtype: 'I32', shape: [B], data: ts },
        noise: { dtype: 'F32', shape: [B, 1, 28, 28], data: noise.data as Float32Array },
        labels: { dtype: 'I32', shape: [B], data: labels },
      }));

      // diffuse's loss and gradients on it (training weights, as the trainer's first step).
      const { model, schedule, config } = loadModelFromCheckpoint(runDir, 'model');
      model.train();
      const { loss } = trainingLoss(modelFunction(model), schedule, x0, {
        ...config.objective, t: Float64Array.from(ts), noise, cond: tensor(labels, [B], { dtype: 'int32' }),
      });
      const ours = loss.item();
      loss.backward();

      // Rank 0 also runs the whole batch in one process (whole.*) after the all-reduce.
      run(...torchrun('train.py', '--check', batch, '--check-out', join(root, 'ddp.safetensors')), proj);
      const ddp = parseSafetensors(readFileSync(join(root, 'ddp.safetensors'))).tensors;
      const single = new Map([...ddp].filter(([k]) => k.startsWith('whole.')).map(([k, v]) => [k.slice(6), v]));
      const ddpLoss = ddp.get('loss')!.data[0], singleLoss = single.get('loss')!.data[0];
      t.diagnostic(`first-step loss: diffuse ${ours}, DDP ${ddpLoss} (relative ${Math.abs(ddpLoss - ours) / Math.abs(ours)}), one process ${singleLoss}`);
      assert.ok(Math.abs(ddpLoss - ours) / Math.abs(ours) <= 1e-4, `first-step loss: DDP ${ddpLoss}, diffuse ${ours}`);
      assert.ok(Math.abs(singleLoss - ours) / Math.abs(ours) <= 1e-4, `first-step loss: one process ${singleLoss}, diffuse ${ours}`);

      const names = [...model.namedParameters()].map(([n]) => n);
      let worstDdp = 0, worstOurs = 0, scale = 0;
      for (const n of names) {
        const a = ddp.get(`grad.${n}`)!.data, b = single.get(`grad.${n}`)!.data;
        const g = [...model.namedParameters()].find(([m]) => m === n)![1].grad!.data;
        assert.equal(a.length, b.length, n);
        for (let i = 0; i < a.length; i++) {
          scale = Math.max(scale, Math.abs(b[i]));
          worstDdp = Math.max(worstDdp, Math.abs(a[i] - b[i]));
          worstOurs = Math.max(worstOurs, Math.abs(g[i] - b[i]));
        }
      }
      assert.ok(scale > 0);
      t.diagnostic(`gradients: max |DDP − one process| ${worstDdp}, max |PyTorch − diffuse| ${worstOurs}, largest |gradient| ${scale}`);
      // All-reduced gradients of two half batches = one process's gradients of the whole batch.
      assert.ok(worstDdp / scale <= 1e-5, `DDP vs one process: max |Δgrad| ${worstDdp} (largest gradient ${scale})`);
      // And PyTorch's gradients are diffuse's (looser: two engines' float32 sums).
      assert.ok(worstOurs / scale <= 1e-3, `PyTorch vs diffuse: max |Δgrad| ${worstOurs} (largest gradient ${scale})`);

      // 20 steps on 2 gloo processes from the export, then diffuse samples the checkpoint and resumes it.
      const out = join(root, 'out');
      const log = run(...torchrun('train.py', '--steps', '20', '--out', out), proj);
      const losses = [...log.matchAll(/"loss": ([0-9.e+-]+)/g)].map((m) => Number(m[1]));
      assert.equal(losses.length, 20);
      assert.ok(losses.every(Number.isFinite));
      const json = readCheckpointJson<unknown, { step: number }>(out);
      assert.equal(json.state.step, 2 + 20);
      run(process.execPath, ['bin/diffuse.mjs', 'sample', '--checkpoint', out, '--count', '4', '--steps', '3', '--out', join(root, 'samples')]);
      assert.ok(readFileSync(join(root, 'samples', 'samples.png')).length > 100);
      run(process.execPath, ['bin/diffuse.mjs', 'train', '--resume', '--out', out, '--steps', '23']);
      assert.equal(readCheckpointJson<unknown, { step: number }>(out).state.step, 23);
    })();
  });
});
