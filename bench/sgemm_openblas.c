/* OpenBLAS sgemm called directly (its own thread pool): the baseline for the engine's 1024³ GEMM.
 * Usage: sgemm_openblas REPS  → prints a JSON list of seconds per repetition. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 10, n = 1024;
  float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
  for (int i = 0; i < n * n; i++) { a[i] = (float)rand() / RAND_MAX - 0.5f; b[i] = (float)rand() / RAND_MAX - 0.5f; }
  /* warm-up to a steady state, the same rule as engine_ours.ts: at least 3 runs and 0.5 s */
  double w0 = now();
  for (int i = 0; i < 3 || now() - w0 < 0.5; i++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a, n, b, n, 0.f, c, n);
  printf("[");
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a, n, b, n, 0.f, c, n);
    printf("%s%.9f", r ? ", " : "", now() - t0);
  }
  printf("]\n");
  free(a); free(b); free(c);
  return 0;
}
