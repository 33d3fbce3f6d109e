// Runs `diffuse` main() once per command line listed in the JSON file argv[2] (an array of argument lists),
// capturing each one's exit code and output, and writes the results to <file>.out. Used by
// test/fuzz-inputs.test.ts, which holds the whole run to one time limit.
import { readFileSync, writeFileSync } from 'node:fs';
import { main } from '../../src/cli/main.js';

const spec = process.argv[2];
const cases = JSON.parse(readFileSync(spec, 'utf8')) as string[][];
const results: { code: number; out: string; err: string; ms: number }[] = [];
const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
for (const args of cases) {
  let out = '', err = '';
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  process.exitCode = undefined;
  let code: number;
  const t0 = performance.now();
  try {
    code = await main(['node', 'diffuse', ...args]);
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
  results.push({ code, out, err, ms: Math.round(performance.now() - t0) });
  // After every case, so a run stopped by its time limit still shows how far it got.
  writeFileSync(`${spec}.out`, JSON.stringify(results));
}
