// After `tsc -p tsconfig.build.json` (npm run build / prepare): the wasm backend's modules beside its compiled
// loader (dist/backends/wasm/), where node.ts and browser.ts look for them (new URL(…, import.meta.url)).
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const to = join(root, 'dist', 'backends', 'wasm');
mkdirSync(to, { recursive: true });
for (const f of ['diffuse_kernels.wasm', 'diffuse_kernels_st.wasm', 'diffuse_kernels_relaxed.wasm']) copyFileSync(join(root, 'src', 'backends', 'wasm', f), join(to, f));
