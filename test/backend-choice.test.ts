// Backend choice: the fastest backend that starts (Node: native → wasm → js; browsers: webgpu with a hardware
// adapter → wasm → js), an explicit choice used as asked or refused with the reason, and the one line that says so.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BACKEND_CHAINS, availableBackends, chooseBackend, getBackend, setBackend } from '../src/index.js';

const nativeHere = availableBackends().includes('native');

/** chooseBackend in a fresh process (the addon is loaded once per process), with extra environment. */
function chooseInChild(env: Record<string, string>, args = ''): { code: number; out: string; err: string } {
  const code = `import('./src/index.ts').then(async (m) => { const c = await m.chooseBackend(${args}); console.log(JSON.stringify({ name: c.name, line: c.line, skipped: c.skipped })); })` +
    '.catch((e) => { console.log(JSON.stringify({ error: e.message })); });';
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    encoding: 'utf8', env: { ...process.env, DIFFUSE_BACKEND: '', ...env }, timeout: 60_000,
  });
  return { code: r.status ?? -1, out: r.stdout.trim().split('\n').pop() ?? '', err: r.stderr };
}

test('Node: the chain is native → wasm → js, and the default is the first that starts', { skip: !nativeHere && 'native addon not built' }, async () => {
  assert.deepEqual(BACKEND_CHAINS.node, ['native', 'wasm', 'js']);
  const prev = process.env.DIFFUSE_BACKEND;
  delete process.env.DIFFUSE_BACKEND;
  try {
    const c = await chooseBackend();
    assert.equal(c.name, 'native');
    assert.equal(c.chosenBy, 'default');
    assert.deepEqual(c.skipped, []);
    assert.equal(c.line, 'diffuse: backend native (the fastest here)');
    assert.equal(getBackend().name, 'native');
  } finally {
    if (prev !== undefined) process.env.DIFFUSE_BACKEND = prev;
    setBackend(nativeHere ? 'native' : 'js');
  }
});

test('Node without the addon: wasm, and the line says why native did not start; without either: js', () => {
  const r = chooseInChild({ DIFFUSE_NATIVE_ADDON: '/nonexistent/diffuse_native.node' });
  const o = JSON.parse(r.out);
  assert.equal(o.name, 'wasm', r.err);
  assert.deepEqual(o.skipped.map((s: { name: string }) => s.name), ['native']);
  assert.match(o.line, /^diffuse: backend wasm: native did not start \(addon not built \(\/nonexistent\/diffuse_native\.node is missing/);
  const both = JSON.parse(chooseInChild({ DIFFUSE_NATIVE_ADDON: '/nonexistent/diffuse_native.node', DIFFUSE_WASM_MODULE: '/nonexistent/k.wasm' }).out);
  assert.equal(both.name, 'js');
  assert.deepEqual(both.skipped.map((s: { name: string }) => s.name), ['native', 'wasm']);
  assert.match(both.line, /; wasm did not start \(cannot read \/nonexistent\/k\.wasm: /);
});

test('an explicit choice is used as asked, or refused with the reason (never a silent fallback)', async () => {
  const js = await chooseBackend({ backend: 'js', chosenBy: '--backend' });
  assert.equal(js.name, 'js');
  assert.equal(js.line, 'diffuse: backend js (chosen by --backend)');
  assert.equal(getBackend().name, 'js');
  await assert.rejects(chooseBackend({ backend: 'cuda', chosenBy: '--backend' }), /^Error: --backend: unknown backend 'cuda' \(choose one of js, native, wasm, webgpu\)$/);
  const wasm = await chooseBackend({ backend: 'wasm', chosenBy: '--backend' });
  assert.equal(wasm.line, 'diffuse: backend wasm (chosen by --backend)');
  assert.equal(getBackend().name, 'wasm');
  // DIFFUSE_BACKEND is the same kind of choice
  const env = JSON.parse(chooseInChild({ DIFFUSE_BACKEND: 'js' }).out);
  assert.equal(env.line, 'diffuse: backend js (chosen by DIFFUSE_BACKEND)');
  const missing = JSON.parse(chooseInChild({ DIFFUSE_BACKEND: 'native', DIFFUSE_NATIVE_ADDON: '/nonexistent/x.node' }).out);
  assert.match(missing.error, /^DIFFUSE_BACKEND native: not available here: addon not built/);
  setBackend(nativeHere ? 'native' : 'js');
});

// Browsers: navigator.gpu stands in as a fake that gives no adapter or a software one; js then runs.
test('browsers: webgpu needs a hardware adapter, else wasm with the reason', async () => {
  assert.deepEqual(BACKEND_CHAINS.browser, ['webgpu', 'wasm', 'js']);
  const fakeGPU = (adapter: unknown) => ({ requestAdapter: async () => adapter }) as unknown as GPU;
  const cases: [GPU | undefined, RegExp][] = [
    [undefined, /webgpu did not start \(this browser has no WebGPU \(navigator\.gpu\)\)$/],
    [fakeGPU(null), /webgpu did not start \(no WebGPU adapter\)$/],
    [fakeGPU({ info: { isFallbackAdapter: true } }), /webgpu did not start \(only a software \(fallback\) WebGPU adapter\)$/],
  ];
  const prev = process.env.DIFFUSE_BACKEND;
  delete process.env.DIFFUSE_BACKEND;
  try {
    for (const [gpu, re] of cases) {
      const c = await chooseBackend({ platform: 'browser', gpu });
      assert.equal(c.name, 'wasm');
      assert.match(c.line, /^diffuse: backend wasm: /);
      assert.match(c.line, re);
    }
  } finally {
    if (prev !== undefined) process.env.DIFFUSE_BACKEND = prev;
    setBackend(nativeHere ? 'native' : 'js');
  }
});

test('the CLI says which backend runs when the work starts, and refuses an unknown --backend with exit 2', () => {
  const bad = spawnSync(process.execPath, ['bin/diffuse.mjs', 'sample', '--checkpoint', 'nowhere', '--backend', 'cuda'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 2, bad.stderr);
  assert.equal(bad.stderr.trim(), "diffuse: --backend: unknown backend 'cuda' (choose one of js, native, wasm, webgpu)");
  const out = mkdtempSync(join(tmpdir(), 'diffuse-choice-'));
  const ok = spawnSync(process.execPath, ['bin/diffuse.mjs', 'train', '--backend', 'js', '--steps', '1', '--batch-size', '2', '--limit', '4',
    '--sample-every', '0', '--checkpoint-every', '0', '--out', join(out, 'run')], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stderr.split('\n')[0], 'diffuse: backend js (chosen by --backend)');
});
