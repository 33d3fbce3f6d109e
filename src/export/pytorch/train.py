#!/usr/bin/env python3
"""Trains a diffuse run on PyTorch, on one process or many (DDP): torchrun starts one process per GPU (NCCL)
or per CPU slot (gloo); every process computes its slice of each global batch and DDP averages the gradients.

  python3 train.py --steps 1000                                    # one process
  torchrun --nproc_per_node 4 train.py --steps 1000                # one machine, 4 processes
  torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --master_addr HOST --master_port 29500 train.py ...

It resumes from init/ (the checkpoint `diffuse export` copied: weights, AdamW moments, EMA, step) or from
--out when that already holds a checkpoint, and writes diffuse checkpoints to --out, which `diffuse sample`,
`diffuse serve` and `diffuse train --resume` load as their own.

  python3 train.py --check batch.safetensors --check-out grads.safetensors
    one forward and backward on a given batch (x0, t, noise, labels; every rank takes its slice): writes the
    loss (averaged over ranks) and the gradients after DDP's all-reduce, and, under torchrun, rank 0's loss
    and gradients of the whole batch in one process (whole.*); changes nothing.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint import CHECKPOINT_JSON, load_group, parse_safetensors, read_checkpoint_json, save_checkpoint, serialize_safetensors  # noqa: E402
from data import GlobalBatches, ImageData  # noqa: E402
from diffusion import EMA, Schedule, training_loss, warmup_cosine  # noqa: E402
from unet_torch import UNet  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def log(rank, *args):
    if rank == 0:
        print(*args, flush=True)


def setup():
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank, local = int(os.environ.get('RANK', '0')), int(os.environ.get('LOCAL_RANK', '0'))
    cuda = torch.cuda.is_available()
    device = torch.device('cuda', local) if cuda else torch.device('cpu')
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group('nccl' if cuda else 'gloo')
    return world, rank, device


def decays(name, p):
    """Weight decay on matrices and kernels, not on biases and norm gains (as diffuse's trainer)."""
    return p.dim() > 1 and 'norm' not in name


def build_optimizer(model, hyper, weight_decay):
    named = list(model.named_parameters())
    groups = [{'params': [p for n, p in named if decays(n, p)], 'weight_decay': weight_decay},
              {'params': [p for n, p in named if not decays(n, p)], 'weight_decay': 0.0}]
    return torch.optim.AdamW(groups, lr=hyper['lr'], betas=(hyper['beta1'], hyper['beta2']), eps=hyper['eps'])


def load_optimizer(opt, model, tensors, steps, device):
    for name, p in model.named_parameters():
        if name in steps:
            opt.state[p] = {'step': torch.tensor(float(steps[name])), 'exp_avg': tensors['exp_avg.' + name].to(device).reshape(p.shape).clone(),
                            'exp_avg_sq': tensors['exp_avg_sq.' + name].to(device).reshape(p.shape).clone()}


def optimizer_state(opt, model):
    tensors, steps = {}, {}
    for name, p in model.named_parameters():
        s = opt.state.get(p)
        if s:
            steps[name] = int(s['step'])
            tensors['exp_avg.' + name] = s['exp_avg']
            tensors['exp_avg_sq.' + name] = s['exp_avg_sq']
    return tensors, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--init', default=os.path.join(HERE, 'init'), help='checkpoint to start from (default: init/)')
    ap.add_argument('--data', default=os.path.join(HERE, 'data.safetensors'))
    ap.add_argument('--out', default=os.path.join(HERE, 'out'), help='checkpoint folder (resumed when it holds one)')
    ap.add_argument('--steps', type=int, default=None, help='optimizer steps to run now (default: up to the run\'s trainer.steps)')
    ap.add_argument('--checkpoint-every', type=int, default=None)
    ap.add_argument('--check', metavar='BATCH', help='one forward/backward on this batch file; no update')
    ap.add_argument('--check-out', metavar='FILE', help='where --check writes the loss and gradients')
    args = ap.parse_args()

    world, rank, device = setup()
    src = args.out if os.path.exists(os.path.join(args.out, CHECKPOINT_JSON)) and not args.check else args.init
    js = read_checkpoint_json(src)
    config, state = js['config'], js['state']
    tc = config['trainer']
    model = UNet(config['model']['config']).to(device)
    model.load_state_dict({k: v.to(device) for k, v in load_group(src, js, 'model').items()}, strict=True)
    model.train()
    ddp = DDP(model) if world > 1 else model
    schedule = Schedule(config['schedule'])
    num_classes = config['model']['config']['numClasses']

    if args.check:
        with open(args.check, 'rb') as f:
            batch, _ = parse_safetensors(f.read(), args.check)
        b = batch['x0'].shape[0]
        if b % world:
            raise SystemExit('--check: batch of %d does not split over %d processes' % (b, world))
        sl = slice(rank * b // world, (rank + 1) * b // world)
        cond = batch['labels'][sl].long().to(device) if 'labels' in batch else None
        loss = training_loss(ddp, schedule, batch['x0'][sl].to(device), batch['t'][sl].to(device), batch['noise'][sl].to(device), cond, config['objective'])
        loss.backward()
        mean_loss = loss.detach().to(torch.float64)
        if world > 1:
            dist.all_reduce(mean_loss)
            mean_loss /= world
        if rank == 0:
            out = {'loss': mean_loss.reshape(1).cpu()}
            out.update({'grad.' + n: p.grad for n, p in model.named_parameters() if p.grad is not None})
            if world > 1:
                # The same step in this one process on the whole batch, for comparison with the all-reduce.
                whole = UNet(config['model']['config']).to(device)
                whole.load_state_dict(model.state_dict())
                whole.train()
                cond = batch['labels'].long().to(device) if 'labels' in batch else None
                full = training_loss(whole, schedule, batch['x0'].to(device), batch['t'].to(device), batch['noise'].to(device), cond, config['objective'])
                full.backward()
                out['whole.loss'] = full.detach().to(torch.float64).reshape(1).cpu()
                out.update({'whole.grad.' + n: p.grad for n, p in whole.named_parameters() if p.grad is not None})
            with open(args.check_out, 'wb') as f:
                f.write(serialize_safetensors(out))
            log(rank, json.dumps({'loss': float(mean_loss), 'world': world}))
        if world > 1:
            dist.destroy_process_group()
        return

    if config['objective']['variance'] == 'learnedRange':
        raise SystemExit('objective: the hybrid loss (learnedRange) is not in this project')
    data = ImageData(args.data)
    global_batch = tc['batchSize']
    if global_batch % world:
        raise SystemExit('trainer.batchSize %d does not split over %d processes' % (global_batch, world))
    per_rank = global_batch // world
    opt = build_optimizer(model, state['optimizerHyper'], tc['weightDecay'])
    load_optimizer(opt, model, load_group(src, js, 'optimizer'), state['optimizerSteps'], device)
    ema = EMA(model.named_parameters(), tc['emaDecay'], state['emaUpdates'], {k: v.to(device) for k, v in load_group(src, js, 'ema').items()})
    lr_at = warmup_cosine(tc['lr'], tc['warmupSteps'], tc['steps'], tc['minLr'])
    step = state['step']
    torch_state = state.get('torch', {})
    batches = GlobalBatches(data.n, global_batch, tc['seed'], torch_state.get('epoch', 0), torch_state.get('cursor', 0))
    total = step + args.steps if args.steps is not None else tc['steps']
    # Per-step randomness: seeded by (seed, step, rank), so a resumed run draws what an uninterrupted one would.
    gen = torch.Generator(device=device)
    every = args.checkpoint_every or tc.get('checkpointEvery') or 0
    log(rank, 'train.py: %s, %d images, steps %d → %d, global batch %d over %d process(es) on %s' % (
        data.name, data.n, step, total, global_batch, world, device))
    t0, elapsed0, last = time.time(), state.get('elapsedSec', 0.0), None

    def save():
        tensors, steps = optimizer_state(opt, model)
        hyper = {'lr': opt.param_groups[0]['lr'], 'beta1': opt.defaults['betas'][0], 'beta2': opt.defaults['betas'][1],
                 'eps': opt.defaults['eps'], 'weightDecay': tc['weightDecay']}
        new_state = dict(state, step=step, elapsedSec=elapsed0 + time.time() - t0, emaUpdates=ema.num_updates, optimizerSteps=steps,
                         optimizerHyper=hyper, lastLoss=last, torch={'epoch': batches.epoch, 'cursor': batches.cursor, 'world': world})
        cfg = dict(config, trainer=dict(tc, steps=max(tc['steps'], step)))
        save_checkpoint(args.out, step, cfg, new_state, {'model': dict(model.state_dict()), 'ema': ema.shadow, 'optimizer': tensors})
        log(rank, 'checkpoint at step %d → %s' % (step, os.path.join(args.out, CHECKPOINT_JSON)))

    while step < total:
        lr = lr_at(step)
        for g in opt.param_groups:
            g['lr'] = lr
        total_loss = torch.zeros((), dtype=torch.float64, device=device)
        for micro in range(tc['accumulate']):
            idx = batches.next()[rank * per_rank:(rank + 1) * per_rank]
            gen.manual_seed(tc['seed'] * 1_000_003 + step * 1009 + micro * 101 + rank)
            flip = torch.rand(per_rank, generator=gen, device=device).cpu() < 0.5 if data.flip_safe else None
            x0, y = data.get(idx, flip)
            x0 = x0.to(device)
            cond = None
            if num_classes > 0:
                drop = torch.rand(per_rank, generator=gen, device=device) < tc['condDropout']
                cond = torch.where(drop, torch.full_like(y.to(device), num_classes), y.to(device))
            t = torch.randint(0, schedule.T, (per_rank,), generator=gen, device=device)
            noise = torch.randn(x0.shape, generator=gen, device=device)
            sync = micro == tc['accumulate'] - 1 or world == 1
            ctx = ddp.no_sync() if not sync else torch.enable_grad()
            with ctx:
                loss = training_loss(ddp, schedule, x0, t, noise, cond, config['objective'])
                (loss / tc['accumulate']).backward()
            total_loss += loss.detach()
        if world > 1:
            dist.all_reduce(total_loss)
            total_loss /= world
        last = float(total_loss) / tc['accumulate']
        if not (last == last and abs(last) != float('inf')):
            raise SystemExit('training loss is %s at step %d: stopping; the last checkpoint is kept' % (last, step + 1))
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc['gradClip'] if tc['gradClip'] > 0 else float('inf'))
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update()
        step += 1
        log(rank, json.dumps({'step': step, 'loss': last, 'lr': lr, 'gradNorm': float(grad_norm)}))
        if rank == 0 and every and step % every == 0 and step < total:
            save()
    if rank == 0:
        save()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
