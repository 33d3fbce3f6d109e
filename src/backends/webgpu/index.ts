/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend: every kernel of the interface as a WGSL compute shader (runtime.ts runs them).
 *
 * Kernel families (WGSL generated per variant and cached):
 * - elementwise: one thread per element, 256 per workgroup, 2-D grids past 65,535 workgroups; broadcasting
 *   binaries/where/strided copies with dimensions merged on the host first (fewer index divisions);
 * - GEMM: 64×64 output tiles, 16-deep K slices staged in workgroup memory, 16×16 threads computing 4×4 outputs
 *   each (register blocking). The same template runs matmul (batched, transposed operands by index) and the
 *   three convolutions as implicit GEMMs (the im2col matrix is gathered while loading the tile, never stored).
 *   Weight gradients, whose K (batch × pixels) dwarfs M×N, are split over K into partial tiles summed after.
 * - row reductions (sum/max, norms, softmax): one 256-thread workgroup per row with a tree reduction in
 *   workgroup memory; column reductions (dgamma, bias sums): one thread per output.
 *
 * Numerics: float32 throughout; sums accumulate in a different order than the CPU backends (1e-3 relative
 * agreement where reductions reorder, see test/webgpu.test.ts). erf (GELU) uses Abramowitz–Stegun 7.1.26
 * (|error| ≤ 1.5e-7).
 */
import type { Backend, BinaryOp, Conv2dGeometry, Engine, FStore, NormGrads, NormResult, ReduceOp, StorageOps, UnaryOp } from '../backend.js';
import { type AdapterDescription, GpuArray, type Kernel, type ParamType, Runtime } from './runtime.js';

export { GpuArray, Runtime } from './runtime.js';

const WG = 256;

/** Grid for `groups` workgroups laid out in 2-D (x ≤ 65535). */
function grid(groups: number): [number, number] {
  if (groups <= 65535) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

const GID = `@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u`;
const FLAT = `let i = (wg.y * nwg.x + wg.x) * ${WG}u + lid.x;`;

const COMMON = `
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
fn sgn(x: f32) -> f32 { return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0); }
`;

const UNARY: Record<UnaryOp, string> = {
  neg: '-x', exp: 'exp(x)', log: 'log(x)', sqrt: 'sqrt(x)', rsqrt: '1.0 / sqrt(x)', sin: 'sin(x)', cos: 'cos(x)',
  tanh: 'tanh_(x)', sigmoid: 'sigm(x)', silu: 'x * sigm(x)', gelu: '0.5 * x * (1.0 + erf_(x * 0.70710678118654752))',
  relu: 'select(0.0, x, x > 0.0)', abs: 'abs(x)', sign: 'sgn(x)', square: 'x * x', reciprocal: '1.0 / x',
};

const UNARY_D: Record<UnaryOp, string> = {
  neg: '-1.0', exp: 'exp(x)', log: '1.0 / x', sqrt: '0.5 / sqrt(x)', rsqrt: '-0.5 / (x * sqrt(x))', sin: 'cos(x)', cos: '-sin(x)',
  tanh: '1.0 - tanh_(x) * tanh_(x)', sigmoid: 'sigm(x) * (1.0 - sigm(x))', silu: 'sigm(x) * (1.0 + x * (1.0 - sigm(x)))',
  gelu: '0.5 * (1.0 + erf_(x * 0.70710678118654752)) + x * 0.3989422804014327 * exp(-0.5 * x * x)',
  relu: 'select(0.0, 1.0, x > 0.0)', abs: 'sgn(x)', sign: '0.0', square: '2.0 * x', reciprocal: '-1.0 / (x * x)',
};

const BINARY: Record<BinaryOp, string> = {
  add: 'a + b', sub: 'a - b', mul: 'a * b', div: 'a / b', pow: 'powf(a, b)',
  maximum: 'select(b, a, a >= b || a != a)', minimum: 'select(b, a, a <= b || a != a)',
  eq: 'select(0.0, 1.0, a == b)', gt: 'select(0.0, 1.0, a > b)', lt: 'select(0.0, 1.0, a < b)',
};

/**
 * Merges adjacent dimensions that every operand walks contiguously and drops size-1 dimensions, so a
 * broadcast over [N, C, H, W] usually becomes rank 1–2.
 */
function mergeDims(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const s: number[] = [], st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = s.length - 1;
    if (last >= 0 && strides.every((o, k) => st[k][last] === o[d] * shape[d])) {
      s[last] *= shape[d];
      strides.forEach((o, k) => { st[k][last] = o[d]; });
    } else {
      s.push(shape[d]);
      strides.forEach((o, k) => st[k].push(o[d]));
    }
  }
  if (s.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: s, strides: st };
}

