// Bad input of every other kind: malformed and lying images, bad command lines, and random library calls.
// Each must give a result or one line naming the file, option or op; nothing may crash, hang or allocate
// past a stated bound.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readImage } from '../src/io/image.js';
import { loadImageFolder } from '../src/data/index.js';
import * as api from '../src/index.js';
import { GUARDED_OPS } from '../src/tensor/api.js';
import { availableBackends, setBackend, getBackend, type BackendName } from '../src/backends/index.js';
import { INTERNAL, runCli, writeMicroRun } from './helpers/hardening.js';
import { rng } from './helpers/compare.js';

const root = mkdtempSync(join(tmpdir(), 'diffuse-fuzz-in-'));
after(() => rmSync(root, { recursive: true, force: true }));

// ---------------------------------------------------------------- images

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (b: Buffer) => { let c = 0xffffffff; for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
function chunk(type: string, data: Buffer, badCrc = false): Buffer {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(badCrc ? crc32(td) ^ 1 : crc32(td));
  return Buffer.concat([len, td, crc]);
}
const SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
function ihdr(w: number, h: number, depth = 8, color = 2, interlace = 0): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(w >>> 0, 0); d.writeUInt32BE(h >>> 0, 4); d[8] = depth; d[9] = color; d[12] = interlace;
  return chunk('IHDR', d);
}
/** A PNG; the IDAT holds `raw` deflated (default: the right number of zero scanlines for RGB 8-bit). */
function png(w: number, h: number, opts: { depth?: number; color?: number; interlace?: number; raw?: Buffer; idat?: Buffer; extra?: Buffer[]; end?: boolean } = {}): Buffer {
  const idat = opts.idat ?? deflateSync(opts.raw ?? Buffer.alloc(h * (1 + w * 3)));
  return Buffer.concat([SIG, ihdr(w, h, opts.depth, opts.color, opts.interlace), ...(opts.extra ?? []),
    chunk('IDAT', idat), ...(opts.end === false ? [] : [chunk('IEND', Buffer.alloc(0))])]);
}
function jpegSof(w: number, h: number, components = 3): Buffer {
  const comp = Buffer.concat(Array.from({ length: components }, (_, i) => Buffer.from([i + 1, 0x11, 0])));
  const body = Buffer.concat([Buffer.from([8, h >> 8, h & 255, w >> 8, w & 255, components]), comp]);
  const len = Buffer.alloc(2); len.writeUInt16BE(body.length + 2);
  return Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xc0]), len, body, Buffer.from([0xff, 0xda, 0, 8, 1, 1, 0, 0, 0x3f, 0, 0x12, 0x34, 0xff, 0xd9])]);
}

