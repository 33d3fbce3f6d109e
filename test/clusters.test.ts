// k-means pseudo-labels (src/data/clusters.ts): exact recovery of separated groups, deterministic labels, the
// area-averaged features, cluster draws in proportion to size, and one-line errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  clusterFeatures, clusterImages, defaultClusterCount, drawClusters, kmeans, relabelByClusters, withClusters, type ImageDataset,
} from '../src/data/index.js';
import { Generator } from '../src/tensor/random.js';

/** n images of size×size, image i a noisy copy of one of `groups` random templates (group = i % groups). */
function groupedImages(n: number, groups: number, size: number, seed: number, noise = 0.05): ImageDataset {
  const g = new Generator(seed), px = size * size;
  const templates = Array.from({ length: groups }, () => Float32Array.from({ length: px }, () => (g.uniform() < 0.5 ? -1 : 1)));
  const images = new Float32Array(n * px), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % groups;
    for (let p = 0; p < px; p++) images[i * px + p] = Math.max(-1, Math.min(1, templates[i % groups][p] + noise * g.normal()));
  }
  return { name: 'grouped', images, labels, n, channels: 1, height: size, width: size, numClasses: groups, classNames: [], flipSafe: false };
}

test('kmeans recovers well-separated groups exactly (up to the cluster numbering), with their sizes', () => {
  const ds = groupedImages(600, 6, 28, 1);
  const { labels, counts } = clusterImages(ds, 6, { seed: 3 });
  const map = new Map<number, number>();
  for (let i = 0; i < ds.n; i++) {
    const seen = map.get(ds.labels[i]);
    if (seen === undefined) map.set(ds.labels[i], labels[i]);
    else assert.equal(labels[i], seen, `image ${i} left its group`);
  }
  assert.equal(new Set(map.values()).size, 6, 'two groups share a cluster');
  assert.deepEqual([...counts].sort(), [100, 100, 100, 100, 100, 100]);
});

test('kmeans above 10,000 images fits on a subset and still assigns every image to its group', () => {
  const ds = groupedImages(12_000, 4, 8, 7);
  const { labels, counts } = clusterImages(ds, 4, { seed: 1 });
  const map = new Map<number, number>();
  for (let i = 0; i < ds.n; i++) {
    if (!map.has(ds.labels[i])) map.set(ds.labels[i], labels[i]);
    assert.equal(labels[i], map.get(ds.labels[i]), `image ${i} left its group`);
  }
  assert.deepEqual(counts, [3000, 3000, 3000, 3000]);
});

test('kmeans: the same data and seed give the same labels; another seed the same partition', () => {
  const ds = groupedImages(300, 4, 16, 2);
  const a = clusterImages(ds, 4, { seed: 5 }), b = clusterImages(ds, 4, { seed: 5 }), c = clusterImages(ds, 4, { seed: 6 });
  assert.deepEqual(a.labels, b.labels);
  const pairs = new Set<string>();
  for (let i = 0; i < ds.n; i++) pairs.add(`${a.labels[i]}-${c.labels[i]}`);
  assert.equal(pairs.size, 4);
});

test('kmeans on points of a line: two clusters split at the midpoint gap, centres the means (analytic)', () => {
  // 1-D features 0,1,2 and 10,11,12: the only stable 2-clustering.
  const f = Float32Array.from([0, 10, 1, 11, 2, 12]);
  const { labels, counts } = kmeans(f, 6, 1, 2, { seed: 0 });
  assert.equal(labels[0], labels[2]);
  assert.equal(labels[0], labels[4]);
  assert.equal(labels[1], labels[3]);
  assert.notEqual(labels[0], labels[1]);
  assert.deepEqual(counts, [3, 3]);
});

test('clusterFeatures: 2×2 area averages of a 28×28 image in [0, 1], the same from bytes and from floats', () => {
  const n = 3, px = 28 * 28, g = new Generator(4);
  const bytes = Uint8Array.from({ length: n * px }, () => g.int(256));
  const images = Float32Array.from(bytes, (b) => b / 127.5 - 1);
  const base = { name: 'b', labels: new Int32Array(n), n, channels: 1, height: 28, width: 28, numClasses: 0, classNames: [], flipSafe: false };
  const fb = clusterFeatures({ ...base, images: new Float32Array(0), bytes }), ff = clusterFeatures({ ...base, images });
  assert.equal(fb.dim, 196);
  for (const [i, y, x] of [[0, 0, 0], [1, 6, 13], [2, 13, 7]]) {
    const at = (yy: number, xx: number) => bytes[i * px + yy * 28 + xx] / 255;
    const want = (at(2 * y, 2 * x) + at(2 * y + 1, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x + 1)) / 4;
    assert.ok(Math.abs(fb.features[i * 196 + y * 14 + x] - want) < 1e-6);
  }
  for (let k = 0; k < fb.features.length; k++) assert.ok(Math.abs(fb.features[k] - ff.features[k]) < 1e-5);
  // A 32×32 color image pools by 2 to 16×16 per channel; a 12×12 one is not pooled.
  assert.equal(clusterFeatures({ ...base, n: 1, channels: 3, height: 32, width: 32, images: new Float32Array(3 * 1024), labels: new Int32Array(1) }).dim, 768);
  assert.equal(clusterFeatures({ ...base, n: 1, height: 12, width: 12, images: new Float32Array(144), labels: new Int32Array(1) }).dim, 144);
});

