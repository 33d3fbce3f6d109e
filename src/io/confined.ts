/**
 * Reading files that another file names (a checkpoint's weights, a pipeline's parts) without trusting the
 * name: it must be a plain file name inside the folder, the file a regular file (no device, FIFO or socket;
 * a symbolic link only when it resolves inside the folder), and its size within a limit checked before a
 * byte is read. The file is opened once and checked through that descriptor, so what is checked is what is
 * read. Errors are one line naming the file, never what lies outside the folder.
 */
import { node } from './files.js';

export class ConfinedFileError extends Error {
  override name = 'ConfinedFileError';
}

/** A portable file name with no folder part: letters, digits, '.', '_' and '-', not starting with '.'. */
export function isPlainFileName(name: unknown): name is string {
  return typeof name === 'string' && name.length >= 1 && name.length <= 255 && /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name);
}

/** Whether `path` (already resolved) lies inside `folder` (already resolved). */
function inside(folder: string, path: string): boolean {
  const { relative, isAbsolute } = node('the confined reader').path;
  const rel = relative(folder, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

export interface ConfinedReadOptions {
  /** Refuse files larger than this many bytes (checked before reading). */
  maxBytes: number;
  /** The exact size the file must have, when known (checked before reading). */
  expectBytes?: number;
  /** Who names the file, for messages (e.g. 'checkpoint.json files.model'). */
  namedBy?: string;
}

const oneLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0];

/** Reads `folder/name` under the rules above. */
export function readFileInFolder(folder: string, name: unknown, opts: ConfinedReadOptions): Buffer {
  const by = opts.namedBy ? ` (named by ${opts.namedBy})` : '';
  if (!isPlainFileName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name) : typeof name;
    throw new ConfinedFileError(`${shown}${by}: not a plain file name inside ${folder} (no folders, no leading '.')`);
  }
  const { fs: { lstatSync, realpathSync }, path: { join } } = node('readFileInFolder');
  const path = join(folder, name);
  let target = path;
  try {
    if (lstatSync(path).isSymbolicLink()) {
      let real: string;
      try {
        real = realpathSync(path);
      } catch {
        throw new ConfinedFileError(`${path}${by}: a symbolic link that leads nowhere (dangling or a loop)`);
      }
      if (!inside(realpathSync(folder), real)) throw new ConfinedFileError(`${path}${by}: a symbolic link out of its folder; refused`);
      target = real;
    }
  } catch (e) {
    if (e instanceof ConfinedFileError) throw e;
    throw new ConfinedFileError(`${path}${by}: missing or unreadable (${(e as NodeJS.ErrnoException).code ?? oneLine(e)})`);
  }
  return readRegularFile(target, { ...opts, shownAs: `${path}${by}`, noFollow: true });
}

export interface RegularReadOptions extends ConfinedReadOptions {
  /** The name used in messages (default: the path). */
  shownAs?: string;
  /** Refuse a symbolic link as the last part of the path. */
  noFollow?: boolean;
}

/**
 * Reads a file that must be a regular file (no device, FIFO or socket: they could hang or never end) no
 * larger than `maxBytes`, checked through the open descriptor before a byte is read.
 */
export function readRegularFile(path: string, opts: RegularReadOptions): Buffer {
  const shown = opts.shownAs ?? path;
  const { closeSync, constants, fstatSync, openSync, readSync } = node('readRegularFile').fs;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (opts.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    throw new ConfinedFileError(`${shown}: cannot open (${(e as NodeJS.ErrnoException).code ?? oneLine(e)})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfinedFileError(`${shown}: not a regular file`);
    if (opts.expectBytes !== undefined && st.size !== opts.expectBytes) {
      throw new ConfinedFileError(`${shown}: ${st.size} bytes where ${opts.expectBytes} were recorded (truncated or replaced)`);
    }
    if (st.size > opts.maxBytes) throw new ConfinedFileError(`${shown}: ${st.size} bytes, over the limit of ${opts.maxBytes}`);
    const out = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < out.length) {
      const n = readSync(fd, out, off, out.length - off, off);
      if (n === 0) throw new ConfinedFileError(`${shown}: shorter than its recorded size (changed while reading)`);
      off += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}