const imageCases: { name: string; file: string; write(path: string): void; ok?: boolean }[] = [
  { name: 'PNG header claims 30000×30000 (74 bytes)', file: 'a.png', write: (p) => writeFileSync(p, png(30000, 30000, { idat: Buffer.alloc(0) })) },
  { name: 'PNG header claims 12000×12000', file: 'a.png', write: (p) => writeFileSync(p, png(12000, 12000, { idat: deflateSync(Buffer.alloc(1000)) })) },
  { name: 'PNG 8000×8000 (over the pixel limit)', file: 'a.png', write: (p) => writeFileSync(p, png(8000, 8000, { idat: deflateSync(Buffer.alloc(10)) })) },
  { name: 'PNG width 0', file: 'a.png', write: (p) => writeFileSync(p, png(0, 4)) },
  { name: 'PNG height 0', file: 'a.png', write: (p) => writeFileSync(p, png(4, 0)) },
  { name: 'PNG width 2^31', file: 'a.png', write: (p) => writeFileSync(p, png(2 ** 31, 1, { idat: Buffer.alloc(0) })) },
  { name: 'PNG width 2^32−1', file: 'a.png', write: (p) => writeFileSync(p, png(2 ** 32 - 1, 2 ** 32 - 1, { idat: Buffer.alloc(0) })) },
  { name: 'PNG signature only', file: 'a.png', write: (p) => writeFileSync(p, SIG) },
  { name: 'PNG cut inside IHDR', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4).subarray(0, 20)) },
  { name: 'PNG cut inside IDAT', file: 'a.png', write: (p) => writeFileSync(p, png(16, 16).subarray(0, 60)) },
  { name: 'PNG with a bad IHDR checksum', file: 'a.png', write: (p) => writeFileSync(p, Buffer.concat([SIG, chunk('IHDR', ihdr(4, 4).subarray(8, 21), true), chunk('IDAT', deflateSync(Buffer.alloc(52))), chunk('IEND', Buffer.alloc(0))])) },
  { name: 'PNG without IDAT', file: 'a.png', write: (p) => writeFileSync(p, Buffer.concat([SIG, ihdr(4, 4), chunk('IEND', Buffer.alloc(0))])) },
  { name: 'PNG IDAT not zlib', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4, { idat: Buffer.from('definitely not deflate data') })) },
  { name: 'PNG IDAT too short for its size', file: 'a.png', write: (p) => writeFileSync(p, png(64, 64, { raw: Buffer.alloc(100) })) },
  { name: 'PNG IDAT a zlib bomb (64 MiB of zeros for a 16×16 image)', file: 'a.png', write: (p) => writeFileSync(p, png(16, 16, { raw: Buffer.alloc(64 * 2 ** 20) })) },
  { name: 'PNG bit depth 3', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4, { depth: 3 })) },
  { name: 'PNG color type 5', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4, { color: 5 })) },
  { name: 'PNG interlace method 7', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4, { interlace: 7 })) },
  { name: 'PNG palette without PLTE', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4, { color: 3, raw: Buffer.alloc(4 * 5) })) },
  { name: 'PNG without IEND', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4, { end: false })) },
  { name: 'PNG valid 4×4', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4)), ok: true },
  { name: 'PNG valid 16-bit gray', file: 'a.png', write: (p) => writeFileSync(p, png(4, 4, { depth: 16, color: 0, raw: Buffer.alloc(4 * 9) })), ok: true },
  { name: 'JPEG SOF claims 65535×65535', file: 'a.jpg', write: (p) => writeFileSync(p, jpegSof(65535, 65535)) },
  { name: 'JPEG SOF claims 0×0', file: 'a.jpg', write: (p) => writeFileSync(p, jpegSof(0, 0)) },
  { name: 'JPEG SOF with 0 components', file: 'a.jpg', write: (p) => writeFileSync(p, jpegSof(8, 8, 0)) },
  { name: 'JPEG SOF 8×8 with garbage scan', file: 'a.jpg', write: (p) => writeFileSync(p, jpegSof(8, 8)) },
  { name: 'JPEG SOI only', file: 'a.jpg', write: (p) => writeFileSync(p, Buffer.from([0xff, 0xd8, 0xff])) },
  { name: 'JPEG segment length past the end', file: 'a.jpg', write: (p) => writeFileSync(p, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0xff, 0xff, 1, 2])) },
  { name: 'empty .png', file: 'a.png', write: (p) => writeFileSync(p, '') },
  { name: 'text named .png', file: 'a.png', write: (p) => writeFileSync(p, 'hello, I am not an image\n') },
  { name: 'GIF named .png', file: 'a.png', write: (p) => writeFileSync(p, 'GIF89a\u0001\u0000\u0001\u0000') },
  { name: 'BMP named .jpg', file: 'a.jpg', write: (p) => writeFileSync(p, Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)])) },
  { name: 'PNG named .jpg (decoded by content)', file: 'a.jpg', write: (p) => writeFileSync(p, png(4, 4)), ok: true },
  { name: 'a folder named .png', file: 'a.png', write: (p) => mkdirSync(p) },
  { name: 'a FIFO named .png', file: 'a.png', write: (p) => execFileSync('mkfifo', [p]) },
  { name: 'a symlink to /dev/zero named .png', file: 'a.png', write: (p) => symlinkSync('/dev/zero', p) },
  { name: 'a dangling symlink named .png', file: 'a.png', write: (p) => symlinkSync(join(root, 'nothing-here'), p) },
  { name: 'a symlink loop named .png', file: 'a.png', write: (p) => symlinkSync(p, p) },
];

