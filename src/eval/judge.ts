/**
 * The judges: a committed classifier per judged dataset (assets/judge/<dataset>-classifier.safetensors,
 * trained by tools/train_judge.ts on the dataset's 'train' split) scoring batches of generated images.
 *
 * MNIST — the quality bar: of the samples, at least 80% get one class with probability ≥ 0.9
 * (`confidentFraction`), and each class receives 10% ± 4 points of them (`classHistogram` by argmax, over all
 * samples). Reported beside it: the Fréchet distance in the classifier's 128-d feature space between the
 * samples and the held-out real digits ('test' split), next to the same distance between two halves of the
 * real data (`realDataReference`).
 *
 * Emoji — no pass/fail bar: its classes (the package's categories) are unbalanced and far less separable than
 * digits, so the same figures are read against the judge's figures on real held-out images
 * (`realImagesReference`): the confident fraction (same definition, p ≥ 0.9) of the held-out split, its class
 * histogram beside the split's own class frequencies, and the FD of a training subset of the samples' size
 * against the held-out images.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EMOJI_CLASS_NAMES, EMOJI_SIZE, loadEmoji, loadMnist, type ImageDataset } from '../data/index.js';
import { parseSafetensors } from '../io/safetensors.js';
import { ConvClassifier } from '../nn/classifier.js';
import { Tensor, noGrad, softmax } from '../tensor/index.js';
import { featureMoments, frechetDistance, type FeatureSet, type Moments } from './frechet.js';

/** Datasets with a judge. */
export const JUDGED_DATASETS = ['mnist', 'emoji'] as const;
export type JudgedDataset = (typeof JUDGED_DATASETS)[number];

/** What a judge scores and how its figures are read. */
export interface JudgeSpec {
  dataset: JudgedDataset;
  /** The weights, relative to the repository root. */
  weights: string;
  inChannels: number;
  imageSize: number;
  classNames: readonly string[];
  /**
   * The pass/fail bar (MNIST), or null where there is none and the figures are read against real held-out
   * images instead (emoji).
   */
  bar: { minConfidentFraction: number; classTarget: number; classTolerance: number } | null;
  /** One split of the dataset, N×C×S×S in [−1, 1]. */
  load(split: 'train' | 'test'): ImageDataset;
}

/** Where the MNIST judge's weights live, relative to the repository root. */
export const JUDGE_WEIGHTS_RELATIVE = 'assets/judge/mnist-classifier.safetensors';

/** Thresholds of the MNIST bar. */
export const JUDGE_BAR = {
  /** A sample is "confident" when its largest class probability is at least this (every judge). */
  confidence: 0.9,
  /** The fraction of confident samples needed. */
  minConfidentFraction: 0.8,
  /** Each class's share must lie in target ± tolerance. */
  classTarget: 0.1,
  classTolerance: 0.04,
} as const;

export const JUDGES: Readonly<Record<JudgedDataset, JudgeSpec>> = {
  mnist: {
    dataset: 'mnist', weights: JUDGE_WEIGHTS_RELATIVE, inChannels: 1, imageSize: 28,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    bar: { minConfidentFraction: JUDGE_BAR.minConfidentFraction, classTarget: JUDGE_BAR.classTarget, classTolerance: JUDGE_BAR.classTolerance },
    load: (split) => loadMnist({ split }),
  },
  emoji: {
    dataset: 'emoji', weights: 'assets/judge/emoji-classifier.safetensors', inChannels: 3, imageSize: EMOJI_SIZE,
    classNames: EMOJI_CLASS_NAMES, bar: null,
    load: (split) => loadEmoji({ split }),
  },
};

/** The judge of a dataset name as checkpoints record it, or undefined when it has none (folders, Fashion-MNIST). */
export function judgeSpec(dataset: string): JudgeSpec | undefined {
  return (JUDGED_DATASETS as readonly string[]).includes(dataset) ? JUDGES[dataset as JudgedDataset] : undefined;
}

/**
 * The committed weights' path, found by walking up from this source file (src/eval/ under tsx,
 * dist/src/eval/ when compiled) to the folder that holds assets/judge/.
 */
