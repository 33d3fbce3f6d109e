/** Datasets: MNIST / Fashion-MNIST, emoji (color), image folders, 2-D toy sets, batching and augmentation. */
export * from './dataset.js';
export * from './mnist.js';
export * from './emoji.js';
export * from './folder.js';
export * from './toy2d.js';
export * from './transforms.js';

import type { ImageDataset } from './dataset.js';
import { loadImageFolder, type FolderOptions } from './folder.js';
import { loadFashionMnist, loadMnist, type Split } from './mnist.js';
import { loadEmoji } from './emoji.js';

export interface LoadDatasetOptions extends Partial<FolderOptions> {
  split?: Split;
  limit?: number;
}

/** The built-in datasets, which have a train/test split (anything else names a folder of images). */
export const BUILT_IN_DATASETS: readonly string[] = ['mnist', 'fashion-mnist', 'fashion', 'emoji'];
export const isBuiltInDataset = (spec: string): boolean => BUILT_IN_DATASETS.includes(spec);

/**
 * An image dataset by name, for command lines: 'mnist', 'fashion-mnist', 'emoji' (split and limit apply), or else a
 * folder path (size required; split does not apply to folders).
 */
export function loadImageDataset(spec: string, opts: LoadDatasetOptions = {}): ImageDataset {
  if (spec === 'mnist') return loadMnist({ split: opts.split, limit: opts.limit });
  if (spec === 'fashion-mnist' || spec === 'fashion') return loadFashionMnist({ split: opts.split, limit: opts.limit });
  if (spec === 'emoji') return loadEmoji({ split: opts.split, limit: opts.limit });
  if (opts.size === undefined) throw new Error(`dataset '${spec}': a folder of images needs an image size`);
  if (opts.split !== undefined && opts.split !== 'all') throw new Error(`dataset '${spec}': a folder has no train/test split`);
  return loadImageFolder(spec, { ...opts, size: opts.size });
}

/** A run's training images: a built-in set's 'train' split (the judges hold out 'test'), or a folder read at `size`. */
export function loadTrainingSet(spec: string, { limit, size }: { limit?: number; size: number }): ImageDataset {
  return loadImageDataset(spec, isBuiltInDataset(spec) ? { split: 'train', limit } : { size, limit });
}
export * from './clusters.js';
