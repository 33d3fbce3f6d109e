/** Module mechanics, layers and the MLP denoiser. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import * as D from '../src/index.js';
import {
  Conv2d, Dropout, Embedding, GroupNorm, LayerNorm, Linear, MLPDenoiser, Module, ModuleList, Parameter, Sequential,
  SiLU, init, mlpConfig,
} from '../src/nn/index.js';
import { AdamW } from '../src/train/index.js';

class Block extends Module {
  readonly lin: Linear;
  readonly norm: LayerNorm;
  readonly scale: Parameter;
  constructor(gen: D.Generator) {
    super();
    this.scale = this.registerParameter('scale', init.constant([1], 2));
    this.lin = this.registerModule('lin', new Linear(4, 3, { gen }));
    this.norm = this.registerModule('norm', new LayerNorm(3));
  }
  forward(x: D.Tensor): D.Tensor {
    return D.mul(this.norm.forward(this.lin.forward(x)), this.scale);
  }
}

class Net extends Module {
  readonly blocks: ModuleList<Block>;
  readonly head: Sequential;
  constructor(gen: D.Generator) {
    super();
    this.blocks = this.registerModule('blocks', new ModuleList([new Block(gen), new Block(gen)]));
    this.head = this.registerModule('head', new Sequential(new Linear(3, 3, { gen, bias: false }), new SiLU(), new Dropout(0.5)));
  }
}

describe('Module', () => {
  test('dotted PyTorch-style names, counts, own parameters before children', () => {
    const net = new Net(new D.Generator(0));
    assert.deepEqual([...net.namedParameters()].map(([n, p]) => `${n}:${p.shape.join('x')}`), [
      'blocks.0.scale:1', 'blocks.0.lin.weight:3x4', 'blocks.0.lin.bias:3', 'blocks.0.norm.weight:3', 'blocks.0.norm.bias:3',
      'blocks.1.scale:1', 'blocks.1.lin.weight:3x4', 'blocks.1.lin.bias:3', 'blocks.1.norm.weight:3', 'blocks.1.norm.bias:3',
      'head.0.weight:3x3',
    ]);
    assert.equal(net.numParameters(), 2 * (1 + 12 + 3 + 3 + 3) + 9);
    assert.deepEqual([...net.namedModules()].map(([n]) => n),
      ['', 'blocks', 'blocks.0', 'blocks.0.lin', 'blocks.0.norm', 'blocks.1', 'blocks.1.lin', 'blocks.1.norm', 'head', 'head.0', 'head.1', 'head.2']);
    assert.ok(net.parameters().every((p) => p instanceof Parameter && p.requiresGrad));
  });

  test('train()/eval() reach every descendant; dropout is identity in eval', () => {
    const net = new Net(new D.Generator(0));
    const drop = net.head.at(2) as Dropout;
    net.eval();
    assert.ok([...net.namedModules()].every(([, m]) => !m.training));
    const x = D.ones([2, 3]);
    assert.equal(drop.forward(x), x);
    net.train();
    assert.ok(drop.training);
    const y = drop.forward(D.ones([1000]));
    assert.ok(y.toArray().every((v) => v === 0 || v === 2));
  });

  test('stateDict copies; loadStateDict writes in place and validates', () => {
    const a = new Net(new D.Generator(1)), b = new Net(new D.Generator(2));
    const sd = a.stateDict();
    const w = a.blocks.at(0).lin.weight;
    const before = sd.get('blocks.0.lin.weight')!.data.slice();
    w.values[0] += 1;
    assert.deepEqual(sd.get('blocks.0.lin.weight')!.data, before, 'stateDict is a copy');
    const arr = b.blocks.at(0).lin.weight.values;
    b.loadStateDict(sd);
    assert.equal(b.blocks.at(0).lin.weight.values, arr, 'same array after load');
    assert.deepEqual(b.blocks.at(0).lin.weight.values, before);
    const bad = a.stateDict();
    bad.set('head.0.weight', { shape: [3, 4], data: new Float32Array(12) });
    const snapshot = b.stateDict();
    assert.throws(() => b.loadStateDict(bad), /size mismatch for head\.0\.weight: the state dict has shape \[3, 4\], the model has \[3, 3\]/);
    assert.deepEqual(b.stateDict(), snapshot, 'nothing written on error');
    assert.throws(() => b.loadStateDict({}), /missing key\(s\): blocks\.0\.scale/);
  });

  test('registration errors', () => {
    class Bad extends Module {
      constructor() {
        super();
        this.registerModule('a', new SiLU());
        this.registerParameter('a', init.constant([1], 0));
      }
    }
    assert.throws(() => new Bad(), /already registered/);
  });
});

describe('layers', () => {
  test('default init families (kaiming-uniform a=√5, bias U(±1/√fan_in)), deterministic by seed', () => {
    const c = new Conv2d(16, 32, 3, { gen: new D.Generator(5) });
    const bound = 1 / Math.sqrt(16 * 9);
    const w = c.weight.toArray(), b = c.bias!.toArray();
    assert.ok(w.every((v) => Math.abs(v) <= bound) && b.every((v) => Math.abs(v) <= bound));
    const varW = w.reduce((s, v) => s + v * v, 0) / w.length;
    assert.ok(Math.abs(varW / (bound * bound / 3) - 1) < 0.05, `variance ${varW}`);
    assert.deepEqual(new Conv2d(16, 32, 3, { gen: new D.Generator(5) }).weight.toArray(), w);
    const e = new Embedding(100, 50, { gen: new D.Generator(1) }).weight.toArray();
    const ev = e.reduce((s, v) => s + v * v, 0) / e.length;
    assert.ok(Math.abs(ev - 1) < 0.05);
    const g = new GroupNorm(4, 8);
    assert.deepEqual([g.weight!.toArray(), g.bias!.toArray()], [new Array(8).fill(1), new Array(8).fill(0)]);
  });

  test('layers compute what the ops compute', () => {
    const gen = new D.Generator(9);
    const x = D.randn([2, 8, 5, 5], gen);
    const conv = new Conv2d(8, 4, 3, { stride: 2, padding: 1, gen });
    assert.deepEqual(conv.forward(x).toArray(), D.conv2d(x, conv.weight, conv.bias, { stride: 2, padding: 1 }).toArray());
    const gnS = new GroupNorm(2, 8, { silu: true }), gn = new GroupNorm(2, 8);
    const a = gnS.forward(x).toArray(), b = D.silu(gn.forward(x)).toArray();
    assert.ok(a.every((v, i) => Math.abs(v - b[i]) < 1e-5));
    const lin = new Linear(5, 3, { gen });
    const v = D.randn([4, 5], gen);
    assert.deepEqual(lin.forward(v).toArray(), D.linear(v, lin.weight, lin.bias).toArray());
    const emb = new Embedding(4, 2, { gen });
    assert.deepEqual(emb.forward(D.tensor(new Int32Array([3, 0]), [2])).toArray(),
      [...emb.weight.toArray().slice(6, 8), ...emb.weight.toArray().slice(0, 2)]);
    assert.throws(() => new GroupNorm(3, 8), /cannot be split into 3 groups/);
    assert.throws(() => new Linear(0, 3), /inFeatures must be a positive integer/);
  });
});

describe('MLPDenoiser', () => {
  test('names, shapes, zero-init output, conditioning, learned variance', () => {
    const m = new MLPDenoiser({ hidden: 16, numLayers: 2, numClasses: 3, learnSigma: true });
    assert.deepEqual([...m.namedParameters()].map(([n, p]) => `${n}:${p.shape.join('x')}`), [
      'time_embed.0.weight:16x32', 'time_embed.0.bias:16', 'time_embed.2.weight:16x16', 'time_embed.2.bias:16',
      'label_emb.weight:4x16', 'in_proj.weight:16x2', 'in_proj.bias:16', 'blocks.0.weight:16x16', 'blocks.0.bias:16',
      'blocks.1.weight:16x16', 'blocks.1.bias:16', 'out.weight:4x16', 'out.bias:4',
    ]);
    const y = m.forward(D.ones([5, 2]), D.tensor([0, 1, 2, 3, 4]), D.tensor(new Int32Array([0, 1, 2, 3, 3]), [5]));
    assert.deepEqual(y.shape, [5, 4]);
    assert.ok(y.toArray().every((v) => v === 0));
    assert.throws(() => mlpConfig({ hidden: 0 }), /hidden must be a positive integer/);
    assert.throws(() => new MLPDenoiser().forward(D.ones([1, 2]), D.tensor([1]), D.tensor(new Int32Array([0]), [1])), /unconditional/);
  });

  test('learns: 150 AdamW steps fit the noise of a fixed batch better than at the start', () => {
    const gen = new D.Generator(0);
    const m = new MLPDenoiser({ hidden: 32, numLayers: 2 }, { seed: 0 });
    const opt = new AdamW(m, { lr: 1e-2, weightDecay: 0 });
    const x0 = D.randn([64, 2], gen), noise = D.randn([64, 2], gen);
    const t = D.rand([64], gen, 0, 1000);
    const xt = D.add(D.mul(x0, 0.6), D.mul(noise, 0.8));
    const lossAt = () => D.mseLoss(m.forward(xt, t), noise);
    const first = D.noGrad(lossAt).item();
    for (let i = 0; i < 150; i++) {
      opt.zeroGrad();
      lossAt().backward();
      opt.step();
    }
    const last = D.noGrad(lossAt).item();
    assert.ok(last < 0.5 * first, `loss ${first} → ${last}`);
  });
});