test('drawClusters draws in proportion to the sizes and never an empty cluster', () => {
  const sizes = [10, 0, 30, 60], n = 20000;
  const draws = drawClusters(sizes, n, new Generator(9));
  const hist = [0, 0, 0, 0];
  for (const c of draws) hist[c]++;
  assert.equal(hist[1], 0);
  for (const c of [0, 2, 3]) {
    const p = sizes[c] / 100, sd = Math.sqrt((n * p * (1 - p)));
    assert.ok(Math.abs(hist[c] - n * p) < 5 * sd, `cluster ${c}: ${hist[c]} of ${n}, expected ${n * p}`);
  }
  assert.throws(() => drawClusters([0, 0], 1, new Generator(0)), /counts are all zero/);
});

test('relabelByClusters replaces labels and classes; defaultClusterCount; bad counts are one-line errors', () => {
  const ds = groupedImages(250, 5, 8, 3);
  const { dataset, sizes } = relabelByClusters(ds, 5, 1);
  assert.equal(dataset.numClasses, 5);
  assert.equal(dataset.classNames[4], 'cluster 4');
  assert.equal(sizes.reduce((a, b) => a + b, 0), 250);
  assert.equal(dataset.images, ds.images);
  // withClusters keeps the labels and puts the same clusters beside them.
  const kept = withClusters(ds, 5, 1);
  assert.deepEqual([kept.dataset.labels, kept.dataset.numClasses, kept.sizes], [ds.labels, ds.numClasses, sizes]);
  assert.deepEqual(kept.dataset.clusterOf, dataset.labels);
  // A bytes-backed dataset keeps its float images unbuilt (a spread would read them), and shares them once built.
  const { images, bytes: _none, ...fields } = ds;
  let built = 0;
  const lazy = Object.defineProperty({ ...fields, bytes: Uint8Array.from(images, (v) => Math.round((v + 1) * 127.5)) }, 'images',
    { enumerable: true, get: () => { built++; return images; } }) as ImageDataset;
  const both = [relabelByClusters(lazy, 5, 1).dataset, withClusters(lazy, 5, 1).dataset];
  assert.equal(built, 0, 'the float images were built');
  assert.equal(both[0].images, images);
  assert.equal(both[1].images, images);
  assert.equal(built, 2);
  assert.deepEqual([defaultClusterCount(60000), defaultClusterCount(1000), defaultClusterCount(250), defaultClusterCount(99)], [100, 20, 5, 0]);
  assert.throws(() => clusterImages(ds, 251), /251 clusters need at least 251 images, got 250/);
  assert.throws(() => clusterImages(ds, 0), /positive integer, got 0/);
  assert.throws(() => kmeans(new Float32Array(5), 2, 3, 1), /5 feature values for 2 × 3/);
});

test('serve: a request to a cluster-conditioned model without guidance gets the model\'s own, and diffuse sample the same', async () => {
  const { parseSampleRequest, sampleArgs } = await import('../src/serve/request.js');
  const clustered = parseSampleRequest({ count: 2, seed: 1 }, { numClasses: 100, T: 1000, defaultGuidance: 2.5 });
  assert.equal(clustered.guidance, 2.5);
  assert.deepEqual(sampleArgs(clustered).slice(6, 8), ['--guidance', '2.5']);
  assert.equal(parseSampleRequest({ count: 2, seed: 1, guidance: 1 }, { numClasses: 100, T: 1000, defaultGuidance: 2.5 }).guidance, 1);
  assert.equal(parseSampleRequest({ count: 2, seed: 1 }, { numClasses: 10, T: 1000 }).guidance, 1);
});

test('with labels and clusters, training classes: the null class at p, the image\'s cluster at the share, its label otherwise', async () => {
  const { trainingClasses } = await import('../src/train/trainer.js');
  const { tensor } = await import('../src/tensor/index.js');
  const n = 20000, labels = Int32Array.from({ length: n }, (_, i) => i % 10), of = Int32Array.from({ length: n }, (_, i) => (i * 7) % 5);
  const batch = { x: tensor(new Float32Array(n), [n]), y: tensor(labels, [n], { dtype: 'int32' }), indices: Int32Array.from({ length: n }, (_, i) => n - 1 - i) };
  const classes = trainingClasses(batch, 15, 0.1, new Generator(3), { of, firstClass: 10, share: 0.2 }).data as Int32Array;
  let nulls = 0, clustered = 0;
  classes.forEach((c, i) => {
    const j = n - 1 - i; // the batch's dataset index
    if (c === 15) nulls++;
    else if (c >= 10) { clustered++; assert.equal(c, 10 + of[j]); }
    else assert.equal(c, labels[i]);
  });
  // Binomial: 4 standard deviations are about 0.9 and 1.1 points here.
  assert.ok(Math.abs(nulls / n - 0.1) < 0.009 && Math.abs(clustered / n - 0.2) < 0.012, `${nulls} null, ${clustered} clustered of ${n}`);
  // Without clusters the same draws give the null class where they did, and labels elsewhere.
  const plain = trainingClasses(batch, 15, 0.1, new Generator(3)).data as Int32Array;
  plain.forEach((c, i) => assert.equal(c, classes[i] === 15 ? 15 : labels[i]));
  assert.deepEqual([defaultClusterCount(8000, true), defaultClusterCount(300, true), defaultClusterCount(150, true)], [50, 3, 0]);
});
