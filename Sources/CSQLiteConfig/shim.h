#ifndef HAAT_CSQLITECONFIG_SHIM_H
#define HAAT_CSQLITECONFIG_SHIM_H

// sqlite3_config is variadic and so unavailable from Swift; this typed, non-variadic
// wrapper is how Swift reaches it. It takes effect only before SQLite initializes.

#include <sqlite3.h>

// Multi-thread mode (no mutex per connection: GRDB never shares one across threads at
// once) and no memory statistics (a global mutex on every allocation). SQLITE_MISUSE
// once SQLite has initialized; nothing changes then.
static inline int csqlite_config_for_serialized_connections(void) {
  int threads = sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
  int memstatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  return threads != SQLITE_OK ? threads : memstatus;
}

#endif
