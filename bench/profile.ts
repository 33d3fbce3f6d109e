/**
 * Where a step's time goes, for `bench/unet.ts --profile`: every kernel of the running engine is wrapped with a
 * timer (in place, so the Tensor layer's calls go through it), kernels are grouped by kind, garbage collection
 * pauses come from Node's 'gc' performance entries, and what is left of the step's wall time is JavaScript:
 * the Tensor layer, autograd and the model's code, with the GC pauses (V8's entries may also cover concurrent
 * phases, so they are shown as a part of that remainder, not subtracted). Kernels are synchronous on CPU backends, so their times add up.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import type { Engine } from '../src/index.js';

/** Kernel → kind. A kernel not listed here counts as 'other'. */
const KIND: Record<string, string> = {
  conv2d: 'conv', conv2dBackwardInput: 'conv', conv2dBackwardWeight: 'conv', conv2dNormed: 'conv',
  conv2dBackwardWeightNormed: 'conv',
  matmul: 'GEMM',
  unary: 'elementwise', binary: 'elementwise', where: 'elementwise', affine: 'elementwise', powScalar: 'elementwise',
  clamp: 'elementwise', activation: 'elementwise', activationBackward: 'elementwise', upsampleNearest2x: 'elementwise',
  avgPool2x2: 'elementwise', gatherRows: 'elementwise', scatterAddRows: 'elementwise',
  stridedCopy: 'copies', reduce: 'reductions',
  groupNorm: 'norms + softmax', groupNormBackward: 'norms + softmax', groupNormStats: 'norms + softmax', layerNorm: 'norms + softmax',
  layerNormBackward: 'norms + softmax', softmax: 'norms + softmax', softmaxBackward: 'norms + softmax',
  logSoftmax: 'norms + softmax', logSoftmaxBackward: 'norms + softmax',
  adamW: 'optimizer + EMA kernels', lerpInPlace: 'optimizer + EMA kernels',
  empty: 'allocation', full: 'allocation', fromHost: 'allocation',
};

export interface Profile {
  /** kind → [ms, calls] per step */
  kinds: Map<string, [number, number]>;
  /** the costliest convolutions: 'kernel n×c×h×w → o kh×kw /stride' → [ms, calls] per step */
  convs: [string, [number, number]][];
  gcMs: number;
  jsMs: number;
  totalMs: number;
}

/** Wraps the engine's kernels once; `measure` then profiles `reps` runs of fn (after its warm-up). */
export function profiler(engine: Engine) {
  const acc = new Map<string, [number, number]>(), convAcc = new Map<string, [number, number]>();
  let on = false;
  const be = engine as unknown as Record<string, unknown>;
  for (const name of Object.keys(be)) {
    const f = be[name];
    if (typeof f !== 'function') continue;
    const kind = process.env.PROFILE_BY_KERNEL ? name : KIND[name] ?? 'other';
    be[name] = (...args: unknown[]) => {
      if (!on) return (f as (...a: unknown[]) => unknown).apply(engine, args);
      const t0 = performance.now();
      try {
        return (f as (...a: unknown[]) => unknown).apply(engine, args);
      } finally {
        const ms = performance.now() - t0;
        const e = acc.get(kind) ?? [0, 0];
        e[0] += ms;
        e[1]++;
        acc.set(kind, e);
        if (kind === 'conv') {
          const g = args.find((a) => typeof a === 'object' && a !== null && 'kh' in a) as
            { n: number; c: number; h: number; w: number; o: number; kh: number; kw: number; sh: number } | undefined;
          const key = g ? `${name} ${g.n}×${g.c}×${g.h}×${g.w} → ${g.o}, ${g.kh}×${g.kw}${g.sh > 1 ? ` /${g.sh}` : ''}` : name;
          const c = convAcc.get(key) ?? [0, 0];
          c[0] += ms;
          c[1]++;
          convAcc.set(key, c);
        }
      }
    };
  }
  return async function measure(fn: () => void, reps: number): Promise<Profile> {
    for (let i = 0; i < 3; i++) fn();
    acc.clear();
    convAcc.clear();
    let gcMs = 0;
    const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcMs += e.duration; });
    obs.observe({ entryTypes: ['gc'] });
    on = true;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const totalMs = performance.now() - t0;
    on = false;
    // GC entries are delivered asynchronously: let them arrive, then stop observing.
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const e of obs.takeRecords()) gcMs += e.duration;
    obs.disconnect();
    const kinds = new Map<string, [number, number]>();
    let kernelMs = 0;
    for (const [k, [ms, n]] of acc) { kinds.set(k, [ms / reps, n / reps]); kernelMs += ms; }
    const convs = [...convAcc].map(([k, [ms, n]]) => [k, [ms / reps, n / reps]] as [string, [number, number]])
      .sort((a, b) => b[1][0] - a[1][0]);
    return { kinds, convs, gcMs: gcMs / reps, jsMs: Math.max(0, totalMs - kernelMs) / reps, totalMs: totalMs / reps };
  };
}

/** A markdown table of one profile. */
export function profileTable(title: string, p: Profile): string {
  const rows = [...p.kinds].sort((a, b) => b[1][0] - a[1][0]);
  const pct = (ms: number) => `${((100 * ms) / p.totalMs).toFixed(1)}%`;
  const lines = [`\n### ${title}: ${p.totalMs.toFixed(1)} ms per step\n`, '| kind | ms per step | share | kernel calls per step |', '|---|---:|---:|---:|'];
  for (const [k, [ms, n]] of rows) lines.push(`| ${k} | ${ms.toFixed(1)} | ${pct(ms)} | ${n.toFixed(0)} |`);
  lines.push(`| JavaScript (Tensor layer, autograd, model code, GC) | ${p.jsMs.toFixed(1)} | ${pct(p.jsMs)} | |`);
  lines.push(`| (GC pauses V8 reports) | ${p.gcMs.toFixed(1)} | ${pct(p.gcMs)} | |`);
  lines.push('', '| costliest convolutions (input n×c×h×w → output channels, kernel) | ms per step | share | calls per step |', '|---|---:|---:|---:|');
  for (const [k, [ms, n]] of p.convs.slice(0, 10)) lines.push(`| ${k} | ${ms.toFixed(1)} | ${pct(ms)} | ${n.toFixed(0)} |`);
  return lines.join('\n');
}
