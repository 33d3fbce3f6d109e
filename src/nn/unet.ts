/**
 * A UNet noise predictor in the DDPM / ADM (Ho et al. 2020; Dhariwal & Nichol 2021) layout, with the same
 * module tree — hence the same parameter names and layouts — as its PyTorch transcription in
 * bench/unet_torch.py, so state dicts load in either unchanged.
 *
 *   time_embed      Sequential(Linear(C, 4C), SiLU, Linear(4C, 4C)) over a sinusoidal embedding of t
 *   label_emb       Embedding(numClasses + 1, 4C), optional; row numClasses is the null class (CFG)
 *   conv_in         Conv2d(in, C, 3)
 *   down.{i}        level i: block.{j} ResBlock ×numResBlocks, attn.{j} (levels in attentionLevels),
 *                   downsample (conv 3×3 stride 2, or 2×2 average pooling) except on the last level
 *   mid             block_1, attn_1 (midAttention), block_2
 *   up.{i}          level i (up.0 is full resolution; run last): block.{j} ×(numResBlocks + 1), each taking
 *                   the concat of the running features and one skip; attn.{j}; upsample (nearest ×2 + conv 3×3)
 *                   except on level 0
 *   norm_out, conv_out   GroupNorm + SiLU, Conv2d(C, out, 3); out = 2·in when the variance is learned
 *
 * ResBlock: norm1 (GroupNorm+SiLU, fused) → conv1 → + temb_proj(SiLU(emb)) → norm2 (GroupNorm+SiLU) →
 * dropout → conv2, plus the input (through `skip`, a 1×1 conv, when the channel count changes).
 * AttnBlock: norm → qkv (1×1 conv, C → 3C; channels [q | k | v], head h owning channels h·d … h·d+d−1 of
 * each) → softmax(qᵀk/√d) per head → proj_out (1×1 conv) → + input.
 *
 * Initialization: PyTorch's defaults (kaiming-uniform a = √5 weights, U(±1/√fan_in) biases, norms 1/0,
 * Embedding N(0,1)), except — as in DDPM/ADM — conv2 of every ResBlock, proj_out of every AttnBlock and
 * conv_out are zero-initialized (each residual branch starts as the identity, the output starts at 0).
 * Pass `zeroInit: false` to keep the default init everywhere.
 *
 * Group counts: with normGroupRule 'fixed' (the presets) every GroupNorm has normGroups groups, which must divide
 * every norm's channel count (a diffusers UNet2DModel has one norm_num_groups too). Without the field (configs
 * from before it existed) each norm's count comes from its channels: normGroupsFor(C, normGroups) = the largest
 * divisor of C not above min(normGroups, C/4), at least 4 channels a group (the tiny preset then had 8, 16, 24
 * and 32 groups on its 32, 64, 96 and 128-channel norms).
 */
import {
  Generator, Tensor, add, avgPool2x2, concat, full, isGradEnabled, matmul, mul, reshape, scope, silu, softmax, split,
  tensor, upsampleNearest2x, fmt, freeAfterUse, noGrad, recomputable, checkpoint,
} from '../tensor/index.js';
import { currentBackendIsDevice } from '../backends/index.js';

/**
 * Runs one block of the forward pass. Without gradients on a device backend (wasm, WebGPU: tensors are
 * released by scopes, not by the collector) the block's temporaries are released when it returns, so an
 * evaluation holds one block's temporaries at a time instead of the whole forward's (a sampler step's scope
 * would otherwise keep them all until it ends).
 */
function block(fn: () => Tensor): Tensor {
  return !isGradEnabled() && currentBackendIsDevice() ? scope(fn) : fn();
}

/** make()'s output, rebuildable by running make again without recording: see `recomputable`. */
function rebuildable(make: () => Tensor): Tensor {
  const t = make();
  return t.node ? recomputable(t, () => noGrad(make).shareStorage()) : t;
}
import { Conv2d, Dropout, Embedding, GroupNorm, Linear, ModuleList, SiLU, Sequential, normThenConv } from './layers.js';
import { Module } from './module.js';

