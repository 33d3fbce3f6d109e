/**
 * diffusers' UNet2DModel, with its module tree and parameter names (so a diffusers state dict loads with
 * loadStateDict as it is) and its config.json fields. Written from diffusers' UNet2DModel, unet_2d_blocks,
 * ResnetBlock2D, Attention (AttnProcessor), Timesteps and GaussianFourierProjection; checked against diffusers'
 * own modules on random weights (test/diffusers-unet.test.ts).
 *
 *   conv_in → time_proj (sinusoidal or Gaussian Fourier) → time_embedding (linear_1, SiLU, linear_2)
 *   (+ class_embedding) → down_blocks.{i} (resnets, attentions, downsamplers) → mid_block (resnets.0,
 *   attentions.0, resnets.1) → up_blocks.{i} (resnets over the concat of a skip, attentions, upsamplers)
 *   → conv_norm_out + SiLU → conv_out
 *
 * Blocks: DownBlock2D, AttnDownBlock2D, ResnetDownsampleBlock2D, UpBlock2D, AttnUpBlock2D, ResnetUpsampleBlock2D;
 * the mid block with or without attention. ResnetBlock2D: norm1+SiLU → (down/up-sample) → conv1 → + time_emb_proj
 * (default) → norm2 (× (1 + scale) + shift for scale_shift) + SiLU → conv2, (x + h)/output_scale_factor.
 * Attention: group_norm → to_q, to_k, to_v → softmax(q kᵀ/√d) per head → to_out.0, + x, / rescale_output_factor.
 *
 * The timestep embeddings are computed on the host as PyTorch computes them in float32 (each product and
 * transcendental rounded to float32): at t ≈ 1000 a float64 embedding would differ by ~1e-4.
 */
import {
  Tensor, add, affine, avgPool2x2, concat, div, mul, pad, permute, reshape, scaledDotProductAttention, silu, split,
  tensor, transpose, upsampleNearest2x,
} from '../tensor/index.js';
import { Conv2d, Embedding, GroupNorm, Linear, ModuleList, normThenConv } from './layers.js';
import { Module, Parameter } from './module.js';

export const DIFFUSERS_DOWN_BLOCKS = ['DownBlock2D', 'AttnDownBlock2D', 'ResnetDownsampleBlock2D'] as const;
export const DIFFUSERS_UP_BLOCKS = ['UpBlock2D', 'AttnUpBlock2D', 'ResnetUpsampleBlock2D'] as const;
type DownType = typeof DIFFUSERS_DOWN_BLOCKS[number];
type UpType = typeof DIFFUSERS_UP_BLOCKS[number];

/** UNet2DModel's config.json, with diffusers' names. */
export interface UNet2DConfig {
  sample_size: number | [number, number] | null;
  in_channels: number;
  out_channels: number;
  center_input_sample: boolean;
  time_embedding_type: 'positional' | 'fourier';
  freq_shift: number;
  flip_sin_to_cos: boolean;
  down_block_types: string[];
  up_block_types: string[];
  block_out_channels: number[];
  layers_per_block: number;
  mid_block_scale_factor: number;
  downsample_padding: number;
  downsample_type: 'conv' | 'resnet';
  upsample_type: 'conv' | 'resnet';
  dropout: number;
  act_fn: 'silu' | 'swish';
  attention_head_dim: number | null;
  norm_num_groups: number;
  attn_norm_num_groups: number | null;
  norm_eps: number;
  resnet_time_scale_shift: 'default' | 'scale_shift';
  add_attention: boolean;
  class_embed_type: null;
  num_class_embeds: number | null;
  num_train_timesteps: number | null;
}

