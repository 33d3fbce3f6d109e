/** Evaluation: the MNIST judge (classifier-based bar) and Fréchet distances in its feature space. */
export * from './frechet.js';
export * from './judge.js';
