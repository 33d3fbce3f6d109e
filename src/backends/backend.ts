/**
 * The kernel interface: the only thing a backend implements.
 *
 * A backend provides the PRIMITIVE kernels (every one of them) and the storage operations; it may also provide
 * FUSED kernels, optional fast paths for composites the engine otherwise writes over the primitives
 * (src/tensor/composites.ts). Both sets are declared once, in `KERNELS` below: the `Backend` type, the native
 * addon's name table and its load-time check (native/index.ts) all derive from it.
 *
 * Contract (every backend, every kernel):
 * - Inputs are dense, row-major (C-contiguous) arrays; shapes and sizes are passed alongside.
 * - Every kernel returns freshly allocated outputs, except `stridedCopy` (writes into `dst`) and the in-place
 *   fused kernels (`adamW`, `lerpInPlace`).
 * - Shapes are validated by the Tensor layer before a kernel is called; kernels trust their arguments.
 *   (The native addon re-checks buffer lengths so that a bug above it cannot corrupt memory.)
 * - Strided kernels (`binary`, `where`, `stridedCopy`) receive shapes already simplified by the engine
 *   (src/tensor/shape.ts `mergeDims`: size-1 dimensions dropped, contiguous runs merged); they merge nothing.
 * - float32 everywhere, int32 only for indices (`gatherRows`, `scatterAddRows`).
 * - The `js` backend is the reference: other backends must match it within float32 rounding, and every fused
 *   kernel must match its composite (test/fused.test.ts).
 * - Storage is generic: CPU backends take and return Float32Array (`Backend` = `Backend<F32>`); the WebGPU
 *   backend takes and returns `DeviceArray`s (`Backend<FStore>`, also accepting host arrays, which it uploads).
 */

export type F32 = Float32Array;
export type I32 = Int32Array;

export type BackendName = 'js' | 'native' | 'wasm' | 'webgpu';

/**
 * Storage owned by a device backend (a pooled GPU buffer), opaque above the kernels. Float32 only: int32
 * tensors (labels, indices) stay on the host, where the engine validates them.
 *
 * Lifetime: each Tensor holding it counts one reference (`retain`); the buffer returns to the backend's pool
 * when the count drops to zero through `release` (Tensor.dispose, the end of a scope), or when this object is
 * garbage-collected.
 */
export interface DeviceArray {
  readonly device: BackendName;
  readonly length: number;
  /** The values on the host while they are known to match (set by uploads, dropped by in-place kernels). */
  host: Float32Array | null;
  readonly refs: number;
  readonly released: boolean;
  retain(): void;
  release(): void;
  read(): Promise<Float32Array>;
  /** The values now, where the device can give them without waiting (wasm's linear memory). */
  readSync?(): Float32Array;
}

/** What the engine hands float kernels: a host array (CPU backends) or a device array. */
export type FStore = Float32Array | DeviceArray;

export function isDeviceArray(x: unknown): x is DeviceArray {
  return typeof x === 'object' && x !== null && !ArrayBuffer.isView(x) && 'device' in x;
}

