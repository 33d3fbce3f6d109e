/**
 * The ops of ops.ts as the public API exposes them: each checks the JavaScript types of its arguments
 * first, so a wrong call (a string for a tensor, a tensor for an axis) fails with one line naming the op,
 * the argument and what it got, instead of a TypeError from deep inside. Values (shapes, ranges) are
 * checked by the ops themselves. SIGNATURES must list every function ops.ts exports (the type says so).
 */
import * as composites from './composites.js';
import * as ops from './ops.js';
import { Generator } from './random.js';
import { Tensor } from './tensor.js';

/**
 * T tensor · TL tensor or number · T? tensor, null or omitted · Ts array of tensors · n number · n? number
 * or omitted · ns? number, array of numbers, or omitted · shape array of numbers · b? boolean or omitted ·
 * o? options object or omitted · G? Generator or omitted.
 */
type Kind = 'T' | 'TL' | 'T?' | 'Ts' | 'n' | 'n?' | 'ns' | 'ns?' | 'shape' | 'b?' | 'o?' | 'G?';

const raw = { ...ops, ...composites };

type OpName = { [K in keyof typeof raw]: (typeof raw)[K] extends (...args: never[]) => unknown ? K : never }[keyof typeof raw];

const SIGNATURES: Record<OpName, readonly Kind[]> = {
  neg: ['T'], exp: ['T'], log: ['T'], sqrt: ['T'], rsqrt: ['T'], sin: ['T'], cos: ['T'], tanh: ['T'], sigmoid: ['T'],
  silu: ['T'], gelu: ['T'], relu: ['T'], abs: ['T'], square: ['T'], reciprocal: ['T'], erf: ['T'], assign: ['T', 'T'],
  adamWUpdate: ['T', 'T', 'T', 'T', 'o?'], lerpInPlace: ['T', 'T', 'n'],
  affine: ['T', 'n', 'n?'], clamp: ['T', 'n?', 'n?'], sumTo: ['T', 'shape'],
  add: ['TL', 'TL'], sub: ['TL', 'TL'], mul: ['TL', 'TL'], div: ['TL', 'TL'], pow: ['TL', 'TL'],
  maximum: ['T', 'T'], minimum: ['T', 'T'], eq: ['TL', 'TL'], gt: ['TL', 'TL'], lt: ['TL', 'TL'], where: ['T', 'TL', 'TL'],
  sum: ['T', 'ns?', 'b?'], mean: ['T', 'ns?', 'b?'], max: ['T', 'ns?', 'b?'],
  reshape: ['T', 'shape'], flatten: ['T', 'n?'], permute: ['T', 'shape'], transpose: ['T', 'n?', 'n?'], expand: ['T', 'shape'],
  slice: ['T', 'shape', 'shape'], narrow: ['T', 'n', 'n', 'n'], concat: ['Ts', 'n?'], split: ['T', 'ns', 'n?'], stack: ['Ts', 'n?'],
  pad: ['T', 'shape', 'n?'], matmul: ['T', 'T', 'o?'], linear: ['T', 'T', 'T?'], conv2d: ['T', 'T', 'T?', 'o?'],
  upsampleNearest2x: ['T'], avgPool2x2: ['T'], groupNorm: ['T', 'n', 'T?', 'T?', 'o?'], groupNormConv2d: ['T', 'n', 'T?', 'T?', 'o?', 'T', 'T?', 'o?'], layerNorm: ['T', 'T?', 'T?', 'n?'],
  softmax: ['T', 'n?'], logSoftmax: ['T', 'n?'], scaledDotProductAttention: ['T', 'T', 'T', 'n?'], embedding: ['T', 'T'],
  dropout: ['T', 'n', 'b?', 'G?'], mseLoss: ['T', 'T'],
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'no prototype'})`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const isNums = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number');

const ACCEPTS: Record<Kind, [(v: unknown) => boolean, string]> = {
  T: [(v) => v instanceof Tensor, 'a Tensor'],
  TL: [(v) => v instanceof Tensor || typeof v === 'number', 'a Tensor or a number'],
  'T?': [(v) => v === undefined || v === null || v instanceof Tensor, 'a Tensor, null or nothing'],
  Ts: [(v) => Array.isArray(v) && v.every((x) => x instanceof Tensor), 'an array of Tensors'],
  n: [(v) => typeof v === 'number', 'a number'],
  'n?': [(v) => v === undefined || typeof v === 'number', 'a number or nothing'],
  ns: [(v) => typeof v === 'number' || isNums(v), 'a number or an array of numbers'],
  'ns?': [(v) => v === undefined || typeof v === 'number' || isNums(v), 'a number, an array of numbers or nothing'],
  shape: [isNums, 'an array of numbers'],
  'b?': [(v) => v === undefined || typeof v === 'boolean', 'a boolean or nothing'],
  'o?': [(v) => v === undefined || (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Tensor)), 'an options object or nothing'],
  'G?': [(v) => v === undefined || v instanceof Generator, 'a Generator or nothing'],
};

function guard<F extends (...args: never[]) => unknown>(name: OpName, fn: F): F {
  const kinds = SIGNATURES[name];
  return ((...args: unknown[]) => {
    if (args.length > kinds.length) throw new TypeError(`${name}: takes at most ${kinds.length} arguments, got ${args.length}`);
    for (let i = 0; i < kinds.length; i++) {
      const [ok, what] = ACCEPTS[kinds[i]];
      if (!ok(args[i])) throw new TypeError(`${name}: argument ${i + 1} must be ${what}, got ${describe(args[i])}`);
    }
    return fn(...(args as Parameters<F>));
  }) as unknown as F;
}

export const neg = guard('neg', raw.neg);
export const exp = guard('exp', raw.exp);
export const log = guard('log', raw.log);
export const sqrt = guard('sqrt', raw.sqrt);
export const rsqrt = guard('rsqrt', raw.rsqrt);
export const sin = guard('sin', raw.sin);
export const cos = guard('cos', raw.cos);
export const tanh = guard('tanh', raw.tanh);
export const sigmoid = guard('sigmoid', raw.sigmoid);
export const silu = guard('silu', raw.silu);
export const gelu = guard('gelu', raw.gelu);
export const relu = guard('relu', raw.relu);
export const abs = guard('abs', raw.abs);
export const square = guard('square', raw.square);
export const reciprocal = guard('reciprocal', raw.reciprocal);
export const erf = guard('erf', raw.erf);
export const assign = guard('assign', raw.assign);
export const adamWUpdate = guard('adamWUpdate', raw.adamWUpdate);
export const lerpInPlace = guard('lerpInPlace', raw.lerpInPlace);
export const affine = guard('affine', raw.affine);
export const clamp = guard('clamp', raw.clamp);
export const sumTo = guard('sumTo', raw.sumTo);
export const add = guard('add', raw.add);
export const sub = guard('sub', raw.sub);
export const mul = guard('mul', raw.mul);
export const div = guard('div', raw.div);
export const pow = guard('pow', raw.pow);
export const maximum = guard('maximum', raw.maximum);
export const minimum = guard('minimum', raw.minimum);
export const eq = guard('eq', raw.eq);
export const gt = guard('gt', raw.gt);
export const lt = guard('lt', raw.lt);
export const where = guard('where', raw.where);
export const sum = guard('sum', raw.sum);
export const mean = guard('mean', raw.mean);
export const max = guard('max', raw.max);
export const reshape = guard('reshape', raw.reshape);
export const flatten = guard('flatten', raw.flatten);
export const permute = guard('permute', raw.permute);
export const transpose = guard('transpose', raw.transpose);
export const expand = guard('expand', raw.expand);
export const slice = guard('slice', raw.slice);
export const narrow = guard('narrow', raw.narrow);
export const concat = guard('concat', raw.concat);
export const split = guard('split', raw.split);
export const stack = guard('stack', raw.stack);
export const pad = guard('pad', raw.pad);
export const matmul = guard('matmul', raw.matmul);
export const linear = guard('linear', raw.linear);
export const conv2d = guard('conv2d', raw.conv2d);
export const upsampleNearest2x = guard('upsampleNearest2x', raw.upsampleNearest2x);
export const avgPool2x2 = guard('avgPool2x2', raw.avgPool2x2);
export const groupNorm = guard('groupNorm', raw.groupNorm);
export const groupNormConv2d = guard('groupNormConv2d', raw.groupNormConv2d);
export const layerNorm = guard('layerNorm', raw.layerNorm);
export const softmax = guard('softmax', raw.softmax);
export const logSoftmax = guard('logSoftmax', raw.logSoftmax);
export const scaledDotProductAttention = guard('scaledDotProductAttention', raw.scaledDotProductAttention);
export const embedding = guard('embedding', raw.embedding);
export const dropout = guard('dropout', raw.dropout);
export const mseLoss = guard('mseLoss', raw.mseLoss);

/** The op names the public API guards (for tests: every op is listed). */
export const GUARDED_OPS: readonly string[] = Object.keys(SIGNATURES);
