import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  parseSafetensors, serializeSafetensors, readSafetensorsFile, writeSafetensorsFile,
} from '../src/io/safetensors.js';

const here = dirname(fileURLToPath(import.meta.url));
const PY_FILE = join(here, 'fixtures', 'safetensors', 'python_mixed.safetensors');

/** Assemble a safetensors file by hand: header object (serialized as given), data bytes, optional length override. */
function rawFile(header: unknown, data: Uint8Array, headerLen?: number, headerText?: string): Uint8Array {
  const text = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + text.byteLength + data.byteLength);
  const dv = new DataView(out.buffer);
  const n = headerLen ?? text.byteLength;
  dv.setUint32(0, n % 2 ** 32, true);
  dv.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(text, 8);
  out.set(data, 8 + text.byteLength);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function headerOf(bytes: Uint8Array): { len: number; json: Record<string, unknown>; text: string } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const len = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + len));
  return { len, json: JSON.parse(text), text };
}

/** Assert `fn` throws one line that mentions every fragment. */
function assertThrowsLine(fn: () => unknown, ...fragments: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, 'expected an Error to be thrown');
  assert.ok(!err.message.includes('\n'), `message is not one line: ${err.message}`);
  for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
}

describe('safetensors: round trip', () => {
  test('every dtype, metadata, shapes', () => {
    const tensors = {
      'b.f32': { shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-30, -7.25]) },
      'a.u8': { shape: [3], data: new Uint8Array([0, 128, 255]) },
      i32: { shape: [2, 2], data: new Int32Array([-2147483648, 0, 2147483647, 5]) },
      i64: { dtype: 'I64' as const, shape: [3], data: new Int32Array([-1, 2147483647, -2147483648]) },
      f64: { dtype: 'F64' as const, shape: [2], data: new Float64Array([1 / 3, -1e10]) },
      scalar: { shape: [], data: new Float32Array([4.5]) },
      empty: { shape: [0, 3], data: new Float32Array(0) },
      '10': { shape: [1], data: new Float32Array([10]) },
      '2': { shape: [1], data: new Float32Array([2]) },
    };
    const bytes = serializeSafetensors(tensors, { format: 'pt', z: 'last', a: 'first' });
    const { len, json, text } = headerOf(bytes);
    assert.equal(len % 8, 0, 'header padded to a multiple of 8');
    assert.match(text, /^\{.*\} *$/);
    // keys sorted as written (integer-like names must not jump ahead, as they would in a JS object)
    const order = [...text.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    assert.deepEqual(order, ['10', '2', 'a.u8', 'b.f32', 'empty', 'f64', 'i32', 'i64', 'scalar']);
    assert.ok(text.startsWith('{"__metadata__":{"a":"first","format":"pt","z":"last"}'));
    // each tensor aligned to its element size
    for (const [name, info] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      const { dtype, data_offsets } = info as { dtype: string; data_offsets: [number, number] };
      const size = { F32: 4, F64: 8, I32: 4, I64: 8, U8: 1 }[dtype]!;
      assert.equal((8 + len + data_offsets[0]) % size, 0, `${name} aligned`);
    }

    const back = parseSafetensors(bytes);
    assert.deepEqual(back.metadata, { format: 'pt', z: 'last', a: 'first' });
    assert.deepEqual([...back.tensors.keys()], ['10', '2', 'a.u8', 'b.f32', 'empty', 'f64', 'i32', 'i64', 'scalar']);
    const get = (k: string) => back.tensors.get(k)!;
    assert.deepEqual(get('b.f32'), { dtype: 'F32', shape: [2, 3], data: tensors['b.f32'].data });
    assert.deepEqual(get('a.u8'), { dtype: 'U8', shape: [3], data: tensors['a.u8'].data });
    assert.deepEqual(get('i32'), { dtype: 'I32', shape: [2, 2], data: tensors.i32.data });
    assert.deepEqual(get('i64'), { dtype: 'I64', shape: [3], data: tensors.i64.data });
    assert.deepEqual(get('f64'), { dtype: 'F64', shape: [2], data: new Float32Array([1 / 3, -1e10]) });
    assert.deepEqual(get('scalar'), { dtype: 'F32', shape: [], data: new Float32Array([4.5]) });
    assert.deepEqual(get('empty'), { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) });
    // re-serializing what was read gives the same bytes
    const again = serializeSafetensors(Object.fromEntries(back.tensors), back.metadata);
    const back2 = parseSafetensors(again);
    assert.deepEqual(back2, back);
  });

  test('no metadata, Map input, byte-identical for equal input', () => {
    const m = new Map([['w', { shape: [2], data: new Float32Array([1, 2]) }]]);
    const a = serializeSafetensors(m);
    const b = serializeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
    assert.deepEqual(a, b);
    const r = parseSafetensors(a);
    assert.deepEqual(r.metadata, {});
    assert.deepEqual(r.tensors.get('w')!.data, new Float32Array([1, 2]));
    assert.ok(!headerOf(a).text.includes('__metadata__'));
  });

  test('a parsed array never aliases the input bytes', () => {
    const bytes = serializeSafetensors({ w: { shape: [1], data: new Float32Array([1]) } });
    const r = parseSafetensors(bytes);
    bytes.fill(0);
    assert.equal(r.tensors.get('w')!.data[0], 1);
  });

  test('unaligned data (a writer that does not pad) still reads', () => {
    // header of odd length, so F32 data starts at an odd byte offset
    const header = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const text = JSON.stringify(header) + '   ';
    const bytes = rawFile(null, f32Bytes([1.5, -2]), undefined, text.length % 2 ? text : text + ' ');
    assert.deepEqual(parseSafetensors(bytes).tensors.get('w')!.data, new Float32Array([1.5, -2]));
    // and from a Node Buffer at a non-zero offset in a larger pool
    const pooled = Buffer.concat([Buffer.from([9, 9, 9]), Buffer.from(bytes)]).subarray(3);
    assert.deepEqual(parseSafetensors(pooled).tensors.get('w')!.data, new Float32Array([1.5, -2]));
  });

  test('serialize rejects bad input', () => {
    assertThrowsLine(() => serializeSafetensors({ w: { shape: [3], data: new Float32Array(2) } }), '"w"', '3 elements');
    assertThrowsLine(() => serializeSafetensors({ w: { dtype: 'I32', shape: [1], data: new Float32Array(1) } }), '"w"', 'I32');
    assertThrowsLine(() => serializeSafetensors({ w: { dtype: 'BF16' as never, shape: [1], data: new Float32Array(1) } }), '"w"', 'BF16');
    assertThrowsLine(() => serializeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } }), 'reserved');
    assertThrowsLine(() => serializeSafetensors({ w: { shape: [-1], data: new Float32Array(1) } }), '"w"', 'shape');
  });
});

