import Foundation
import HaatProtocol
import HaatRecords
import Testing

/// Drives a connector as the worker does, over canned pages instead of HTTP: each request
/// is answered by `pages[url]`, fed in chunks of `chunk` bytes.
struct CannedPage {
  var body: [UInt8]
  var contentType: String?
  var headers: [(name: String, value: String)] = []
}

/// Answers one request with `body` as the worker does: the page starts, its body is fed in
/// chunks of `chunk` bytes, and it ends; returns the connector's next request.
func answer<C: Connector>(
  _ connector: inout C, with body: [UInt8], chunk: Int, contentType: String? = "application/json",
  headers: [(name: String, value: String)] = [], emit: (CanonicalRecord) -> Bool
) throws -> PageRequest? {
  try connector.pageStarted(status: 200, contentType: contentType)
  for start in stride(from: 0, to: body.count, by: max(1, chunk)) {
    try body[start..<min(body.count, start + chunk)].withUnsafeBytes { try connector.feed($0, emit: emit) }
  }
  return try connector.pageEnded(PageResponse(status: 200, contentType: contentType, headers: headers), emit: emit)
}

func drive<C: Connector>(
  _ type: C.Type, _ task: TaskSpec, pages: [String: CannedPage], chunk: Int = 7, limits: ReadLimits = ReadLimits()
) throws -> (records: [CanonicalRecord], requests: [PageRequest], connector: C) {
  var connector = C(task: task, limits: limits)
  var records: [CanonicalRecord] = []
  var requests: [PageRequest] = []
  var next = try connector.firstRequest()
  while let request = next {
    requests.append(request)
    guard requests.count <= limits.maxPages else { throw ExportError("too many pages") }
    guard let page = pages[request.url] else { throw ExportError("no canned page for \(request.url)") }
    next = try answer(&connector, with: page.body, chunk: chunk, contentType: page.contentType, headers: page.headers) {
      records.append($0)
      return true
    }
  }
  return (records, requests, connector)
}

@Suite("Connectors")
struct ConnectorTests {
  @Test("every registered kind is found by its name and leads back to its connector")
  func registryRoundTrips() {
    var names = Set<String>()
    for connector in Connectors.all {
      let name = connector.kind.name
      #expect(names.insert(name).inserted, "two connectors claim \(name)")
      let kind = SourceKind(named: name)
      #expect(kind == connector.kind)
      #expect(kind.map { String(describing: $0.connector) } == String(describing: connector))
    }
    #expect(SourceKind(named: "") == .posts)
    #expect(SourceKind(named: "Posts") == nil)
    #expect(SourceKind(named: "facebook") == nil)
    #expect(Connectors.kindList.contains("posts"))
  }

  @Test("the canonical export connector reads one page, in any chunking, as PostsReader does")
  func canonicalExportIsOnePage() throws {
    let data = Array(try fixture("bom-crlf.csv"))
    var task = TaskSpec()
    task.source.kind = "posts"
    task.source.url = "http://fixture/bom-crlf.csv"
    for chunk in [1, 3, 4096] {
      let (records, requests, connector) = try drive(
        CanonicalExportConnector.self, task, pages: [task.source.url: CannedPage(body: data, contentType: nil)],
        chunk: chunk)
      #expect(requests == [PageRequest(url: task.source.url)])
      var reader = PostsReader(format: .csv)
      var expected: [PostRecord] = []
      try data.withUnsafeBytes { bytes in try reader.feed(bytes) { expected.append($0) } }
      try reader.finish { expected.append($0) }
      let posts = records.compactMap { record -> PostRecord? in
        if case .post(let post) = record { return post }
        return nil
      }
      #expect(posts == expected)
      #expect(connector.counts.records == UInt64(expected.count))
      #expect(connector.counts.badRecords == reader.badRows)
    }
  }

  @Test("the format comes from the source, then the URL, then the Content-Type, else a clear error")
  func canonicalExportFormat() throws {
    let ndjson =
      Array(#"{"platform":"x","account":"a","id":"1","created_at":"2026-01-01T00:00:00Z","media_type":"text"}"#.utf8)
      + [10]
    var task = TaskSpec()
    task.source.url = "http://fixture/export"
    let (records, _, _) = try drive(
      CanonicalExportConnector.self, task,
      pages: [task.source.url: CannedPage(body: ndjson, contentType: "application/x-ndjson")])
    #expect(records.count == 1)
    #expect(throws: ExportError.self) {
      _ = try drive(
        CanonicalExportConnector.self, task,
        pages: [task.source.url: CannedPage(body: ndjson, contentType: "text/html")])
    }
    task.source.format = "ndjson"
    let (again, _, _) = try drive(
      CanonicalExportConnector.self, task, pages: [task.source.url: CannedPage(body: ndjson, contentType: "text/html")])
    #expect(again.count == 1)
  }

  @Test("a noop task fetches nothing")
  func noopFetchesNothing() throws {
    let (records, requests, _) = try drive(NoopConnector.self, TaskSpec(), pages: [:])
    #expect(records.isEmpty && requests.isEmpty)
  }
}
