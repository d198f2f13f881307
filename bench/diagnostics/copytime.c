/*
 * copytime.so: times every large memcpy/memmove of a process (LD_PRELOAD),
 * to see which copies of a request are slow and on which thread they ran.
 *
 *   gcc -O2 -shared -fPIC -o /tmp/copytime.so bench/diagnostics/copytime.c -ldl
 *   LD_PRELOAD=/tmp/copytime.so target/release/wikiedge up ...   # then load it
 *   python3 bench/diagnostics/copytime.py /tmp/copytime.bin
 *
 * Each copy of COPYTIME_MIN bytes or more (100,000 by default) is recorded:
 * its start (TSC), its duration (TSC), the caller, source and destination,
 * the minor faults and context switches of the thread during the copy, the
 * CPU it ended on and the thread id. The first COPYTIME_N copies (200,000)
 * are written to COPYTIME_OUT (/tmp/copytime.bin) when the last is taken.
 * A diagnostic, not part of the build or the tests.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef void *(*copy_fn)(void *, const void *, size_t);

typedef struct {
  uint64_t start, cycles, caller, src, dst;
  int32_t faults, cpu, tid, switches;
} record;

static copy_fn real_memcpy, real_memmove;
static record *records;
static size_t capacity = 200000, min_bytes = 100000;
static unsigned long long taken;
static const char *out = "/tmp/copytime.bin";

static void *bytewise(void *d, const void *s, size_t n) {
  unsigned char *dd = d;
  const unsigned char *ss = s;
  if (dd < ss)
    for (size_t i = 0; i < n; i++) dd[i] = ss[i];
  else
    for (size_t i = n; i-- > 0;) dd[i] = ss[i];
  return d;
}

__attribute__((constructor)) static void init(void) {
  const char *v;
  if ((v = getenv("COPYTIME_N"))) capacity = strtoull(v, 0, 10);
  if ((v = getenv("COPYTIME_MIN"))) min_bytes = strtoull(v, 0, 10);
  if ((v = getenv("COPYTIME_OUT"))) out = v;
  records = calloc(capacity, sizeof(record));
  real_memcpy = (copy_fn)dlsym(RTLD_NEXT, "memcpy");
  real_memmove = (copy_fn)dlsym(RTLD_NEXT, "memmove");
}

static inline uint64_t tsc(void) {
  unsigned lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

static void *timed(copy_fn f, void *d, const void *s, size_t n, void *caller) {
  if (n < min_bytes || d == s || !records) return f(d, s, n);
  struct rusage a, b;
  getrusage(RUSAGE_THREAD, &a);
  uint64_t t0 = tsc();
  void *r = f(d, s, n);
  uint64_t t1 = tsc();
  getrusage(RUSAGE_THREAD, &b);
  unsigned long long i = __atomic_fetch_add(&taken, 1, __ATOMIC_RELAXED);
  if (i < capacity) {
    record *x = &records[i];
    x->start = t0;
    x->cycles = t1 - t0;
    x->caller = (uintptr_t)caller;
    x->src = (uintptr_t)s;
    x->dst = (uintptr_t)d;
    x->faults = (int32_t)(b.ru_minflt - a.ru_minflt);
    x->switches = (int32_t)(b.ru_nvcsw - a.ru_nvcsw + b.ru_nivcsw - a.ru_nivcsw);
    x->cpu = sched_getcpu();
    x->tid = gettid();
  }
  if (i + 1 == capacity) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      (void)!write(fd, records, capacity * sizeof(record));
      close(fd);
    }
  }
  return r;
}

void *memcpy(void *d, const void *s, size_t n) {
  if (!real_memcpy) return bytewise(d, s, n);
  return timed(real_memcpy, d, s, n, __builtin_return_address(0));
}

void *memmove(void *d, const void *s, size_t n) {
  if (!real_memmove) return bytewise(d, s, n);
  return timed(real_memmove, d, s, n, __builtin_return_address(0));
}
