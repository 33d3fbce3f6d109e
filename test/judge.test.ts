/**
 * The MNIST judge (src/eval/judge.ts) and the Fréchet distance (src/eval/frechet.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadMnist, subset } from '../src/data/index.js';
import {
  classifierAccuracy, frechetDistance, frechetFromMoments, frechetToHeldOut, judgeSamples, loadJudgeWithMetadata, realDataReference,
  symmetricEigen, sqrtPsd, JUDGE_BAR,
} from '../src/eval/index.js';
import { MnistClassifier } from '../src/nn/classifier.js';
import { Generator, Tensor } from '../src/index.js';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

// ------------------------------------------------------------------------------------------------ linear algebra

/** A random symmetric positive-definite d×d matrix A·Aᵀ/d + εI. */
function randomSpd(d: number, gen: Generator, eps = 0.05): Float64Array {
  const A = Float64Array.from({ length: d * d }, () => gen.normal());
  const C = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += A[i * d + k] * A[j * d + k];
    C[i * d + j] = s / d + (i === j ? eps : 0);
  }
  return C;
}

function matmul(A: ArrayLike<number>, B: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) for (let j = 0; j < d; j++) out[i * d + j] += A[i * d + k] * B[k * d + j];
  return out;
}

test('symmetricEigen and sqrtPsd reconstruct their matrix', () => {
  const d = 24, C = randomSpd(d, new Generator(3));
  const { values, vectors: V } = symmetricEigen(C, d);
  let err = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += V[i * d + k] * values[k] * V[j * d + k];
    err = Math.max(err, Math.abs(s - C[i * d + j]));
  }
  assert.ok(err < 1e-10, `V·Λ·Vᵀ differs from C by ${err}`);
  const S = sqrtPsd(C, d), S2 = matmul(S, S, d);
  err = Math.max(...S2.map((v, i) => Math.abs(v - C[i])));
  assert.ok(err < 1e-10, `√C·√C differs from C by ${err}`);
});

// ------------------------------------------------------------------------------------------------ Fréchet distance

test('Fréchet distance: 2×2 non-commuting covariances match the closed form', () => {
  // For 2×2 PSD M, tr √M = √(tr M + 2√det M); M = √C₁C₂√C₁ has tr M = tr(C₁C₂), det M = det C₁ det C₂.
  const C1 = [2, 0.5, 0.5, 1], C2 = [1, -0.3, -0.3, 3], mu1 = [0, 1], mu2 = [1, -1];
  const det = (c: number[]) => c[0] * c[3] - c[1] * c[2];
  const trC1C2 = C1[0] * C2[0] + C1[1] * C2[2] + C1[2] * C2[1] + C1[3] * C2[3];
  const expected = (1 + 4) + (2 + 1) + (1 + 3) - 2 * Math.sqrt(trC1C2 + 2 * Math.sqrt(det(C1) * det(C2)));
  close(frechetFromMoments(mu1, C1, mu2, C2), expected, 1e-12, 'FD');
  close(frechetFromMoments(mu2, C2, mu1, C1), expected, 1e-12, 'FD swapped');
});

test('Fréchet distance: covariances with shared eigenvectors give ‖Δμ‖² + Σ(√a − √b)²', () => {
  const d = 12, gen = new Generator(7);
  const { vectors: R } = symmetricEigen(randomSpd(d, gen), d); // a random orthogonal basis
  const a = Array.from({ length: d }, () => 0.1 + 2 * gen.uniform());
  const b = Array.from({ length: d }, () => 0.1 + 2 * gen.uniform());
  const rotate = (diag: number[]) => {
    const C = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += R[i * d + k] * diag[k] * R[j * d + k];
      C[i * d + j] = s;
    }
    return C;
  };
  const mu1 = Array.from({ length: d }, () => gen.normal()), mu2 = Array.from({ length: d }, () => gen.normal());
  let expected = 0;
  for (let i = 0; i < d; i++) expected += (mu1[i] - mu2[i]) ** 2 + (Math.sqrt(a[i]) - Math.sqrt(b[i])) ** 2;
  close(frechetFromMoments(mu1, rotate(a), mu2, rotate(b)), expected, 1e-9, 'FD');
});

test('Fréchet distance is symmetric and 0 between a set and itself', () => {
  const d = 16, gen = new Generator(11);
  const C1 = randomSpd(d, gen), C2 = randomSpd(d, gen);
  const mu1 = Array.from({ length: d }, () => gen.normal()), mu2 = Array.from({ length: d }, () => gen.normal());
  const ab = frechetFromMoments(mu1, C1, mu2, C2), ba = frechetFromMoments(mu2, C2, mu1, C1);
  assert.ok(ab > 0);
  close(ab, ba, 1e-9 * ab, 'FD(a, b) vs FD(b, a)');
  assert.ok(frechetFromMoments(mu1, C1, mu1, C1) < 1e-9);

  // From samples: identical sets give 0; swapping the sets gives the same distance.
  const n = 500, x = new Float32Array(n * d), y = new Float32Array(n * d);
  for (let i = 0; i < n * d; i++) { x[i] = Math.max(0, gen.normal()); y[i] = Math.max(0, gen.normal() + 0.3); }
  const X = new Tensor(x, [n, d]), Y = new Tensor(y, [n, d]);
  assert.ok(frechetDistance(X, X) < 1e-9);
  const xy = frechetDistance(X, Y);
  close(xy, frechetDistance(Y, X), 1e-9 * xy, 'sample FD(x, y) vs FD(y, x)');
});

