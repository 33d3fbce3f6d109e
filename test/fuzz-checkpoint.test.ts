// Mutated checkpoints: every field of checkpoint.json set to wrong types and out-of-range values, file names
// that leave the folder, symlinks, FIFOs, devices, damaged weight files, NaN weights. Each case loads in
// process with a spy on every file opened: it must load or fail with one line naming the file or field,
// open nothing outside the run folder (a canary file sits beside it), and stay within a time and memory
// bound. A sample of the cases also goes through `diffuse sample` and `diffuse info`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { loadModelFromCheckpoint, readRunCheckpoint } from '../src/train/index.js';
import { INTERNAL, resolvesInside, runCli, spyOnReads, writeMicroRun } from './helpers/hardening.js';
import { rng } from './helpers/compare.js';

const root = mkdtempSync(join(tmpdir(), 'diffuse-fuzz-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));
const CANARY = 'CANARY-7f3a9 do not read';
writeFileSync(join(root, 'canary.txt'), CANARY);
const base = join(root, 'base');
await writeMicroRun(base);
const baseText = readFileSync(join(base, 'checkpoint.json'), 'utf8');
const baseJson = JSON.parse(baseText);
const roles = Object.keys(baseJson.files) as string[];
const fileOf = (role: string) => baseJson.files[role].file as string;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

type Json = Record<string, unknown>;
interface Case { name: string; make(dir: string, json: Json): void }

/** Rewrites a weight file and records its new size and checksum (so only the content is wrong). */
function rewriteWeights(dir: string, json: Json, role: string, edit: (b: Buffer) => Buffer): void {
  const files = json.files as Record<string, { file: string; bytes: number; sha256: string }>;
  const b = edit(readFileSync(join(dir, files[role].file)));
  writeFileSync(join(dir, files[role].file), b);
  files[role].bytes = b.length;
  files[role].sha256 = sha(b);
}

/** The safetensors header of a weight file, edited, with the data kept. */
function editHeader(edit: (h: Json) => void) {
  return (b: Buffer): Buffer => {
    const n = Number(b.readBigUInt64LE(0));
    const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Json;
    edit(h);
    const hb = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hb.length));
    return Buffer.concat([len, hb, b.subarray(8 + n)]);
  };
}

const firstTensor = (h: Json) => Object.keys(h).find((k) => k !== '__metadata__')!;
/** Sets the float32 value at `index` of the first tensor's data. */
function setValue(value: number, index = 0) {
  return (b: Buffer): Buffer => {
    const n = Number(b.readBigUInt64LE(0));
    const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: number[] }>;
    const off = 8 + n + h[firstTensor(h)].data_offsets[0] + 4 * index;
    const c = Buffer.from(b);
    c.writeFloatLE(value, off);
    return c;
  };
}

// ---------------------------------------------------------------- the cases

const cases: Case[] = [];

// 1. Every leaf of config, state and files set to values of the wrong type or range (or removed).
const VALUES: unknown[] = [undefined, null, -1, 0, 0.5, 1e9, 1e300, -1e300, '', 'x', '../../canary.txt', [], [1, 2], {}, true];
function leaves(v: unknown, path: string[] = []): string[][] {
  if (v !== null && typeof v === 'object') {
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
    return entries.length ? entries.flatMap(([k, x]) => leaves(x, [...path, k])) : [path];
  }
  return [path];
}
const setAt = (obj: Json, path: string[], value: unknown) => {
  let o = obj as Record<string, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  if (value === undefined) delete o[path[path.length - 1]];
  else o[path[path.length - 1]] = value;
};
const r = rng(2024);
for (const top of ['config', 'state', 'files', 'format', 'version'] as const) {
  for (const path of leaves(baseJson[top], [top])) {
    // Every leaf gets three values from the list (a different three per leaf), so each kind is covered often.
    const picks = new Set<number>();
    while (picks.size < 3) picks.add(Math.floor(r() * VALUES.length));
    for (const i of picks) cases.push({ name: `${path.join('.')} = ${JSON.stringify(VALUES[i]) ?? 'removed'}`, make: (_d, j) => setAt(j, path, VALUES[i]) });
  }
}

