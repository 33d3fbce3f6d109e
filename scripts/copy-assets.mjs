// After `tsc -p tsconfig.build.json` (npm run build / prepare): the files under src/ that are not TypeScript,
// beside their compiled modules in dist/, where those modules look for them (new URL(…, import.meta.url)):
// the wasm backend's modules (dist/backends/wasm/) and the PyTorch export's templates (dist/export/pytorch/),
// with the PyTorch UNet it copies (bench/unet_torch.py, checked against ours by the tests).
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src'), dist = join(root, 'dist');

function copyAssets(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) copyAssets(p);
    else if (!e.name.endsWith('.ts')) {
      const to = join(dist, relative(src, p));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(p, to);
    }
  }
}
copyAssets(src);
copyFileSync(join(root, 'bench', 'unet_torch.py'), join(dist, 'export', 'pytorch', 'unet_torch.py'));
