#!/usr/bin/python3
"""Reference fixtures for the UNet and optimizer tests (test/unet.test.ts, test/optim.test.ts).

Regenerate with:  /usr/bin/python3 tools/gen_unet_fixture.py
(PyTorch >= 1.13 CPU; imports bench/unet_torch.py, the PyTorch transcription of src/nn/unet.ts.)

test/fixtures/unet/tiny.safetensors and avgpool.safetensors — one small UNet config each (the tiny preset
itself is 4.5 MB of float32, too big to store twice; its parameter names and shapes are stored instead):
  param.<name>   the state dict (torch's default init with a fixed seed, no zero-init, and the GroupNorm
                 affines perturbed, so that every path carries signal)
  in.x, in.t     input batch [B, C, H, W] and timesteps [B] (float32); in.classes [B] int32 (conditional
                 config; the last entry is the null class)
  gout           r, random, shaped as the output
  out            model(x, t, classes) in eval mode
  grad.<name>    d sum(out * r) / d <name> for every parameter, and grad.x for the input
  metadata       config (JSON), param_shapes (JSON [[name, shape], ...] in torch's state_dict order),
                 presets (JSON {preset: [[name, shape], ...]} for tiny/small/base with numClasses=10)
The reference is computed in float64 from the float32-rounded parameters and inputs, then rounded to float32.

test/fixtures/unet/adamw.safetensors — torch.optim.AdamW (float32, as PyTorch runs it) over a few steps
with clip_grad_norm_ and a per-step learning rate:
  init.<p>, grad.<k>.<p>, after.<k>.<p>    parameters, gradients given at step k, parameters after step k
  exp_avg.<p>, exp_avg_sq.<p>              the final moments
  lr, norm                                 per-step learning rates and pre-clipping gradient norms (F64)
  metadata                                 hyperparameters (JSON), which steps give no gradient to which
                                           parameter (JSON)
"""

import json
import math
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'bench'))
from unet_torch import UNet, unet_preset  # noqa: E402

OUT_DIR = os.path.normpath(os.path.join(HERE, '..', 'test', 'fixtures', 'unet'))

_FMT = {torch.float32: ('F32', 'f'), torch.float64: ('F64', 'd'), torch.int32: ('I32', 'i'), torch.int64: ('I64', 'q')}


def write_safetensors(path, tensors, metadata):
    """u64 LE header length, JSON header (sorted keys, space-padded to 8 bytes), raw LE data."""
    header = {'__metadata__': dict(sorted(metadata.items()))}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        dtype, fmt = _FMT[t.dtype]
        flat = t.reshape(-1).tolist()
        raw = struct.pack('<%d%s' % (len(flat), fmt), *flat)
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def shapes(model):
    return [[n, list(p.shape)] for n, p in model.state_dict().items()]


def unet_case(name, cfg, batch, t_values, classes, seed):
    torch.manual_seed(seed)
    model = UNet(cfg, zero_init=False)
    with torch.no_grad():
        for mod_name, m in model.named_modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.add_(0.2 * torch.randn_like(m.weight))
                m.bias.add_(0.2 * torch.randn_like(m.bias))
    model.eval()
    params32 = {n: p.detach().clone().float() for n, p in model.state_dict().items()}
    x = torch.randn(batch, cfg['inChannels'], cfg['imageSize'], cfg['imageSize'])
    t = torch.tensor(t_values, dtype=torch.float32)
    r = None

    model64 = model.double()
    x64 = x.double().requires_grad_()
    cls = torch.tensor(classes, dtype=torch.long) if classes is not None else None
    out = model64(x64, t.double(), cls)
    r = torch.randn(out.shape)
    (out * r.double()).sum().backward()

    store = {'in.x': x, 'in.t': t, 'gout': r, 'out': out.detach().float(), 'grad.x': x64.grad.float()}
    if cls is not None:
        store['in.classes'] = cls.to(torch.int32)
    for n, p in params32.items():
        store['param.' + n] = p
    for n, p in model64.named_parameters():
        store['grad.' + n] = p.grad.float()
    meta = {'config': json.dumps(cfg), 'param_shapes': json.dumps(shapes(model))}
    if name == 'tiny':
        meta['presets'] = json.dumps({p: shapes(UNet(unet_preset(p, numClasses=10))) for p in ('tiny', 'small', 'base')})
    path = os.path.join(OUT_DIR, name + '.safetensors')
    write_safetensors(path, store, meta)
    print('%s: %d parameters, %d bytes' % (path, sum(p.numel() for p in params32.values()), os.path.getsize(path)))