/** WGSL that turns the flat index i into offsets o0…o{k−1} for rank r (fields s{d}, t{k}_{d}, off{k}). */
function stridedIndex(r: number, k: number): string {
  let code = `var rem = i;\n`;
  for (let j = 0; j < k; j++) code += `var o${j} = P.off${j};\n`;
  for (let d = r - 1; d >= 0; d--) {
    code += `{ let c = rem % P.s${d}; rem = rem / P.s${d};\n`;
    for (let j = 0; j < k; j++) code += `  o${j} += c * P.t${j}_${d};\n`;
    code += `}\n`;
  }
  return code;
}

function stridedParams(r: number, k: number): [string, ParamType][] {
  const p: [string, ParamType][] = [['n', 'u32']];
  for (let d = 0; d < r; d++) p.push([`s${d}`, 'u32']);
  for (let j = 0; j < k; j++) {
    p.push([`off${j}`, 'u32']);
    for (let d = 0; d < r; d++) p.push([`t${j}_${d}`, 'u32']);
  }
  return p;
}

function stridedValues(n: number, shape: number[], strides: number[][], offsets: number[]): number[] {
  const v = [n, ...shape];
  strides.forEach((st, j) => v.push(offsets[j], ...st));
  return v;
}

// ---------------------------------------------------------------- GEMM template

interface GemmSpec {
  key: string;
  /** storage declarations after binding 0 (P); the output must be named `out`. */
  bindings: string;
  params: [string, ParamType][];
  /** WGSL bodies: fn loadA(bt: u32, r: u32, k: u32) -> f32 (bounds already checked), loadB(bt, k, c), store(bt, r, c, v). */
  loadA: string;
  loadB: string;
  store: string;
  /** Whether consecutive threads should walk K when staging A (B): true when K is the contiguous axis. */
  aKFast: boolean;
  bKFast: boolean;
}

const TM = 64, TN = 64, TK = 16;

/** Params every GEMM has: M, N, K, and the K range of one split (kPer). Workgroup z = batch · splits + split. */
const GEMM_PARAMS: [string, ParamType][] = [['M', 'u32'], ['N', 'u32'], ['K', 'u32'], ['kPer', 'u32'], ['splits', 'u32']];

function gemmWGSL(s: GemmSpec): string {
  const stage = (which: 'A' | 'B', kFast: boolean) => {
    const idx = kFast ? `let kk = e % ${TK}u; let rr = e / ${TK}u;` : `let rr = e % ${TM}u; let kk = e / ${TM}u;`;
    const lim = which === 'A' ? 'P.M' : 'P.N';
    const base = which === 'A' ? 'row0' : 'col0';
    const load = which === 'A' ? `loadA(bt, ${base} + rr, k0 + kk)` : `loadB(bt, k0 + kk, ${base} + rr)`;
    return `for (var l = 0u; l < 4u; l++) {
      let e = tid + l * 256u; ${idx}
      var v = 0.0;
      if (${base} + rr < ${lim} && k0 + kk < kEnd) { v = ${load}; }
      ${which}s[kk * ${TM}u + rr] = v;
    }`;
  };
  return `${s.bindings}
var<workgroup> As: array<f32, ${TK * TM}>;
var<workgroup> Bs: array<f32, ${TK * TN}>;
fn loadA(bt: u32, r: u32, k: u32) -> f32 { ${s.loadA} }
fn loadB(bt: u32, k: u32, c: u32) -> f32 { ${s.loadB} }
fn store(bt: u32, r: u32, c: u32, v: f32) { ${s.store} }
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let bt = wg.z / P.splits;
  let split = wg.z % P.splits;
  let row0 = wg.y * ${TM}u;
  let col0 = wg.x * ${TN}u;
  let tid = lid.y * 16u + lid.x;
  let kStart = split * P.kPer;
  let kEnd = min(P.K, kStart + P.kPer);
  // 4×4 outputs per thread in four vec4 registers (unrolled: dynamic indexing would spill to memory).
  var acc0 = vec4f(0.0); var acc1 = vec4f(0.0); var acc2 = vec4f(0.0); var acc3 = vec4f(0.0);
  for (var k0 = kStart; k0 < kEnd; k0 += ${TK}u) {
    ${stage('A', s.aKFast)}
    ${stage('B', s.bKFast)}
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      let ao = kk * ${TM}u + lid.y;
      let bo = kk * ${TN}u + lid.x;
      let a = vec4f(As[ao], As[ao + 16u], As[ao + 32u], As[ao + 48u]);
      let b = vec4f(Bs[bo], Bs[bo + 16u], Bs[bo + 32u], Bs[bo + 48u]);
      acc0 = fma(vec4f(a.x), b, acc0);
      acc1 = fma(vec4f(a.y), b, acc1);
      acc2 = fma(vec4f(a.z), b, acc2);
      acc3 = fma(vec4f(a.w), b, acc3);
    }
    workgroupBarrier();
  }
  let c0 = col0 + lid.x;
${[0, 1, 2, 3].map((q) => `  { let r = row0 + lid.y + ${16 * q}u; if (r < P.M) {
${[0, 1, 2, 3].map((w) => `    if (c0 + ${16 * w}u < P.N) { store(wg.z, r, c0 + ${16 * w}u, acc${q}.${'xyzw'[w]}); }`).join('\n')}
  } }`).join('\n')}
}`;
}

