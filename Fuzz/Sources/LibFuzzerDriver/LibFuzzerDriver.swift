import CLibFuzzer

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Runs libFuzzer over `target` with this process's arguments, then exits with its status.
///
/// libFuzzer normally brings its own `main` and calls `LLVMFuzzerTestOneInput`. SwiftPM
/// links every executable with `main` bound to the module's top-level code (the name
/// `<Module>_main`, for testable executables), which shadows libFuzzer's `main`, and with
/// `-parse-as-library` the link fails for want of that symbol. So each fuzz executable's
/// top-level code calls this, and libFuzzer's driver takes over from there.
public func runLibFuzzer(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
  var argc = CommandLine.argc
  var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
  exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}
