#!/usr/bin/python3
"""Reference fixtures from diffusers' own code (schedulers, UNet2DModel, from_pretrained), for
test/diffusers-schedulers.test.ts and test/diffusers-unet.test.ts.

Usage:  /usr/bin/python3 tools/gen_diffusers_fixtures.py <diffusers checkout>/src [what ...]
  what: schedulers, unet, roundtrip (default: all), check. roundtrip needs `runs/diffusers-roundtrip/` written by
  `npx tsx tools/diffusers_roundtrip.ts` first (it exports diffuse models as diffusers folders). check loads the
  trained runs that `npx tsx tools/diffusers_roundtrip.ts --checkpoint DIR …` exported to runs/diffusers-check/
  and prints diffusers' distance from diffuse's outputs (it writes no fixture).

Runs under Debian's PyTorch (python3-torch 1.13) with numpy, packaging, filelock, regex, requests and PIL from
Debian. diffusers' modeling and scheduler code is imported unmodified from the given path; only what would
reach the network is stubbed: `huggingface_hub` (hub, download and upload helpers; every name a dummy) and
`safetensors` (missing from Debian: a small reader/writer of the format, below). The diffusers commit is read
from the checkout's git metadata when there is one, else from DIFFUSERS_COMMIT, and recorded in every fixture.
"""

import importlib.abc
import importlib.machinery
import json
import math
import os
import struct
import subprocess
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..'))
OUT_DIR = os.path.join(ROOT, 'test', 'fixtures', 'diffusers')


# ---------------------------------------------------------------- stubs for the hub and safetensors

class _Dummy:
    """Stands for any hub class, function or constant: callable, subclassable, never reached here."""

    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        raise RuntimeError('huggingface_hub is stubbed: no network access in fixture generation')


def _dummy_attr(modname, name):
    if name.isupper():  # constants: HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, …
        return '/nonexistent-hf-home/' + name.lower() if name.endswith(('HOME', 'CACHE', 'PATH', 'DIR')) else ''
    if name == '__version__':
        return '0.99.0'
    if name.endswith('Error') or name.endswith('Exception') or name.endswith('Warning'):
        return type(name, (Exception,), {})
    if name[:1].isupper():
        return type(name, (_Dummy,), {})
    if name == 'validate_hf_hub_args':
        return lambda f: f
    if name.startswith('is_'):
        return lambda *a, **k: False
    return _Dummy()


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith('__') and name != '__version__':
            raise AttributeError(name)
        v = _dummy_attr(self.__name__, name)
        setattr(self, name, v)
        return v


class _HubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == 'huggingface_hub' or fullname.startswith('huggingface_hub.'):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, module):
        pass


_ST_DTYPES = {'F32': (torch.float32, 'f', 4), 'F64': (torch.float64, 'd', 8), 'I64': (torch.int64, 'q', 8),
              'I32': (torch.int32, 'i', 4), 'F16': (torch.float16, 'e', 2)}
_ST_NAMES = {v[0]: (k, v[1]) for k, v in _ST_DTYPES.items()}


