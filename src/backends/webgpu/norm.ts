/**
 * Group and layer norm, forward and backward: one 256-thread workgroup per normalized row with tree
 * reductions in workgroup memory; parameter gradients per channel (slices of the batch summed after).
 * mean and rstd travel as one buffer [mean; rstd].
 */
import type { Backend, FStore, NormGrads, NormResult } from '../backend.js';
import type { Helpers } from './base.js';
import type { GpuArray, Runtime } from './runtime.js';
import { COMMON, FLAT, GID, RED_SUM, ROW, ROWID, WG, grid } from './wgsl.js';

export function normKernels(rt: Runtime, h: Helpers): Required<Pick<Backend<FStore>, 'groupNorm' | 'groupNormBackward' | 'layerNorm' | 'layerNormBackward'>> {
  const { arr, rowsOp, sumSplits, sliceArr, joinStats } = h;
  // ---- norms and softmax: row kernels

  const gnKernel = (silu: boolean) => rt.kernel(`groupNorm:${silu}`, [['groups', 'u32'], ['c', 'u32'], ['hw', 'u32'], ['cg', 'u32'], ['eps', 'f32'], ['hasG', 'u32'], ['hasB', 'u32'], ['rows', 'u32']], () => `${COMMON}${RED_SUM}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.rows) { return; }
  let g = row % P.groups; let b = row / P.groups;
  let m = P.cg * P.hw;
  let base = (b * P.c + g * P.cg) * P.hw;
  var s = 0.0;
  for (var j = t; j < m; j += 256u) { s += x[base + j]; }
  let mean = reduceSum(s, t) / f32(m);
  var v = 0.0;
  for (var j = t; j < m; j += 256u) { let d = x[base + j] - mean; v += d * d; }
  let rstd = 1.0 / sqrt(reduceSum(v, t) / f32(m) + P.eps);
  if (t == 0u) { stats[row] = mean; stats[P.rows + row] = rstd; }
  for (var j = t; j < m; j += 256u) {
    let ch = g * P.cg + j / P.hw;
    var z = (x[base + j] - mean) * rstd;
    if (P.hasG != 0u) { z *= gamma[ch]; }
    if (P.hasB != 0u) { z += beta[ch]; }
    ${silu ? 'z = z * sigm(z);' : ''}
    y[base + j] = z;
  }
}`);

  const gnBackDx = (silu: boolean) => rt.kernel(`groupNormDx:${silu}`, [['groups', 'u32'], ['c', 'u32'], ['hw', 'u32'], ['cg', 'u32'], ['hasG', 'u32'], ['hasB', 'u32'], ['rows', 'u32']], () => `${COMMON}${RED_SUM}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
fn dz(k: u32, ch: u32, xh: f32) -> f32 {
  var g = dy[k];
  ${silu ? `var z = xh;
  if (P.hasG != 0u) { z *= gamma[ch]; }
  if (P.hasB != 0u) { z += beta[ch]; }
  let s = sigm(z);
  g *= s * (1.0 + z * (1.0 - s));` : ''}
  return g;
}
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.rows) { return; }
  let g = row % P.groups; let b = row / P.groups;
  let m = P.cg * P.hw;
  let base = (b * P.c + g * P.cg) * P.hw;
  let mean = stats[row]; let rstd = stats[P.rows + row];
  var sg = 0.0; var sgx = 0.0;
  for (var j = t; j < m; j += 256u) {
    let ch = g * P.cg + j / P.hw;
    let xh = (x[base + j] - mean) * rstd;
    var gh = dz(base + j, ch, xh);
    if (P.hasG != 0u) { gh *= gamma[ch]; }
    sg += gh; sgx += gh * xh;
  }
  let sumG = reduceSum(sg, t) / f32(m);
  let sumGX = reduceSum(sgx, t) / f32(m);
  for (var j = t; j < m; j += 256u) {
    let ch = g * P.cg + j / P.hw;
    let xh = (x[base + j] - mean) * rstd;
    var gh = dz(base + j, ch, xh);
    if (P.hasG != 0u) { gh *= gamma[ch]; }
    dx[base + j] = rstd * (gh - sumG - xh * sumGX);
  }
}`);

  // dgamma / dbeta: one workgroup per (channel, slice of the batch), partial sums [slices, 2C] summed after.
  const gnBackParams = (silu: boolean) => rt.kernel(`groupNormDp:${silu}`, [['groups', 'u32'], ['c', 'u32'], ['hw', 'u32'], ['cg', 'u32'], ['hasG', 'u32'], ['hasB', 'u32'], ['rows', 'u32'], ['n', 'u32'], ['nPer', 'u32'], ['slices', 'u32']], () => `${COMMON}${RED_SUM}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> dp: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.c * P.slices) { return; }
  let ch = row % P.c; let sl = row / P.c;
  let b0 = sl * P.nPer; let b1 = min(P.n, b0 + P.nPer);
  let g = ch / P.cg;
  var sgx = 0.0; var sg = 0.0;
  for (var j = b0 * P.hw + t; j < b1 * P.hw; j += 256u) {
    let b = j / P.hw; let p = j % P.hw;
    let st = b * P.groups + g;
    let k = (b * P.c + ch) * P.hw + p;
    let xh = (x[k] - stats[st]) * stats[P.rows + st];
    var d = dy[k];
    ${silu ? `var z = xh;
    if (P.hasG != 0u) { z *= gamma[ch]; }
    if (P.hasB != 0u) { z += beta[ch]; }
    let s = sigm(z);
    d *= s * (1.0 + z * (1.0 - s));` : ''}
    sgx += d * xh; sg += d;
  }
  let a = reduceSum(sgx, t);
  let bsum = reduceSum(sg, t);
  if (t == 0u) { dp[sl * 2u * P.c + ch] = a; dp[sl * 2u * P.c + P.c + ch] = bsum; }
}`);

  const lnKernel = rt.kernel('layerNorm', [['d', 'u32'], ['eps', 'f32'], ['hasG', 'u32'], ['hasB', 'u32'], ['rows', 'u32']], () => `${RED_SUM}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.rows) { return; }
  let base = row * P.d;
  var s = 0.0;
  for (var j = t; j < P.d; j += 256u) { s += x[base + j]; }
  let mean = reduceSum(s, t) / f32(P.d);
  var v = 0.0;
  for (var j = t; j < P.d; j += 256u) { let e = x[base + j] - mean; v += e * e; }
  let rstd = 1.0 / sqrt(reduceSum(v, t) / f32(P.d) + P.eps);
  if (t == 0u) { stats[row] = mean; stats[P.rows + row] = rstd; }
  for (var j = t; j < P.d; j += 256u) {
    var z = (x[base + j] - mean) * rstd;
    if (P.hasG != 0u) { z *= gamma[j]; }
    if (P.hasB != 0u) { z += beta[j]; }
    y[base + j] = z;
  }
}`);

  const lnBackDx = rt.kernel('layerNormDx', [['d', 'u32'], ['hasG', 'u32'], ['rows', 'u32']], () => `${RED_SUM}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.rows) { return; }
  let base = row * P.d;
  let mean = stats[row]; let rstd = stats[P.rows + row];
  var sg = 0.0; var sgx = 0.0;
  for (var j = t; j < P.d; j += 256u) {
    let xh = (x[base + j] - mean) * rstd;
    var gh = dy[base + j];
    if (P.hasG != 0u) { gh *= gamma[j]; }
    sg += gh; sgx += gh * xh;
  }
  let sumG = reduceSum(sg, t) / f32(P.d);
  let sumGX = reduceSum(sgx, t) / f32(P.d);
  for (var j = t; j < P.d; j += 256u) {
    let xh = (x[base + j] - mean) * rstd;
    var gh = dy[base + j];
    if (P.hasG != 0u) { gh *= gamma[j]; }
    dx[base + j] = rstd * (gh - sumG - xh * sumGX);
  }
}`);

  const lnBackParams = rt.kernel('layerNormDp', [['n', 'u32'], ['d', 'u32'], ['rows', 'u32']], () => `
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> dp: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.d) { return; }
  var a = 0.0; var b = 0.0;
  for (var r = 0u; r < P.rows; r++) {
    let k = r * P.d + i;
    let xh = (x[k] - stats[r]) * stats[P.rows + r];
    a += dy[k] * xh; b += dy[k];
  }
  dp[i] = a; dp[P.d + i] = b;
}`);

  return {
    groupNorm(x, gamma, beta, n, c, hw, groups, eps, silu): NormResult<FStore> {
      const xa = arr(x), rows = n * groups;
      const y = rt.alloc(xa.length), stats = rt.alloc(2 * rows);
      rowsOp(gnKernel(silu), [groups, c, hw, c / groups, eps, gamma ? 1 : 0, beta ? 1 : 0, rows],
        [xa, gamma ? arr(gamma) : null, beta ? arr(beta) : null, y, stats], rows);
      // mean and rstd are one buffer [mean; rstd] (what the backward kernels read): no split, no copies.
      return { y, mean: stats, rstd: stats };
    },
    groupNormBackward(dy, x, gamma, beta, mean, rstd, n, c, hw, groups, silu): NormGrads<FStore> {
      const rows = n * groups, stats = joinStats(mean, rstd, rows);
      const dya = arr(dy), xa = arr(x), ga = gamma ? arr(gamma) : null, ba = beta ? arr(beta) : null;
      const dx = rt.alloc(xa.length);
      const v = [groups, c, hw, c / groups, gamma ? 1 : 0, beta ? 1 : 0, rows];
      rowsOp(gnBackDx(silu), v, [dya, xa, ga, ba, stats, dx], rows);
      let dgamma: GpuArray | null = null, dbeta: GpuArray | null = null;
      if (gamma || beta) {
        const slices = Math.max(1, Math.min(n, Math.ceil(512 / c)));
        const nPer = Math.ceil(n / slices);
        const part = rt.alloc(2 * c * slices);
        rowsOp(gnBackParams(silu), [...v, n, nPer, slices], [dya, xa, ga, ba, stats, part], c * slices);
        const dp = sumSplits(part, slices, 2 * c);
        if (gamma) dgamma = sliceArr(dp, 0, c);
        if (beta) dbeta = sliceArr(dp, c, c);
      }
      return { dx, dgamma, dbeta };
    },
    layerNorm(x, gamma, beta, rows, d, eps): NormResult<FStore> {
      const xa = arr(x);
      const y = rt.alloc(xa.length), stats = rt.alloc(2 * rows);
      rowsOp(lnKernel, [d, eps, gamma ? 1 : 0, beta ? 1 : 0, rows], [xa, gamma ? arr(gamma) : null, beta ? arr(beta) : null, y, stats], rows);
      // mean and rstd are one buffer [mean; rstd] (what the backward kernels read): no split, no copies.
      return { y, mean: stats, rstd: stats };
    },
    layerNormBackward(dy, x, gamma, mean, rstd, rows, d, hasBeta): NormGrads<FStore> {
      const stats = joinStats(mean, rstd, rows);
      const dya = arr(dy), xa = arr(x);
      const dx = rt.alloc(xa.length);
      rowsOp(lnBackDx, [d, gamma ? 1 : 0, rows], [dya, xa, gamma ? arr(gamma) : null, stats, dx], rows);
      let dgamma: GpuArray | null = null, dbeta: GpuArray | null = null;
      if (gamma || hasBeta) {
        const dp = rt.alloc(2 * d);
        rt.dispatch(lnBackParams, [rows, d, rows], [dya, xa, stats, dp], grid(Math.ceil(d / WG)));
        if (gamma) dgamma = sliceArr(dp, 0, d);
        if (hasBeta) dbeta = sliceArr(dp, d, d);
      }
      return { dx, dgamma, dbeta };
    },
  };
}
