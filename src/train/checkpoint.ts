/**
 * Checkpoints: weights in safetensors with PyTorch names and layouts (they load into the PyTorch
 * transcription in bench/unet_torch.py unchanged), plus `checkpoint.json` with the configs and trainer state.
 *
 * Crash safety: each save writes new, step-numbered weight files first and `checkpoint.json` last (each
 * atomically: temporary file, then rename), so the JSON always names complete files; older files are removed
 * only after the new JSON is in place. The JSON records each file's size and SHA-256, so a truncated or
 * tampered file is caught on load with an error naming it.
 */
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../io/safetensors.js';
import { joinPath as join, node, writeFileAtomic } from '../io/files.js';
import { ConfinedFileError, isPlainFileName, readFileInFolder } from '../io/confined.js';

export const CHECKPOINT_JSON = 'checkpoint.json';
const FORMAT = 'diffuse-checkpoint';
const VERSION = 1;

export interface FileRecord { file: string; bytes: number; sha256: string }

export interface CheckpointJson<C = unknown, S = unknown> {
  format: typeof FORMAT;
  version: number;
  /** Everything needed to rebuild the model, schedule and objective (and to continue training). */
  config: C;
  /** Trainer state: step, generator states, data order, … */
  state: S;
  /** The weight files: `model`, `ema`, `optimizer` → file record. */
  files: Record<string, FileRecord>;
}

export type TensorGroup = Map<string, SafetensorsInput>;

const sha256 = (b: Uint8Array) => node('checkpoint files').crypto.createHash('sha256').update(b).digest('hex');

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/**
 * The bytes of a checkpoint's weight files, named as saveCheckpoint names them (no file system: the browser's
 * trainer uses this too, then checkpointJsonBytes with the files' SHA-256).
 */
export function encodeCheckpointFiles(step: number, groups: Record<string, TensorGroup>, metadata: Record<string, string> = {},
  dir = ''): { role: string; file: string; bytes: Uint8Array }[] {
  return Object.entries(groups).map(([role, tensors]) => {
    const file = `${role}-${String(step).padStart(8, '0')}.safetensors`;
    return { role, file, bytes: serializeSafetensors(tensors, { format: 'pt', ...metadata }, { name: dir ? join(dir, file) : file }) };
  });
}

/** checkpoint.json for encoded files and their SHA-256 (hex), as saveCheckpoint writes it. */
export function checkpointJsonBytes<C, S>(config: C, state: S, files: { role: string; file: string; bytes: Uint8Array; sha256: string }[]):
  { json: CheckpointJson<C, S>; bytes: Uint8Array } {
  const records: Record<string, FileRecord> = {};
  for (const f of files) records[f.role] = { file: f.file, bytes: f.bytes.length, sha256: f.sha256 };
  const json: CheckpointJson<C, S> = { format: FORMAT, version: VERSION, config, state, files: records };
  return { json, bytes: new TextEncoder().encode(JSON.stringify(json, null, 1)) };
}

/** Writes a checkpoint into `dir` (which must exist). `groups` maps a role (model, ema, optimizer) to tensors. */
export function saveCheckpoint<C, S>(dir: string, step: number, config: C, state: S,
  groups: Record<string, TensorGroup>, metadata: Record<string, string> = {}): CheckpointJson<C, S> {
  const encoded = encodeCheckpointFiles(step, groups, metadata, dir).map((f) => ({ ...f, sha256: sha256(f.bytes) }));
  for (const f of encoded) writeFileAtomic(join(dir, f.file), f.bytes);
  const { json, bytes } = checkpointJsonBytes(config, state, encoded);
  const files = json.files;
  writeFileAtomic(join(dir, CHECKPOINT_JSON), bytes);
  // Only now are the previous files unreferenced.
  const keep = new Set(Object.values(files).map((f) => f.file));
  for (const f of node('saveCheckpoint').fs.readdirSync(dir)) {
    if (/^[a-z]+-\d{8}\.safetensors$/.test(f) && !keep.has(f) && Object.keys(groups).some((r) => f.startsWith(`${r}-`))) {
      try { node('saveCheckpoint').fs.unlinkSync(join(dir, f)); } catch { /* already gone */ }
    }
  }
  return json;
}

/** checkpoint.json is configuration and trainer state: far below this. */
export const MAX_CHECKPOINT_JSON_BYTES = 64 * 2 ** 20;
/** No weight file is read past this size (the model's own bound is tighter; see loadCheckpointGroup). */
export const MAX_WEIGHT_FILE_BYTES = 2 ** 32 - 1;

/** The folder and file name of a checkpoint given its folder or its JSON file. */
function locate(pathOrDir: string): { dir: string; file: string } {
  let isDir = false;
  try {
    isDir = node('checkpoint files').fs.statSync(pathOrDir).isDirectory();
  } catch {
    throw new CheckpointError(`${pathOrDir}: no checkpoint here (no such folder or file)`);
  }
  const { dirname, basename } = node('checkpoint files').path;
  return isDir ? { dir: pathOrDir, file: CHECKPOINT_JSON } : { dir: dirname(pathOrDir), file: basename(pathOrDir) };
}

