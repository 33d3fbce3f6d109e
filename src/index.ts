/** diffuse: the public API. The CLI and the web app import only from here. */
export * from './tensor/index.js';
export { setBackend, getBackend, availableBackends, backendByName } from './backends/index.js';
export type { Backend, BackendName } from './backends/index.js';
