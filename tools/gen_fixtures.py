#!/usr/bin/python3
"""Reference fixtures for the tensor engine's parity tests (test/parity.test.ts).

Regenerate with:  /usr/bin/python3 tools/gen_fixtures.py
(PyTorch >= 1.13 CPU; no other dependency. Output is deterministic: each case seeds
torch with a CRC of its own name, so adding a case does not change the others.)

Every case writes test/fixtures/ops/<case>.safetensors holding
  in.<name>     inputs (float32; integer indices as I64, boolean masks as U8)
  param.<name>  parameters of the composite "block" case
  gout          the upstream gradient, random, same shape as `out`
                (ops with several outputs: out.<i> / gout.<i>)
  out           the forward output
  grad.<name>   d(sum(out * gout)) / d(name) for every differentiable input / parameter
and the metadata {"op": <op name>, "args": <JSON string of the op's arguments>}.

Inputs are drawn in float32; the reference is computed in float64 from those
float32-rounded values and then rounded to float32 for storage, so the stored
outputs and gradients are the exact references rounded once.

The safetensors files are written by hand (struct + json), following the format
exactly: u64 little-endian header length, JSON header (keys sorted, padded with
spaces to a multiple of 8 bytes), raw little-endian data.
"""

import json
import math
import os
import struct
import sys
import zlib

import torch
import torch.nn.functional as F

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'ops')

# ----------------------------------------------------------------------------- safetensors writer

_FMT = {torch.float32: ('F32', 'f'), torch.int64: ('I64', 'q'), torch.uint8: ('U8', 'B'),
        torch.int32: ('I32', 'i'), torch.float64: ('F64', 'd')}


def tensor_bytes(t):
    dtype, fmt = _FMT[t.dtype]
    flat = t.contiguous().reshape(-1).tolist()
    return dtype, struct.pack('<%d%s' % (len(flat), fmt), *flat)


