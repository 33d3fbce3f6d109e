/**
 * The judge: the committed MNIST classifier (assets/judge/mnist-classifier.safetensors, trained by
 * tools/train_judge.ts on the 'train' split) scoring batches of generated digits.
 *
 * The quality bar: of the samples, at least 80% get one class with probability ≥ 0.9 (`confidentFraction`),
 * and each class receives 10% ± 4 points of them (`classHistogram` by argmax, over all samples). Reported
 * beside it: the Fréchet distance in the classifier's 128-d feature space between the samples and the
 * held-out real digits ('test' split), next to the same distance between two halves of the real data
 * (`realDataReference`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMnist, type ImageDataset } from '../data/index.js';
import { parseSafetensors } from '../io/safetensors.js';
import { MnistClassifier } from '../nn/classifier.js';
import { Tensor, noGrad, softmax } from '../tensor/index.js';
import { featureMoments, frechetDistance, type FeatureSet, type Moments } from './frechet.js';

/** Where the weights live, relative to the repository root. */
export const JUDGE_WEIGHTS_RELATIVE = 'assets/judge/mnist-classifier.safetensors';

/** Thresholds of the bar. */
export const JUDGE_BAR = {
  /** A sample is "confident" when its largest class probability is at least this. */
  confidence: 0.9,
  /** The fraction of confident samples needed. */
  minConfidentFraction: 0.8,
  /** Each class's share must lie in target ± tolerance. */
  classTarget: 0.1,
  classTolerance: 0.04,
} as const;

/**
 * The committed weights' path, found by walking up from this source file (src/eval/ under tsx,
 * dist/src/eval/ when compiled) to the folder that holds assets/judge/.
 */
export function judgeWeightsPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, JUDGE_WEIGHTS_RELATIVE);
    if (existsSync(p)) return p;
    const up = resolve(dir, '..');
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`judge: cannot find ${JUDGE_WEIGHTS_RELATIVE} above ${dirname(fileURLToPath(import.meta.url))} ` +
    '(train it with: npx tsx tools/train_judge.ts)');
}

/** Builds a classifier from safetensors bytes (as written by tools/train_judge.ts). */
export function classifierFromSafetensors(bytes: Uint8Array, name?: string): { model: MnistClassifier; metadata: Record<string, string> } {
  const { tensors, metadata } = parseSafetensors(bytes, { name });
  // The layer widths follow from the stored shapes (conv1.weight [c1,1,3,3], conv2.weight [c2,c1,3,3], …).
  const dim0 = (k: string) => {
    const t = tensors.get(k);
    if (!t) throw new Error(`judge: ${name ?? 'the weights'} lack the tensor '${k}'`);
    return t.shape[0];
  };
  const model = new MnistClassifier({
    channels: [dim0('conv1.weight'), dim0('conv2.weight')], featureDim: dim0('fc1.weight'), numClasses: dim0('fc2.weight'),
  });
  const state = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const [k, t] of tensors) state.set(k, { shape: t.shape, data: t.data });
  model.loadStateDict(state);
  model.eval();
  return { model, metadata };
}

let cached: { path: string; model: MnistClassifier; metadata: Record<string, string> } | undefined;

/** The committed judge (loaded once, then cached), or the classifier stored at `path`. */
export function loadJudge(path?: string): MnistClassifier {
  return loadJudgeWithMetadata(path).model;
}

/** loadJudge with the file's metadata (seed, held-out accuracy, …). */
export function loadJudgeWithMetadata(path?: string): { model: MnistClassifier; metadata: Record<string, string>; path: string } {
  const p = path ?? judgeWeightsPath();
  if (cached && cached.path === p) return cached;
  const { model, metadata } = classifierFromSafetensors(readFileSync(p), p);
  cached = { path: p, model, metadata };
  return cached;
}

