/**
 * Backend registry. `native` is the default in Node when its addon loads; otherwise `js`, with one
 * message saying what is missing. Chosen by API (`setBackend`) or by the DIFFUSE_BACKEND variable.
 */
import type { Backend, BackendName } from './backend.js';
import { jsBackend } from './js/index.js';

// Loaded only under Node, and lazily, so browser bundles never see the addon loader.
const isNode = typeof process !== 'undefined' && !!process.versions?.node;
const nativeModule: { loadNativeBackend: () => Backend | { error: string } } | null = isNode
  ? await import('./native/index.js').catch((e: unknown) => ({
    loadNativeBackend: () => ({ error: `cannot load the native backend module: ${(e as Error).message}` }),
  }))
  : null;
function loadNativeBackend(): Backend | { error: string } {
  return nativeModule ? nativeModule.loadNativeBackend() : { error: 'not running under Node' };
}

export type { Backend, BackendName } from './backend.js';

const BACKEND_NAMES: readonly BackendName[] = ['js', 'native'];

let nativeResult: Backend | { error: string } | undefined;
function native(): Backend | { error: string } {
  nativeResult ??= loadNativeBackend();
  return nativeResult;
}

let current: Backend | undefined;
let warned = false;

/** Names of the backends that can run here. */
export function availableBackends(): BackendName[] {
  const n = native();
  return 'error' in n ? ['js'] : ['js', 'native'];
}

export function backendByName(name: BackendName): Backend {
  if (name === 'js') return jsBackend;
  if (name === 'native') {
    const n = native();
    if ('error' in n) throw new Error(`backend 'native' is not available: ${n.error}`);
    return n;
  }
  const never: never = name;
  throw new Error(`unknown backend '${String(never)}' (choose one of ${BACKEND_NAMES.join(', ')})`);
}

export function setBackend(name: BackendName): Backend {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`setBackend: unknown backend '${name}' (choose one of ${BACKEND_NAMES.join(', ')})`);
  }
  current = backendByName(name);
  return current;
}

export function getBackend(): Backend {
  if (current) return current;
  const env = typeof process !== 'undefined' ? process.env?.DIFFUSE_BACKEND : undefined;
  if (env) {
    if (!BACKEND_NAMES.includes(env as BackendName)) {
      throw new Error(`DIFFUSE_BACKEND=${env}: unknown backend (choose one of ${BACKEND_NAMES.join(', ')})`);
    }
    return setBackend(env as BackendName);
  }
  const n = native();
  if ('error' in n) {
    if (!warned) {
      warned = true;
      console.warn(`diffuse: native backend unavailable (${n.error}); running on the slower 'js' backend.`);
    }
    current = jsBackend;
  } else {
    current = n;
  }
  return current;
}
