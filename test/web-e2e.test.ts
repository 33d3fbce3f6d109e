// The diffusion explorer (web/) end to end in real headless Chromium: the app is built with Vite, served from a
// local static server and driven with playwright-core (Debian's chromium; no browser download). It runs the
// forward view and a 20-step sampling of the shipped MNIST model, reads the canvases back (the sample is neither
// blank nor the starting noise, and looks like a digit), checks that no request left the page's origin and
// that sampling works with the network off, and saves a screenshot (web/e2e-output/explorer.png; with
// UPDATE_SCREENSHOT=1 also docs/web-explorer.png). Without chromium the browser cases are skipped, and when CI
// is set a test fails saying so (.ci/install-browser.sh installs it).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, copyFileSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunRecord } from '../web/src/common.js'; // also declares window.explorer

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'web', 'e2e-output');
const DIST = join(OUT, 'dist');
const haveChromium = existsSync(CHROMIUM);
const skip = haveChromium ? false : `no chromium at ${CHROMIUM} (apt-get install chromium, or bash .ci/install-browser.sh)`;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.png': 'image/png', '.svg': 'image/svg+xml', '.safetensors': 'application/octet-stream',
};

/** A static file server for `dir` on 127.0.0.1 (an ephemeral port). */
function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

// Types of playwright-core, kept loose so the file typechecks where the package is absent.
type Browser = import('playwright-core').Browser;
type Page = import('playwright-core').Page;

/** Gray levels (0..255, the red channel) of a canvas. */
async function pixels(page: Page, id: string): Promise<number[]> {
  return page.evaluate((cid) => {
    const c = document.getElementById(cid) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const out: number[] = [];
    for (let i = 0; i < d.length; i += 4) out.push(d[i]);
    return out;
  }, id);
}

const meanOf = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const std = (a: number[]) => { const m = meanOf(a); return Math.sqrt(meanOf(a.map((v) => (v - m) ** 2))); };
const meanAbsDiff = (a: number[], b: number[]) => meanOf(a.map((v, i) => Math.abs(v - b[i])));

