// An LD_PRELOAD shim that shifts the wall clock (CLOCK_REALTIME, gettimeofday, time) of a
// process by the number of milliseconds in the file $HAAT_CLOCK_OFFSET_FILE, re-read at
// most every 20 ms, so a test can step a running process's clock back and forth. The
// monotonic clocks are left alone: that is the point of the tests that use it.
//
//   cc -shared -fPIC -O2 -o wallclock.so scripts/faults/wallclock.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime(void) {
  static clock_gettime_fn real;
  if (!real) real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
  return real;
}

static long long offset_ms(void) {
  static long long cached;
  static long long read_at_ns = -1;
  struct timespec now;
  real_clock_gettime()(CLOCK_MONOTONIC, &now);
  long long now_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
  if (read_at_ns >= 0 && now_ns - read_at_ns < 20000000LL) return cached;
  read_at_ns = now_ns;
  const char *path = getenv("HAAT_CLOCK_OFFSET_FILE");
  if (!path) return cached = 0;
  FILE *file = fopen(path, "r");
  if (!file) return cached;
  long long value = 0;
  if (fscanf(file, "%lld", &value) == 1) cached = value;
  fclose(file);
  return cached;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  int result = real_clock_gettime()(id, ts);
  if (result == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ms() * 1000000LL;
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
  }
  return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
  (void)tz;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

time_t time(time_t *out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out) *out = ts.tv_sec;
  return ts.tv_sec;
}
