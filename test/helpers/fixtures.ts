/**
 * Loading the PyTorch reference fixtures (tools/gen_fixtures.py) and rebuilding each op with the
 * engine's public API.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseSafetensors, type SafetensorsTensor } from '../../src/io/safetensors.js';
import * as D from '../../src/index.js';
import type { Tensor } from '../../src/index.js';

export const OPS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'ops');

export interface Fixture {
  name: string;
  op: string;
  args: Record<string, unknown>;
  /** in.<name> and param.<name>, by name (without the prefix), in file order. */
  inputs: Map<string, SafetensorsTensor>;
  /** `out` or out.0, out.1, … in order. */
  outs: SafetensorsTensor[];
  gouts: SafetensorsTensor[];
  /** grad.<name> by name. */
  grads: Map<string, SafetensorsTensor>;
}

export function fixtureNames(): string[] {
  return readdirSync(OPS_DIR).filter((f) => f.endsWith('.safetensors')).map((f) => f.slice(0, -'.safetensors'.length)).sort();
}

export function loadFixture(name: string): Fixture {
  const path = join(OPS_DIR, `${name}.safetensors`);
  const { tensors, metadata } = parseSafetensors(readFileSync(path), { name: path });
  if (typeof metadata.op !== 'string' || typeof metadata.args !== 'string') {
    throw new Error(`${path}: metadata lacks "op" / "args"`);
  }
  const inputs = new Map<string, SafetensorsTensor>();
  const grads = new Map<string, SafetensorsTensor>();
  const outs: [number, SafetensorsTensor][] = [];
  const gouts: [number, SafetensorsTensor][] = [];
  for (const [key, t] of tensors) {
    if (key.startsWith('in.')) inputs.set(key.slice(3), t);
    else if (key.startsWith('param.')) inputs.set(key.slice(6), t);
    else if (key.startsWith('grad.')) grads.set(key.slice(5), t);
    else if (key === 'out') outs.push([0, t]);
    else if (key === 'gout') gouts.push([0, t]);
    else if (key.startsWith('out.')) outs.push([Number(key.slice(4)), t]);
    else if (key.startsWith('gout.')) gouts.push([Number(key.slice(5)), t]);
    else throw new Error(`${path}: unexpected tensor ${JSON.stringify(key)}`);
  }
  const byIndex = (a: [number, SafetensorsTensor], b: [number, SafetensorsTensor]) => a[0] - b[0];
  return {
    name, op: metadata.op, args: JSON.parse(metadata.args) as Record<string, unknown>, inputs,
    outs: outs.sort(byIndex).map((e) => e[1]), gouts: gouts.sort(byIndex).map((e) => e[1]), grads,
  };
}

/** Engine tensors for a fixture's inputs: float inputs with a reference gradient require grad. */
export function makeInputs(fx: Fixture): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of fx.inputs) {
    if (t.dtype === 'I64' || t.dtype === 'I32') {
      out[name] = D.tensor(Int32Array.from(t.data), t.shape, { dtype: 'int32' });
    } else {
      // U8 (boolean masks) become float32 0/1, the engine's condition convention.
      out[name] = D.tensor(Float32Array.from(t.data), t.shape, { requiresGrad: fx.grads.has(name) });
    }
  }
  return out;
}

type Builder = (x: Record<string, Tensor>, args: Record<string, any>) => Tensor | Tensor[];

const unary = (f: (t: Tensor) => Tensor): Builder => (x) => f(x.x);
const binary = (f: (a: Tensor, b: Tensor) => Tensor): Builder => (x) => f(x.a, x.b);
const axesArg = (a: unknown): number[] | undefined => (a === null || a === undefined ? undefined : (a as number[]));

/**
 * The composite block of gen_fixtures.py. `fused` uses the engine's fused groupNorm+SiLU and its
 * scaledDotProductAttention instead of the written-out forms.
 */