/** Row reduction helper: 256 partial values in `red`, reduced into red[0] (sum or max). */
const RED_SUM = `
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

const ROW = `@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u`;
const ROWID = `let row = wg.y * nwg.x + wg.x; let t = lid.x;`;

export interface WebGPUEngine extends Engine {
  readonly runtime: Runtime;
  readonly adapterInfo: AdapterDescription;
}

/** Builds the backend on a device. */
export function makeWebGPUBackend(rt: Runtime): WebGPUEngine {
  const arr = (x: FStore): GpuArray => {
    if (x instanceof GpuArray) return x;
    if (x instanceof Float32Array) { const a = rt.upload(x); a.host = x; return a; }
    throw new Error(`webgpu: a tensor on another device (${(x as { device: string }).device}) reached a webgpu kernel`);
  };
  const touch = (a: GpuArray) => { a.host = null; };

  const ew = (key: string, nIn: number, expr: string, params: [string, ParamType][], pre = ''): Kernel =>
    rt.kernel(`ew:${key}`, [['n', 'u32'], ...params], () => `${COMMON}
${Array.from({ length: nIn }, (_, j) => `@group(0) @binding(${j + 1}) var<storage, read> x${j}: array<f32>;`).join('\n')}
@group(0) @binding(${nIn + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  ${pre}
  out[i] = ${expr};
}`);

  const runEw = (k: Kernel, n: number, values: number[], inputs: GpuArray[]): GpuArray => {
    const out = rt.alloc(n);
    if (n) rt.dispatch(k, [n, ...values], [...inputs, out], grid(Math.ceil(n / WG)));
    return out;
  };

  const stridedKernel = (key: string, k: number, r: number, body: string, extra: [string, ParamType][] = []) =>
    rt.kernel(`st:${key}:${r}`, [...stridedParams(r, k), ...extra], () => `${COMMON}
${Array.from({ length: k }, (_, j) => `@group(0) @binding(${j + 1}) var<storage, read> x${j}: array<f32>;`).join('\n')}
@group(0) @binding(${k + 1}) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  ${stridedIndex(r, k)}
  ${body}
}`);

  const broadcastOp = (key: string, body: string, inputs: FStore[], strides: number[][], outShape: number[]): GpuArray => {
    const n = outShape.reduce((a, b) => a * b, 1);
    const m = mergeDims(outShape, strides);
    const k = stridedKernel(key, inputs.length, m.shape.length, body);
    const out = rt.alloc(n);
    if (n) rt.dispatch(k, stridedValues(n, m.shape, m.strides, inputs.map(() => 0)), [...inputs.map(arr), out], grid(Math.ceil(n / WG)));
    return out;
  };

  // ---- GEMM instances

  const gemm = (spec: GemmSpec, values: number[], buffers: (GpuArray | null)[], m: number, n: number, k: number, batch: number, splits: number) => {
    const kern = rt.kernel(`gemm:${spec.key}`, [...GEMM_PARAMS, ...spec.params], () => gemmWGSL(spec));
    const kPer = Math.ceil(Math.ceil(k / splits) / TK) * TK;
    rt.dispatch(kern, [m, n, k, kPer, splits, ...values], buffers, [Math.ceil(n / TN), Math.ceil(m / TM), batch * splits]);
  };

  /** Splits over K so that a small M×N output still fills the GPU (each split ≥ 512 deep). */
  const chooseSplits = (m: number, n: number, k: number) => {
    const tiles = Math.ceil(m / TM) * Math.ceil(n / TN);
    if (tiles >= 128) return 1;
    return Math.max(1, Math.min(Math.ceil(256 / tiles), Math.floor(k / 512), 64));
  };

  const sumSplits = (partial: GpuArray, splits: number, size: number): GpuArray => {
    if (splits === 1) return partial;
    const out = reduceRaw('sum', partial, 1, splits, size);
    return out;
  };

  const convBindings = (a: string, b: string, extra = '') => `@group(0) @binding(1) var<storage, read> ${a}: array<f32>;