/** diffusers' defaults (UNet2DModel.__init__). */
export const UNET2D_DEFAULTS: UNet2DConfig = {
  sample_size: null, in_channels: 3, out_channels: 3, center_input_sample: false, time_embedding_type: 'positional',
  freq_shift: 0, flip_sin_to_cos: true,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D'],
  up_block_types: ['AttnUpBlock2D', 'AttnUpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
  block_out_channels: [224, 448, 672, 896], layers_per_block: 2, mid_block_scale_factor: 1, downsample_padding: 1,
  downsample_type: 'conv', upsample_type: 'conv', dropout: 0, act_fn: 'silu', attention_head_dim: 8, norm_num_groups: 32,
  attn_norm_num_groups: null, norm_eps: 1e-5, resnet_time_scale_shift: 'default', add_attention: true, class_embed_type: null,
  num_class_embeds: null, num_train_timesteps: null,
};

/** Bounds on sizes read from a file (checked before anything is allocated). */
const MAX_CHANNELS = 8192, MAX_LEVELS = 8, MAX_LAYERS = 16, MAX_CLASSES = 1_000_000, MAX_PARAMS = 2e9;

/**
 * Parses and checks a UNet2DModel config.json (text or object); `file` names it in errors. Unknown fields, block
 * types and values are refused with one line naming the field.
 */
export function parseUNet2DConfig(json: unknown, file = 'config.json'): UNet2DConfig {
  let obj = json;
  if (typeof json === 'string') {
    try { obj = JSON.parse(json); } catch (e) { throw new Error(`${file}: not valid JSON (${(e as Error).message})`); }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${file}: expected a JSON object`);
  const raw = obj as Record<string, unknown>;
  const bad = (k: string, why: string): never => { throw new Error(`${file}: ${k} = ${JSON.stringify(raw[k] ?? null)?.slice(0, 80)} ${why}`); };
  if (raw._class_name !== undefined && raw._class_name !== 'UNet2DModel') bad('_class_name', 'is not supported (only UNet2DModel)');
  const c = { ...UNET2D_DEFAULTS } as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('_')) continue;
    if (!(k in UNET2D_DEFAULTS)) bad(k, 'is not a field of UNet2DModel');
    c[k] = v;
  }
  const int = (k: string, lo: number, hi: number) => { const v = c[k]; if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) bad(k, `must be an integer in [${lo}, ${hi}]`); };
  const num = (k: string, lo: number, hi: number) => { const v = c[k]; if (typeof v !== 'number' || !(v >= lo && v <= hi)) bad(k, `must be a number in [${lo}, ${hi}]`); };
  const bool = (k: string) => { if (typeof c[k] !== 'boolean') bad(k, 'must be true or false'); };
  const oneOf = (k: string, allowed: unknown[]) => { if (!allowed.includes(c[k])) bad(k, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`); };
  const intList = (k: string, lo: number, hi: number, maxLen: number) => {
    const v = c[k];
    if (!Array.isArray(v) || v.length < 1 || v.length > maxLen || !v.every((x) => Number.isInteger(x) && x >= lo && x <= hi)) bad(k, `must be 1–${maxLen} integers in [${lo}, ${hi}]`);
  };
  int('in_channels', 1, MAX_CHANNELS);
  int('out_channels', 1, MAX_CHANNELS);
  bool('center_input_sample');
  oneOf('time_embedding_type', ['positional', 'fourier']);
  num('freq_shift', -1e6, 1e6);
  bool('flip_sin_to_cos');
  intList('block_out_channels', 1, MAX_CHANNELS, MAX_LEVELS);
  const levels = (c.block_out_channels as number[]).length;
  for (const [k, allowed] of [['down_block_types', DIFFUSERS_DOWN_BLOCKS], ['up_block_types', DIFFUSERS_UP_BLOCKS]] as const) {
    const v = c[k];
    if (!Array.isArray(v) || v.length !== levels) bad(k, `must list ${levels} block types (one per block_out_channels entry)`);
    (v as unknown[]).forEach((t, i) => {
      if (!(allowed as readonly unknown[]).includes(t)) throw new Error(`${file}: ${k}[${i}] = ${JSON.stringify(t)} is not a supported block type (supported: ${allowed.join(', ')})`);
    });
  }
  int('layers_per_block', 1, MAX_LAYERS);
  num('mid_block_scale_factor', 1e-6, 1e6);
  int('downsample_padding', 0, 1);
  oneOf('downsample_type', ['conv', 'resnet']);
  oneOf('upsample_type', ['conv', 'resnet']);
  num('dropout', 0, 0.999999);
  oneOf('act_fn', ['silu', 'swish']);
  if (c.attention_head_dim !== null) int('attention_head_dim', 1, MAX_CHANNELS);
  int('norm_num_groups', 1, MAX_CHANNELS);
  if (c.attn_norm_num_groups !== null) int('attn_norm_num_groups', 1, MAX_CHANNELS);
  num('norm_eps', 1e-12, 1);
  oneOf('resnet_time_scale_shift', ['default', 'scale_shift']);
  bool('add_attention');
  if (c.class_embed_type !== null) bad('class_embed_type', 'is not supported (only null, with num_class_embeds)');
  if (c.num_class_embeds !== null) int('num_class_embeds', 1, MAX_CLASSES);
  if (c.num_train_timesteps !== null) int('num_train_timesteps', 1, 1e6);
  const ss = c.sample_size;
  if (ss !== null && !(Number.isInteger(ss) && (ss as number) >= 1 && (ss as number) <= 65536)
    && !(Array.isArray(ss) && ss.length === 2 && ss.every((x) => Number.isInteger(x) && x >= 1 && x <= 65536))) bad('sample_size', 'must be null, an integer or [height, width]');
  // Every norm must divide its channels, every attention must have a head.
  const ch = c.block_out_channels as number[], g = c.norm_num_groups as number;
  ch.forEach((n, i) => { if (n % g !== 0) bad('norm_num_groups', `does not divide block_out_channels[${i}] = ${n}`); });
  const hd = c.attention_head_dim as number | null;
  const withAttention = ch.filter((_, i) => cfgHasAttention(c, i, levels));
  if (hd !== null) withAttention.forEach((n) => { if (Math.floor(n / hd) < 1) bad('attention_head_dim', `exceeds ${n} channels of a level with attention (no head left)`); });
  const ag = c.attn_norm_num_groups as number | null;
  if (ag !== null && ch[levels - 1] % ag !== 0) bad('attn_norm_num_groups', `does not divide ${ch[levels - 1]}`);
  const cfg = c as unknown as UNet2DConfig;
  const params = estimateParameters(cfg);
  if (params > MAX_PARAMS) throw new Error(`${file}: the config describes ${params.toExponential(2)} parameters (more than ${MAX_PARAMS.toExponential(0)})`);
  return { ...cfg, block_out_channels: [...ch], down_block_types: [...cfg.down_block_types], up_block_types: [...cfg.up_block_types] };
}

