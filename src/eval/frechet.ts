/**
 * The Fréchet distance between two sets of feature vectors, each summarised by a Gaussian (mean μ and
 * covariance C), as in FID:
 *
 *   FD = ‖μ₁ − μ₂‖² + tr C₁ + tr C₂ − 2 · tr √(√C₁ · C₂ · √C₁)
 *
 * Everything runs in float64 with no linear-algebra library: √C₁ comes from a cyclic Jacobi
 * eigendecomposition of C₁ (negative round-off eigenvalues clamped to 0), and √C₁·C₂·√C₁ — symmetric
 * positive semi-definite, with the same eigenvalues as C₁C₂ — is diagonalised by Jacobi again; the trace of
 * its square root is the sum of the square roots of its eigenvalues. Covariances use the unbiased N − 1
 * normalisation (numpy.cov, pytorch-fid).
 */
import type { Tensor } from '../tensor/index.js';

/** A set of N feature vectors of dimension D, row-major. */
export interface FeatureSet {
  data: ArrayLike<number>;
  n: number;
  d: number;
}

/** Mean [D] and covariance [D×D, row-major], float64. */
export interface Moments {
  mean: Float64Array;
  cov: Float64Array;
  d: number;
  n: number;
}

/** A [N, D] tensor or an explicit FeatureSet, as a FeatureSet. */
export function asFeatureSet(feats: Tensor | FeatureSet): FeatureSet {
  if ('n' in feats && 'd' in feats && !('shape' in feats)) return feats;
  const t = feats as Tensor;
  if (t.ndim !== 2) throw new Error(`frechet: expected features [N, D], got [${t.shape.join(', ')}]`);
  return { data: t.data, n: t.shape[0], d: t.shape[1] };
}

/** Mean and unbiased covariance (divided by N − 1) of a feature set, in float64. */
export function featureMoments(feats: Tensor | FeatureSet): Moments {
  const { data, n, d } = asFeatureSet(feats);
  if (data.length !== n * d) throw new Error(`featureMoments: ${data.length} values for ${n}×${d}`);
  if (n < 2) throw new Error(`featureMoments: need at least 2 feature vectors, got ${n}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = data[i * d + j] - mean[j];
    for (let a = 0; a < d; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      const off = a * d;
      for (let b = a; b < d; b++) cov[off + b] += ra * row[b];
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b] / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { mean, cov, d, n };
}

/**
 * Eigendecomposition of a symmetric matrix A [n×n] by cyclic Jacobi rotations: A = V·diag(λ)·Vᵀ.
 * Returns the eigenvalues and V (row-major, eigenvectors in its columns). A is not modified.
 */
export function symmetricEigen(A: ArrayLike<number>, n: number, { tol = 1e-13, maxSweeps = 100 } = {}):
  { values: Float64Array; vectors: Float64Array } {
  if (A.length !== n * n) throw new Error(`symmetricEigen: ${A.length} values for ${n}×${n}`);
  const a = Float64Array.from(A);
  // Symmetrize against round-off in the input.
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
    const m = 0.5 * (a[i * n + j] + a[j * n + i]);
    a[i * n + j] = m; a[j * n + i] = m;
  }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i] * a[i];
  const threshold = tol * tol * Math.max(total, Number.MIN_VALUE);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    if (off <= threshold) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const app = a[p * n + p], aqq = a[q * n + q];
        // Skip rotations too small to change the diagonal (as in Numerical Recipes' jacobi).
        if (Math.abs(apq) < 1e-300) { a[p * n + q] = 0; a[q * n + p] = 0; continue; }
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        // A ← Jᵀ A J with J the rotation in the (p, q) plane.
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = 0; a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i];
  return { values, vectors: v };
}

/** The symmetric PSD square root of a symmetric PSD matrix (negative eigenvalues, from round-off, → 0). */
export function sqrtPsd(A: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors: V } = symmetricEigen(A, n);
  const s = values.map((x) => Math.sqrt(Math.max(x, 0)));
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += V[i * n + k] * s[k] * V[j * n + k];
      out[i * n + j] = acc; out[j * n + i] = acc;
    }
  }
  return out;
}

function matmulSquare(A: Float64Array, B: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = A[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * B[k * n + j];
    }
  }
  return out;
}

/** tr √(√C₁·C₂·√C₁) = the sum of the square roots of the eigenvalues of C₁C₂ (both PSD). */
export function traceSqrtProduct(C1: ArrayLike<number>, C2: ArrayLike<number>, d: number): number {
  const S = sqrtPsd(C1, d);
  const M = matmulSquare(matmulSquare(S, Float64Array.from(C2), d), S, d);
  const { values } = symmetricEigen(M, d);
  let tr = 0;
  for (const x of values) tr += Math.sqrt(Math.max(x, 0));
  return tr;
}

/** FD between two Gaussians given by their means [D] and covariances [D×D, row-major]. */
export function frechetFromMoments(mu1: ArrayLike<number>, C1: ArrayLike<number>, mu2: ArrayLike<number>,
  C2: ArrayLike<number>): number {
  const d = mu1.length;
  if (mu2.length !== d || C1.length !== d * d || C2.length !== d * d) {
    throw new Error(`frechetFromMoments: sizes do not match (μ₁ ${mu1.length}, C₁ ${C1.length}, μ₂ ${mu2.length}, C₂ ${C2.length})`);
  }
  let meanTerm = 0;
  for (let i = 0; i < d; i++) { const t = mu1[i] - mu2[i]; meanTerm += t * t; }
  let tr = 0;
  for (let i = 0; i < d; i++) tr += C1[i * d + i] + C2[i * d + i];
  const fd = meanTerm + tr - 2 * traceSqrtProduct(C1, C2, d);
  // Round-off can leave a tiny negative value for (near-)identical sets.
  return Math.max(fd, 0);
}

/** FD between two feature sets ([N, D] tensors or FeatureSets, or precomputed Moments). */
export function frechetDistance(a: Tensor | FeatureSet | Moments, b: Tensor | FeatureSet | Moments): number {
  const ma = isMoments(a) ? a : featureMoments(a);
  const mb = isMoments(b) ? b : featureMoments(b);
  if (ma.d !== mb.d) throw new Error(`frechetDistance: feature dimensions differ (${ma.d} vs ${mb.d})`);
  return frechetFromMoments(ma.mean, ma.cov, mb.mean, mb.cov);
}

function isMoments(x: unknown): x is Moments {
  return typeof x === 'object' && x !== null && 'mean' in x && 'cov' in x;
}
