/**
 * Parity with PyTorch: every fixture in test/fixtures/ops (written by tools/gen_fixtures.py from float64
 * PyTorch references) is rebuilt with the engine's public API on every available backend; the forward
 * output and every input gradient (after backward(gout)) must match.
 *
 * Tolerance: per tensor, max|actual − expected| / max(max|expected|, 1e-6) ≤ 1e-4 — the worst absolute
 * error measured against the tensor's own scale (not elementwise relative error).
 *
 * Regenerate the fixtures with: /usr/bin/python3 tools/gen_fixtures.py
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import * as D from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { normalizedMaxError, worstElement } from './helpers/compare.js';
import { engineBackends } from './helpers/backends.js';
import { BUILDERS, block, fixtureNames, loadFixture, makeInputs, type Fixture } from './helpers/fixtures.js';

const TOL = 1e-4;
const names = fixtureNames();

async function check(label: string, actual: Tensor | null | undefined, expected: { shape: number[]; data: ArrayLike<number> },
  problems: string[], tol: number): Promise<number> {
  if (!actual) {
    problems.push(`${label}: missing (no gradient computed)`);
    return Infinity;
  }
  if (actual.shape.join(',') !== expected.shape.join(',')) {
    problems.push(`${label}: shape [${actual.shape.join(', ')}], expected [${expected.shape.join(', ')}]`);
    return Infinity;
  }
  const a = Array.from(await actual.read());
  const err = normalizedMaxError(a, expected.data);
  if (!(err <= tol)) problems.push(`${label}: error ${err.toExponential(2)} > ${tol} (${worstElement(a, expected.data)})`);
  return err;
}

async function runFixture(fx: Fixture, build: (x: Record<string, Tensor>, args: Record<string, any>) => Tensor | Tensor[], tol: number):
  Promise<{ problems: string[]; worst: number }> {
  const inputs = makeInputs(fx);
  const result = build(inputs, fx.args);
  const outs = Array.isArray(result) ? result : [result];
  const problems: string[] = [];
  let worst = 0;
  if (outs.length !== fx.outs.length) {
    return { problems: [`op returned ${outs.length} outputs, expected ${fx.outs.length}`], worst: Infinity };
  }
  for (const [i, o] of outs.entries()) worst = Math.max(worst, await check(outs.length > 1 ? `out.${i}` : 'out', o, fx.outs[i], problems, tol));
  if (fx.grads.size > 0) {
    outs.forEach((o, i) => {
      const g = fx.gouts[i];
      if (o.requiresGrad) o.backward(D.tensor(Float32Array.from(g.data), g.shape));
    });
    for (const [name, ref] of fx.grads) {
      worst = Math.max(worst, await check(`grad.${name}`, inputs[name].grad, ref, problems, tol));
    }
  }
  return { problems, worst };
}

test('every fixture op has a builder', () => {
  assert.ok(names.length > 0, 'no fixtures found: run /usr/bin/python3 tools/gen_fixtures.py');
  const missing = names.map(loadFixture).filter((fx) => !BUILDERS[fx.op]).map((fx) => `${fx.name} (op ${fx.op})`);
  assert.deepEqual(missing, []);
});

const backends = await engineBackends();
// Every backend as it is, and with its fused kernels switched off (the primitives only: every composite
// written out); WebGPU reorders float sums, hence its wider tolerance.
const variants = backends.flatMap((name) => [{ name, fused: true }, { name, fused: false }]);

for (const { name: backendName, fused } of variants) {
  const label = fused ? backendName : `${backendName}, primitives only`;
  const tol = backendName === 'webgpu' ? 2e-4 : TOL;
  describe(`parity vs PyTorch [${label}]`, () => {
    for (const name of names) {
      test(name, async (t) => {
        D.setBackend(backendName, { fused });
        const fx = loadFixture(name);
        const build = BUILDERS[fx.op];
        assert.ok(build, `no builder for op ${fx.op}`);
        const { problems, worst } = await runFixture(fx, build, tol);
        t.diagnostic(`max normalized error ${worst.toExponential(2)}`);
        assert.ok(problems.length === 0, `${label} ${name} (op ${fx.op}):\n  ${problems.join('\n  ')}`);
      });
    }
    // The block again, with the engine's groupNorm+SiLU and scaledDotProductAttention.
    if (names.includes('block')) {
      test('block (groupNorm+SiLU, scaledDotProductAttention)', async (t) => {
        D.setBackend(backendName, { fused });
        const fx = loadFixture('block');
        const { problems, worst } = await runFixture(fx, (x, a) => block(x, a, true), tol);
        t.diagnostic(`max normalized error ${worst.toExponential(2)}`);
        assert.ok(problems.length === 0, `${label} block fused:\n  ${problems.join('\n  ')}`);
      });
    }
  });
}