/** Whether level i (or, for i = levels − 1, the mid block) has attention. */
function cfgHasAttention(c: Record<string, unknown>, i: number, levels: number): boolean {
  const down = c.down_block_types as string[], up = c.up_block_types as string[];
  return down[i] === 'AttnDownBlock2D' || up[levels - 1 - i] === 'AttnUpBlock2D' || (i === levels - 1 && c.add_attention === true);
}

/** An upper bound on the parameter count (for checking a config before building it). */
function estimateParameters(c: UNet2DConfig): number {
  const ch = c.block_out_channels, temb = 4 * ch[0], L = c.layers_per_block;
  let n = 0;
  for (const x of ch) n += (L + 3) * (2 * 9 * (2 * x) * x + 2 * temb * x + 4 * x * x) + 4 * x * x * 4;
  return n + temb * temb * 2 + (c.num_class_embeds ?? 0) * temb;
}

// ---- timestep embeddings, as PyTorch computes them in float32

const f = Math.fround;

/** diffusers' get_timestep_embedding (Timesteps module) in float32 arithmetic. t: host [B] → [B, dim]. */
export function diffusersTimestepEmbedding(t: ArrayLike<number>, dim: number, flipSinToCos: boolean, freqShift: number, maxPeriod = 10000): Tensor {
  const b = t.length, half = Math.floor(dim / 2), out = new Float32Array(b * dim);
  const negLog = f(-Math.log(maxPeriod)), denom = f(half - freqShift);
  const freqs = Array.from({ length: half }, (_, i) => f(Math.exp(f(f(negLog * i) / denom))));
  for (let r = 0; r < b; r++) {
    const tf = f(t[r]);
    for (let i = 0; i < half; i++) {
      const a = f(tf * freqs[i]);
      const s = f(Math.sin(a)), co = f(Math.cos(a));
      out[r * dim + i] = flipSinToCos ? co : s;
      out[r * dim + half + i] = flipSinToCos ? s : co;
    }
  }
  return tensor(out, [b, dim]);
}