/** Reads and checks `dir/checkpoint.json` (not the weights): format, version and the file records. */
export function readCheckpointJson<C = unknown, S = unknown>(pathOrDir: string): CheckpointJson<C, S> {
  const { dir, file } = locate(pathOrDir);
  const path = join(dir, file);
  let text: string;
  try {
    text = readFileInFolder(dir, file, { maxBytes: MAX_CHECKPOINT_JSON_BYTES }).toString('utf8');
  } catch (e) {
    if (e instanceof ConfinedFileError && /missing/.test(e.message)) {
      throw new CheckpointError(`${path}: no checkpoint here (expected ${CHECKPOINT_JSON} in the folder)`);
    }
    throw new CheckpointError((e as Error).message);
  }
  let json: CheckpointJson<C, S>;
  try {
    json = JSON.parse(text) as CheckpointJson<C, S>;
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json) || json.format !== FORMAT) {
    throw new CheckpointError(`${path}: not a diffuse checkpoint (no "format": "${FORMAT}")`);
  }
  if (typeof json.version === 'number' && Number.isInteger(json.version) && json.version > VERSION) {
    throw new CheckpointError(`${path}: checkpoint version ${json.version} is newer than this diffuse (${VERSION})`);
  }
  if (json.version !== VERSION) throw new CheckpointError(`${path}: field version must be ${VERSION}, got ${JSON.stringify(json.version)}`);
  if (!json.files || typeof json.files !== 'object' || Array.isArray(json.files)) throw new CheckpointError(`${path}: field files must list the weight files`);
  for (const [role, rec] of Object.entries(json.files as Record<string, unknown>)) {
    const r = rec as Partial<FileRecord> | null;
    const field = `files.${role}`;
    if (r === null || typeof r !== 'object') throw new CheckpointError(`${path}: field ${field} must be an object`);
    if (!isPlainFileName(r.file)) throw new CheckpointError(`${path}: field ${field}.file must be a plain file name inside the folder, got ${JSON.stringify(r.file)?.slice(0, 80)}`);
    if (typeof r.bytes !== 'number' || !Number.isSafeInteger(r.bytes) || r.bytes < 8 || r.bytes > MAX_WEIGHT_FILE_BYTES) {
      throw new CheckpointError(`${path}: field ${field}.bytes must be an integer in 8…${MAX_WEIGHT_FILE_BYTES}, got ${JSON.stringify(r.bytes)}`);
    }
    if (typeof r.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(r.sha256)) throw new CheckpointError(`${path}: field ${field}.sha256 must be 64 lowercase hex digits`);
  }
  for (const key of ['config', 'state'] as const) {
    const v = json[key] as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CheckpointError(`${path}: field ${key} must be an object`);
  }
  return json;
}

/** The folder holding checkpoint.json, given the folder or the JSON file. */
export function checkpointDir(pathOrDir: string): string {
  return locate(pathOrDir).dir;
}

export interface LoadGroupOptions {
  /** Refuse a weight file larger than this (default MAX_WEIGHT_FILE_BYTES); set it from the model's size. */
  maxBytes?: number;
}

/**
 * Loads one weight group: the file must be a plain name inside `dir` and a regular file of the recorded
 * size (checked before reading), its SHA-256 must match, and every value must be finite.
 */
export function loadCheckpointGroup(dir: string, json: CheckpointJson, role: string, opts: LoadGroupOptions = {}): Map<string, { shape: number[]; data: Float32Array }> {
  const rec = json.files[role];
  if (!rec) throw new CheckpointError(`${join(dir, CHECKPOINT_JSON)}: no '${role}' weights in this checkpoint`);
  const maxBytes = Math.min(opts.maxBytes ?? MAX_WEIGHT_FILE_BYTES, MAX_WEIGHT_FILE_BYTES);
  if (rec.bytes > maxBytes) {
    throw new CheckpointError(`${join(dir, CHECKPOINT_JSON)}: files.${role}.bytes is ${rec.bytes}, more than this model's weights can take (${maxBytes})`);
  }
  const path = join(dir, String(rec.file));
  let bytes: Buffer;
  try {
    bytes = readFileInFolder(dir, rec.file, { maxBytes, expectBytes: rec.bytes, namedBy: `${CHECKPOINT_JSON} files.${role}` });
  } catch (e) {
    throw new CheckpointError((e as Error).message);
  }
  if (sha256(bytes) !== rec.sha256) throw new CheckpointError(`${path}: checksum does not match ${CHECKPOINT_JSON} (the file was modified)`);
  const parsed = parseSafetensors(bytes, { name: path });
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of parsed.tensors) {
    if (!(t.data instanceof Float32Array)) throw new CheckpointError(`${path}: tensor ${name} is ${t.dtype}, expected floating point`);
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) throw new CheckpointError(`${path}: tensor ${name} holds ${d[i]} at index ${i}: weights must be finite`);
    }
    out.set(name, { shape: t.shape, data: d });
  }
  return out;
}

/** Our own files in a checkpoint folder: atomic-write temporaries and step-numbered weights. */
const TEMP_FILE = /^\..+\.\d+\.[a-z0-9]+\.tmp$/;
const STEP_FILE = /^[a-z]+-\d{8}\.safetensors$/;

/**
 * Removes what interrupted saves leave behind in `dir`: temporary files of atomic writes, and step-numbered
 * weight files that checkpoint.json does not name (written before a crash or a full disk stopped the save).
 * Returns the names removed. Nothing is removed when checkpoint.json exists but cannot be read.
 */
export function removeCheckpointDebris(dir: string): string[] {
  let referenced = new Set<string>();
  let names: string[];
  try {
    names = node('removeCheckpointDebris').fs.readdirSync(dir);
  } catch {
    return [];
  }
  if (names.includes(CHECKPOINT_JSON)) {
    try {
      referenced = new Set(Object.values(readCheckpointJson(dir).files).map((f) => f.file));
    } catch {
      return [];
    }
  }
  const removed: string[] = [];
  for (const f of names) {
    if (TEMP_FILE.test(f) || (STEP_FILE.test(f) && !referenced.has(f))) {
      try { node('removeCheckpointDebris').fs.unlinkSync(join(dir, f)); removed.push(f); } catch { /* already gone */ }
    }
  }
  return removed;
}
