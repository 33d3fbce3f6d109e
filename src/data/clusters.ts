/**
 * Pseudo-labels without labels: k-means clusters of a data set's images, for cluster-conditional training
 * ("self-guided" diffusion, Hu et al. 2023, "Self-Guided Diffusion Models"). A model conditioned on the
 * clusters and sampled with a cluster drawn by its frequency, plus classifier-free guidance, is still an
 * unconditional generator (no label is given or used) but samples like a conditional one.
 *
 * Features are the images area-averaged to about 14 pixels a side (every channel), so clustering MNIST's
 * 8,000 training digits into 100 clusters takes 15–20 s here. Plain JS doubles on the host: the same data and
 * seed give the same clusters on every backend, so a resumed run recomputes its labels exactly.
 */
import { Generator } from '../tensor/random.js';
import { withFields, type ImageDataset } from './dataset.js';

export interface ClusterLabels {
  /** Cluster index of every image, 0…k−1. */
  labels: Int32Array;
  /** Images per cluster (the prior that sampling draws clusters from). */
  counts: number[];
  /** Lloyd iterations run. */
  iterations: number;
}

/** Largest area-average factor that leaves at least 14 pixels a side (1 for images up to 27 pixels). */
function poolFactor(h: number, w: number): number {
  return Math.max(1, Math.floor(Math.min(h, w) / 14));
}

/** N×D features: every channel area-averaged by poolFactor, values in [0, 1]. */
export function clusterFeatures(ds: ImageDataset): { features: Float32Array; dim: number } {
  const { n, channels: C, height: H, width: W } = ds;
  const f = poolFactor(H, W), h = Math.floor(H / f), w = Math.floor(W / f), D = C * h * w, plane = H * W;
  const features = new Float32Array(n * D);
  const scale = ds.bytes ? 1 / (255 * f * f) : 1 / (2 * f * f);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) {
      const base = (i * C + c) * plane;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let s = 0;
          for (let dy = 0; dy < f; dy++) {
            const row = base + (y * f + dy) * W + x * f;
            for (let dx = 0; dx < f; dx++) s += ds.bytes ? ds.bytes[row + dx] : ds.images[row + dx] + 1;
          }
          features[i * D + (c * h + y) * w + x] = s * scale;
        }
      }
    }
  }
  return { features, dim: D };
}

function squaredDistance(a: Float32Array, ai: number, b: Float32Array, bi: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) {
    const v = a[ai + d] - b[bi + d];
    s += v * v;
  }
  return s;
}

/** The index of the centre nearest to the feature row at `at`, and its squared distance. */
function nearestCentre(features: Float32Array, at: number, centres: Float32Array, k: number, D: number): [number, number] {
  let best = 0, bestD = Infinity;
  for (let c = 0; c < k; c++) {
    const d = squaredDistance(features, at, centres, c * D, D);
    if (d < bestD) { bestD = d; best = c; }
  }
  return [best, bestD];
}

/** Images the centres are fitted on at most; the rest are only assigned, which bounds the time on big sets. */
const MAX_FIT = 10_000;

/**
 * k-means (Lloyd) with k-means++ seeding on a random subset of up to 5,000 images, until fewer than 0.1% of the
 * images change cluster or `maxIterations`. An emptied cluster is re-seeded at the image farthest from its centre.
 * Above 10,000 images the centres are fitted on a random 10,000 and every image is then assigned to its nearest.
 */
