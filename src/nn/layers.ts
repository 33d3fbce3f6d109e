/**
 * Layers with torch.nn's parameter names, layouts and default initialization:
 * Linear / Conv2d weights kaiming-uniform (a = √5, i.e. U(±1/√fan_in)), biases U(±1/√fan_in);
 * norms weight 1, bias 0; Embedding N(0, 1).
 */
import {
  Generator, type GroupNormConv2dOptions, Tensor, conv2d, defaultGenerator, dropout, embedding, groupNorm, groupNormConv2d,
  layerNorm, linear, silu,
} from '../tensor/index.js';
import { Module, Parameter, init, type UnaryModule } from './module.js';

export interface InitOptions {
  /** Source of the initial values (default: the engine's default generator). */
  gen?: Generator;
}

export class Linear extends Module implements UnaryModule {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number,
    { bias = true, gen = defaultGenerator }: InitOptions & { bias?: boolean } = {}) {
    super();
    checkPositive('Linear', { inFeatures, outFeatures });
    this.weight = this.registerParameter('weight', init.kaimingUniform([outFeatures, inFeatures], gen));
    this.bias = this.registerParameter('bias', bias ? init.uniform([outFeatures], 1 / Math.sqrt(inFeatures), gen) : null);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export interface Conv2dLayerOptions extends InitOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
}

export class Conv2d extends Module implements UnaryModule {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly padding: number;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number,
    { stride = 1, padding = 0, bias = true, gen = defaultGenerator }: Conv2dLayerOptions = {}) {
    super();
    checkPositive('Conv2d', { inChannels, outChannels, kernelSize, stride });
    this.stride = stride;
    this.padding = padding;
    const fanIn = inChannels * kernelSize * kernelSize;
    this.weight = this.registerParameter('weight', init.kaimingUniform([outChannels, inChannels, kernelSize, kernelSize], gen));
    this.bias = this.registerParameter('bias', bias ? init.uniform([outChannels], 1 / Math.sqrt(fanIn), gen) : null);
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

/** torch.nn.GroupNorm(numGroups, numChannels, eps, affine); `silu: true` applies SiLU in the same kernel. */
export class GroupNorm extends Module implements UnaryModule {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly eps: number;
  readonly silu: boolean;

  constructor(readonly numGroups: number, readonly numChannels: number,
    { eps = 1e-5, affine = true, silu: fuseSilu = false }: { eps?: number; affine?: boolean; silu?: boolean } = {}) {
    super();
    checkPositive('GroupNorm', { numGroups, numChannels });
    if (numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm: ${numChannels} channels cannot be split into ${numGroups} groups`);
    }
    this.eps = eps;
    this.silu = fuseSilu;
    this.weight = this.registerParameter('weight', affine ? init.constant([numChannels], 1) : null);
    this.bias = this.registerParameter('bias', affine ? init.constant([numChannels], 0) : null);
  }

  forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, this.weight, this.bias, { eps: this.eps, silu: this.silu });
  }
}

/** conv.forward(norm.forward(x)) (+ imageBias [N, O], + residual) as one op (groupNormConv2d): the normalized
 *  tensor is not stored where the backend can apply the norm as the convolution reads its input. */
export function normThenConv(norm: GroupNorm, conv: Conv2d, x: Tensor,
  { imageBias, residual }: Pick<GroupNormConv2dOptions, 'imageBias' | 'residual'> = {}): Tensor {
  return groupNormConv2d(x, norm.numGroups, norm.weight, norm.bias, { eps: norm.eps, silu: norm.silu },
    conv.weight, conv.bias, { stride: conv.stride, padding: conv.padding, imageBias, residual });
}

/** torch.nn.LayerNorm over the last axis. */
export class LayerNorm extends Module implements UnaryModule {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly eps: number;

  constructor(readonly normalizedShape: number,
    { eps = 1e-5, elementwiseAffine = true }: { eps?: number; elementwiseAffine?: boolean } = {}) {
    super();
    checkPositive('LayerNorm', { normalizedShape });
    this.eps = eps;
    this.weight = this.registerParameter('weight', elementwiseAffine ? init.constant([normalizedShape], 1) : null);
    this.bias = this.registerParameter('bias', elementwiseAffine ? init.constant([normalizedShape], 0) : null);
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** torch.nn.Embedding: int32 indices → rows of `weight` [num, dim]. */
export class Embedding extends Module {
  readonly weight: Parameter;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, { gen = defaultGenerator }: InitOptions = {}) {
    super();
    checkPositive('Embedding', { numEmbeddings, embeddingDim });
    this.weight = this.registerParameter('weight', init.normal([numEmbeddings, embeddingDim], 1, gen));
  }

  forward(idx: Tensor): Tensor {
    return embedding(idx, this.weight);
  }
}

/** Inverted dropout, active in training mode only; masks drawn from its own generator. */
export class Dropout extends Module implements UnaryModule {
  constructor(readonly p: number, public gen: Generator = defaultGenerator) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: probability ${p} must be in [0, 1)`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.gen);
  }
}

export class SiLU extends Module implements UnaryModule {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class Identity extends Module implements UnaryModule {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Children named 0, 1, 2, … as in torch.nn.ModuleList. */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  append(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (!m) throw new RangeError(`ModuleList: index ${i} out of range (length ${this.items.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** Children named 0, 1, 2, …, applied in order (torch.nn.Sequential). */
export class Sequential extends ModuleList<UnaryModule> implements UnaryModule {
  constructor(...modules: UnaryModule[]) {
    super(modules);
  }

  forward(x: Tensor): Tensor {
    for (const m of this) x = m.forward(x);
    return x;
  }
}

function checkPositive(layer: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${layer}: ${k} must be a positive integer, got ${v}`);
  }
}