// 2. Sizes that would drive huge allocations.
const huge: [string, unknown][] = [
  ['config.schedule.T', 1e9], ['config.schedule.T', 100_001], ['config.model.config.imageSize', 100_000],
  ['config.model.config.modelChannels', 1e6], ['config.model.config.modelChannels', 2048], ['config.model.config.numClasses', 1e9],
  ['config.model.config.inChannels', 1e5], ['config.model.config.numResBlocks', 1e4], ['config.model.config.channelMult', Array(100).fill(1)],
  ['config.model.config.channelMult', [64, 64, 64, 64]], ['config.model.config.numHeads', 1e7], ['config.trainer.batchSize', 1e7],
  ['config.trainer.previewCount', 1e8], ['config.trainer.steps', 1e15], ['config.schedule', { kind: 'custom', betas: Array(200_000).fill(0.01) }],
  ['files.model.bytes', 2 ** 40], ['files.model.bytes', 2 ** 53], ['state.data.n', 1e15], ['state.step', 1e15],
];
for (const [p, v] of huge) cases.push({ name: `${p} = ${JSON.stringify(v).slice(0, 40)}`, make: (_d, j) => setAt(j, p.split('.'), v) });

// 3. Weight file names that leave the folder, and files that are not what they claim.
for (const role of roles) {
  const names = ['../../canary.txt', '../canary.txt', `${root}/canary.txt`, '/etc/passwd', '/proc/self/environ', '/dev/zero', '/dev/urandom',
    '../base/' + fileOf(role), 'sub/x.safetensors', '.hidden.safetensors', '', '.', '..', 'a\u0000b', 'x'.repeat(300), 'é.safetensors',
    'C:\\windows\\win.ini', '~/x'];
  for (const n of names) cases.push({ name: `files.${role}.file = ${JSON.stringify(n).slice(0, 40)}`, make: (_d, j) => setAt(j, ['files', role, 'file'], n) });
  const f = fileOf(role);
  cases.push(
    { name: `${role}: symlink to the canary outside`, make: (d) => { rmSync(join(d, f)); symlinkSync(join(root, 'canary.txt'), join(d, f)); } },
    { name: `${role}: symlink to /dev/zero`, make: (d) => { rmSync(join(d, f)); symlinkSync('/dev/zero', join(d, f)); } },
    { name: `${role}: relative symlink out`, make: (d) => { rmSync(join(d, f)); symlinkSync('../../canary.txt', join(d, f)); } },
    { name: `${role}: dangling symlink`, make: (d) => { rmSync(join(d, f)); symlinkSync(join(d, 'nothing'), join(d, f)); } },
    { name: `${role}: symlink loop`, make: (d) => { rmSync(join(d, f)); symlinkSync(join(d, f), join(d, f)); } },
    { name: `${role}: a FIFO`, make: (d) => { rmSync(join(d, f)); execFileSync('mkfifo', [join(d, f)]); } },
    { name: `${role}: a directory`, make: (d) => { rmSync(join(d, f)); mkdirSync(join(d, f)); } },
    { name: `${role}: missing`, make: (d) => rmSync(join(d, f)) },
    { name: `${role}: truncated`, make: (d) => truncateSync(join(d, f), 100) },
    { name: `${role}: empty`, make: (d) => truncateSync(join(d, f), 0) },
    { name: `${role}: grown (sparse 8 GiB)`, make: (d) => truncateSync(join(d, f), 8 * 2 ** 30) },
    { name: `${role}: one byte changed`, make: (d) => { const b = readFileSync(join(d, f)); b[b.length - 1] ^= 1; writeFileSync(join(d, f), b); } },
    { name: `${role}: NaN weight`, make: (d, j) => rewriteWeights(d, j, role, setValue(NaN)) },
    { name: `${role}: Infinity weight`, make: (d, j) => rewriteWeights(d, j, role, setValue(Infinity, 3)) },
    { name: `${role}: all NaN`, make: (d, j) => rewriteWeights(d, j, role, (b) => { const n = Number(b.readBigUInt64LE(0)); const c = Buffer.from(b); for (let o = 8 + n; o + 4 <= c.length; o += 4) c.writeFloatLE(NaN, o); return c; }) },
    { name: `${role}: header length past the end`, make: (d, j) => rewriteWeights(d, j, role, (b) => { const c = Buffer.from(b); c.writeBigUInt64LE(2n ** 40n, 0); return c; }) },
    { name: `${role}: header not JSON`, make: (d, j) => rewriteWeights(d, j, role, (b) => { const c = Buffer.from(b); c[8] = 0x5b; c[9] = 0x7b; return c; }) },
    { name: `${role}: dtype F16`, make: (d, j) => rewriteWeights(d, j, role, editHeader((h) => { (h[firstTensor(h)] as Json).dtype = 'F16'; })) },
    { name: `${role}: dtype I32`, make: (d, j) => rewriteWeights(d, j, role, editHeader((h) => { (h[firstTensor(h)] as Json).dtype = 'I32'; })) },
    { name: `${role}: shape huge`, make: (d, j) => rewriteWeights(d, j, role, editHeader((h) => { (h[firstTensor(h)] as Json).shape = [2 ** 31, 2 ** 31]; })) },
    { name: `${role}: shape wrong`, make: (d, j) => rewriteWeights(d, j, role, editHeader((h) => { const t = h[firstTensor(h)] as Json; t.shape = [...(t.shape as number[]), 1, 1].slice(0, 2).reverse(); })) },
    { name: `${role}: offsets overflow`, make: (d, j) => rewriteWeights(d, j, role, editHeader((h) => { (h[firstTensor(h)] as Json).data_offsets = [0, 2 ** 53]; })) },
    { name: `${role}: a tensor renamed`, make: (d, j) => rewriteWeights(d, j, role, editHeader((h) => { const k = firstTensor(h); h[`${k}_x`] = h[k]; delete h[k]; })) },
    { name: `${role}: an extra tensor`, make: (d, j) => rewriteWeights(d, j, role, editHeader((h) => { h.extra = { dtype: 'F32', shape: [0], data_offsets: [0, 0] }; })) },
  );
}

