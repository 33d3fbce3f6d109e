/**
 * The UNet against its PyTorch transcription (bench/unet_torch.py): fixtures from tools/gen_unet_fixture.py
 * hold a state dict, inputs, the float64 reference output and the gradients of sum(out · r) with respect to
 * every parameter and the input. On every available backend the output and all gradients must match within
 * 1e-4 (max |actual − expected| / max |expected|, per tensor). Also: parameter names and shapes equal
 * PyTorch's (fixture configs and the three presets), state dict ↔ safetensors round trip, config JSON.
 *
 * Regenerate the fixtures with: /usr/bin/python3 tools/gen_unet_fixture.py
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as D from '../src/index.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsContents } from '../src/io/safetensors.js';
import {
  GroupNorm, UNet, describeModel, normGroupsFor, presetNormGroups, unetConfigFromJSON, unetNormChannels, unetPreset,
} from '../src/nn/index.js';
import { normalizedMaxError, worstElement } from './helpers/compare.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'unet');
const TOL = 1e-4;

function load(name: string): SafetensorsContents {
  return parseSafetensors(readFileSync(join(DIR, `${name}.safetensors`)), { name });
}

function stateFrom(fx: SafetensorsContents): Map<string, { shape: number[]; data: Float32Array }> {
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of fx.tensors) if (k.startsWith('param.')) m.set(k.slice(6), { shape: t.shape, data: t.data as Float32Array });
  return m;
}

function modelFrom(fx: SafetensorsContents): UNet {
  const model = new UNet(unetConfigFromJSON(fx.metadata.config));
  model.loadStateDict(stateFrom(fx));
  return model.eval();
}

function get(fx: SafetensorsContents, name: string) {
  const t = fx.tensors.get(name);
  assert.ok(t, `fixture lacks ${name}`);
  return t;
}

function runCase(name: string): { worst: number; problems: string[] } {
  const fx = load(name);
  const model = modelFrom(fx);
  const xs = get(fx, 'in.x'), ts = get(fx, 'in.t');
  const x = D.tensor(Float32Array.from(xs.data), xs.shape, { requiresGrad: true });
  const t = D.tensor(Float32Array.from(ts.data), ts.shape);
  const cs = fx.tensors.get('in.classes');
  const classes = cs ? D.tensor(Int32Array.from(cs.data), cs.shape) : undefined;
  const out = model.forward(x, t, classes);
  const problems: string[] = [];
  let worst = 0;
  const check = (label: string, actual: D.Tensor | null, ref: { shape: number[]; data: ArrayLike<number> }) => {
    if (!actual) { problems.push(`${label}: no gradient`); return; }
    if (actual.shape.join() !== ref.shape.join()) { problems.push(`${label}: shape [${actual.shape}] vs [${ref.shape}]`); return; }
    const a = actual.toArray(), err = normalizedMaxError(a, ref.data);
    worst = Math.max(worst, err);
    if (!(err <= TOL)) problems.push(`${label}: error ${err.toExponential(2)} (${worstElement(a, ref.data)})`);
  };
  check('out', out, get(fx, 'out'));
  const r = get(fx, 'gout');
  out.backward(D.tensor(Float32Array.from(r.data), r.shape));
  check('grad.x', x.grad, get(fx, 'grad.x'));
  let nGrads = 0;
  for (const [pname, p] of model.namedParameters()) {
    check(`grad.${pname}`, p.grad, get(fx, `grad.${pname}`));
    nGrads++;
  }
  assert.ok(nGrads > 50);
  return { worst, problems };
}

describe('UNet parameter names and shapes equal PyTorch', () => {
  for (const name of ['tiny', 'avgpool']) {
    test(`fixture config ${name}`, () => {
      const fx = load(name);
      const ours = [...new UNet(unetConfigFromJSON(fx.metadata.config)).namedParameters()].map(([n, p]) => [n, [...p.shape]]);
      assert.deepEqual(ours, JSON.parse(fx.metadata.param_shapes)); // same names, shapes and order
    });
  }
  test('presets tiny / small / base (numClasses 10)', () => {
    const presets = JSON.parse(load('tiny').metadata.presets) as Record<string, [string, number[]][]>;
    for (const p of ['tiny', 'small', 'base'] as const) {
      const ours = [...new UNet(unetPreset(p, { numClasses: 10 }), { zeroInit: false }).namedParameters()].map(([n, q]) => [n, [...q.shape]]);
      assert.deepEqual(ours, presets[p], p);
    }
  });
});

for (const backendName of D.availableBackends()) {
  describe(`UNet vs PyTorch [${backendName}]`, () => {
    for (const name of ['tiny', 'avgpool']) {
      test(`${name}: output and every gradient`, (t) => {
        D.setBackend(backendName);
        const { worst, problems } = runCase(name);
        t.diagnostic(`max normalized error ${worst.toExponential(2)}`);
        assert.deepEqual(problems, []);
      });
    }
  });
}

describe('UNet state dict and config', () => {
  test('stateDict → safetensors bytes → loadStateDict reproduces the output', () => {
    D.setBackend('js'); // host arrays: "keep their arrays" is about the very Float32Arrays
    const cfg = unetPreset('tiny', { modelChannels: 8, imageSize: 8, numClasses: 2, dropout: 0 });
    const a = new UNet(cfg, { seed: 1, zeroInit: false }).eval();
    const b = new UNet(cfg, { seed: 2, zeroInit: false }).eval();
    const gen = new D.Generator(3);
    const x = D.randn([2, 1, 8, 8], gen), t = D.tensor([10, 500]), c = D.tensor(new Int32Array([1, 2]), [2]);
    const ya = D.noGrad(() => a.forward(x, t, c)).toArray();
    assert.notDeepEqual(D.noGrad(() => b.forward(x, t, c)).toArray(), ya);
    const bytes = serializeSafetensors(a.stateDict(), { config: JSON.stringify(a.config) });
    const parsed = parseSafetensors(bytes);
    const weightsBefore = b.parameters().map((p) => p.values);
    b.loadStateDict(parsed.tensors);
    assert.ok(b.parameters().every((p, i) => p.values === weightsBefore[i]), 'parameters keep their arrays');
    assert.deepEqual(D.noGrad(() => b.forward(x, t, c)).toArray(), ya);
    assert.deepEqual(unetConfigFromJSON(parsed.metadata.config), cfg);
  });

  test('loadStateDict errors name the parameter and both shapes; strict off tolerates missing keys', () => {
    const m = new UNet(unetPreset('tiny', { modelChannels: 8, imageSize: 8 }));
    const sd = m.stateDict();
    sd.set('conv_in.weight', { shape: [8, 1, 3, 1], data: new Float32Array(24) });
    assert.throws(() => m.loadStateDict(sd), /size mismatch for conv_in\.weight: the state dict has shape \[8, 1, 3, 1\], the model has \[8, 1, 3, 3\]/);
    const sd2 = m.stateDict();
    sd2.delete('conv_out.bias');
    sd2.set('extra.weight', { shape: [1], data: new Float32Array(1) });
    assert.throws(() => m.loadStateDict(sd2), /missing key\(s\): conv_out\.bias.*unexpected key\(s\): extra\.weight/);
    const r = m.loadStateDict(sd2, { strict: false });
    assert.deepEqual(r, { missing: ['conv_out.bias'], unexpected: ['extra.weight'] });
  });

  test('config JSON round trip and validation', () => {
    const cfg = unetPreset('small', { inChannels: 3, imageSize: 32, numClasses: 10, learnSigma: true });
    assert.deepEqual(unetConfigFromJSON(JSON.stringify(cfg)), cfg);
    assert.throws(() => unetConfigFromJSON({ ...cfg, bogus: 1 }), /unknown field\(s\) bogus/);
    assert.throws(() => unetConfigFromJSON({ ...cfg, imageSize: 30 }), /divisible by 4/);
    assert.throws(() => unetConfigFromJSON({ ...cfg, attentionLevels: [3] }), /attentionLevels/);
    assert.throws(() => unetConfigFromJSON({ ...cfg, numHeads: 5 }), /heads/);
    assert.deepEqual([32, 64, 96, 128, 256, 8].map((c) => normGroupsFor(c)), [8, 16, 24, 32, 32, 2]);
  });

  test('group counts: the presets use one count for every norm; a config without normGroupRule keeps the per-channel rule', () => {
    const groupsOf = (m: UNet) => {
      const g = new Map<number, Set<number>>();
      for (const [, mod] of m.namedModules()) {
        if (mod instanceof GroupNorm) (g.get(mod.numChannels) ?? g.set(mod.numChannels, new Set()).get(mod.numChannels)!).add(mod.numGroups);
      }
      return Object.fromEntries([...g].sort((a, b) => a[0] - b[0]).map(([c, s]) => [c, [...s]]));
    };
    // The default `diffuse train` model (tiny, class-conditional): 8 groups in every norm.
    const tiny = unetPreset('tiny', { numClasses: 10 });
    assert.deepEqual(unetNormChannels(tiny), [32, 64, 96, 128]);
    assert.deepEqual(groupsOf(new UNet(tiny)), { 32: [8], 64: [8], 96: [8], 128: [8] });
    assert.deepEqual(groupsOf(new UNet(unetPreset('small'))), { 64: [16], 128: [16], 192: [16], 256: [16] });
    assert.deepEqual(groupsOf(new UNet(unetPreset('base'))), { 128: [32], 256: [32], 384: [32], 512: [32] });
    // A run saved before normGroupRule existed: its config (normGroups 32, no rule) builds the model it trained.
    const { normGroupRule: _, ...old } = { ...tiny, normGroups: 32 };
    const oldCfg = unetConfigFromJSON(JSON.stringify(old));
    assert.equal(oldCfg.normGroupRule, undefined);
    assert.deepEqual(JSON.parse(JSON.stringify(oldCfg)), old, 'an old config round-trips as it was written');
    assert.deepEqual(groupsOf(new UNet(oldCfg)), { 32: [8], 64: [16], 96: [24], 128: [32] });
    assert.deepEqual(groupsOf(new UNet({ ...oldCfg, normGroupRule: 'perChannel' })), groupsOf(new UNet(oldCfg)));
    // The parameter count does not depend on the rule (GroupNorm's affine is per channel).
    assert.equal(new UNet(oldCfg).numParameters(), new UNet(tiny).numParameters());
    assert.deepEqual(unetConfigFromJSON(JSON.stringify(tiny)), tiny);
    // A fixed count must divide every norm's channels; one line naming the field.
    for (const g of [3, 12, 64]) {
      assert.throws(() => unetPreset('tiny', { normGroups: g }), (e: Error) => /^UNetConfig: normGroups \d+ must divide the channel count of every norm \(32, 64, 96, 128\), and does not divide \d+$/.test(e.message));
    }
    assert.throws(() => unetConfigFromJSON({ ...tiny, normGroupRule: 'auto' }), /normGroupRule must be 'fixed' or 'perChannel', got "auto"/);
    assert.throws(() => unetConfigFromJSON({ ...tiny, normGroups: 4096 }), /normGroups must be at most 1024/);
    // A preset narrowed without a group count gets the largest that keeps ≥ 4 channels a group (8 channels: 2).
    assert.equal(unetPreset('tiny', { modelChannels: 8, channelMult: [1, 2], attentionLevels: [1] }).normGroups, 2);
    assert.equal(presetNormGroups(unetPreset('base')), 32);
    assert.equal(unetPreset('tiny', { normGroups: 16 }).normGroups, 16);
    assert.equal(unetPreset('tiny', { normGroups: 32 }).normGroups, 32);
  });

  test('forward checks its inputs; 28×28 runs through 28 → 14 → 7 and back', () => {
    const m = new UNet(unetPreset('tiny', { modelChannels: 8, numClasses: 10, learnSigma: true })).eval();
    const x = D.zeros([1, 1, 28, 28]);
    const y = D.noGrad(() => m.forward(x, D.tensor([3])));
    assert.deepEqual(y.shape, [1, 2, 28, 28]);
    assert.throws(() => m.forward(D.zeros([1, 1, 30, 30]), D.tensor([3])), /divisible by 4/);
    assert.throws(() => m.forward(x, D.tensor([3, 4])), /t must be float32 \[1\]/);
    assert.throws(() => m.forward(x, D.tensor([3]), D.tensor([1])), /classes must be int32/);
    assert.throws(() => m.forward(x, D.tensor([3]), D.tensor(new Int32Array([11]))), /out of range/);
  });

  test('zero-init: a fresh model outputs zeros; describeModel counts parameters', () => {
    const m = new UNet(unetPreset('tiny', { numClasses: 10 }));
    const y = D.noGrad(() => m.eval().forward(D.randn([1, 1, 28, 28], new D.Generator(0)), D.tensor([100])));
    assert.ok(y.toArray().every((v) => v === 0));
    const text = describeModel(m);
    assert.match(text, /^UNet: 1,114,209 parameters/);
    assert.equal(m.numParameters(), 1114209);
  });
});
