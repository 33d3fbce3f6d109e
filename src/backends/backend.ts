/**
 * The kernel interface: the only thing a backend implements.
 *
 * Contract (every backend, every kernel):
 * - Inputs are dense, row-major (C-contiguous) typed arrays; shapes and sizes are passed alongside.
 * - Every kernel returns freshly allocated outputs, except `stridedCopy`, which writes into `dst`.
 * - Shapes are validated by the Tensor layer before a kernel is called; kernels trust their arguments.
 *   (The native addon re-checks buffer lengths so that a bug above it cannot corrupt memory.)
 * - float32 everywhere, int32 only for indices (`gatherRows`, `scatterAddRows`).
 * - The `js` backend is the reference: other backends must match it within float32 rounding.
 */

export type F32 = Float32Array;
export type I32 = Int32Array;

export type BackendName = 'js' | 'native';

/** y = f(x), elementwise. */
export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'sin' | 'cos' | 'tanh' | 'sigmoid'
  | 'silu' | 'gelu' | 'relu' | 'abs' | 'sign' | 'square' | 'reciprocal';

/** out = a op b with NumPy broadcasting. Comparisons return 1 or 0. */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum' | 'eq' | 'gt' | 'lt';

export type ReduceOp = 'sum' | 'max';

export interface Conv2dGeometry {
  n: number; c: number; h: number; w: number; // input NCHW
  o: number; kh: number; kw: number;          // weight OIHW (I = c)
  sh: number; sw: number;                     // stride
  ph: number; pw: number;                     // zero padding
  oh: number; ow: number;                     // output spatial size (caller computes)
}

export interface NormResult { y: F32; mean: F32; rstd: F32 }
export interface NormGrads { dx: F32; dgamma: F32 | null; dbeta: F32 | null }

export interface Backend {
  readonly name: BackendName;

  /** y[i] = op(x[i]) */
  unary(op: UnaryOp, x: F32): F32;
  /** dx[i] = dy[i] * op'(x[i]) (derivative taken at the input x). */
  unaryBackward(op: UnaryOp, x: F32, dy: F32): F32;

  /**
   * out[idx] = a[Σ idx_k·aStrides_k] op b[Σ idx_k·bStrides_k] for idx over outShape.
   * Strides are element strides into a and b, 0 on broadcast dimensions; all arrays have outShape.length entries.
   */
  binary(op: BinaryOp, a: F32, aStrides: number[], b: F32, bStrides: number[], outShape: number[]): F32;
  /** out = cond != 0 ? a : b, broadcast like `binary`. */
  where(cond: F32, cStrides: number[], a: F32, aStrides: number[], b: F32, bStrides: number[], outShape: number[]): F32;

  /** y = x * scale + shift */
  affine(x: F32, scale: number, shift: number): F32;
  /** y = x ** p */
  powScalar(x: F32, p: number): F32;
  /** y = min(max(x, lo), hi); lo/hi may be ±Infinity. */
  clamp(x: F32, lo: number, hi: number): F32;
  /** dx = dy where lo <= x <= hi, else 0 (PyTorch's convention at the boundaries). */
  clampBackward(x: F32, dy: F32, lo: number, hi: number): F32;

  /** x viewed as [outer, size, inner] → out [outer, inner] reduced over the middle axis. */
  reduce(op: ReduceOp, x: F32, outer: number, size: number, inner: number): F32;

  /**
   * General strided copy over `shape`:
   *   dst[dstOffset + Σ idx_k·dstStrides_k] (= or +=) src[srcOffset + Σ idx_k·srcStrides_k]
   * Writes into dst in place; with accumulate, destination positions may repeat (summing broadcasts).
   * Covers permute, slice, concat, pad, expand and their gradients.
   */
  stridedCopy(
    src: F32, srcOffset: number, srcStrides: number[], shape: number[],
    dst: F32, dstOffset: number, dstStrides: number[], accumulate: boolean,
  ): void;

  /**
   * Batched GEMM: out[bi] = op(A[bi]) · op(B[bi]), out is [batch, m, n].
   * A[bi] starts at bi·aBatchStride (0 broadcasts one matrix); stored [m,k] or, with transA, [k,m].
   * B[bi] starts at bi·bBatchStride; stored [k,n] or, with transB, [n,k].
   */
  matmul(
    a: F32, b: F32, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number,
  ): F32;

  /** Cross-correlation as torch.nn.functional.conv2d: x NCHW, w OIHW, bias O or null → y [n, o, oh, ow]. */
  conv2d(x: F32, w: F32, bias: F32 | null, g: Conv2dGeometry): F32;
  /** dx [n, c, h, w] from dy [n, o, oh, ow]. */
  conv2dBackwardInput(dy: F32, w: F32, g: Conv2dGeometry): F32;
  /** dw [o, c, kh, kw] from x and dy (bias gradient is a `reduce`). */
  conv2dBackwardWeight(x: F32, dy: F32, g: Conv2dGeometry): F32;

  /** Nearest-neighbour ×2: x [planes, h, w] → [planes, 2h, 2w]. */
  upsampleNearest2x(x: F32, planes: number, h: number, w: number): F32;
  /** 2×2 average pooling, stride 2: x [planes, h, w] (h, w even) → [planes, h/2, w/2]. */
  avgPool2x2(x: F32, planes: number, h: number, w: number): F32;

  /**
   * Group norm over x [n, c, hw] with `groups` groups, per-channel affine (gamma, beta may be null),
   * then optionally SiLU (fused). mean/rstd are [n, groups] (statistics of x, before the affine).
   */
  groupNorm(x: F32, gamma: F32 | null, beta: F32 | null, n: number, c: number, hw: number,
    groups: number, eps: number, silu: boolean): NormResult;
  /** Gradients of groupNorm (with the same silu flag) given dy. */
  groupNormBackward(dy: F32, x: F32, gamma: F32 | null, beta: F32 | null, mean: F32, rstd: F32,
    n: number, c: number, hw: number, groups: number, silu: boolean): NormGrads;

  /** Layer norm over the last dim: x [rows, d], gamma/beta [d] or null. mean/rstd are [rows]. */
  layerNorm(x: F32, gamma: F32 | null, beta: F32 | null, rows: number, d: number, eps: number): NormResult;
  layerNormBackward(dy: F32, x: F32, gamma: F32 | null, mean: F32, rstd: F32, rows: number, d: number,
    hasBeta: boolean): NormGrads;

  /** Softmax over the last dim of x [rows, d]. */
  softmax(x: F32, rows: number, d: number): F32;
  /** dx from y = softmax(x) and dy. */
  softmaxBackward(y: F32, dy: F32, rows: number, d: number): F32;
  logSoftmax(x: F32, rows: number, d: number): F32;
  /** dx from y = logSoftmax(x) and dy. */
  logSoftmaxBackward(y: F32, dy: F32, rows: number, d: number): F32;

  /** out[i, :] = table[idx[i], :]; table [rows, d]. Indices are validated by the caller. */
  gatherRows(table: F32, idx: I32, d: number): F32;
  /** dtable [rows, d] with dtable[idx[i], :] += dy[i, :]. */
  scatterAddRows(dy: F32, idx: I32, rows: number, d: number): F32;

  /**
   * AdamW, in place on p, m, v (PyTorch's torch.optim.AdamW): p -= lr·wd·p; m, v moments;
   * p -= lr · (m / bc1) / (sqrt(v / bc2) + eps) with bc1 = 1 − β1^t, bc2 = 1 − β2^t.
   */
  adamW(p: F32, g: F32, m: F32, v: F32, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, step: number): void;
}
