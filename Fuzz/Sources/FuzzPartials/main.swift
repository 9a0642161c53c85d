import HaatFuzzing
import LibFuzzerDriver

// libFuzzer's loop over FuzzTargets.partials, which traps when an invariant breaks.
runLibFuzzer { data, size in
  FuzzTargets.partials(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
