import HaatFuzzing
import LibFuzzerDriver

// libFuzzer's loop over FuzzTargets.urls, which traps when an invariant breaks.
runLibFuzzer { data, size in
  FuzzTargets.urls(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
