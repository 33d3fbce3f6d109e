/**
 * GEMM: 64×64 output tiles, 16-deep K slices staged in workgroup memory, 16×16 threads computing 4×4 outputs
 * each (register blocking). The same template runs matmul (batched, transposed operands by index) and the
 * three convolutions as implicit GEMMs (the im2col matrix is gathered while loading the tile, never stored).
 * Weight gradients, whose K (batch × pixels) dwarfs M×N, are split over K into partial tiles summed after.
 */
import type { Backend, Conv2dGeometry, FStore } from '../backend.js';
import type { Helpers } from './base.js';
import type { GpuArray, ParamType, Runtime } from './runtime.js';

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

export function gemmKernels(rt: Runtime, h: Helpers): Pick<Backend<FStore>, 'matmul' | 'conv2d' | 'conv2dBackwardInput' | 'conv2dBackwardWeight'> {
  const { arr, fill, sumSplits } = h;
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

  return {
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
  };
}
