/**
 * Engine benchmark: diffuse's native backend against PyTorch CPU, side by side in one run.
 *
 * Both sides run the same workloads with the same thread count, alternating rounds so that machine
 * noise hits both; we report medians, the ratio ours / PyTorch (< 1 means faster) and GFLOP/s.
 * The peer gets its fair setting: OPENBLAS_NUM_THREADS=1 so torch uses its own pool only.
 * Everything runs twice: with OPENBLAS_CORETYPE unset (as on a user's machine) and as the environment has it.
 * The sgemm peer "OpenBLAS called directly" (bench/sgemm_openblas.c) needs libopenblas-dev — for this benchmark
 * only: the addon has its own GEMM and links no BLAS.
 *
 * Usage: npx tsx bench/engine.ts [--threads 2] [--reps 10] [--rounds 3] [--python /usr/bin/python3]
 *        npx tsx bench/engine.ts --sgemm-only --rounds 9   (only the sgemm pairing: ours against OpenBLAS called
 *        directly, back to back in each round; the per-round ratios' median is the figure that resists noise)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    reps: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    python: { type: 'string', default: '/usr/bin/python3' },
    'sgemm-only': { type: 'boolean', default: false },
  },
});
const threads = Number(opt.threads), reps = Number(opt.reps), rounds = Number(opt.rounds), sgemmOnly = opt['sgemm-only']!;

const B = 64;
const convFlops = (c: number, hw: number) => 3 * 2 * B * c * c * 9 * hw * hw; // forward + dX + dW
const attnFlops = (t: number, c: number) => 3 * (2 * B * t * c * 4 * c + 2 * 2 * B * t * t * c); // projections + QKᵀ + PV, ×3 for backward
const gnElems = B * 128 * 28 * 28;
const CASES: Record<string, { label: string; flops: number }> = {
  sgemm_1024: { label: '(a) sgemm 1024³', flops: 2 * 1024 ** 3 },
  conv3x3_b64_c64_28: { label: '(b) conv3×3 fwd+bwd B64 C64 28×28', flops: convFlops(64, 28) },
  conv3x3_b64_c128_14: { label: '(b) conv3×3 fwd+bwd B64 C128 14×14', flops: convFlops(128, 14) },
  groupnorm_silu_b64_c128_28: { label: '(c) groupnorm+SiLU fwd+bwd B64 C128 28×28', flops: 30 * gnElems },
  attention_b64_t196_c128: { label: '(d) self-attention fwd+bwd B64 196 tok C128', flops: attnFlops(196, 128) },
};

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

function envWith(coretype: string | undefined, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (coretype === undefined) delete env.OPENBLAS_CORETYPE; else env.OPENBLAS_CORETYPE = coretype;
  return env;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Record<string, number[]> {
  const out = execFileSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

function compileOpenblasBaseline(): string {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-bench-'));
  const exe = join(dir, 'sgemm_openblas');
  try {
    execFileSync('cc', ['-O2', '-o', exe, 'bench/sgemm_openblas.c', '-I/usr/include/x86_64-linux-gnu', '-I/usr/include/openblas', '-lopenblas'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    console.error(`bench/engine.ts: cannot build the OpenBLAS peer (bench/sgemm_openblas.c): ${(e as Error).message.split('\n')[0]}\n(Debian/Ubuntu: apt-get install libopenblas-dev)`);
    process.exit(1);
  }
  return exe;
}

function measure(coretype: string | undefined) {
  const ours: Record<string, number[]> = {}, torch: Record<string, number[]> = {}, blas: number[] = [];
  const pairs: number[] = [];  // per round: median ours sgemm / median direct OpenBLAS, run back to back
  const add = (acc: Record<string, number[]>, r: Record<string, number[]>) => { for (const [k, v] of Object.entries(r)) (acc[k] ??= []).push(...v); };
  const exe = compileOpenblasBaseline();
  for (let r = 0; r < rounds; r++) {
    add(ours, run(process.execPath, ['--import', 'tsx', 'bench/engine_ours.ts', String(reps), ...(sgemmOnly ? ['sgemm_1024'] : [])],
      envWith(coretype, { DIFFUSE_BACKEND: 'native', DIFFUSE_NUM_THREADS: String(threads) })));
    if (!sgemmOnly) {
      add(torch, run(opt.python!, ['bench/engine_torch.py', String(threads), String(reps)],
        envWith(coretype, { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: String(threads) })));
    }
    const b = JSON.parse(execFileSync(exe, [String(reps)], { env: envWith(coretype, { OPENBLAS_NUM_THREADS: String(threads) }), encoding: 'utf8' })) as number[];
    blas.push(...b);
    pairs.push(median(ours.sgemm_1024.slice(-reps)) / median(b));
  }
  return { ours, torch, blas, pairs };
}

function report(title: string, m: ReturnType<typeof measure>) {
  console.log(`\n## ${title}\n`);
  if (!sgemmOnly) {
    console.log('| workload | ours (ms) | PyTorch (ms) | ratio ours/PyTorch | ours GFLOP/s | PyTorch GFLOP/s |');
    console.log('|---|---:|---:|---:|---:|---:|');
  }
  for (const [k, { label, flops }] of Object.entries(CASES)) {
    if (!m.torch[k]) continue;
    const o = median(m.ours[k]), t = median(m.torch[k]);
    console.log(`| ${label} | ${(o * 1e3).toFixed(2)} | ${(t * 1e3).toFixed(2)} | ${(o / t).toFixed(3)} | ${(flops / o / 1e9).toFixed(1)} | ${(flops / t / 1e9).toFixed(1)} |`);
  }
  const o = median(m.ours.sgemm_1024), b = median(m.blas);
  console.log(`\nsgemm 1024³ vs OpenBLAS called directly (its own ${threads}-thread pool): ours ${(o * 1e3).toFixed(2)} ms, OpenBLAS ${(b * 1e3).toFixed(2)} ms, ratio ${(o / b).toFixed(3)} (${(2 * 1024 ** 3 / b / 1e9).toFixed(1)} GFLOP/s direct); ` +
    `per-round ratios (each pair run back to back) ${m.pairs.map((r) => r.toFixed(3)).join(', ')}, median ${median(m.pairs).toFixed(3)}`);
}

console.log(`# diffuse engine benchmark — ${threads} threads, ${rounds} rounds × ${reps} reps, medians`);
const ourGemm = execFileSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/backends/native/index.ts').then((m) => console.log(m.nativeInfo().gemm))"], { encoding: 'utf8' }).trim();
console.log(`CPU: ${execFileSync('sh', ['-c', "lscpu | sed -n 's/^Model name: *//p'"], { encoding: 'utf8' }).trim()}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores; ours: ${ourGemm}; PyTorch ${execFileSync(opt.python!, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim()}`);
report('OPENBLAS_CORETYPE unset (as on a user\'s machine)', measure(undefined));
const envCore = process.env.OPENBLAS_CORETYPE;
report(`OPENBLAS_CORETYPE as the environment sets it (${envCore ?? 'unset here'}; forced to Haswell when unset)`, measure(envCore ?? 'Haswell'));