async function setInput(page: Page, id: string, value: string): Promise<void> {
  await page.$eval(`#${id}`, (el, v) => {
    (el as HTMLInputElement).value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

/** A short deterministic sampling (DDIM, 3 steps, class 7, seed 1): its sample's pixels and ms per step. */
async function ddimSample(page: Page): Promise<{ sample: number[]; noise: number[]; run: RunRecord }> {
  await page.selectOption('#rv-sampler', 'ddim');
  await setInput(page, 'rv-steps', '3');
  await setInput(page, 'rv-seed', '1');
  await page.selectOption('#rv-class', '7');
  await setInput(page, 'rv-guidance', '1');
  await page.click('#rv-run');
  await page.waitForSelector('#reverse[data-state="done"], #reverse[data-state="error"]', { timeout: 120_000 });
  assert.equal(await page.getAttribute('#reverse', 'data-state'), 'done', await page.textContent('#rv-info') ?? '');
  return { sample: await pixels(page, 'rv-xt'), noise: await pixels(page, 'rv-xT'), run: await page.evaluate(() => window.explorer!.runs.at(-1)!) };
}

test('chromium is installed where CI runs', { skip: process.env.CI ? false : 'CI is not set' }, () => {
  assert.ok(haveChromium, `CI is set but there is no chromium at ${CHROMIUM}: run bash .ci/install-browser.sh`);
});

describe('web explorer in headless chromium', { skip }, () => {
  let server: Server, browser: Browser, origin: string;
  let jsReference: number[] | undefined;

  before(async () => {
    const { build } = await import('vite');
    rmSync(DIST, { recursive: true, force: true });
    await build({ configFile: join(ROOT, 'web', 'vite.config.ts'), logLevel: 'warn', build: { outDir: DIST, emptyOutDir: true } });
    server = await serve(DIST);
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      // The last two give headless chromium a WebGPU adapter (SwiftShader) where the machine allows it.
      args: ['--headless', '--no-sandbox', '--disable-background-networking', '--enable-unsafe-webgpu', '--enable-features=Vulkan'],
    });
  });

  after(async () => {
    await browser?.close();
    await new Promise((ok) => (server ? server.close(ok) : ok(undefined)));
  });

  test('forward view, 20-step sampling and the score view on the js backend', async (t) => {
    const context = await browser.newContext({ viewport: { width: 1600, height: 1100 } });
    const page = await context.newPage();
    const requests: string[] = [], errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

    await page.goto(`${origin}/?backend=js`);
    await page.waitForSelector('body[data-ready]', { timeout: 30_000 });
    assert.equal(await page.getAttribute('body', 'data-ready'), '1', await page.textContent('#status') ?? '');
    assert.equal(await page.evaluate(() => window.explorer?.backend), 'js');

    // Forward process: x_t at t = 0 is the digit; at t = 999 it no longer is.
    const x0 = await pixels(page, 'fw-x0');
    assert.ok(std(x0) > 40, 'the digit canvas is blank');
    const slide = async (t: number) => {
      await setInput(page, 'fw-t', String(t));
      await page.waitForSelector(`#forward[data-t="${t}"]`, { state: 'attached', timeout: 10_000 });
    };
    await slide(0);
    const xt0 = await pixels(page, 'fw-xt');
    await slide(999);
    const xtT = await pixels(page, 'fw-xt');
    // The canvases differ in size (112 and 196 px), so compare their mean gray levels.
    assert.ok(Math.abs(meanOf(xt0) - meanOf(x0)) < 6, `x_0 mean ${meanOf(x0)} vs x_t(0) mean ${meanOf(xt0)}`);
    assert.ok(meanAbsDiff(xt0, xtT) > 40, 'x_t at t = 999 looks like x_0');
    await setInput(page, 'fw-schedule', 'cosine');
    await slide(400);
    assert.match(await page.textContent('#fw-xt-cap') ?? '', /t = 400/);

    // Reverse process, offline (everything is loaded): a short DDIM run, the reference for the WebGPU case below,
    // then 20 DPM-Solver++ steps for class 3.
    await context.setOffline(true);
    jsReference = (await ddimSample(page)).sample;
    await page.selectOption('#rv-sampler', 'dpmSolverPlusPlus');
    await setInput(page, 'rv-steps', '20');
    await page.selectOption('#rv-class', '3');
    await setInput(page, 'rv-guidance', '1');
    const t0 = Date.now();
    await page.click('#rv-run');
    await page.waitForSelector('#reverse[data-state="done"], #reverse[data-state="error"]', { timeout: 120_000 });
    const sampleMs = Date.now() - t0;
    assert.equal(await page.getAttribute('#reverse', 'data-state'), 'done', await page.textContent('#rv-info') ?? '');
    const noise = await pixels(page, 'rv-xT'), sample = await pixels(page, 'rv-xt'), x0hat = await pixels(page, 'rv-x0');
    assert.ok(std(sample) > 40, `the sample is blank (std ${std(sample).toFixed(1)})`);
    assert.ok(meanAbsDiff(sample, noise) > 40, `the sample is still the starting noise (mean |Δ| ${meanAbsDiff(sample, noise).toFixed(1)})`);
    const dark = (a: number[]) => a.filter((v) => v < 64).length / a.length;
    assert.ok(dark(sample) > 0.6 && dark(noise) < 0.5, `not digit-like: dark fraction ${dark(sample).toFixed(2)} (noise ${dark(noise).toFixed(2)})`);
    assert.ok(meanAbsDiff(sample, x0hat) < 10, 'after the last step x_t and x̂_0 should agree');
    const run: RunRecord = await page.evaluate(() => window.explorer!.runs.at(-1)!);
    assert.equal(run.state, 'done');
    assert.equal(run.msPerStep.length, 20);
    const msPerStep = run.msPerStep.reduce((s, v) => s + v, 0) / run.msPerStep.length;
    t.diagnostic(`js backend: 20 steps in ${(sampleMs / 1000).toFixed(1)} s, ${msPerStep.toFixed(0)} ms per step (model + update), NFE ${run.nfe}`);

    // Inpainting: the bottom half of the digit regenerated in 6 DDIM steps; the top half is kept exactly.
    await page.selectOption('#rv-sampler', 'ddim');
    await setInput(page, 'rv-steps', '6');
    await page.click('#ip-half');
    await page.click('#ip-run');
    await page.waitForSelector('#inpaint[data-state="done"], #inpaint[data-state="error"]', { timeout: 60_000 });
    assert.equal(await page.getAttribute('#inpaint', 'data-state'), 'done', await page.textContent('#ip-cap') ?? '');
    const digit = await pixels(page, 'ip-canvas'), filled = await pixels(page, 'ip-out');
    const half = digit.length / 2;
    assert.ok(meanAbsDiff(digit.slice(0, half), filled.slice(0, half)) < 1, 'inpainting changed the kept half');
    assert.ok(std(filled.slice(half)) > 30, 'the regenerated half is blank');
    await page.selectOption('#rv-sampler', 'dpmSolverPlusPlus'); // as the 20-step run, for the screenshot
    await setInput(page, 'rv-steps', '20');

    // The score view: 20 DDPM steps of the toy model move samples along the arrows.
    await setInput(page, 'sc-steps', '20');
    await page.click('#sc-run');
    await page.waitForSelector('#score[data-state="done"], #score[data-state="error"]', { timeout: 60_000 });
    assert.equal(await page.getAttribute('#score', 'data-state'), 'done', await page.textContent('#sc-cap') ?? '');
    await context.setOffline(false);

    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, 'explorer.png'), fullPage: true });
    if (process.env.UPDATE_SCREENSHOT) copyFileSync(join(OUT, 'explorer.png'), join(ROOT, 'docs', 'web-explorer.png'));

    const foreign = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:'));
    assert.deepEqual(foreign, [], 'requests left the origin');
    assert.deepEqual(errors, [], 'errors in the page');
    await context.close();
  });

  test('sampling on the WebGPU backend matches the js backend', async (t) => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/?backend=webgpu`);
    await page.waitForSelector('body[data-ready]', { timeout: 60_000 });
    const adapter = await page.evaluate(async () => {
      const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      return !!(gpu && (await gpu.requestAdapter()));
    });
    if (!adapter) {
      t.skip('this chromium gives no WebGPU adapter here');
      await page.close();
      return;
    }
    assert.equal(await page.evaluate(() => window.explorer?.backend), 'webgpu', await page.textContent('#status') ?? '');
    const { sample, noise, run } = await ddimSample(page);
    const ms = run.msPerStep.reduce((s, v) => s + v, 0) / run.msPerStep.length;
    t.diagnostic(`webgpu backend (headless chromium's adapter): ${ms.toFixed(0)} ms per step, DDIM 3 steps`);
    assert.ok(meanAbsDiff(sample, noise) > 40, 'the WebGPU sample is still the starting noise');
    assert.ok(jsReference, 'the js case did not run');
    const d = meanAbsDiff(sample, jsReference);
    assert.ok(d < 2, `WebGPU and js samples differ by ${d.toFixed(2)} gray levels on average`);
    assert.deepEqual(errors, [], 'errors in the page');
    await page.close();
  });
});