def adamw_case():
    torch.manual_seed(1234)
    hyper = dict(lr=0.05, beta1=0.9, beta2=0.99, eps=1e-8, weightDecay=0.1)
    max_norm = 1.0
    params = {'a': torch.randn(3, 4), 'b': torch.randn(5)}
    steps = 6
    # A warmup (2 steps) + cosine (to step 6) schedule, written out as the TypeScript warmupCosine computes it.
    warm, total, base, min_lr = 2, 6, hyper['lr'], 0.005
    lrs = [base * (s + 1) / warm if s < warm else
           min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * min(1, (s - warm) / (total - warm))))
           for s in range(steps)]
    no_grad = {'b': [2]}  # 0-based steps at which b gets no gradient (AdamW skips it; its step count lags)
    store = {}
    ps = {}
    for n, v in params.items():
        store['init.' + n] = v.clone()
        ps[n] = v.clone().requires_grad_()
    opt = torch.optim.AdamW(list(ps.values()), lr=base, betas=(hyper['beta1'], hyper['beta2']), eps=hyper['eps'],
                            weight_decay=hyper['weightDecay'])
    norms = []
    for k in range(steps):
        for n, p in ps.items():
            if k in no_grad.get(n, []):
                p.grad = None
            else:
                g = torch.randn(p.shape) * (3.0 if k % 2 == 0 else 0.1)  # some steps clip, some do not
                store['grad.%d.%s' % (k, n)] = g.clone()
                p.grad = g
        norms.append(float(torch.nn.utils.clip_grad_norm_([p for p in ps.values() if p.grad is not None], max_norm)))
        for group in opt.param_groups:
            group['lr'] = lrs[k]
        opt.step()
        for n, p in ps.items():
            store['after.%d.%s' % (k, n)] = p.detach().clone()
    for n, p in ps.items():
        st = opt.state[p]
        store['exp_avg.' + n] = st['exp_avg'].clone()
        store['exp_avg_sq.' + n] = st['exp_avg_sq'].clone()
    store['lr'] = torch.tensor(lrs, dtype=torch.float64)
    store['norm'] = torch.tensor(norms, dtype=torch.float64)
    meta = {'hyper': json.dumps(hyper), 'steps': str(steps), 'max_norm': str(max_norm), 'no_grad': json.dumps(no_grad),
            'schedule': json.dumps(dict(warmupSteps=warm, totalSteps=total, baseLr=base, minLr=min_lr))}
    path = os.path.join(OUT_DIR, 'adamw.safetensors')
    write_safetensors(path, store, meta)
    print('%s: %d bytes' % (path, os.path.getsize(path)))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_num_threads(1)
    # Conditional, learned variance, conv resampling, 2 heads, attention at the lower level and mid.
    tiny = dict(imageSize=8, inChannels=2, modelChannels=12, channelMult=[1, 2], numResBlocks=1, attentionLevels=[1],
                numHeads=2, dropout=0.1, numClasses=3, learnSigma=True, downsample='conv', normGroups=32,
                midAttention=True)
    unet_case('tiny', tiny, 3, [0.0, 123.25, 999.0], [0, 2, 3], seed=0)
    # Unconditional, avg-pool downsampling, 2 blocks per level, attention at full resolution, no mid attention.
    avg = dict(imageSize=8, inChannels=1, modelChannels=8, channelMult=[1, 2], numResBlocks=2, attentionLevels=[0],
               numHeads=1, dropout=0.0, numClasses=0, learnSigma=False, downsample='avgpool', normGroups=32,
               midAttention=False)
    unet_case('avgpool', avg, 2, [5.0, 640.5], None, seed=1)
    adamw_case()


if __name__ == '__main__':
    main()