describe('safetensors: a file written by Python (tools/gen_fixtures.py)', () => {
  test('values, dtypes, metadata', async () => {
    const r = await readSafetensorsFile(PY_FILE);
    assert.deepEqual(r.metadata, { format: 'pt', note: 'written by tools/gen_fixtures.py' });
    const t = Object.fromEntries(r.tensors);
    assert.deepEqual(t.f32, { dtype: 'F32', shape: [2, 3], data: new Float32Array([-1, -0.5, 0, 0.5, 1, 1.5]) });
    assert.deepEqual(t.f64, { dtype: 'F64', shape: [3], data: new Float32Array([1 / 3, -2.5, 1e-3]) });
    assert.deepEqual(t.i32, { dtype: 'I32', shape: [2, 2], data: new Int32Array([-7, 0, 2147483647, -2147483648]) });
    assert.deepEqual(t.i64, { dtype: 'I64', shape: [4], data: new Int32Array([-3, 0, 2147483647, -2147483648]) });
    assert.deepEqual(t.u8, { dtype: 'U8', shape: [4], data: new Uint8Array([0, 1, 128, 255]) });
    assert.deepEqual(t.scalar, { dtype: 'F32', shape: [], data: new Float32Array([1.5]) });
    assert.deepEqual(t.empty, { dtype: 'F32', shape: [2, 0], data: new Float32Array(0) });
    assert.deepEqual(t['w.nested.name'], { dtype: 'F32', shape: [2, 1], data: new Float32Array([1, -1]) });
  });

  test('our writer reproduces the Python file byte for byte (same layout rules for this content)', async () => {
    // Python's writer lays data out by name; ours by element size then name. For F32-only content they agree.
    const r = await readSafetensorsFile(join(here, 'fixtures', 'ops', 'add_bc31.safetensors'));
    const ours = serializeSafetensors(Object.fromEntries(r.tensors), r.metadata);
    const theirs = new Uint8Array(await readFile(join(here, 'fixtures', 'ops', 'add_bc31.safetensors')));
    assert.deepEqual(ours, theirs);
  });
});

