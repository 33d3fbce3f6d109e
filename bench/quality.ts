/**
 * Quality per compute: trains one recipe for a wall-clock budget through the `diffuse` command, judges 1,000
 * samples with the project's MNIST judge (`diffuse eval`) and prints one table row (docs/results.md keeps the
 * table). The learning-rate schedule must end when the time does, so a short calibration run (the same command,
 * 30 steps) measures seconds per step and the run asks for budget / (s/step) steps, with --time as the hard stop.
 *
 * Usage: npx tsx bench/quality.ts --label baseline [--time 15m] [--unconditional] [--keep runs/q-baseline] -- <train flags>
 *   e.g. npx tsx bench/quality.ts --label uncond-eps -- --no-class-cond
 *   --unconditional: judge the null class of a conditional model (eval --unconditional).
 *   --steps-per-sec S: skip the calibration and use S.
 *   --sde: judge with DPM-Solver++'s SDE variant; --eval-only DIR: judge a run kept before, train nothing.
 * Each row is also appended as JSON to docs/measurements/quality.jsonl.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: o, positionals: trainFlags } = parseArgs({
  allowPositionals: true,
  options: {
    label: { type: 'string' }, time: { type: 'string', default: '15m' }, unconditional: { type: 'boolean', default: false },
    keep: { type: 'string' }, 'steps-per-sec': { type: 'string' }, count: { type: 'string', default: '1000' },
    sampler: { type: 'string', default: 'dpmSolverPlusPlus' }, 'sampler-steps': { type: 'string', default: '20' },
    guidance: { type: 'string' }, sde: { type: 'boolean', default: false }, 'eval-only': { type: 'string' },
  },
});
if (!o.label) throw new Error('bench/quality.ts: --label <name> names the row');
const m = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(o.time!);
if (!m) throw new Error(`bench/quality.ts: --time must look like 90s, 15m or 1h, got '${o.time}'`);
const budgetSec = Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
for (const f of ['--steps', '--time', '--out', '--resume']) {
  if (trainFlags.includes(f)) throw new Error(`bench/quality.ts: ${f} is set by the script`);
}

const cli = resolve('bin/diffuse.mjs');
const run = (args: string[]) => execFileSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
const scratch = mkdtempSync(join(tmpdir(), 'diffuse-quality-'));

function metrics(dir: string): { step: number; elapsedSec: number; loss: number }[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

let steps = 0, wallSec = 0, out: string;
if (o['eval-only']) {
  // Judge a run this script trained before (--keep) again, with other sampling settings; the flags after --
  // should be the ones it was trained with (they label the row).
  out = resolve(o['eval-only']);
} else {
  let stepsPerSec = o['steps-per-sec'] ? Number(o['steps-per-sec']) : NaN;
  if (!Number.isFinite(stepsPerSec)) {
    const probe = join(scratch, 'probe');
    run(['train', ...trainFlags, '--steps', '30', '--warmup', '1', '--sample-every', '0', '--checkpoint-every', '0', '--out', probe]);
    const rows = metrics(probe);
    // Steps 11…30: the first ones carry one-time costs (packing caches, allocation, the heap growing), and a
    // rate from steps 3…12 under-planned a 15-minute run by 10%.
    stepsPerSec = (rows.length - 10) / (rows[rows.length - 1].elapsedSec - rows[9].elapsedSec);
  }
  // Checkpoints (every 250 steps) and the run's start take a little of the budget: plan for 97% of it.
  steps = Math.max(10, Math.floor(0.97 * budgetSec * stepsPerSec));
  out = o.keep ? resolve(o.keep) : join(scratch, 'run');
  const t0 = performance.now();
  run(['train', ...trainFlags, '--steps', String(steps), '--time', `${budgetSec}s`, '--sample-every', '0', '--out', out, '--force']);
  wallSec = (performance.now() - t0) / 1000;
}
const rows = metrics(out);
const last = rows[rows.length - 1];

const evalOut = join(out, o.sde ? 'quality-eval-sde' : 'quality-eval');
// Without --guidance, eval's default: 1, or a cluster-conditioned model's own.
run(['eval', '--checkpoint', out, '--count', o.count!, '--sampler', o.sampler!, '--steps', o['sampler-steps']!,
  ...(o.guidance ? ['--guidance', o.guidance] : []), ...(o.sde ? ['--sde'] : []), '--out', evalOut, ...(o.unconditional ? ['--unconditional'] : [])]);
const report = JSON.parse(readFileSync(join(evalOut, 'eval.json'), 'utf8'));
const hist: number[] = report.classHistogram;
const row = {
  label: o.label, date: new Date().toISOString(), trainFlags, budgetSec, plannedSteps: steps || undefined, steps: last.step,
  trainSec: +last.elapsedSec.toFixed(1), wallSec: +wallSec.toFixed(1), finalLoss: +last.loss.toFixed(4),
  sampler: `${report.sampler.kind}${report.sampler.sde ? ' SDE' : ''} ${report.sampler.steps}`, ...(o['eval-only'] ? { evalOnly: true } : {}), guidance: report.guidance, clusters: report.clusters,
  unconditional: o.unconditional || trainFlags.includes('--no-class-cond'),
  confident: report.confidentFraction, classMin: Math.min(...hist), classMax: Math.max(...hist), perClassOk: report.perClassOk,
  fd: +report.frechetToHeldOut.toFixed(2),
};
appendFileSync(resolve('docs/measurements/quality.jsonl'), `${JSON.stringify(row)}\n`);
console.log('| recipe | flags | steps | training | confident | classes | FD |');
console.log('|---|---|---:|---:|---:|---|---:|');
console.log(`| ${row.label} | \`${trainFlags.join(' ') || '(default)'}\` | ${row.steps} | ${(row.trainSec / 60).toFixed(1)} min | ` +
  `${(100 * row.confident).toFixed(1)}% | ${(100 * row.classMin).toFixed(1)}–${(100 * row.classMax).toFixed(1)}% | ${row.fd} |`);
if (!o.keep) rmSync(scratch, { recursive: true, force: true });
