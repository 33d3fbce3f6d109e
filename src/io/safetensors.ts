/**
 * The safetensors format (https://github.com/huggingface/safetensors):
 *
 *   [u64 little-endian N] [N bytes of UTF-8 JSON header] [raw little-endian tensor data]
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
 * to the start of the data section) and may hold "__metadata__", a string → string map.
 *
 * Supported dtypes and what they read into:
 *   F32 → Float32Array, F64 → Float32Array (rounded), F16 → Float32Array (exact), I32 → Int32Array,
 *   I64 → Int32Array (every value must fit in int32, else an error), U8 → Uint8Array.
 * Writing F16 rounds each value to the nearest half (ties to even; beyond ±65504 it becomes ±Infinity), the
 * IEEE 754 conversion that numpy's and PyTorch's `.half()` perform — half the bytes, for shipping weights.
 *
 * Validation follows the reference implementation: the data section must be covered exactly by the
 * tensors' byte ranges (no overlap, no hole, nothing after the last tensor), and every tensor's byte
 * range must equal its element count × dtype size. Errors are one line naming the file (when known)
 * and the tensor.
 *
 * `parseSafetensors` / `serializeSafetensors` work on bytes and run anywhere (browser included);
 * the file functions load `node:fs` lazily, so importing this module does not require Node.
 */

export type SafetensorsDType = 'F32' | 'F64' | 'F16' | 'I32' | 'I64' | 'U8';
export type SafetensorsData = Float32Array | Int32Array | Uint8Array;

export interface SafetensorsTensor {
  /** The dtype as stored in the file (the in-memory type follows the table above). */
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData;
}

