// The npm package as a user gets it: `npm pack`, installed into an empty project; there `diffuse` and
// `diffuse/node` import in Node and the shipped MNIST model samples (the same digits as this checkout gives),
// a page importing `diffuse` bundles with Vite and samples in Chromium, and a TypeScript consumer typechecks.
// The tarball holds no tests or fixtures.
//
// The scratch install skips the native build (DIFFUSE_SKIP_NATIVE=1: a minute of compiling) and uses this
// checkout's addon through DIFFUSE_NATIVE_ADDON; that `npm install` builds the addon is the
// build-native script's job (native-kernels.test.ts tests the built addon).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { nativeAddonPath } from '../src/backends/native/index.js';

const ROOT = resolve(import.meta.dirname, '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const MODEL = 'web/public/data/mnist-unet';

// Samples the shipped MNIST UNet with `diffuse` only (DDIM, 2 steps, class 7, seed 1); the same source runs in
// Node and in the browser page. Prints / returns the sample's pixels.
const SAMPLE_SOURCE = `
import { Generator, UNet, chooseBackend, makeSchedule, noGrad, parseSafetensors, randn, runSampler, tensor, unetConfigFromJSON } from 'diffuse';
export async function sampleShipped(json, bytes, backend) {
  const choice = await chooseBackend(backend ? { backend, chosenBy: 'the test' } : {});
  const model = new UNet(unetConfigFromJSON(json.model.config));
  const { tensors } = parseSafetensors(bytes, { name: json.weights.file });
  model.loadStateDict(new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }])));
  model.eval();
  const schedule = makeSchedule(json.schedule);
  const gen = new Generator(1);
  const noise = randn([1, 1, 28, 28], gen);
  const cond = tensor(new Int32Array([7]), [1], { dtype: 'int32' });
  const x = noGrad(() => {
    const run = runSampler({ kind: 'ddim', steps: 2 }, (xt, t, c) => model.forward(xt, t, c), schedule, noise, { prediction: json.prediction, cond, gen });
    for (;;) { const r = run.next(); if (r.done) return r.value; }
  });
  return { backend: choice.name, line: choice.line, pixels: Array.from(await x.read()) };
}
`;

const npm = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });

