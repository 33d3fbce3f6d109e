/**
 * diffusers UNet2DModel folders load and run as diffusers runs them.
 *
 * test/fixtures/diffusers/unet-* are written by diffusers' own UNet2DModel (tools/gen_diffusers_fixtures.py; the
 * commit is in each io.safetensors): config.json from its ConfigMixin, the state dict on random weights, and
 * io.safetensors with inputs and diffusers' output. Five configurations cover every supported block type, both
 * time embeddings, scale_shift, resnet down/upsampling, class conditioning, downsample_padding 0,
 * center_input_sample, mid_block_scale_factor and attention norm groups.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as D from '../src/index.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';
import { loadDiffusersUNet } from '../src/interop/diffusers.js';
import { UNet2DModel, parseUNet2DConfig } from '../src/nn/diffusersUNet.js';

process.env.XDG_RUNTIME_DIR ??= tmpdir();
const DIR = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'diffusers');
const CASES = readdirSync(DIR).filter((f) => f.startsWith('unet-')).sort();
const TOL = 1e-4;

function io(name: string) {
  const path = join(DIR, name, 'io.safetensors');
  return parseSafetensors(readFileSync(path), { name: path });
}

async function runCase(name: string): Promise<{ err: number; scale: number }> {
  const model = loadDiffusersUNet(join(DIR, name));
  const f = io(name);
  const x = f.tensors.get('x')!, t = f.tensors.get('t')!, out = f.tensors.get('out')!, cl = f.tensors.get('class_labels');
  const y = D.noGrad(() => model.forward(D.tensor(Float32Array.from(x.data), x.shape), D.tensor(Float32Array.from(t.data), t.shape),
    cl ? D.tensor(Int32Array.from(cl.data), cl.shape) : undefined));
  assert.deepEqual(y.shape, out.shape);
  const a = await y.read();
  let err = 0, scale = 0;
  a.forEach((v, i) => { err = Math.max(err, Math.abs(v - out.data[i])); scale = Math.max(scale, Math.abs(out.data[i])); });
  return { err, scale };
}

assert.ok(CASES.length >= 5, `expected ≥ 5 UNet fixtures, found ${CASES.join(', ')}`);

let gpu: string | null = null;
try { await D.initWebGPU(); gpu = 'webgpu'; } catch { /* no adapter: the CPU backends only */ }
const backends = [...D.availableBackends(), ...(gpu && !D.availableBackends().includes('webgpu' as D.BackendName) ? ['webgpu'] : [])];

for (const backend of backends) {
  describe(`diffusers UNet2DModel vs diffusers [${backend}]`, () => {
    for (const name of CASES) {
      test(`${name}: output within ${TOL}`, async (t) => {
        D.setBackend(backend as D.BackendName);
        const { err, scale } = await runCase(name);
        t.diagnostic(`max abs error ${err.toExponential(2)} (outputs up to ${scale.toFixed(2)})`);
        assert.ok(err <= TOL, `max abs error ${err.toExponential(2)}`);
      });
    }
  });
}

