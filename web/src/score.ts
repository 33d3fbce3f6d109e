/**
 * The score view: a 2-D toy model (an MLP noise predictor) whose score s(x, t) = −ε̂(x, t)/σ_t is drawn as a
 * field of arrows; the slider's t shows q(x_t) samples, and Run moves samples from noise to data with a
 * sampler, the field redrawn at each step's t. Stop takes effect at once, as in the reverse view.
 */
import {
  Generator, RollingScope, noGrad, qSample, randn, runSampler, sampleToy2d, scope, tensor,
  type MLPDenoiser, type NoiseSchedule, type SamplerKind, type Tensor, type Toy2dName,
} from '../../src/index.js';
import type { App } from './common.js';
import { $, STOPPED, fillSelect, mean, readField, record, sliderValue } from './common.js';
import { drawArrow, nextFrame, view2d } from './draw.js';
import { firstStepNote, isBusy, markWarm, setBusy, startControl } from './reverse.js';
import { SCORE_STEPS } from './validate.js';

export const TOY_SETS: Toy2dName[] = ['swissroll', 'moons', '8gaussians'];
const R = 3.2, GRID = 21, N_SAMPLES = 600;

/** Grid points [GRID², 2] covering the view. */
function gridPoints(): Tensor {
  const out = new Float32Array(GRID * GRID * 2);
  for (let i = 0; i < GRID; i++) for (let j = 0; j < GRID; j++) {
    const k = i * GRID + j;
    out[2 * k] = -R + ((j + 0.5) * 2 * R) / GRID;
    out[2 * k + 1] = -R + ((i + 0.5) * 2 * R) / GRID;
  }
  return tensor(out, [GRID * GRID, 2]);
}