export interface UNetConfig {
  /** Nominal image side (28 for MNIST, 32 for CIFAR); any H, W divisible by 2^(levels−1) run. */
  imageSize: number;
  inChannels: number;
  /** Base channel count C; level i has C·channelMult[i] channels. */
  modelChannels: number;
  channelMult: number[];
  numResBlocks: number;
  /** Level indices (0 = full resolution) whose blocks are followed by self-attention. */
  attentionLevels: number[];
  numHeads: number;
  dropout: number;
  /** 0: unconditional. Otherwise labels 0 … numClasses−1, and numClasses means "no class" (CFG). */
  numClasses: number;
  /** Output 2·inChannels channels: the noise prediction, then the variance interpolation v (iDDPM). */
  learnSigma: boolean;
  downsample: 'conv' | 'avgpool';
  /** GroupNorm groups: every norm's count (normGroupRule 'fixed'), or an upper bound per norm (see normGroupsFor). */
  normGroups: number;
  /**
   * 'fixed': every GroupNorm has normGroups groups. 'perChannel' or absent (configs written before this field):
   * each norm's count from its channel count, normGroupsFor(channels, normGroups).
   */
  normGroupRule?: 'fixed' | 'perChannel';
  midAttention: boolean;
}

const DEFAULTS: UNetConfig = {
  imageSize: 28, inChannels: 1, modelChannels: 32, channelMult: [1, 2, 2], numResBlocks: 1,
  attentionLevels: [2], numHeads: 1, dropout: 0, numClasses: 0, learnSigma: false, downsample: 'conv',
  normGroups: 32, midAttention: true,
};

export type UNetPresetName = 'tiny' | 'small' | 'base';

/**
 * Presets for 28×28 (MNIST) and 32×32 (CIFAR) images; all three have 3 levels (28 → 14 → 7, 32 → 16 → 8).
 * Each has one group count for all its norms (so it is a diffusers UNet2DModel): unless normGroups is given, the
 * largest count up to 32 that divides every norm's channels and leaves at least 4 channels a group in the
 * narrowest (presetNormGroups: tiny 8, small 16, base 32; 2 for a tiny preset narrowed to 8 channels).
 * - tiny:  C=32,  mult [1,2,2], 1 block/level, attention at the lowest resolution (7×7), no dropout — sized
 *          for short CPU runs (MNIST on 2 cores).
 * - small: C=64,  mult [1,2,2], 2 blocks/level, attention at the lowest resolution, 4 heads.
 * - base:  C=128, mult [1,2,2], 2 blocks/level, attention at 14×14 and 7×7, 4 heads.
 */
export const UNET_PRESETS: Record<UNetPresetName, Partial<UNetConfig>> = {
  tiny: { modelChannels: 32, channelMult: [1, 2, 2], numResBlocks: 1, attentionLevels: [2], numHeads: 1, dropout: 0, normGroupRule: 'fixed' },
  small: { modelChannels: 64, channelMult: [1, 2, 2], numResBlocks: 2, attentionLevels: [2], numHeads: 4, dropout: 0.1, normGroupRule: 'fixed' },
  base: { modelChannels: 128, channelMult: [1, 2, 2], numResBlocks: 2, attentionLevels: [1, 2], numHeads: 4, dropout: 0.1, normGroupRule: 'fixed' },
};

/** A full config from a preset, with overrides (inChannels, imageSize, numClasses, learnSigma, …). */
export function unetPreset(name: UNetPresetName, overrides: Partial<UNetConfig> = {}): UNetConfig {
  const p = UNET_PRESETS[name];
  if (!p) throw new Error(`unetPreset: unknown preset '${String(name)}' (choose one of ${Object.keys(UNET_PRESETS).join(', ')})`);
  const c = { ...DEFAULTS, ...p, ...overrides };
  // A preset's one group count follows its (possibly overridden) channels, unless given.
  if (overrides.normGroups === undefined && c.normGroupRule === 'fixed' && Array.isArray(c.channelMult)) c.normGroups = presetNormGroups(c);
  return validateUNetConfig(c);
}

/**
 * The group count the presets use: the largest g ≤ 32 that divides every norm's channel count with at least 4
 * channels a group in the narrowest norm (1 if none does), so that a per-channel time-embedding shift before a norm
 * is never normalized away (as it would be with one channel a group).
 */
export function presetNormGroups(c: Pick<UNetConfig, 'modelChannels' | 'channelMult' | 'numResBlocks'>): number {
  const norms = unetNormChannels(c);
  for (let g = Math.min(32, Math.floor(norms[0] / 4)); g > 1; g--) if (norms.every((n) => n % g === 0)) return g;
  return 1;
}

/**
 * Parses a config from JSON (a string or a parsed object); missing fields take the tiny preset's values, except
 * normGroups (32) and normGroupRule (absent: per channel), which keep what configs without them meant.
 */
