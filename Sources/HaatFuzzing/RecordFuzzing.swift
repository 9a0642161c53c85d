import HaatRecords

/// The export readers: `CSVParser`, `LineSplitter`, `JSONScanner` and `PostsReader`, each fed
/// the input whole and cut in two. Chunks may split an export anywhere, so the two readings
/// must agree, and memory must stay within the record limit either way.
enum RecordFuzzing {
  static let limit = FuzzLimits.recordBytes

  static func csv(_ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    let (whole, split) = Input.chunkings(data)
    let once = csvRecords(whole, &invariants)
    let twice = csvRecords(split, &invariants)
    invariants.check(
      once == twice,
      "cutting the input at byte \(Input.cut(data)) changed the CSV records (\(once.count) whole, \(twice.count) cut)")
    posts(.csv, data, &invariants)
  }

  static func ndjson(_ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    let (whole, split) = Input.chunkings(data)
    let once = lines(whole, &invariants)
    let twice = lines(split, &invariants)
    invariants.check(
      once == twice,
      "cutting the input at byte \(Input.cut(data)) changed the lines (\(once.count) whole, \(twice.count) cut)")
    for line in once where !line.tooLong {
      // Only that it returns: the scanner is strict by design, and lenient in its own ways
      // (a lone surrogate escape reads as U+FFFD), so there is no second opinion to match.
      _ = line.bytes.withUnsafeBytes { JSONScanner.scanObject($0) { _, _ in } }
    }
    posts(.ndjson, data, &invariants)
  }

  // MARK: CSV records

  /// A record copied out of the callback. A record with a problem has no fields: they are
  /// not used, and where the parser stopped copying a long one depends on the chunks.
  struct Record: Equatable {
    var fields: [[UInt8]]?
    var problem: Values.Problem?
  }

  static func csvRecords(_ chunks: [UnsafeRawBufferPointer], _ invariants: inout Invariants) -> [Record] {
    var parser = CSVParser(maxRecordBytes: limit)
    var out: [Record] = []
    let take = { (record: CSVRecord, invariants: inout Invariants) in
      check(record, &invariants)
      if let problem = record.problem {
        out.append(Record(fields: nil, problem: problem))
      } else {
        out.append(Record(fields: (0..<record.count).map { Array(record.field($0)) }, problem: nil))
      }
    }
    for chunk in chunks { parser.feed(chunk) { take($0, &invariants) } }
    parser.finish { take($0, &invariants) }
    return out
  }

  static func check(_ record: CSVRecord, _ invariants: inout Invariants) {
    // Every field costs its bytes and its delimiter, so bare commas are bounded too.
    let content =
      record.starts.isEmpty ? record.bytes.count : (0..<record.count).reduce(0) { $0 + record.field($1).count }
    invariants.check(
      content + record.count <= limit + 1,
      "a record of \(content) bytes in \(record.count) fields kept (limit \(limit))")
    // A record with a problem is only counted, its fields unused (and partial when it also
    // ran past the limit); a good one is a list of fields covering its bytes (copied), or
    // fields in order inside the input (read in place).
    guard record.problem == nil else { return }
    invariants.check(record.count >= 1, "a record without fields")
    guard record.starts.isEmpty else {
      invariants.check(record.starts.count == record.count, "\(record.starts.count) starts for \(record.count) fields")
      var previous = 0
      for (start, end) in zip(record.starts, record.ends) {
        invariants.check(
          previous <= start && start <= end && end <= record.bytes.count,
          "fields out of order: \(Array(zip(record.starts, record.ends)))")
        previous = end
      }
      return
    }
    var previous = 0
    for end in record.ends {
      invariants.check(end >= previous && end <= record.bytes.count, "field ends out of order: \(Array(record.ends))")
      previous = end
    }
    invariants.check(
      record.ends.last.map { $0 == record.bytes.count } ?? true,
      "the last field ends at \(record.ends.last ?? -1), not at \(record.bytes.count)")
  }

  // MARK: NDJSON lines