export function block(x: Record<string, Tensor>, args: Record<string, any>, fused: boolean): Tensor {
  const p = x;
  let y = D.conv2d(p.x, p.conv_w, p.conv_b, { padding: args.padding });
  y = fused
    ? D.groupNorm(y, args.groups, p.gn_gamma, p.gn_beta, { eps: args.eps, silu: true })
    : D.silu(D.groupNorm(y, args.groups, p.gn_gamma, p.gn_beta, { eps: args.eps }));
  const [n, c, h, w] = y.shape;
  let t = D.transpose(D.reshape(y, [n, c, h * w]), 1, 2);
  const q = D.linear(t, p.q_w, p.q_b), k = D.linear(t, p.k_w), v = D.linear(t, p.v_w, p.v_b);
  const a = fused
    ? D.scaledDotProductAttention(q, k, v)
    : D.matmul(D.softmax(D.div(D.matmul(q, D.transpose(k, -1, -2)), Math.sqrt(c)), -1), v);
  t = D.add(t, D.linear(a, p.o_w, p.o_b));
  return D.linear(t, p.out_w, p.out_b);
}

export const BUILDERS: Record<string, Builder> = {
  add: binary(D.add), sub: binary(D.sub), mul: binary(D.mul), div: binary(D.div), pow: binary(D.pow),
  pow_scalar: (x, a) => D.pow(x.x, a.p),
  pow_base_scalar: (x, a) => D.pow(a.base, x.x),
  neg: unary(D.neg), exp: unary(D.exp), log: unary(D.log), sqrt: unary(D.sqrt), rsqrt: unary(D.rsqrt),
  sin: unary(D.sin), cos: unary(D.cos), tanh: unary(D.tanh), sigmoid: unary(D.sigmoid), silu: unary(D.silu),
  gelu: unary(D.gelu), relu: unary(D.relu), abs: unary(D.abs), square: unary(D.square),
  reciprocal: unary(D.reciprocal),
  clamp: (x, a) => D.clamp(x.x, a.lo ?? -Infinity, a.hi ?? Infinity),
  where: (x) => D.where(x.cond, x.a, x.b),
  sum: (x, a) => D.sum(x.x, axesArg(a.axes), a.keepDim),
  mean: (x, a) => D.mean(x.x, axesArg(a.axes), a.keepDim),
  max: (x, a) => D.max(x.x, axesArg(a.axes), a.keepDim),
  reshape: (x, a) => D.reshape(x.x, a.shape),
  permute: (x, a) => D.permute(x.x, a.perm),
  transpose: (x, a) => D.transpose(x.x, a.dim0, a.dim1),
  slice: (x, a) => {
    const ranges = a.ranges as ([number, number] | null)[];
    return D.slice(x.x, ranges.map((r) => (r ? r[0] : 0)), ranges.map((r, i) => (r ? r[1] : x.x.shape[i])));
  },
  concat: (x, a) => D.concat((a.names as string[]).map((n) => x[n]), a.axis),
  split: (x, a) => D.split(x.x, a.sizes, a.axis),
  pad: (x, a) => {
    // per-axis [before, after] pairs → F.pad order (last axis first)
    const flat: number[] = [];
    for (const [b, e] of [...(a.pads as [number, number][])].reverse()) flat.push(b, e);
    return D.pad(x.x, flat);
  },
  matmul: binary((p, q) => D.matmul(p, q)),
  linear: (x) => D.linear(x.x, x.w, x.b ?? null),
  conv2d: (x, a) => D.conv2d(x.x, x.w, x.b ?? null, { stride: a.stride, padding: a.padding }),
  upsample_nearest2x: unary(D.upsampleNearest2x),
  avgpool2x2: unary(D.avgPool2x2),
  group_norm: (x, a) => D.groupNorm(x.x, a.groups, x.gamma ?? null, x.beta ?? null, { eps: a.eps }),
  layer_norm: (x, a) => D.layerNorm(x.x, x.gamma ?? null, x.beta ?? null, a.eps),
  softmax: (x, a) => D.softmax(x.x, a.dim),
  log_softmax: (x, a) => D.logSoftmax(x.x, a.dim),
  sdpa: (x) => D.scaledDotProductAttention(x.q, x.k, x.v),
  embedding: (x) => D.embedding(x.idx, x.table),
  mse_loss: (x) => D.mseLoss(x.pred, x.target),
  block: (x, a) => block(x, a, false),
};
