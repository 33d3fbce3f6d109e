/**
 * The float32 arithmetic diffusers' schedulers run on, reproduced on the host, so that a diffusers scheduler
 * config samples in diffuse with diffusers' own timesteps and σ's (not just close to them).
 *
 * diffusers builds β and ᾱ as float32 PyTorch tensors and derives σ = √((1 − ᾱ)/ᾱ), log σ and the grids from
 * them partly in float32 (torch, numpy) and partly in float64 (numpy). Every float32 operation below is rounded
 * where diffusers rounds (`Math.fround` of a correctly rounded double result is the correctly rounded float32
 * result for +, −, ×, ÷ and √), and the two operations that are not plain IEEE operations are reproduced as the
 * libraries compute them on x86-64:
 *   torch.linspace (PyTorch 1.13 CPU, AVX2 kernels)  start + step·i by fused multiply-add in the scalar tail,
 *                                                    base + k·step unfused in the 8-lane vector body
 *   numpy.log on float32 arrays (numpy 1.22–1.24, AVX2+FMA3 or AVX512F)  numpy's own rational approximation
 * torch.cumprod accumulates float32 products in double (PyTorch's CPU accumulate type) and rounds each output.
 * Checked against PyTorch 1.13 and numpy 1.24.2 in test/diffusers-schedulers.test.ts (via diffusers' fixtures).
 * diffuse's own schedules stay float64 (src/diffusion/schedules.ts); this file is only for diffusers configs.
 */

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

const bitsOf = (x: number): number => { F32[0] = x; return U32[0]; };
const fromBits = (b: number): number => { U32[0] = b >>> 0; return F32[0]; };

/** The float32 neighbour of float32 x towards +∞ (x finite). */
function nextUp32(x: number): number {
  if (x === 0) return fromBits(1);
  const b = bitsOf(x);
  return fromBits(x > 0 ? b + 1 : b - 1);
}

/** The float32 neighbour of float32 x towards −∞ (x finite). */
function nextDown32(x: number): number {
  return -nextUp32(-x);
}

/**
 * fmaf(a, b, c): a·b + c rounded once to float32 (a, b, c float32). a·b is exact in a double (24 + 24 bits);
 * the sum's rounding error comes from TwoSum, and decides the one case where rounding the double sum to float32
 * would round twice: a double that lies exactly halfway between two float32's.
 */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b, s = p + c;
  const bv = s - p, e = (p - (s - bv)) + (c - bv);
  const r = Math.fround(s);
  if (e === 0 || r === s || !Number.isFinite(s)) return r;
  const lo = r < s ? r : nextDown32(r), hi = r < s ? nextUp32(r) : r;
  if (s !== lo + (hi - lo) / 2) return r;
  return e > 0 ? hi : lo;
}

/**
 * torch.linspace(start, end, n, dtype=torch.float32) as PyTorch 1.13's CPU kernel computes it with its AVX2
 * kernels: step = (end − start)/(n − 1) in float32; element i is start + step·i (i < n/2) or end − step·(n − 1 − i)
 * (the rest), one fused multiply-add each; but in the vectorised body (two 8-lane vectors at a time while 16
 * elements remain) only each vector's first element is computed so, and lane k is that base + k·step, unfused.
 * (AVX-512 kernels have 16 lanes, and so give a slightly different table.)
 */
export function torchLinspaceFloat32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const a = Math.fround(start), b = Math.fround(end);
  if (n === 1) { out[0] = a; return out; }
  const step = Math.fround(Math.fround(b - a) / (n - 1)), half = Math.floor(n / 2);
  const scalar = (i: number) => (i < half ? fma32(step, i, a) : fma32(-step, n - 1 - i, b));
  const lanes = 8;
  let i = 0;
  for (; i <= n - 2 * lanes; i += 2 * lanes) {
    for (let v = i; v < i + 2 * lanes; v += lanes) {
      const base = scalar(v);
      for (let k = 0; k < lanes; k++) out[v + k] = Math.fround(base + Math.fround(k * step));
    }
  }
  for (; i < n; i++) out[i] = scalar(i);
  return out;
}

/** torch.cumprod of float32 values: the running product is a double (PyTorch's CPU accumulate type), each output rounded to float32. */
export function torchCumprodFloat32(x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length);
  let p = 1;
  for (let i = 0; i < x.length; i++) { p *= x[i]; out[i] = Math.fround(p); }
  return out;
}

const LN2 = Math.fround(0.693147180559945309417);
const SQRT1_2 = Math.fround(0.707106781186547524401);
const P = [0, 9.999999999999998702752e-01, 2.112677543073053063722e+00, 1.480000633576506585156e+00, 3.808837741388407920751e-01, 2.589979117907922693523e-02].map(Math.fround);
const Q = [1, 2.612677543073109236779e+00, 2.453006071784736363091e+00, 9.864942958519418960339e-01, 1.546476374983906719538e-01, 5.875095403124574342950e-03].map(Math.fround);

/**
 * numpy.log of a float32 array element as numpy 1.22–1.24 computes it on AVX2+FMA3 (and AVX512F) machines: not
 * the correctly rounded logf but x = m·2^e with m ∈ (√½, √2], log(x) = P(m − 1)/Q(m − 1) + e·ln 2, a 5th-order
 * rational approximation evaluated by float32 fused multiply-adds (at most 3.8 ulp from the true log).
 * For positive normal float32 x (σ's are); anything else is computed by Math.log.
 */
export function numpyLogFloat32(x: number): number {
  if (!(x >= 1.1754943508222875e-38) || x === Infinity) return Math.fround(Math.log(x));
  const bits = bitsOf(x);
  let e = (bits >>> 23) - 126;
  let m = fromBits((bits & 0x7fffff) | (126 << 23)); // in [0.5, 1)
  if (m <= SQRT1_2) { m += m; e -= 1; }
  const y = Math.fround(m - 1);
  let num = fma32(P[5], y, P[4]);
  for (let k = 3; k >= 0; k--) num = fma32(num, y, P[k]);
  let den = fma32(Q[5], y, Q[4]);
  for (let k = 3; k >= 0; k--) den = fma32(den, y, Q[k]);
  return fma32(e, LN2, Math.fround(num / den));
}
