#!/usr/bin/env node
// The `diffuse` command. It runs the compiled dist/ (what `npm install` builds and the published package
// ships) unless a checkout's src/ has changed since dist/ was built: then it runs the TypeScript sources
// through tsx, so no build step is needed while developing. DIFFUSE_FROM_SOURCE=1 always runs the sources.
// (The compiled code also starts faster and leaves tsx's ~27 MB out of the process.)
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = `${root}dist/cli/main.js`;

/** Newest modification time of any file under dir (ms). */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const hasSource = existsSync(`${root}src/cli/main.ts`);
const fromSource = hasSource && (process.env.DIFFUSE_FROM_SOURCE === '1' || !existsSync(built) ||
  newest(`${root}src`) > statSync(built).mtimeMs);
let main;
if (fromSource) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main();