def st_write(path, tensors, metadata=None):
    """safetensors: u64 LE header length, JSON header (8-byte padded), raw little-endian data."""
    header = {}
    if metadata:
        header['__metadata__'] = dict(metadata)
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        code, fmt = _ST_NAMES[t.dtype]
        flat = t.reshape(-1).tolist()
        raw = struct.pack('<%d%s' % (len(flat), fmt), *flat)
        header[name] = {'dtype': code, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def st_read(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    header.pop('__metadata__', None)
    out = {}
    for name, h in header.items():
        dtype, fmt, size = _ST_DTYPES[h['dtype']]
        a, b = h['data_offsets']
        raw = data[8 + n + a:8 + n + b]
        vals = struct.unpack('<%d%s' % (len(raw) // size, fmt), raw)
        out[name] = torch.tensor(vals, dtype=dtype).reshape(h['shape'])
    return out


def _install_stubs():
    # Package metadata for the two stand-ins, so that diffusers' version probes find them.
    import tempfile
    meta = tempfile.mkdtemp(prefix='diffusers-stub-meta-')
    for dist, version in (('safetensors', '0.4.3'), ('huggingface_hub', '0.34.0')):
        d = os.path.join(meta, f'{dist}-{version}.dist-info')
        os.makedirs(d)
        with open(os.path.join(d, 'METADATA'), 'w') as f:
            f.write(f'Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n')
        with open(os.path.join(d, 'top_level.txt'), 'w') as f:
            f.write(dist + '\n')
    sys.path.append(meta)
    sys.meta_path.insert(0, _HubFinder())
    st = types.ModuleType('safetensors')
    st.__spec__ = importlib.machinery.ModuleSpec('safetensors', None, is_package=True)
    st.__path__ = []
    st.__version__ = '0.4.0'
    st_torch = types.ModuleType('safetensors.torch')
    st_torch.__spec__ = importlib.machinery.ModuleSpec('safetensors.torch', None)
    st_torch.load_file = lambda path, device='cpu': st_read(path)
    st_torch.save_file = lambda tensors, path, metadata=None: st_write(path, tensors, metadata)

    class _SafeOpen:
        def __init__(self, path, framework='pt', device='cpu'):
            self.t = st_read(path)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def keys(self):
            return list(self.t.keys())

        def get_tensor(self, k):
            return self.t[k]

        def metadata(self):
            return {'format': 'pt'}

    st.safe_open = _SafeOpen
    st.torch = st_torch
    sys.modules['safetensors'] = st
    sys.modules['safetensors.torch'] = st_torch


def diffusers_commit(src):
    env = os.environ.get('DIFFUSERS_COMMIT')
    if env:
        return env
    try:
        return subprocess.check_output(['git', '-C', src, 'rev-parse', 'HEAD'], text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        return 'unknown'


# ---------------------------------------------------------------- schedulers on an analytic model

# Data N(MU, diag(STD²)) in 2 dimensions; the model is its exact denoiser under a closed-form ᾱ(t) (not the
# scheduler's: any fixed function of (x, t) serves, as long as diffuse's test computes the same one).
MU = [0.8, -0.6]
STD = [0.5, 0.2]


def model_alpha_bar(t):
    t1 = t + 1.0
    return math.exp(-(1e-4 * t1 + 0.5 * (0.02 - 1e-4) * t1 * t1 / 1000.0))


def analytic_model(x, t, prediction, learned, dtype=torch.float32):
    """x [B, 2, 1, 1], t a scalar → [B, 2, 1, 1] (or [B, 4, 1, 1] with learned-variance channels 0.25, −0.5), float32
    (or `dtype`)."""
    ab = model_alpha_bar(float(t))
    a, s = math.sqrt(ab), math.sqrt(1 - ab)
    xs = x.double()
    mu = torch.tensor(MU, dtype=torch.float64).reshape(1, 2, 1, 1)
    var = (torch.tensor(STD, dtype=torch.float64) ** 2).reshape(1, 2, 1, 1)
    eps = s * (xs - a * mu) / (ab * var + 1 - ab)
    x0 = (xs - s * eps) / a
    out = {'epsilon': eps, 'sample': x0, 'v_prediction': a * eps - s * x0}[prediction]
    if learned:
        out = torch.cat([out, torch.tensor([0.25, -0.5], dtype=torch.float64).reshape(1, 2, 1, 1).expand(x.shape[0], 2, 1, 1)], 1)
    return out.to(dtype)


SCHEDULER_CASES = [
    # name, class, config, steps, pipeline kwargs
    ('ddpm-default', 'DDPMScheduler', {}, 25, {}),
    ('ddpm-linspace-large-v', 'DDPMScheduler', {'timestep_spacing': 'linspace', 'variance_type': 'fixed_large', 'prediction_type': 'v_prediction', 'clip_sample': False}, 20, {}),
    ('ddpm-leading-offset', 'DDPMScheduler', {'steps_offset': 1, 'variance_type': 'fixed_large', 'clip_sample': False}, 10, {}),
    ('ddpm-trailing-learned', 'DDPMScheduler', {'timestep_spacing': 'trailing', 'variance_type': 'learned_range'}, 16, {}),
    ('ddpm-sigmoid-sample', 'DDPMScheduler', {'beta_schedule': 'sigmoid', 'prediction_type': 'sample', 'timestep_spacing': 'trailing'}, 12, {}),
    ('ddim-default', 'DDIMScheduler', {}, 50, {}),
    ('ddim-sd', 'DDIMScheduler', {'beta_schedule': 'scaled_linear', 'beta_start': 0.00085, 'beta_end': 0.012, 'steps_offset': 1, 'set_alpha_to_one': False, 'clip_sample': False}, 50, {}),
    ('ddim-trailing-zsnr-v', 'DDIMScheduler', {'timestep_spacing': 'trailing', 'rescale_betas_zero_snr': True, 'prediction_type': 'v_prediction', 'clip_sample': False}, 16, {}),
    ('ddim-linspace-eta', 'DDIMScheduler', {'timestep_spacing': 'linspace'}, 25, {'eta': 1.0}),
    ('ddim-cosine-threshold', 'DDIMScheduler', {'beta_schedule': 'squaredcos_cap_v2', 'thresholding': True, 'sample_max_value': 1.5, 'dynamic_thresholding_ratio': 0.9}, 20, {}),
    ('dpm-default', 'DPMSolverMultistepScheduler', {}, 20, {}),
    ('dpm-order3', 'DPMSolverMultistepScheduler', {'solver_order': 3}, 10, {}),
    ('dpm-order3-sigmamin', 'DPMSolverMultistepScheduler', {'solver_order': 3, 'final_sigmas_type': 'sigma_min'}, 25, {}),
    ('dpm-order1', 'DPMSolverMultistepScheduler', {'solver_order': 1}, 10, {}),
    ('dpm-heun', 'DPMSolverMultistepScheduler', {'solver_type': 'heun'}, 12, {}),
    ('dpm-karras', 'DPMSolverMultistepScheduler', {'use_karras_sigmas': True}, 20, {}),
    ('dpm-karras-o3-nolof', 'DPMSolverMultistepScheduler', {'use_karras_sigmas': True, 'solver_order': 3, 'lower_order_final': False}, 8, {}),
    ('dpm-o3-heun-sigmamin-nolof', 'DPMSolverMultistepScheduler', {'solver_order': 3, 'solver_type': 'heun', 'final_sigmas_type': 'sigma_min', 'lower_order_final': False}, 9, {}),
    ('dpm-trailing-v', 'DPMSolverMultistepScheduler', {'timestep_spacing': 'trailing', 'prediction_type': 'v_prediction'}, 16, {}),
    ('dpm-leading-sd', 'DPMSolverMultistepScheduler', {'timestep_spacing': 'leading', 'steps_offset': 1, 'beta_schedule': 'scaled_linear', 'beta_start': 0.00085, 'beta_end': 0.012}, 20, {}),
    ('euler-default', 'EulerDiscreteScheduler', {}, 30, {}),
    ('euler-karras', 'EulerDiscreteScheduler', {'use_karras_sigmas': True}, 25, {}),
    ('euler-leading-sd', 'EulerDiscreteScheduler', {'timestep_spacing': 'leading', 'steps_offset': 1, 'beta_schedule': 'scaled_linear', 'beta_start': 0.00085, 'beta_end': 0.012}, 20, {}),
    ('euler-trailing-v', 'EulerDiscreteScheduler', {'timestep_spacing': 'trailing', 'prediction_type': 'v_prediction'}, 16, {}),
    ('euler-sigmamin', 'EulerDiscreteScheduler', {'final_sigmas_type': 'sigma_min'}, 10, {}),
    ('heun-default', 'HeunDiscreteScheduler', {}, 10, {}),
    ('heun-karras', 'HeunDiscreteScheduler', {'use_karras_sigmas': True, 'beta_start': 0.0001, 'beta_end': 0.02}, 12, {}),
    ('heun-trailing-clip-v', 'HeunDiscreteScheduler', {'timestep_spacing': 'trailing', 'clip_sample': True, 'prediction_type': 'v_prediction'}, 8, {}),
    # float32 tables beyond T = 1000 linear/scaled: cosine β's with σ's, another T (torch.linspace's vector tail).
    ('dpm-cosine', 'DPMSolverMultistepScheduler', {'beta_schedule': 'squaredcos_cap_v2'}, 15, {}),
    ('euler-T1234-karras-scaled', 'EulerDiscreteScheduler', {'num_train_timesteps': 1234, 'beta_schedule': 'scaled_linear', 'beta_start': 0.00085, 'beta_end': 0.012, 'use_karras_sigmas': True}, 14, {}),
    ('heun-T1234', 'HeunDiscreteScheduler', {'num_train_timesteps': 1234}, 9, {}),
]


def f32s(values):
    """float32 values as the shortest decimals that read back as the same float32 (9 significant digits)."""
    return [float('%.9g' % v) for v in values]


def run_scheduler_case(diffusers, name, cls_name, config, steps, kw):
    cls = getattr(diffusers, cls_name)
    sched = cls.from_config(config)
    sched.set_timesteps(steps)
    timesteps = [float(t) for t in sched.timesteps]
    sigmas = [float(s) for s in sched.sigmas] if hasattr(sched, 'sigmas') and sched.sigmas is not None and cls_name != 'DDIMScheduler' and cls_name != 'DDPMScheduler' else None
    prediction = sched.config.prediction_type
    learned = getattr(sched.config, 'variance_type', None) in ('learned', 'learned_range')
    seed = 1234
    noise = torch.randn(4, 2, 1, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed + 1)
    replay = torch.Generator().manual_seed(seed + 1)
    drawn = []
    x = noise * sched.init_noise_sigma
    traj = []
    for t in sched.timesteps:
        inp = sched.scale_model_input(x, t)
        out = analytic_model(inp, t, prediction, learned)
        step_kw = dict(kw)
        if cls_name in ('DDPMScheduler', 'DDIMScheduler'):
            step_kw['generator'] = gen
            draws = (int(t) > 0) if cls_name == 'DDPMScheduler' else (kw.get('eta', 0) > 0)
            if draws:
                drawn.append(f32s(torch.randn(x.shape, generator=replay, dtype=torch.float32).reshape(-1).tolist()))
        x = sched.step(out, t, x, **step_kw).prev_sample
        traj.append(f32s(x.reshape(-1).tolist()))
    extra = {}
    if cls_name not in ('DDPMScheduler', 'DDIMScheduler'):
        # The same loop with a float64 sample and model output (the scheduler's tables stay float32): how far
        # float32 rounding in diffusers' own step arithmetic moves the final sample.
        s64 = cls.from_config(config)
        s64.set_timesteps(steps)
        x64 = noise.double() * s64.init_noise_sigma
        for t in s64.timesteps:
            x64 = s64.step(analytic_model(s64.scale_model_input(x64, t), t, prediction, learned, torch.float64), t, x64).prev_sample
        extra['finalFloat64'] = x64.reshape(-1).tolist()
    return {
        **extra,
        'alphasCumprod': f32s(sched.alphas_cumprod.tolist()),
        'name': name, 'class': cls_name, 'config': {'_class_name': cls_name, '_diffusers_version': diffusers.__version__, **config}, 'steps': steps,
        'pipeline': kw, 'timesteps': timesteps, 'sigmas': sigmas, 'initNoiseSigma': float(sched.init_noise_sigma),
        'noise': f32s(noise.reshape(-1).tolist()), 'shape': list(noise.shape), 'drawn': drawn,
        # every step for the discrete schedulers (their steps are diffuse's steps), the last for the σ ones
        'trajectory': traj if cls_name in ('DDPMScheduler', 'DDIMScheduler') else traj[-1:],
    }


def spacing_table(diffusers):
    """For every step count 1…1000: a checksum Σ (i+1)·t_i of DDIM's and DPM-Solver's timesteps per spacing,
    and the step counts whose list is not n long."""
    out = {}
    for cls_name in ('DDIMScheduler', 'DPMSolverMultistepScheduler'):
        for spacing in ('leading', 'trailing', 'linspace'):
            sched = getattr(diffusers, cls_name).from_config({'timestep_spacing': spacing})
            sums, lens = [], []
            for n in range(1, 1001):
                if cls_name == 'DPMSolverMultistepScheduler' and n > 999:
                    break
                sched.set_timesteps(n)
                ts = [int(t) for t in sched.timesteps]
                sums.append(sum((i + 1) * t for i, t in enumerate(ts)))
                lens.append(len(ts))
            out[f'{cls_name}/{spacing}'] = {'checksums': sums, 'lengthNot_n': [[i + 1, m] for i, m in enumerate(lens) if m != i + 1]}
    return out


def gen_schedulers(diffusers, commit):
    cases = [run_scheduler_case(diffusers, *c) for c in SCHEDULER_CASES]
    # diffusers' float32 ᾱ tables, stored once per distinct table.
    tables = {}
    for c in cases:
        ac = c.pop('alphasCumprod')
        key = next((k for k, v in tables.items() if v == ac), None)
        if key is None:
            key = f'table{len(tables)}'
            tables[key] = ac
        c['alphasCumprodTable'] = key
    doc = {
        'generator': 'tools/gen_diffusers_fixtures.py', 'diffusersCommit': commit, 'torch': torch.__version__,
        'model': {'mu': MU, 'std': STD, 'alphaBar': 'exp(-(1e-4 (t+1) + 0.5 (0.02 - 1e-4) (t+1)^2 / 1000))',
                  'learnedChannels': [0.25, -0.5]},
        'cases': cases, 'alphasCumprod': tables, 'spacing': spacing_table(diffusers),
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, 'schedulers.json')
    with open(path, 'w') as f:
        json.dump(doc, f, separators=(',', ':'), allow_nan=False)
    print(f'{path}: {len(cases)} scheduler cases, {os.path.getsize(path)} bytes')


# ---------------------------------------------------------------- UNet2DModel on random weights

UNET_CASES = [
    # name, config, batch timesteps, class labels
    ('classcond', {
        'sample_size': 16, 'in_channels': 1, 'out_channels': 1, 'block_out_channels': [4, 8], 'layers_per_block': 1,
        'down_block_types': ['DownBlock2D', 'AttnDownBlock2D'], 'up_block_types': ['AttnUpBlock2D', 'UpBlock2D'],
        'norm_num_groups': 2, 'attention_head_dim': 4, 'num_class_embeds': 10}, [999.0, 421.0, 0.0], [3, 0, 9]),
    ('fourier', {
        'sample_size': 16, 'in_channels': 2, 'out_channels': 2, 'block_out_channels': [4, 4], 'layers_per_block': 1,
        'down_block_types': ['AttnDownBlock2D', 'DownBlock2D'], 'up_block_types': ['UpBlock2D', 'AttnUpBlock2D'],
        'norm_num_groups': 2, 'attention_head_dim': None, 'time_embedding_type': 'fourier', 'center_input_sample': True,
        'mid_block_scale_factor': 1.41421356, 'downsample_padding': 0, 'norm_eps': 1e-6}, [80.0, 2.5, 0.25], None),
    ('scaleshift', {
        'sample_size': 16, 'in_channels': 1, 'out_channels': 1, 'block_out_channels': [4, 8], 'layers_per_block': 1,
        'down_block_types': ['AttnDownBlock2D', 'AttnDownBlock2D'],
        'up_block_types': ['AttnUpBlock2D', 'AttnUpBlock2D'], 'norm_num_groups': 2, 'attention_head_dim': 4,
        'resnet_time_scale_shift': 'scale_shift', 'downsample_type': 'resnet', 'upsample_type': 'resnet',
        'freq_shift': 1, 'flip_sin_to_cos': False}, [999.0, 500.5, 3.0], None),
    ('resnetsample', {
        'sample_size': 16, 'in_channels': 1, 'out_channels': 2, 'block_out_channels': [4, 4], 'layers_per_block': 2,
        'down_block_types': ['ResnetDownsampleBlock2D', 'ResnetDownsampleBlock2D'],
        'up_block_types': ['ResnetUpsampleBlock2D', 'ResnetUpsampleBlock2D'], 'norm_num_groups': 2,
        'add_attention': False}, [999.0, 250.0, 1.0], None),
    ('midattn-groups', {
        'sample_size': 8, 'in_channels': 3, 'out_channels': 3, 'block_out_channels': [4, 8], 'layers_per_block': 1,
        'down_block_types': ['DownBlock2D', 'DownBlock2D'], 'up_block_types': ['UpBlock2D', 'UpBlock2D'],
        'norm_num_groups': 2, 'attn_norm_num_groups': 4, 'attention_head_dim': 2}, [640.0, 12.0, 999.0], None),
]


def randomize(model, seed):
    """Random weights on every path: N(0, 1/fan_in) weights and biases, norms' affines around 1 and 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if 'norm' in name:
                p.copy_(1 + 0.2 * r if name.endswith('weight') else 0.2 * r)
            elif name == 'time_proj.weight':
                p.copy_(16 * r)
            elif p.ndim == 1:
                p.copy_(0.1 * r)
            else:
                p.copy_(r / math.sqrt(p[0].numel()))


def gen_unet(diffusers, commit):
    total = 0
    for k, (name, cfg, tvals, labels) in enumerate(UNET_CASES):
        model = diffusers.UNet2DModel(**cfg).eval()
        randomize(model, 100 + k)
        d = os.path.join(OUT_DIR, f'unet-{name}')
        os.makedirs(d, exist_ok=True)
        # config.json by diffusers' own ConfigMixin; the weights as save_pretrained names them (its sharding helper
        # comes from huggingface_hub, which is stubbed).
        model.save_config(d)
        st_write(os.path.join(d, 'diffusion_pytorch_model.safetensors'), model.state_dict(), {'format': 'pt'})
        g = torch.Generator().manual_seed(200 + k)
        size = cfg['sample_size']
        x = torch.randn(len(tvals), cfg['in_channels'], size, size, generator=g)
        t = torch.tensor(tvals, dtype=torch.float32)
        cl = torch.tensor(labels, dtype=torch.int64) if labels is not None else None
        with torch.no_grad():
            out = model(x, t, class_labels=cl).sample
        io = {'x': x, 't': t, 'out': out}
        if cl is not None:
            io['class_labels'] = cl.to(torch.int32)
        st_write(os.path.join(d, 'io.safetensors'), io, {'diffusers_commit': commit, 'generator': 'tools/gen_diffusers_fixtures.py'})
        size_bytes = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        total += size_bytes
        print(f'{d}: {sum(p.numel() for p in model.parameters())} parameters, {size_bytes} bytes')
    print(f'UNet fixtures: {total} bytes')


# ---------------------------------------------------------------- round trip: diffuse → diffusers folder → diffusers

def gen_roundtrip(diffusers, commit):
    """Loads each folder that tools/diffusers_roundtrip.ts exported with DDPMPipeline.from_pretrained and records
    what diffusers computes from it, next to diffuse's own output for the same inputs."""
    import hashlib
    root = os.path.join(ROOT, 'runs', 'diffusers-roundtrip')
    if not os.path.isdir(root):
        sys.exit(f'{root}: missing; run `npx tsx tools/diffusers_roundtrip.ts` first')
    for name in sorted(d[:-len('-diffusers')] for d in os.listdir(root) if d.endswith('-diffusers')):
        folder = os.path.join(root, f'{name}-diffusers')
        pipe = diffusers.DDPMPipeline.from_pretrained(folder)
        io = st_read(os.path.join(root, f'{name}-io.safetensors'))
        labels = io.get('class_labels')
        with torch.no_grad():
            out = pipe.unet(io['x'], io['t'], class_labels=labels.long() if labels is not None else None).sample
        err = (out - io['out_diffuse']).abs().max().item()
        meta = {
            'diffusers_commit': commit, 'generator': 'tools/gen_diffusers_fixtures.py roundtrip',
            'pipeline': type(pipe).__name__, 'unet': type(pipe.unet).__name__, 'scheduler': type(pipe.scheduler).__name__,
            'scheduler_config': json.dumps({k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith('_')}),
            'weights_sha256': hashlib.sha256(open(os.path.join(folder, 'unet', 'diffusion_pytorch_model.safetensors'), 'rb').read()).hexdigest(),
            'max_abs_diff_vs_diffuse': repr(err),
        }
        if labels is None:
            # The whole pipeline runs on the folder (DDPMPipeline passes no class labels, so unconditional only).
            img = pipe(batch_size=1, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type='np').images
            meta['pipeline_call_shape'] = json.dumps(list(img.shape))
        tensors = {'x': io['x'], 't': io['t'], 'out_diffusers': out}
        if labels is not None:
            tensors['class_labels'] = labels
        path = os.path.join(OUT_DIR, f'roundtrip-{name}.safetensors')
        st_write(path, tensors, meta)
        print(f'{path}: diffusers vs diffuse max abs {err:.2e}')


def check_exported(diffusers, commit):
    """Trained runs exported by `tools/diffusers_roundtrip.ts --checkpoint`: DDPMPipeline.from_pretrained, then
    diffusers' UNet on diffuse's inputs against diffuse's outputs, and a short pipe(...) call."""
    root = os.path.join(ROOT, 'runs', 'diffusers-check')
    if not os.path.isdir(root):
        sys.exit(f'{root}: missing; run `npx tsx tools/diffusers_roundtrip.ts --checkpoint DIR` first')
    for name in sorted(d[:-len('-diffusers')] for d in os.listdir(root) if d.endswith('-diffusers')):
        pipe = diffusers.DDPMPipeline.from_pretrained(os.path.join(root, f'{name}-diffusers'))
        io = st_read(os.path.join(root, f'{name}-io.safetensors'))
        labels = io.get('class_labels')
        with torch.no_grad():
            out = pipe.unet(io['x'], io['t'], class_labels=labels.long() if labels is not None else None).sample
        err = (out - io['out_diffuse']).abs().max().item()
        scale = io['out_diffuse'].abs().max().item()
        cfg = pipe.unet.config
        print(f'{name}: diffusers {commit}: {type(pipe).__name__} with {type(pipe.unet).__name__} '
              f'(norm_num_groups {cfg.norm_num_groups}, blocks {list(cfg.block_out_channels)}, {cfg.num_class_embeds} class embeddings, '
              f'{sum(p.numel() for p in pipe.unet.parameters())} parameters) and {type(pipe.scheduler).__name__}; '
              f'UNet output max abs difference from diffuse {err:.3e} (outputs up to {scale:.3f})')
        if labels is None:
            img = pipe(batch_size=1, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type='np').images
            print(f'{name}: pipe(...) ran, images {list(img.shape)}')


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) < 2:
        sys.exit('usage: gen_diffusers_fixtures.py <diffusers>/src [schedulers|unet|roundtrip ...]')
    src = os.path.abspath(sys.argv[1])
    what = sys.argv[2:] or ['schedulers', 'unet', 'roundtrip']
    _install_stubs()
    sys.path.insert(0, src)
    import diffusers  # noqa: E402
    commit = diffusers_commit(src)
    torch.manual_seed(0)
    if 'schedulers' in what:
        gen_schedulers(diffusers, commit)
    if "unet" in what:
        gen_unet(diffusers, commit)
    if "roundtrip" in what:
        gen_roundtrip(diffusers, commit)
    if 'check' in what:
        check_exported(diffusers, commit)


if __name__ == '__main__':
    main()