describe('diffusers UNet2DModel folders', () => {
  test('legacy attention names (query, key, value, proj_attn) load', async () => {
    D.setBackend(D.availableBackends()[0]);
    const tmp = mkdtempSync(join(tmpdir(), 'diffuse-legacy-'));
    try {
      cpSync(join(DIR, 'unet-classcond'), tmp, { recursive: true });
      const w = join(tmp, 'diffusion_pytorch_model.safetensors');
      const st = parseSafetensors(readFileSync(w));
      const renamed = new Map([...st.tensors].map(([k, v]) => [k.replace(/\.to_q\./, '.query.').replace(/\.to_k\./, '.key.')
        .replace(/\.to_v\./, '.value.').replace(/\.to_out\.0\./, '.proj_attn.'), { dtype: 'F32' as const, shape: v.shape, data: v.data as Float32Array }]));
      assert.ok([...renamed.keys()].some((k) => k.includes('.proj_attn.')));
      writeFileSync(w, serializeSafetensors(renamed));
      const a = loadDiffusersUNet(tmp), b = loadDiffusersUNet(join(DIR, 'unet-classcond'));
      const sa = a.stateDict(), sb = b.stateDict();
      assert.deepEqual([...sa.keys()].sort(), [...sb.keys()].sort());
      for (const [k, v] of sa) assert.deepEqual(v.data, sb.get(k)!.data, k);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('bad folders and configs: one-line errors naming the file and field', () => {
    const base = JSON.parse(readFileSync(join(DIR, 'unet-classcond', 'config.json'), 'utf8')) as Record<string, unknown>;
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...base, foo: 1 }, /config\.json: foo = 1 is not a field of UNet2DModel/],
      [{ ...base, down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'] }, /down_block_types\[1\] = "CrossAttnDownBlock2D" is not a supported block type/],
      [{ ...base, block_out_channels: [4, 1e9] }, /block_out_channels = .* must be 1–8 integers/],
      [{ ...base, norm_num_groups: 3 }, /norm_num_groups = 3 does not divide block_out_channels\[0\] = 4/],
      [{ ...base, act_fn: 'gelu' }, /act_fn = "gelu" must be one of/],
      [{ ...base, time_embedding_type: 'learned' }, /time_embedding_type = "learned" must be one of/],
      [{ ...base, up_block_types: ['UpBlock2D'] }, /up_block_types = .* must list 2 block types/],
      [{ ...base, class_embed_type: 'timestep' }, /class_embed_type = "timestep" is not supported/],
    ];
    for (const [cfg, re] of bad) {
      assert.throws(() => parseUNet2DConfig(cfg, 'x/config.json'), (e: Error) => re.test(e.message) && e.message.startsWith('x/config.json: ') && !e.message.includes('\n'), JSON.stringify(cfg).slice(0, 80));
    }
    const tmp = mkdtempSync(join(tmpdir(), 'diffuse-badunet-'));
    try {
      cpSync(join(DIR, 'unet-classcond'), tmp, { recursive: true });
      const w = join(tmp, 'diffusion_pytorch_model.safetensors');
      const st = parseSafetensors(readFileSync(w));
      const tensors = new Map([...st.tensors].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: Float32Array.from(v.data) }]));
      tensors.get('conv_in.weight')!.data[3] = NaN;
      writeFileSync(w, serializeSafetensors(tensors));
      assert.throws(() => loadDiffusersUNet(tmp), /diffusion_pytorch_model\.safetensors: tensor conv_in\.weight has a non-finite value at index 3/);
      tensors.get('conv_in.weight')!.data[3] = 0;
      tensors.set('extra.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
      writeFileSync(w, serializeSafetensors(tensors));
      assert.throws(() => loadDiffusersUNet(tmp), /unexpected tensor extra\.weight/);
      tensors.delete('extra.weight');
      tensors.delete('conv_out.bias');
      writeFileSync(w, serializeSafetensors(tensors));
      assert.throws(() => loadDiffusersUNet(tmp), /missing key\(s\): conv_out\.bias/);
      // A weights file that links outside the folder is refused.
      rmSync(w);
      const outside = mkdtempSync(join(tmpdir(), 'diffuse-outside-'));
      writeFileSync(join(outside, 'w.safetensors'), serializeSafetensors(tensors));
      symlinkSync(join(outside, 'w.safetensors'), w);
      assert.throws(() => loadDiffusersUNet(tmp), /resolves outside/);
      rmSync(outside, { recursive: true, force: true });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a config builds the module tree diffusers builds: same names and shapes as the fixture weights', () => {
    for (const name of CASES) {
      const cfg = parseUNet2DConfig(readFileSync(join(DIR, name, 'config.json'), 'utf8'));
      const ours = new Map([...new UNet2DModel(cfg).namedParameters()].map(([n, p]) => [n, p.shape.join(',')]));
      const st = parseSafetensors(readFileSync(join(DIR, name, 'diffusion_pytorch_model.safetensors')));
      const theirs = new Map([...st.tensors].map(([n, t]) => [n, t.shape.join(',')]));
      assert.deepEqual(ours, theirs, name);
    }
  });
});