test('Fréchet distance from large samples approaches the closed form', () => {
  // x ~ N(mu1, L1 L1ᵀ), y ~ N(mu2, L2 L2ᵀ) in 2-D; compare with the 2×2 closed form.
  const gen = new Generator(5), n = 40000;
  const L1 = [1.2, 0, 0.4, 0.8], L2 = [0.7, 0, -0.5, 1.5], mu1 = [0.5, -0.2], mu2 = [-0.3, 0.6];
  const cov = (L: number[]) => [L[0] * L[0], L[0] * L[2], L[0] * L[2], L[2] * L[2] + L[3] * L[3]];
  const draw = (L: number[], mu: number[]) => {
    const out = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      const z0 = gen.normal(), z1 = gen.normal();
      out[2 * i] = mu[0] + L[0] * z0;
      out[2 * i + 1] = mu[1] + L[2] * z0 + L[3] * z1;
    }
    return new Tensor(out, [n, 2]);
  };
  const expected = frechetFromMoments(mu1, cov(L1), mu2, cov(L2));
  const got = frechetDistance(draw(L1, mu1), draw(L2, mu2));
  close(got, expected, 0.03 * expected, 'sample FD');
});

// ------------------------------------------------------------------------------------------------ the judge

const test2000 = loadMnist({ split: 'test' });
const images = (ds: { images: Float32Array; n: number }) => new Tensor(ds.images, [ds.n, 1, 28, 28]);

test('the committed judge reaches ≥ 97% on all 2,000 held-out digits', () => {
  const { model, metadata } = loadJudgeWithMetadata();
  assert.equal(test2000.n, 2000);
  const acc = classifierAccuracy(model, test2000);
  assert.ok(acc >= 0.97, `held-out accuracy ${acc}`);
  // The figure recorded with the weights is the one measured here (up to backend round-off).
  close(acc, Number(metadata.heldOutAccuracy), 0.0015, 'accuracy vs the recorded one');
});

test('the bar is attainable: real held-out digits pass the judge', () => {
  const r = judgeSamples(images(test2000));
  assert.equal(r.n, 2000);
  assert.ok(r.confidentFraction >= 0.8, `confident fraction ${r.confidentFraction}`);
  assert.ok(r.perClassOk, `class histogram ${r.classHistogram}`);
  assert.ok(r.passes);
  close(r.classHistogram.reduce((s, h) => s + h, 0), 1, 1e-9, 'histogram sum');
  assert.deepEqual(r.features.shape, [2000, 128]);
  // 1,000 real digits (the size of a sample batch) pass as well.
  assert.ok(judgeSamples(images(subset(test2000, Array.from({ length: 1000 }, (_, i) => i)))).passes);
});

test('pure noise and single-class sets do not pass', () => {
  const gen = new Generator(2), n = 1000;
  const uniform = new Float32Array(n * 784);
  gen.fillUniform(uniform, -1, 1);
  const r = judgeSamples(new Tensor(uniform, [n, 1, 28, 28]));
  assert.equal(r.passes, false, `uniform noise: confident ${r.confidentFraction}, histogram ${r.classHistogram}`);
  const gauss = new Float32Array(n * 784);
  gen.fillNormal(gauss, -0.7, 0.5);
  for (let i = 0; i < gauss.length; i++) gauss[i] = Math.min(1, Math.max(-1, gauss[i]));
  assert.equal(judgeSamples(new Tensor(gauss, [n, 1, 28, 28])).passes, false);
  // Confident, but all one class: fails on the histogram.
  const sevens = subset(test2000, Array.from({ length: 200 }, (_, i) => 7 + 10 * i));
  const r7 = judgeSamples(images(sevens));
  assert.ok(r7.confidentFraction >= JUDGE_BAR.minConfidentFraction);
  assert.equal(r7.perClassOk, false);
  assert.equal(r7.passes, false);
});

test('real-data reference distances are small beside the distance to noise', () => {
  const ref = realDataReference();
  assert.equal(ref.nHeldOut, 2000);
  assert.equal(ref.nTrain, 8000);
  assert.ok(ref.heldOutHalves > 0 && ref.heldOutVsTrain > 0 && ref.train1000VsHeldOut > 0);
  // Finite-sample bias: smaller sets sit further apart.
  assert.ok(ref.heldOutHalves > ref.heldOutVsTrain);
  const gen = new Generator(4), noise = new Float32Array(1000 * 784);
  gen.fillUniform(noise, -1, 1);
  const fdNoise = frechetToHeldOut(judgeSamples(new Tensor(noise, [1000, 1, 28, 28])).features);
  const worst = Math.max(ref.heldOutHalves, ref.heldOutVsTrain, ref.train1000VsHeldOut);
  assert.ok(fdNoise > 20 * worst, `noise FD ${fdNoise}, reference ${JSON.stringify(ref)}`);
});

test('MnistClassifier: deterministic init from a seed, shapes, < 1 MB of weights', () => {
  const a = new MnistClassifier({ seed: 9 }), b = new MnistClassifier({ seed: 9 }), c = new MnistClassifier({ seed: 10 });
  assert.deepEqual(a.conv1.weight.values, b.conv1.weight.values);
  assert.deepEqual(a.fc2.bias!.values, b.fc2.bias!.values);
  assert.notDeepEqual(a.conv1.weight.values, c.conv1.weight.values);
  assert.ok(a.numParameters() * 4 < 1_000_000);
  const x = new Tensor(new Float32Array(3 * 784).fill(-1), [3, 1, 28, 28]);
  assert.deepEqual(a.forward(x).shape, [3, 10]);
  assert.deepEqual(a.features(x).shape, [3, 128]);
});
