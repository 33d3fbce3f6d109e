"""diffuse's diffusion math for training, transcribed from src/diffusion (schedules.ts, losses.ts) and
src/train (optim.ts: warmupCosine; ema.ts). Schedules are computed in float64, as diffuse does; only the
per-sample coefficients reach float32 tensors."""
import math

import torch

DEFAULTS = {'linear': (1e-4, 0.02), 'sigmoid': (1e-4, 0.02), 'scaledLinear': (0.00085, 0.012)}


def betas_for(cfg):
    """beta_0 ... beta_{T-1} of a schedule config (before zero-terminal-SNR rescaling), as Python floats."""
    kind = cfg['kind']
    if kind == 'custom':
        return [float(b) for b in cfg['betas']]
    T = int(cfg['T'])

    def lin(a, b, i):
        return a if T == 1 else a + (b - a) * (i / (T - 1))

    if kind in DEFAULTS:
        b0 = cfg.get('betaStart', DEFAULTS[kind][0])
        b1 = cfg.get('betaEnd', DEFAULTS[kind][1])
        if kind == 'linear':
            return [lin(b0, b1, i) for i in range(T)]
        if kind == 'scaledLinear':
            return [lin(math.sqrt(b0), math.sqrt(b1), i) ** 2 for i in range(T)]
        return [b0 + (b1 - b0) / (1 + math.exp(-lin(-6, 6, i))) for i in range(T)]
    if kind == 'cosine':
        s, max_beta = cfg.get('s', 0.008), cfg.get('maxBeta', 0.999)

        def f(t):
            return math.cos(((t / T + s) / (1 + s)) * math.pi / 2) ** 2

        return [min(1 - f(i + 1) / f(i), max_beta) for i in range(T)]
    raise ValueError('schedule: unknown kind %r' % kind)


def rescale_zero_terminal_snr(betas):
    """Lin et al. 2023, Algorithm 1 (as schedules.ts)."""
    sq, ab = [], 1.0
    for b in betas:
        ab *= 1 - b
        sq.append(math.sqrt(ab))
    first, last = sq[0], sq[-1]
    out, prev = [], 1.0
    for v in sq:
        a = ((v - last) * first) / (first - last)
        out.append(1 - a * a / prev)
        prev = a * a
    return out


class Schedule:
    def __init__(self, cfg):
        betas = betas_for(cfg)
        if cfg.get('rescaleZeroTerminalSnr'):
            betas = rescale_zero_terminal_snr(betas)
        self.T = len(betas)
        ac, p = [], 1.0
        for b in betas:
            p *= 1 - b
            ac.append(p)
        if cfg.get('rescaleZeroTerminalSnr'):
            ac[-1] = 0.0
        self.alphas_cumprod = torch.tensor(ac, dtype=torch.float64)
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sigmas = (1 - self.alphas_cumprod).sqrt()
        self.snr = self.alphas_cumprod / (1 - self.alphas_cumprod)


def min_snr_weights(snr, gamma, prediction):
    m = torch.minimum(snr, torch.full_like(snr, gamma))
    if prediction == 'x0':
        return m
    if prediction == 'v':
        return m / (snr + 1)
    return torch.where(snr == 0, torch.ones_like(snr), m / snr)


def coef(values, like):
    """float64 per-sample coefficients → float32 [B, 1, 1, 1] on like's device."""
    return values.to(torch.float32).reshape(-1, *([1] * (like.dim() - 1))).to(like.device)


def training_loss(model, schedule, x0, t, noise, cond, objective):
    """diffuse's trainingLoss for a fixed-variance objective: mean over the batch of the per-sample mean
    squared error of the prediction (epsilon, x0 or v), optionally min-SNR-gamma weighted."""
    prediction = objective['prediction']
    if objective['variance'] == 'learnedRange':
        raise NotImplementedError('the hybrid loss (learnedRange) is not in this project')
    t_cpu = t.long().cpu()
    a, s = schedule.sqrt_alphas_cumprod[t_cpu], schedule.sigmas[t_cpu]
    xt = coef(a, x0) * x0 + coef(s, x0) * noise
    pred = model(xt, t.to(torch.float32), cond)
    if prediction == 'epsilon':
        target = noise
    elif prediction == 'x0':
        target = x0
    else:
        target = coef(a, x0) * noise - coef(s, x0) * x0
    mse = ((pred - target) ** 2).mean(dim=tuple(range(1, x0.dim())))
    w = objective.get('weighting') or {'kind': 'none'}
    if w['kind'] == 'minSnr':
        return (mse * coef(min_snr_weights(schedule.snr[t_cpu], w.get('gamma', 5), prediction), mse).reshape(-1)).mean()
    return mse.mean()


def warmup_cosine(base_lr, warmup_steps, total_steps, min_lr=0.0):
    """The learning rate of the 0-based step about to be taken (optim.ts warmupCosine)."""
    def lr(step):
        if step < warmup_steps:
            return base_lr * (step + 1) / warmup_steps
        span = total_steps - warmup_steps
        progress = min(1.0, (step - warmup_steps) / span) if span > 0 else 1.0
        return min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    return lr


class EMA:
    """shadow <- d * shadow + (1 - d) * param, d = min(decay, (1 + n) / (10 + n)) with warmup (ema.ts)."""

    def __init__(self, named_params, decay, num_updates=0, shadow=None):
        self.decay, self.num_updates = decay, num_updates
        self.params = list(named_params)
        self.shadow = {n: (shadow[n].clone() if shadow is not None else p.detach().clone()) for n, p in self.params}

    @torch.no_grad()
    def update(self):
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for n, p in self.params:
            s = self.shadow[n]
            s += (1 - d) * (p.detach() - s)
        self.num_updates += 1
