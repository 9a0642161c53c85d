#ifndef HAAT_CSTDIO_SHIM_H
#define HAAT_CSTDIO_SHIM_H

// The CLI's writes to stdout, with their failure: Swift 6 cannot read the C global
// `stdout`, and `print` says nothing when a write fails. A failed write of a full buffer
// sets the stream's error and drops the buffer, so a flush at the end found nothing to fail
// on (a report over 4 KiB to a full disk exited 0, not 74).

#include <errno.h>
#include <stdio.h>

// Writes `count` bytes to stdout (buffered); 0, or the errno of a write that failed.
static inline int cstdio_write_stdout(const void *bytes, size_t count) {
  if (count == 0) return 0;
  errno = 0;
  if (fwrite(bytes, 1, count, stdout) == count && !ferror(stdout)) return 0;
  return errno != 0 ? errno : EIO;
}

// Gives freed heap back to the system (glibc's malloc_trim; nothing elsewhere): a worker's
// pool threads each keep what they freed in their own arena.
#if defined(__GLIBC__)
#include <malloc.h>
static inline void cstdio_give_back_memory(void) { (void)malloc_trim(0); }
#else
static inline void cstdio_give_back_memory(void) {}
#endif

#endif
