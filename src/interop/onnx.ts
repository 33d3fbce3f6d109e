/**
 * ONNX export of the UNet forward graph: diffuse's UNet and diffusers' UNet2DModel, opset 17, dynamic batch (and
 * height and width), written with the `onnx-proto` package (protobufjs code generated from onnx.proto).
 *
 * Inputs: `sample` float32 [batch, C, height, width], `timestep` float32 [batch], and for class-conditional models
 * `class_labels` int64 [batch] (diffuse's UNet: numClasses is the null class). Output: `out`.
 *
 * Each module becomes the standard ONNX ops: Conv, Gemm/MatMul, GroupNorm as Reshape → InstanceNormalization →
 * Reshape → affine (GroupNormalization's scale/bias are per group before opset 21), SiLU as x·Sigmoid(x), nearest
 * ×2 upsampling as Resize (asymmetric, floor), attention as MatMul/Softmax. The timestep embedding is in the graph
 * (Sin/Cos of t times constant frequencies); diffuse's UNet computes its own in float64 on the host, so the two
 * agree to float32 rounding of the arguments.
 */
import { createRequire } from 'node:module';
import type { onnx as P } from 'onnx-proto';
import type { Parameter } from '../nn/module.js';
import type { Conv2d, GroupNorm, Linear } from '../nn/layers.js';
import { type UNet, AttnBlock, ResBlock } from '../nn/unet.js';
import { type Attention, type ResnetBlock2D, UNet2DModel } from '../nn/diffusersUNet.js';

// onnx-proto (CommonJS, ~12 MB resident) is loaded on the first export, not with every `diffuse` command.
let onnxNs: typeof P | undefined;
const onnxProto = (): typeof P => (onnxNs ??= (createRequire(import.meta.url)('onnx-proto') as { onnx: typeof P }).onnx);

export const ONNX_OPSET = 17;

type Attr = number | number[] | string | { floats: number[] };

/** Builds one ONNX graph: named values, initializers, nodes. */
class Graph {
  readonly nodes: P.INodeProto[] = [];
  readonly inits: P.ITensorProto[] = [];
  private n = 0;

  name(prefix: string): string {
    return `${prefix}_${this.n++}`;
  }