export function unetConfigFromJSON(json: string | unknown): UNetConfig {
  const obj = typeof json === 'string' ? JSON.parse(json) as unknown : json;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('UNetConfig: expected a JSON object');
  const known = new Set([...Object.keys(DEFAULTS), 'normGroupRule']);
  const extra = Object.keys(obj).filter((k) => !known.has(k));
  if (extra.length) throw new Error(`UNetConfig: unknown field(s) ${extra.join(', ')}`);
  return validateUNetConfig({ ...DEFAULTS, ...(obj as Partial<UNetConfig>) });
}

/** Checks every field; returns a normalized copy (arrays copied). */
export function validateUNetConfig(c: UNetConfig): UNetConfig {
  const bad = (msg: string): never => { throw new Error(`UNetConfig: ${msg}`); };
  const posInt = (k: keyof UNetConfig) => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  for (const [k, max] of Object.entries(UNET_LIMITS.fields) as [keyof typeof UNET_LIMITS.fields, number][]) {
    posInt(k);
    if ((c[k] as number) > max) bad(`${k} must be at most ${max}, got ${c[k]}`);
  }
  const { maxLevels, maxMult } = UNET_LIMITS;
  if (!Array.isArray(c.channelMult) || c.channelMult.length < 1 || c.channelMult.length > maxLevels
    || !c.channelMult.every((m) => Number.isInteger(m) && m >= 1 && m <= maxMult)) {
    bad(`channelMult must list 1…${maxLevels} integers in 1…${maxMult}, got ${JSON.stringify(c.channelMult)?.slice(0, 80)}`);
  }
  const levels = c.channelMult.length;
  if (!Array.isArray(c.attentionLevels) || !c.attentionLevels.every((l) => Number.isInteger(l) && l >= 0 && l < levels)) {
    bad(`attentionLevels must list level indices in 0…${levels - 1}, got ${JSON.stringify(c.attentionLevels)}`);
  }
  if (typeof c.dropout !== 'number' || !(c.dropout >= 0 && c.dropout < 1)) bad(`dropout must be in [0, 1), got ${JSON.stringify(c.dropout)}`);
  if (!Number.isInteger(c.numClasses) || c.numClasses < 0 || c.numClasses > UNET_LIMITS.maxClasses) {
    bad(`numClasses must be an integer in 0…${UNET_LIMITS.maxClasses}, got ${JSON.stringify(c.numClasses)}`);
  }
  if (typeof c.learnSigma !== 'boolean') bad(`learnSigma must be a boolean, got ${JSON.stringify(c.learnSigma)}`);
  if (typeof c.midAttention !== 'boolean') bad(`midAttention must be a boolean, got ${JSON.stringify(c.midAttention)}`);
  if (c.downsample !== 'conv' && c.downsample !== 'avgpool') bad(`downsample must be 'conv' or 'avgpool', got ${JSON.stringify(c.downsample)}`);
  const withAttn = [...new Set([...c.attentionLevels, ...(c.midAttention ? [levels - 1] : [])])];
  for (const l of withAttn) {
    const ch = c.modelChannels * c.channelMult[l];
    if (ch % c.numHeads !== 0) bad(`${ch} channels at level ${l} cannot be split into ${c.numHeads} heads`);
  }
  const div = 2 ** (levels - 1);
  if (c.imageSize % div !== 0) bad(`imageSize ${c.imageSize} must be divisible by ${div} (${levels} levels)`);
  if (c.normGroupRule !== undefined && c.normGroupRule !== 'fixed' && c.normGroupRule !== 'perChannel') {
    bad(`normGroupRule must be 'fixed' or 'perChannel', got ${JSON.stringify(c.normGroupRule)?.slice(0, 40)}`);
  }
  if (c.normGroupRule === 'fixed') {
    const norms = unetNormChannels(c), misfit = norms.find((n) => n % c.normGroups !== 0);
    if (misfit !== undefined) bad(`normGroups ${c.normGroups} must divide the channel count of every norm (${norms.join(', ')}), and does not divide ${misfit}`);
  }
  const out = { ...c, channelMult: [...c.channelMult], attentionLevels: [...c.attentionLevels].sort((a, b) => a - b) };
  const params = unetParameterCount(out);
  if (params > UNET_LIMITS.maxParameters) bad(`this config has ${params} parameters, more than the limit of ${UNET_LIMITS.maxParameters}`);
  return out;
}