describe('malformed images', () => {
  test(`${imageCases.length} images decode or fail with one line naming the file, within time and memory`, { timeout: 120_000 }, () => {
    assert.ok(imageCases.length >= 30);
    imageCases.forEach((c, i) => {
      const dir = join(root, 'img', String(i));
      mkdirSync(dir, { recursive: true });
      const path = join(dir, c.file);
      c.write(path);
      const rss0 = process.memoryUsage().rss, t0 = performance.now();
      let error: string | undefined;
      try {
        const img = readImage(path);
        assert.equal(img.rgba.length, img.width * img.height * 4);
      } catch (e) {
        assert.ok(e instanceof Error);
        error = e.message;
      }
      const ms = performance.now() - t0, grewMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
      assert.ok(ms < 10_000, `${c.name}: ${ms} ms`);
      assert.ok(grewMiB < 512, `${c.name}: RSS grew ${grewMiB.toFixed(0)} MiB`);
      if (c.ok) { assert.equal(error, undefined, `${c.name}: ${error}`); return; }
      assert.ok(error !== undefined, `${c.name}: accepted`);
      assert.ok(!error.includes('\n') && error.includes(path), `${c.name}: ${error}`);
      assert.doesNotMatch(error, INTERNAL, `${c.name}: ${error}`);
    });
    const rss = process.resourceUsage().maxRSS / 1024;
    assert.ok(rss < 1024, `peak RSS ${rss.toFixed(0)} MiB`);
  });

  test('a folder dataset names every skipped entry and why, and stops at the first corrupt image', () => {
    const dir = join(root, 'folder');
    mkdirSync(dir);
    writeFileSync(join(dir, 'good.png'), png(8, 8));
    mkdirSync(join(dir, 'dir.png'));
    symlinkSync(join(dir, 'gone'), join(dir, 'dangling.png'));
    symlinkSync(join(dir, 'loop.png'), join(dir, 'loop.png'));
    execFileSync('mkfifo', [join(dir, 'fifo.png')]);
    writeFileSync(join(dir, 'notes.txt'), 'x');
    const ds = loadImageFolder(dir, { size: 8 });
    assert.equal(ds.n, 1);
    const why = Object.fromEntries(ds.skipped.map((f, i) => [f.slice(dir.length + 1), ds.skippedReasons[i]]));
    assert.deepEqual(why, { 'dangling.png': 'a dangling link', 'dir.png': 'a folder', 'fifo.png': 'not a regular file', 'loop.png': 'a symbolic link loop', 'notes.txt': 'not .png, .jpg or .jpeg' });
    writeFileSync(join(dir, 'lying.png'), png(30000, 30000, { idat: Buffer.alloc(0) }));
    assert.throws(() => loadImageFolder(dir, { size: 8 }), (e: Error) => e.message.includes(join(dir, 'lying.png')) && /30000×30000/.test(e.message));
    // Through the CLI: the skipped entries are one line; the lying image stops the run, named, before any allocation.
    const r = runCli(['train', '--dataset', dir, '--image-size', '8', '--out', join(root, 'folder-run'), '--steps', '1']);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /lying\.png: header says 30000×30000 pixels/);
    assert.ok(r.maxRssMiB < 512, `${r.maxRssMiB} MiB`);
    const fw = runCli(['forward', '--image', join(dir, 'lying.png'), '--out', join(root, 'fw')]);
    assert.equal(fw.code, 1, fw.err);
    assert.equal(fw.err.trim().split('\n').length, 1);
    assert.ok(fw.maxRssMiB < 512, `${fw.maxRssMiB} MiB`);
  });
});