/** Logits [N, 10] and features [N, 128] of images [N, 1, 28, 28] in [−1, 1], in batches, without autograd. */
export function classifierOutputs(model: MnistClassifier, images: Tensor, batchSize = 500): { logits: Float32Array; features: Float32Array } {
  if (images.ndim !== 4 || images.shape[1] !== 1 || images.shape[2] !== 28 || images.shape[3] !== 28) {
    throw new Error(`judge: expected images [N, 1, 28, 28], got [${images.shape.join(', ')}]`);
  }
  const n = images.shape[0], px = 28 * 28, F = model.featureDim, K = model.numClasses;
  const src = images.f32('judge');
  const logits = new Float32Array(n * K), features = new Float32Array(n * F);
  noGrad(() => {
    for (let s = 0; s < n; s += batchSize) {
      const b = Math.min(batchSize, n - s);
      const x = new Tensor(src.subarray(s * px, (s + b) * px), [b, 1, 28, 28]);
      const f = model.features(x);
      const l = model.classify(f);
      features.set(f.f32('judge'), s * F);
      logits.set(l.f32('judge'), s * K);
    }
  });
  return { logits, features };
}

/** Argmax class of each row of logits [N, K]. */
export function argmaxRows(logits: Float32Array, k: number): Int32Array {
  const n = logits.length / k, out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
    out[i] = best;
  }
  return out;
}

/** Fraction of `labels` that the model's argmax gets right. */
export function classifierAccuracy(model: MnistClassifier, ds: Pick<ImageDataset, 'images' | 'labels' | 'n'>): number {
  const { logits } = classifierOutputs(model, new Tensor(ds.images, [ds.n, 1, 28, 28]));
  const pred = argmaxRows(logits, model.numClasses);
  let ok = 0;
  for (let i = 0; i < ds.n; i++) if (pred[i] === ds.labels[i]) ok++;
  return ok / ds.n;
}

export interface JudgeResult {
  n: number;
  /** Fraction of samples whose largest class probability is ≥ 0.9. */
  confidentFraction: number;
  /** Fraction of ALL samples assigned to each class by argmax (sums to 1). */
  classHistogram: number[];
  /** Every class's share within 10% ± 4 points. */
  perClassOk: boolean;
  /** confidentFraction ≥ 0.8 and perClassOk. */
  passes: boolean;
  /** Argmax class of each sample. */
  predictions: Int32Array;
  /** Largest class probability of each sample. */
  maxProbs: Float32Array;
  /** The classifier's penultimate features [N, 128] (for Fréchet distances). */
  features: Tensor;
}

/** Scores images [N, 1, 28, 28] in [−1, 1] with the judge (default: the committed one). */
export function judgeSamples(images: Tensor, model: MnistClassifier = loadJudge()): JudgeResult {
  const n = images.shape[0];
  if (!(n > 0)) throw new Error('judgeSamples: no images');
  const { logits, features } = classifierOutputs(model, images);
  const K = model.numClasses;
  const probs = noGrad(() => softmax(new Tensor(logits, [n, K]), -1)).f32('judge');
  const predictions = new Int32Array(n), maxProbs = new Float32Array(n);
  const counts = new Array<number>(K).fill(0);
  let confident = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < K; j++) if (probs[i * K + j] > probs[i * K + best]) best = j;
    predictions[i] = best;
    maxProbs[i] = probs[i * K + best];
    counts[best]++;
    if (maxProbs[i] >= JUDGE_BAR.confidence) confident++;
  }
  const classHistogram = counts.map((c) => c / n);
  // A small epsilon so that exactly 6% or 14% (in float) counts as inside.
  const perClassOk = classHistogram.every((h) => Math.abs(h - JUDGE_BAR.classTarget) <= JUDGE_BAR.classTolerance + 1e-12);
  const confidentFraction = confident / n;
  return {
    n, confidentFraction, classHistogram, perClassOk,
    passes: perClassOk && confidentFraction >= JUDGE_BAR.minConfidentFraction,
    predictions, maxProbs, features: new Tensor(features, [n, model.featureDim]),
  };
}