@group(0) @binding(2) var<storage, read> ${b}: array<f32>;
${extra}@group(0) @binding(${extra ? 4 : 3}) var<storage, read_write> out: array<f32>;`;

  /**
   * Convolution geometry is baked into the WGSL as constants (one pipeline per layer shape, the batch size
   * excepted): the im2col index arithmetic then divides by constants, which compilers turn into multiplies.
   */
  const GEO_FIELDS = ['c', 'h', 'w', 'o', 'kh', 'kw', 'sh', 'sw', 'ph', 'pw', 'oh', 'ow'] as const;
  const bake = (spec: GemmSpec, g: Conv2dGeometry, hasBias = false): GemmSpec => {
    const vals = { ...Object.fromEntries(GEO_FIELDS.map((f) => [f, g[f]])), hasBias: hasBias ? 1 : 0 } as Record<string, number>;
    const sub = (code: string) => code.replace(/P\.g_(\w+)/g, 'G_$1');
    return {
      ...spec, key: `${spec.key}:${Object.values(vals).join(',')}`, params: [],
      bindings: `${Object.entries(vals).map(([k, v]) => `const G_${k} = ${v}u;`).join('\n')}\n${sub(spec.bindings)}`,
      loadA: sub(spec.loadA), loadB: sub(spec.loadB), store: sub(spec.store),
    };
  };

  // x gather: input pixel for batch b, channel c, output pixel p, kernel tap (u, v); 0 outside the image.
  const X_AT = `fn xAt(b: u32, c: u32, oy: u32, ox: u32, u: u32, v: u32) -> f32 {
  let iy = i32(oy * P.g_sh + u) - i32(P.g_ph);
  let ix = i32(ox * P.g_sw + v) - i32(P.g_pw);
  if (iy < 0 || ix < 0 || iy >= i32(P.g_h) || ix >= i32(P.g_w)) { return 0.0; }
  return x[((b * P.g_c + c) * P.g_h + u32(iy)) * P.g_w + u32(ix)];
}`;

  // ---- reductions

  function reduceRaw(op: ReduceOp, x: GpuArray, outer: number, size: number, inner: number): GpuArray {
    const out = rt.alloc(outer * inner);
    if (outer * inner === 0) return out;
    const init = op === 'sum' ? '0.0' : 'ninf()';
    const accum = op === 'sum' ? 'acc += v;' : 'if (v > acc || v != v) { acc = v; }';
    if (inner === 1) {
      const k = rt.kernel(`reduceRow:${op}`, [['outer', 'u32'], ['size', 'u32']], () => `${COMMON}${RED_SUM}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.outer) { return; }
  var acc = ${init};
  for (var j = t; j < P.size; j += 256u) { let v = x[row * P.size + j]; ${accum} }
  let r = ${op === 'sum' ? 'reduceSum(acc, t)' : 'reduceMax(acc, t)'};
  if (t == 0u) { out[row] = r; }
}`);
      rt.dispatch(k, [outer, size], [x, out], grid(outer));
    } else {
      const k = rt.kernel(`reduceCol:${op}`, [['n', 'u32'], ['size', 'u32'], ['inner', 'u32']], () => `${COMMON}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  let o = i / P.inner; let j = i % P.inner;
  let base = o * P.size * P.inner + j;
  var acc = ${init};
  for (var r = 0u; r < P.size; r++) { let v = x[base + r * P.inner]; ${accum} }
  out[i] = acc;
}`);
      rt.dispatch(k, [outer * inner, size, inner], [x, out], grid(Math.ceil((outer * inner) / WG)));
    }
    return out;
  }

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

  const softmaxKernel = (log: boolean) => rt.kernel(`softmax:${log}`, [['d', 'u32'], ['rows', 'u32']], () => `${COMMON}${RED_SUM}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.rows) { return; }
  let base = row * P.d;
  var mx = ninf();
  for (var j = t; j < P.d; j += 256u) { mx = max(mx, x[base + j]); }
  mx = reduceMax(mx, t);
  var s = 0.0;
  for (var j = t; j < P.d; j += 256u) { s += exp(x[base + j] - mx); }
  s = reduceSum(s, t);
  ${log ? 'let lse = mx + log(s);' : ''}
  for (var j = t; j < P.d; j += 256u) { y[base + j] = ${log ? 'x[base + j] - lse' : 'exp(x[base + j] - mx) / s'}; }
}`);

  const softmaxBack = (log: boolean) => rt.kernel(`softmaxBack:${log}`, [['d', 'u32'], ['rows', 'u32']], () => `${RED_SUM}
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.rows) { return; }
  let base = row * P.d;
  var s = 0.0;
  for (var j = t; j < P.d; j += 256u) { s += ${log ? 'dy[base + j]' : 'y[base + j] * dy[base + j]'}; }
  s = reduceSum(s, t);
  for (var j = t; j < P.d; j += 256u) { dx[base + j] = ${log ? 'dy[base + j] - exp(y[base + j]) * s' : 'y[base + j] * (dy[base + j] - s)'}; }
}`);

  const rowsOp = (k: Kernel, values: number[], buffers: (GpuArray | null)[], rows: number) => rt.dispatch(k, values, buffers, grid(rows));

  const conv = {
    fwd: (x: GpuArray, w: GpuArray, bias: GpuArray | null, g: Conv2dGeometry): GpuArray => {
      const ohw = g.oh * g.ow, K = g.c * g.kh * g.kw, N = g.n * ohw;
      const out = rt.alloc(g.n * g.o * ohw);
      gemm(bake({
        key: 'conv2d', params: [], aKFast: true, bKFast: false,
        bindings: convBindings('w', 'x', '@group(0) @binding(3) var<storage, read> bias: array<f32>;\n') + X_AT,
        loadA: 'return w[r * P.K + k];',
        loadB: `let kk = P.g_kh * P.g_kw; let c0 = k / kk; let t = k % kk; let ohw = P.g_oh * P.g_ow;
  let b = c / ohw; let p = c % ohw;
  return xAt(b, c0, p / P.g_ow, p % P.g_ow, t / P.g_kw, t % P.g_kw);`,
        store: `let ohw = P.g_oh * P.g_ow; let b = c / ohw; let p = c % ohw;
  var s = v; if (P.g_hasBias != 0u) { s += bias[r]; }
  out[(b * P.g_o + r) * ohw + p] = s;`,
      }, g, !!bias), [], [w, x, bias, out], g.o, N, K, 1, 1);
      return out;
    },
    bwdInput: (dy: GpuArray, w: GpuArray, g: Conv2dGeometry): GpuArray => {
      const hw = g.h * g.w, K = g.o * g.kh * g.kw, N = g.n * hw;
      const out = rt.alloc(g.n * g.c * hw);
      gemm(bake({
        key: 'conv2dDx', params: [], aKFast: true, bKFast: false,
        bindings: convBindings('w', 'dy'),
        loadA: 'let kk = P.g_kh * P.g_kw; let o = k / kk; let t = k % kk; return w[(o * P.g_c + r) * kk + t];',
        loadB: `let kk = P.g_kh * P.g_kw; let o = k / kk; let t = k % kk; let u = t / P.g_kw; let v = t % P.g_kw;
  let hw = P.g_h * P.g_w; let b = c / hw; let p = c % hw;
  let ty = i32(p / P.g_w) + i32(P.g_ph) - i32(u);
  let tx = i32(p % P.g_w) + i32(P.g_pw) - i32(v);
  if (ty < 0 || tx < 0) { return 0.0; }
  let uy = u32(ty); let ux = u32(tx);
  if (uy % P.g_sh != 0u || ux % P.g_sw != 0u) { return 0.0; }
  let oy = uy / P.g_sh; let ox = ux / P.g_sw;
  if (oy >= P.g_oh || ox >= P.g_ow) { return 0.0; }
  return dy[((b * P.g_o + o) * P.g_oh + oy) * P.g_ow + ox];`,
        store: 'let hw = P.g_h * P.g_w; let b = c / hw; let p = c % hw; out[(b * P.g_c + r) * hw + p] = v;',
      }, g), [], [w, dy, out], g.c, N, K, 1, 1);
      return out;
    },
    bwdWeight: (x: GpuArray, dy: GpuArray, g: Conv2dGeometry): GpuArray => {
      const ohw = g.oh * g.ow, K = g.n * ohw, N = g.c * g.kh * g.kw;
      const splits = chooseSplits(g.o, N, K);
      const part = rt.alloc(splits * g.o * N);
      gemm(bake({
        key: 'conv2dDw', params: [], aKFast: true, bKFast: true,
        bindings: convBindings('dy', 'x') + X_AT,
        loadA: 'let ohw = P.g_oh * P.g_ow; let b = k / ohw; let p = k % ohw; return dy[(b * P.g_o + r) * ohw + p];',
        loadB: `let ohw = P.g_oh * P.g_ow; let b = k / ohw; let p = k % ohw;
  let kk = P.g_kh * P.g_kw; let c0 = c / kk; let t = c % kk;
  return xAt(b, c0, p / P.g_ow, p % P.g_ow, t / P.g_kw, t % P.g_kw);`,
        store: 'out[bt * P.M * P.N + r * P.N + c] = v;',
      }, g), [], [dy, x, part], g.o, N, K, 1, splits);
      return sumSplits(part, splits, g.o * N);
    },
  };

  const matmulSpec = (transA: boolean, transB: boolean): GemmSpec => ({
    key: `matmul:${transA}:${transB}`, params: [['aBS', 'u32'], ['bBS', 'u32']], aKFast: !transA, bKFast: transB,
    bindings: convBindings('a', 'b'),
    loadA: transA ? 'return a[bt * P.aBS + k * P.M + r];' : 'return a[bt * P.aBS + r * P.K + k];',
    loadB: transB ? 'return b[bt * P.bBS + c * P.K + k];' : 'return b[bt * P.bBS + k * P.N + c];',
    store: 'out[bt * P.M * P.N + r * P.N + c] = v;',
  });

  const kernels: Backend<FStore> = {
    name: 'webgpu',

    unary(op: UnaryOp, x: FStore): FStore {
      const a = arr(x);
      return runEw(ew(`u:${op}`, 1, UNARY[op], [], 'let x = x0[i];'), a.length, [], [a]);
    },
    unaryBackward(op: UnaryOp, x: FStore, dy: FStore): FStore {
      const a = arr(x);
      return runEw(ew(`ud:${op}`, 2, `x1[i] * (${UNARY_D[op]})`, [], 'let x = x0[i];'), a.length, [], [a, arr(dy)]);
    },
    binary(op: BinaryOp, a: FStore, aStrides: number[], b: FStore, bStrides: number[], outShape: number[]): FStore {
      return broadcastOp(`b:${op}`, `let a = x0[o0]; let b = x1[o1]; out[i] = ${BINARY[op]};`, [a, b], [aStrides, bStrides], outShape);
    },
    where(cond, cStrides, a, aStrides, b, bStrides, outShape): FStore {
      return broadcastOp('where', 'out[i] = select(x2[o2], x1[o1], x0[o0] != 0.0);', [cond, a, b], [cStrides, aStrides, bStrides], outShape);
    },
    affine(x, scale, shift): FStore {
      const a = arr(x);
      return runEw(ew('affine', 1, 'x0[i] * P.scale + P.shift', [['scale', 'f32'], ['shift', 'f32']]), a.length, [scale, shift], [a]);
    },
    powScalar(x, p): FStore {
      const a = arr(x);
      return runEw(ew('powScalar', 1, 'powf(x0[i], P.p)', [['p', 'f32']]), a.length, [p], [a]);
    },
    clamp(x, lo, hi): FStore {
      const a = arr(x);
      // ±Infinity as the largest float: WGSL has no infinite literals.
      const f = (v: number) => (v === Infinity ? 3.4028234663852886e38 : v === -Infinity ? -3.4028234663852886e38 : v);
      return runEw(ew('clamp', 1, 'min(max(x0[i], P.lo), P.hi)', [['lo', 'f32'], ['hi', 'f32']]), a.length, [f(lo), f(hi)], [a]);
    },
    clampBackward(x, dy, lo, hi): FStore {
      const a = arr(x);
      const f = (v: number) => (v === Infinity ? 3.4028234663852886e38 : v === -Infinity ? -3.4028234663852886e38 : v);
      return runEw(ew('clampBack', 2, 'select(0.0, x1[i], x0[i] >= P.lo && x0[i] <= P.hi)', [['lo', 'f32'], ['hi', 'f32']]), a.length, [f(lo), f(hi)], [a, arr(dy)]);
    },
    reduce(op, x, outer, size, inner): FStore {
      return reduceRaw(op, arr(x), outer, size, inner);
    },
    stridedCopy(src, srcOffset, srcStrides, shape, dst, dstOffset, dstStrides, accumulate): void {
      const d = arr(dst);
      touch(d);
      const n = shape.reduce((a, b) => a * b, 1);
      if (n === 0) return;
      const m = mergeDims(shape, [srcStrides, dstStrides]);
      const r = m.shape.length;
      // Accumulating into repeated destinations would race: then one thread does it all, in order.
      const injective = !accumulate || isInjective(m.shape, m.strides[1]);
      const body = accumulate ? 'out[o1] += x0[o0];' : 'out[o1] = x0[o0];';
      const k = rt.kernel(`copy:${accumulate}:${r}:${injective}`, stridedParams(r, 2), () => `
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${injective ? WG : 1})
fn main(${GID}) {
  ${injective ? `${FLAT}\n  if (i >= P.n) { return; }\n  ${stridedIndex(r, 2)}\n  ${body}`
    : `for (var i = 0u; i < P.n; i++) {\n  ${stridedIndex(r, 2)}\n  ${body}\n  }`}
}`);
      rt.dispatch(k, stridedValues(n, m.shape, m.strides, [srcOffset, dstOffset]), [arr(src), d], injective ? grid(Math.ceil(n / WG)) : [1]);
    },
    matmul(a, b, batch, m, n, k, transA, transB, aBatchStride, bBatchStride): FStore {
      const out = rt.alloc(batch * m * n);
      if (batch * m * n === 0) return out;
      if (k === 0) { fill(out, 0); return out; }
      gemm(matmulSpec(transA, transB), [aBatchStride, bBatchStride], [arr(a), arr(b), out], m, n, k, batch, 1);
      return out;
    },
    conv2d(x, w, bias, g): FStore {
      return conv.fwd(arr(x), arr(w), bias ? arr(bias) : null, g);
    },
    conv2dBackwardInput(dy, w, g): FStore {
      return conv.bwdInput(arr(dy), arr(w), g);
    },
    conv2dBackwardWeight(x, dy, g): FStore {
      return conv.bwdWeight(arr(x), arr(dy), g);
    },
    upsampleNearest2x(x, planes, h, w): FStore {
      const a = arr(x);
      return runEw(ew('up2', 1, 'x0[(p * P.h + (r >> 1u)) * P.w + (c >> 1u)]', [['h', 'u32'], ['w', 'u32']],
        'let w2 = 2u * P.w; let c = i % w2; let pr = i / w2; let r = pr % (2u * P.h); let p = pr / (2u * P.h);'),
      planes * 4 * h * w, [h, w], [a]);
    },
    avgPool2x2(x, planes, h, w): FStore {
      const a = arr(x);
      return runEw(ew('pool2', 1, '0.25 * (x0[r0] + x0[r0 + 1u] + x0[r0 + P.w] + x0[r0 + P.w + 1u])', [['h', 'u32'], ['w', 'u32']],
        'let w2 = P.w / 2u; let h2 = P.h / 2u; let c = i % w2; let pr = i / w2; let r = pr % h2; let p = pr / h2; let r0 = (p * P.h + 2u * r) * P.w + 2u * c;'),
      planes * (h >> 1) * (w >> 1), [h, w], [a]);
    },
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
    softmax(x, rows, d): FStore {
      const y = rt.alloc(rows * d);
      rowsOp(softmaxKernel(false), [d, rows], [arr(x), y], rows);
      return y;
    },
    softmaxBackward(y, dy, rows, d): FStore {
      const dx = rt.alloc(rows * d);
      rowsOp(softmaxBack(false), [d, rows], [arr(y), arr(dy), dx], rows);
      return dx;
    },
    logSoftmax(x, rows, d): FStore {
      const y = rt.alloc(rows * d);
      rowsOp(softmaxKernel(true), [d, rows], [arr(x), y], rows);
      return y;
    },
    logSoftmaxBackward(y, dy, rows, d): FStore {
      const dx = rt.alloc(rows * d);
      rowsOp(softmaxBack(true), [d, rows], [arr(y), arr(dy), dx], rows);
      return dx;
    },
    gatherRows(table, idx, d): FStore {
      const ia = rt.upload(idx);
      const k = rt.kernel('gather', [['n', 'u32'], ['d', 'u32']], () => `
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  out[i] = table[u32(idx[i / P.d]) * P.d + i % P.d];
}`);
      const out = rt.alloc(idx.length * d);
      if (out.length) rt.dispatch(k, [out.length, d], [arr(table), ia, out], grid(Math.ceil(out.length / WG)));
      ia.release();
      return out;
    },
    scatterAddRows(dy, idx, rows, d): FStore {
      const ia = rt.upload(idx);
      const k = rt.kernel('scatterAdd', [['n', 'u32'], ['d', 'u32'], ['m', 'u32']], () => `
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  let r = i32(i / P.d); let j = i % P.d;
  var s = 0.0;
  for (var q = 0u; q < P.m; q++) { if (idx[q] == r) { s += dy[q * P.d + j]; } }
  out[i] = s;
}`);
      const out = rt.alloc(rows * d);
      if (out.length) rt.dispatch(k, [out.length, d, idx.length], [arr(dy), ia, out], grid(Math.ceil(out.length / WG)));
      ia.release();
      return out;
    },
    adamW(p, g, m, v, lr, beta1, beta2, eps, weightDecay, step): void {
      const pa = arr(p), ma = arr(m), va = arr(v);
      touch(pa); touch(ma); touch(va);
      const k = rt.kernel('adamW', [['n', 'u32'], ['lr', 'f32'], ['b1', 'f32'], ['b2', 'f32'], ['eps', 'f32'], ['wd', 'f32'], ['bc1', 'f32'], ['bc2', 'f32']], () => `
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  let gi = g[i];
  var pi = p[i] * (1.0 - P.lr * P.wd);
  let mi = P.b1 * m[i] + (1.0 - P.b1) * gi;
  let vi = P.b2 * v[i] + (1.0 - P.b2) * gi * gi;
  m[i] = mi; v[i] = vi;
  pi -= (P.lr * (mi / P.bc1)) / (sqrt(vi / P.bc2) + P.eps);
  p[i] = pi;
}`);
      const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
      if (pa.length) rt.dispatch(k, [pa.length, lr, beta1, beta2, eps, weightDecay, bc1, bc2], [pa, arr(g), ma, va], grid(Math.ceil(pa.length / WG)));
    },
  };

  function isInjective(shape: number[], strides: number[]): boolean {
    const dims = shape.map((s, i) => [s, Math.abs(strides[i])]).filter(([s]) => s > 1).sort((a, b) => a[1] - b[1]);
    let extent = 1;
    for (const [s, st] of dims) {
      if (st < extent) return false;
      extent = st * s;
    }
    return true;
  }

  function fill(a: GpuArray, value: number): void {
    touch(a);
    const k = rt.kernel('fill', [['n', 'u32'], ['v', 'f32']], () => `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  out[i] = P.v;
}`);
    if (a.length) rt.dispatch(k, [a.length, value], [a], grid(Math.ceil(a.length / WG)));
  }

  /** A copy of a[off, off + n). */
  function sliceArr(a: GpuArray, off: number, n: number): GpuArray {
    const out = rt.alloc(n);
    const k = rt.kernel('slice', [['n', 'u32'], ['off', 'u32']], () => `
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  out[i] = x[P.off + i];
}`);
    if (n) rt.dispatch(k, [n, off], [a, out], grid(Math.ceil(n / WG)));
    return out;
  }

  function joinStats(mean: FStore, rstd: FStore, rows: number): GpuArray {
    if (mean === rstd) return arr(mean);
    const out = rt.alloc(2 * rows);
    kernels.stridedCopy(mean, 0, [1], [rows], out, 0, [1], false);
    kernels.stridedCopy(rstd, 0, [1], [rows], out, rows, [1], false);
    return out;
  }

  const storage: StorageOps<FStore> = {
    device: true,
    empty: (n) => rt.alloc(n),
    full: (n, value) => { const a = rt.alloc(n); fill(a, value); return a; },
    fromHost: (data) => { const a = rt.upload(data); a.host = data; return a; },
    copy: (x) => {
      const a = arr(x), out = rt.alloc(a.length);
      rt.copyBuffer(a, out, a.length);
      out.host = a.host;
      return out;
    },
    copyInto: (dst, src) => {
      const d = arr(dst);
      if (src instanceof Float32Array) { rt.upload(src, d); d.host = null; return; }
      const s = arr(src);
      rt.copyBuffer(s, d, d.length);
      d.host = null;
    },
    lerpInPlace: (s, v, a) => {
      const sa = arr(s);
      touch(sa);
      const k = rt.kernel('lerp', [['n', 'u32'], ['a', 'f32']], () => `