// ---------------------------------------------------------------- command lines

describe('bad command lines', () => {
  const run = join(root, 'run');
  before(() => writeMicroRun(run));
  const aFile = join(root, 'a-file');
  writeFileSync(aFile, 'x');
  const used = join(root, 'used');
  mkdirSync(used);
  writeFileSync(join(used, 'keep.txt'), 'x');
  const fifo = join(root, 'fifo.png');
  execFileSync('mkfifo', [fifo]);

  // [args, expected exit, a substring the one-line message must contain]
  const U = 2, R = 1;
  const cases: [string[], number, string][] = [
    [['bogus'], U, 'bogus'], [['train', '--bogus'], U, '--bogus'], [['train', 'extra'], U, "too many arguments for 'train'"], [['train', '--out'], U, '--out'],
    ...['abc', '0', '-1', '1.5', '1e3', '', ' ', '9999999999999', '0x10'].map((v): [string[], number, string] => [['train', '--steps', v], U, '--steps']),
    ...['0', '-2', 'abc', '20000', '4097'].map((v): [string[], number, string] => [['train', '--batch-size', v], U, '--batch-size']),
    ...['2000', '1025', '7', 'x', '-8'].map((v): [string[], number, string] => [['train', '--image-size', v], U, '--image-size']),
    ...['-1', '2', 'abc', 'NaN', 'Infinity', ''].map((v): [string[], number, string] => [['train', '--lr', v], U, '--lr']),
    ...['-1', 'x', '1.5'].map((v): [string[], number, string] => [['train', '--warmup', v], U, '--warmup']),
    ...['2', '-0.1', 'x'].map((v): [string[], number, string] => [['train', '--ema', v], U, '--ema']),
    ...['-1', 'x', '1e20', '4294967296'].map((v): [string[], number, string] => [['train', '--seed', v], U, '--seed']),
    ...['5x', '', '-1s', '1d'].map((v): [string[], number, string] => [['train', '--time', v], U, '--time']),
    ...['0', '5000'].map((v): [string[], number, string] => [['train', '--accumulate', v], U, '--accumulate']),
    ...['2', '-1'].map((v): [string[], number, string] => [['train', '--cond-dropout', v], U, '--cond-dropout']),
    ...['0', '-3'].map((v): [string[], number, string] => [['train', '--limit', v], U, '--limit']),
    [['train', '--grad-clip', '-1'], U, '--grad-clip'], [['train', '--min-snr', 'x'], U, '--min-snr'],
    [['train', '--sample-every', '-1'], U, '--sample-every'], [['train', '--checkpoint-every', 'x'], U, '--checkpoint-every'],
    [['train', '--preset', 'huge'], U, '--preset'], [['train', '--preset', ''], U, '--preset'], [['train', '--schedule', 'bogus'], U, '--schedule'],
    [['train', '--prediction', 'noise'], U, '--prediction'], [['train', '--variance', 'bogus'], U, '--variance'],
    [['train', '--backend', 'bogus'], U, '--backend'], [['train', '--out', aFile], U, aFile], [['train', '--out', used], U, used],
    [['train', '--out', join(root, 'nothing'), '--resume'], U, '--resume'], [['train', '--dataset', join(root, 'no-such'), '--out', join(root, 'o1')], R, 'no-such'],
    [['train', '--dataset', 'mnist', '--batch-size', '4096', '--out', join(root, 'o2'), '--image-size', '8'], U, '--batch-size'],
    [['sample'], U, '--checkpoint'], [['sample', '--checkpoint', join(root, 'nothing')], R, 'nothing'],
    [['sample', '--checkpoint', aFile], R, aFile], [['sample', '--checkpoint', fifo], R, fifo], [['sample', '--checkpoint', '/dev/zero'], R, '/dev/zero'],
    ...['0', '-1', '1000000', 'abc'].map((v): [string[], number, string] => [['sample', '--checkpoint', run, '--count', v], U, '--count']),
    ...['0', 'x', '20000', '101'].map((v): [string[], number, string] => [['sample', '--checkpoint', run, '--steps', v], U, '--steps']),
    [['sample', '--checkpoint', run, '--sampler', 'bogus'], U, '--sampler'], [['sample', '--checkpoint', run, '--sampler', ''], U, '--sampler'],
    ...['-1', '1000', 'x'].map((v): [string[], number, string] => [['sample', '--checkpoint', run, '--guidance', v], U, '--guidance']),
    ...['-1', 'x', '99'].map((v): [string[], number, string] => [['sample', '--checkpoint', run, '--class', v], U, '--class']),
    [['sample', '--checkpoint', run, '--weights', 'bogus'], U, '--weights'], [['sample', '--checkpoint', run, '--out', run], U, run],
    [['sample', '--checkpoint', run, '--out', aFile], U, aFile], [['sample', '--checkpoint', run, '--seed', '-1'], U, '--seed'],
    [['sample', '--checkpoint', run, '--count', '100001'], U, '--count'],
    ...['', '-1', '1000', 'a', '1,,2', '0.5', ' ', '1e2', Array(200).fill('1').join(',')].map((v): [string[], number, string] => [['forward', '--t', v], U, '--t']),
    [['forward', '--schedule', 'bogus'], U, '--schedule'], [['forward', '--index', '-1'], U, '--index'], [['forward', '--index', 'x'], U, '--index'],
    [['forward', '--index', '100000'], U, '--index'], [['forward', '--image', join(root, 'nope.png')], R, 'nope.png'], [['forward', '--image', root], R, root],
    [['forward', '--image', fifo], R, fifo], [['forward', '--image', '/dev/zero'], R, '/dev/zero'], [['forward', '--dataset', 'bogus'], R, 'bogus'],
    [['forward', '--out', aFile], U, aFile],
    [['eval', '--checkpoint', run], U, 'eval'], [['eval', '--checkpoint', run, '--count', '0'], U, '--count'], [['eval', '--checkpoint', run, '--steps', 'x'], U, '--steps'],
    [['info'], U, '--checkpoint'], [['info', '--checkpoint', join(root, 'nothing')], R, 'nothing'], [['info', '--checkpoint', aFile], R, aFile],
  ];

  test(`${cases.length} bad command lines: one line naming the option or file, exit 2 for usage and 1 for the rest`, { timeout: 240_000 }, () => {
    assert.ok(cases.length >= 80, `${cases.length}`);
    // All cases in one process (main() in turn), under one time limit: a case that started real work would time out.
    const spec = join(root, 'cli-cases.json');
    writeFileSync(spec, JSON.stringify(cases.map((c) => c[0])));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/helpers/cli-cases.ts', spec], { encoding: 'utf8', timeout: 200_000 });
    let results: { code: number; err: string; out: string; ms: number }[] = [];
    try { results = JSON.parse(readFileSync(`${spec}.out`, 'utf8')); } catch { /* none finished */ }
    const slowest = [...results.keys()].sort((i, j) => results[j].ms - results[i].ms).slice(0, 3).map((i) => `${cases[i][0].join(' ')}: ${results[i].ms} ms`);
    assert.equal(r.status, 0, `runner: ${r.signal ?? ''} after ${results.length} cases (next: ${cases[results.length]?.[0].join(' ')}; slowest: ${slowest.join('; ')}) ${r.stderr.slice(-2000)}`);
    console.log(`# ${results.length} command lines in ${results.reduce((a, x) => a + x.ms, 0)} ms; slowest: ${slowest.join('; ')}`);
    results.forEach((res, i) => {
      const [args, code, names] = cases[i];
      const what = `diffuse ${args.join(' ')}`;
      assert.equal(res.code, code, `${what}: exit ${res.code} (${res.err.trim()})`);
      const lines = res.err.trim().split('\n');
      assert.equal(lines.length, 1, `${what}: ${res.err}`);
      assert.ok(lines[0].includes(names), `${what}: '${lines[0]}' does not name ${names}`);
      assert.doesNotMatch(lines[0], INTERNAL, what);
    });
  });

  test('exit codes hold for real processes too', { timeout: 120_000 }, () => {
    for (const [args, code] of [[['train', '--steps', 'abc'], 2], [['bogus'], 2], [['sample', '--checkpoint', join(root, 'nothing')], 1], [['info', '--checkpoint', run], 0]] as [string[], number][]) {
      const res = runCli(args);
      assert.equal(res.code, code, `${args.join(' ')}: ${res.err}`);
    }
  });
});

