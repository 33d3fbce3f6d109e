/**
 * Register-tiled GEMM for the js backend, portable TypeScript (runs in browsers): C (+)= A·B over packed panels.
 *
 * A (M×R) is packed into row panels of MR rows, laid out [panel][p][MR]; B (R×N) into column panels of NR
 * columns, [panel][p][NR]; ragged edges are zero-padded, so the inner kernel never branches. Each MR×NR tile of C
 * is one run over the whole reduction with its sums in float64 locals, rounded once on the store — the same
 * arithmetic as the naive loop (and bit-identical to it when the reduction order matches).
 */

export const MR = 4;
export const NR = 4;

export type Arr = Float32Array | Float64Array;

/** Grow-only scratch (the backend is single-threaded): one slot per use so that live buffers never alias. */
const f32Slots: Float32Array[] = [];
const f64Slots: Float64Array[] = [];
export function scratch32(slot: number, n: number): Float32Array {
  let s = f32Slots[slot];
  if (!s || s.length < n) s = f32Slots[slot] = new Float32Array(Math.max(n, s ? s.length * 1.5 : 0) | 0);
  return s;
}
export function scratch64(slot: number, n: number): Float64Array {
  let s = f64Slots[slot];
  if (!s || s.length < n) s = f64Slots[slot] = new Float64Array(Math.max(n, s ? s.length * 1.5 : 0) | 0);
  return s;
}

export const panels = (n: number, r: number) => ((n + r - 1) / r) | 0;

/**
 * Packs rows [0, m) × reduction [0, r) of a strided matrix, element (i, p) at src[off + i·rs + p·cs], into
 * dst as A panels (any transpose is just a choice of strides). Rows past m are zeroed.
 */
export function packA(src: Arr, off: number, rs: number, cs: number, m: number, r: number,
  dst: Float32Array): void {
  const np = panels(m, MR);
  for (let ip = 0; ip < np; ip++) {
    const base = ip * r * MR;
    for (let ii = 0; ii < MR; ii++) {
      const i = ip * MR + ii;
      let d = base + ii;
      if (i >= m) { for (let p = 0; p < r; p++, d += MR) dst[d] = 0; continue; }
      let s = off + i * rs;
      for (let p = 0; p < r; p++, d += MR, s += cs) dst[d] = src[s];
    }
  }
}

/** Packs reduction [0, r) × columns [0, n), element (p, j) at src[off + p·rs + j·cs], as B panels (see packA). */
export function packB(src: Arr, off: number, rs: number, cs: number, r: number, n: number,
  dst: Float32Array): void {
  const np = panels(n, NR);
  for (let jp = 0; jp < np; jp++) {
    const base = jp * r * NR;
    for (let jj = 0; jj < NR; jj++) {
      const j = jp * NR + jj;
      let d = base + jj;
      if (j >= n) { for (let p = 0; p < r; p++, d += NR) dst[d] = 0; continue; }
      let s = off + j * cs;
      for (let p = 0; p < r; p++, d += NR, s += rs) dst[d] = src[s];
    }
  }
}

/** How a tile's sums start: at zero, at bias[row] (conv bias), or at the current C (accumulation across calls). */
export const INIT_ZERO = 0, INIT_BIAS = 1, INIT_C = 2;

// One MR×NR tile of sums, in and out of the kernel. The kernel touches only packed Float32Arrays and this
// Float64Array, so it stays monomorphic whatever C is (a mixed Float32/Float64 C slowed it by up to 2×).
const tile = new Float64Array(MR * NR);

/**
 * C[cOff + i·ldc + j] (i < m, j < n) = init + Σ_p A[i, p]·B[p, j] from packed panels with reduction length r.
 */
export function gemmPacked(ap: Float32Array, bp: Float32Array, m: number, n: number, r: number,
  c: Arr, cOff: number, ldc: number, init: number, bias: Arr | null): void {
  const mp = panels(m, MR), np = panels(n, NR);
  // B panel outer: it stays in L1 while the A panels stream past it.
  for (let jp = 0; jp < np; jp++) {
    const nr = Math.min(NR, n - jp * NR);
    for (let ip = 0; ip < mp; ip++) {
      const mr = Math.min(MR, m - ip * MR), co = cOff + ip * MR * ldc + jp * NR;
      if (init === INIT_BIAS && bias) {
        for (let i = 0; i < MR; i++) { const v = i < mr ? bias[ip * MR + i] : 0; for (let j = 0; j < NR; j++) tile[i * NR + j] = v; }
      } else {
        tile.fill(0);
        if (init === INIT_C) for (let i = 0; i < mr; i++) for (let j = 0; j < nr; j++) tile[i * NR + j] = c[co + i * ldc + j];
      }
      kernel(ap, ip * r * MR, bp, jp * r * NR, r);
      for (let i = 0; i < mr; i++) for (let j = 0; j < nr; j++) c[co + i * ldc + j] = tile[i * NR + j];
    }
  }
}

/** tile += A panel · B panel over r reduction steps, the 16 sums in float64 locals. */
function kernel(a: Float32Array, ai: number, b: Float32Array, bi: number, r: number): void {
  const t = tile;
  let c00 = t[0], c01 = t[1], c02 = t[2], c03 = t[3], c10 = t[4], c11 = t[5], c12 = t[6], c13 = t[7];
  let c20 = t[8], c21 = t[9], c22 = t[10], c23 = t[11], c30 = t[12], c31 = t[13], c32 = t[14], c33 = t[15];
  // Two reduction steps per iteration (~12% faster in V8); the sums still run in order p = 0, 1, 2, ….
  let p = 0;
  for (; p + 1 < r; p += 2) {
    {
      const a0 = a[ai], a1 = a[ai + 1], a2 = a[ai + 2], a3 = a[ai + 3];
      const b0 = b[bi], b1 = b[bi + 1], b2 = b[bi + 2], b3 = b[bi + 3];
      c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
      c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
      c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
      c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
      ai += MR; bi += NR;
    }
    {
      const a0 = a[ai], a1 = a[ai + 1], a2 = a[ai + 2], a3 = a[ai + 3];
      const b0 = b[bi], b1 = b[bi + 1], b2 = b[bi + 2], b3 = b[bi + 3];
      c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
      c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
      c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
      c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
      ai += MR; bi += NR;
    }
  }
  for (; p < r; p++) {
    {
      const a0 = a[ai], a1 = a[ai + 1], a2 = a[ai + 2], a3 = a[ai + 3];
      const b0 = b[bi], b1 = b[bi + 1], b2 = b[bi + 2], b3 = b[bi + 3];
      c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
      c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
      c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
      c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
      ai += MR; bi += NR;
    }
  }
  t[0] = c00; t[1] = c01; t[2] = c02; t[3] = c03; t[4] = c10; t[5] = c11; t[6] = c12; t[7] = c13;
  t[8] = c20; t[9] = c21; t[10] = c22; t[11] = c23; t[12] = c30; t[13] = c31; t[14] = c32; t[15] = c33;
}
