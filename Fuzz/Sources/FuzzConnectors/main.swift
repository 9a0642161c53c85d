import HaatFuzzing
import LibFuzzerDriver

// libFuzzer's loop over FuzzTargets.connectors, which traps when an invariant breaks.
runLibFuzzer { data, size in
  FuzzTargets.connectors(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
