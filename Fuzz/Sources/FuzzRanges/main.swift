import HaatFuzzing
import LibFuzzerDriver

// libFuzzer's loop over FuzzTargets.ranges, which traps when an invariant breaks.
runLibFuzzer { data, size in
  FuzzTargets.ranges(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
