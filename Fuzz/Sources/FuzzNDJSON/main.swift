import HaatFuzzing
import LibFuzzerDriver

// libFuzzer's loop over FuzzTargets.ndjson, which traps when an invariant breaks.
runLibFuzzer { data, size in
  FuzzTargets.ndjson(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
