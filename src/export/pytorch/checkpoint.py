"""diffuse's checkpoint format (src/train/checkpoint.ts) and safetensors, by hand (no dependency beyond torch).

A checkpoint folder holds checkpoint.json ({format: 'diffuse-checkpoint', version, config, state, files}) and
one safetensors file per role (model, ema, optimizer) named <role>-<step:08>.safetensors; the JSON records each
file's size and SHA-256. Saves write the weight files first and the JSON last, each atomically (temporary
file, fsync, rename), then remove the files the new JSON no longer names: `diffuse sample`, `diffuse serve` and
`diffuse train --resume` read these folders as their own.

safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
then the raw little-endian data, tensors back to back."""
import hashlib
import json
import os
import re
import struct

import torch

DTYPES = {'F32': torch.float32, 'F64': torch.float64, 'I32': torch.int32, 'I64': torch.int64, 'U8': torch.uint8}
NAMES = {v: k for k, v in DTYPES.items()}
FORMAT, VERSION, CHECKPOINT_JSON = 'diffuse-checkpoint', 1, 'checkpoint.json'


def serialize_safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in NAMES:
            raise ValueError('safetensors: %s has unsupported dtype %s' % (name, t.dtype))
        data = t.numpy().tobytes() if t.numel() else b''
        header[name] = {'dtype': NAMES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(blobs)


def parse_safetensors(data, name='<bytes>'):
    if len(data) < 8:
        raise ValueError('%s: truncated safetensors file' % name)
    (n,) = struct.unpack('<Q', data[:8])
    if n > len(data) - 8:
        raise ValueError('%s: header runs past the end of the file' % name)
    header = json.loads(data[8:8 + n].decode('utf-8'))
    base, out = 8 + n, {}
    meta = header.pop('__metadata__', {})
    for key, info in header.items():
        dtype = DTYPES.get(info['dtype'])
        if dtype is None:
            raise ValueError('%s: %s has unsupported dtype %s' % (name, key, info['dtype']))
        b, e = info['data_offsets']
        buf = bytearray(data[base + b:base + e])
        t = torch.frombuffer(buf, dtype=dtype) if len(buf) else torch.empty(0, dtype=dtype)
        out[key] = t.reshape(info['shape']).clone()
    return out, meta


def write_atomic(path, data):
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_checkpoint_json(folder):
    path = os.path.join(folder, CHECKPOINT_JSON)
    if not os.path.exists(path):
        raise SystemExit('%s: no checkpoint here (expected %s)' % (folder, CHECKPOINT_JSON))
    with open(path) as f:
        js = json.load(f)
    if js.get('format') != FORMAT:
        raise SystemExit('%s: not a diffuse checkpoint' % path)
    return js


def load_group(folder, js, role):
    """One weight group, checked against the size and SHA-256 that checkpoint.json records."""
    rec = js['files'].get(role)
    if rec is None:
        raise SystemExit('%s: no %r weights' % (os.path.join(folder, CHECKPOINT_JSON), role))
    path = os.path.join(folder, rec['file'])
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) != rec['bytes'] or hashlib.sha256(data).hexdigest() != rec['sha256']:
        raise SystemExit('%s: size or checksum does not match %s' % (path, CHECKPOINT_JSON))
    return parse_safetensors(data, path)[0]


def save_checkpoint(folder, step, config, state, groups):
    os.makedirs(folder, exist_ok=True)
    files = {}
    for role, tensors in groups.items():
        name = '%s-%08d.safetensors' % (role, step)
        data = serialize_safetensors(tensors, {'format': 'pt'})
        write_atomic(os.path.join(folder, name), data)
        files[role] = {'file': name, 'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest()}
    js = {'format': FORMAT, 'version': VERSION, 'config': config, 'state': state, 'files': files}
    write_atomic(os.path.join(folder, CHECKPOINT_JSON), json.dumps(js, indent=1).encode('utf-8'))
    keep = {r['file'] for r in files.values()}
    for f in os.listdir(folder):
        if re.match(r'^[a-z]+-\d{8}\.safetensors$', f) and f not in keep and any(f.startswith(r + '-') for r in groups):
            os.remove(os.path.join(folder, f))
    return js
