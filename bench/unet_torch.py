#!/usr/bin/python3
"""PyTorch transcription of diffuse's UNet (src/nn/unet.ts): the same module tree, hence the same
parameter names and layouts, so a state dict saved by diffuse loads here with
load_state_dict(strict=True) unchanged, and back.

As a library:   from unet_torch import UNet, unet_preset, config_from_json
                model = UNet(config_from_json(open('config.json').read()))
As a benchmark: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/unet_torch.py [--preset tiny] [--batch 64]
                [--size 28] [--threads 2] [--reps 5] [--serve]
                times one training step (forward + MSE backward + AdamW) and prints JSON (--serve: one step per
                line of stdin, for bench/unet.ts --paired).

Config fields (camelCase, as the TypeScript UNetConfig / its JSON form):
  imageSize, inChannels, modelChannels, channelMult, numResBlocks, attentionLevels, numHeads, dropout,
  numClasses, learnSigma, downsample ('conv' | 'avgpool'), normGroups, normGroupRule ('fixed': normGroups groups
  in every norm; absent or 'perChannel': norm_groups_for(channels, normGroups)), midAttention.
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULTS = dict(imageSize=28, inChannels=1, modelChannels=32, channelMult=[1, 2, 2], numResBlocks=1,
                attentionLevels=[2], numHeads=1, dropout=0.0, numClasses=0, learnSigma=False,
                downsample='conv', normGroups=32, midAttention=True)

PRESETS = {
    'tiny': dict(modelChannels=32, channelMult=[1, 2, 2], numResBlocks=1, attentionLevels=[2], numHeads=1, dropout=0.0,
                 normGroupRule='fixed'),
    'small': dict(modelChannels=64, channelMult=[1, 2, 2], numResBlocks=2, attentionLevels=[2], numHeads=4, dropout=0.1,
                  normGroupRule='fixed'),
    'base': dict(modelChannels=128, channelMult=[1, 2, 2], numResBlocks=2, attentionLevels=[1, 2], numHeads=4, dropout=0.1,
                 normGroupRule='fixed'),
}


def unet_preset(name, **overrides):
    cfg = dict(DEFAULTS)
    cfg.update(PRESETS[name])
    cfg.update(overrides)
    if 'normGroups' not in overrides and cfg.get('normGroupRule') == 'fixed':
        cfg['normGroups'] = preset_norm_groups(cfg)
    return cfg


def norm_channels(cfg):
    """Every channel count a GroupNorm of the UNet normalizes, ascending (unetNormChannels)."""
    ch, mult = cfg['modelChannels'], cfg['channelMult']
    out, skips, cur = set(), [ch], ch
    for m in mult:
        for _ in range(cfg['numResBlocks']):
            out.update((cur, ch * m))
            cur = ch * m
            skips.append(cur)
        skips.append(cur)
    skips.pop()  # no downsample after the last level
    out.add(cur)
    for m in reversed(mult):
        for _ in range(cfg['numResBlocks'] + 1):
            out.update((cur + skips.pop(), ch * m))
            cur = ch * m
    out.add(cur)
    return sorted(out)


def preset_norm_groups(cfg):
    """The presets' one group count (presetNormGroups): the largest g <= 32 dividing every norm's channels with at
    least 4 channels a group in the narrowest."""
    norms = norm_channels(cfg)
    for g in range(min(32, norms[0] // 4), 1, -1):
        if all(n % g == 0 for n in norms):
            return g
    return 1


def config_from_json(text_or_dict):
    obj = json.loads(text_or_dict) if isinstance(text_or_dict, str) else dict(text_or_dict)
    unknown = set(obj) - set(DEFAULTS) - {'normGroupRule'}
    if unknown:
        raise ValueError('UNetConfig: unknown field(s) %s' % ', '.join(sorted(unknown)))
    cfg = dict(DEFAULTS)
    cfg.update(obj)
    return cfg


def norm_groups_for(channels, max_groups=32):
    """The largest divisor of channels not above min(max_groups, channels // 4) (at least 1)."""
    g = max(1, min(max_groups, channels // 4))
    while channels % g:
        g -= 1
    return g


def norm_groups_rule(cfg):
    """channels -> group count of a norm over them, by the config's normGroupRule."""
    if cfg.get('normGroupRule') == 'fixed':
        return lambda channels: cfg['normGroups']
    return lambda channels: norm_groups_for(channels, cfg['normGroups'])


def timestep_embedding(t, dim, max_period=10000):
    """[cos(t f_i)..., sin(t f_i)...], f_i = max_period^(-i/half); computed in t's dtype (float64 for fixtures)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half).to(t.dtype)
    args = t[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


def zero_(m):
    nn.init.zeros_(m.weight)
    if m.bias is not None:
        nn.init.zeros_(m.bias)
    return m


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, dropout, groups, zero_init=True):
        super().__init__()
        self.out_channels = cout
        self.norm1 = nn.GroupNorm(groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups(cout), cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if zero_init:
            zero_(self.conv2)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb_act):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(emb_act)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.skip(x) if self.skip is not None else x) + h


class AttnBlock(nn.Module):
    def __init__(self, channels, num_heads, groups, zero_init=True):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)
        if zero_init:
            zero_(self.proj_out)

    def forward(self, x):
        b, c, h, w = x.shape
        heads = self.num_heads
        d = c // heads
        qkv = self.qkv(self.norm(x)).reshape(b, 3 * c, h * w)
        q, k, v = (t.reshape(b * heads, d, h * w) for t in qkv.chunk(3, dim=1))
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(d), dim=-1)  # [B*heads, HWq, HWk]
        out = torch.bmm(v, attn.transpose(1, 2))  # [B*heads, d, HWq]
        return x + self.proj_out(out.reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels, with_conv):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if with_conv else None

    def forward(self, x):
        return self.conv(x) if self.conv is not None else F.avg_pool2d(x, 2)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode='nearest'))


class Level(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()


class Mid(nn.Module):
    def __init__(self, block_1, attn_1, block_2):
        super().__init__()
        self.block_1 = block_1
        self.attn_1 = attn_1
        self.block_2 = block_2

    def forward(self, h, emb_act):
        h = self.block_1(h, emb_act)
        if self.attn_1 is not None:
            h = self.attn_1(h)
        return self.block_2(h, emb_act)


class UNet(nn.Module):
    def __init__(self, config, zero_init=True):
        super().__init__()
        cfg = self.config = config_from_json(config)
        ch = cfg['modelChannels']
        temb = 4 * ch
        mg = norm_groups_rule(cfg)
        mult = cfg['channelMult']
        levels = len(mult)
        attn_levels = set(cfg['attentionLevels'])
        self.out_channels = 2 * cfg['inChannels'] if cfg['learnSigma'] else cfg['inChannels']

        def res(cin, cout):
            return ResBlock(cin, cout, temb, cfg['dropout'], mg, zero_init)

        def attn(c):
            return AttnBlock(c, cfg['numHeads'], mg, zero_init)

        self.time_embed = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.label_emb = nn.Embedding(cfg['numClasses'] + 1, temb) if cfg['numClasses'] > 0 else None
        self.conv_in = nn.Conv2d(cfg['inChannels'], ch, 3, padding=1)

        self.down = nn.ModuleList()
        skip = [ch]
        cur = ch
        for i in range(levels):
            level = Level()
            out = ch * mult[i]
            for _ in range(cfg['numResBlocks']):
                level.block.append(res(cur, out))
                cur = out
                if i in attn_levels:
                    level.attn.append(attn(cur))
                skip.append(cur)
            if i != levels - 1:
                level.downsample = Downsample(cur, cfg['downsample'] == 'conv')
                skip.append(cur)
            self.down.append(level)

        self.mid = Mid(res(cur, cur), attn(cur) if cfg['midAttention'] else None, res(cur, cur))

        up = []
        for i in reversed(range(levels)):
            level = Level()
            out = ch * mult[i]
            for _ in range(cfg['numResBlocks'] + 1):
                level.block.append(res(cur + skip.pop(), out))
                cur = out
                if i in attn_levels:
                    level.attn.append(attn(cur))
            if i != 0:
                level.upsample = Upsample(cur)
            up.insert(0, level)
        self.up = nn.ModuleList(up)

        self.norm_out = nn.GroupNorm(mg(cur), cur)
        self.conv_out = nn.Conv2d(cur, self.out_channels, 3, padding=1)
        if zero_init:
            zero_(self.conv_out)

    def forward(self, x, t, classes=None):
        cfg = self.config
        emb = self.time_embed(timestep_embedding(t.to(x.dtype), cfg['modelChannels']))
        if self.label_emb is not None:
            if classes is None:
                classes = torch.full((x.shape[0],), cfg['numClasses'], dtype=torch.long)
            emb = emb + self.label_emb(classes.long())
        emb_act = F.silu(emb)
        h = self.conv_in(x)
        hs = [h]
        for level in self.down:
            for j, block in enumerate(level.block):
                h = block(h, emb_act)
                if len(level.attn):
                    h = level.attn[j](h)
                hs.append(h)
            if hasattr(level, 'downsample'):
                h = level.downsample(h)
                hs.append(h)
        h = self.mid(h, emb_act)
        for level in reversed(self.up):
            for j, block in enumerate(level.block):
                h = block(torch.cat([h, hs.pop()], dim=1), emb_act)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, 'upsample'):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def num_parameters(model):
    return sum(p.numel() for p in model.parameters())


def bench_steps(model, x, t, y, noise, lr=2e-4, ema_decay=0.999):
    """The two steps the benchmarks time, as diffuse's side runs them: (train_step, sample_step)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    ema = [p.detach().clone() for p in model.parameters()]

    def train_step():
        # forward, backward, AdamW, EMA: what diffuse's trainer does per step
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x, t, y), noise)
        loss.backward()
        opt.step()
        with torch.no_grad():
            params = [p.detach() for p in model.parameters()]
            torch._foreach_mul_(ema, ema_decay)
            torch._foreach_add_(ema, params, alpha=1 - ema_decay)

    def sample_step():
        # one sampler step is one network evaluation without gradients
        with torch.no_grad():
            model.eval()
            model(x, t, y)
            model.train()

    return train_step, sample_step


def timed_runs(fn, reps, warmup_s, sync=lambda: None):
    """Seconds per run of fn (sync() waits for the device), after warming up to a steady state by the rule
    every side of the benchmarks uses: at least 3 runs and warmup_s seconds."""
    w0, i = time.perf_counter(), 0
    while i < 3 or time.perf_counter() - w0 < warmup_s:
        fn()
        sync()
        i += 1
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--preset', default='tiny')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--size', type=int, default=28)
    ap.add_argument('--channels', type=int, default=1)
    ap.add_argument('--classes', type=int, default=10)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--serve', action='store_true',
                    help='warm up, print "ready", then time one step per line read ("train" / "sample"): bench/unet.ts --paired')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = unet_preset(args.preset, imageSize=args.size, inChannels=args.channels, numClasses=args.classes)
    model = UNet(cfg).train()
    x = torch.randn(args.batch, args.channels, args.size, args.size)
    t = torch.randint(0, 1000, (args.batch,)).float()
    y = torch.randint(0, args.classes + 1, (args.batch,)) if args.classes else None
    noise = torch.randn_like(x)

    train_step, sample_step = bench_steps(model, x, t, y, noise)
    timed = lambda fn: timed_runs(fn, args.reps, warmup_s=0.5)  # noqa: E731
    if args.serve:
        steps = {'train': train_step, 'sample': sample_step}
        for fn in steps.values():
            timed_runs(fn, 0, warmup_s=0.5)
        print('ready', flush=True)
        for line in sys.stdin:
            fn = steps[line.strip()]
            t0 = time.perf_counter()
            fn()
            print(time.perf_counter() - t0, flush=True)
        return

    print(json.dumps({'preset': args.preset, 'params': num_parameters(model), 'batch': args.batch, 'size': args.size,
                      'threads': args.threads, 'train_s': timed(train_step), 'sample_s': timed(sample_step),
                      'torch': torch.__version__}))


if __name__ == '__main__':
    main()