/** GaussianFourierProjection(log = true, flip_sin_to_cos = false): [sin(2π w log t), cos(2π w log t)] in float32. */
function fourierEmbedding(t: ArrayLike<number>, w: Float32Array): Tensor {
  const b = t.length, n = w.length, out = new Float32Array(2 * b * n), pi = f(Math.PI);
  for (let r = 0; r < b; r++) {
    const lt = f(Math.log(f(t[r])));
    for (let i = 0; i < n; i++) {
      const a = f(f(f(lt * w[i]) * 2) * pi);
      out[r * 2 * n + i] = f(Math.sin(a));
      out[r * 2 * n + n + i] = f(Math.cos(a));
    }
  }
  return tensor(out, [b, 2 * n]);
}

// ---- modules

class TimestepEmbedding extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  constructor(inDim: number, dim: number) {
    super();
    this.linear1 = this.registerModule('linear_1', new Linear(inDim, dim));
    this.linear2 = this.registerModule('linear_2', new Linear(dim, dim));
  }
  forward(x: Tensor): Tensor {
    return this.linear2.forward(silu(this.linear1.forward(x)));
  }
}

class FourierProjection extends Module {
  readonly weight: Parameter;
  constructor(n: number) {
    super();
    this.weight = this.registerParameter('weight', new Parameter(new Float32Array(n), [n]));
  }
}

export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly timeEmbProj: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly convShortcut: Conv2d | null;

  constructor(readonly inChannels: number, readonly outChannels: number, temb: number, groups: number, eps: number,
    readonly scaleShift: boolean, readonly outputScale: number, readonly resample: 'up' | 'down' | null = null) {
    super();
    this.norm1 = this.registerModule('norm1', new GroupNorm(groups, inChannels, { eps, silu: true }));
    this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, outChannels, 3, { padding: 1 }));
    this.timeEmbProj = this.registerModule('time_emb_proj', new Linear(temb, scaleShift ? 2 * outChannels : outChannels));
    this.norm2 = this.registerModule('norm2', new GroupNorm(groups, outChannels, { eps, silu: !scaleShift }));
    this.conv2 = this.registerModule('conv2', new Conv2d(outChannels, outChannels, 3, { padding: 1 }));
    this.convShortcut = inChannels !== outChannels ? this.registerModule('conv_shortcut', new Conv2d(inChannels, outChannels, 1)) : null;
  }

  /** embAct = SiLU(emb). */
  forward(x: Tensor, embAct: Tensor): Tensor {
    if (this.resample === null && !this.scaleShift) {
      // The norms run inside the convolutions that read them, which also add the time embedding and the
      // residual (normThenConv: the same values as the ops below, nothing stored in between where it can).
      const h = normThenConv(this.norm1, this.conv1, x, { imageBias: this.timeEmbProj.forward(embAct) });
      const s = this.convShortcut ? this.convShortcut.forward(x) : x;
      return this.outputScale === 1 ? normThenConv(this.norm2, this.conv2, h, { residual: s })
        : affine(add(s, normThenConv(this.norm2, this.conv2, h)), 1 / this.outputScale, 0);
    }
    let h = this.norm1.forward(x);
    const rs = (y: Tensor) => (this.resample === 'up' ? upsampleNearest2x(y) : this.resample === 'down' ? avgPool2x2(y) : y);
    x = rs(x);
    h = this.conv1.forward(rs(h));
    const b = x.shape[0], c = this.outChannels;
    const temb = this.timeEmbProj.forward(embAct);
    if (this.scaleShift) {
      const [scale, shift] = split(reshape(temb, [b, 2 * c, 1, 1]), 2, 1);
      h = this.norm2.forward(h);
      h = silu(add(mul(h, affine(scale, 1, 1)), shift));
    } else {
      h = this.norm2.forward(add(h, reshape(temb, [b, c, 1, 1])));
    }
    h = this.conv2.forward(h);
    const out = add(this.convShortcut ? this.convShortcut.forward(x) : x, h);
    return this.outputScale === 1 ? out : affine(out, 1 / this.outputScale, 0);
  }
}

