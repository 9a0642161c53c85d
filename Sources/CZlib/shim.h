#ifndef HAAT_CZLIB_SHIM_H
#define HAAT_CZLIB_SHIM_H

// inflateInit2 is a macro and so unavailable from Swift; this wrapper is how Swift reaches it.

#include <zlib.h>

static inline int czlib_inflate_init2(z_stream *stream, int window_bits) {
  return inflateInit2(stream, window_bits);
}

#endif
