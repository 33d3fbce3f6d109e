// Autograd semantics, the seeded generator and bad-input errors, on every available backend.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Generator, ShapeError, Tensor, availableBackends, concat, conv2d, embedding, groupNorm, matmul, mseLoss, noGrad,
  randn, reshape, setBackend, softmax, sum, tensor, zeros,
} from '../src/index.js';

for (const name of availableBackends()) {
  describe(`engine on ${name}`, () => {
    test('gradients accumulate on leaves across backward calls and over shared uses', () => {
      setBackend(name);
      const x = tensor([1, 2, 3], [3], { requiresGrad: true });
      x.mul(x).sum().backward(); // d/dx Σx² = 2x
      assert.deepEqual(x.grad!.toArray(), [2, 4, 6]);
      x.mul(3).sum().backward(); // += 3
      assert.deepEqual(x.grad!.toArray(), [5, 7, 9]);
    });

    test('noGrad records nothing', () => {
      setBackend(name);
      const x = tensor([1, 2], [2], { requiresGrad: true });
      const y = noGrad(() => x.mul(2));
      assert.equal(y.requiresGrad, false);
      assert.equal(y.node, null);
    });

    test('backward frees the graph unless retained', () => {
      setBackend(name);
      const x = tensor([1, 2], [2], { requiresGrad: true });
      const y = x.exp();
      const s = y.sum();
      s.backward();
      assert.equal(y.node, null);
      assert.throws(() => s.backward(new Tensor(new Float32Array([1, 1]), [2])), /gradient shape \[2\] does not match output shape \[\]/);
    });

    test('broadcast gradients sum back to the input shape', () => {
      setBackend(name);
      const a = tensor([1, 2, 3, 4, 5, 6], [2, 3], { requiresGrad: true });
      const b = tensor([10, 20, 30], [3], { requiresGrad: true });
      a.mul(b).sum().backward();
      assert.deepEqual(b.grad!.toArray(), [5, 7, 9]);
      assert.deepEqual(a.grad!.toArray(), [10, 20, 30, 10, 20, 30]);
    });

    test('dispose releases data and later use throws', () => {
      setBackend(name);
      const x = zeros([4]);
      x.dispose();
      assert.throws(() => x.add(1), /was disposed/);
    });

    test('bad input names the operation and shapes before any kernel runs', () => {
      setBackend(name);
      const a = zeros([2, 3]), b = zeros([4, 5]);
      assert.throws(() => a.add(b), (e: Error) => e instanceof ShapeError && /add: shapes \[2, 3\] and \[4, 5\]/.test(e.message));
      assert.throws(() => matmul(a, b), /matmul: inner dimensions differ: \[2, 3\] · \[4, 5\]/);
      assert.throws(() => conv2d(zeros([1, 3, 8, 8]), zeros([4, 2, 3, 3])), /conv2d: weight expects 2 input channels, input has 3/);
      assert.throws(() => conv2d(zeros([1, 3, 2, 2]), zeros([4, 3, 5, 5])), /conv2d: kernel 5×5 is larger/);
      assert.throws(() => groupNorm(zeros([2, 6, 4]), 4), /groupNorm: 6 channels of \[2, 6, 4\] cannot be split into 4 groups/);
      assert.throws(() => sum(a, 2), /sum: axis 2 is out of range for a tensor of rank 2/);
      assert.throws(() => softmax(zeros([0, 3])), /softmax: zero-size tensor of shape \[0, 3\]/);
      assert.throws(() => reshape(a, [4, 2]), /reshape: cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\]/);
      assert.throws(() => concat([a, b], 0), /concat: shapes \[2, 3\], \[4, 5\] differ outside axis 0/);
      assert.throws(() => embedding(tensor([0, 7], [2], { dtype: 'int32' }), zeros([5, 2])), /embedding: index 7 is out of range for a table of 5 rows/);
      assert.throws(() => embedding(tensor([0, 1], [2]), zeros([5, 2])), /embedding: indices must be int32/);
      assert.throws(() => mseLoss(zeros([2]), zeros([3])), /mseLoss: prediction \[2\] and target \[3\] differ/);
      assert.throws(() => tensor([1, 2, 3], [2, 2]), /tensor: 3 values do not fill shape \[2, 2\]/);
      assert.throws(() => zeros([2, -1]), /zeros: invalid shape/);
      assert.throws(() => tensor([1], [1], { dtype: 'int32' }).exp(), /exp: expected a float32 tensor, got int32/);
    });
  });
}

describe('Generator', () => {
  test('same seed, same stream; different seeds differ; state round-trips', () => {
    const a = new Generator(42), b = new Generator(42), c = new Generator(43);
    const xa = randn([1000], a).toArray(), xb = randn([1000], b).toArray(), xc = randn([1000], c).toArray();
    assert.deepEqual(xa, xb);
    assert.notDeepEqual(xa, xc);
    const state = a.getState();
    const next = randn([10], a).toArray();
    const d = new Generator(0);
    d.setState(state);
    assert.deepEqual(randn([10], d).toArray(), next);
  });

  test('normal samples have mean 0 and variance 1 (200k draws, 5σ bounds)', () => {
    const x = randn([200_000], new Generator(7)).toArray();
    const m = x.reduce((s, v) => s + v, 0) / x.length;
    const v = x.reduce((s, u) => s + (u - m) ** 2, 0) / x.length;
    assert.ok(Math.abs(m) < 5 / Math.sqrt(x.length), `mean ${m}`);
    assert.ok(Math.abs(v - 1) < 5 * Math.sqrt(2 / x.length), `variance ${v}`);
  });

  test('streams are identical on every backend', () => {
    const draws = availableBackends().map((name) => {
      setBackend(name);
      return randn([64], new Generator(3)).toArray();
    });
    for (const d of draws) assert.deepEqual(d, draws[0]);
  });
});
