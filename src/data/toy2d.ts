/**
 * 2-D toy distributions for diffusion demos, sampled from a seeded Generator.
 *
 * The shapes follow the usual definitions (scikit-learn's make_swiss_roll / make_moons, and the
 * '8gaussians' / 'checkerboard' sets of the FFJORD code base), then each set is centered and scaled by
 * ONE factor for both axes (the aspect ratio is kept) so that the average per-coordinate variance is 1,
 * i.e. E|x − μ|² = 2. The constants below are the exact moments of each distribution (closed form, or
 * numerical quadrature for the swiss roll), not estimates from a sample.
 *
 *   swissroll     t ~ U[1.5π, 4.5π]; (t cos t, t sin t) + N(0, 1²) per axis (make_swiss_roll, noise 1,
 *                 the x/z plane, as in FFJORD).
 *   moons         half the points on the upper unit half-circle (cos θ, sin θ), half on the lower one
 *                 (1 − cos θ, 0.5 − sin θ), θ ~ U[0, π]; + N(0, 0.1²) per axis (make_moons, noise 0.1).
 *   8gaussians    N(c, 0.5²·I) with c one of the 8 points at radius 4 at angles k·45°, equally likely.
 *   checkerboard  uniform over the 8 black cells of a 4×4 checkerboard on [−2, 2]² (cells where
 *                 floor(x) + floor(y) is even).
 */
import type { Generator } from '../tensor/random.js';

export const TOY2D_NAMES = ['swissroll', 'moons', '8gaussians', 'checkerboard'] as const;
export type Toy2dName = (typeof TOY2D_NAMES)[number];

interface Moments { mean: [number, number]; scale: number }

let swissMoments: Moments | null = null;

/** Exact (quadrature) moments of the swiss roll. */
function swissroll(): Moments {
  if (swissMoments) return swissMoments;
  const a = 1.5 * Math.PI, b = 4.5 * Math.PI, steps = 20000;
  let mx = 0, my = 0, sx = 0, sy = 0;
  for (let i = 0; i <= steps; i++) { // Simpson's rule
    const t = a + ((b - a) * i) / steps;
    const w = i === 0 || i === steps ? 1 : i % 2 ? 4 : 2;
    const x = t * Math.cos(t), y = t * Math.sin(t);
    mx += w * x; my += w * y; sx += w * x * x; sy += w * y * y;
  }
  const k = 1 / (3 * steps);
  mx *= k; my *= k; sx *= k; sy *= k;
  const totalVar = sx - mx * mx + (sy - my * my) + 2 * 1; // + noise variance per axis
  swissMoments = { mean: [mx, my], scale: 1 / Math.sqrt(totalVar / 2) };
  return swissMoments;
}

function moments(name: Toy2dName): Moments {
  switch (name) {
    case 'swissroll': return swissroll();
    case 'moons': {
      // mean (1/2, 1/4); var x = 3/4, var y = 9/16 − 1/π; plus 0.01 noise each.
      const totalVar = 0.75 + (9 / 16 - 1 / Math.PI) + 2 * 0.01;
      return { mean: [0.5, 0.25], scale: 1 / Math.sqrt(totalVar / 2) };
    }
    case '8gaussians': // centers: E[cx²] = 16/2 per axis; + 0.25 noise.
      return { mean: [0, 0], scale: 1 / Math.sqrt(8 + 0.25) };
    case 'checkerboard': // marginals uniform on [−2, 2]: variance 4/3.
      return { mean: [0, 0], scale: 1 / Math.sqrt(4 / 3) };
  }
}

export function isToy2dName(name: string): name is Toy2dName {
  return (TOY2D_NAMES as readonly string[]).includes(name);
}

/** n points (n×2, row-major) of the named toy distribution, centered and scaled as described above. */
export function sampleToy2d(name: Toy2dName, n: number, gen: Generator): Float32Array {
  if (!isToy2dName(name)) throw new Error(`sampleToy2d: unknown toy set '${String(name)}' (expected ${TOY2D_NAMES.join(', ')})`);
  if (!Number.isInteger(n) || n < 0) throw new Error(`sampleToy2d: n must be a whole number ≥ 0, got ${n}`);
  const out = new Float32Array(2 * n);
  const { mean, scale } = moments(name);
  for (let i = 0; i < n; i++) {
    let x: number, y: number;
    switch (name) {
      case 'swissroll': {
        const t = 1.5 * Math.PI * (1 + 2 * gen.uniform());
        x = t * Math.cos(t) + gen.normal();
        y = t * Math.sin(t) + gen.normal();
        break;
      }
      case 'moons': {
        const th = Math.PI * gen.uniform();
        if (gen.uniform() < 0.5) { x = Math.cos(th); y = Math.sin(th); }
        else { x = 1 - Math.cos(th); y = 0.5 - Math.sin(th); }
        x += 0.1 * gen.normal();
        y += 0.1 * gen.normal();
        break;
      }
      case '8gaussians': {
        const a = (gen.int(8) * Math.PI) / 4;
        x = 4 * Math.cos(a) + 0.5 * gen.normal();
        y = 4 * Math.sin(a) + 0.5 * gen.normal();
        break;
      }
      case 'checkerboard': {
        x = 4 * gen.uniform() - 2;
        // One of the two cells of column floor(x) whose row has floor(x)'s parity: floor(x) + floor(y) even.
        const row = gen.int(2) * 2 + (Math.floor(x) & 1);
        y = row - 2 + gen.uniform();
        break;
      }
    }
    out[2 * i] = (x - mean[0]) * scale;
    out[2 * i + 1] = (y - mean[1]) * scale;
  }
  return out;
}