def write_safetensors(path, tensors, metadata):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        dtype, raw = tensor_bytes(t)
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    full = {'__metadata__': dict(sorted(metadata.items()))}
    full.update(header)
    hdr = json.dumps(full, separators=(',', ':')).encode('utf-8')
    hdr += b' ' * ((8 - len(hdr) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- case helpers

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def rnd(*shape):
    """float32 draw, returned as a float64 tensor holding exactly the float32 values."""
    return torch.randn(tuple(shape), dtype=torch.float32).double()


def pos(*shape, lo=0.2):
    return (torch.rand(*shape, dtype=torch.float32) * 2 + lo).double()


def away_from_zero(*shape, lo=0.3):
    t = torch.randn(*shape, dtype=torch.float32)
    return (torch.sign(t) * (t.abs() + lo)).float().double()


def emit(name, op, args, inputs, fn, params=None, nondiff=()):
    """inputs / params: dicts name -> float64 tensor (or integer / uint8 tensors, listed in nondiff)."""
    torch.manual_seed(zlib.crc32(('gout:' + name).encode()))
    params = params or {}
    # every float input is rounded to float32 first: the stored value is the reference's input
    inputs = {k: (v.float().double() if v.is_floating_point() else v) for k, v in inputs.items()}
    params = {k: (v.float().double() if v.is_floating_point() else v) for k, v in params.items()}
    leaves = {}
    for k, v in list(inputs.items()) + list(params.items()):
        if k in nondiff or not v.is_floating_point():
            leaves[k] = v
        else:
            leaves[k] = v.clone().requires_grad_(True)
    ins = {k: leaves[k] for k in inputs}
    ps = {k: leaves[k] for k in params}
    out = fn(*ins.values(), *ps.values())
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    gouts = [torch.randn(o.shape, dtype=torch.float32).double() for o in outs]
    diff = [k for k, v in leaves.items() if v.requires_grad]
    loss = sum((o * g).sum() for o, g in zip(outs, gouts))
    grads = torch.autograd.grad(loss, [leaves[k] for k in diff], allow_unused=True) if diff else []

    store = {}
    for k, v in inputs.items():
        store['in.' + k] = store_t(v)
    for k, v in params.items():
        store['param.' + k] = store_t(v)
    if len(outs) == 1 and not isinstance(out, (tuple, list)):
        store['out'] = outs[0].detach().float()
        store['gout'] = gouts[0].float()
    else:
        for i, (o, g) in enumerate(zip(outs, gouts)):
            store['out.%d' % i] = o.detach().float()
            store['gout.%d' % i] = g.float()
    for k, g in zip(diff, grads):
        if g is None:
            g = torch.zeros_like(leaves[k])
        store['grad.' + k] = g.float()
    meta = {'op': op, 'args': json.dumps(args, separators=(',', ':'))}
    write_safetensors(os.path.join(OUT_DIR, name + '.safetensors'), store, meta)
    return name


def store_t(v):
    if v.dtype == torch.float64:
        return v.float()
    return v


def seeded(name):
    torch.manual_seed(zlib.crc32(name.encode()))


# ----------------------------------------------------------------------------- cases

@case
def binary_cases():
    shapes = [('bc31', [2, 3, 4], [3, 1]), ('bc4', [2, 3, 4], [4]), ('same', [3, 5], [3, 5]),
              ('bc_both', [2, 1, 4], [3, 1])]
    fns = {'add': lambda a, b: a + b, 'sub': lambda a, b: a - b, 'mul': lambda a, b: a * b,
           'div': lambda a, b: a / b}
    for op, f in fns.items():
        for tag, sa, sb in shapes:
            name = '%s_%s' % (op, tag)
            seeded(name)
            a = rnd(*sa)
            b = away_from_zero(*sb) if op == 'div' else rnd(*sb)
            emit(name, op, {}, {'a': a, 'b': b}, f)
    # a scalar (0-d) operand
    seeded('mul_scalar0d')
    emit('mul_scalar0d', 'mul', {}, {'a': rnd(2, 3), 'b': rnd()}, lambda a, b: a * b)


@case
def pow_cases():
    for tag, p, positive in [('p3', 3.0, False), ('p2', 2.0, False), ('p0_5', 0.5, True), ('pm1_5', -1.5, True)]:
        name = 'pow_scalar_' + tag
        seeded(name)
        x = pos(2, 3, 4) if positive else rnd(2, 3, 4)
        emit(name, 'pow_scalar', {'p': p}, {'x': x}, lambda x, p=p: x ** p)
    name = 'pow_tensor'
    seeded(name)
    emit(name, 'pow', {}, {'a': pos(2, 3, 4), 'b': rnd(3, 1)}, lambda a, b: a ** b)
    name = 'pow_base_scalar'  # 2.5 ** x, as a 0-d base tensor (no gradient to the base)
    seeded(name)
    emit(name, 'pow_base_scalar', {'base': 2.5}, {'x': rnd(3, 4)}, lambda x: torch.pow(2.5, x))


@case
def unary_cases():
    unary = {
        'neg': (lambda x: -x, 'any'),
        'exp': (torch.exp, 'any'),
        'log': (torch.log, 'pos'),
        'sqrt': (torch.sqrt, 'pos'),
        'rsqrt': (torch.rsqrt, 'pos'),
        'sin': (torch.sin, 'any'),
        'cos': (torch.cos, 'any'),
        'tanh': (torch.tanh, 'any'),
        'sigmoid': (torch.sigmoid, 'any'),
        'silu': (F.silu, 'any'),
        'gelu': (lambda x: F.gelu(x), 'any'),  # exact (erf) GELU
        'relu': (F.relu, 'nz'),
        'abs': (torch.abs, 'nz'),
        'square': (torch.square, 'any'),
        'reciprocal': (torch.reciprocal, 'nz'),
    }
    for op, (f, dom) in unary.items():
        name = op
        seeded(name)
        x = {'any': lambda: rnd(2, 3, 5) * 1.5, 'pos': lambda: pos(2, 3, 5),
             'nz': lambda: away_from_zero(2, 3, 5, lo=0.05)}[dom]()
        x = x.float().double()
        emit(name, op, {}, {'x': x}, f)


@case
def clamp_cases():
    for name, lo, hi in [('clamp_both', -0.5, 0.5), ('clamp_min', 0.0, None), ('clamp_max', None, 0.25)]:
        seeded(name)
        x = rnd(3, 4, 5)
        # keep values away from the boundaries (the derivative is discontinuous there)
        for b in (lo, hi):
            if b is not None:
                near = (x - b).abs() < 1e-3
                x = torch.where(near, x + 0.01, x)
        emit(name, 'clamp', {'lo': lo, 'hi': hi}, {'x': x}, lambda x, lo=lo, hi=hi: torch.clamp(x, lo, hi))


@case
def where_cases():
    for name, sc in [('where_bc', [3, 1]), ('where_bc_last', [4]), ('where_full', [2, 3, 4])]:
        seeded(name)
        cond = (torch.rand(*sc) > 0.5).to(torch.uint8)
        emit(name, 'where', {}, {'cond': cond, 'a': rnd(2, 3, 4), 'b': rnd(2, 3, 4)},
             lambda cond, a, b: torch.where(cond.bool(), a, b), nondiff=('cond',))


@case
def reduce_cases():
    for op in ('sum', 'mean', 'max'):
        for tag, axes in [('ax1', [1]), ('ax_last', [-1]), ('ax02', [0, 2]), ('all', None)]:
            for keep in (False, True):
                name = '%s_%s_%s' % (op, tag, 'keep' if keep else 'nokeep')
                seeded(name)
                x = rnd(2, 3, 4)

                def f(x, op=op, axes=axes, keep=keep):
                    dims = list(range(x.dim())) if axes is None else axes
                    if op == 'sum':
                        return x.sum(dim=dims, keepdim=keep)
                    if op == 'mean':
                        return x.mean(dim=dims, keepdim=keep)
                    return torch.amax(x, dim=dims, keepdim=keep)
                emit(name, op, {'axes': axes, 'keepDim': keep}, {'x': x}, f)


@case
def shape_cases():
    seeded('reshape')
    emit('reshape', 'reshape', {'shape': [4, 6]}, {'x': rnd(2, 3, 4)}, lambda x: x.reshape(4, 6))
    seeded('reshape_infer')
    emit('reshape_infer', 'reshape', {'shape': [3, -1]}, {'x': rnd(2, 3, 4)}, lambda x: x.reshape(3, -1))
    seeded('permute')
    emit('permute', 'permute', {'perm': [2, 0, 1]}, {'x': rnd(2, 3, 4)}, lambda x: x.permute(2, 0, 1))
    seeded('permute4')
    emit('permute4', 'permute', {'perm': [0, 2, 3, 1]}, {'x': rnd(2, 3, 4, 5)}, lambda x: x.permute(0, 2, 3, 1))
    seeded('transpose')
    emit('transpose', 'transpose', {'dim0': 1, 'dim1': 2}, {'x': rnd(2, 3, 4)}, lambda x: x.transpose(1, 2))
    seeded('transpose_neg')
    emit('transpose_neg', 'transpose', {'dim0': -1, 'dim1': -2}, {'x': rnd(2, 3, 4, 5)},
         lambda x: x.transpose(-1, -2))
    # slice: per-axis [start, end) ranges (null = the whole axis)
    for name, shape, ranges in [('slice_two_axes', [4, 5, 6], [None, [1, 4], [2, 5]]),
                                ('slice_first', [4, 5], [[1, 3], None])]:
        seeded(name)

        def f(x, ranges=ranges):
            idx = tuple(slice(None) if r is None else slice(r[0], r[1]) for r in ranges)
            return x[idx]
        emit(name, 'slice', {'ranges': ranges}, {'x': rnd(*shape)}, f)
    seeded('concat_ax0')
    emit('concat_ax0', 'concat', {'axis': 0, 'names': ['a', 'b', 'c']},
         {'a': rnd(2, 3, 4), 'b': rnd(1, 3, 4), 'c': rnd(3, 3, 4)}, lambda a, b, c: torch.cat([a, b, c], 0))
    seeded('concat_ax1')
    emit('concat_ax1', 'concat', {'axis': 1, 'names': ['a', 'b']},
         {'a': rnd(2, 3, 4), 'b': rnd(2, 2, 4)}, lambda a, b: torch.cat([a, b], 1))
    seeded('split_ax1')
    emit('split_ax1', 'split', {'sizes': [1, 3, 2], 'axis': 1}, {'x': rnd(2, 6, 3)},
         lambda x: tuple(torch.split(x, [1, 3, 2], dim=1)))
    seeded('split_last')
    emit('split_last', 'split', {'sizes': [2, 2], 'axis': -1}, {'x': rnd(3, 4)},
         lambda x: tuple(torch.split(x, [2, 2], dim=-1)))
    # pad: per-axis [before, after] zero padding (on H and W of NCHW)
    for name, pads in [('pad_hw', [[0, 0], [0, 0], [1, 2], [2, 1]]), ('pad_h_only', [[0, 0], [0, 0], [1, 1], [0, 0]])]:
        seeded(name)

        def f(x, pads=pads):
            flat = []
            for b, a in reversed(pads):
                flat += [b, a]
            return F.pad(x, flat)
        emit(name, 'pad', {'pads': pads}, {'x': rnd(2, 3, 4, 5)}, f)


@case
def matmul_cases():
    for name, sa, sb in [('matmul_2d', [3, 4], [4, 5]), ('matmul_batched', [2, 3, 4], [2, 4, 5]),
                         ('matmul_bcast_b2d', [2, 3, 4], [4, 5]), ('matmul_bcast_batch', [2, 1, 3, 4], [3, 4, 2]),
                         ('matmul_bcast_a', [3, 4], [2, 4, 5])]:
        seeded(name)
        emit(name, 'matmul', {}, {'a': rnd(*sa), 'b': rnd(*sb)}, torch.matmul)
    seeded('linear_bias')
    emit('linear_bias', 'linear', {}, {'x': rnd(2, 5, 4), 'w': rnd(6, 4), 'b': rnd(6)}, F.linear)
    seeded('linear_nobias')
    emit('linear_nobias', 'linear', {}, {'x': rnd(3, 4), 'w': rnd(2, 4)}, lambda x, w: F.linear(x, w))


@case
def conv_cases():
    specs = [
        # name, x shape, out ch, k, stride, pad, bias
        ('conv1x1_bias', [2, 3, 5, 6], 4, 1, 1, 0, True),
        ('conv1x1_nobias', [2, 3, 5, 6], 4, 1, 1, 0, False),
        ('conv3x3_p1_bias', [2, 3, 6, 5], 4, 3, 1, 1, True),
        ('conv3x3_p1_nobias', [2, 3, 6, 5], 4, 3, 1, 1, False),
        ('conv3x3_s2_p1_bias', [2, 3, 7, 6], 4, 3, 2, 1, True),
        ('conv3x3_s2_p1_nobias', [1, 2, 6, 8], 3, 3, 2, 1, False),
        ('conv3x3_p0_bias', [1, 2, 5, 7], 3, 3, 1, 0, True),
        ('conv5x5_p2_bias', [2, 2, 6, 7], 3, 5, 1, 2, True),
        ('conv5x5_p2_nobias', [1, 3, 7, 5], 2, 5, 1, 2, False),
        ('conv7x7_p3_bias', [1, 3, 8, 7], 2, 7, 1, 3, True),
        ('conv7x7_p3_nobias', [2, 2, 7, 9], 3, 7, 1, 3, False),
    ]
    for name, xs, o, k, s, p, bias in specs:
        seeded(name)
        x = rnd(*xs)
        w = rnd(o, xs[1], k, k) / math.sqrt(xs[1] * k * k)
        w = w.float().double()
        inputs = {'x': x, 'w': w}
        if bias:
            inputs['b'] = rnd(o)
            f = lambda x, w, b, s=s, p=p: F.conv2d(x, w, b, stride=s, padding=p)
        else:
            f = lambda x, w, s=s, p=p: F.conv2d(x, w, None, stride=s, padding=p)
        emit(name, 'conv2d', {'stride': s, 'padding': p}, inputs, f)


@case
def resample_cases():
    seeded('upsample_nearest2x')
    emit('upsample_nearest2x', 'upsample_nearest2x', {}, {'x': rnd(2, 3, 3, 4)},
         lambda x: F.interpolate(x, scale_factor=2, mode='nearest'))
    seeded('avgpool2x2')
    emit('avgpool2x2', 'avgpool2x2', {}, {'x': rnd(2, 3, 4, 6)}, lambda x: F.avg_pool2d(x, 2))


@case
def norm_cases():
    for name, xs, g, affine in [('groupnorm_g3', [2, 6, 4, 5], 3, True), ('groupnorm_g_eq_c', [2, 6, 3, 3], 6, True),
                                ('groupnorm_g1', [2, 4, 3, 5], 1, True), ('groupnorm_noaffine', [2, 4, 3, 3], 2, False),
                                ('groupnorm_3d', [2, 6, 7], 2, True)]:
        seeded(name)
        x = rnd(*xs) * 2 + 0.5
        x = x.float().double()
        c = xs[1]
        if affine:
            emit(name, 'group_norm', {'groups': g, 'eps': 1e-5}, {'x': x, 'gamma': rnd(c) * 0.5 + 1, 'beta': rnd(c)},
                 lambda x, gamma, beta, g=g: F.group_norm(x, g, gamma, beta, 1e-5))
        else:
            emit(name, 'group_norm', {'groups': g, 'eps': 1e-5}, {'x': x},
                 lambda x, g=g: F.group_norm(x, g, None, None, 1e-5))
    seeded('layernorm')
    emit('layernorm', 'layer_norm', {'eps': 1e-5}, {'x': rnd(2, 3, 8) + 0.3, 'gamma': rnd(8) * 0.5 + 1, 'beta': rnd(8)},
         lambda x, gamma, beta: F.layer_norm(x, [8], gamma, beta, 1e-5))
    seeded('layernorm_noaffine')
    emit('layernorm_noaffine', 'layer_norm', {'eps': 1e-5}, {'x': rnd(4, 6)},
         lambda x: F.layer_norm(x, [6], None, None, 1e-5))


@case
def softmax_cases():
    for op, f in [('softmax', F.softmax), ('log_softmax', F.log_softmax)]:
        for tag, dim in [('last', -1), ('dim1', 1)]:
            name = '%s_%s' % (op, tag)
            seeded(name)
            emit(name, op, {'dim': dim}, {'x': rnd(2, 3, 5) * 2}, lambda x, f=f, dim=dim: f(x, dim=dim))


@case
def attention_cases():
    def sdpa(q, k, v):
        d = q.shape[-1]
        return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1) @ v
    seeded('sdpa')
    emit('sdpa', 'sdpa', {}, {'q': rnd(2, 2, 5, 4), 'k': rnd(2, 2, 5, 4), 'v': rnd(2, 2, 5, 4)}, sdpa)
    seeded('sdpa_cross')
    emit('sdpa_cross', 'sdpa', {}, {'q': rnd(2, 2, 3, 4), 'k': rnd(2, 2, 6, 4), 'v': rnd(2, 2, 6, 4)}, sdpa)


@case
def embedding_cases():
    seeded('embedding')
    idx = torch.tensor([[0, 3, 3, 5], [1, 0, 3, 2]], dtype=torch.int64)
    emit('embedding', 'embedding', {}, {'idx': idx, 'table': rnd(6, 4)}, lambda idx, table: F.embedding(idx, table),
         nondiff=('idx',))
    seeded('embedding_1d')
    idx = torch.tensor([2, 2, 0, 4, 2], dtype=torch.int64)
    emit('embedding_1d', 'embedding', {}, {'idx': idx, 'table': rnd(5, 3)}, lambda idx, table: F.embedding(idx, table),
         nondiff=('idx',))


@case
def loss_cases():
    seeded('mse_loss')
    emit('mse_loss', 'mse_loss', {}, {'pred': rnd(2, 3, 4), 'target': rnd(2, 3, 4)},
         lambda pred, target: F.mse_loss(pred, target))


@case
def block_case():
    """conv3x3 (pad 1) -> group norm -> SiLU -> single-head self-attention over H*W tokens
    (q, k, v linear projections of the C channels, output projection, residual) -> linear.
    The k projection has no bias: softmax is invariant to it, so its true gradient is exactly 0 and
    a float32 engine can only return rounding noise there (nothing to compare against).

        h = silu(group_norm(conv2d(x, conv_w, conv_b, padding=1), groups, gn_gamma, gn_beta, eps))
        t = h.reshape(N, C, H*W).transpose(1, 2)                       # [N, HW, C]
        a = softmax(linear(t, q_w, q_b) @ linear(t, k_w)^T / sqrt(C)) @ linear(t, v_w, v_b)
        t = t + linear(a, o_w, o_b)
        out = linear(t, out_w, out_b)                                   # [N, HW, out_features]
    """
    name = 'block'
    seeded(name)
    n, cin, h, w, c, groups, fo = 2, 3, 4, 5, 8, 4, 6
    x = rnd(n, cin, h, w)

    def lin(i, o):
        return (rnd(o, i) / math.sqrt(i)).float().double()
    params = {
        'conv_w': (rnd(c, cin, 3, 3) / math.sqrt(cin * 9)).float().double(), 'conv_b': rnd(c) * 0.1,
        'gn_gamma': (rnd(c) * 0.2 + 1).float().double(), 'gn_beta': rnd(c) * 0.1,
        'q_w': lin(c, c), 'q_b': rnd(c) * 0.1, 'k_w': lin(c, c),
        'v_w': lin(c, c), 'v_b': rnd(c) * 0.1, 'o_w': lin(c, c), 'o_b': rnd(c) * 0.1,
        'out_w': lin(c, fo), 'out_b': rnd(fo) * 0.1,
    }
    params = {k: v.float().double() for k, v in params.items()}

    def f(x, conv_w, conv_b, gn_gamma, gn_beta, q_w, q_b, k_w, v_w, v_b, o_w, o_b, out_w, out_b):
        y = F.conv2d(x, conv_w, conv_b, padding=1)
        y = F.silu(F.group_norm(y, groups, gn_gamma, gn_beta, 1e-5))
        t = y.reshape(n, c, h * w).transpose(1, 2)
        q, k, v = F.linear(t, q_w, q_b), F.linear(t, k_w), F.linear(t, v_w, v_b)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c), dim=-1) @ v
        t = t + F.linear(a, o_w, o_b)
        return F.linear(t, out_w, out_b)
    emit(name, 'block', {'groups': groups, 'eps': 1e-5, 'padding': 1}, {'x': x}, f, params=params)


