/**
 * Checkpoints: weights in safetensors with PyTorch names and layouts (they load into the PyTorch
 * transcription in bench/unet_torch.py unchanged), plus `checkpoint.json` with the configs and trainer state.
 *
 * Crash safety: each save writes new, step-numbered weight files first and `checkpoint.json` last (each
 * atomically: temporary file, then rename), so the JSON always names complete files; older files are removed
 * only after the new JSON is in place. The JSON records each file's size and SHA-256, so a truncated or
 * tampered file is caught on load with an error naming it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors, type SafetensorsInput } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/png.js';

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

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** Writes a checkpoint into `dir` (which must exist). `groups` maps a role (model, ema, optimizer) to tensors. */
export function saveCheckpoint<C, S>(dir: string, step: number, config: C, state: S,
  groups: Record<string, TensorGroup>, metadata: Record<string, string> = {}): CheckpointJson<C, S> {
  const files: Record<string, FileRecord> = {};
  for (const [role, tensors] of Object.entries(groups)) {
    const file = `${role}-${String(step).padStart(8, '0')}.safetensors`;
    const bytes = serializeSafetensors(tensors, { format: 'pt', ...metadata }, { name: join(dir, file) });
    writeFileAtomic(join(dir, file), bytes);
    files[role] = { file, bytes: bytes.length, sha256: sha256(bytes) };
  }
  const json: CheckpointJson<C, S> = { format: FORMAT, version: VERSION, config, state, files };
  writeFileAtomic(join(dir, CHECKPOINT_JSON), new TextEncoder().encode(JSON.stringify(json, null, 1)));
  // Only now are the previous files unreferenced.
  const keep = new Set(Object.values(files).map((f) => f.file));
  for (const f of readdirSync(dir)) {
    if (/^[a-z]+-\d{8}\.safetensors$/.test(f) && !keep.has(f) && Object.keys(groups).some((r) => f.startsWith(`${r}-`))) {
      try { unlinkSync(join(dir, f)); } catch { /* already gone */ }
    }
  }
  return json;
}

/** Reads and checks `dir/checkpoint.json` (not the weights). */
export function readCheckpointJson<C = unknown, S = unknown>(dir: string): CheckpointJson<C, S> {
  const path = existsSync(dir) && statSync(dir).isDirectory() ? join(dir, CHECKPOINT_JSON) : dir;
  if (!existsSync(path)) throw new CheckpointError(`${path}: no checkpoint here (expected ${CHECKPOINT_JSON} in the folder)`);
  let json: CheckpointJson<C, S>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as CheckpointJson<C, S>;
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (json?.format !== FORMAT || typeof json.version !== 'number') throw new CheckpointError(`${path}: not a diffuse checkpoint`);
  if (json.version > VERSION) throw new CheckpointError(`${path}: checkpoint version ${json.version} is newer than this diffuse (${VERSION})`);
  if (!json.files || typeof json.files !== 'object') throw new CheckpointError(`${path}: no weight files listed`);
  return json;
}

/** The folder holding checkpoint.json, given the folder or the JSON file. */
export function checkpointDir(pathOrDir: string): string {
  return existsSync(pathOrDir) && statSync(pathOrDir).isFile() ? join(pathOrDir, '..') : pathOrDir;
}

/** Loads one weight group, verifying size and checksum against the JSON. */
export function loadCheckpointGroup(dir: string, json: CheckpointJson, role: string): Map<string, { shape: number[]; data: Float32Array }> {
  const rec = json.files[role];
  if (!rec) throw new CheckpointError(`${join(dir, CHECKPOINT_JSON)}: no '${role}' weights in this checkpoint`);
  const path = join(dir, rec.file);
  if (!existsSync(path)) throw new CheckpointError(`${path}: missing (listed in ${CHECKPOINT_JSON})`);
  const bytes = readFileSync(path);
  if (bytes.length !== rec.bytes) throw new CheckpointError(`${path}: ${bytes.length} bytes, ${CHECKPOINT_JSON} says ${rec.bytes} (truncated or replaced)`);
  if (sha256(bytes) !== rec.sha256) throw new CheckpointError(`${path}: checksum does not match ${CHECKPOINT_JSON} (the file was modified)`);
  const parsed = parseSafetensors(bytes, { name: path });
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of parsed.tensors) {
    if (!(t.data instanceof Float32Array)) throw new CheckpointError(`${path}: tensor ${name} is ${t.dtype}, expected floating point`);
    out.set(name, { shape: t.shape, data: t.data });
  }
  return out;
}
