import HaatFuzzing
import LibFuzzerDriver

// libFuzzer's loop over FuzzTargets.frames, which traps when an invariant breaks.
runLibFuzzer { data, size in
  FuzzTargets.frames(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
