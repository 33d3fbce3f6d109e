/** Each sampler's default step count, for a schedule of T steps: one table, read by the samplers and the registry. */
export const DEFAULT_STEPS = {
  ddpm: (T: number) => T,
  ddim: (T: number) => Math.min(50, T),
  dpmSolverPlusPlus: (_T: number) => 20,
  euler: (_T: number) => 50,
  // 18 steps = 35 model evaluations, EDM's CIFAR-10 setting
  heun: (_T: number) => 18,
  predictorCorrector: (T: number) => T,
} as const;