export interface SafetensorsContents {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** What `serializeSafetensors` accepts per tensor. `dtype` defaults from the array type. */
export interface SafetensorsInput {
  dtype?: SafetensorsDType;
  shape: readonly number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

const DTYPE_SIZE: Record<SafetensorsDType, number> = { F32: 4, F64: 8, F16: 2, I32: 4, I64: 8, U8: 1 };
const MAX_HEADER_BYTES = 100_000_000; // the reference implementation's limit
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

function fail(file: string | undefined, tensor: string | undefined, msg: string): never {
  const where = [file === undefined ? 'safetensors' : `safetensors file ${JSON.stringify(file)}`];
  if (tensor !== undefined) where.push(`tensor ${JSON.stringify(tensor)}`);
  // Keep the message on one line whatever the names hold.
  throw new SafetensorsError(`${where.join(', ')}: ${msg}`.replace(/[\r\n]+/g, ' '));
}

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ------------------------------------------------------------------------------------------------ parse

export interface ParseOptions {
  /** Named in error messages (a path, a URL). */
  name?: string;
}

/** Parse a safetensors byte buffer. The returned arrays are copies (they never alias `bytes`). */
export function parseSafetensors(bytes: Uint8Array, options: ParseOptions = {}): SafetensorsContents {
  const file = options.name;
  if (!(bytes instanceof Uint8Array)) fail(file, undefined, 'expected a Uint8Array');
  if (bytes.byteLength < 8) {
    fail(file, undefined, `truncated: ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenLo = view.getUint32(0, true);
  const lenHi = view.getUint32(4, true);
  const headerLen = lenHi * 2 ** 32 + lenLo;
  if (headerLen > bytes.byteLength - 8) {
    fail(file, undefined, `header length ${headerLen} runs past the end of the file (${bytes.byteLength} bytes)`);
  }
  if (headerLen > MAX_HEADER_BYTES) fail(file, undefined, `header length ${headerLen} exceeds ${MAX_HEADER_BYTES}`);
  if (headerLen < 2) fail(file, undefined, `header length ${headerLen} is too small for a JSON object`);

  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    fail(file, undefined, 'header is not valid UTF-8');
  }
  if (!headerText.startsWith('{')) fail(file, undefined, 'header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    fail(file, undefined, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail(file, undefined, 'header is not a JSON object');
  }

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        fail(file, undefined, '"__metadata__" is not a string → string map');
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, undefined, `"__metadata__" value for ${JSON.stringify(k)} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(file, name, 'entry is not an object');
    const info = raw as Record<string, unknown>;
    const dtype = info.dtype;
    if (!isDType(dtype)) {
      fail(file, name, `unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      fail(file, name, `invalid shape ${JSON.stringify(shape)}`);
    }
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt) || offsets[0] > offsets[1]) {
      fail(file, name, `invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const count = product(shape as number[]);
    const expected = count * DTYPE_SIZE[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      fail(file, name, `shape [${(shape as number[]).join(', ')}] × ${dtype} needs ${expected} bytes ` +
        `but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), begin, end });
  }

  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;
  for (const e of entries) {
    if (e.end > dataLen) {
      fail(file, e.name, `data_offsets [${e.begin}, ${e.end}] run past the end of the data (${dataLen} bytes; ` +
        'truncated file?)');
    }
  }
  // Coverage: sorted by offset, each range must start exactly where the previous one ended.
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: string | undefined;
  for (const e of sorted) {
    if (e.begin < cursor) {
      fail(file, e.name, `data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(prev)} (ends at ${cursor})`);
    }
    if (e.begin > cursor) {
      fail(file, e.name, `data_offsets [${e.begin}, ${e.end}] leave a hole of ${e.begin - cursor} bytes at ${cursor}`);
    }
    if (e.end > e.begin || prev === undefined) prev = e.name;
    cursor = e.end;
  }
  if (cursor !== dataLen) {
    fail(file, undefined, `${dataLen - cursor} bytes after the last tensor's data (data section is ${dataLen} bytes, ` +
      `tensors cover ${cursor})`);
  }

  const tensors = new Map<string, SafetensorsTensor>();
  // Header order sorted by name, so iteration order is stable whatever order the writer used.
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const src = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(src, e.dtype, file, e.name) });
  }
  return { tensors, metadata };
}

function copyBytes(src: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(src.byteLength);
  out.set(src);
  return out.buffer;
}

function decode(src: Uint8Array, dtype: SafetensorsDType, file: string | undefined, name: string): SafetensorsData {
  const n = src.byteLength / DTYPE_SIZE[dtype];
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (dtype) {
    case 'U8':
      return new Uint8Array(copyBytes(src));
    case 'F32': {
      if (LITTLE_ENDIAN_HOST) return new Float32Array(copyBytes(src));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      return out;
    }
    case 'I32': {
      if (LITTLE_ENDIAN_HOST) return new Int32Array(copyBytes(src));
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      if (LITTLE_ENDIAN_HOST) {
        out.set(new Float64Array(copyBytes(src)));
      } else {
        for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      }
      return out;
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = dv.getUint32(8 * i, true);
        const hi = dv.getInt32(8 * i + 4, true);
        // In int32 range iff the high word is the sign extension of the low word.
        if (hi !== (lo >= 0x80000000 ? -1 : 0)) {
          const value = (BigInt(hi) << 32n) | BigInt(lo);
          fail(file, name, `I64 value ${value} at element ${i} does not fit in int32`);
        }
        out[i] = lo | 0;
      }
      return out;
    }
  }
}

// ------------------------------------------------------------------------------------------------ serialize

function inferDType(data: SafetensorsInput['data']): SafetensorsDType | undefined {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint8Array) return 'U8';
  return undefined;
}

const COMPATIBLE: Record<SafetensorsDType, ReadonlyArray<string>> = {
  F32: ['Float32Array', 'Float64Array'],
  F64: ['Float32Array', 'Float64Array'],
  F16: ['Float32Array', 'Float64Array'],
  I32: ['Int32Array'],
  I64: ['Int32Array'],
  U8: ['Uint8Array'],
};

function arrayKind(data: unknown): string {
  if (data instanceof Float32Array) return 'Float32Array';
  if (data instanceof Float64Array) return 'Float64Array';
  if (data instanceof Int32Array) return 'Int32Array';
  if (data instanceof Uint8Array) return 'Uint8Array';
  return data === null ? 'null' : typeof data === 'object' ? (data.constructor?.name ?? 'object') : typeof data;
}

/**
 * Serialize tensors to safetensors bytes. Header keys are sorted by name; the header is padded with spaces
 * to a multiple of 8 bytes; tensor data is laid out by decreasing element size, then name, so that every
 * tensor starts at an offset aligned to its element size.
 */
export function serializeSafetensors(
  tensors: Record<string, SafetensorsInput> | Map<string, SafetensorsInput>,
  metadata?: Record<string, string>,
  options: ParseOptions = {},
): Uint8Array {
  const file = options.name;
  const list: { name: string; dtype: SafetensorsDType; shape: number[]; data: SafetensorsInput['data'];
    bytes: number; begin: number }[] = [];
  const source = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of source) {
    if (name === '__metadata__') fail(file, name, 'the name "__metadata__" is reserved');
    if (t === null || typeof t !== 'object') fail(file, name, 'not a {dtype, shape, data} object');
    const dtype = t.dtype ?? inferDType(t.data);
    if (dtype === undefined || !isDType(dtype)) {
      fail(file, name, `unsupported dtype ${JSON.stringify(t.dtype ?? arrayKind(t.data))}`);
    }
    if (!COMPATIBLE[dtype].includes(arrayKind(t.data))) {
      fail(file, name, `cannot write a ${arrayKind(t.data)} as ${dtype}`);
    }
    if (!Array.isArray(t.shape) || !t.shape.every(isNonNegInt)) fail(file, name, `invalid shape ${JSON.stringify(t.shape)}`);
    const count = product(t.shape);
    if (count !== t.data.length) {
      fail(file, name, `shape [${t.shape.join(', ')}] has ${count} elements but the data holds ${t.data.length}`);
    }
    list.push({ name, dtype, shape: t.shape.slice(), data: t.data, bytes: count * DTYPE_SIZE[dtype], begin: 0 });
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(file, undefined, `metadata value for ${JSON.stringify(k)} is not a string`);
    }
  }

  // Data layout: larger elements first (keeps alignment), then by name.
  const byLayout = list.slice().sort((a, b) =>
    DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let offset = 0;
  for (const t of byLayout) {
    t.begin = offset;
    offset += t.bytes;
  }
  const dataLen = offset;

  // The header is written by hand so that keys stay in sorted order (JS objects put integer-like keys first).
  const byName = list.slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const keys = Object.keys(metadata).sort();
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  for (const t of byName) {
    parts.push(`${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],` +
      `"data_offsets":[${t.begin},${t.begin + t.bytes}]}`);
  }
  let headerBytes = new TextEncoder().encode(`{${parts.join(',')}}`);
  const pad = (8 - (headerBytes.byteLength % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(headerBytes.byteLength + pad);
    padded.set(headerBytes);
    padded.fill(0x20, headerBytes.byteLength);
    headerBytes = padded;
  }

  const out = new Uint8Array(8 + headerBytes.byteLength + dataLen);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, headerBytes.byteLength % 2 ** 32, true);
  dv.setUint32(4, Math.floor(headerBytes.byteLength / 2 ** 32), true);
  out.set(headerBytes, 8);
  const dataStart = 8 + headerBytes.byteLength;
  for (const t of byLayout) encode(t.data, t.dtype, dv, dataStart + t.begin);
  return out;
}