export class Attention extends Module {
  readonly groupNorm: GroupNorm | null;
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: ModuleList<Linear>;
  readonly inner: number;

  constructor(readonly channels: number, readonly heads: number, readonly dimHead: number, groups: number | null, eps: number,
    readonly rescale: number) {
    super();
    this.inner = heads * dimHead;
    this.groupNorm = groups !== null ? this.registerModule('group_norm', new GroupNorm(groups, channels, { eps })) : null;
    this.toQ = this.registerModule('to_q', new Linear(channels, this.inner));
    this.toK = this.registerModule('to_k', new Linear(channels, this.inner));
    this.toV = this.registerModule('to_v', new Linear(channels, this.inner));
    this.toOut = this.registerModule('to_out', new ModuleList([new Linear(this.inner, channels)]));
  }

  forward(x: Tensor): Tensor {
    const [b, c, hh, ww] = x.shape, n = hh * ww, heads = this.heads, d = this.dimHead;
    let h = this.groupNorm ? this.groupNorm.forward(x) : x;
    h = transpose(reshape(h, [b, c, n]), 1, 2); // [B, HW, C]
    const toHeads = (y: Tensor) => reshape(permute(reshape(y, [b, n, heads, d]), [0, 2, 1, 3]), [b * heads, n, d]);
    const q = toHeads(this.toQ.forward(h)), k = toHeads(this.toK.forward(h)), v = toHeads(this.toV.forward(h));
    let o = scaledDotProductAttention(q, k, v, 1 / Math.sqrt(d)); // [B·heads, HW, d]
    o = reshape(permute(reshape(o, [b, heads, n, d]), [0, 2, 1, 3]), [b, n, this.inner]);
    o = this.toOut.at(0).forward(o); // [B, HW, C]
    const out = add(reshape(transpose(o, 1, 2), [b, c, hh, ww]), x);
    return this.rescale === 1 ? out : affine(out, 1 / this.rescale, 0);
  }
}

class Downsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, readonly padding: number) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(channels, channels, 3, { stride: 2, padding }));
  }
  forward(x: Tensor): Tensor {
    // padding 0: diffusers pads one zero row and column at the bottom and right first.
    return this.conv.forward(this.padding === 0 ? pad(x, [0, 1, 0, 1]) : x);
  }
}

class Upsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(channels, channels, 3, { padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(upsampleNearest2x(x));
  }
}

type Sampler = Downsample2D | Upsample2D | ResnetBlock2D;

class Block extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<Attention> | null;
  samplers: ModuleList<Sampler> | null = null;
  constructor(attn: boolean) {
    super();
    this.resnets = this.registerModule('resnets', new ModuleList<ResnetBlock2D>());
    this.attentions = attn ? this.registerModule('attentions', new ModuleList<Attention>()) : null;
  }
  setSampler(name: 'downsamplers' | 'upsamplers', s: Sampler): void {
    this.samplers = this.registerModule(name, new ModuleList<Sampler>([s]));
  }
  resample(h: Tensor, embAct: Tensor): Tensor {
    const s = this.samplers?.at(0);
    if (!s) return h;
    return s instanceof ResnetBlock2D ? s.forward(h, embAct) : s.forward(h);
  }
}

class MidBlock extends Module {
  readonly attentions: ModuleList<Attention>;
  readonly resnets: ModuleList<ResnetBlock2D>;
  constructor(attn: Attention | null, r0: ResnetBlock2D, r1: ResnetBlock2D) {
    super();
    this.attentions = this.registerModule('attentions', new ModuleList<Attention>(attn ? [attn] : []));
    this.resnets = this.registerModule('resnets', new ModuleList([r0, r1]));
  }
  forward(h: Tensor, embAct: Tensor): Tensor {
    h = this.resnets.at(0).forward(h, embAct);
    if (this.attentions.length) h = this.attentions.at(0).forward(h);
    return this.resnets.at(1).forward(h, embAct);
  }
}

