"""The training images, as diffuse loaded them: `diffuse export` writes the run's dataset (MNIST, Fashion-MNIST
or an image folder, after diffuse's own decoding and resizing) to data.safetensors: images uint8 [N, C, H, W],
labels int32 [N]; metadata: name, numClasses, flipSafe. Values map to [-1, 1] as diffuse's (x = v/127.5 - 1).

Batches: every rank draws the same global batch of config.trainer.batchSize examples (a seeded permutation
per epoch, batches running on across epochs, as diffuse's batchIterator) and keeps its own slice of it, so the
ranks together see exactly one global batch per micro-step."""
import torch

from checkpoint import parse_safetensors


class ImageData:
    def __init__(self, path):
        with open(path, 'rb') as f:
            tensors, meta = parse_safetensors(f.read(), path)
        self.images, self.labels = tensors['images'], tensors['labels'].long()
        self.n = self.images.shape[0]
        self.name = meta.get('name', path)
        self.num_classes = int(meta.get('numClasses', 0))
        self.flip_safe = meta.get('flipSafe') == 'true'

    def get(self, indices, flip=None):
        x = self.images[indices].to(torch.float32) / 127.5 - 1
        if flip is not None:
            x = torch.where(flip.reshape(-1, 1, 1, 1), x.flip(-1), x)
        return x, self.labels[indices]


class GlobalBatches:
    """An endless stream of global batches of indices; state = (epoch, cursor), resumable."""

    def __init__(self, n, batch_size, seed, epoch=0, cursor=0):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.cursor = epoch, cursor
        self.order = self._order(epoch) if epoch > 0 else None

    def _order(self, epoch):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def next(self):
        out = []
        for _ in range(self.batch_size):
            if self.order is None or self.cursor >= self.n:
                self.epoch += 1
                self.order, self.cursor = self._order(self.epoch), 0
            out.append(int(self.order[self.cursor]))
            self.cursor += 1
        return torch.tensor(out, dtype=torch.long)