/**
 * Bounds on a UNet config, checked before anything is allocated (a config may come from a file): each
 * field, and the parameter count (2^28 float32 weights: 1 GiB, 4 GiB with AdamW's moments and the EMA).
 */
export const UNET_LIMITS = {
  fields: { imageSize: 2048, inChannels: 64, modelChannels: 2048, numResBlocks: 64, numHeads: 1024, normGroups: 1024 },
  maxLevels: 8,
  maxMult: 64,
  maxClasses: 1_000_000,
  maxParameters: 2 ** 28,
} as const;

/** The UNet's parameter count, computed from its config without building it (same tree as the constructor). */
export function unetParameterCount(c: UNetConfig): number {
  const ch = c.modelChannels, temb = 4 * ch, levels = c.channelMult.length;
  const conv = (cin: number, cout: number, k: number) => cin * cout * k * k + cout;
  const res = (cin: number, cout: number) => 2 * cin + conv(cin, cout, 3) + temb * cout + cout + 2 * cout + conv(cout, cout, 3)
    + (cin !== cout ? conv(cin, cout, 1) : 0);
  const attn = (x: number) => 2 * x + conv(x, 3 * x, 1) + conv(x, x, 1);
  let n = ch * temb + temb + temb * temb + temb + (c.numClasses > 0 ? (c.numClasses + 1) * temb : 0) + conv(c.inChannels, ch, 3);
  const skips = [ch];
  let cur = ch;
  for (let i = 0; i < levels; i++) {
    const out = ch * c.channelMult[i];
    for (let j = 0; j < c.numResBlocks; j++) {
      n += res(cur, out) + (c.attentionLevels.includes(i) ? attn(out) : 0);
      cur = out;
      skips.push(cur);
    }
    if (i !== levels - 1) {
      if (c.downsample === 'conv') n += conv(cur, cur, 3);
      skips.push(cur);
    }
  }
  n += 2 * res(cur, cur) + (c.midAttention ? attn(cur) : 0);
  for (let i = levels - 1; i >= 0; i--) {
    const out = ch * c.channelMult[i];
    for (let j = 0; j <= c.numResBlocks; j++) {
      n += res(cur + skips.pop()!, out) + (c.attentionLevels.includes(i) ? attn(out) : 0);
      cur = out;
    }
    if (i !== 0) n += conv(cur, cur, 3);
  }
  return n + 2 * cur + conv(cur, c.learnSigma ? 2 * c.inChannels : c.inChannels, 3);
}

/** The largest divisor of `channels` not above min(maxGroups, channels/4) (at least 1): the 'perChannel' rule. */
export function normGroupsFor(channels: number, maxGroups = 32): number {
  let g = Math.max(1, Math.min(maxGroups, Math.floor(channels / 4)));
  while (channels % g !== 0) g--;
  return g;
}

/** The group count of a GroupNorm over `channels` channels in a UNet of config `c` (see normGroupRule). */
export function unetNormGroups(c: Pick<UNetConfig, 'normGroups' | 'normGroupRule'>, channels: number): number {
  return c.normGroupRule === 'fixed' ? c.normGroups : normGroupsFor(channels, c.normGroups);
}

/** Every channel count a GroupNorm of the UNet normalizes (resblocks' inputs and outputs, attention, norm_out), ascending. */
export function unetNormChannels(c: Pick<UNetConfig, 'modelChannels' | 'channelMult' | 'numResBlocks'>): number[] {
  const ch = c.modelChannels, levels = c.channelMult.length, out = new Set<number>();
  const skips = [ch];
  let cur = ch;
  for (let i = 0; i < levels; i++) {
    const o = ch * c.channelMult[i];
    for (let j = 0; j < c.numResBlocks; j++) { out.add(cur); out.add(o); cur = o; skips.push(cur); }
    if (i < levels - 1) skips.push(cur);
  }
  out.add(cur);
  for (let i = levels - 1; i >= 0; i--) {
    const o = ch * c.channelMult[i];
    for (let j = 0; j <= c.numResBlocks; j++) { out.add(cur + skips.pop()!); out.add(o); cur = o; }
  }
  out.add(cur);
  return [...out].sort((a, b) => a - b);
}

/**
 * Sinusoidal timestep embedding (ADM's): [cos(t·f_0) … cos(t·f_{h−1}), sin(t·f_0) … sin(t·f_{h−1})] with
 * h = ⌊dim/2⌋, f_i = maxPeriod^(−i/h); a zero column is appended when dim is odd. Computed in float64 on the
 * host (identical on every backend), then rounded to float32. t: float32 [B] → [B, dim].
 */
