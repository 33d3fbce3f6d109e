// Stopping and restarting runs as a supervisor would: SIGTERM in the middle of a slow step (js backend) with
// SIGKILL 2 s later, debris from killed saves, metrics of steps that are re-run, and the short first run a
// new user tries.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readCheckpointJson } from '../src/train/index.js';

const root = mkdtempSync(join(tmpdir(), 'diffuse-signals-'));
after(() => rmSync(root, { recursive: true, force: true }));

function diffuse(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['bin/diffuse.mjs', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const weights = (dir: string) => Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith('.safetensors'))
  .map((f) => [f.replace(/-\d+\.safetensors$/, ''), readFileSync(join(dir, f))]));
const metricSteps = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);

// Steps of a few seconds each on the js backend: the signal lands inside one.
const slow = ['--backend', 'js', '--steps', '4', '--batch-size', '16', '--limit', '64', '--sample-every', '0', '--warmup', '1', '--checkpoint-every', '2'];

describe('signals', () => {
  test('SIGTERM during a slow step saves the last completed step before a SIGKILL 2 s later, and resuming ends bit-identical', { timeout: 600_000 }, async () => {
    const a = join(root, 'a'), b = join(root, 'b');
    const full = diffuse('train', '--out', a, ...slow);
    assert.equal(full.code, 0, full.err);

    const child = spawn(process.execPath, ['bin/diffuse.mjs', 'train', '--out', b, ...slow], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += String(d); });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
    // Wait for step 1 to finish, then signal half a second into step 2.
    const deadline = Date.now() + 240_000;
    while (!(existsSync(join(b, 'metrics.jsonl')) && readFileSync(join(b, 'metrics.jsonl'), 'utf8').includes('"step":1,')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500));
    const sentAt = performance.now();
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
    const { code, signal } = await exited;
    clearTimeout(killer);
    const ms = performance.now() - sentAt;
    assert.equal(signal, null, `killed by ${signal} after ${ms.toFixed(0)} ms: the save did not finish within 2 s (${err})`);
    assert.equal(code, 143, err);
    assert.match(err, /terminated: saving a checkpoint/);
    const step = readCheckpointJson<unknown, { step: number }>(b).state.step;
    assert.equal(step, 1, 'the checkpoint is the last completed step');
    assert.deepEqual(metricSteps(b), [1]);
    console.log(`# SIGTERM → exit 143 in ${ms.toFixed(0)} ms, checkpoint at step ${step}`);

    const resumed = diffuse('train', '--out', b, '--resume', '--backend', 'js');
    assert.equal(resumed.code, 0, resumed.err);
    const wa = weights(a), wb = weights(b);
    assert.deepEqual(Object.keys(wb).sort(), ['ema', 'model', 'optimizer']);
    for (const role of Object.keys(wa)) assert.ok(wa[role].equals(wb[role]), `${role} weights differ after SIGTERM and resume`);
    assert.deepEqual(metricSteps(b), [1, 2, 3, 4]);
  });

  test('resume removes debris of killed saves and drops metrics of steps it runs again', { timeout: 300_000 }, () => {
    const dir = join(root, 'debris');
    const args = ['--steps', '2', '--batch-size', '4', '--limit', '32', '--sample-every', '0', '--checkpoint-every', '2'];
    assert.equal(diffuse('train', '--out', dir, ...args).code, 0);
    // What a kill -9 during a save, or a full disk, leaves: temporaries and step files no JSON names.
    const debris = ['.model-00000004.safetensors.4242.k3j2h1g0.tmp', '.checkpoint.json.4242.abcdef12.tmp', 'model-00000004.safetensors', 'ema-00000003.safetensors'];
    for (const f of debris) writeFileSync(join(dir, f), 'partial');
    writeFileSync(join(dir, 'notes.txt'), 'mine'); // not ours: kept
    // Steps 3 and 4 ran after the checkpoint at step 2, then the process died (the last line torn).
    const m = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
    writeFileSync(join(dir, 'metrics.jsonl'), `${m}{"step":3,"loss":1}\n{"step":4,"lo`);
    const r = diffuse('train', '--out', dir, '--resume', '--steps', '4');
    assert.equal(r.code, 0, r.err);
    const left = readdirSync(dir);
    for (const f of debris.slice(0, 2)) assert.ok(!left.includes(f), `${f} is still there`);
    assert.ok(left.includes('notes.txt'));
    assert.deepEqual(left.filter((f) => f.endsWith('.safetensors')).sort(), ['ema-00000004.safetensors', 'model-00000004.safetensors', 'optimizer-00000004.safetensors']);
    assert.ok(!readFileSync(join(dir, 'model-00000004.safetensors')).equals(Buffer.from('partial')));
    assert.deepEqual(metricSteps(dir), [1, 2, 3, 4]);
  });

  test('the first thing a new user tries: `diffuse train --steps 20`', { timeout: 300_000 }, () => {
    const dir = join(root, 'short');
    const r = diffuse('train', '--steps', '20', '--out', dir);
    assert.equal(r.code, 0, r.err);
    assert.equal(readCheckpointJson<{ trainer: { warmupSteps: number } }, { step: number }>(dir).state.step, 20);
    assert.equal(readCheckpointJson<{ trainer: { warmupSteps: number } }, { step: number }>(dir).config.trainer.warmupSteps, 2);
    // A run that fails at start leaves no folder behind.
    const none = join(root, 'never');
    const bad = diffuse('train', '--out', none, '--dataset', join(root, 'no-such-folder'), '--image-size', '16');
    assert.equal(bad.code, 1);
    assert.ok(!existsSync(none), 'a failed start left its output folder');
  });
});
