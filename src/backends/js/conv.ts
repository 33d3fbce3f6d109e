/**
 * Convolutions and batched matmul for the js backend as packed GEMMs (./gemm.ts). Each output element is one
 * float64 sum over the same terms as the naive loops, rounded once to float32.
 */
import type { Conv2dGeometry, F32 } from '../backend.js';
import { INIT_BIAS, INIT_C, INIT_ZERO, MR, NR, gemmPacked, packA, packB, panels, scratch32, scratch64, type Arr } from './gemm.js';

// Scratch slots (./gemm.ts): distinct per role so that buffers live at the same time never share one.
const S_A = 0, S_B = 1, S_DCOL = 0, S_ACC = 1;

/** Output columns [x0, x1) whose input column ox·sw − pw + v lies inside [0, W). */
function validRange(W: number, sw: number, pw: number, v: number, ow: number): [number, number] {
  const x0 = Math.max(0, Math.ceil((pw - v) / sw)), x1 = Math.min(ow, Math.floor((W - 1 + pw - v) / sw) + 1);
  return [x0, Math.max(x0, x1)];
}

/**
 * im2col — col[(ic·kh + u)·kw + v][oy·ow + ox] = x[(ic·h + iy)·W + ix], 0 in the padding — written straight into
 * packed B panels (element (p, j) at jOff[j] + p·NR, as packB lays them out): p = (ic, u, v) and j the output
 * pixel (forward), or transposed, p the pixel and j = (ic, u, v) (weight gradient). One pass, no col buffer.
 */