export function setupScore(app: App): void {
  const canvas = $<HTMLCanvasElement>('sc-canvas'), section = $('score');
  fillSelect($<HTMLSelectElement>('sc-data'), TOY_SETS.map((s) => [s, s]), '8gaussians');
  fillSelect($<HTMLSelectElement>('sc-sampler'), [['ddpm', 'DDPM (ancestral)'], ['ddim', 'DDIM (deterministic)'], ['euler', 'Euler'], ['dpmSolverPlusPlus', 'DPM-Solver++ (2M)']], 'ddpm');
  const grid = gridPoints();
  const g = Float32Array.from(grid.data); // the coordinates on the host (on WebGPU the tensor moves to the device)
  const v = view2d(canvas, R);
  let data: Float32Array = new Float32Array(0);

  const draw = async (model: MLPDenoiser, schedule: NoiseSchedule, t: number, samplesT: Tensor) => {
    const epsT = scope(() => noGrad(() => model.forward(grid, tensor(new Float32Array(GRID * GRID).fill(t), [GRID * GRID]))));
    const eps = await epsT.read();
    epsT.dispose();
    const samples = await samplesT.read();
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = 'rgba(0, 0, 0, 0.18)';
    for (let i = 0; i < data.length; i += 2) ctx.fillRect(v.x(data[i]) - 1, v.y(data[i + 1]) - 1, 2, 2);
    // σ_t s(x, t) = −ε̂(x, t): the score's direction at a legible length (|s| itself grows as 1/σ_t); half a grid
    // cell per unit, capped at one cell.
    const ab = schedule.alphaBarAt(t), sigma = Math.sqrt(1 - ab);
    const cell = (2 * R) / GRID, cap = cell;
    ctx.strokeStyle = '#c0392b';
    ctx.lineWidth = 1;
    for (let k = 0; k < GRID * GRID; k++) {
      let dx = -0.5 * cell * eps[2 * k], dy = -0.5 * cell * eps[2 * k + 1];
      const len = Math.hypot(dx, dy);
      if (len > cap) { dx *= cap / len; dy *= cap / len; }
      drawArrow(ctx, v.x(g[2 * k]), v.y(g[2 * k + 1]), v.x(g[2 * k] + dx), v.y(g[2 * k + 1] + dy));
    }
    ctx.fillStyle = 'rgba(30, 90, 200, 0.75)';
    for (let i = 0; i < samples.length; i += 2) ctx.fillRect(v.x(samples[i]) - 1.5, v.y(samples[i + 1]) - 1.5, 3, 3);
    ctx.fillStyle = '#222';
    ctx.font = '12px sans-serif';
    ctx.fillText(`t = ${t.toFixed(1)}   ᾱ = ${ab.toFixed(3)}   σ = ${sigma.toFixed(3)}`, 8, 16);
  };

  const current = async () => {
    const name = $<HTMLSelectElement>('sc-data').value as Toy2dName;
    const toy = await app.toy(name);
    if (data.length === 0 || section.dataset.data !== name) {
      data = sampleToy2d(name, 1500, new Generator(1));
      section.dataset.data = name;
    }
    return toy;
  };

  const idle = async () => {
    if (isBusy()) return;
    const { model, schedule } = await current();
    const t = sliderValue('sc-t');
    $('sc-t-out').textContent = String(t);
    const x0 = tensor(sampleToy2d(section.dataset.data as Toy2dName, N_SAMPLES, new Generator(2)), [N_SAMPLES, 2]);
    await draw(model, schedule, t, qSample(schedule, x0, t, undefined, new Generator(3)));
  };
  $('sc-t').addEventListener('input', () => void idle());
  $('sc-data').addEventListener('input', () => { data = new Float32Array(0); void idle(); });

  $('sc-steps').addEventListener('input', () => readField('sc-steps', SCORE_STEPS));
  $('sc-run').addEventListener('click', async () => {
    if (isBusy()) return;
    const steps = readField('sc-steps', SCORE_STEPS);
    if (steps === null) {
      section.dataset.state = 'invalid';
      $('sc-cap').textContent = 'not run: fix the steps field';
      return;
    }
    setBusy('sample');
    const ctl = startControl();
    section.dataset.state = 'running';
    const kind = $<HTMLSelectElement>('sc-sampler').value as SamplerKind;
    const rec = record({ what: 'score', sampler: kind, steps, nfe: 0, msPerStep: [], stepEndedAt: [], backend: app.backend, state: 'running' });
    const caption = (line: string) => { $('sc-cap').textContent = `${line}; arrows: σₜ s(x, t) = −ε̂; grey: data; blue: samples`; };
    const stopped = (shown: number) => {
      rec.state = 'stopped';
      rec.stopPressedAt = ctl.pressedAt;
      rec.stoppedAt = performance.now();
      caption(`stopped at step ${shown} of ${steps}: the samples are step ${shown}'s`);
    };
    try {
      const { model, schedule, json } = await current();
      const note = firstStepNote(app, 'mlp');
      caption(note || `starting ${steps} steps`);
      const gen = new Generator(4);
      const noise = randn([N_SAMPLES, 2], gen);
      await draw(model, schedule, schedule.T - 1, noise);
      if (note) caption(note);
      await nextFrame();
      const run = runSampler({ kind, steps }, (x, t) => model.forward(x, t), schedule, noise, { prediction: json.prediction, gen });
      const rolling = new RollingScope(2);
      for (;;) {
        if (ctl.requested) {
          run.return(noise);
          rolling.finish(null);
          stopped(rec.msPerStep.length);
          break;
        }
        const t0 = performance.now();
        const r = rolling.step(() => noGrad(() => run.next()));
        if (r.done) {
          rolling.finish(null);
          break;
        }
        const reading = r.value.xt.read();
        if (await Promise.race([reading, ctl.stopped]) === STOPPED) {
          run.return(r.value.x0Pred);
          void reading.finally(() => rolling.finish(null)).catch(() => {});
          stopped(rec.msPerStep.length);
          break;
        }
        markWarm('mlp');
        rec.msPerStep.push(performance.now() - t0);
        rec.stepEndedAt.push(performance.now());
        rec.nfe = r.value.nfe;
        await draw(model, schedule, Math.max(0, r.value.t), r.value.xt);
        caption(`step ${r.value.step}/${r.value.totalSteps}, ${mean(rec.msPerStep).toFixed(1)} ms/step [${app.backend}]`);
        await nextFrame();
      }
      if (rec.state === 'running') {
        rec.state = 'done';
        caption(`done: ${steps} steps of ${kind} in ${(rec.msPerStep.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s [${app.backend}]`);
      }
      section.dataset.state = rec.state;
    } catch (err) {
      rec.state = 'error';
      rec.error = (err as Error).message;
      section.dataset.state = 'error';
      $('sc-cap').textContent = `error: ${(err as Error).message}`;
    } finally {
      setBusy(false);
    }
  });
  void idle();
}
