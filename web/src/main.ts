/// <reference types="vite/client" />
/**
 * The diffusion explorer: loads the shipped models (all from this page's origin), picks the backend, and sets
 * up the views (Explore: four panels; Train). `?backend=js` (or webgpu) asks for a backend. In a built app a
 * service worker caches every file, so the page also loads offline.
 */
import { chooseBackend, type MLPDenoiser, type UNet } from '../../src/index.js';
import { MNIST_MODELS, checkMnistModel, loadDigits, loadWebMLP, loadWebUNet, type LoadedModel } from './assets.js';
import { $, type App } from './common.js';
import { setupForward } from './forward.js';
import { setBusy, setupReverse } from './reverse.js';
import { setupScore } from './score.js';
import { setupTrain } from './train.js';

const DATA = './data/';

async function fetchBytes(file: string): Promise<Uint8Array> {
  const r = await fetch(DATA + file);
  if (!r.ok) throw new Error(`${file}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function fetchJson(file: string): Promise<unknown> {
  const r = await fetch(DATA + file);
  if (!r.ok) throw new Error(`${file}: HTTP ${r.status}`);
  return r.json();
}

/**
 * The backend to run on: the library's browser chain (WebGPU with a hardware adapter, else the TypeScript
 * backend, which runs everywhere), or the one `?backend=` names; when that one cannot start, the chain, with
 * the reason. Returns the name, the line saying why, and whether a faster or asked-for backend did not start.
 */
async function pickBackend(): Promise<{ name: string; line: string; fellBack: boolean }> {
  const wanted = new URLSearchParams(location.search).get('backend');
  let refused = '';
  if (wanted) {
    try {
      const c = await chooseBackend({ backend: wanted, chosenBy: '?backend=' });
      return { name: c.name, line: c.line, fellBack: false };
    } catch (e) {
      refused = `${(e as Error).message}; `;
    }
  }
  const c = await chooseBackend();
  return { name: c.name, line: refused + c.line, fellBack: !!refused || c.skipped.length > 0 };
}

/** Explore / Train tabs; the address's #train opens the Train view. */
function setupTabs(): void {
  const show = (train: boolean) => {
    $('view-explore').hidden = train;
    $('view-train').hidden = !train;
    $('tab-explore').setAttribute('aria-pressed', String(!train));
    $('tab-train').setAttribute('aria-pressed', String(train));
  };
  $('tab-explore').addEventListener('click', () => { history.replaceState(null, '', location.pathname + location.search); show(false); });
  $('tab-train').addEventListener('click', () => { history.replaceState(null, '', `${location.pathname}${location.search}#train`); show(true); });
  show(location.hash === '#train');
}

/** The service worker (built app only: the dev server has none) caches the app and its files for offline use. */
function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('./sw.js').then(() => navigator.serviceWorker.ready).then(() => {
    window.explorer!.offlineReady = true;
    $('offline').hidden = false;
  }).catch((e: unknown) => {
    $('offline').hidden = false;
    $('offline').textContent = 'offline use unavailable';
    $('offline').title = String(e);
  });
}

async function main(): Promise<void> {
  window.explorer = { backend: '', runs: [], ready: false };
  setupTabs();
  registerServiceWorker();
  const status = $('status');
  const { name: backend, line, fellBack } = await pickBackend();
  console.info(line);
  const note = fellBack ? `${line.replace(/^diffuse: /, '')}. ` : '';
  window.explorer.backend = backend;
  $('backend').textContent = `backend: ${backend}`;
  $('backend').title = line;

  // Everything the page needs is fetched now, so it keeps working offline once loaded; the distilled students,
  // which only the reverse panel's model menu uses, when first chosen (the service worker caches them too).
  const [unetJson, digitBytes, ...toyFiles] = await Promise.all([
    fetchJson('mnist-unet.json'), fetchBytes('mnist-test-digits.safetensors'),
    ...['swissroll', 'moons', '8gaussians'].map((n) => fetchJson(`toy-${n}.json`)),
  ]);
  const unetFile = (unetJson as { weights: { file: string } }).weights.file;
  const unet = loadWebUNet(unetJson, await fetchBytes(unetFile), 'mnist-unet.json');
  const toyJson = new Map(['swissroll', 'moons', '8gaussians'].map((n, i) => [n, toyFiles[i]]));
  const toyWeights = new Map(await Promise.all([...toyJson].map(async ([n, j]) =>
    [n, await fetchBytes((j as { weights: { file: string } }).weights.file)] as const)));
  const toyCache = new Map<string, LoadedModel<MLPDenoiser>>();
  const mnistCache = new Map<string, Promise<LoadedModel<UNet>>>();
  const loadMnistModel = async (name: string): Promise<LoadedModel<UNet>> => {
    const entry = MNIST_MODELS.find((e) => e.name === name);
    if (!entry) throw new Error(`no MNIST model '${name}'`);
    const json = await fetchJson(`${name}.json`);
    const m = loadWebUNet(json, await fetchBytes((json as { weights: { file: string } }).weights.file), `${name}.json`);
    checkMnistModel(entry, m, unet);
    return m;
  };

  const app: App = {
    unet,
    digits: loadDigits(digitBytes, 'mnist-test-digits.safetensors'),
    backend,
    digitIndex: 0,
    onDigitChange: [],
    mnist: (name) => {
      if (name === MNIST_MODELS[0].name) return Promise.resolve(unet);
      let m = mnistCache.get(name);
      if (!m) {
        m = loadMnistModel(name);
        mnistCache.set(name, m);
        m.catch(() => mnistCache.delete(name)); // a failed fetch is tried again on the next use
      }
      return m;
    },
    toy: async (name) => {
      let m = toyCache.get(name);
      if (!m) {
        if (!toyJson.has(name)) throw new Error(`no toy model '${name}'`);
        m = loadWebMLP(toyJson.get(name), toyWeights.get(name)!, `toy-${name}.json`);
        toyCache.set(name, m);
      }
      return m;
    },
  };
  const p = unet.model.parameters().reduce((s, t) => s + t.size, 0);
  setupForward(app);
  setupReverse(app);
  setupScore(app);
  setupTrain(app);
  setBusy(false);
  status.textContent = `${note}MNIST UNet: ${(p / 1e6).toFixed(2)} M parameters (${unet.json.weights.dtype} weights, step ` +
    `${unet.json.source.step ?? '?'} of ${unet.json.source.from}); ${app.digits.n} test digits`;
  window.explorer.ready = true;
  document.body.dataset.ready = '1';
}

main().catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  if (window.explorer) window.explorer.error = msg;
  document.body.dataset.ready = 'error';
  $('status').textContent = `error: ${msg}`;
  console.error(err);
});