// ---------------------------------------------------------------- library calls

describe('random library calls', () => {
  const CREATORS = ['tensor', 'zeros', 'ones', 'full', 'arange', 'randn', 'rand', 'scalar'];
  const fns = api as unknown as Record<string, (...a: unknown[]) => unknown>;

  for (const be of availableBackends().filter((b) => b === 'js' || b === 'native') as BackendName[]) {
    test(`2,000 calls on ${be}: a tensor or one line naming the op`, { timeout: 120_000 }, () => {
      const prev = getBackend().name;
      setBackend(be);
      try {
        const r = rng(be === 'js' ? 11 : 12);
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
        const shapes = [[], [3], [2, 3], [3, 2], [1, 3, 4, 4], [2, 4, 4, 4], [2, 2, 3], [0], [1]];
        const tensors = () => shapes.map((s) => api.randn(s, new api.Generator(1))).concat([api.tensor([0, 1, 1], [3], { dtype: 'int32' }), api.full([2, 3], NaN)]);
        const numbers = [0, 1, -1, 2, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 1e12, -0];
        const arrays = [[], [1], [2, 3], [3, 2], [-1], [1.5], [2 ** 31, 2 ** 31], [NaN], [0, 0], [1, 3, 4, 4]];
        const junk = [null, undefined, 'x', '3', {}, true, [api.scalar(1)], () => 1, Symbol('s'), new Float32Array(3), [['a']]];
        let tensorsNow = tensors();
        const arg = () => {
          const k = r();
          return k < 0.45 ? pick(tensorsNow) : k < 0.65 ? pick(numbers) : k < 0.8 ? pick(arrays) : k < 0.85 ? { stride: pick(numbers), padding: pick(numbers), eps: pick(numbers) } : pick(junk);
        };
        const names = [...GUARDED_OPS, ...CREATORS];
        let ok = 0, rejected = 0;
        for (let i = 0; i < 2000; i++) {
          if (i % 200 === 0) tensorsNow = tensors();
          const name = pick(names);
          const args = Array.from({ length: Math.floor(r() * 5) }, arg);
          try {
            const out = fns[name](...args);
            const outs = Array.isArray(out) ? out : [out];
            for (const t of outs) assert.ok(t instanceof api.Tensor, `${name} returned ${typeof t}`);
            ok++;
          } catch (e) {
            assert.ok(e instanceof Error, `${name}: threw a non-Error`);
            const m = e.message;
            assert.ok(!m.includes('\n'), `${name}: ${m}`);
            assert.doesNotMatch(m, INTERNAL, `${name}(${args.map((a) => typeof a).join(', ')}): ${m}`);
            assert.match(m, /^[A-Za-z0-9.]+( \([A-Za-z]+\))?:/, `${name}: the message names no op: ${m}`);
            rejected++;
          }
        }
        assert.ok(ok > 50 && rejected > 500, `${ok} ok, ${rejected} rejected`);
        console.log(`# ${be}: 2000 random calls, ${ok} returned a tensor, ${rejected} rejected with one line`);
      } finally {
        setBackend(prev as BackendName);
      }
    });
  }
});
