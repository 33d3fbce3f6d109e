/**
 * ConvClassifier: the small CNN the project trains (tools/train_judge.ts) and uses as its judge of samples
 * (src/eval/judge.ts) — one per judged dataset: MNIST (1×28×28, the defaults) and emoji (3×32×32).
 *
 *   x [B,C,S,S] in [−1, 1]                               (C = inChannels, S = imageSize, S divisible by 4)
 *   conv1 C→32 3×3 pad 1 → ReLU → avgpool 2×2            [B,32,S/2,S/2]
 *   conv2 32→32 3×3 pad 1 → ReLU → avgpool 2×2           [B,32,S/4,S/4]
 *   flatten → (dropout) → fc1 32·(S/4)²→128 → ReLU       [B,128]   ← `features(x)`
 *   (dropout) → fc2 128→K                                [B,K]     ← `forward(x)` (logits)
 *
 * Dropout (option `dropout`, default 0; the judges were trained with it) acts in training mode only.
 *
 * conv2 keeps 32 channels (not 64) so that the whole model stays under about 1 MB of float32 (211k parameters
 * for MNIST, fc1 being most of them) and can be committed. The names match the equivalent torch.nn module
 * (conv1.weight, …, fc2.bias), so the weights load into PyTorch unchanged.
 */
import { Generator, Tensor, avgPool2x2, dropout, flatten, relu } from '../tensor/index.js';
import { Conv2d, Linear } from './layers.js';
import { Module, type UnaryModule } from './module.js';

export interface ConvClassifierOptions {
  /** Seed of the initial weights (default 0); the same seed gives the same weights. */
  seed?: number;
  /** Channels of the input images (default 1). */
  inChannels?: number;
  /** Side of the (square) input images, divisible by 4 (default 28). */
  imageSize?: number;
  /** Channels after conv1 and conv2 (default 32, 32). */
  channels?: [number, number];
  /** Width of the feature layer (default 128). */
  featureDim?: number;
  numClasses?: number;
  /**
   * Dropout probability on the flattened conv features and on the 128 features (training mode only; in
   * eval mode the model is deterministic). Default 0. It has no parameters, so it does not change the weights
   * file.
   */
  dropout?: number;
  /** Generator of the dropout masks (default: one seeded from `seed` + 1). */
  dropoutGen?: Generator;
}

export class ConvClassifier extends Module implements UnaryModule {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly inChannels: number;
  readonly imageSize: number;
  readonly featureDim: number;
  readonly numClasses: number;
  readonly dropout: number;
  private readonly dropoutGen: Generator;

  constructor({
    seed = 0, inChannels = 1, imageSize = 28, channels = [32, 32], featureDim = 128, numClasses = 10, dropout: p = 0, dropoutGen,
  }: ConvClassifierOptions = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`ConvClassifier: dropout ${p} must be in [0, 1)`);
    if (!Number.isInteger(inChannels) || inChannels < 1) throw new RangeError(`ConvClassifier: inChannels must be a whole number ≥ 1, got ${inChannels}`);
    if (!Number.isInteger(imageSize) || imageSize < 4 || imageSize % 4 !== 0) {
      throw new RangeError(`ConvClassifier: imageSize must be a multiple of 4 (two 2×2 poolings), got ${imageSize}`);
    }
    const gen = new Generator(seed);
    this.dropout = p;
    this.dropoutGen = dropoutGen ?? new Generator(seed + 1);
    const [c1, c2] = channels;
    this.inChannels = inChannels;
    this.imageSize = imageSize;
    this.featureDim = featureDim;
    this.numClasses = numClasses;
    const pooled = imageSize / 4;
    this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, c1, 3, { padding: 1, gen }));
    this.conv2 = this.registerModule('conv2', new Conv2d(c1, c2, 3, { padding: 1, gen }));
    this.fc1 = this.registerModule('fc1', new Linear(c2 * pooled * pooled, featureDim, { gen }));
    this.fc2 = this.registerModule('fc2', new Linear(featureDim, numClasses, { gen }));
  }

  /** The penultimate activations (after ReLU): [B, featureDim]. */
  features(x: Tensor): Tensor {
    const C = this.inChannels, S = this.imageSize;
    if (x.ndim !== 4 || x.shape[1] !== C || x.shape[2] !== S || x.shape[3] !== S) {
      throw new Error(`ConvClassifier: expected images [B, ${C}, ${S}, ${S}], got [${x.shape.join(', ')}]`);
    }
    let h = avgPool2x2(relu(this.conv1.forward(x)));
    h = avgPool2x2(relu(this.conv2.forward(h)));
    return relu(this.fc1.forward(this.drop(flatten(h, 1))));
  }

  /** Class logits [B, numClasses]. */
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.drop(this.features(x)));
  }

  private drop(x: Tensor): Tensor {
    return this.training && this.dropout > 0 ? dropout(x, this.dropout, true, this.dropoutGen) : x;
  }

  /** Logits from already computed features. */
  classify(features: Tensor): Tensor {
    return this.fc2.forward(features);
  }
}

/** The MNIST judge's former name: a ConvClassifier with the defaults (1×28×28, 10 classes). */
export const MnistClassifier = ConvClassifier;
export type MnistClassifier = ConvClassifier;
export type MnistClassifierOptions = ConvClassifierOptions;
