/**
 * Measures every sampler against data whose exact denoiser is known, and prints a Markdown table of steps
 * against error (pasted into docs/samplers.md).
 *
 *   npx tsx tools/sampler_error_table.ts [batch=10000] [seed=1]
 *
 * Data (as in test/diffusion-samplers.test.ts): a Gaussian N((1, −0.5), diag(0.5², 0.25²)) and a 2-D mixture of
 * three Gaussians, DDPM's linear schedule (T = 1000). Columns:
 *   flow err   RMS distance to the exact probability-flow ODE solution from the same x_T (ODE samplers only)
 *   mean err   max over dims |sample mean − μ|
 *   std err    max over dims |sample std / s − 1|
 *   weight err max over components |fraction of samples nearest that component − its weight| (mixture)
 * Every sampler starts from the same noise; with B samples the sampling error alone is ≈ s/√B in the mean,
 * ≈ 1/√(2B) in the relative std and ≈ 0.5/√B in a weight.
 */
import { Generator, Tensor, randn } from '../src/tensor/index.js';
import { getBackend } from '../src/backends/index.js';
import {
  type Model, type SamplerRun, ddim, ddpm, dpmSolverPlusPlus, euler, heun, makeSchedule, predictorCorrector, sample,
} from '../src/diffusion/index.js';
import {
  type MixtureSpec, componentWeights, gaussianFlowMap, gaussianOracle, mixtureOracle, moments, rms,
} from '../test/oracles/gaussians.js';

const B = Number(process.argv[2] ?? 10000), SEED = Number(process.argv[3] ?? 1);
const schedule = makeSchedule({ kind: 'linear', T: 1000 });
const MEAN = [1, -0.5], STD = [0.5, 0.25];
const MIX: MixtureSpec = { weights: [0.5, 0.3, 0.2], means: [[-2, 0], [2, 0], [0, 2.5]], stds: [[0.3, 0.5], [0.4, 0.3], [0.5, 0.25]] };
const gauss = gaussianOracle(schedule, MEAN, STD), mix = mixtureOracle(schedule, MIX);

type Make = (m: Model, noise: Tensor, gen: Generator) => SamplerRun;
const rows: [string, number, boolean, Make][] = [];
const add = (name: string, steps: number, ode: boolean, make: Make) => rows.push([name, steps, ode, make]);

for (const n of [1000, 250, 100]) add('DDPM ancestral, σ² = β', n, false, (m, x, g) => ddpm(m, schedule, x, { steps: n, gen: g }));
add('DDPM ancestral, σ² = β̃', 1000, false, (m, x, g) => ddpm(m, schedule, x, { variance: 'fixedSmall', gen: g }));
for (const n of [10, 20, 50, 100]) add('DDIM η = 0 (trailing)', n, true, (m, x, g) => ddim(m, schedule, x, { steps: n, gen: g }));
for (const n of [50, 200]) add('DDIM η = 1 (trailing)', n, false, (m, x, g) => ddim(m, schedule, x, { steps: n, eta: 1, gen: g }));
for (const n of [5, 10, 20, 50]) add('DPM-Solver++(2M), log-SNR uniform', n, true, (m, x, g) => dpmSolverPlusPlus(m, schedule, x, { steps: n, gen: g }));
for (const n of [10, 20, 50]) add('DPM-Solver++(2M), Karras σ', n, true, (m, x, g) => dpmSolverPlusPlus(m, schedule, x, { steps: n, spacing: 'karras', gen: g }));
for (const n of [10, 20]) add('DPM-Solver++(2M), time uniform', n, true, (m, x, g) => dpmSolverPlusPlus(m, schedule, x, { steps: n, spacing: 'timeUniform', gen: g }));
for (const n of [20, 50]) add('SDE-DPM-Solver++(2M), log-SNR uniform', n, false, (m, x, g) => dpmSolverPlusPlus(m, schedule, x, { steps: n, sde: true, gen: g }));
for (const n of [20, 50, 100]) add('Euler, Karras σ', n, true, (m, x, g) => euler(m, schedule, x, { steps: n, gen: g }));
for (const n of [10, 18, 25, 50]) add('Heun, Karras σ', n, true, (m, x, g) => heun(m, schedule, x, { steps: n, gen: g }));
for (const n of [250, 500]) add('Predictor–corrector (+1 Langevin, r = 0.16)', n, false, (m, x, g) => predictorCorrector(m, schedule, x, { steps: n, gen: g }));

const noiseG = randn([B, 2], new Generator(SEED)), noiseM = randn([B, 2], new Generator(SEED + 1));
const exact = gaussianFlowMap(noiseG, schedule.alphasCumprod[999], MEAN, STD);
const f = (v: number, d = 3) => v.toFixed(d);

console.log(`Backend ${getBackend().name}, B = ${B}, seed ${SEED}. Sampling error alone ≈ ${f(0.5 / Math.sqrt(B), 4)} (mean), ${f(100 / Math.sqrt(2 * B), 1)} % (std), ${f(0.5 / Math.sqrt(B), 4)} (weight).\n`);
console.log('| sampler | steps | NFE | flow err | mean err | std err | weight err |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [name, steps, ode, make] of rows) {
  let nfe = 0;
  const xg = sample(make(gauss, noiseG, new Generator(SEED + 2)), (e) => { nfe = e.nfe; });
  const xm = sample(make(mix, noiseM, new Generator(SEED + 3)));
  const m = moments(xg), w = componentWeights(MIX, xm);
  const meanErr = Math.max(...m.mean.map((v, d) => Math.abs(v - MEAN[d])));
  const stdErr = Math.max(...m.std.map((v, d) => Math.abs(v / STD[d] - 1)));
  const wErr = Math.max(...w.map((v, k) => Math.abs(v - MIX.weights[k])));
  console.log(`| ${name} | ${steps} | ${nfe} | ${ode ? f(rms(xg, exact), 4) : '—'} | ${f(meanErr)} | ${f(100 * stdErr, 1)} % | ${f(wErr)} |`);
}