def format_fixture():
    """test/fixtures/safetensors/python_mixed.safetensors: every dtype the reader supports, known values."""
    d = os.path.join(os.path.dirname(OUT_DIR), 'safetensors')
    os.makedirs(d, exist_ok=True)
    tensors = {
        'f32': (torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1),
        'f64': torch.tensor([1.0 / 3, -2.5, 1e-3], dtype=torch.float64),
        'i32': torch.tensor([[-7, 0], [2147483647, -2147483648]], dtype=torch.int32),
        'i64': torch.tensor([-3, 0, 2147483647, -2147483648], dtype=torch.int64),
        'u8': torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        'scalar': torch.tensor(1.5, dtype=torch.float32),
        'empty': torch.zeros(2, 0, dtype=torch.float32),
        'w.nested.name': torch.tensor([[1.0], [-1.0]], dtype=torch.float32),
    }
    write_safetensors(os.path.join(d, 'python_mixed.safetensors'), tensors,
                      {'format': 'pt', 'note': 'written by tools/gen_fixtures.py'})


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT_DIR, exist_ok=True)
    for old in os.listdir(OUT_DIR):
        if old.endswith('.safetensors'):
            os.remove(os.path.join(OUT_DIR, old))
    for c in CASES:
        c()
    format_fixture()
    files = sorted(os.listdir(OUT_DIR))
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in files)
    print('wrote %d fixtures, %d bytes, to %s' % (len(files), total, os.path.relpath(OUT_DIR)), file=sys.stderr)


if __name__ == '__main__':
    main()
