"""
The PyTorch CUDA peer of bench/webgpu.ts: the same UNet (bench/unet_torch.py), the same training step (forward,
MSE backward, AdamW, EMA) and sampling step (one no-grad network evaluation), on the GPU, timed with
torch.cuda.synchronize() after every step. Strict float32 by default (TF32 off, as WebGPU computes in fp32);
--tf32 allows TF32 tensor cores. Prints one JSON line; {"error": ...} when CUDA is unavailable.

Usage: python3 bench/webgpu_torch.py [--preset tiny] [--batch 64] [--reps 10] [--tf32]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--preset', default='tiny')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--reps', type=int, default=10)
    ap.add_argument('--tf32', action='store_true')
    args = ap.parse_args()
    try:
        import torch
        from unet_torch import UNet, bench_steps, num_parameters, timed_runs, unet_preset
    except Exception as e:  # noqa: BLE001 - report any import failure to the caller
        print(json.dumps({'error': f'cannot import torch / unet_torch: {e}'}))
        return
    if not torch.cuda.is_available():
        print(json.dumps({'error': 'torch.cuda.is_available() is False'}))
        return
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    dev = torch.device('cuda')
    # unet_torch.py builds some tensors (timestep frequencies) without a device argument: default them to the GPU.
    torch.set_default_device(dev)
    torch.manual_seed(0)
    cfg = unet_preset(args.preset, imageSize=28, inChannels=1, numClasses=10)
    model = UNet(cfg).to(dev).train()
    x = torch.randn(args.batch, 1, 28, 28, device=dev)
    t = torch.randint(0, 1000, (args.batch,), device=dev).float()
    y = torch.randint(0, 11, (args.batch,), device=dev)
    noise = torch.randn_like(x)

    train_step, sample_step = bench_steps(model, x, t, y, noise)
    timed = lambda fn: timed_runs(fn, args.reps, warmup_s=1.0, sync=torch.cuda.synchronize)  # noqa: E731

    print(json.dumps({'device': torch.cuda.get_device_name(0), 'params': num_parameters(model), 'batch': args.batch,
                      'tf32': args.tf32, 'train_s': timed(train_step), 'sample_s': timed(sample_step),
                      'torch': torch.__version__}))


if __name__ == '__main__':
    main()
