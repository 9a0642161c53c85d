import HaatClient
import HaatCore
import HaatProtocol

/// The spec loader, on every input as YAML and as JSON (a JSON spec is also YAML, so one
/// corpus serves both). It may refuse anything, but only with a `bad_spec` error of bounded
/// size; what it accepts is within the documented ranges.
enum SpecFuzzing {
  static func run(_ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    // Spec files are read as UTF-8 text by SpecLoader.load; other bytes never reach parse.
    guard data.count <= FuzzLimits.specBytes, let text = String(validating: data, as: UTF8.self) else {
      return
    }
    for json in [false, true] {
      let kind = json ? "JSON" : "YAML"
      do {
        check(try SpecLoader.parse(text, json: json), kind, &invariants)
      } catch let error as HaatError {
        invariants.check(error.code == .badSpec, "\(kind): a \(error.code.rawValue) error, not bad_spec")
        invariants.check(
          error.message.utf8.count <= FuzzLimits.errorMessageBytes,
          "\(kind): an error message of \(error.message.utf8.count) bytes: \(Input.excerpt(Array(error.message.utf8)))")
        invariants.check(
          error.field.utf8.count <= FuzzLimits.errorMessageBytes,
          "\(kind): an error field of \(error.field.utf8.count) bytes: \(Input.excerpt(Array(error.field.utf8)))")
      } catch {
        invariants.check(false, "\(kind): threw \(type(of: error)), not a HaatError: \(error)")
      }
    }
  }

  static func check(_ spec: JobSpec, _ kind: String, _ invariants: inout Invariants) {
    invariants.check((-1000...1000).contains(spec.priority), "\(kind): priority \(spec.priority) accepted")
    invariants.check(spec.maxAttempts <= 100, "\(kind): max_attempts \(spec.maxAttempts) accepted")
    invariants.check(
      spec.retryBaseMs <= 86_400_000 && spec.retryCapMs <= 86_400_000,
      "\(kind): retry \(spec.retryBaseMs)/\(spec.retryCapMs) ms accepted")
    for source in spec.sources {
      invariants.check(source.tasks <= 1_000_000, "\(kind): \(source.tasks) tasks accepted")
    }
  }
}
