// The diffusion explorer (web/) end to end in real headless Chromium: the app is built with Vite, served from a
// local static server and driven with playwright-core (Debian's chromium; no browser download). It runs the
// forward view and a 20-step sampling of the shipped MNIST model, reads the canvases back (the sample is neither
// blank nor the starting noise, and looks like a digit), checks that no request left the page's origin and
// that sampling works with the network off; checks that invalid inputs are shown and run nothing; lays the page
// out at phone size (no horizontal overflow, every control tappable and at least 40 px); reloads the page offline
// (service worker); samples the distilled students (fetched only when chosen; DDIM in their N steps, N model
// evaluations; inpainting keeps the full UNet), also at phone size and offline; trains 50 steps in the Train view (the loss falls), pauses and resumes, downloads the
// checkpoint and samples it with `diffuse sample`; and on WebGPU, stops the first sampling while its kernels
// compile. Screenshots go to web/e2e-output/ (with UPDATE_SCREENSHOT=1 also docs/). Without chromium the browser
// cases are skipped, and when CI is set a test fails saying so (.ci/install-browser.sh installs it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { unzipSync } from 'fflate';
import type { RunRecord, TrainRecord } from '../web/src/common.js'; // also declares window.explorer

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'web', 'e2e-output');
const DIST = join(OUT, 'dist');
const haveChromium = existsSync(CHROMIUM);
const skip = haveChromium ? false : `no chromium at ${CHROMIUM} (apt-get install chromium, or bash .ci/install-browser.sh)`;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.png': 'image/png', '.svg': 'image/svg+xml', '.safetensors': 'application/octet-stream', '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
};
/** As the dev and preview servers send them (web/vite.config.ts): the page may share memory with workers. */
const ISOLATION = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

/** A static file server for `dir` on 127.0.0.1 (an ephemeral port). */
function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', ...ISOLATION }).end(readFileSync(file));
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
async function ddimSample(page: Page, timeout = 120_000): Promise<{ sample: number[]; noise: number[]; run: RunRecord }> {
  await page.selectOption('#rv-sampler', 'ddim');
  await setInput(page, 'rv-steps', '3');
  await setInput(page, 'rv-seed', '1');
  await page.selectOption('#rv-class', '7');
  await setInput(page, 'rv-guidance', '1');
  await page.click('#rv-run');
  await page.waitForSelector('#reverse[data-state="done"], #reverse[data-state="error"]', { timeout });
  assert.equal(await page.getAttribute('#reverse', 'data-state'), 'done', await page.textContent('#rv-info') ?? '');
  return { sample: await pixels(page, 'rv-xt'), noise: await pixels(page, 'rv-xT'), run: await page.evaluate(() => window.explorer!.runs.at(-1)!) };
}

async function waitReady(page: Page, timeout = 60_000): Promise<void> {
  await page.waitForSelector('body[data-ready]', { timeout });
  assert.equal(await page.getAttribute('body', 'data-ready'), '1', await page.textContent('#status') ?? '');
}

const runCount = (page: Page) => page.evaluate(() => window.explorer!.runs.length);

/**
 * Every visible control of the page at the current viewport: its size, whether it lies inside the viewport's
 * width, and whether a tap at its centre (scrolled into view) lands on it rather than on something covering it.
 */
async function controlReport(page: Page): Promise<{ id: string; w: number; h: number; inside: boolean; hit: boolean }[]> {
  return page.evaluate(() => {
    const out: { id: string; w: number; h: number; inside: boolean; hit: boolean }[] = [];
    const els = [...document.querySelectorAll<HTMLElement>('button, select, input, summary, a[href]')];
    for (const el of els) {
      const box0 = el.getBoundingClientRect();
      if (box0.width === 0 && box0.height === 0) continue; // hidden (the other tab)
      el.scrollIntoView({ block: 'center', inline: 'center' });
      const r = el.getBoundingClientRect();
      const x = r.left + r.width / 2, y = r.top + r.height / 2;
      const at = document.elementFromPoint(x, y);
      const label = el.id || `${el.tagName.toLowerCase()}:${(el.textContent ?? '').trim().slice(0, 30)}`;
      out.push({ id: label, w: r.width, h: r.height, inside: r.left >= 0 && r.right <= window.innerWidth + 0.5, hit: !!at && (at === el || el.contains(at) || (at as HTMLElement).closest('label')?.control === el) });
    }
    window.scrollTo(0, 0);
    return out;
  });
}