  struct Line: Equatable {
    var number: UInt64
    var bytes: [UInt8]
    var tooLong: Bool
  }

  static func lines(_ chunks: [UnsafeRawBufferPointer], _ invariants: inout Invariants) -> [Line] {
    var splitter = LineSplitter(maxLineBytes: limit)
    var out: [Line] = []
    let take = { (number: UInt64, line: UnsafeRawBufferPointer, tooLong: Bool, invariants: inout Invariants) in
      invariants.check(number == UInt64(out.count + 1), "line \(number) follows line \(out.count)")
      invariants.check(
        line.count <= limit, "a line of \(line.count) bytes handed over (limit \(limit)): \(Input.excerpt(line))")
      invariants.check(!tooLong || line.isEmpty, "a tooLong line handed over with \(line.count) bytes")
      invariants.check(!line.contains(UInt8(ascii: "\n")), "a line with a newline inside")
      out.append(Line(number: number, bytes: Array(line), tooLong: tooLong))
    }
    for chunk in chunks { splitter.feed(chunk) { take($0, $1, $2, &invariants) } }
    splitter.finish { take($0, $1, $2, &invariants) }
    return out
  }

  // MARK: Posts

  /// What a `PostsReader` made of an export.
  struct Reading: Equatable {
    var posts: [PostRecord] = []
    var badRows: UInt64 = 0
    var problems: [RowProblem] = []
    var error: ExportError?
  }

  static let maxRowProblems = 4

  /// Reads the export whole and cut in two: both readings agree, and counts add up.
  static func posts(_ format: ExportFormat, _ data: UnsafeRawBufferPointer, _ invariants: inout Invariants) {
    let (whole, split) = Input.chunkings(data)
    let once = read(format, whole, &invariants)
    let twice = read(format, split, &invariants)
    // Whether the export is readable may not depend on the chunks. Which fatal error is
    // named may: a chunk is checked for UTF-8 whole before it is parsed, so a bad header in
    // front of a bad byte is found first only when the header arrives in a chunk of its own.
    invariants.check(
      (once.error == nil) == (twice.error == nil),
      "cutting at byte \(Input.cut(data)) changed the outcome: \(once.error?.message ?? "read") whole, \(twice.error?.message ?? "read") cut"
    )
    // Rows read before a fatal error depend on where the chunks end; the rest may not.
    if once.error == nil && twice.error == nil {
      invariants.check(
        once == twice,
        "cutting at byte \(Input.cut(data)) changed the \(format.rawValue) reading: \(once.posts.count) posts, \(once.badRows) bad whole; \(twice.posts.count) posts, \(twice.badRows) bad cut"
      )
    }
  }

  static func read(
    _ format: ExportFormat, _ chunks: [UnsafeRawBufferPointer], _ invariants: inout Invariants
  ) -> Reading {
    var reader = PostsReader(
      format: format, defaultPlatform: "fuzz", defaultAccount: "fuzz", maxRecordBytes: limit,
      maxRowProblems: maxRowProblems)
    var reading = Reading()
    var fed = 0
    do throws(ExportError) {
      for chunk in chunks {
        fed += chunk.count
        try reader.feed(chunk) { reading.posts.append($0) }
      }
      try reader.finish { reading.posts.append($0) }
    } catch {
      reading.error = error
    }
    reading.badRows = reader.badRows
    reading.problems = reader.problems
    invariants.check(
      reader.posts == UInt64(reading.posts.count), "posts counted \(reader.posts), handed over \(reading.posts.count)")
    invariants.check(reader.bytes == UInt64(fed), "bytes counted \(reader.bytes), fed \(fed)")
    invariants.check(
      reader.problems.count <= maxRowProblems && UInt64(reader.problems.count) <= reader.badRows,
      "\(reader.problems.count) problems kept for \(reader.badRows) bad rows")
    for post in reading.posts {
      invariants.check(!post.id.isEmpty, "a post without id or created_at")
    }
    for problem in reader.problems {
      invariants.check(problem.row >= 1, "a problem in row \(problem.row)")
    }
    return reading
  }
}