export function kmeans(all: Float32Array, nAll: number, D: number, k: number, { seed = 0, maxIterations = 30 } = {}): ClusterLabels {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`kmeans: the cluster count must be a positive integer, got ${k}`);
  if (k > nAll) throw new RangeError(`kmeans: ${k} clusters need at least ${k} images, got ${nAll}`);
  if (all.length !== nAll * D) throw new RangeError(`kmeans: ${all.length} feature values for ${nAll} × ${D}`);
  let features = all, n = nAll;
  if (nAll > MAX_FIT) {
    const pick = new Generator(seed + 1), idx = Int32Array.from({ length: nAll }, (_, i) => i);
    features = new Float32Array(MAX_FIT * D);
    for (let i = 0; i < MAX_FIT; i++) {
      const j = i + pick.int(nAll - i);
      [idx[i], idx[j]] = [idx[j], idx[i]];
      features.set(all.subarray(idx[i] * D, idx[i] * D + D), i * D);
    }
    n = MAX_FIT;
  }
  const gen = new Generator(seed);
  const centres = new Float32Array(k * D);
  // k-means++ seeding (Arthur & Vassilvitskii 2007) on a subset: each new centre is drawn with probability
  // proportional to the squared distance to the nearest centre so far.
  const m = Math.min(n, 5000), pool = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < m; i++) {
    const j = i + gen.int(n - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  const nearest = new Float64Array(m).fill(Infinity);
  centres.set(features.subarray(pool[0] * D, pool[0] * D + D), 0);
  for (let c = 1; c < k; c++) {
    let total = 0;
    for (let i = 0; i < m; i++) {
      nearest[i] = Math.min(nearest[i], squaredDistance(features, pool[i] * D, centres, (c - 1) * D, D));
      total += nearest[i];
    }
    let r = gen.uniform() * total, pick = 0;
    if (total > 0) {
      for (; pick < m - 1; pick++) {
        r -= nearest[pick];
        if (r < 0) break;
      }
    } else pick = c % m; // every image sits on a centre: any will do
    centres.set(features.subarray(pool[pick] * D, pool[pick] * D + D), c * D);
  }

  const labels = new Int32Array(n).fill(-1), dist = new Float64Array(n);
  const sums = new Float64Array(k * D), counts = new Array<number>(k).fill(0);
  let iterations = 0;
  while (iterations < maxIterations) {
    iterations++;
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const [best, bestD] = nearestCentre(features, i * D, centres, k, D);
      if (labels[i] !== best) changed++;
      labels[i] = best;
      dist[i] = bestD;
    }
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const c = labels[i];
      counts[c]++;
      for (let d = 0; d < D; d++) sums[c * D + d] += features[i * D + d];
    }
    for (let c = 0; c < k; c++) {
      if (counts[c] > 0) {
        for (let d = 0; d < D; d++) centres[c * D + d] = sums[c * D + d] / counts[c];
        continue;
      }
      let far = 0;
      for (let i = 1; i < n; i++) if (dist[i] > dist[far]) far = i;
      centres.set(features.subarray(far * D, far * D + D), c * D);
      dist[far] = 0;
      changed = n; // not converged while a cluster was empty
    }
    if (changed < n / 1000) break;
  }
  // The labels and counts of the final centres, for every image.
  const out = new Int32Array(nAll);
  counts.fill(0);
  for (let i = 0; i < nAll; i++) {
    const best = nearestCentre(all, i * D, centres, k, D)[0];
    out[i] = best;
    counts[best]++;
  }
  return { labels: out, counts, iterations };
}

/** k-means clusters of a data set's images (see clusterFeatures). */
export function clusterImages(ds: ImageDataset, k: number, opts: { seed?: number; maxIterations?: number } = {}): ClusterLabels {
  const { features, dim } = clusterFeatures(ds);
  return kmeans(features, ds.n, dim, k, opts);
}

/** Draws `count` cluster indices with probability proportional to `counts`. */
export function drawClusters(counts: readonly number[], count: number, gen: Generator): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new RangeError('drawClusters: the cluster counts are all zero');
  return Array.from({ length: count }, () => {
    let r = gen.uniform() * total, c = 0;
    for (; c < counts.length - 1; c++) {
      r -= counts[c];
      if (r < 0) break;
    }
    return c;
  });
}

/** The data set with its labels replaced by `k` k-means clusters (classes "cluster 0" …), and the cluster sizes. */
export function relabelByClusters(ds: ImageDataset, k: number, seed = 0): { dataset: ImageDataset; sizes: number[] } {
  const { labels, counts } = clusterImages(ds, k, { seed });
  return {
    dataset: withFields(ds, { labels, numClasses: k, classNames: Array.from({ length: k }, (_, i) => `cluster ${i}`) }),
    sizes: counts,
  };
}

/** The data set with its labels kept and every image's cluster of `k` in `clusterOf`, and the cluster sizes. */
export function withClusters(ds: ImageDataset, k: number, seed = 0): { dataset: ImageDataset; sizes: number[] } {
  const { labels, counts } = clusterImages(ds, k, { seed });
  return { dataset: withFields(ds, { clusterOf: labels }), sizes: counts };
}

/**
 * The default cluster count. Without labels: 100 (the best on MNIST's 8,000 training digits in
 * bench/quality.ts), or one per 50 images of a smaller set (0, a plain unconditional model, below 100). With
 * labels the clusters train on a share of the images only, so half as many, each seen as often: at most 50,
 * one per 100 images.
 */
export function defaultClusterCount(n: number, labelled = false): number {
  const k = labelled ? Math.min(50, Math.floor(n / 100)) : Math.min(100, Math.floor(n / 50));
  return k >= 2 ? k : 0;
}