/** Visible canvases narrower than min(100 px, their own width) or reaching past `width`: none should be. */
async function squeezedPictures(page: Page, width: number): Promise<string[]> {
  const pictures = await page.evaluate(() => [...document.querySelectorAll('canvas')].filter((c) => c.getClientRects().length)
    .map((c) => { const r = c.getBoundingClientRect(); return { id: c.id, w: r.width, own: c.width, right: r.right + window.scrollX }; }));
  return pictures.filter((p) => p.w < Math.min(100, p.own) || p.right > width + 0.5).map((p) => `${p.id} ${p.w.toFixed(0)} px`);
}

/** The phone layout rules at the current viewport: no horizontal overflow, controls ≥ 40 px, inside, tappable. */
async function checkPhoneLayout(page: Page, t: { diagnostic(m: string): void }, where: string, width: number): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= width, `${where}: the page is ${overflow} px wide in a ${width} px viewport`);
  const report = await controlReport(page);
  assert.ok(report.length > 10, `${where}: only ${report.length} controls found`);
  const small = report.filter((c) => c.w < 40 || c.h < 40).map((c) => `${c.id} ${c.w.toFixed(0)}×${c.h.toFixed(0)}`);
  assert.deepEqual(small, [], `${where}: controls smaller than 40 px`);
  const outside = report.filter((c) => !c.inside).map((c) => c.id);
  assert.deepEqual(outside, [], `${where}: controls outside the viewport's width`);
  const covered = report.filter((c) => !c.hit).map((c) => c.id);
  assert.deepEqual(covered, [], `${where}: controls a tap does not reach`);
  assert.deepEqual(await squeezedPictures(page, width), [], `${where}: pictures squeezed or off the screen`);
  t.diagnostic(`${where}: ${report.length} controls checked`);
}

/** The distilled students the reverse panel lists (web/src/assets.ts), with the guidance their files record. */
const STUDENTS = [['mnist-unet-fast4', 4], ['mnist-unet-fast1', 1]] as const;
const foldedGuidance = (name: string) =>
  (JSON.parse(readFileSync(join(ROOT, 'web', 'public', 'data', `${name}.json`), 'utf8')) as { distilled: { guidance: number } }).distilled.guidance;

