#!/usr/bin/env node
// The `diffuse` command. In a checkout (src/ present) it runs the TypeScript sources through tsx, so no build
// step is needed while developing; the published package has no src/ and runs the compiled dist/.
import { existsSync } from 'node:fs';

const fromSource = existsSync(new URL('../src/cli/main.ts', import.meta.url));
let main;
if (fromSource) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main();
