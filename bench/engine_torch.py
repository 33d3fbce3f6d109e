"""PyTorch peer for bench/engine.ts: the same four workloads, timed the same way.

Run by bench/engine.ts with OPENBLAS_NUM_THREADS=1 (torch then uses its own pool) and the thread count as argv[1].
Prints one JSON object: case name -> list of seconds per repetition.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

threads, reps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)


def timed(fn, reps):
    # warm-up to a steady state, the same rule as engine_ours.ts: at least 3 runs and 0.5 s
    # (allocations, oneDNN primitive creation)
    w0, i = time.perf_counter(), 0
    while i < 3 or time.perf_counter() - w0 < 0.5:
        fn()
        i += 1
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def sgemm():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return lambda: torch.mm(a, b)


def conv(b, c, hw):
    x = torch.randn(b, c, hw, hw, requires_grad=True)
    w = (torch.randn(c, c, 3, 3) * 0.05).requires_grad_()
    bias = torch.zeros(c, requires_grad=True)
    gy = torch.randn(b, c, hw, hw)

    def step():
        x.grad = w.grad = bias.grad = None
        F.conv2d(x, w, bias, padding=1).backward(gy)
    return step


def groupnorm_silu(b, c, hw, groups):
    x = torch.randn(b, c, hw, hw, requires_grad=True)
    g = torch.ones(c, requires_grad=True)
    beta = torch.zeros(c, requires_grad=True)
    gy = torch.randn(b, c, hw, hw)

    def step():
        x.grad = g.grad = beta.grad = None
        F.silu(F.group_norm(x, groups, g, beta, 1e-5)).backward(gy)
    return step


def attention(b, tokens, c, heads):
    x = torch.randn(b, tokens, c, requires_grad=True)
    wqkv = (torch.randn(3 * c, c) * c ** -0.5).requires_grad_()
    wo = (torch.randn(c, c) * c ** -0.5).requires_grad_()
    gy = torch.randn(b, tokens, c)
    d = c // heads

    def step():
        x.grad = wqkv.grad = wo.grad = None
        q, k, v = F.linear(x, wqkv).reshape(b, tokens, 3, heads, d).permute(2, 0, 3, 1, 4)
        p = torch.softmax(q @ k.transpose(-1, -2) * d ** -0.5, dim=-1)
        o = (p @ v).permute(0, 2, 1, 3).reshape(b, tokens, c)
        (F.linear(o, wo) + x).backward(gy)
    return step


cases = {
    'sgemm_1024': sgemm(),
    'conv3x3_b64_c64_28': conv(64, 64, 28),
    'conv3x3_b64_c128_14': conv(64, 128, 14),
    'groupnorm_silu_b64_c128_28': groupnorm_silu(64, 128, 28, 32),
    'attention_b64_t196_c128': attention(64, 196, 128, 4),
}
only = sys.argv[3].split(',') if len(sys.argv) > 3 and sys.argv[3] else list(cases)
print(json.dumps({name: timed(cases[name], reps) for name in only}))