@group(0) @binding(1) var<storage, read_write> s: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@compute @workgroup_size(${WG})
fn main(${GID}) {
  ${FLAT}
  if (i >= P.n) { return; }
  s[i] += P.a * (v[i] - s[i]);
}`);
      if (sa.length) rt.dispatch(k, [sa.length, a], [sa, arr(v)], grid(Math.ceil(sa.length / WG)));
    },
    sumSquares: (x, out, index) => {
      const a = arr(x), o = arr(out);
      touch(o);
      const k = rt.kernel('sumSquares', [['n', 'u32'], ['idx', 'u32']], () => `${RED_SUM}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let t = lid.x;
  var s = 0.0;
  for (var j = t; j < P.n; j += 256u) { let v = x[j]; s += v * v; }
  let r = reduceSum(s, t);
  if (t == 0u) { out[P.idx] = r; }
}`);
      rt.dispatch(k, [a.length, index], [a, o], [1]);
    },
  };

  return { ...kernels, ...storage, runtime: rt, adapterInfo: rt.adapter };
}

/**
 * Requests an adapter and a device and returns the backend. Node: without `gpu`, the `webgpu` package (Dawn)
 * is imported here, lazily (XDG_RUNTIME_DIR is set to the temp folder when unset: Dawn's Vulkan loader wants it).
 */
export async function createWebGPUBackend(gpu?: GPU, opts: { powerPreference?: GPUPowerPreference } = {}): Promise<WebGPUEngine> {
  if (!gpu) {
    if (typeof navigator !== 'undefined' && (navigator as { gpu?: GPU }).gpu) gpu = (navigator as { gpu?: GPU }).gpu;
    else gpu = await nodeGPU();
  }
  const adapter = await gpu!.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error('webgpu: no GPU adapter found (in Node without a GPU, install Mesa lavapipe 25+: see .ci/install-webgpu.sh)');
  const lim = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(lim.maxStorageBuffersPerShaderStage, 10),
    },
  });
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const desc: AdapterDescription = {
    vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '',
  };
  const rt = new Runtime(device, desc);
  // Dawn's instance (the GPU object) must outlive the device: a collected instance takes the device with it.
  rt.keepAlive = [gpu, adapter];
  return makeWebGPUBackend(rt);
}

async function nodeGPU(): Promise<GPU> {
  const proc = (globalThis as { process?: { env: Record<string, string | undefined> } }).process;
  if (!proc) throw new Error('webgpu: no navigator.gpu here; pass a GPU object to initWebGPU');
  if (!proc.env.XDG_RUNTIME_DIR) {
    const osName = 'node:os';
    const os = await import(/* @vite-ignore */ osName) as { tmpdir(): string };
    proc.env.XDG_RUNTIME_DIR = os.tmpdir();
  }
  const name = 'webgpu';
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = await import(/* @vite-ignore */ name) as typeof mod;
  } catch (e) {
    throw new Error(`webgpu: cannot load the 'webgpu' package (Dawn for Node): ${(e as Error).message}`);
  }
  // GPUBufferUsage, GPUMapMode, … as globals, as in browsers.
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return mod.create([]);
}