// 4. checkpoint.json itself: syntax damage, wrong kinds of file.
const text = JSON.stringify(baseJson);
for (let k = 1; k <= 24; k++) {
  const at = Math.floor((text.length * k) / 25);
  cases.push({ name: `checkpoint.json cut at ${at}`, make: (d) => writeFileSync(join(d, 'checkpoint.json'), text.slice(0, at)) });
}
for (let k = 0; k < 24; k++) {
  const at = Math.floor(r() * text.length), ch = String.fromCharCode(32 + Math.floor(r() * 94));
  cases.push({ name: `checkpoint.json char ${at} → ${JSON.stringify(ch)}`, make: (d) => writeFileSync(join(d, 'checkpoint.json'), text.slice(0, at) + ch + text.slice(at + 1)) });
}
for (const [name, content] of [['an array', '[]'], ['a number', '1'], ['a string', '"x"'], ['null', 'null'], ['empty', ''], ['binary', '\u0000\u0001\u0002'],
  ['deep nesting', '['.repeat(100_000)], ['BOM', `\ufeff${text}`]] as const) {
  cases.push({ name: `checkpoint.json is ${name}`, make: (d) => writeFileSync(join(d, 'checkpoint.json'), content) });
}
cases.push(
  { name: 'checkpoint.json is a FIFO', make: (d) => { rmSync(join(d, 'checkpoint.json')); execFileSync('mkfifo', [join(d, 'checkpoint.json')]); } },
  { name: 'checkpoint.json is a directory', make: (d) => { rmSync(join(d, 'checkpoint.json')); mkdirSync(join(d, 'checkpoint.json')); } },
  { name: 'checkpoint.json links to /dev/zero', make: (d) => { rmSync(join(d, 'checkpoint.json')); symlinkSync('/dev/zero', join(d, 'checkpoint.json')); } },
  { name: 'checkpoint.json links to the canary', make: (d) => { rmSync(join(d, 'checkpoint.json')); symlinkSync(join(root, 'canary.txt'), join(d, 'checkpoint.json')); } },
  { name: 'checkpoint.json is 100 MiB (sparse)', make: (d) => truncateSync(join(d, 'checkpoint.json'), 100 * 2 ** 20) },
  { name: 'checkpoint.json missing', make: (d) => rmSync(join(d, 'checkpoint.json')) },
  { name: 'version -1', make: (_d, j) => { j.version = -1; } },
  { name: 'version 2', make: (_d, j) => { j.version = 2; } },
  { name: 'version "1"', make: (_d, j) => { j.version = '1'; } },
  { name: 'unknown objective.variance', make: (_d, j) => { ((j.config as Json).objective as Json).variance = 'learnedSomething'; } },
  { name: 'learnedRange without learnSigma', make: (_d, j) => { ((j.config as Json).objective as Json).variance = 'learnedRange'; } },
  { name: 'unknown config field', make: (_d, j) => { (j.config as Json).extra = 1; } },
  { name: 'unknown model config field', make: (_d, j) => { (((j.config as Json).model as Json).config as Json).evil = 1; } },
  { name: 'the unchanged run (loads)', make: () => undefined },
);

// ---------------------------------------------------------------- running them

interface Outcome { name: string; dir: string; error?: string; ms: number; outside: string[] }