  /** A float32 initializer. */
  f32(data: ArrayLike<number>, dims: number[], prefix = 'c'): string {
    const name = this.name(prefix);
    const arr = Float32Array.from(data);
    this.inits.push({ name, dataType: onnxProto().TensorProto.DataType.FLOAT, dims, rawData: new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength) });
    return name;
  }

  i64(data: number[], prefix = 'i'): string {
    const name = this.name(prefix);
    const arr = BigInt64Array.from(data.map((v) => BigInt(v)));
    this.inits.push({ name, dataType: onnxProto().TensorProto.DataType.INT64, dims: [data.length], rawData: new Uint8Array(arr.buffer) });
    return name;
  }

  param(p: Parameter, dims: number[] = [...p.shape]): string {
    return this.f32(p.values, dims, 'w');
  }

  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs = 1): string[] {
    const out = Array.from({ length: outputs }, () => this.name(type.toLowerCase()));
    const attribute: P.IAttributeProto[] = Object.entries(attrs).map(([name, v]) => {
      const A = onnxProto().AttributeProto.AttributeType;
      if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
      if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
      if (typeof v === 'object') return { name, type: A.FLOATS, floats: v.floats };
      return Number.isInteger(v) && !['epsilon', 'alpha', 'beta'].includes(name) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
    });
    this.nodes.push({ opType: type, input: inputs, output: out, name: out[0], attribute });
    return out;
  }

  one(type: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.op(type, inputs, attrs)[0];
  }

  // ---- layers

  conv(x: string, c: Conv2d, padding = c.padding): string {
    const k = c.kernelSize;
    const ins = [x, this.param(c.weight)];
    if (c.bias) ins.push(this.param(c.bias));
    return this.one('Conv', ins, { kernel_shape: [k, k], strides: [c.stride, c.stride], pads: [padding, padding, padding, padding] });
  }

  /** x [B, in] (Gemm) or [B, N, in] (MatMul + Add). */
  linear(x: string, l: Linear, rank2 = true): string {
    if (rank2) {
      const ins = [x, this.param(l.weight)];
      if (l.bias) ins.push(this.param(l.bias));
      return this.one('Gemm', ins, { transB: 1 });
    }
    const [o, i] = l.weight.shape, w = l.weight.values, wt = new Float32Array(o * i);
    for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) wt[c * o + r] = w[r * i + c];
    const y = this.one('MatMul', [x, this.f32(wt, [i, o], 'w')]);
    return l.bias ? this.one('Add', [y, this.param(l.bias)]) : y;
  }

  silu(x: string): string {
    return this.one('Mul', [x, this.one('Sigmoid', [x])]);
  }

  groupNorm(x: string, g: GroupNorm, silu = g.silu): string {
    const G = g.numGroups, C = g.numChannels;
    const shape = this.one('Shape', [x]);
    let y = this.one('Reshape', [x, this.i64([0, G, -1])]);
    y = this.one('InstanceNormalization', [y, this.f32(new Float32Array(G).fill(1), [G]), this.f32(new Float32Array(G), [G])], { epsilon: g.eps });
    y = this.one('Reshape', [y, shape]);
    if (g.weight) y = this.one('Mul', [y, this.param(g.weight, [C, 1, 1])]);
    if (g.bias) y = this.one('Add', [y, this.param(g.bias, [C, 1, 1])]);
    return silu ? this.silu(y) : y;
  }

  upsample(x: string): string {
    return this.one('Resize', [x, '', this.f32([1, 1, 2, 2], [4])], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  }

  avgPool(x: string): string {
    return this.one('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
  }

  scale(x: string, s: number): string {
    return s === 1 ? x : this.one('Mul', [x, this.f32([s], [])]);
  }

  /** [B, n] → [B, n, 1, 1]. */
  toChannels(x: string): string {
    return this.one('Unsqueeze', [x, this.i64([2, 3])]);
  }
}

// ---- diffuse's UNet

function resBlock(g: Graph, b: ResBlock, x: string, embAct: string): string {
  let h = g.conv(g.groupNorm(x, b.norm1), b.conv1);
  h = g.one('Add', [h, g.toChannels(g.linear(embAct, b.tembProj))]);
  h = g.conv(g.groupNorm(h, b.norm2), b.conv2);
  return g.one('Add', [b.skip ? g.conv(x, b.skip) : x, h]);
}

function attnBlock(g: Graph, a: AttnBlock, x: string): string {
  const c = a.channels, heads = a.numHeads, d = c / heads;
  const shape = g.one('Shape', [x]);
  let qkv = g.conv(g.groupNorm(x, a.norm), a.qkv);
  qkv = g.one('Reshape', [qkv, g.i64([0, 3 * c, -1])]);
  const [q, k, v] = g.op('Split', [qkv, g.i64([c, c, c])], { axis: 1 }, 3).map((t) => g.one('Reshape', [t, g.i64([-1, d, 0])]));
  const scores = g.scale(g.one('MatMul', [g.one('Transpose', [q], { perm: [0, 2, 1] }), k]), 1 / Math.sqrt(d));
  const attn = g.one('Softmax', [scores], { axis: -1 });
  const out = g.one('MatMul', [v, g.one('Transpose', [attn], { perm: [0, 2, 1] })]);
  return g.one('Add', [x, g.conv(g.one('Reshape', [out, shape]), a.projOut)]);
}

function unetGraph(g: Graph, m: UNet, x: string, t: string, classes: string | null): string {
  const c = m.config, dim = c.modelChannels, half = Math.floor(dim / 2);
  const freqs = Array.from({ length: half }, (_, i) => Math.exp(-Math.log(10000) * i / half));
  const arg = g.one('Mul', [g.one('Unsqueeze', [t, g.i64([1])]), g.f32(freqs, [half])]);
  const parts = [g.one('Cos', [arg]), g.one('Sin', [arg])];
  if (dim % 2) parts.push(g.one('Mul', [g.one('Unsqueeze', [t, g.i64([1])]), g.f32([0], [])]));
  let emb = g.one('Concat', parts, { axis: 1 });
  const te = m.timeEmbed;
  emb = g.linear(g.silu(g.linear(emb, te.at(0) as Linear)), te.at(2) as Linear);
  if (m.labelEmb && classes) emb = g.one('Add', [emb, g.one('Gather', [g.param(m.labelEmb.weight), classes], { axis: 0 })]);
  const embAct = g.silu(emb);
  let h = g.conv(x, m.convIn);
  const hs = [h];
  for (const level of m.down) {
    for (let j = 0; j < level.block.length; j++) {
      h = resBlock(g, level.block.at(j), h, embAct);
      if (level.attn.length) h = attnBlock(g, level.attn.at(j), h);
      hs.push(h);
    }
    if (level.downsample) {
      h = level.downsample.conv ? g.conv(h, level.downsample.conv) : g.avgPool(h);
      hs.push(h);
    }
  }
  h = resBlock(g, m.mid.block1, h, embAct);
  if (m.mid.attn1) h = attnBlock(g, m.mid.attn1, h);
  h = resBlock(g, m.mid.block2, h, embAct);
  for (let i = m.up.length - 1; i >= 0; i--) {
    const level = m.up.at(i);
    for (let j = 0; j < level.block.length; j++) {
      h = resBlock(g, level.block.at(j), g.one('Concat', [h, hs.pop()!], { axis: 1 }), embAct);
      if (level.attn.length) h = attnBlock(g, level.attn.at(j), h);
    }
    if (level.upsample) h = g.conv(g.upsample(h), level.upsample.conv);
  }
  return g.conv(g.groupNorm(h, m.normOut), m.convOut);
}

// ---- diffusers' UNet2DModel

function resnet2D(g: Graph, r: ResnetBlock2D, x: string, embAct: string): string {
  let h = g.groupNorm(x, r.norm1);
  if (r.resample === 'up') { x = g.upsample(x); h = g.upsample(h); }
  if (r.resample === 'down') { x = g.avgPool(x); h = g.avgPool(h); }
  h = g.conv(h, r.conv1);
  const temb = g.toChannels(g.linear(embAct, r.timeEmbProj));
  if (r.scaleShift) {
    const [scale, shift] = g.op('Split', [temb, g.i64([r.outChannels, r.outChannels])], { axis: 1 }, 2);
    h = g.groupNorm(h, r.norm2);
    h = g.silu(g.one('Add', [g.one('Mul', [h, g.one('Add', [scale, g.f32([1], [])])]), shift]));
  } else {
    h = g.groupNorm(g.one('Add', [h, temb]), r.norm2);
  }
  h = g.conv(h, r.conv2);
  return g.scale(g.one('Add', [r.convShortcut ? g.conv(x, r.convShortcut) : x, h]), 1 / r.outputScale);
}

function attention2D(g: Graph, a: Attention, x: string): string {
  const heads = a.heads, d = a.dimHead;
  const shape = g.one('Shape', [x]);
  let h = a.groupNorm ? g.groupNorm(x, a.groupNorm) : x;
  h = g.one('Transpose', [g.one('Reshape', [h, g.i64([0, a.channels, -1])])], { perm: [0, 2, 1] }); // [B, HW, C]
  const toHeads = (y: string) => g.one('Transpose', [g.one('Reshape', [y, g.i64([0, 0, heads, d])])], { perm: [0, 2, 1, 3] });
  const q = toHeads(g.linear(h, a.toQ, false)), k = toHeads(g.linear(h, a.toK, false)), v = toHeads(g.linear(h, a.toV, false));
  const scores = g.scale(g.one('MatMul', [q, g.one('Transpose', [k], { perm: [0, 1, 3, 2] })]), 1 / Math.sqrt(d));
  let o = g.one('MatMul', [g.one('Softmax', [scores], { axis: -1 }), v]); // [B, heads, HW, d]
  o = g.one('Reshape', [g.one('Transpose', [o], { perm: [0, 2, 1, 3] }), g.i64([0, 0, heads * d])]);
  o = g.linear(o, a.toOut.at(0), false); // [B, HW, C]
  o = g.one('Reshape', [g.one('Transpose', [o], { perm: [0, 2, 1] }), shape]);
  return g.scale(g.one('Add', [o, x]), 1 / a.rescale);
}

function unet2DGraph(g: Graph, m: UNet2DModel, x: string, t: string, classes: string | null): string {
  const c = m.config, dim = c.block_out_channels[0];
  const f = Math.fround, tcol = g.one('Unsqueeze', [t, g.i64([1])]);
  let proj: string;
  if (m.timeProj) {
    const arg = g.scale(g.scale(g.one('Mul', [g.one('Log', [tcol]), g.param(m.timeProj.weight)]), 2), f(Math.PI));
    proj = g.one('Concat', [g.one('Sin', [arg]), g.one('Cos', [arg])], { axis: 1 });
  } else {
    const half = Math.floor(dim / 2), negLog = f(-Math.log(10000)), denom = f(half - c.freq_shift);
    const freqs = Array.from({ length: half }, (_, i) => f(Math.exp(f(f(negLog * i) / denom))));
    const arg = g.one('Mul', [tcol, g.f32(freqs, [half])]);
    const [s, co] = [g.one('Sin', [arg]), g.one('Cos', [arg])];
    const parts = c.flip_sin_to_cos ? [co, s] : [s, co];
    if (dim % 2) parts.push(g.one('Mul', [tcol, g.f32([0], [])]));
    proj = g.one('Concat', parts, { axis: 1 });
  }
  let emb = g.linear(g.silu(g.linear(proj, m.timeEmbedding.linear1)), m.timeEmbedding.linear2);
  if (m.classEmbedding && classes) emb = g.one('Add', [emb, g.one('Gather', [g.param(m.classEmbedding.weight), classes], { axis: 0 })]);
  const embAct = g.silu(emb);
  let h = c.center_input_sample ? g.one('Sub', [g.scale(x, 2), g.f32([1], [])]) : x;
  h = g.conv(h, m.convIn);
  const skips = [h];
  const resample = (s: unknown, y: string) => {
    if (!s) return y;
    const mod = s as { resample?: unknown; conv?: Conv2d; padding?: number };
    if ('resample' in mod && (mod as ResnetBlock2D).timeEmbProj) return resnet2D(g, s as ResnetBlock2D, y, embAct);
    if (typeof mod.padding === 'number') return g.conv(mod.padding === 0 ? g.one('Pad', [y, g.i64([0, 0, 0, 0, 0, 0, 1, 1])]) : y, mod.conv!, mod.padding);
    return g.conv(g.upsample(y), mod.conv!);
  };
  for (const block of m.downBlocks) {
    for (let j = 0; j < block.resnets.length; j++) {
      h = resnet2D(g, block.resnets.at(j), h, embAct);
      if (block.attentions) h = attention2D(g, block.attentions.at(j), h);
      skips.push(h);
    }
    if (block.samplers) { h = resample(block.samplers.at(0), h); skips.push(h); }
  }
  h = resnet2D(g, m.midBlock.resnets.at(0), h, embAct);
  if (m.midBlock.attentions.length) h = attention2D(g, m.midBlock.attentions.at(0), h);
  h = resnet2D(g, m.midBlock.resnets.at(1), h, embAct);
  for (const block of m.upBlocks) {
    for (let j = 0; j < block.resnets.length; j++) {
      h = resnet2D(g, block.resnets.at(j), g.one('Concat', [h, skips.pop()!], { axis: 1 }), embAct);
      if (block.attentions) h = attention2D(g, block.attentions.at(j), h);
    }
    if (block.samplers) h = resample(block.samplers.at(0), h);
  }
  h = g.conv(g.groupNorm(h, m.convNormOut), m.convOut);
  if (m.timeProj) h = g.one('Div', [h, g.one('Unsqueeze', [t, g.i64([1, 2, 3])])]);
  return h;
}

// ---- the model file

function valueInfo(name: string, elemType: number, dims: (number | string)[]): P.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

/** The ONNX model of a UNet's forward pass, as protobuf bytes. Parameters are read from host memory (CPU backends). */
export function exportOnnx(model: UNet | UNet2DModel): Uint8Array {
  const g = new Graph();
  const F = onnxProto().TensorProto.DataType.FLOAT, I64 = onnxProto().TensorProto.DataType.INT64;
  const is2D = model instanceof UNet2DModel;
  const inC = is2D ? model.config.in_channels : model.config.inChannels;
  const outC = is2D ? model.config.out_channels : model.outChannels;
  const conditional = is2D ? model.classEmbedding !== null : model.labelEmb !== null;
  const inputs = [valueInfo('sample', F, ['batch', inC, 'height', 'width']), valueInfo('timestep', F, ['batch'])];
  if (conditional) inputs.push(valueInfo('class_labels', I64, ['batch']));
  const cls = conditional ? 'class_labels' : null;
  const out = is2D ? unet2DGraph(g, model, 'sample', 'timestep', cls) : unetGraph(g, model as UNet, 'sample', 'timestep', cls);
  g.nodes.push({ opType: 'Identity', input: [out], output: ['out'], name: 'out' });
  const m = onnxProto().ModelProto.create({
    irVersion: 8, producerName: 'diffuse', producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: is2D ? 'UNet2DModel' : 'UNet', node: g.nodes, initializer: g.inits, input: inputs,
      output: [valueInfo('out', F, ['batch', outC, 'height', 'width'])],
    },
  });
  return onnxProto().ModelProto.encode(m).finish();
}
