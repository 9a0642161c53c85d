import HaatFuzzing
import LibFuzzerDriver

// libFuzzer's loop over FuzzTargets.spec, which traps when an invariant breaks.
runLibFuzzer { data, size in
  FuzzTargets.spec(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