/** diffusers' UNet2DModel. Build from a config, then loadStateDict a diffusers state dict. */
export class UNet2DModel extends Module {
  readonly config: UNet2DConfig;
  readonly convIn: Conv2d;
  readonly timeProj: FourierProjection | null;
  readonly timeEmbedding: TimestepEmbedding;
  readonly classEmbedding: Embedding | null;
  readonly downBlocks: ModuleList<Block>;
  readonly midBlock: MidBlock;
  readonly upBlocks: ModuleList<Block>;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(config: UNet2DConfig) {
    super();
    const c = this.config = parseUNet2DConfig(config);
    const ch = c.block_out_channels, levels = ch.length, temb = 4 * ch[0], g = c.norm_num_groups, eps = c.norm_eps;
    const ss = c.resnet_time_scale_shift === 'scale_shift';
    const res = (cin: number, cout: number, scale = 1, resample: 'up' | 'down' | null = null) => new ResnetBlock2D(cin, cout, temb, g, eps, ss, scale, resample);
    const headDim = (n: number) => c.attention_head_dim ?? n;
    const attn = (n: number, groups: number | null, scale = 1) => new Attention(n, Math.floor(n / headDim(n)), headDim(n), groups, eps, scale);

    this.convIn = this.registerModule('conv_in', new Conv2d(c.in_channels, ch[0], 3, { padding: 1 }));
    this.timeProj = c.time_embedding_type === 'fourier' ? this.registerModule('time_proj', new FourierProjection(ch[0])) : null;
    this.timeEmbedding = this.registerModule('time_embedding', new TimestepEmbedding(c.time_embedding_type === 'fourier' ? 2 * ch[0] : ch[0], temb));
    this.classEmbedding = c.num_class_embeds !== null ? this.registerModule('class_embedding', new Embedding(c.num_class_embeds, temb)) : null;

    this.downBlocks = this.registerModule('down_blocks', new ModuleList<Block>());
    let out = ch[0];
    for (let i = 0; i < levels; i++) {
      const type = c.down_block_types[i] as DownType, input = out;
      out = ch[i];
      const block = new Block(type === 'AttnDownBlock2D');
      for (let j = 0; j < c.layers_per_block; j++) {
        block.resnets.append(res(j === 0 ? input : out, out));
        block.attentions?.append(attn(out, g));
      }
      if (i < levels - 1) {
        const resnetDown = type === 'ResnetDownsampleBlock2D' || (type === 'AttnDownBlock2D' && c.downsample_type === 'resnet');
        block.setSampler('downsamplers', resnetDown ? res(out, out, 1, 'down') : new Downsample2D(out, c.downsample_padding));
      }
      this.downBlocks.append(block);
    }

    const last = ch[levels - 1], msf = c.mid_block_scale_factor;
    const attnGroups = c.attn_norm_num_groups ?? (ss ? null : g);
    this.midBlock = this.registerModule('mid_block', new MidBlock(c.add_attention ? attn(last, attnGroups, msf) : null, res(last, last, msf), res(last, last, msf)));

    this.upBlocks = this.registerModule('up_blocks', new ModuleList<Block>());
    const rev = [...ch].reverse();
    out = rev[0];
    for (let i = 0; i < levels; i++) {
      const type = c.up_block_types[i] as UpType, prev = out;
      out = rev[i];
      const input = rev[Math.min(i + 1, levels - 1)];
      const block = new Block(type === 'AttnUpBlock2D');
      const layers = c.layers_per_block + 1;
      for (let j = 0; j < layers; j++) {
        const skip = j === layers - 1 ? input : out;
        block.resnets.append(res((j === 0 ? prev : out) + skip, out));
        block.attentions?.append(attn(out, g));
      }
      if (i < levels - 1) {
        const resnetUp = type === 'ResnetUpsampleBlock2D' || (type === 'AttnUpBlock2D' && c.upsample_type === 'resnet');
        block.setSampler('upsamplers', resnetUp ? res(out, out, 1, 'up') : new Upsample2D(out));
      }
      this.upBlocks.append(block);
    }
    this.convNormOut = this.registerModule('conv_norm_out', new GroupNorm(g, ch[0], { eps, silu: true }));
    this.convOut = this.registerModule('conv_out', new Conv2d(ch[0], c.out_channels, 3, { padding: 1 }));
    this.eval();
  }