export function judgeWeightsPath(dataset: JudgedDataset = 'mnist'): string {
  const rel = JUDGES[dataset].weights;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, rel);
    if (existsSync(p)) return p;
    const up = resolve(dir, '..');
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`judge: cannot find ${rel} above ${dirname(fileURLToPath(import.meta.url))} ` +
    `(train it with: npx tsx tools/train_judge.ts --dataset ${dataset})`);
}

/** Builds a classifier from safetensors bytes (as written by tools/train_judge.ts). */
export function classifierFromSafetensors(bytes: Uint8Array, name?: string): { model: ConvClassifier; metadata: Record<string, string> } {
  const { tensors, metadata } = parseSafetensors(bytes, { name });
  // The layer widths follow from the stored shapes (conv1.weight [c1,C,3,3], conv2.weight [c2,c1,3,3],
  // fc1.weight [F, c2·(S/4)²], fc2.weight [K, F]).
  const shape = (k: string) => {
    const t = tensors.get(k);
    if (!t) throw new Error(`judge: ${name ?? 'the weights'} lack the tensor '${k}'`);
    return t.shape;
  };
  const c2 = shape('conv2.weight')[0], fcIn = shape('fc1.weight')[1] ?? 0;
  const pooled = Math.round(Math.sqrt(fcIn / c2));
  if (!(pooled > 0) || pooled * pooled * c2 !== fcIn) {
    throw new Error(`judge: ${name ?? 'the weights'}: fc1.weight takes ${fcIn} inputs, not ${c2}·s² for a square image`);
  }
  const model = new ConvClassifier({
    inChannels: shape('conv1.weight')[1], imageSize: 4 * pooled,
    channels: [shape('conv1.weight')[0], c2], featureDim: shape('fc1.weight')[0], numClasses: shape('fc2.weight')[0],
  });
  const state = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const [k, t] of tensors) state.set(k, { shape: t.shape, data: t.data });
  model.loadStateDict(state);
  model.eval();
  return { model, metadata };
}

const loaded = new Map<string, { path: string; model: ConvClassifier; metadata: Record<string, string> }>();

/** The committed judge of `dataset` (loaded once, then cached), or the classifier stored at `path`. */
export function loadJudge(dataset: JudgedDataset = 'mnist', path?: string): ConvClassifier {
  return loadJudgeWithMetadata(dataset, path).model;
}

/** loadJudge with the file's metadata (seed, held-out accuracy, …). */
export function loadJudgeWithMetadata(dataset: JudgedDataset = 'mnist', path?: string):
  { model: ConvClassifier; metadata: Record<string, string>; path: string } {
  const p = path ?? judgeWeightsPath(dataset);
  let entry = loaded.get(p);
  if (!entry) {
    const { model, metadata } = classifierFromSafetensors(readFileSync(p), p);
    const spec = JUDGES[dataset];
    if (model.inChannels !== spec.inChannels || model.imageSize !== spec.imageSize || model.numClasses !== spec.classNames.length) {
      throw new Error(`judge: ${p} takes ${model.inChannels}×${model.imageSize}×${model.imageSize} images into ${model.numClasses} classes; ` +
        `the ${dataset} judge needs ${spec.inChannels}×${spec.imageSize}×${spec.imageSize} into ${spec.classNames.length}`);
    }
    entry = { path: p, model, metadata };
    loaded.set(p, entry);
  }
  return entry;
}

