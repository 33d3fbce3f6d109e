/**
 * Progressive distillation: Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of Diffusion Models",
 * Algorithm 2 and §3–4. A student that samples with N deterministic DDIM steps learns, at each of its steps,
 * the point that two of the teacher's DDIM steps reach; repeating with the student as the next teacher halves
 * the step count each round (8 → 4 → 2 → 1).
 *
 * One step of the student goes from timestep t to t'' on the N-step trailing grid, the teacher's from t to t'
 * to t'' on the 2N-step grid (every other point of which is the N-step grid). With z'' the teacher's result and
 * (α, σ) = (√ᾱ, √(1 − ᾱ)), the x_0 that makes one DDIM step land on z'' is (Algorithm 2)
 *
 *   x̃ = (z'' − (σ''/σ) z_t) / (α'' − (σ''/σ) α)            (at the last step ᾱ'' = 1: x̃ = z'')
 *
 * The student predicts v (§4: ε-prediction cannot give x_0 at one step from pure noise), and the v-space MSE
 * ‖v̂ − ṽ‖² with ṽ = (α z_t − x̃)/σ is the paper's "SNR + 1" weighting of the x_0 error.
 *
 * A guided teacher (classifier-free guidance at a fixed w) folds the guidance into the student, which then needs
 * one evaluation per step (Meng et al. 2023, "On Distillation of Guided Diffusion Models", at a single w).
 */
import { Tensor, mean, mul, noGrad, sub } from '../tensor/index.js';
import { type PredictionType, epsFromX0, outputToX0Eps } from './parameterization.js';
import type { NoiseSchedule } from './schedules.js';
import type { Model } from './samplers/common.js';
import { alphaBarOrOne, spacedTimesteps } from './samplers/common.js';
import { applyX0Clip, type X0Clip } from './thresholding.js';
import { axpby, batchOf, fail, timeTensor } from './util.js';
import { meanFlat } from './vlb.js';

/** The teacher's model and how to read it, as a sampler would run it. */
export interface DistillTeacher {
  model: Model;
  prediction: PredictionType;
  /** x̂_0 clipping the teacher's sampler applies (the CLI samples with [−1, 1]). */
  clip?: X0Clip;
}

/** Per-sample (α, σ) = (√ᾱ, √(1 − ᾱ)) at timesteps, ᾱ = 1 (the data) after the last step (t < 0). */
function coefs(schedule: NoiseSchedule, ts: ArrayLike<number>): { a: number[]; s: number[] } {
  const ab = Array.from(ts, (t) => alphaBarOrOne(schedule, t));
  return { a: ab.map(Math.sqrt), s: ab.map((v) => Math.sqrt(1 - v)) };
}

/**
 * The timesteps of a student's step k of N: [t, t', t''], from the 2N-step trailing grid (t'' = −1 after the
 * last step). The N-step trailing grid is every other point of the 2N-step one, which `ddim` samples with.
 */
export function distillationStep(T: number, studentSteps: number, k: number): [number, number, number] {
  const fn = 'distillationStep';
  if (!Number.isInteger(studentSteps) || studentSteps < 1 || 2 * studentSteps > T) fail(fn, `student steps must be an integer in 1…${Math.floor(T / 2)}, got ${studentSteps}`);
  if (!Number.isInteger(k) || k < 0 || k >= studentSteps) fail(fn, `step must be an integer in 0…${studentSteps - 1}, got ${k}`);
  const grid = spacedTimesteps(fn, T, 2 * studentSteps, 'trailing');
  return [grid[2 * k], grid[2 * k + 1], 2 * k + 2 < grid.length ? grid[2 * k + 2] : -1];
}

/** One deterministic DDIM step of the teacher from per-sample timesteps `from` to `to` (−1: the data). */
export function teacherDdimStep(teacher: DistillTeacher, schedule: NoiseSchedule, z: Tensor, from: ArrayLike<number>, to: ArrayLike<number>,
  cond?: Tensor): Tensor {
  return noGrad(() => {
    const b = batchOf('teacherDdimStep', z);
    const { a, s } = coefs(schedule, from);
    const out = teacher.model(z, timeTensor(Float64Array.from(from), b), cond);
    let { x0, eps } = outputToX0Eps(out, z, teacher.prediction, a, s, 'teacherDdimStep');
    if (teacher.clip) {
      x0 = applyX0Clip(x0, teacher.clip);
      eps = epsFromX0(z, x0, a, s);
    }
    const next = coefs(schedule, to);
    return axpby(next.a, x0, next.s, eps);
  });
}

/**
 * The student's v target at z_t for student step k (per sample): two teacher DDIM steps, then the x̃ that one
 * DDIM step of the student must predict to land where they did, as v. No gradient flows into it.
 */
export function progressiveDistillationTarget(teacher: DistillTeacher, schedule: NoiseSchedule, zt: Tensor, studentSteps: number,
  k: ArrayLike<number>, cond?: Tensor): { v: Tensor; x0: Tensor; t: Float64Array } {
  const b = batchOf('progressiveDistillationTarget', zt);
  if (k.length !== b) fail('progressiveDistillationTarget', `${k.length} step indices for a batch of ${b}`);
  const steps = Array.from(k, (ki) => distillationStep(schedule.T, studentSteps, ki));
  const t0 = steps.map((s) => s[0]), t1 = steps.map((s) => s[1]), t2 = steps.map((s) => s[2]);
  return noGrad(() => {
    const z1 = teacherDdimStep(teacher, schedule, zt, t0, t1, cond);
    const z2 = teacherDdimStep(teacher, schedule, z1, t1, t2, cond);
    const { a, s } = coefs(schedule, t0), { a: a2, s: s2 } = coefs(schedule, t2);
    // x̃ = (z'' − r z_t) / (α'' − r α), r = σ''/σ; then ṽ = (α z_t − x̃)/σ.
    const r = s2.map((v, i) => v / s[i]), den = a2.map((v, i) => v - r[i] * a[i]);
    const x0 = axpby(den.map((d) => 1 / d), z2, r.map((ri, i) => -ri / den[i]), zt);
    const v = axpby(a.map((ai, i) => ai / s[i]), zt, s.map((si) => -1 / si), x0);
    return { v, x0, t: Float64Array.from(t0) };
  });
}

/** The distillation loss: mean over the batch of the per-sample v-space MSE. */
export function progressiveDistillationLoss(student: Model, teacher: DistillTeacher, schedule: NoiseSchedule, zt: Tensor,
  studentSteps: number, k: ArrayLike<number>, cond?: Tensor): Tensor {
  const target = progressiveDistillationTarget(teacher, schedule, zt, studentSteps, k, cond);
  const vhat = student(zt, timeTensor(target.t, zt.shape[0]), cond);
  const d = sub(vhat, target.v);
  return mean(meanFlat(mul(d, d)));
}
