/**
 * WGSL shared by the kernel families: workgroup size and grids, the flat thread index, math helpers, strided
 * index arithmetic (for walks the engine has already merged) and the workgroup tree reductions.
 */
import type { ParamType } from './runtime.js';

export const WG = 256;

/** Grid for `groups` workgroups laid out in 2-D (x ≤ 65535). */
export function grid(groups: number): [number, number] {
  if (groups <= 65535) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

export const GID = `@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u`;
export const FLAT = `let i = (wg.y * nwg.x + wg.x) * ${WG}u + lid.x;`;

export const COMMON = `
fn sigm(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn tanh_(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }
fn erf_(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return select(-y, y, x >= 0.0);
}
fn nan_() -> f32 { var u = 0x7fc00000u; return bitcast<f32>(u); }
fn ninf() -> f32 { var u = 0xff800000u; return bitcast<f32>(u); }
fn powf(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (b == 1.0) { return a; }
  if (b == 2.0) { return a * a; }
  let r = pow(abs(a), b);
  if (a < 0.0) {
    if (fract(b) != 0.0) { return nan_(); }
    if (fract(b * 0.5) != 0.0) { return -r; }
  }
  return r;
}
`;

/** WGSL that turns the flat index i into offsets o0…o{k−1} for rank r (fields s{d}, t{k}_{d}, off{k}). */
export function stridedIndex(r: number, k: number): string {
  let code = `var rem = i;\n`;
  for (let j = 0; j < k; j++) code += `var o${j} = P.off${j};\n`;
  for (let d = r - 1; d >= 0; d--) {
    code += `{ let c = rem % P.s${d}; rem = rem / P.s${d};\n`;
    for (let j = 0; j < k; j++) code += `  o${j} += c * P.t${j}_${d};\n`;
    code += `}\n`;
  }
  return code;
}

export function stridedParams(r: number, k: number): [string, ParamType][] {
  const p: [string, ParamType][] = [['n', 'u32']];
  for (let d = 0; d < r; d++) p.push([`s${d}`, 'u32']);
  for (let j = 0; j < k; j++) {
    p.push([`off${j}`, 'u32']);
    for (let d = 0; d < r; d++) p.push([`t${j}_${d}`, 'u32']);
  }
  return p;
}

export function stridedValues(n: number, shape: number[], strides: number[][], offsets: number[]): number[] {
  const v = [n, ...shape];
  strides.forEach((st, j) => v.push(offsets[j], ...st));
  return v;
}

/** Row reduction helper: 256 partial values in `red`, reduced into red[0] (sum or max). */
export const RED_SUM = `
var<workgroup> red: array<f32, 256>;
fn reduceSum(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn reduceMax(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { let o = red[t + s]; if (o > red[t] || o != o) { red[t] = o; } }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;

export const ROW = `@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u`;
export const ROWID = `let row = wg.y * nwg.x + wg.x; let t = lid.x;`;

