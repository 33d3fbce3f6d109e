/**
 * The backends the engine suites run on: the CPU backends that load here, and WebGPU when an adapter is found
 * (lavapipe in CI). Under CI a missing WebGPU adapter is test/webgpu.test.ts's failure to report, not these
 * suites'.
 */
import { type BackendName, availableBackends, initWebGPU } from '../../src/index.js';

export async function engineBackends(): Promise<BackendName[]> {
  const names: BackendName[] = [...availableBackends()];
  if (process.env.DIFFUSE_TEST_WEBGPU === '0') return names;
  try {
    await initWebGPU();
    names.push('webgpu');
  } catch {
    // no adapter here: the CPU backends only
  }
  return names;
}
