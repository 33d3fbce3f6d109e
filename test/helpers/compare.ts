/**
 * Tolerance metric shared by the parity and gradient-check tests.
 *
 * normalizedMaxError(actual, expected) = max_i |a_i − b_i| / max(max_i |b_i|, floor)
 *
 * i.e. the worst absolute error measured against the tensor's own scale (not elementwise relative error,
 * which blows up on entries that happen to be near zero).
 */
export function normalizedMaxError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 1e-6): number {
  if (actual.length !== expected.length) return Infinity;
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], b = expected[i];
    if (Number.isNaN(a) !== Number.isNaN(b)) return Infinity;
    const d = Math.abs(a - b);
    if (d > maxDiff) maxDiff = d;
    if (Math.abs(b) > maxRef) maxRef = Math.abs(b);
  }
  return maxDiff / Math.max(maxRef, floor);
}

/** Index and values of the worst element, for failure messages. */
export function worstElement(actual: ArrayLike<number>, expected: ArrayLike<number>): string {
  let worst = -1, maxDiff = -1;
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (d > maxDiff || Number.isNaN(d)) { maxDiff = d; worst = i; if (Number.isNaN(d)) break; }
  }
  if (worst < 0) return `lengths ${actual.length} vs ${expected.length}`;
  return `worst at flat index ${worst}: got ${actual[worst]}, expected ${expected[worst]}`;
}

/** Small deterministic RNG (mulberry32) for test inputs, independent of the engine's Generator. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normals from `rng` (Box–Muller), rounded to float32. */
export function normals(rand: () => number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12), v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}