/** Logits [N, K] and features [N, F] of images [N, C, S, S] in [−1, 1], in batches, without autograd. */
export function classifierOutputs(model: ConvClassifier, images: Tensor, batchSize = 500): { logits: Float32Array; features: Float32Array } {
  const C = model.inChannels, S = model.imageSize;
  if (images.ndim !== 4 || images.shape[1] !== C || images.shape[2] !== S || images.shape[3] !== S) {
    throw new Error(`judge: expected images [N, ${C}, ${S}, ${S}], got [${images.shape.join(', ')}]`);
  }
  const n = images.shape[0], px = C * S * S, F = model.featureDim, K = model.numClasses;
  const src = images.f32('judge');
  const logits = new Float32Array(n * K), features = new Float32Array(n * F);
  noGrad(() => {
    for (let s = 0; s < n; s += batchSize) {
      const b = Math.min(batchSize, n - s);
      const x = new Tensor(src.subarray(s * px, (s + b) * px), [b, C, S, S]);
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
export function classifierAccuracy(model: ConvClassifier, ds: Pick<ImageDataset, 'images' | 'labels' | 'n'>): number {
  const S = model.imageSize;
  const { logits } = classifierOutputs(model, new Tensor(ds.images, [ds.n, model.inChannels, S, S]));
  const pred = argmaxRows(logits, model.numClasses);
  let ok = 0;
  for (let i = 0; i < ds.n; i++) if (pred[i] === ds.labels[i]) ok++;
  return ok / ds.n;
}

export interface JudgeResult {
  dataset: JudgedDataset;
  n: number;
  /** Fraction of samples whose largest class probability is ≥ 0.9. */
  confidentFraction: number;
  /** Fraction of ALL samples assigned to each class by argmax (sums to 1). */
  classHistogram: number[];
  /** Every class's share within 10% ± 4 points (MNIST); null where the dataset has no bar. */
  perClassOk: boolean | null;
  /** confidentFraction ≥ 0.8 and perClassOk (MNIST); null where the dataset has no bar. */
  passes: boolean | null;
  /** Argmax class of each sample. */
  predictions: Int32Array;
  /** Largest class probability of each sample. */
  maxProbs: Float32Array;
  /** The classifier's penultimate features [N, 128] (for Fréchet distances). */
  features: Tensor;
}

/** Argmax class, its probability, the class histogram and the confident fraction of logits [n, K]. */
function scoreLogits(logits: Float32Array, n: number, K: number):
  { predictions: Int32Array; maxProbs: Float32Array; classHistogram: number[]; confidentFraction: number } {
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
  return { predictions, maxProbs, classHistogram: counts.map((c) => c / n), confidentFraction: confident / n };
}

/** Scores images [N, C, S, S] in [−1, 1] with the judge of `dataset` (default: the committed one). */
export function judgeSamples(images: Tensor, dataset: JudgedDataset = 'mnist', model: ConvClassifier = loadJudge(dataset)): JudgeResult {
  const n = images.shape[0];
  if (!(n > 0)) throw new Error('judgeSamples: no images');
  const { logits, features } = classifierOutputs(model, images);
  const { predictions, maxProbs, classHistogram, confidentFraction } = scoreLogits(logits, n, model.numClasses);
  const bar = JUDGES[dataset].bar;
  // A small epsilon so that exactly 6% or 14% (in float) counts as inside.
  const perClassOk = bar ? classHistogram.every((h) => Math.abs(h - bar.classTarget) <= bar.classTolerance + 1e-12) : null;
  return {
    dataset, n, confidentFraction, classHistogram, perClassOk,
    passes: bar ? perClassOk! && confidentFraction >= bar.minConfidentFraction : null,
    predictions, maxProbs, features: new Tensor(features, [n, model.featureDim]),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * One line per figure, for logs and command lines. With a reference (datasets without a bar), each figure
 * is followed by the same figure for real held-out images.
 */
export function formatJudgeResult(r: JudgeResult, ref?: RealImagesReference): string {
  const spec = JUDGES[r.dataset];
  if (spec.bar) {
    const hist = r.classHistogram.map((h, c) => `${c}:${pct(h)}`).join(' ');
    return [
      `judge: ${r.n} samples — confident (p ≥ ${JUDGE_BAR.confidence}): ${pct(r.confidentFraction)} ` +
        `(need ≥ ${100 * spec.bar.minConfidentFraction}%)`,
      `classes: ${hist} (each needs ${100 * spec.bar.classTarget}% ± ${100 * spec.bar.classTolerance}) → ${r.perClassOk ? 'ok' : 'NOT ok'}`,
      `bar: ${r.passes ? 'PASSES' : 'FAILS'}`,
    ].join('\n');
  }
  const lines = [`judge (${r.dataset}): ${r.n} samples — confident (p ≥ ${JUDGE_BAR.confidence}): ${pct(r.confidentFraction)}` +
    (ref ? `; real held-out images: ${pct(ref.heldOutConfidentFraction)} (${ref.nHeldOut}, judge accuracy ${pct(ref.heldOutAccuracy)})` : '')];
  lines.push(ref ? 'classes (judge argmax): samples | real held-out | held-out labels' : 'classes (judge argmax):');
  const width = Math.max(...spec.classNames.map((s) => s.length));
  r.classHistogram.forEach((h, c) => {
    const name = `${c} ${spec.classNames[c] ?? ''}`.padEnd(width + 3);
    lines.push(`  ${name} ${pct(h).padStart(6)}` +
      (ref ? ` | ${pct(ref.heldOutClassHistogram[c]).padStart(6)} | ${pct(ref.heldOutClassFrequencies[c]).padStart(6)}` : ''));
  });
  return lines.join('\n');
}

// ------------------------------------------------------------------------------------------------ real data

const featureCache = new Map<string, { features: Float32Array; logits: Float32Array; labels: Int32Array }>();

/** The judge's outputs and the labels of one split (cached per dataset and split for the committed judge). */
function splitOutputs(dataset: JudgedDataset, split: 'train' | 'test', model: ConvClassifier):
  { features: Float32Array; logits: Float32Array; labels: Int32Array } {
  const committed = [...loaded.values()].some((e) => e.model === model);
  const key = `${dataset}/${split}`;
  let out = committed ? featureCache.get(key) : undefined;
  if (!out) {
    const ds = JUDGES[dataset].load(split);
    const S = model.imageSize;
    out = { ...classifierOutputs(model, new Tensor(ds.images, [ds.n, model.inChannels, S, S])), labels: ds.labels };
    if (committed) featureCache.set(key, out);
  }
  return out;
}

/** The judge's features [N, 128] of one split of a judged dataset. */
export function datasetFeatures(dataset: JudgedDataset, split: 'train' | 'test', model: ConvClassifier = loadJudge(dataset)): Tensor {
  const f = splitOutputs(dataset, split, model).features;
  return new Tensor(f, [f.length / model.featureDim, model.featureDim]);
}

/** The MNIST judge's features [N, 128] of one split of MNIST. */
export function mnistFeatures(split: 'train' | 'test', model: ConvClassifier = loadJudge('mnist')): Tensor {
  return datasetFeatures('mnist', split, model);
}

/** FD between sample features and the held-out real images (all of the 'test' split: 2,000 digits, 377 emoji). */
export function frechetToHeldOut(sampleFeatures: Tensor | FeatureSet | Moments, dataset: JudgedDataset = 'mnist',
  model: ConvClassifier = loadJudge(dataset)): number {
  return frechetDistance(sampleFeatures, datasetFeatures(dataset, 'test', model));
}

export interface RealDataReference {
  /** FD between the two halves of the held-out images (MNIST: 1,000 vs 1,000, both class-balanced). */
  heldOutHalves: number;
  /** FD between the held-out images and the training images (MNIST: 2,000 vs 8,000). */
  heldOutVsTrain: number;
  /**
   * FD between 1,000 training images (MNIST: the first, class-balanced) and the held-out images: the same set
   * sizes as 1,000 samples against the held-out images, hence the same finite-sample bias — the figure a
   * perfect sampler's FD would be near.
   */
  train1000VsHeldOut: number;
  nHeldOut: number;
  nTrain: number;
}

/** `m` indices spread evenly over 0…n−1 (a training subset with the split's own class mix, which is ordered by class for emoji). */
function evenlySpaced(n: number, m: number): number[] {
  return Array.from({ length: m }, (_, i) => Math.floor((i * n) / m));
}

function rows(f: Float32Array, d: number, idx: number[]): FeatureSet {
  const data = new Float32Array(idx.length * d);
  idx.forEach((j, i) => data.set(f.subarray(j * d, (j + 1) * d), i * d));
  return { data, n: idx.length, d };
}

/**
 * Reference figures for reading a samples-vs-held-out FD: the distance real data has from itself.
 * MNIST: the 'test' split is ordered round-robin over classes, so its first and second 1,000 are each
 * balanced, and the first 1,000 training digits likewise. Emoji: the splits are ordered by class, so the
 * halves alternate within each class and the training subset is spread evenly over the split.
 * FD estimated from finite sets is biased upward, more so the smaller the sets (two 1,000-sets of the same
 * distribution sit further apart than 2,000 vs 8,000), so compare a sample FD with the reference of the same
 * set sizes: `train1000VsHeldOut` for 1,000 samples against the held-out images.
 */
export function realDataReference(dataset: JudgedDataset = 'mnist', model: ConvClassifier = loadJudge(dataset)): RealDataReference {
  const test = splitOutputs(dataset, 'test', model), train = splitOutputs(dataset, 'train', model);
  const D = model.featureDim, n = test.labels.length, nTrain = train.labels.length;
  let a: number[], b: number[], train1000: number[];
  if (dataset === 'mnist') {
    const half = Math.floor(n / 2);
    a = Array.from({ length: half }, (_, i) => i);
    b = Array.from({ length: half }, (_, i) => half + i);
    train1000 = Array.from({ length: Math.min(1000, nTrain) }, (_, i) => i);
  } else {
    const seen = new Map<number, number>();
    a = []; b = [];
    test.labels.forEach((y, i) => {
      const k = seen.get(y) ?? 0;
      (k % 2 === 0 ? a : b).push(i);
      seen.set(y, k + 1);
    });
    train1000 = evenlySpaced(nTrain, Math.min(1000, nTrain));
  }
  const testMoments = featureMoments({ data: test.features, n, d: D });
  return {
    heldOutHalves: frechetDistance(rows(test.features, D, a), rows(test.features, D, b)),
    heldOutVsTrain: frechetDistance(testMoments, { data: train.features, n: nTrain, d: D }),
    train1000VsHeldOut: frechetDistance(rows(train.features, D, train1000), testMoments),
    nHeldOut: n,
    nTrain,
  };
}

/** The figures of a JudgeResult and of an FD to the held-out images, for real images instead of samples. */
export interface RealImagesReference extends RealDataReference {
  dataset: JudgedDataset;
  /** Fraction of the held-out images whose largest class probability is ≥ 0.9. */
  heldOutConfidentFraction: number;
  /** Fraction of the held-out images the judge assigns to each class (argmax). */
  heldOutClassHistogram: number[];
  /** The held-out split's own class frequencies (its labels). */
  heldOutClassFrequencies: number[];
  /** The judge's accuracy on the held-out images. */
  heldOutAccuracy: number;
  /** Size of the training subset below: the sample count, at most the training split (and at least 2). */
  trainSubsetSize: number;
  /** FD between `trainSubsetSize` training images (spread evenly over the split) and the held-out images. */
  trainSubsetVsHeldOut: number;
}

/**
 * What real images score where samples are scored: the judge on the held-out split (confident fraction,
 * class histogram, next to the split's class frequencies), and the FD to the held-out images of a training
 * subset the size of the sample set (`sampleCount`), which carries the same finite-sample bias as the samples' FD.
 */
export function realImagesReference(dataset: JudgedDataset, sampleCount: number, model: ConvClassifier = loadJudge(dataset)): RealImagesReference {
  const test = splitOutputs(dataset, 'test', model), train = splitOutputs(dataset, 'train', model);
  const D = model.featureDim, K = model.numClasses, n = test.labels.length, nTrain = train.labels.length;
  const scored = scoreLogits(test.logits, n, K);
  const freq = new Array<number>(K).fill(0);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    freq[test.labels[i]]++;
    if (scored.predictions[i] === test.labels[i]) correct++;
  }
  const m = Math.max(2, Math.min(Math.round(sampleCount), nTrain));
  return {
    dataset, ...realDataReference(dataset, model),
    heldOutConfidentFraction: scored.confidentFraction,
    heldOutClassHistogram: scored.classHistogram,
    heldOutClassFrequencies: freq.map((c) => c / n),
    heldOutAccuracy: correct / n,
    trainSubsetSize: m,
    trainSubsetVsHeldOut: frechetDistance(rows(train.features, D, evenlySpaced(nTrain, m)), { data: test.features, n, d: D }),
  };
}
