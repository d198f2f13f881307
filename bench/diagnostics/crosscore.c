/*
 * crosscore: what a 188 KB memcpy costs on this machine when another core
 * last touched its buffers, the pattern behind the slow spells in
 * BENCHMARKS.md ("One thread per core").
 *
 *   gcc -O2 -pthread -o /tmp/crosscore bench/diagnostics/crosscore.c && /tmp/crosscore
 *
 * A thread pinned to CPU 1 copies X to Y 3,000 times; before each copy a
 * thread pinned to CPU 0 has (0) done nothing, (1) written X, (2) written Y,
 * (3) written both, or (4) read Y. Prints the mean copy time of each case.
 * Needs two CPUs. A diagnostic, not part of the build or the tests.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BYTES (188 * 1024)
#define COPIES 3000

static char *x, *y;
static volatile int turn, mode, stop;

static inline uint64_t tsc(void) {
  unsigned lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *other(void *arg) {
  (void)arg;
  pin(0);
  volatile long sink = 0;
  while (!stop) {
    while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != 0)
      if (stop) return 0;
    if (mode & 1) memset(x, rand(), BYTES);
    if (mode & 2) memset(y, rand(), BYTES);
    if (mode == 4)
      for (size_t i = 0; i < BYTES; i += 64) sink += y[i];
    __atomic_store_n(&turn, 1, __ATOMIC_RELEASE);
  }
  return 0;
}

int main(void) {
  static const char *what[] = {"nothing", "wrote the source", "wrote the destination",
                               "wrote both", "read the destination"};
  /* Offsets within a page as the host's buffers had them. */
  x = (char *)aligned_alloc(4096, BYTES + 8192) + 2224;
  y = (char *)aligned_alloc(4096, BYTES + 8192) + 1152;
  memset(x, 1, BYTES);
  memset(y, 1, BYTES);
  pthread_t t;
  pthread_create(&t, 0, other, 0);
  pin(1);
  for (mode = 0; mode <= 4; mode++) {
    uint64_t sum = 0, c0 = tsc();
    double w0 = now();
    for (int i = 0; i < COPIES; i++) {
      while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != 1)
        ;
      uint64_t a = tsc();
      memcpy(y, x, BYTES);
      sum += tsc() - a;
      __atomic_store_n(&turn, 0, __ATOMIC_RELEASE);
    }
    double mhz = (tsc() - c0) / (now() - w0) / 1e6;
    printf("the other core %-22s %6.1f µs per copy\n", what[mode], sum / (double)COPIES / mhz);
  }
  stop = 1;
  turn = 0;
  pthread_join(t, 0);
  return 0;
}
