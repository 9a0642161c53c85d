import HaatFuzzing
import LibFuzzerDriver

// libFuzzer's loop over FuzzTargets.csv, which traps when an invariant breaks.
runLibFuzzer { data, size in
  FuzzTargets.csv(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
