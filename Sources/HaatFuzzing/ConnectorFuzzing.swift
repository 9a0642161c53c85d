import HaatCore
import HaatProtocol
import HaatRecords

/// Every connector of `Connectors.all`, fed the input as the body of each page it asks for
/// (a platform's JSON, an export's CSV or NDJSON), whole and cut in two, and as the body of
/// an HTTP error: the two readings agree, and nothing traps.
///
/// The first byte picks the connector and the cut (`Input.cut`), the second the page's
/// status and content type; the rest is the body.
enum ConnectorFuzzing {
  /// The pages' content types, picked by the input's second byte.
  static let contentTypes: [String?] = [nil, "application/json", "text/csv", "application/x-ndjson"]
  /// Small, so the fuzzer reaches them.
  static let limits = ReadLimits(maxRecordBytes: 256, maxProblems: 4, maxPages: 3, maxPageBytes: 8 << 10)

  static func run(_ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    guard data.count >= 2 else { return }
    let connector = Connectors.all[Int(data[0]) % Connectors.all.count]
    let body = UnsafeRawBufferPointer(rebasing: data[2...])
    let variant = Int(data[1])
    guard let task = task(for: connector, variant: variant) else { return }
    let page = Page(body: body, contentType: contentTypes[variant % contentTypes.count])
    let whole = read(connector, task, page, cut: nil)
    let cut = read(connector, task, page, cut: Input.cut(data) * body.count / max(1, data.count))
    // Whether a page reads may not depend on the cut; what was read before a page failed
    // may (the task fails, and its records go nowhere).
    invariants.check(
      (whole.error == nil) == (cut.error == nil) && (whole.error != nil || whole == cut),
      "\(connector.kind): cutting each page changed the reading: \(whole.summary) whole, \(cut.summary) cut")
    invariants.check(
      whole.problems <= limits.maxProblems,
      "\(connector.kind): \(whole.problems) problems kept (limit \(limits.maxProblems))")
    failed(connector, task, page, status: [400, 401, 403, 404, 429, 500, 503][variant % 7])
  }

  /// The records the connector reads from an input of this target (for seeding others).
  static func records(_ data: UnsafeRawBufferPointer) -> [CanonicalRecord] {
    guard data.count >= 2 else { return [] }
    let connector = Connectors.all[Int(data[0]) % Connectors.all.count]
    let variant = Int(data[1])
    guard let task = task(for: connector, variant: variant) else { return [] }
    let page = Page(
      body: UnsafeRawBufferPointer(rebasing: data[2...]), contentType: contentTypes[variant % contentTypes.count])
    var records: [CanonicalRecord] = []
    _ = read(connector, task, page, cut: nil) { records.append($0) }
    return records
  }

  /// A task of the connector's kind as the coordinator plans it, or nil when its check
  /// refuses the source (never for these sources, but a refusal is not the target's).
  static func task(for connector: any Connector.Type, variant: Int) -> TaskSpec? {
    var source = Source()
    source.kind = connector.kind.name
    source.url =
      ["https://fixture.test/export", "https://fixture.test/export.csv", "file:///fuzz/export.ndjson"][
        variant % 3]
    source.account = "fuzz"
    source.platform = "fuzz"
    if connector.reportsByDay {
      source.since = "2026-01-01"
      source.until = "2026-01-03"
    }
    do throws(HaatError) { try connector.check(&source, field: "sources[0]") } catch { return nil }
    var task = TaskSpec()
    task.source = source
    task.reports = ["engagement"]
    connector.plan(&task, part: 0, of: source)
    return task
  }

  struct Page {
    var body: UnsafeRawBufferPointer
    var contentType: String?
  }

  /// What a connector made of its pages, in a form two readings can be compared in.
  struct Reading: Equatable {
    var records: [String] = []
    var requests: [PageRequest] = []
    var counts = ReadCounts()
    var problems: Int { counts.problems.count }
    var bookmark = ""
    var error: String?

    var summary: String {
      "\(records.count) records, \(counts.badRecords) bad, \(requests.count) requests, error \(error ?? "none")"
    }
  }

  /// Answers every request (up to the page limit) with the page, fed whole or cut at `cut`.
  /// `onRecord` sees each record as read.
  static func read(
    _ type: any Connector.Type, _ task: TaskSpec, _ page: Page, cut: Int?,
    onRecord: (CanonicalRecord) -> Void = { _ in }
  ) -> Reading {
    drive(type, task, page, cut: cut, onRecord: onRecord)
  }

  private static func drive<C: Connector>(
    _ type: C.Type, _ task: TaskSpec, _ page: Page, cut: Int?, onRecord: (CanonicalRecord) -> Void
  ) -> Reading {
    var connector = C(task: task, limits: limits)
    var reading = Reading()
    let emit = { (record: CanonicalRecord) -> Bool in
      onRecord(record)
      reading.records.append(String(describing: record))
      return true
    }
    do throws(ExportError) {
      var next = try connector.firstRequest()
      while let request = next, reading.requests.count < limits.maxPages {
        reading.requests.append(request)
        try connector.pageStarted(status: 200, contentType: page.contentType)
        let at = min(cut ?? page.body.count, page.body.count)
        for chunk in [page.body[..<at], page.body[at...]] where !chunk.isEmpty {
          try connector.feed(UnsafeRawBufferPointer(rebasing: chunk), emit: emit)
        }
        next = try connector.pageEnded(PageResponse(status: 200, contentType: page.contentType), emit: emit)
      }
    } catch {
      reading.error = error.message
    }
    reading.counts = connector.counts
    reading.bookmark = connector.bookmark
    return reading
  }

  /// The page as the body of an HTTP error: the connector reads the platform's error object
  /// or leaves the fetcher's error standing; either way it returns.
  static func failed(_ type: any Connector.Type, _ task: TaskSpec, _ page: Page, status: Int) {
    fail(type, task, page, status: status)
  }

  private static func fail<C: Connector>(_ type: C.Type, _ task: TaskSpec, _ page: Page, status: Int) {
    var connector = C(task: task, limits: limits)
    let response = PageResponse(
      status: status, contentType: page.contentType, headers: [("retry-after", "1"), ("x-app-usage", "{}")])
    _ = try? connector.firstRequest()
    _ = try? connector.pageFailed(response, body: Array(page.body))
  }
}
