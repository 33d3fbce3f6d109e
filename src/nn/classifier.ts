/**
 * MnistClassifier: the small CNN the project trains (tools/train_judge.ts) and uses as its judge of samples
 * (src/eval/judge.ts).
 *
 *   x [B,1,28,28] in [−1, 1]
 *   conv1 1→32 3×3 pad 1 → ReLU → avgpool 2×2            [B,32,14,14]
 *   conv2 32→32 3×3 pad 1 → ReLU → avgpool 2×2           [B,32,7,7]
 *   flatten → (dropout) → fc1 32·7·7→128 → ReLU          [B,128]   ← `features(x)`
 *   (dropout) → fc2 128→10                               [B,10]    ← `forward(x)` (logits)
 *
 * Dropout (option `dropout`, default 0; the judge was trained with 0.25) acts in training mode only.
 *
 * conv2 keeps 32 channels (not 64) so that the whole model stays under 1 MB of float32 (211k parameters,
 * fc1 being most of them) and can be committed. The names match the equivalent torch.nn module
 * (conv1.weight, …, fc2.bias), so the weights load into PyTorch unchanged.
 */
import { Generator, Tensor, avgPool2x2, dropout, flatten, relu } from '../tensor/index.js';
import { Conv2d, Linear } from './layers.js';
import { Module, type UnaryModule } from './module.js';

export interface MnistClassifierOptions {
  /** Seed of the initial weights (default 0); the same seed gives the same weights. */
  seed?: number;
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

export class MnistClassifier extends Module implements UnaryModule {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly featureDim: number;
  readonly numClasses: number;
  readonly dropout: number;
  private readonly dropoutGen: Generator;

  constructor({ seed = 0, channels = [32, 32], featureDim = 128, numClasses = 10, dropout: p = 0, dropoutGen }: MnistClassifierOptions = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`MnistClassifier: dropout ${p} must be in [0, 1)`);
    const gen = new Generator(seed);
    this.dropout = p;
    this.dropoutGen = dropoutGen ?? new Generator(seed + 1);
    const [c1, c2] = channels;
    this.featureDim = featureDim;
    this.numClasses = numClasses;
    this.conv1 = this.registerModule('conv1', new Conv2d(1, c1, 3, { padding: 1, gen }));
    this.conv2 = this.registerModule('conv2', new Conv2d(c1, c2, 3, { padding: 1, gen }));
    this.fc1 = this.registerModule('fc1', new Linear(c2 * 7 * 7, featureDim, { gen }));
    this.fc2 = this.registerModule('fc2', new Linear(featureDim, numClasses, { gen }));
  }

  /** The penultimate activations (after ReLU): [B, featureDim]. */
  features(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== 1 || x.shape[2] !== 28 || x.shape[3] !== 28) {
      throw new Error(`MnistClassifier: expected images [B, 1, 28, 28], got [${x.shape.join(', ')}]`);
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
