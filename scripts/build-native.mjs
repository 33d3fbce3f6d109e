#!/usr/bin/env node
// Builds the native CPU backend (build/Release/diffuse_native.node) with node-gyp, offline.
//
//   node scripts/build-native.mjs           (npm install)  skips when the addon is newer than its sources;
//                                           a failed build prints one warning line and exits 0, so that
//                                           `npm install` still succeeds and diffuse runs on the wasm backend
//   node scripts/build-native.mjs --force   (npm run build:native)  always rebuilds; a failure exits 1
//
// Node's headers are taken from the local installation (--nodedir), never downloaded.
// DIFFUSE_SKIP_NATIVE=1 skips the build entirely.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const verbose = force || process.argv.includes('--verbose');
const addon = join(root, 'build', 'Release', 'diffuse_native.node');
const logFile = join(root, 'build', 'native-build.log');

function warn(message) {
  console.warn(`diffuse: native backend not built: ${message}. diffuse will run on the 'wasm' backend (about half native's speed).`);
  process.exit(force ? 1 : 0);
}

if (process.env.DIFFUSE_SKIP_NATIVE === '1' && !force) {
  console.log('diffuse: DIFFUSE_SKIP_NATIVE=1, not building the native backend');
  process.exit(0);
}

// --- up to date?
function sources() {
  const files = [join(root, 'binding.gyp')];
  const dir = join(root, 'native', 'src');
  if (existsSync(dir)) for (const f of readdirSync(dir)) files.push(join(dir, f));
  return files.filter((f) => existsSync(f));
}
const srcs = sources();
if (!srcs.some((f) => f.endsWith('.cc'))) warn('native/src has no sources');
if (!force && existsSync(addon)) {
  const built = statSync(addon).mtimeMs;
  if (srcs.every((f) => statSync(f).mtimeMs <= built)) {
    console.log('diffuse: native backend is up to date (build/Release/diffuse_native.node)');
    process.exit(0);
  }
}

// --- node-gyp: this checkout's devDependency, else the one npm bundles (npm names it in npm_config_node_gyp
// while it runs install scripts: a package installed as a dependency builds with that)
let nodeGyp;
try {
  nodeGyp = createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
} catch {
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && existsSync(bundled)) nodeGyp = bundled;
  else warn('node-gyp is not found (run this from npm install, or install the devDependencies: npm install --include=dev)');
}

// --- Node headers, offline: <prefix>/include/node/node_api.h
function findNodeDir() {
  const candidates = [
    process.env.npm_config_nodedir,
    resolve(dirname(process.execPath), '..'),
    '/usr',
    '/usr/local',
  ].filter(Boolean);
  for (const prefix of candidates) {
    if (existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi')))
      return prefix;
  }
  for (const prefix of candidates) {
    if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  }
  return null;
}
const nodedir = findNodeDir();
const gypArgs = [nodeGyp, 'rebuild', '--jobs=max', '--loglevel=warn'];
if (nodedir) {
  gypArgs.push(`--nodedir=${nodedir}`);
} else {
  // node-gyp's own header cache is fine too, as long as it does not have to download anything
  const home = process.env.HOME || process.env.USERPROFILE || '';
  const cacheDirs = [
    process.env.npm_config_devdir,
    join(home, '.cache', 'node-gyp', process.versions.node),
    join(home, 'Library', 'Caches', 'node-gyp', process.versions.node),
  ].filter(Boolean);
  const cached = cacheDirs.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
  if (!cached) warn(`Node.js headers not found (looked for include/node/node_api.h beside ${process.execPath}, in /usr and /usr/local; on Debian/Ubuntu: apt-get install libnode-dev, or install Node from nodejs.org)`);
}

console.log(`diffuse: building the native backend${nodedir ? ` (Node headers: ${nodedir}/include/node)` : ''} ...`);
const t0 = Date.now();
const r = spawnSync(process.execPath, gypArgs, {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, npm_config_nodedir: nodedir ?? process.env.npm_config_nodedir },
  maxBuffer: 64 * 1024 * 1024,
});
const output = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
try {
  mkdirSync(dirname(logFile), { recursive: true });
  writeFileSync(logFile, `$ node ${gypArgs.join(' ')}\n${output}`);
} catch {
  // the log is a convenience
}

if (r.error || r.status !== 0 || !existsSync(addon)) {
  if (verbose) console.error(output);
  const o = output;
  let why;
  if (r.error) why = `could not run node-gyp (${r.error.message})`;
  else if (/(g\+\+|c\+\+|cc|clang\+\+|clang): (command )?not found|not found: (make|g\+\+|cc)|No such file or directory.*(g\+\+|c\+\+|make)|CXX.*not found|make: not found|gyp ERR! stack Error: not found: make/i.test(o))
    why = 'no C++ compiler or make (Debian/Ubuntu: apt-get install build-essential; macOS: xcode-select --install)';
  else if (/python/i.test(o) && /gyp ERR!.*(find|python)/i.test(o))
    why = 'node-gyp needs Python 3 (apt-get install python3)';
  else why = `the compiler failed (see ${logFile})`;
  warn(why);
}

// smoke test in a child process: the addon must load (all symbols resolve) and run a kernel
const smoke = spawnSync(process.execPath, ['-e', `
  const a = require(${JSON.stringify(addon)});
  const y = a.unary('exp', new Float32Array([0, 1]));
  if (Math.abs(y[1] - Math.E) > 1e-5) throw new Error('wrong result ' + y[1]);
  console.log(JSON.stringify(a.info()));`], { encoding: 'utf8' });
if (smoke.status !== 0) {
  if (verbose) console.error(smoke.stderr);
  const line = (smoke.stderr || '').split('\n').find((l) => /Error|error/.test(l)) ?? `exit code ${smoke.status}`;
  warn(`the built addon does not load or run (${line.trim()})`);
}
let info = '';
try {
  const i = JSON.parse(smoke.stdout.trim().split('\n').pop());
  info = ` [${i.gemm}, conv: ${i.conv}, threads: ${i.threads}]`;
} catch {
  // informational only
}
console.log(`diffuse: native backend built in ${((Date.now() - t0) / 1000).toFixed(1)} s → build/Release/diffuse_native.node${info}`);