function runCase(c: Case, i: number, load: (dir: string) => void): Outcome {
  const caseRoot = join(root, 'cases', String(i));
  const dir = join(caseRoot, 'run');
  mkdirSync(caseRoot, { recursive: true });
  cpSync(base, dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')) as Json;
  c.make(dir, json);
  // Cases that edit the parsed JSON get it written back; cases that replaced the file keep theirs.
  const jsonPath = join(dir, 'checkpoint.json');
  if (existsSync(jsonPath) && lstatSync(jsonPath).isFile() && readFileSync(jsonPath, 'utf8') === baseText) {
    writeFileSync(jsonPath, JSON.stringify(json, null, 1));
  }
  const spy = spyOnReads();
  const t0 = performance.now();
  let error: string | undefined;
  try {
    load(dir);
  } catch (e) {
    assert.ok(e instanceof Error, `${c.name}: threw a non-Error ${String(e)}`);
    error = e.message;
  } finally {
    spy.restore();
  }
  const ms = performance.now() - t0;
  const outside = spy.paths.filter((p) => !resolvesInside(dir, p));
  return { name: c.name, dir, error, ms, outside };
}

function check(o: Outcome): void {
  assert.deepEqual(o.outside, [], `${o.name}: opened files outside the run folder`);
  assert.ok(o.ms < 5000, `${o.name}: took ${o.ms.toFixed(0)} ms`);
  if (o.error === undefined) return;
  assert.ok(!o.error.includes('\n'), `${o.name}: message spans lines: ${o.error}`);
  assert.ok(o.error.includes(o.dir), `${o.name}: message does not name the file: ${o.error}`);
  assert.doesNotMatch(o.error, INTERNAL, `${o.name}: internal error leaked: ${o.error}`);
  assert.ok(!o.error.includes(CANARY), `${o.name}: message shows the canary`);
}

describe('mutated checkpoints', () => {
  test(`${cases.length} cases load or fail with one line naming the file or field, reading nothing outside`, { timeout: 240_000 }, () => {
    assert.ok(cases.length >= 300, `only ${cases.length} cases`);
    const counts = { loaded: 0, rejected: 0 };
    cases.forEach((c, i) => {
      const o = runCase(c, i, (dir) => {
        const { model } = loadModelFromCheckpoint(dir, 'ema');
        for (const [name, p] of model.namedParameters()) {
          assert.ok((p.data as Float32Array).every(Number.isFinite), `${c.name}: ${name} loaded non-finite values`);
        }
        readRunCheckpoint(dir, { resume: true });
      });
      check(o);
      counts[o.error === undefined ? 'loaded' : 'rejected']++;
    });
    // The spy sees reads at all (else the check above proves nothing), and the bulk is rejected.
    const probe = spyOnReads();
    loadModelFromCheckpoint(base);
    probe.restore();
    assert.ok(probe.paths.some((p) => p.endsWith('checkpoint.json')), 'the read spy saw nothing');
    assert.ok(counts.rejected > cases.length / 2, JSON.stringify(counts));
    const rss = process.resourceUsage().maxRSS / 1024;
    assert.ok(rss < 1024, `peak RSS ${rss.toFixed(0)} MiB over the whole suite`);
    console.log(`# ${cases.length} mutated checkpoints: ${counts.rejected} rejected, ${counts.loaded} loaded; peak RSS ${rss.toFixed(0)} MiB`);
  });

  test('through the CLI: sample and info exit 1 with one line, under 512 MiB and 60 s each', { timeout: 300_000 }, () => {
    const picks = ['files.model.file = "../../canary.txt"', 'files.ema.file = "/dev/zero"', 'ema: a FIFO', 'ema: symlink to /dev/zero',
      'ema: symlink to the canary outside', 'ema: NaN weight', 'config.schedule.T = 1000000000', 'config.model.config.imageSize = 100000',
      'version -1', 'unknown objective.variance', 'checkpoint.json is a FIFO', 'checkpoint.json links to /dev/zero', 'ema: shape huge',
      'the unchanged run (loads)'];
    for (const name of picks) {
      const i = cases.findIndex((c) => c.name === name);
      assert.ok(i >= 0, `no case ${name}`);
      const dir = join(root, 'cases', String(i), 'run');
      for (const cmd of [['sample', '--count', '2', '--steps', '2', '--out', join(root, 'cli-out', String(i))], ['info']]) {
        const res = runCli([cmd[0], '--checkpoint', dir, ...cmd.slice(1)]);
        assert.equal(res.signal, null, `${name}: ${cmd[0]} killed by ${res.signal} (timeout?)`);
        assert.ok(res.maxRssMiB < 512, `${name}: ${cmd[0]} peak RSS ${res.maxRssMiB} MiB`);
        if (name.startsWith('the unchanged')) {
          assert.equal(res.code, 0, res.err);
          continue;
        }
        assert.equal(res.code, 1, `${name}: ${cmd[0]} exit ${res.code}: ${res.err}`);
        const lines = res.err.trim().split('\n');
        assert.equal(lines.length, 1, `${name}: ${res.err}`);
        assert.match(lines[0], /^diffuse: /);
        assert.ok(lines[0].includes(dir), `${name}: ${lines[0]}`);
        assert.ok(!res.err.includes(CANARY) && !res.out.includes(CANARY));
      }
    }
  });
});