function im2colPacked(x: Arr, xo: number, g: Conv2dGeometry, bp: Float32Array, transposed: boolean): void {
  const { c, h, w: W, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  const K = c * kh * kw, P = oh * ow;
  const cols = transposed ? K : P, rLen = transposed ? P : K, padded = panels(cols, NR) * NR;
  // Zero the padding columns of the last panel (the scratch is reused across calls).
  for (let j = cols; j < padded; j++) {
    const o = ((j / NR) | 0) * rLen * NR + (j % NR);
    for (let p = 0; p < rLen; p++) bp[o + p * NR] = 0;
  }
  const jOff = offsets(cols, rLen);
  let row = 0;
  for (let ic = 0; ic < c; ic++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++, row++) {
    const [x0, x1] = validRange(W, sw, pw, v, ow);
    for (let oy = 0; oy < oh; oy++) {
      const iy = oy * sh - ph + u, q0 = oy * ow;
      const valid = iy >= 0 && iy < h;
      let s = xo + (ic * h + iy) * W + x0 * sw - pw + v;
      if (transposed) {
        // Column `row`, pixels q0 … q0 + ow − 1 at stride NR.
        let d = jOff[row] + q0 * NR;
        for (let ox = 0; ox < ow; ox++, d += NR) {
          if (valid && ox >= x0 && ox < x1) { bp[d] = x[s]; s += sw; } else bp[d] = 0;
        }
      } else {
        const po = row * NR;
        for (let ox = 0; ox < ow; ox++) {
          if (valid && ox >= x0 && ox < x1) { bp[jOff[q0 + ox] + po] = x[s]; s += sw; } else bp[jOff[q0 + ox] + po] = 0;
        }
      }
    }
  }
}

let jOffBuf = new Int32Array(0);
function offsets(cols: number, rLen: number): Int32Array {
  if (jOffBuf.length < cols) jOffBuf = new Int32Array(cols);
  for (let j = 0; j < cols; j++) jOffBuf[j] = ((j / NR) | 0) * rLen * NR + (j % NR);
  return jOffBuf;
}

/** The adjoint of im2col (unpacked dcol): dx[dxo + …] += dcol[…] (float64 throughout). */
function col2im(dcol: Float64Array, g: Conv2dGeometry, dx: Float64Array, dxo: number): void {
  const { c, h, w: W, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  let d = 0;
  for (let ic = 0; ic < c; ic++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
    const [x0, x1] = validRange(W, sw, pw, v, ow);
    for (let oy = 0; oy < oh; oy++, d += ow) {
      const iy = oy * sh - ph + u;
      if (iy < 0 || iy >= h) continue;
      let s = dxo + (ic * h + iy) * W + x0 * sw - pw + v;
      for (let ox = x0; ox < x1; ox++, s += sw) dx[s] += dcol[d + ox];
    }
  }
}

const isPointwise = (g: Conv2dGeometry) => g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;

/**
 * Few output channels (conv_out, or the input gradient of conv_in): packing would cost more than the GEMM
 * saves, so each output plane is accumulated row by row (axpy) in float64, terms in the naive loop's order.
 */
function conv2dFewOutputs(x: F32, w: F32, bias: F32 | null, g: Conv2dGeometry): F32 {
  const { n, c, h, w: W, o, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  const P = oh * ow, y = new Float32Array(n * o * P), acc = scratch64(S_ACC, P);
  for (let b = 0; b < n; b++) for (let oc = 0; oc < o; oc++) {
    acc.fill(bias ? bias[oc] : 0, 0, P);
    for (let ic = 0; ic < c; ic++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      const wv = w[((oc * c + ic) * kh + u) * kw + v], [x0, x1] = validRange(W, sw, pw, v, ow);
      for (let oy = 0; oy < oh; oy++) {
        const iy = oy * sh - ph + u;
        if (iy < 0 || iy >= h) continue;
        let s = ((b * c + ic) * h + iy) * W + x0 * sw - pw + v;
        for (let d = oy * ow + x0, e = oy * ow + x1; d < e; d++, s += sw) acc[d] += x[s] * wv;
      }
    }
    const yo = (b * o + oc) * P;
    for (let i = 0; i < P; i++) y[yo + i] = acc[i];
  }
  return y;
}

export function conv2dGemm(x: F32, w: F32, bias: F32 | null, g: Conv2dGeometry): F32 {
  const { n, c, h, w: W, o, kh, kw, oh, ow } = g;
  if (o <= 2) return conv2dFewOutputs(x, w, bias, g);
  const K = c * kh * kw, P = oh * ow, direct = isPointwise(g);
  const y = new Float32Array(n * o * P);
  const ap = scratch32(S_A, panels(o, MR) * MR * K), bp = scratch32(S_B, panels(P, NR) * NR * K);
  packA(w, 0, K, 1, o, K, ap);
  for (let b = 0; b < n; b++) {
    if (direct) packB(x, b * c * h * W, P, 1, K, P, bp);
    else im2colPacked(x, b * c * h * W, g, bp, false);
    gemmPacked(ap, bp, o, P, K, y, b * o * P, P, bias ? INIT_BIAS : INIT_ZERO, bias);
  }
  return y;
}

export function conv2dBackwardInputGemm(dy: F32, w: F32, g: Conv2dGeometry): F32 {
  const { n, c, h, w: W, o, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  if (sh === 1 && sw === 1) {
    // Stride 1: dx is the convolution of dy with the flipped, transposed kernel (padding k − 1 − p).
    const wf = new Float32Array(c * o * kh * kw);
    for (let oc = 0; oc < o; oc++) for (let ic = 0; ic < c; ic++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      wf[((ic * o + oc) * kh + kh - 1 - u) * kw + kw - 1 - v] = w[((oc * c + ic) * kh + u) * kw + v];
    }
    return conv2dGemm(dy, wf, null, {
      n, c: o, h: oh, w: ow, o: c, kh, kw, sh: 1, sw: 1, ph: kh - 1 - ph, pw: kw - 1 - pw, oh: h, ow: W,
    });
  }
  // General stride: dcol = Wᵀ·dy per image (float64), scattered back by col2im.
  const K = c * kh * kw, P = oh * ow, HW = c * h * W;
  const dx = new Float32Array(n * HW);
  const ap = scratch32(S_A, panels(K, MR) * MR * o), bp = scratch32(S_B, panels(P, NR) * NR * o);
  packA(w, 0, 1, K, K, o, ap);
  const dcol = scratch64(S_DCOL, K * P), acc = scratch64(S_ACC, HW);
  for (let b = 0; b < n; b++) {
    packB(dy, b * o * P, P, 1, o, P, bp);
    gemmPacked(ap, bp, K, P, o, dcol, 0, P, INIT_ZERO, null);
    acc.fill(0, 0, HW);
    col2im(dcol, g, acc, 0);
    for (let i = 0; i < HW; i++) dx[b * HW + i] = acc[i];
  }
  return dx;
}

/** Weight gradient for few output channels (see conv2dFewOutputs): one float64 dot product per weight. */
function conv2dBackwardWeightFewOutputs(x: F32, dy: F32, g: Conv2dGeometry): F32 {
  const { n, c, h, w: W, o, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  const dw = new Float32Array(o * c * kh * kw);
  for (let oc = 0; oc < o; oc++) for (let ic = 0; ic < c; ic++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
    const [x0, x1] = validRange(W, sw, pw, v, ow);
    let acc = 0;
    for (let b = 0; b < n; b++) for (let oy = 0; oy < oh; oy++) {
      const iy = oy * sh - ph + u;
      if (iy < 0 || iy >= h) continue;
      let s = ((b * c + ic) * h + iy) * W + x0 * sw - pw + v;
      for (let d = ((b * o + oc) * oh + oy) * ow + x0, e = d + x1 - x0; d < e; d++, s += sw) acc += dy[d] * x[s];
    }
    dw[((oc * c + ic) * kh + u) * kw + v] = acc;
  }
  return dw;
}

export function conv2dBackwardWeightGemm(x: F32, dy: F32, g: Conv2dGeometry): F32 {
  const { n, c, h, w: W, o, kh, kw, oh, ow } = g;
  if (o <= 2) return conv2dBackwardWeightFewOutputs(x, dy, g);
  const K = c * kh * kw, P = oh * ow, direct = isPointwise(g);
  // dW = Σ_b dy_b · col_bᵀ: the reduction runs over pixels, continued across images in the float64 accumulator.
  const acc = scratch64(S_ACC, o * K);
  const ap = scratch32(S_A, panels(o, MR) * MR * P), bp = scratch32(S_B, panels(K, NR) * NR * P);
  for (let b = 0; b < n; b++) {
    packA(dy, b * o * P, P, 1, o, P, ap);
    if (direct) packB(x, b * c * h * W, 1, P, P, K, bp);
    else im2colPacked(x, b * c * h * W, g, bp, true);
    gemmPacked(ap, bp, o, K, P, acc, 0, K, b === 0 ? INIT_ZERO : INIT_C, null);
  }
  const dw = new Float32Array(o * K);
  if (n > 0) for (let i = 0; i < o * K; i++) dw[i] = acc[i];
  return dw;
}

export function matmulGemm(a: F32, b: F32, batch: number, m: number, n: number, k: number,
  transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number): F32 {
  const out = new Float32Array(batch * m * n);
  const ap = scratch32(S_A, panels(m, MR) * MR * k), bp = scratch32(S_B, panels(n, NR) * NR * k);
  for (let bi = 0; bi < batch; bi++) {
    // A broadcast matrix (batch stride 0) is packed once.
    if (bi === 0 || aBatchStride !== 0) packA(a, bi * aBatchStride, transA ? 1 : k, transA ? m : 1, m, k, ap);
    if (bi === 0 || bBatchStride !== 0) packB(b, bi * bBatchStride, transB ? 1 : n, transB ? k : 1, k, n, bp);
    gemmPacked(ap, bp, m, n, k, out, bi * m * n, n, INIT_ZERO, null);
  }
  return out;
}