function encode(data: SafetensorsInput['data'], dtype: SafetensorsDType, dv: DataView, at: number): void {
  const n = data.length;
  const out = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  switch (dtype) {
    case 'U8':
      out.set(data as Uint8Array, at);
      return;
    case 'F32':
      if (LITTLE_ENDIAN_HOST) {
        const f = data instanceof Float32Array ? data : Float32Array.from(data as Float64Array);
        out.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), at);
      } else {
        for (let i = 0; i < n; i++) dv.setFloat32(at + 4 * i, data[i], true);
      }
      return;
    case 'F64':
      if (LITTLE_ENDIAN_HOST) {
        const f = data instanceof Float64Array ? data : Float64Array.from(data as Float32Array);
        out.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), at);
      } else {
        for (let i = 0; i < n; i++) dv.setFloat64(at + 8 * i, data[i], true);
      }
      return;
    case 'F16':
      for (let i = 0; i < n; i++) dv.setUint16(at + 2 * i, floatToHalf(data[i]), true);
      return;
    case 'I32':
      for (let i = 0; i < n; i++) dv.setInt32(at + 4 * i, data[i], true);
      return;
    case 'I64':
      for (let i = 0; i < n; i++) {
        const v = data[i];
        dv.setInt32(at + 8 * i, v, true);
        dv.setInt32(at + 8 * i + 4, v < 0 ? -1 : 0, true);
      }
      return;
  }
}

// ------------------------------------------------------------------------------------------------ half floats

/** The value of an IEEE 754 binary16 bit pattern (exact in float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** The binary16 bit pattern nearest to x (round to nearest, ties to even; overflow → ±Infinity). */
export function floatToHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65520 = halfway between 65504 (max half) and 2^16: rounds up
  if (a < 2 ** -14) { // subnormal range: units of 2^-24
    return sign | roundHalfEven(a * 2 ** 24); // may round up to 0x400, the smallest normal, which is correct
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // guard log2 rounding
  else if (2 ** (e + 1) <= a) e++;
  const m = roundHalfEven((a / 2 ** e - 1) * 1024); // 0 … 1024 (1024 carries into the exponent)
  return sign | (((e + 15) << 10) + m);
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v), d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

// ------------------------------------------------------------------------------------------------ files (Node)
// (exported by `diffuse/node`; Node built-ins named by variables so that browser bundles of `diffuse` skip them)

const NODE_FS = 'node:fs/promises', NODE_PATH = 'node:path';

/** Read and parse a safetensors file (Node). */
export async function readSafetensorsFile(path: string): Promise<SafetensorsContents> {
  const fs = await (import(/* @vite-ignore */ NODE_FS) as Promise<typeof import('node:fs/promises')>);
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (e) {
    fail(path, undefined, `cannot read: ${(e as Error).message}`);
  }
  return parseSafetensors(bytes, { name: path });
}

/**
 * Serialize and write a safetensors file atomically (Node): the bytes go to a temporary file in the
 * same folder, are flushed to disk, and the temporary file is renamed over `path`. On failure the
 * temporary file is removed and `path` is left as it was.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafetensorsInput> | Map<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = serializeSafetensors(tensors, metadata, { name: path });
  const fs = await (import(/* @vite-ignore */ NODE_FS) as Promise<typeof import('node:fs/promises')>);
  const nodePath = await (import(/* @vite-ignore */ NODE_PATH) as Promise<typeof import('node:path')>);
  const dir = nodePath.dirname(path);
  const base = nodePath.basename(path);
  const tmp = nodePath.join(dir, `.${base}.${process.pid}.${Date.now().toString(36)}` +
    `${Math.random().toString(36).slice(2, 8)}.tmp`);
  let handle: Awaited<ReturnType<typeof fs.open>> | undefined;
  try {
    handle = await fs.open(tmp, 'wx');
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, path);
  } catch (e) {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    fail(path, undefined, `cannot write: ${(e as Error).message}`);
  }
}
