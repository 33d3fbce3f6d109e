/**
 * An MLP noise predictor for low-dimensional toy data (2-D spirals, rings, mixtures).
 *
 *   time_embed   Sequential(Linear(T, H), SiLU, Linear(H, H)) over a sinusoidal embedding of t (dim T)
 *   label_emb    Embedding(numClasses + 1, H), optional; row numClasses is the null class (CFG)
 *   in_proj      Linear(D, H)
 *   blocks.{i}   Linear(H, H) → SiLU, ×numLayers, the (time + label) embedding added before each
 *   out          Linear(H, D_out) with D_out = D, or 2·D when the variance is learned
 *
 * h = SiLU(in_proj(x)); for each block: h = SiLU(blocks.i(h + emb)); return out(h).
 * Default init as PyTorch's (see layers.ts); `out` is zero-initialized unless zeroInit is false.
 */
import { Generator, Tensor, add, full, silu } from '../tensor/index.js';
import { Embedding, Linear, ModuleList, SiLU, Sequential } from './layers.js';
import { Module } from './module.js';
import { timestepEmbedding } from './unet.js';

export interface MLPConfig {
  /** Data dimension D (2 for 2-D toys). */
  dataDim: number;
  hidden: number;
  numLayers: number;
  /** Dimension of the sinusoidal time embedding. */
  timeEmbedDim: number;
  numClasses: number;
  learnSigma: boolean;
}

const MLP_DEFAULTS: MLPConfig = { dataDim: 2, hidden: 128, numLayers: 3, timeEmbedDim: 32, numClasses: 0, learnSigma: false };

export function mlpConfig(overrides: Partial<MLPConfig> = {}): MLPConfig {
  const c = { ...MLP_DEFAULTS, ...overrides };
  for (const k of ['dataDim', 'hidden', 'numLayers', 'timeEmbedDim'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`MLPConfig: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  if (!Number.isInteger(c.numClasses) || c.numClasses < 0) throw new Error(`MLPConfig: numClasses must be a non-negative integer, got ${JSON.stringify(c.numClasses)}`);
  if (typeof c.learnSigma !== 'boolean') throw new Error(`MLPConfig: learnSigma must be a boolean, got ${JSON.stringify(c.learnSigma)}`);
  const extra = Object.keys(c).filter((k) => !(k in MLP_DEFAULTS));
  if (extra.length) throw new Error(`MLPConfig: unknown field(s) ${extra.join(', ')}`);
  return c;
}

export class MLPDenoiser extends Module {
  readonly config: MLPConfig;
  readonly outDim: number;
  readonly timeEmbed: Sequential;
  readonly labelEmb: Embedding | null;
  readonly inProj: Linear;
  readonly blocks: ModuleList<Linear>;
  readonly out: Linear;

  constructor(config: Partial<MLPConfig> = {}, { seed = 0, gen, zeroInit = true }: { seed?: number; gen?: Generator; zeroInit?: boolean } = {}) {
    super();
    const c = this.config = mlpConfig(config);
    const g = gen ?? new Generator(seed);
    this.outDim = c.learnSigma ? 2 * c.dataDim : c.dataDim;
    this.timeEmbed = this.registerModule('time_embed',
      new Sequential(new Linear(c.timeEmbedDim, c.hidden, { gen: g }), new SiLU(), new Linear(c.hidden, c.hidden, { gen: g })));
    this.labelEmb = c.numClasses > 0 ? this.registerModule('label_emb', new Embedding(c.numClasses + 1, c.hidden, { gen: g })) : null;
    this.inProj = this.registerModule('in_proj', new Linear(c.dataDim, c.hidden, { gen: g }));
    this.blocks = this.registerModule('blocks', new ModuleList<Linear>());
    for (let i = 0; i < c.numLayers; i++) this.blocks.append(new Linear(c.hidden, c.hidden, { gen: g }));
    this.out = this.registerModule('out', new Linear(c.hidden, this.outDim, { gen: g }));
    if (zeroInit) {
      this.out.weight.values.fill(0);
      this.out.bias?.values.fill(0);
    }
  }

  /** x float32 [B, D], t float32 [B], classes int32 [B] (optional; numClasses = null class) → [B, D_out]. */
  forward(x: Tensor, t: Tensor, classes?: Tensor): Tensor {
    const c = this.config;
    if (x.ndim !== 2 || x.shape[1] !== c.dataDim) throw new Error(`MLPDenoiser.forward: x must be [B, ${c.dataDim}], got [${x.shape.join(', ')}]`);
    const b = x.shape[0];
    if (t.ndim !== 1 || t.shape[0] !== b) throw new Error(`MLPDenoiser.forward: t must be [${b}], got [${t.shape.join(', ')}]`);
    let emb = this.timeEmbed.forward(timestepEmbedding(t, c.timeEmbedDim));
    if (classes && !this.labelEmb) throw new Error('MLPDenoiser.forward: classes given to an unconditional model (numClasses = 0)');
    if (this.labelEmb) emb = add(emb, this.labelEmb.forward(classes ?? full([b], c.numClasses, { dtype: 'int32' })));
    let h = silu(this.inProj.forward(x));
    for (const layer of this.blocks) h = silu(layer.forward(add(h, emb)));
    return this.out.forward(h);
  }
}
