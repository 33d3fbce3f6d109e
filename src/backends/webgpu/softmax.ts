/** Softmax and log-softmax over rows, forward and backward: one 256-thread workgroup per row. */
import type { Backend, FStore } from '../backend.js';
import type { Helpers } from './base.js';
import type { Runtime } from './runtime.js';
import { COMMON, RED_SUM, ROW, ROWID } from './wgsl.js';

export function softmaxKernels(rt: Runtime, h: Helpers): Required<Pick<Backend<FStore>, 'softmax' | 'softmaxBackward' | 'logSoftmax' | 'logSoftmaxBackward'>> {
  const { arr, rowsOp } = h;
  const softmaxKernel = (log: boolean) => rt.kernel(`softmax:${log}`, [['d', 'u32'], ['rows', 'u32']], () => `${COMMON}${RED_SUM}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.rows) { return; }
  let base = row * P.d;
  var mx = ninf();
  for (var j = t; j < P.d; j += 256u) { mx = max(mx, x[base + j]); }
  mx = reduceMax(mx, t);
  var s = 0.0;
  for (var j = t; j < P.d; j += 256u) { s += exp(x[base + j] - mx); }
  s = reduceSum(s, t);
  ${log ? 'let lse = mx + log(s);' : ''}
  for (var j = t; j < P.d; j += 256u) { y[base + j] = ${log ? 'x[base + j] - lse' : 'exp(x[base + j] - mx) / s'}; }
}`);

  const softmaxBack = (log: boolean) => rt.kernel(`softmaxBack:${log}`, [['d', 'u32'], ['rows', 'u32']], () => `${RED_SUM}
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(${ROW}) {
  ${ROWID}
  if (row >= P.rows) { return; }
  let base = row * P.d;
  var s = 0.0;
  for (var j = t; j < P.d; j += 256u) { s += ${log ? 'dy[base + j]' : 'y[base + j] * dy[base + j]'}; }
  s = reduceSum(s, t);
  for (var j = t; j < P.d; j += 256u) { dx[base + j] = ${log ? 'dy[base + j] - exp(y[base + j]) * s' : 'y[base + j] * (dy[base + j] - s)'}; }
}`);

  return {
    softmax(x, rows, d): FStore {
      const y = rt.alloc(rows * d);
      rowsOp(softmaxKernel(false), [d, rows], [arr(x), y], rows);
      return y;
    },
    softmaxBackward(y, dy, rows, d): FStore {
      const dx = rt.alloc(rows * d);
      rowsOp(softmaxBack(false), [d, rows], [arr(y), arr(dy), dx], rows);
      return dx;
    },
    logSoftmax(x, rows, d): FStore {
      const y = rt.alloc(rows * d);
      rowsOp(softmaxKernel(true), [d, rows], [arr(x), y], rows);
      return y;
    },
    logSoftmaxBackward(y, dy, rows, d): FStore {
      const dx = rt.alloc(rows * d);
      rowsOp(softmaxBack(true), [d, rows], [arr(y), arr(dy), dx], rows);
      return dx;
    },
  };
}
