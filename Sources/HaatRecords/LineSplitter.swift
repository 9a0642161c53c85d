/// Splits a byte stream into lines at LF, across chunk boundaries, numbering every line
/// (blank ones too). A trailing CR is removed. Memory is bounded by `maxLineBytes`: a
/// longer line is read to its end and handed over empty with `tooLong` set.
public struct LineSplitter {
  public let maxLineBytes: Int
  private var pending: [UInt8] = []
  private var oversized = false
  public private(set) var lineNumber: UInt64 = 0

  public init(maxLineBytes: Int = 1 << 20) {
    self.maxLineBytes = maxLineBytes
  }

  /// Calls `onLine(number, bytes, tooLong)` for every line the chunk completes.
  public mutating func feed(
    _ chunk: UnsafeRawBufferPointer,
    _ onLine: (UInt64, UnsafeRawBufferPointer, Bool) throws -> Void
  ) rethrows {
    var start = 0
    let count = chunk.count
    while start < count {
      guard let newline = chunk[start...].firstIndex(of: UInt8(ascii: "\n")) else {
        keep(UnsafeRawBufferPointer(rebasing: chunk[start..<count]))
        return
      }
      let piece = UnsafeRawBufferPointer(rebasing: chunk[start..<newline])
      if pending.isEmpty && !oversized {
        // The whole line is in this chunk: no copy.
        try emit(piece, tooLong: false, onLine)
      } else {
        keep(piece)
        let tooLong = oversized
        try pending.withUnsafeBytes { try emit($0, tooLong: tooLong, onLine) }
        pending.removeAll(keepingCapacity: true)
        oversized = false
      }
      start = newline + 1
    }
  }

  /// Ends the input: a last line without a newline is still a line.
  public mutating func finish(_ onLine: (UInt64, UnsafeRawBufferPointer, Bool) throws -> Void)
    rethrows
  {
    guard !pending.isEmpty || oversized else { return }
    let tooLong = oversized
    try pending.withUnsafeBytes { try emit($0, tooLong: tooLong, onLine) }
    pending.removeAll(keepingCapacity: true)
    oversized = false
  }

  private mutating func keep(_ bytes: UnsafeRawBufferPointer) {
    guard !oversized else { return }
    // One byte of slack for a CR that `emit` removes; `emit` judges the length.
    if pending.count + bytes.count > maxLineBytes + 1 {
      oversized = true
      pending.removeAll(keepingCapacity: false)
      return
    }
    pending.append(contentsOf: bytes)
  }

  private mutating func emit(
    _ line: UnsafeRawBufferPointer, tooLong: Bool,
    _ onLine: (UInt64, UnsafeRawBufferPointer, Bool) throws -> Void
  ) rethrows {
    lineNumber += 1
    var line = line
    if let last = line.last, last == UInt8(ascii: "\r") {
      line = UnsafeRawBufferPointer(rebasing: line.dropLast())
    }
    // The limit applies to the line without its CR, however the chunks fell.
    if tooLong || line.count > maxLineBytes {
      try onLine(lineNumber, UnsafeRawBufferPointer(start: nil, count: 0), true)
    } else {
      try onLine(lineNumber, line, false)
    }
  }
}