export function timestepEmbedding(t: Tensor, dim: number, maxPeriod = 10000): Tensor {
  if (t.ndim !== 1) throw new Error(`timestepEmbedding: t must be [B], got [${t.shape.join(', ')}]`);
  const b = t.shape[0], half = Math.floor(dim / 2), td = t.data;
  const out = new Float32Array(b * dim);
  for (let i = 0; i < half; i++) {
    const f = Math.exp(-Math.log(maxPeriod) * i / half);
    for (let r = 0; r < b; r++) {
      const a = td[r] * f;
      out[r * dim + i] = Math.cos(a);
      out[r * dim + half + i] = Math.sin(a);
    }
  }
  return tensor(out, [b, dim]);
}

export interface UNetInitOptions {
  /** Seed of the initialization (and, by default, of dropout). Default 0. */
  seed?: number;
  /** Generator for the initial values (overrides seed). */
  gen?: Generator;
  /** Generator for dropout masks (default: seeded from seed + 1). */
  dropoutGen?: Generator;
  /** Zero-init the last conv of every residual branch and the output conv (default true). */
  zeroInit?: boolean;
}

function zero(m: Conv2d): Conv2d {
  m.weight.values.fill(0);
  m.bias?.values.fill(0);
  return m;
}

export class ResBlock extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly tembProj: Linear;
  readonly norm2: GroupNorm;
  readonly dropout: Dropout;
  readonly conv2: Conv2d;
  readonly skip: Conv2d | null;

  /** `groups(C)`: the group count of a norm over C channels (unetNormGroups of the config). */
  constructor(readonly inChannels: number, readonly outChannels: number, tembChannels: number, dropoutP: number,
    groups: (channels: number) => number, gen: Generator, dropoutGen: Generator, zeroInit: boolean) {
    super();
    this.norm1 = this.registerModule('norm1', new GroupNorm(groups(inChannels), inChannels, { silu: true }));
    this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, outChannels, 3, { padding: 1, gen }));
    this.tembProj = this.registerModule('temb_proj', new Linear(tembChannels, outChannels, { gen }));
    this.norm2 = this.registerModule('norm2', new GroupNorm(groups(outChannels), outChannels, { silu: true }));
    this.dropout = this.registerModule('dropout', new Dropout(dropoutP, dropoutGen));
    this.conv2 = this.registerModule('conv2', new Conv2d(outChannels, outChannels, 3, { padding: 1, gen }));
    if (zeroInit) zero(this.conv2);
    this.skip = inChannels !== outChannels ? this.registerModule('skip', new Conv2d(inChannels, outChannels, 1, { gen })) : null;
  }

  /**
   * x [B, Cin, H, W], embAct = SiLU(emb) [B, E] → [B, Cout, H, W]. `ownsInput`: nothing but this block reads
   * x, so it is freed once the block's readers of it are done (a UNet's concatenated skip input).
   */
  forward(x: Tensor, embAct: Tensor, ownsInput = false): Tensor {
    // The norms run inside the convolutions that read them, which also add the time embedding and the residual
    // (normThenConv: one op each, nothing stored in between where the backend can). With dropout, the second
    // norm's output is a tensor of its own: freed once consumed (rebuilt from h in backward), as is the
    // convolution's output, which feeds only an addition.
    const h = normThenConv(this.norm1, this.conv1, x, { imageBias: this.tembProj.forward(embAct) });
    const s = this.skip ? this.skip.forward(x) : x;
    let out: Tensor;
    if (this.dropout.p > 0 && this.dropout.training) {
      const a2 = this.norm2.forward(h), d2 = this.dropout.forward(a2);
      freeAfterUse(a2, h);
      const c2 = this.conv2.forward(d2);
      a2.freeData();
      out = add(s, c2);
      c2.freeData();
    } else {
      out = normThenConv(this.norm2, this.conv2, h, { residual: s });
      freeAfterUse(out, h);
    }
    if (s !== x) s.freeData();
    if (ownsInput) freeAfterUse(s === x ? h : [h, s], x);
    return out;
  }
}

export class AttnBlock extends Module {
  readonly norm: GroupNorm;
  readonly qkv: Conv2d;
  readonly projOut: Conv2d;