describe('safetensors: files', () => {
  test('write atomically, read back, no temporary file left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'diffuse-st-'));
    try {
      const path = join(dir, 'model.safetensors');
      await writeSafetensorsFile(path, { w: { shape: [2], data: new Float32Array([3, 4]) } }, { step: '1' });
      await writeSafetensorsFile(path, { w: { shape: [2], data: new Float32Array([5, 6]) } }, { step: '2' });
      assert.deepEqual(await readdir(dir), ['model.safetensors']);
      const r = await readSafetensorsFile(path);
      assert.deepEqual(r.metadata, { step: '2' });
      assert.deepEqual(r.tensors.get('w')!.data, new Float32Array([5, 6]));
      // a failed serialization leaves the old file intact and no temporary behind
      await assert.rejects(writeSafetensorsFile(path, { w: { shape: [3], data: new Float32Array(2) } }), /model\.safetensors/);
      assert.deepEqual(await readdir(dir), ['model.safetensors']);
      assert.deepEqual((await readSafetensorsFile(path)).tensors.get('w')!.data, new Float32Array([5, 6]));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('write into a missing folder fails cleanly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'diffuse-st-'));
    try {
      await assert.rejects(
        writeSafetensorsFile(join(dir, 'nope', 'x.safetensors'), { w: { shape: [1], data: new Float32Array(1) } }),
        /x\.safetensors.*cannot write/);
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('errors name the file and the tensor', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'diffuse-st-'));
    try {
      const path = join(dir, 'bad.safetensors');
      await writeFile(path, rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32Bytes([1, 2])));
      await assert.rejects(readSafetensorsFile(path), (e: Error) =>
        e.message.includes(path) && e.message.includes('"w"') && !e.message.includes('\n'));
      await assert.rejects(readSafetensorsFile(join(dir, 'missing.safetensors')), /missing\.safetensors/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('safetensors: corrupt input throws', () => {
  const good = serializeSafetensors({
    a: { shape: [2], data: new Float32Array([1, 2]) },
    b: { shape: [2, 2], data: new Float32Array([3, 4, 5, 6]) },
  });
  const name = { name: 'x.safetensors' };

  test('the valid file parses', () => {
    assert.equal(parseSafetensors(good).tensors.size, 2);
  });

  test('shorter than 8 bytes', () => {
    assertThrowsLine(() => parseSafetensors(good.subarray(0, 5), name), 'x.safetensors', 'truncated');
    assertThrowsLine(() => parseSafetensors(new Uint8Array(0)), 'truncated');
  });

  test('truncated data (file cut short)', () => {
    assertThrowsLine(() => parseSafetensors(good.subarray(0, good.byteLength - 4), name), 'x.safetensors', '"b"', 'past the end');
  });

  test('truncated inside the header', () => {
    assertThrowsLine(() => parseSafetensors(good.subarray(0, 20), name), 'x.safetensors', 'header length');
  });

  test('header length beyond the file', () => {
    const bytes = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32Bytes([1]), 10_000);
    assertThrowsLine(() => parseSafetensors(bytes, name), 'x.safetensors', 'header length 10000');
    const huge = rawFile({}, new Uint8Array(0), 2 ** 40);
    assertThrowsLine(() => parseSafetensors(huge, name), 'header length');
  });

  test('offsets out of range', () => {
    const bytes = rawFile({
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
    }, f32Bytes([1]));
    assertThrowsLine(() => parseSafetensors(bytes, name), 'x.safetensors', '"b"', 'past the end');
    const negative = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, f32Bytes([1]));
    assertThrowsLine(() => parseSafetensors(negative, name), '"a"', 'data_offsets');
    const reversed = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32Bytes([1]));
    assertThrowsLine(() => parseSafetensors(reversed, name), '"a"', 'data_offsets');
  });

  test('overlapping offsets', () => {
    const bytes = rawFile({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, f32Bytes([1, 2, 3]));
    assertThrowsLine(() => parseSafetensors(bytes, name), 'x.safetensors', '"b"', 'overlap', '"a"');
  });

  test('holes and trailing bytes', () => {
    const hole = rawFile({
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    }, f32Bytes([1, 2, 3]));
    assertThrowsLine(() => parseSafetensors(hole, name), '"b"', 'hole');
    const trailing = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32Bytes([1, 2]));
    assertThrowsLine(() => parseSafetensors(trailing, name), 'x.safetensors', 'after the last tensor');
  });

  test('shape disagrees with the byte range', () => {
    const bytes = rawFile({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, f32Bytes([1, 2, 3]));
    assertThrowsLine(() => parseSafetensors(bytes, name), 'x.safetensors', '"w"', '[2, 2]', '16 bytes', '12');
    const badShape = rawFile({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, f32Bytes([1]));
    assertThrowsLine(() => parseSafetensors(badShape, name), '"w"', 'shape');
  });

  test('unknown dtype', () => {
    const bytes = rawFile({ w: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } }, f32Bytes([1]));
    assertThrowsLine(() => parseSafetensors(bytes, name), 'x.safetensors', '"w"', 'BF16');
  });

  test('I64 outside int32', () => {
    const data = new Uint8Array(new BigInt64Array([5n, 2n ** 31n]).buffer);
    const bytes = rawFile({ idx: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, data);
    assertThrowsLine(() => parseSafetensors(bytes, name), 'x.safetensors', '"idx"', '2147483648', 'int32');
    const neg = new Uint8Array(new BigInt64Array([-(2n ** 31n) - 1n]).buffer);
    assertThrowsLine(() => parseSafetensors(rawFile({ idx: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, neg)),
      '"idx"', '-2147483649');
  });

  test('header not JSON / not an object / bad metadata / tensor names with newlines stay on one line', () => {
    assertThrowsLine(() => parseSafetensors(rawFile(null, new Uint8Array(0), undefined, '{"a": '), name), 'JSON');
    assertThrowsLine(() => parseSafetensors(rawFile(null, new Uint8Array(0), undefined, '[1, 2]'), name), 'header');
    assertThrowsLine(() => parseSafetensors(rawFile({ __metadata__: { k: 1 } }, new Uint8Array(0)), name), 'metadata');
    const bytes = rawFile({ 'evil\nname': { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1));
    assertThrowsLine(() => parseSafetensors(bytes, name), 'evil\\nname', 'Q4');
  });
});