/** One line per figure, for logs and command lines. */
export function formatJudgeResult(r: JudgeResult): string {
  const hist = r.classHistogram.map((h, c) => `${c}:${(100 * h).toFixed(1)}%`).join(' ');
  return [
    `judge: ${r.n} samples — confident (p ≥ ${JUDGE_BAR.confidence}): ${(100 * r.confidentFraction).toFixed(1)}% ` +
      `(need ≥ ${100 * JUDGE_BAR.minConfidentFraction}%)`,
    `classes: ${hist} (each needs ${100 * JUDGE_BAR.classTarget}% ± ${100 * JUDGE_BAR.classTolerance}) → ${r.perClassOk ? 'ok' : 'NOT ok'}`,
    `bar: ${r.passes ? 'PASSES' : 'FAILS'}`,
  ].join('\n');
}

// ------------------------------------------------------------------------------------------------ real data

const featureCache = new Map<string, Float32Array>();

/** The judge's features [N, 128] of one split of MNIST (cached per split and model). */
export function mnistFeatures(split: 'train' | 'test', model: MnistClassifier = loadJudge()): Tensor {
  const key = `${split}`;
  let f = model === cached?.model ? featureCache.get(key) : undefined;
  if (!f) {
    const ds = loadMnist({ split });
    f = classifierOutputs(model, new Tensor(ds.images, [ds.n, 1, 28, 28])).features;
    if (model === cached?.model) featureCache.set(key, f);
  }
  return new Tensor(f, [f.length / model.featureDim, model.featureDim]);
}

/** FD between sample features and the held-out real digits (all 2,000 of the 'test' split). */
export function frechetToHeldOut(sampleFeatures: Tensor | FeatureSet | Moments, model: MnistClassifier = loadJudge()): number {
  return frechetDistance(sampleFeatures, mnistFeatures('test', model));
}

export interface RealDataReference {
  /** FD between the two halves of the held-out digits (1,000 vs 1,000, both class-balanced). */
  heldOutHalves: number;
  /** FD between the held-out digits (2,000) and the training digits (8,000). */
  heldOutVsTrain: number;
  /**
   * FD between 1,000 training digits (the first, class-balanced) and the 2,000 held-out digits: the same set
   * sizes as 1,000 samples against the held-out digits, hence the same finite-sample bias — the figure a
   * perfect sampler's FD would be near.
   */
  train1000VsHeldOut: number;
  nHeldOut: number;
  nTrain: number;
}

/**
 * Reference figures for reading a samples-vs-held-out FD: the distance real data has from itself.
 * The 'test' split is ordered round-robin over classes, so its first and second 1,000 are each balanced.
 * FD estimated from finite sets is biased upward, more so the smaller the sets (two 1,000-sets of the same
 * distribution sit further apart than 2,000 vs 8,000), so compare a sample FD with the reference of the same
 * set sizes: `train1000VsHeldOut` for 1,000 samples against the 2,000 held-out digits.
 */
export function realDataReference(model: MnistClassifier = loadJudge()): RealDataReference {
  const test = mnistFeatures('test', model), train = mnistFeatures('train', model);
  const D = model.featureDim, n = test.shape[0], half = Math.floor(n / 2);
  const data = test.f32('judge');
  const a: FeatureSet = { data: data.subarray(0, half * D), n: half, d: D };
  const b: FeatureSet = { data: data.subarray(half * D, 2 * half * D), n: half, d: D };
  const testMoments = featureMoments(test);
  const n1000 = Math.min(1000, train.shape[0]);
  const train1000: FeatureSet = { data: train.f32('judge').subarray(0, n1000 * D), n: n1000, d: D };
  return {
    heldOutHalves: frechetDistance(a, b),
    heldOutVsTrain: frechetDistance(testMoments, train),
    train1000VsHeldOut: frechetDistance(train1000, testMoments),
    nHeldOut: n,
    nTrain: train.shape[0],
  };
}
