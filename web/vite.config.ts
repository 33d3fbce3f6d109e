/**
 * Vite config of the explorer (`npm run web`, `npm run web:build`, and test/web-e2e.test.ts).
 *
 * The app imports only `diffuse` (src/index.ts), the browser-safe entry: it bundles as it is, no stubs.
 *
 * `serviceWorker` writes sw.js into the build: web/src/sw.js with the list of every file of the build (bundle
 * and public/) and a version hashed from their contents, so the app and its models load offline.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const webRoot = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(webRoot, '..');
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
  plugins: [serviceWorker()],
  build: {
    outDir: join(webRoot, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    // The model files are fetched at run time from public/; nothing is inlined.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1000,
  },
  // Cross-origin isolation, so that a page may share memory with its workers (SharedArrayBuffer: a
  // multi-threaded CPU backend); every file the app loads is from its own origin.
  server: { fs: { allow: [repoRoot] }, headers: ISOLATION },
  preview: { port: 5174, headers: ISOLATION },
});