  constructor(readonly channels: number, readonly numHeads: number, groups: (channels: number) => number, gen: Generator, zeroInit: boolean) {
    super();
    if (channels % numHeads !== 0) throw new Error(`AttnBlock: ${channels} channels cannot be split into ${numHeads} heads`);
    this.norm = this.registerModule('norm', new GroupNorm(groups(channels), channels));
    this.qkv = this.registerModule('qkv', new Conv2d(channels, 3 * channels, 1, { gen }));
    this.projOut = this.registerModule('proj_out', new Conv2d(channels, channels, 1, { gen }));
    if (zeroInit) zero(this.projOut);
  }

  forward(x: Tensor): Tensor {
    const [b, c, h, w] = x.shape;
    const heads = this.numHeads, d = c / heads, hw = h * w;
    // Each intermediate goes as soon as no gradient rule will read it (native: at once, not at the next collection).
    const a = this.norm.forward(x);
    const qkv = reshape(this.qkv.forward(a), [b, 3 * c, hw]);
    a.freeData();  // rebuilt from x if the convolution's rule reads it
    // q, k, v: [B·heads, d, HW] (channel-major per head: no transposes needed).
    const [q, k, v] = split(qkv, 3, 1).map((t) => reshape(t, [b * heads, d, hw]));
    qkv.freeData();  // the slices are copies
    const raw = matmul(q, k, { transA: true });
    freeAfterUse(raw, q, k);
    const scores = mul(raw, 1 / Math.sqrt(d)); // [B·heads, HW_q, HW_k]
    raw.freeData();  // the product's rule reads only the scale
    const attn = softmax(scores, -1);
    scores.freeData();  // softmax's rule reads its output
    const out = matmul(v, attn, { transB: true }); // [B·heads, d, HW_q]
    freeAfterUse(out, v);
    freeAfterUse(attn, attn);  // after softmax's own rule, the last to read it
    const proj = this.projOut.forward(reshape(out, [b, c, h, w]));
    freeAfterUse(proj, out);
    const y = add(x, proj);
    proj.freeData();
    return y;
  }
}

export class Downsample extends Module {
  readonly conv: Conv2d | null;

  constructor(channels: number, withConv: boolean, gen: Generator) {
    super();
    this.conv = withConv ? this.registerModule('conv', new Conv2d(channels, channels, 3, { stride: 2, padding: 1, gen })) : null;
  }

  forward(x: Tensor): Tensor {
    return this.conv ? this.conv.forward(x) : avgPool2x2(x);
  }
}

export class Upsample extends Module {
  readonly conv: Conv2d;

  constructor(channels: number, gen: Generator) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(channels, channels, 3, { padding: 1, gen }));
  }

  /** `ownsInput`: nothing else reads x, so it is freed once done with (as is the upsampled copy). */
  forward(x: Tensor, ownsInput = false): Tensor {
    // The conv's rule reads the upsampled copy, four times x's size: it is rebuilt from x in backward.
    const u = rebuildable(() => upsampleNearest2x(x));
    const y = this.conv.forward(u);
    u.freeData();
    if (ownsInput) freeAfterUse(y, x);
    return y;
  }
}

export class DownLevel extends Module {
  readonly block: ModuleList<ResBlock>;
  readonly attn: ModuleList<AttnBlock>;
  downsample: Downsample | null = null;

  constructor() {
    super();
    this.block = this.registerModule('block', new ModuleList<ResBlock>());
    this.attn = this.registerModule('attn', new ModuleList<AttnBlock>());
  }

  setDownsample(d: Downsample): void {
    this.downsample = this.registerModule('downsample', d);
  }
}

export class UpLevel extends Module {
  readonly block: ModuleList<ResBlock>;
  readonly attn: ModuleList<AttnBlock>;
  upsample: Upsample | null = null;

  constructor() {
    super();
    this.block = this.registerModule('block', new ModuleList<ResBlock>());
    this.attn = this.registerModule('attn', new ModuleList<AttnBlock>());
  }

  setUpsample(u: Upsample): void {
    this.upsample = this.registerModule('upsample', u);
  }
}

export class MidBlock extends Module {
  readonly block1: ResBlock;
  readonly attn1: AttnBlock | null;
  readonly block2: ResBlock;

  constructor(block1: ResBlock, attn1: AttnBlock | null, block2: ResBlock) {
    super();
    this.block1 = this.registerModule('block_1', block1);
    this.attn1 = attn1 ? this.registerModule('attn_1', attn1) : null;
    this.block2 = this.registerModule('block_2', block2);
  }

  forward(h: Tensor, embAct: Tensor): Tensor {
    h = this.block1.forward(h, embAct);
    if (this.attn1) h = this.attn1.forward(h);
    return this.block2.forward(h, embAct);
  }
}