/** Chooses a model in the reverse panel and waits until it is loaded (a student's guidance field then shows its value). */
async function chooseModel(page: Page, name: string): Promise<void> {
  await page.selectOption('#rv-model', name);
  if (name !== 'mnist-unet') {
    await page.waitForFunction(() => (document.getElementById('rv-guidance') as HTMLInputElement).value !== '' ||
      /^error/.test(document.getElementById('rv-info')!.textContent ?? ''), undefined, { timeout: 60_000 });
  }
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

  test('invalid inputs show a message next to their field and run nothing; hints; offline reload', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/?backend=js`);
    await waitReady(page);
    // Before anything runs, the panels say what will appear (not black boxes), and every symbol is explained.
    assert.match(await page.textContent('#rv-info') ?? '', /not run yet/);
    const glossary = await page.textContent('.glossary') ?? '';
    for (const sym of ['x0', 'xt', 'xT', 'ᾱ', 'log SNR', 'σ', 'NFE', 'guidance', 'ε̂', 'x̂0', 'score']) {
      assert.ok(glossary.replace(/\s+/g, ' ').includes(sym), `the glossary does not explain ${sym}`);
    }
    assert.ok(await page.locator('details.explain').count() >= 6, 'each panel has its explanation');
    assert.deepEqual(await squeezedPictures(page, 1280), [], 'pictures squeezed or off the screen');

    const before = await runCount(page);
    const reject = async (field: string, value: string, run = '#rv-run', section = '#reverse') => {
      await setInput(page, field, value);
      await page.click(run);
      const msg = (await page.textContent(`#${field}-msg`)) ?? '';
      assert.ok(msg.length > 5, `${field} = '${value}': no message next to the field`);
      assert.equal(await page.getAttribute(`#${field}`, 'aria-invalid'), 'true', `${field} = '${value}' is not marked invalid`);
      assert.equal(await page.getAttribute(section, 'data-state'), 'invalid', `${field} = '${value}': the panel ran`);
      assert.equal(await runCount(page), before, `${field} = '${value}' started a run`);
      return msg;
    };
    await page.selectOption('#rv-sampler', 'ddim');
    await page.selectOption('#rv-class', '4');
    for (const g of ['', 'NaN', '1e6', '-1', 'abc']) await reject('rv-guidance', g);
    await setInput(page, 'rv-guidance', '1');
    for (const st of ['0', '-5', '', 'abc', '1e9', '1001', '2.5']) await reject('rv-steps', st);
    await page.selectOption('#rv-sampler', 'heun');
    assert.match(await reject('rv-steps', '501'), /500/);
    await setInput(page, 'rv-steps', '3');
    assert.match(await page.textContent('#rv-hint') ?? '', /Heun with 3 steps returns noise/);
    await page.selectOption('#rv-sampler', 'predictorCorrector');
    await setInput(page, 'rv-steps', '5');
    assert.match(await page.textContent('#rv-hint') ?? '', /predictor–corrector with 5 steps returns noise/);
    await page.selectOption('#rv-sampler', 'ddim');
    await setInput(page, 'rv-steps', '1');
    assert.equal(await page.textContent('#rv-steps-msg'), '');
    for (const seed of ['-1', '1e300', '', '4294967296', '1.5']) await reject('rv-seed', seed);
    await setInput(page, 'rv-seed', '0');
    // Inpainting reads the same fields.
    await setInput(page, 'rv-steps', '0');
    await page.click('#ip-half');
    await page.click('#ip-run');
    assert.equal(await page.getAttribute('#inpaint', 'data-state'), 'invalid');
    await setInput(page, 'rv-steps', '1');
    await reject('sc-steps', '1', '#sc-run', '#score');
    await reject('sc-steps', 'x', '#sc-run', '#score');
    await setInput(page, 'sc-steps', '20');
    await setInput(page, 'fw-index', '500');
    assert.match(await page.textContent('#fw-index-msg') ?? '', /0 to 499/);
    await setInput(page, 'fw-index', '0');
    // Extreme guidance and guidance without a class are pointed out.
    await setInput(page, 'rv-guidance', '12');
    assert.match(await page.textContent('#rv-hint') ?? '', /extreme/);
    await page.selectOption('#rv-class', 'none');
    await setInput(page, 'rv-guidance', '2');
    assert.match(await page.textContent('#rv-hint') ?? '', /guidance is not used/);
    // A valid guided run says what it ran: 1 DDIM step of class 4, guidance 2.
    await page.selectOption('#rv-class', '4');
    await page.click('#rv-run');
    await page.waitForSelector('#reverse[data-state="done"], #reverse[data-state="error"]', { timeout: 60_000 });
    assert.match(await page.textContent('#rv-info') ?? '', /^done: DDIM \(η = 0\), 1 steps, seed 0, class 4, guidance 2;/);
    assert.equal(await runCount(page), before + 1);

    // Offline: once the service worker has cached the app, a reload with the network off works.
    await page.waitForFunction(() => window.explorer?.offlineReady === true, undefined, { timeout: 60_000 });
    await context.setOffline(true);
    await page.reload();
    await waitReady(page);
    assert.equal(await page.evaluate(() => navigator.onLine), false);
    assert.equal(await page.evaluate(() => window.explorer?.offlineReady), true);
    // The service worker cached the students too: one, never fetched before, loads and samples offline.
    await chooseModel(page, 'mnist-unet-fast1');
    await page.click('#rv-run');
    await page.waitForSelector('#reverse[data-state="done"], #reverse[data-state="error"]', { timeout: 60_000 });
    assert.equal(await page.getAttribute('#reverse', 'data-state'), 'done', await page.textContent('#rv-info') ?? '');
    assert.equal(await page.evaluate(() => window.explorer!.runs.at(-1)!.model), 'mnist-unet-fast1');
    await context.setOffline(false);
    assert.deepEqual(errors, [], 'errors in the page');
    await context.close();
  });

  test('phone size: no horizontal overflow, every control at least 40 px and tappable', async (t) => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(`${origin}/?backend=js`);
    await waitReady(page);
    const check = (where: string, width: number) => checkPhoneLayout(page, t, where, width);
    await check('explore, 390 px', 390);
    // A tap on Sample runs (a 2-step DDIM), and the result lies inside the screen.
    await page.selectOption('#rv-sampler', 'ddim');
    await setInput(page, 'rv-steps', '2');
    await page.tap('#rv-run');
    await page.waitForSelector('#reverse[data-state="done"]', { timeout: 60_000 });
    mkdirSync(OUT, { recursive: true });
    // From the top, after a moment: a full-page capture taken while scrolled down showed stale text here.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(OUT, 'explorer-phone.png'), fullPage: true });
    await page.tap('#tab-train');
    await check('train, 390 px', 390);
    await page.screenshot({ path: join(OUT, 'train-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 360, height: 740 });
    await check('train, 360 px', 360);
    await page.tap('#tab-explore');
    await check('explore, 360 px', 360);
    if (process.env.UPDATE_SCREENSHOT) copyFileSync(join(OUT, 'explorer-phone.png'), join(ROOT, 'docs', 'web-explorer-phone.png'));
    await context.close();
  });

  test('distilled students: fetched only when chosen, DDIM in their N steps with N model evaluations (js backend, phone size)', async (t) => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const requests: string[] = [], errors: string[] = [];
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/?backend=js`);
    await waitReady(page);
    const fetched = (name: string) => requests.filter((p) => p.startsWith(`/data/${name}.`)).sort();
    for (const [name] of STUDENTS) assert.deepEqual(fetched(name), [], `page load fetched ${name}`);
    assert.deepEqual(await page.$$eval('#rv-model option', (os) => os.map((o) => (o as HTMLOptionElement).value)),
      ['mnist-unet', ...STUDENTS.map(([name]) => name)]);
    // The full UNet's own settings, kept while a student is chosen: inpainting runs with them.
    await page.selectOption('#rv-sampler', 'ddim');
    await setInput(page, 'rv-steps', '2');
    await setInput(page, 'rv-guidance', '1.5');
    await page.selectOption('#rv-class', '3');
    for (const [name, n] of STUDENTS) {
      await chooseModel(page, name);
      assert.deepEqual(fetched(name), [`/data/${name}.json`, `/data/${name}.safetensors`]);
      const g = foldedGuidance(name);
      const field = (id: string) => page.$eval(`#${id}`, (el) => ({ value: (el as HTMLInputElement).value, disabled: (el as HTMLInputElement).disabled }));
      assert.deepEqual(await field('rv-sampler'), { value: 'ddim', disabled: true });
      assert.deepEqual(await field('rv-steps'), { value: String(n), disabled: true });
      assert.deepEqual(await field('rv-guidance'), { value: String(g), disabled: true });
      const hint = await page.textContent('#rv-hint') ?? '';
      assert.match(hint, new RegExp(`DDIM in ${n} steps? .*sampler and steps are fixed`));
      assert.match(hint, new RegExp(`guidance ${g} is folded into its weights`));
      assert.match(hint, /Inpainting keeps the full UNet/);
      await page.tap('#rv-run');
      await page.waitForSelector('#reverse[data-state="done"], #reverse[data-state="error"]', { timeout: 60_000 });
      const info = await page.textContent('#rv-info') ?? '';
      assert.equal(await page.getAttribute('#reverse', 'data-state'), 'done', info);
      const run: RunRecord = await page.evaluate(() => window.explorer!.runs.at(-1)!);
      assert.deepEqual({ model: run.model, sampler: run.sampler, steps: run.steps, stepsShown: run.msPerStep.length, nfe: run.nfe },
        { model: name, sampler: 'ddim', steps: n, stepsShown: n, nfe: n });
      assert.match(info, new RegExp(`^done: distilled student, DDIM \\(η = 0\\), ${n} steps, seed 0, class 3, guidance ${g} folded in; ${n} steps in [\\d.]+ s, \\d+ ms/step, NFE ${n} \\[js\\]$`));
      t.diagnostic(`${name}: ${info}`);
      if (n === STUDENTS[0][1]) {
        await checkPhoneLayout(page, t, `explore with ${name}, 390 px`, 390);
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.waitForTimeout(300);
        mkdirSync(OUT, { recursive: true });
        await page.screenshot({ path: join(OUT, 'explorer-phone-distilled.png'), fullPage: true });
      }
    }
    // Inpainting with a student chosen: the full UNet, with the settings typed for it (DDIM, 2 steps).
    await page.tap('#ip-half');
    await page.tap('#ip-run');
    await page.waitForSelector('#inpaint[data-state="done"], #inpaint[data-state="error"]', { timeout: 60_000 });
    assert.equal(await page.getAttribute('#inpaint', 'data-state'), 'done', await page.textContent('#ip-cap') ?? '');
    const ip: RunRecord = await page.evaluate(() => window.explorer!.runs.at(-1)!);
    assert.deepEqual({ what: ip.what, model: ip.model, sampler: ip.sampler, steps: ip.steps }, { what: 'inpaint', model: 'mnist-unet', sampler: 'ddim', steps: 2 });
    // Back to the full UNet: its fields as they were, enabled; choosing a student again fetches nothing more.
    await chooseModel(page, 'mnist-unet');
    for (const [id, value] of [['rv-sampler', 'ddim'], ['rv-steps', '2'], ['rv-guidance', '1.5']]) {
      assert.equal(await page.inputValue(`#${id}`), value, id);
      assert.equal(await page.isEnabled(`#${id}`), true, id);
    }
    assert.equal(await page.textContent('#rv-hint'), '');
    await chooseModel(page, STUDENTS[0][0]);
    assert.equal(fetched(STUDENTS[0][0]).length, 2, 'a student was fetched twice');
    assert.deepEqual(errors, [], 'errors in the page');
    await context.close();
  });

  test('training in the tab: 50 steps, loss falls, pause and resume, checkpoint samples in the CLI', async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/?backend=js#train`);
    await waitReady(page);
    assert.equal(await page.isVisible('#train'), true);
    // The fastest setting (micro UNet, 14×14 digits, batch 4): 50 steps, grids at 25 and 50.
    await page.selectOption('#tr-size', '14');
    await page.selectOption('#tr-model', 'micro');
    await setInput(page, 'tr-batch', '4');
    await setInput(page, 'tr-steps', '50');
    await setInput(page, 'tr-every', '25');
    await setInput(page, 'tr-lr', 'fast');
    await page.click('#tr-run');
    assert.ok(((await page.textContent('#tr-lr-msg')) ?? '').length > 5, 'an invalid learning rate is not reported');
    assert.equal(await page.evaluate(() => window.explorer!.train!.state), 'idle');
    await setInput(page, 'tr-lr', '0.002');
    const t0 = Date.now();
    await page.click('#tr-run');
    await page.waitForFunction(() => window.explorer!.train!.step >= 10, undefined, { timeout: 120_000 });
    await page.click('#tr-pause');
    await page.waitForFunction(() => window.explorer!.train!.state === 'paused', undefined, { timeout: 30_000 });
    const pausedAt = await page.evaluate(() => window.explorer!.train!.step);
    await page.waitForTimeout(1000);
    assert.equal(await page.evaluate(() => window.explorer!.train!.step), pausedAt, 'training went on while paused');
    assert.equal(await page.textContent('#tr-run'), 'Resume');
    await page.click('#tr-run');
    await page.waitForFunction(() => ['done', 'error'].includes(window.explorer!.train!.state), undefined, { timeout: 240_000 });
    const rec: TrainRecord = await page.evaluate(() => window.explorer!.train!);
    assert.equal(rec.state, 'done', rec.error);
    assert.equal(rec.losses.length, 50);
    const first = meanOf(rec.losses.slice(0, 10)), last = meanOf(rec.losses.slice(-10));
    t.diagnostic(`training: 50 steps in ${((Date.now() - t0) / 1000).toFixed(1)} s (with a pause of ~1 s and 2 sample grids); loss ${first.toFixed(3)} (steps 1–10) → ${last.toFixed(3)} (steps 41–50)`);
    assert.ok(last < 0.75 * first, `the loss did not fall: ${first.toFixed(3)} → ${last.toFixed(3)}`);
    assert.deepEqual(rec.grids, [25, 50]);
    assert.ok(std(await pixels(page, 'tr-grid')) > 10, 'the sample grid is blank');
    await page.screenshot({ path: join(OUT, 'train.png'), fullPage: true });

    // The checkpoint: a zip of one folder with checkpoint.json and the safetensors, as `diffuse train` writes.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#tr-download')]);
    const zipPath = join(OUT, 'checkpoint.zip');
    await download.saveAs(zipPath);
    const dir = join(OUT, 'checkpoint');
    rmSync(dir, { recursive: true, force: true });
    const entries = unzipSync(new Uint8Array(readFileSync(zipPath)));
    for (const [path, bytes] of Object.entries(entries)) {
      if (path.endsWith('/')) continue;
      const to = join(dir, path);
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, bytes);
    }
    const folder = join(dir, 'diffuse-explorer-step50');
    const json = JSON.parse(readFileSync(join(folder, 'checkpoint.json'), 'utf8'));
    assert.equal(json.format, 'diffuse-checkpoint');
    assert.equal(json.version, 1);
    assert.deepEqual(Object.keys(json.config).sort(), ['dataset', 'model', 'objective', 'schedule', 'trainer']);
    assert.equal(json.state.step, 50);
    for (const role of ['model', 'ema', 'optimizer']) {
      const f = json.files[role];
      assert.equal(f.file, `${role}-00000050.safetensors`);
      const bytes = readFileSync(join(folder, f.file));
      assert.equal(bytes.length, f.bytes);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), f.sha256);
    }
    const samplesDir = join(OUT, 'checkpoint-samples');
    const cli = spawnSync(process.execPath, [join(ROOT, 'bin', 'diffuse.mjs'), 'sample', '--checkpoint', folder, '--sampler', 'ddim', '--steps', '5',
      '--count', '4', '--backend', 'js', '--out', samplesDir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(cli.status, 0, `diffuse sample failed: ${cli.stderr}`);
    assert.ok(existsSync(join(samplesDir, 'samples.png')), 'diffuse sample wrote no samples.png');
    t.diagnostic(`diffuse sample: ${cli.stdout.trim().split('\n').at(-1)}`);

    // Uploading the zip continues the run where it was.
    await page.click('#tr-reset');
    await page.setInputFiles('#tr-upload', zipPath);
    await page.waitForFunction(() => /loaded a checkpoint|upload failed/.test(document.getElementById('tr-info')!.textContent ?? ''), undefined, { timeout: 60_000 });
    assert.match(await page.textContent('#tr-info') ?? '', /loaded a checkpoint at step 50 of 50 \(explorer-digits\)/);
    assert.deepEqual(errors, [], 'errors in the page');
    await context.close();
  });

  test('no WebGPU adapter but a software one: the explorer runs on wasm, threaded (cross-origin isolated); its sample matches js', async (t) => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/`);
    await waitReady(page);
    const backend = await page.evaluate(() => window.explorer?.backend);
    if (backend === 'webgpu') {
      t.skip('this chromium gives a hardware WebGPU adapter here, which comes first');
      await page.close();
      return;
    }
    assert.equal(backend, 'wasm', await page.textContent('#status') ?? '');
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'the page is not cross-origin isolated');
    await ddimSample(page); // the first run warms up (workers start, scratch memory grows)
    const { sample, noise, run } = await ddimSample(page);
    const ms = run.msPerStep.reduce((a, v) => a + v, 0) / run.msPerStep.length;
    t.diagnostic(`wasm backend: ${ms.toFixed(1)} ms per sampling step at batch 1 (model + update; DDIM 3 steps, after a warm-up run)`);
    assert.ok(meanAbsDiff(sample, noise) > 40, 'the wasm sample is still the starting noise');
    assert.ok(jsReference, 'the js case did not run');
    const d = meanAbsDiff(sample, jsReference);
    assert.ok(d < 2, `wasm and js samples differ by ${d.toFixed(2)} gray levels on average`);
    assert.deepEqual(errors, [], 'errors in the page');
    await page.close();
  });

  test('WebGPU: a Stop during the first sampling takes effect at once; the sample matches the js backend', async (t) => {
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
    // The first sampling compiles the GPU kernels, and says so; Stop pressed then takes effect within 1 s.
    await page.selectOption('#rv-sampler', 'ddpm');
    await setInput(page, 'rv-steps', '100');
    await page.click('#rv-run');
    await page.waitForFunction(() => /compiling GPU kernels/.test(document.getElementById('rv-info')!.textContent ?? ''), undefined, { timeout: 10_000 });
    await page.waitForTimeout(1500);
    await page.click('#rv-stop');
    await page.waitForSelector('#reverse[data-state="stopped"], #reverse[data-state="done"], #reverse[data-state="error"]', { timeout: 120_000 });
    assert.equal(await page.getAttribute('#reverse', 'data-state'), 'stopped');
    const stopped: RunRecord = await page.evaluate(() => window.explorer!.runs.at(-1)!);
    const lag = stopped.stoppedAt! - stopped.stopPressedAt!;
    t.diagnostic(`Stop during the first WebGPU sampling: took effect ${lag.toFixed(0)} ms after the press, ${stopped.msPerStep.length} step(s) done`);
    assert.ok(lag < 1000, `Stop took ${lag.toFixed(0)} ms`);
    assert.match(await page.textContent('#rv-info') ?? '', /^stopped at step \d+ of 100/);
    // The kernels go on compiling (a GPU cannot cancel submitted work), then the DDIM steps run: SwiftShader's
    // first step took 22–33 s on the quiet 2-core machine and 150 s with a load average of 13.
    const { sample, noise, run } = await ddimSample(page, 300_000);
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