const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('the npm package', { skip: !existsSync(nativeAddonPath()) && 'native addon not built' }, () => {
  let scratch: string, tarball: string, files: string[], size: number;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'diffuse-pkg-'));
    // npm pack runs `prepare` (tsc → dist/), as publishing does
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', scratch], ROOT)) as { filename: string; size: number; files: { path: string }[] }[];
    tarball = join(scratch, packed[0].filename);
    files = packed[0].files.map((f) => f.path);
    size = statSync(tarball).size;
    const app = join(scratch, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--prefer-offline', '--no-package-lock', tarball], app, { DIFFUSE_SKIP_NATIVE: '1' });
    writeFileSync(join(app, 'sample.js'), SAMPLE_SOURCE);
  });

  after(() => { if (scratch) rmSync(scratch, { recursive: true, force: true }); });

  test('the tarball holds the compiled entries, the native sources and the shipped models, and no tests', (t) => {
    t.diagnostic(`${tarball.split('/').pop()}: ${(size / 1024).toFixed(0)} KiB packed, ${files.length} files`);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.ts', 'dist/cli/main.js', 'bin/diffuse.mjs',
      'binding.gyp', 'native/src/gemm.cc', 'scripts/build-native.mjs', 'assets/judge/mnist-classifier.safetensors',
      `${MODEL}.json`, `${MODEL}.safetensors`, 'package.json', 'README.md',
      'dist/backends/wasm/diffuse_kernels.wasm', 'dist/backends/wasm/diffuse_kernels_st.wasm', 'dist/backends/wasm/diffuse_kernels_relaxed.wasm',
      'dist/export/pytorch/train.py', 'dist/export/pytorch/unet_torch.py']) {
      assert.ok(files.includes(f), `${f} is missing from the tarball`);
    }
    const unwanted = files.filter((f) => /(^|\/)(test|tests|fixtures|bench|tools)\/|\.test\.|\.map$|^src\//.test(f));
    assert.deepEqual(unwanted, [], 'tests, fixtures, benchmarks or sources in the tarball');
  });

  test('Node: diffuse and diffuse/node import, the shipped model samples on native as in this checkout', async () => {
    const app = join(scratch, 'app');
    const script = `
      import { readFileSync } from 'node:fs';
      import { sampleShipped } from './sample.js';
      import * as node from 'diffuse/node';
      import * as diffuse from 'diffuse';
      if (typeof node.loadModelFromCheckpoint !== 'function' || typeof node.Trainer !== 'function' || typeof node.encodePng !== 'function') throw new Error('diffuse/node is incomplete');
      if ('loadMnist' in diffuse || 'saveCheckpoint' in diffuse) throw new Error('diffuse exports Node-only modules');
      const dir = new URL('./node_modules/diffuse/${MODEL}', import.meta.url).pathname;
      const r = await sampleShipped(JSON.parse(readFileSync(dir + '.json', 'utf8')), readFileSync(dir + '.safetensors'));
      // the wasm backend from the package's dist/ (its .wasm files shipped beside the loader)
      const w = await sampleShipped(JSON.parse(readFileSync(dir + '.json', 'utf8')), readFileSync(dir + '.safetensors'), 'wasm');
      console.log(JSON.stringify({ ...r, wasmPixels: w.pixels, wasmBackend: w.backend }));`;
    writeFileSync(join(app, 'node-check.mjs'), script);
    const run = spawnSync(process.execPath, ['node-check.mjs'], { cwd: app, encoding: 'utf8', env: { ...process.env, DIFFUSE_BACKEND: '', DIFFUSE_NATIVE_ADDON: nativeAddonPath() } });
    assert.equal(run.status, 0, run.stderr);
    const got = JSON.parse(run.stdout.trim().split('\n').pop()!) as { backend: string; line: string; pixels: number[]; wasmPixels: number[]; wasmBackend: string };
    assert.equal(got.backend, 'native');
    assert.equal(got.line, 'diffuse: backend native (the fastest here)');
    // the same sampling from this checkout's sources gives the same digit
    const refModule = join(scratch, 'sample-checkout.mjs');
    writeFileSync(refModule, SAMPLE_SOURCE.replace("from 'diffuse'", `from '${pathToFileURL(join(ROOT, 'src', 'index.ts')).href}'`));
    const { sampleShipped } = await import(pathToFileURL(refModule).href);
    const ref = await sampleShipped(JSON.parse(readFileSync(join(ROOT, `${MODEL}.json`), 'utf8')), readFileSync(join(ROOT, `${MODEL}.safetensors`)), 'native');
    assert.equal(got.pixels.length, 784);
    assert.ok(maxDiff(got.pixels, ref.pixels) < 1e-5, `packaged and checkout samples differ by ${maxDiff(got.pixels, ref.pixels)}`);
    assert.ok(got.pixels.some((v) => v > 0.5) && got.pixels.some((v) => v < -0.5), 'not an image');
    assert.equal(got.wasmBackend, 'wasm');
    assert.ok(maxDiff(got.wasmPixels, ref.pixels) < 1e-4, `packaged wasm and checkout native samples differ by ${maxDiff(got.wasmPixels, ref.pixels)}`);
    nodePixels = ref.pixels;
  });

  let nodePixels: number[] | undefined;

  test('browser: a page importing diffuse bundles with Vite (no plugins) and samples in Chromium', { skip: !existsSync(CHROMIUM) && `no chromium at ${CHROMIUM}` }, async (t) => {
    const app = join(scratch, 'app'), page = join(app, 'page');
    mkdirSync(join(page, 'public'), { recursive: true });
    for (const ext of ['.json', '.safetensors']) cpSync(join(app, 'node_modules', 'diffuse', MODEL + ext), join(page, 'public', `mnist-unet${ext}`));
    writeFileSync(join(page, 'sample.js'), SAMPLE_SOURCE);
    writeFileSync(join(page, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
    writeFileSync(join(page, 'main.js'), `
      import { sampleShipped } from './sample.js';
      const json = await (await fetch('./mnist-unet.json')).json();
      const bytes = new Uint8Array(await (await fetch('./mnist-unet.safetensors')).arrayBuffer());
      window.result = await sampleShipped(json, bytes, 'js');`);
    const { build } = await import('vite');
    await build({ root: page, configFile: false, logLevel: 'warn', base: './', build: { outDir: join(page, 'dist'), target: 'es2022' } });
    const server = await serveDir(join(page, 'dist'));
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-background-networking'] });
    try {
      const p = await browser.newPage();
      const errors: string[] = [];
      p.on('pageerror', (e) => errors.push(e.message));
      await p.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await p.waitForFunction(() => (window as { result?: unknown }).result || document.title === 'error', null, { timeout: 60_000 }).catch(() => undefined);
      const r = await p.evaluate(() => (window as { result?: { backend: string; pixels: number[] } }).result);
      assert.ok(r, `no result from the page: ${errors.join('; ')}`);
      assert.equal(r.backend, 'js');
      assert.ok(nodePixels, 'the Node case did not run');
      const d = maxDiff(r.pixels, nodePixels);
      t.diagnostic(`browser (js) against Node (native): max |diff| ${d.toExponential(2)}`);
      assert.ok(d < 2e-3, `browser sample differs from Node's by ${d}`);
    } finally {
      await browser.close();
      await new Promise((ok) => server.close(ok));
    }
  });

  test('TypeScript: a consumer of both entries typechecks against the shipped .d.ts', () => {
    const app = join(scratch, 'app');
    writeFileSync(join(app, 'consumer.ts'), `
      import { Generator, UNet, chooseBackend, randn, type BackendChoice, type Tensor, type UNetConfig } from 'diffuse';
      import { loadModelFromCheckpoint, nativeInfo, saveImageGrid, type RunConfig } from 'diffuse/node';
      const x: Tensor = randn([2, 3], new Generator(0));
      const c: Promise<BackendChoice> = chooseBackend({ backend: 'js' });
      const cfg: Partial<UNetConfig> = { imageSize: 28 };
      const load: (path: string) => { model: UNet; config: RunConfig } = loadModelFromCheckpoint;
      export { x, c, cfg, load, nativeInfo, saveImageGrid };
      // @ts-expect-error: the browser entry has no checkpoint files
      import { saveCheckpoint } from 'diffuse';
      void saveCheckpoint;`);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false,
        lib: ['ES2022', 'DOM'], types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types'), join(app, 'node_modules', '@types')] },
      files: ['consumer.ts'],
    }));
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

function serveDir(dir: string): Promise<Server> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json' };
  const server = createServer((req, res) => {
    const path = join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = path.endsWith('/') ? join(path, 'index.html') : path;
    if (!file.startsWith(dir) || !existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}