export class UNet extends Module {
  /**
   * Activation checkpointing (as diffusers' enable_gradient_checkpointing): in training, each residual block
   * (with its attention) keeps only its inputs and output, and runs again in backward. For models too big for
   * memory (base preset, batch 64, measured: peak RSS 2.49 → 1.49 GiB, 40% more time a step); the same
   * gradients up to float rounding (the time embedding's gradient is summed per block first).
   */
  gradientCheckpointing = false;
  readonly config: UNetConfig;
  readonly outChannels: number;
  readonly timeEmbed: Sequential;
  readonly labelEmb: Embedding | null;
  readonly convIn: Conv2d;
  readonly down: ModuleList<DownLevel>;
  readonly mid: MidBlock;
  readonly up: ModuleList<UpLevel>;
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;
  /** Draws the dropout masks (its state belongs in a resumable checkpoint). */
  readonly dropoutGen: Generator;

  constructor(config: UNetConfig, { seed = 0, gen, dropoutGen, zeroInit = true }: UNetInitOptions = {}) {
    super();
    const cfg = this.config = validateUNetConfig(config);
    const g = gen ?? new Generator(seed);
    const dg = this.dropoutGen = dropoutGen ?? new Generator(seed + 1);
    const ch = cfg.modelChannels, temb = 4 * ch, mg = (channels: number) => unetNormGroups(cfg, channels), levels = cfg.channelMult.length;
    this.outChannels = cfg.learnSigma ? 2 * cfg.inChannels : cfg.inChannels;
    const res = (cin: number, cout: number) => new ResBlock(cin, cout, temb, cfg.dropout, mg, g, dg, zeroInit);
    const attn = (c: number) => new AttnBlock(c, cfg.numHeads, mg, g, zeroInit);

    this.timeEmbed = this.registerModule('time_embed', new Sequential(new Linear(ch, temb, { gen: g }), new SiLU(), new Linear(temb, temb, { gen: g })));
    this.labelEmb = cfg.numClasses > 0 ? this.registerModule('label_emb', new Embedding(cfg.numClasses + 1, temb, { gen: g })) : null;
    this.convIn = this.registerModule('conv_in', new Conv2d(cfg.inChannels, ch, 3, { padding: 1, gen: g }));

    // Down path; skipChannels tracks what each pushed feature map holds.
    this.down = this.registerModule('down', new ModuleList<DownLevel>());
    const skipChannels = [ch];
    let cur = ch;
    for (let i = 0; i < levels; i++) {
      const level = new DownLevel();
      const out = ch * cfg.channelMult[i];
      for (let j = 0; j < cfg.numResBlocks; j++) {
        level.block.append(res(cur, out));
        cur = out;
        if (cfg.attentionLevels.includes(i)) level.attn.append(attn(cur));
        skipChannels.push(cur);
      }
      if (i !== levels - 1) {
        level.setDownsample(new Downsample(cur, cfg.downsample === 'conv', g));
        skipChannels.push(cur);
      }
      this.down.append(level);
    }

    this.mid = this.registerModule('mid', new MidBlock(res(cur, cur), cfg.midAttention ? attn(cur) : null, res(cur, cur)));

    // Up path, built deepest level first; stored so that up.{i} is level i (as DDPM's `up.insert(0, …)`).
    const upLevels: UpLevel[] = [];
    for (let i = levels - 1; i >= 0; i--) {
      const level = new UpLevel();
      const out = ch * cfg.channelMult[i];
      for (let j = 0; j <= cfg.numResBlocks; j++) {
        level.block.append(res(cur + skipChannels.pop()!, out));
        cur = out;
        if (cfg.attentionLevels.includes(i)) level.attn.append(attn(cur));
      }
      if (i !== 0) level.setUpsample(new Upsample(cur, g));
      upLevels.unshift(level);
    }
    this.up = this.registerModule('up', new ModuleList(upLevels));

    this.normOut = this.registerModule('norm_out', new GroupNorm(mg(cur), cur, { silu: true }));
    this.convOut = this.registerModule('conv_out', new Conv2d(cur, this.outChannels, 3, { padding: 1, gen: g }));
    if (zeroInit) zero(this.convOut);
  }

