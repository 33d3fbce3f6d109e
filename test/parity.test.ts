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
import { BUILDERS, block, fixtureNames, loadFixture, makeInputs, type Fixture } from './helpers/fixtures.js';

const TOL = 1e-4;
const names = fixtureNames();

function check(label: string, actual: Tensor | null | undefined, expected: { shape: number[]; data: ArrayLike<number> },
  problems: string[]): number {
  if (!actual) {
    problems.push(`${label}: missing (no gradient computed)`);
    return Infinity;
  }
  if (actual.shape.join(',') !== expected.shape.join(',')) {
    problems.push(`${label}: shape [${actual.shape.join(', ')}], expected [${expected.shape.join(', ')}]`);
    return Infinity;
  }
  const a = actual.toArray();
  const err = normalizedMaxError(a, expected.data);
  if (!(err <= TOL)) problems.push(`${label}: error ${err.toExponential(2)} > ${TOL} (${worstElement(a, expected.data)})`);
  return err;
}

function runFixture(fx: Fixture, build: (x: Record<string, Tensor>, args: Record<string, any>) => Tensor | Tensor[]):
  { problems: string[]; worst: number } {
  const inputs = makeInputs(fx);
  const result = build(inputs, fx.args);
  const outs = Array.isArray(result) ? result : [result];
  const problems: string[] = [];
  let worst = 0;
  if (outs.length !== fx.outs.length) {
    return { problems: [`op returned ${outs.length} outputs, expected ${fx.outs.length}`], worst: Infinity };
  }
  outs.forEach((o, i) => { worst = Math.max(worst, check(outs.length > 1 ? `out.${i}` : 'out', o, fx.outs[i], problems)); });
  if (fx.grads.size > 0) {
    outs.forEach((o, i) => {
      const g = fx.gouts[i];
      if (o.requiresGrad) o.backward(D.tensor(Float32Array.from(g.data), g.shape));
    });
    for (const [name, ref] of fx.grads) {
      worst = Math.max(worst, check(`grad.${name}`, inputs[name].grad, ref, problems));
    }
  }
  return { problems, worst };
}

test('every fixture op has a builder', () => {
  assert.ok(names.length > 0, 'no fixtures found: run /usr/bin/python3 tools/gen_fixtures.py');
  const missing = names.map(loadFixture).filter((fx) => !BUILDERS[fx.op]).map((fx) => `${fx.name} (op ${fx.op})`);
  assert.deepEqual(missing, []);
});

for (const backendName of D.availableBackends()) {
  describe(`parity vs PyTorch [${backendName}]`, () => {
    for (const name of names) {
      test(name, (t) => {
        D.setBackend(backendName);
        const fx = loadFixture(name);
        const build = BUILDERS[fx.op];
        assert.ok(build, `no builder for op ${fx.op}`);
        const { problems, worst } = runFixture(fx, build);
        t.diagnostic(`max normalized error ${worst.toExponential(2)}`);
        assert.ok(problems.length === 0, `${backendName} ${name} (op ${fx.op}):\n  ${problems.join('\n  ')}`);
      });
    }
    // The block again, with the engine's fused groupNorm+SiLU and scaledDotProductAttention.
    if (names.includes('block')) {
      test('block (fused groupNorm+SiLU, scaledDotProductAttention)', (t) => {
        D.setBackend(backendName);
        const fx = loadFixture('block');
        const { problems, worst } = runFixture(fx, (x, a) => block(x, a, true));
        t.diagnostic(`max normalized error ${worst.toExponential(2)}`);
        assert.ok(problems.length === 0, `${backendName} block fused:\n  ${problems.join('\n  ')}`);
      });
    }
  });
}