  /** The factor between input sizes: H and W must be multiples of it. */
  get sizeMultiple(): number {
    return 2 ** (this.config.block_out_channels.length - 1);
  }

  /**
   * sample float32 [B, in, H, W], timesteps float32 [B] (host values), classLabels int32 [B] (class-conditional
   * models: required, as in diffusers) → [B, out, H, W].
   */
  forward(sample: Tensor, timesteps: Tensor, classLabels?: Tensor): Tensor {
    const c = this.config, shp = (s: readonly number[]) => `[${s.join(', ')}]`;
    if (sample.ndim !== 4 || sample.shape[1] !== c.in_channels) throw new Error(`UNet2DModel.forward: sample must be [B, ${c.in_channels}, H, W], got ${shp(sample.shape)}`);
    const [b, , hh, ww] = sample.shape, m = this.sizeMultiple;
    if (hh % m !== 0 || ww % m !== 0) throw new Error(`UNet2DModel.forward: spatial size ${hh}×${ww} must be divisible by ${m}`);
    if (timesteps.ndim !== 1 || timesteps.shape[0] !== b) throw new Error(`UNet2DModel.forward: timesteps must be [${b}], got ${shp(timesteps.shape)}`);
    const td = timesteps.data;
    if (this.classEmbedding && !classLabels) throw new Error('UNet2DModel.forward: class labels are required (the model has num_class_embeds)');
    if (!this.classEmbedding && classLabels) throw new Error('UNet2DModel.forward: class labels given to a model without class embeddings');
    if (c.time_embedding_type === 'fourier') {
      for (let i = 0; i < b; i++) if (!(td[i] > 0)) throw new Error(`UNet2DModel.forward: a fourier time embedding takes log t, so t must be > 0, got ${td[i]}`);
    }
    const tproj = this.timeProj ? fourierEmbedding(td, this.timeProj.weight.data as Float32Array)
      : diffusersTimestepEmbedding(td, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift);
    let emb = this.timeEmbedding.forward(tproj);
    if (this.classEmbedding && classLabels) {
      if (classLabels.dtype !== 'int32' || classLabels.ndim !== 1 || classLabels.shape[0] !== b) throw new Error(`UNet2DModel.forward: class labels must be int32 [${b}], got ${classLabels.dtype} ${shp(classLabels.shape)}`);
      emb = add(emb, this.classEmbedding.forward(classLabels));
    }
    const embAct = silu(emb);
    let h = c.center_input_sample ? affine(sample, 2, -1) : sample;
    h = this.convIn.forward(h);
    const skips: Tensor[] = [h];
    for (const block of this.downBlocks) {
      for (let j = 0; j < block.resnets.length; j++) {
        h = block.resnets.at(j).forward(h, embAct);
        if (block.attentions) h = block.attentions.at(j).forward(h);
        skips.push(h);
      }
      if (block.samplers) {
        h = block.resample(h, embAct);
        skips.push(h);
      }
    }
    h = this.midBlock.forward(h, embAct);
    for (const block of this.upBlocks) {
      for (let j = 0; j < block.resnets.length; j++) {
        h = block.resnets.at(j).forward(concat([h, skips.pop()!], 1), embAct);
        if (block.attentions) h = block.attentions.at(j).forward(h);
      }
      h = block.resample(h, embAct);
    }
    h = this.convOut.forward(this.convNormOut.forward(h));
    if (c.time_embedding_type === 'fourier') h = div(h, reshape(tensor(Float32Array.from(td), [b]), [b, 1, 1, 1]));
    return h;
  }
}

/** diffusers' renames of pre-0.12 attention blocks: query/key/value/proj_attn → to_q/to_k/to_v/to_out.0. */
export function renameLegacyAttention(name: string): string {
  return name.replace(/\.query\.(weight|bias)$/, '.to_q.$1').replace(/\.key\.(weight|bias)$/, '.to_k.$1')
    .replace(/\.value\.(weight|bias)$/, '.to_v.$1').replace(/\.proj_attn\.(weight|bias)$/, '.to_out.0.$1');
}