/** y = f(x), elementwise: the primitive unary ops (their gradients: src/tensor/gradients.ts). */
export const UNARY_OPS = [
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'relu', 'abs', 'square', 'reciprocal', 'erf',
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

/** Activations written as composites (src/tensor/composites.ts); a backend may fuse them (`activation`). */
export const ACTIVATIONS = ['sigmoid', 'silu', 'gelu'] as const;
export type ActivationOp = (typeof ACTIVATIONS)[number];

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

export interface NormResult<F = F32> { y: F; mean: F; rstd: F }
export interface NormGrads<F = F32> { dx: F; dgamma: F | null; dbeta: F | null }

/** Every kernel's signature; which are required and which optional is `KERNELS`' business. */
export interface KernelSignatures<F = F32> {
  // ---------------------------------------------------------------- primitives

  /** y[i] = op(x[i]) */
  unary(op: UnaryOp, x: F): F;
  /**
   * out[idx] = a[Σ idx_k·aStrides_k] op b[Σ idx_k·bStrides_k] for idx over outShape.
   * Strides are element strides into a and b, 0 on broadcast dimensions; all arrays have outShape.length entries.
   */
  binary(op: BinaryOp, a: F, aStrides: number[], b: F, bStrides: number[], outShape: number[]): F;
  /** out = cond != 0 ? a : b, broadcast like `binary`. */
  where(cond: F, cStrides: number[], a: F, aStrides: number[], b: F, bStrides: number[], outShape: number[]): F;
  /** y = x * scale + shift (one rounding: plain-number arithmetic on tensors). */
  affine(x: F, scale: number, shift: number): F;
  /** y = x ** p */
  powScalar(x: F, p: number): F;
  /** y = min(max(x, lo), hi); lo/hi may be ±Infinity. */
  clamp(x: F, lo: number, hi: number): F;
  /** x viewed as [outer, size, inner] → out [outer, inner] reduced over the middle axis. */
  reduce(op: ReduceOp, x: F, outer: number, size: number, inner: number): F;
  /**
   * General strided copy over `shape`:
   *   dst[dstOffset + Σ idx_k·dstStrides_k] (= or +=) src[srcOffset + Σ idx_k·srcStrides_k]
   * Writes into dst in place; with accumulate, destination positions may repeat (summing broadcasts).
   * Covers permute, slice, concat, pad, expand, upsampling and their gradients.
   */
  stridedCopy(
    src: F, srcOffset: number, srcStrides: number[], shape: number[],
    dst: F, dstOffset: number, dstStrides: number[], accumulate: boolean,
  ): void;
  /**
   * Batched GEMM: out[bi] = op(A[bi]) · op(B[bi]), out is [batch, m, n].
   * A[bi] starts at bi·aBatchStride (0 broadcasts one matrix); stored [m,k] or, with transA, [k,m].
   * B[bi] starts at bi·bBatchStride; stored [k,n] or, with transB, [n,k].
   */
  matmul(
    a: F, b: F, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number,
  ): F;
  /** Cross-correlation as torch.nn.functional.conv2d: x NCHW, w OIHW, bias O or null → y [n, o, oh, ow]. */
  conv2d(x: F, w: F, bias: F | null, g: Conv2dGeometry): F;
  /** dx [n, c, h, w] from dy [n, o, oh, ow] (the transposed convolution). */
  conv2dBackwardInput(dy: F, w: F, g: Conv2dGeometry): F;
  /** dw [o, c, kh, kw] from x and dy (bias gradient is a `reduce`). */
  conv2dBackwardWeight(x: F, dy: F, g: Conv2dGeometry): F;
  /** out[i, :] = table[idx[i], :]; table [rows, d]. Indices are validated by the caller. */
  gatherRows(table: F, idx: I32, d: number): F;
  /** dtable [rows, d] with dtable[idx[i], :] += dy[i, :]. */
  scatterAddRows(dy: F, idx: I32, rows: number, d: number): F;

  // ---------------------------------------------------------------- storage

  /** n values, contents unspecified (the caller overwrites them all). */
  empty(n: number): F;
  full(n: number, value: number): F;
  /** Storage holding a copy of (or, on the host, the very) `data`. */
  fromHost(data: Float32Array): F;

  // ---------------------------------------------------------------- fused fast paths (optional)

  /** y = act(x) for sigmoid, SiLU, GELU (exact erf form). */
  activation(op: ActivationOp, x: F): F;
  /** dx = dy · act'(x). */
  activationBackward(op: ActivationOp, x: F, dy: F): F;
  /**
   * Group norm over x [n, c, hw] with `groups` groups, per-channel affine (gamma, beta may be null),
   * then optionally SiLU. mean/rstd are [n, groups] (statistics of x, before the affine).
   */
  groupNorm(x: F, gamma: F | null, beta: F | null, n: number, c: number, hw: number,
    groups: number, eps: number, silu: boolean): NormResult<F>;
  /** groupNorm's statistics alone: mean/rstd [n, groups]. */
  groupNormStats(x: F, n: number, c: number, hw: number, groups: number, eps: number): { mean: F; rstd: F };
  /**
   * conv2d of the group norm of x (statistics mean/rstd from groupNormStats, then SiLU if set), applied as
   * the convolution reads its input: the normalized tensor is not stored. Then + imageBias [n, o] (per image
   * and channel: a time embedding) and + residual [n, o, oh, ow], each optional. The same values as conv2d of
   * groupNorm's output followed by those additions, in that order.
   */
  conv2dNormed(x: F, gamma: F | null, beta: F | null, mean: F, rstd: F, groups: number, silu: boolean,
    w: F, bias: F | null, imageBias: F | null, residual: F | null, g: Conv2dGeometry): F;
  /** conv2dBackwardWeight of the group norm of x, as conv2dNormed reads it. */
  conv2dBackwardWeightNormed(x: F, gamma: F | null, beta: F | null, mean: F, rstd: F, groups: number, silu: boolean,
    dy: F, g: Conv2dGeometry): F;
  /** Gradients of groupNorm (with the same silu flag) given dy. */
  groupNormBackward(dy: F, x: F, gamma: F | null, beta: F | null, mean: F, rstd: F,
    n: number, c: number, hw: number, groups: number, silu: boolean): NormGrads<F>;
  /** Layer norm over the last dim: x [rows, d], gamma/beta [d] or null. mean/rstd are [rows]. */
  layerNorm(x: F, gamma: F | null, beta: F | null, rows: number, d: number, eps: number): NormResult<F>;
  layerNormBackward(dy: F, x: F, gamma: F | null, mean: F, rstd: F, rows: number, d: number,
    hasBeta: boolean): NormGrads<F>;
  /** Softmax over the last dim of x [rows, d]. */
  softmax(x: F, rows: number, d: number): F;
  /** dx from y = softmax(x) and dy. */
  softmaxBackward(y: F, dy: F, rows: number, d: number): F;
  logSoftmax(x: F, rows: number, d: number): F;
  /** dx from y = logSoftmax(x) and dy. */
  logSoftmaxBackward(y: F, dy: F, rows: number, d: number): F;
  /** Nearest-neighbour ×2: x [planes, h, w] → [planes, 2h, 2w]. */
  upsampleNearest2x(x: F, planes: number, h: number, w: number): F;
  /** 2×2 average pooling, stride 2: x [planes, h, w] (h, w even) → [planes, h/2, w/2]. */
  avgPool2x2(x: F, planes: number, h: number, w: number): F;
  /**
   * AdamW, in place on p, m, v (PyTorch's torch.optim.AdamW): p -= lr·wd·p; m, v moments;
   * p -= lr · (m / bc1) / (sqrt(v / bc2) + eps) with bc1 = 1 − β1^t, bc2 = 1 − β2^t.
   */
  adamW(p: F, g: F, m: F, v: F, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, step: number): void;
  /** s ← s + a·(v − s), in place (EMA). */
  lerpInPlace(s: F, v: F, a: number): void;
  /**
   * Gives x's storage back now, if this backend made it (an output of its kernels) and can: afterwards x is
   * empty. Returns whether it did. Without it, memory goes back when the collector finds x unreachable.
   */
  free(x: F): boolean;
}

export type KernelKind = 'primitive' | 'storage' | 'fused';

/**
 * The one declaration of the kernel set: each kernel and whether a backend must provide it ('primitive',
 * 'storage') or may ('fused': the engine has a composite for it). `satisfies` keeps it in step with the
 * signatures above: a kernel missing here, or listed here without a signature, fails to compile.
 */
export const KERNELS = {
  unary: 'primitive',
  binary: 'primitive',
  where: 'primitive',
  affine: 'primitive',
  powScalar: 'primitive',
  clamp: 'primitive',
  reduce: 'primitive',
  stridedCopy: 'primitive',
  matmul: 'primitive',
  conv2d: 'primitive',
  conv2dBackwardInput: 'primitive',
  conv2dBackwardWeight: 'primitive',
  gatherRows: 'primitive',
  scatterAddRows: 'primitive',

  empty: 'storage',
  full: 'storage',
  fromHost: 'storage',

  activation: 'fused',
  activationBackward: 'fused',
  groupNorm: 'fused',
  groupNormBackward: 'fused',
  groupNormStats: 'fused',
  conv2dNormed: 'fused',
  conv2dBackwardWeightNormed: 'fused',
  layerNorm: 'fused',
  layerNormBackward: 'fused',
  softmax: 'fused',
  softmaxBackward: 'fused',
  logSoftmax: 'fused',
  logSoftmaxBackward: 'fused',
  upsampleNearest2x: 'fused',
  avgPool2x2: 'fused',
  adamW: 'fused',
  lerpInPlace: 'fused',
  free: 'fused',
} as const satisfies { [K in keyof KernelSignatures]: KernelKind };

type KernelName = keyof typeof KERNELS;
type NamesOf<Kind extends KernelKind> = { [N in KernelName]: (typeof KERNELS)[N] extends Kind ? N : never }[KernelName];
export type PrimitiveName = NamesOf<'primitive'>;
export type StorageName = NamesOf<'storage'>;
export type FusedName = NamesOf<'fused'>;

export function kernelNames<Kind extends KernelKind>(kind: Kind): NamesOf<Kind>[] {
  return (Object.keys(KERNELS) as KernelName[]).filter((k) => KERNELS[k] === kind) as NamesOf<Kind>[];
}
export const PRIMITIVE_NAMES: readonly PrimitiveName[] = kernelNames('primitive');
export const STORAGE_NAMES: readonly StorageName[] = kernelNames('storage');
export const FUSED_NAMES: readonly FusedName[] = kernelNames('fused');

/**
 * A backend: every primitive and storage operation, any subset of the fused kernels. CPU backends work on
 * Float32Array (`Backend`), the WebGPU backend on device arrays (`Backend<FStore>`).
 */
export type Backend<F = F32> = {
  readonly name: BackendName;
  /** Set on backends whose storage is not host memory. */
  readonly device: boolean;
} & Pick<KernelSignatures<F>, PrimitiveName | StorageName> & Partial<Pick<KernelSignatures<F>, FusedName>>;

/** A backend as the engine drives it, over host or device storage. */
export type Engine = Backend<FStore>;

/** The same backend with its fused kernels switched off: the engine then runs every composite. */
export function withoutFused<B extends Backend<any>>(b: B): B {
  const out: Record<string, unknown> = { ...b };
  for (const k of FUSED_NAMES) delete out[k];
  return out as B;
}

/** Names of the primitives or storage operations `b` lacks (what a backend must add before it can load). */
export function missingKernels(b: Record<string, unknown>): string[] {
  return [...PRIMITIVE_NAMES, ...STORAGE_NAMES].filter((k) => typeof b[k] !== 'function');
}