  /**
   * x float32 [B, inChannels, H, W], t float32 [B] (timesteps, any real values), classes int32 [B] with
   * values in 0…numClasses (numClasses = the null class; omitted: all null). → [B, outChannels, H, W].
   */
  forward(x: Tensor, t: Tensor, classes?: Tensor): Tensor {
    const cfg = this.config, levels = cfg.channelMult.length;
    if (x.ndim !== 4 || x.shape[1] !== cfg.inChannels) {
      throw new Error(`UNet.forward: x must be [B, ${cfg.inChannels}, H, W], got ${fmt(x.shape)}`);
    }
    const [b, , hh, ww] = x.shape, div = 2 ** (levels - 1);
    if (hh % div !== 0 || ww % div !== 0) {
      throw new Error(`UNet.forward: spatial size ${hh}×${ww} must be divisible by ${div} (${levels} levels)`);
    }
    if (t.ndim !== 1 || t.shape[0] !== b || t.dtype !== 'float32') {
      throw new Error(`UNet.forward: t must be float32 [${b}], got ${t.dtype} ${fmt(t.shape)}`);
    }
    let emb = this.timeEmbed.forward(timestepEmbedding(t, cfg.modelChannels));
    if (classes && !this.labelEmb) throw new Error('UNet.forward: classes given to an unconditional model (numClasses = 0)');
    if (this.labelEmb) {
      if (classes && (classes.dtype !== 'int32' || classes.ndim !== 1 || classes.shape[0] !== b)) {
        throw new Error(`UNet.forward: classes must be int32 [${b}], got ${classes.dtype} ${fmt(classes.shape)}`);
      }
      const labels = classes ?? full([b], cfg.numClasses, { dtype: 'int32' });
      emb = add(emb, this.labelEmb.forward(labels));
    }
    const embAct = silu(emb);

    // A residual block (with its attention), checkpointed if asked: fn must not free its inputs then.
    const ckpt = this.gradientCheckpointing && this.training;
    const stage = (modules: (Module | undefined)[], fn: (...xs: Tensor[]) => Tensor, ...inputs: Tensor[]) => {
      if (!ckpt) return block(() => fn(...inputs));
      const ms = modules.filter((m): m is Module => m !== undefined);
      const gens = ms.flatMap((m) => [...m.namedModules()].map(([, c]) => c)).filter((c): c is Dropout => c instanceof Dropout).map((d) => d.gen);
      return checkpoint(fn, inputs, { params: ms.flatMap((m) => m.parameters()), generators: gens });
    };
    let h = this.convIn.forward(x);
    const hs: Tensor[] = [h];
    for (const level of this.down) {
      for (let j = 0; j < level.block.length; j++) {
        const res = level.block.at(j), attn = level.attn.length ? level.attn.at(j) : undefined;
        h = stage([res, attn], (hin, e) => {
          const r = res.forward(hin, e);
          return attn ? attn.forward(r) : r;
        }, h, embAct);
        hs.push(h);
      }
      if (level.downsample) {
        const hin = h;
        h = block(() => level.downsample!.forward(hin));
        hs.push(h);
      }
    }
    h = stage([this.mid], (hmid, e) => this.mid.forward(hmid, e), h, embAct);
    for (let i = levels - 1; i >= 0; i--) {
      const level = this.up.at(i);
      for (let j = 0; j < level.block.length; j++) {
        const res = level.block.at(j), attn = level.attn.length ? level.attn.at(j) : undefined;
        h = stage([res, attn], (hin, skip, e) => {
          // hin feeds only the concatenation (whose rule reads nothing); the block owns the concatenation.
          const cat = concat([hin, skip], 1);
          if (!ckpt) hin.freeData();
          const r = res.forward(cat, e, true);
          return attn ? attn.forward(r) : r;
        }, h, hs.pop()!, embAct);
      }
      if (level.upsample) {
        const hin = h;
        h = block(() => level.upsample!.forward(hin, true));
      }
    }
    const hout = h;
    return block(() => {
      const y = normThenConv(this.normOut, this.convOut, hout);
      freeAfterUse(y, hout);
      return y;
    });
  }
}

/** Parameter counts, total and per top-level child, with the config when the model has one. */
export function describeModel(model: Module, name = model.constructor.name): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const lines = [`${name}: ${n(model.numParameters())} parameters`];
  const cfg = (model as { config?: unknown }).config;
  if (cfg) lines.push(`  config ${JSON.stringify(cfg)}`);
  for (const [child, m] of model.namedChildren()) {
    const c = m.numParameters();
    if (c > 0) lines.push(`  ${child.padEnd(12)} ${n(c).padStart(12)}`);
  }
  return lines.join('\n');
}
