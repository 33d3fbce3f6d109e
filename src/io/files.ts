/**
 * Node's fs, path and crypto for modules that the browser-safe entry (`diffuse`) also carries (the trainer, the
 * checkpoint format, the confined reader), and the atomic file write. Loaded once, only under Node, through variable specifiers so that bundlers leave them
 * out of browser bundles; in a page `node()` throws, so only the file functions are unavailable there.
 */
type Fs = typeof import('node:fs');
type Path = typeof import('node:path');
type Crypto = typeof import('node:crypto');

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
const FS = 'node:fs', PATH = 'node:path', CRYPTO = 'node:crypto';

const loaded: { fs: Fs; path: Path; crypto: Crypto } | null = isNode
  ? await Promise.all([
    import(/* @vite-ignore */ FS) as Promise<Fs>,
    import(/* @vite-ignore */ PATH) as Promise<Path>,
    import(/* @vite-ignore */ CRYPTO) as Promise<Crypto>,
  ]).then(([fs, path, crypto]) => ({ fs, path, crypto }))
  : null;

/** Node's modules; `what` names the caller in the error a browser gets. */
export function node(what: string): { fs: Fs; path: Path; crypto: Crypto } {
  if (!loaded) throw new Error(`${what} needs Node (files); in a browser use the in-memory functions`);
  return loaded;
}

/** Joins path segments: Node's path.join under Node, '/' elsewhere (names in error messages only). */
export function joinPath(...parts: string[]): string {
  return loaded ? loaded.path.join(...parts) : parts.filter(Boolean).join('/');
}

/** Writes bytes to `path` atomically (temporary file in the same folder, fsync, rename). */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const { fs, path: p } = node('writeFileAtomic');
  const tmp = p.join(p.dirname(path), `.${p.basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'w');
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) try { fs.closeSync(fd); } catch { /* already failing */ }
    try { fs.unlinkSync(tmp); } catch { /* never created */ }
    throw new Error(`cannot write ${path}: ${(e as Error).message}`);
  }
}
