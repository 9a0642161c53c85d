import Foundation
import HaatCore
import HaatProtocol
import HaatRecords

/// The `response_time` report: how fast a business answers its customers' messages. A
/// task keeps its messages per conversation and, when it writes its partial, reads each
/// conversation once: from the customer's first message, the first answer after it (first
/// response time) and, when the business wrote last, the last answer (resolution time).
/// Conversations are counted per platform × account × the hour of the week of their first
/// inbound message (local time) × inside or outside the source's business hours, with
/// quantile sketches of the times; so the report gives p50/p90, the share answered within
/// 15 min, 1 h and 24 h, unanswered conversations, and volume and median by hour of week
/// (docs/reports.md). A conversation must be read by one task (one export holds it whole).
public struct ResponseTimeKernel: Sendable, Equatable {
  struct Key: Hashable, Comparable {
    var platform: String
    var account: String
    var zone: String
    var hour: UInt32
    /// 0: the source states no business hours; 1: inside them; 2: outside.
    var businessHours: UInt32

    static func < (lhs: Key, rhs: Key) -> Bool {
      for (left, right) in [(lhs.platform, rhs.platform), (lhs.account, rhs.account), (lhs.zone, rhs.zone)]
      where left != right {
        return left.utf8.lexicographicallyPrecedes(right.utf8)
      }
      if lhs.hour != rhs.hour { return lhs.hour < rhs.hour }
      return lhs.businessHours < rhs.businessHours
    }
  }

  struct Cell: Equatable {
    var conversations: UInt64 = 0
    var answered: UInt64 = 0
    var within15m: UInt64 = 0
    var within1h: UInt64 = 0
    var within24h: UInt64 = 0
    var firstResponse = QuantileSketch()
    var resolved: UInt64 = 0
    var resolution = QuantileSketch()

    mutating func merge(_ other: Cell) -> Bool {
      var sum = EngagementKernel.Checked()
      conversations = sum.add(conversations, other.conversations)
      answered = sum.add(answered, other.answered)
      within15m = sum.add(within15m, other.within15m)
      within1h = sum.add(within1h, other.within1h)
      within24h = sum.add(within24h, other.within24h)
      resolved = sum.add(resolved, other.resolved)
      firstResponse.merge(other.firstResponse)
      resolution.merge(other.resolution)
      return !sum.overflowed && !firstResponse.overflowed && !resolution.overflowed
    }
  }

  struct Conversation: Hashable {
    var platform: String
    var account: String
    var id: String
  }

  struct Message: Equatable {
    var epoch: Int64
    var local: Int64
    var inbound: Bool
    /// Its place among the conversation's messages as read: the last tie-break.
    var order: Int
  }

  /// This task's messages, per conversation, until the partial is written.
  private var pending: [Conversation: [Message]] = [:]
  private var cells: [Key: Cell] = [:]
  private var overflowed = false
  private var clock = LocalClock(timezone: "")
  private var hours: BusinessHours?

  public init() {}

  public init(context: ReportContext) {
    self.init()
    clock = LocalClock(timezone: context.timezone)
    hours = (try? BusinessHours.stated(context.businessHours)) ?? nil
  }

  mutating func add(_ message: MessageRecord) {
    let key = Conversation(platform: message.platform, account: message.account, id: message.conversation)
    let order = pending[key]?.count ?? 0
    pending[key, default: []].append(
      Message(
        epoch: message.at.epochSeconds, local: clock.local(message.at), inbound: message.direction == .inbound,
        order: order))
  }

  /// Every pending conversation read into the cells.
  func summarized() -> (cells: [Key: Cell], overflowed: Bool) {
    var cells = self.cells
    var overflowed = self.overflowed
    for (conversation, messages) in pending {
      // In time; at the same second inbound first, then as read: two inbound messages of one
      // second written in different offsets open the conversation in the first one's hour.
      let sorted = messages.sorted {
        ($0.epoch, $0.inbound ? 0 : 1, $0.order) < ($1.epoch, $1.inbound ? 0 : 1, $1.order)
      }
      // A conversation the business started counts from the customer's first message.
      guard let first = sorted.firstIndex(where: \.inbound) else { continue }
      let opened = sorted[first]
      var one = Cell(conversations: 1)
      if let answer = sorted[(first + 1)...].first(where: { !$0.inbound }) {
        let seconds = answer.epoch - opened.epoch
        one.answered = 1
        one.within15m = seconds <= 900 ? 1 : 0
        one.within1h = seconds <= 3_600 ? 1 : 0
        one.within24h = seconds <= 86_400 ? 1 : 0
        one.firstResponse.add(Double(seconds))
      }
      if let last = sorted.last, !last.inbound, last.epoch >= opened.epoch, one.answered == 1 {
        one.resolved = 1
        one.resolution.add(Double(last.epoch - opened.epoch))
      }
      let inside: UInt32 = hours.map { $0.contains(local: opened.local) ? 1 : 2 } ?? 0
      let key = Key(
        platform: conversation.platform, account: conversation.account, zone: clock.name,
        hour: LocalClock.hourOfWeek(local: opened.local), businessHours: inside)
      if !cells[key, default: Cell()].merge(one) { overflowed = true }
    }
    return (cells, overflowed)
  }

  static func row(_ label: String, _ cell: Cell) -> Haat_V1_ResponseTimeRow {
    var row = Haat_V1_ResponseTimeRow()
    row.hours = label
    row.conversations = cell.conversations
    row.answered = cell.answered
    row.unanswered = cell.conversations &- cell.answered
    if cell.conversations > 0 {
      let n = Double(cell.conversations)
      row.shareWithin15M = Double(cell.within15m) / n
      row.shareWithin1H = Double(cell.within1h) / n
      row.shareWithin24H = Double(cell.within24h) / n
    }
    if let p50 = cell.firstResponse.quantile(0.5) { row.firstResponseP50S = p50 }
    if let p90 = cell.firstResponse.quantile(0.9) { row.firstResponseP90S = p90 }
    row.resolved = cell.resolved
    if let p50 = cell.resolution.quantile(0.5) { row.resolutionP50S = p50 }
    if let p90 = cell.resolution.quantile(0.9) { row.resolutionP90S = p90 }
    return row
  }

  /// "42 s", "7.5 min", "3.2 h", "2.1 d".
  static func duration(_ seconds: Double) -> String {
    if seconds < 60 { return String(format: "%.0f s", seconds) }
    if seconds < 3_600 { return String(format: "%.1f min", seconds / 60) }
    if seconds < 86_400 { return String(format: "%.1f h", seconds / 3_600) }
    return String(format: "%.1f d", seconds / 86_400)
  }
}

extension ResponseTimeKernel: ReportKernel {
  public static let name = "response_time"
  public static let summary =
    "per platform × account: first response and resolution p50/p90, share answered within 15 min / 1 h / 24 h, unanswered, inside and outside business hours, volume and median by hour of week"
  public static let records: Set<RecordType> = [.message]

  public mutating func add(_ record: CanonicalRecord) -> Bool {
    guard case .message(let message) = record else { return true }
    add(message)
    return true
  }

  public mutating func merge(_ other: ResponseTimeKernel) {
    if other.overflowed { overflowed = true }
    for (key, cell) in other.cells where !cells[key, default: Cell()].merge(cell) { overflowed = true }
    for (conversation, messages) in other.pending { pending[conversation, default: []] += messages }
  }

  public func write(to partial: inout Partial) {
    let (cells, overflowed) = summarized()
    var message = Haat_V1_ResponseTimePartial()
    message.cells = cells.keys.sorted().map { key in
      let cell = cells[key] ?? Cell()
      var out = Haat_V1_ResponseTimeCell()
      out.platform = key.platform
      out.account = key.account
      out.zone = key.zone
      out.hour = key.hour
      out.businessHours = key.businessHours
      out.conversations = cell.conversations
      out.answered = cell.answered
      out.within15M = cell.within15m
      out.within1H = cell.within1h
      out.within24H = cell.within24h
      out.firstResponseS = cell.firstResponse.message
      out.resolved = cell.resolved
      out.resolutionS = cell.resolution.message
      return out
    }
    message.overflowed = overflowed
    partial.responseTime = message
  }

  public init?(reading partial: Partial) {
    guard partial.hasResponseTime else { return nil }
    self.init()
    overflowed = partial.responseTime.overflowed
    for cell in partial.responseTime.cells {
      guard cell.hour < 168, cell.businessHours <= 2, let first = QuantileSketch(cell.firstResponseS),
        let resolution = QuantileSketch(cell.resolutionS)
      else {
        overflowed = true
        continue
      }
      let key = Key(
        platform: cell.platform, account: cell.account, zone: cell.zone, hour: cell.hour,
        businessHours: cell.businessHours)
      let read = Cell(
        conversations: cell.conversations, answered: cell.answered, within15m: cell.within15M,
        within1h: cell.within1H, within24h: cell.within24H, firstResponse: first, resolved: cell.resolved,
        resolution: resolution)
      if !cells[key, default: Cell()].merge(read) { overflowed = true }
    }
  }

  public func finish(into report: inout Report) throws(HaatError) {
    let overflow = HaatError(
      .overflow,
      "the response_time report's counts pass 18446744073709551615 (2^64 - 1) or a partial's cell does not read")
    let (cells, overflowed) = summarized()
    guard !overflowed else { throw overflow }
    struct Account: Hashable, Comparable {
      var platform: String
      var account: String
      var zone: String
      static func < (lhs: Account, rhs: Account) -> Bool {
        (lhs.platform, lhs.account, lhs.zone) < (rhs.platform, rhs.account, rhs.zone)
      }
    }
    var all: [Account: Cell] = [:]
    var inside: [Account: Cell] = [:]
    var outside: [Account: Cell] = [:]
    var byHour: [Account: [UInt32: Cell]] = [:]
    for (key, cell) in cells {
      let account = Account(platform: key.platform, account: key.account, zone: key.zone)
      var ok = all[account, default: Cell()].merge(cell)
      if key.businessHours == 1 { ok = ok && inside[account, default: Cell()].merge(cell) }
      if key.businessHours == 2 { ok = ok && outside[account, default: Cell()].merge(cell) }
      ok = ok && byHour[account, default: [:]][key.hour, default: Cell()].merge(cell)
      guard ok else { throw overflow }
    }
    var section = Haat_V1_ResponseTimeReport()
    var rows: [Haat_V1_ResponseTimeRow] = []
    var hours: [Haat_V1_ResponseTimeHour] = []
    for account in all.keys.sorted() {
      var labelled = [("all", all[account] ?? Cell())]
      if let cell = inside[account] { labelled.append(("inside", cell)) }
      if let cell = outside[account] { labelled.append(("outside", cell)) }
      for (label, cell) in labelled {
        var row = Self.row(label, cell)
        row.platform = account.platform
        row.account = account.account
        row.zone = account.zone
        rows.append(row)
      }
      for (hour, cell) in (byHour[account] ?? [:]).sorted(by: { $0.key < $1.key }) {
        var out = Haat_V1_ResponseTimeHour()
        out.platform = account.platform
        out.account = account.account
        out.zone = account.zone
        out.hour = hour
        out.label = BestTimeKernel.label(hour)
        out.conversations = cell.conversations
        if let median = cell.firstResponse.quantile(0.5) { out.medianFirstResponseS = median }
        hours.append(out)
      }
    }
    section.rows = rows
    section.hours = hours
    report.responseTime = section
  }

  public static func table(of report: Report) -> ReportTable? {
    guard report.hasResponseTime else { return nil }
    let group = ReportRendering.group
    let percent = ReportRendering.percent
    let rows = report.responseTime.rows
    return ReportTable(
      columns: [
        "platform", "account", "zone", "hours", "conv.", "unanswered", "first p50", "first p90", "≤15 min", "≤1 h",
        "≤24 h", "resolved p50",
      ],
      rows: rows.map { row in
        [
          row.platform, row.account, row.zone, row.hours, group(row.conversations), group(row.unanswered),
          row.hasFirstResponseP50S ? duration(row.firstResponseP50S) : "–",
          row.hasFirstResponseP90S ? duration(row.firstResponseP90S) : "–",
          row.hasShareWithin15M ? percent(row.shareWithin15M) : "–",
          row.hasShareWithin1H ? percent(row.shareWithin1H) : "–",
          row.hasShareWithin24H ? percent(row.shareWithin24H) : "–",
          row.hasResolutionP50S ? duration(row.resolutionP50S) : "–",
        ]
      },
      numeric: Set(4...11), totalLast: false,
      csvColumns: [
        "platform", "account", "zone", "hours", "conversations", "answered", "unanswered", "first_response_p50_s",
        "first_response_p90_s", "share_within_15m", "share_within_1h", "share_within_24h", "resolved",
        "resolution_p50_s", "resolution_p90_s",
      ],
      csvRows: rows.map { row in
        [
          row.platform, row.account, row.zone, row.hours, String(row.conversations), String(row.answered),
          String(row.unanswered), row.hasFirstResponseP50S ? String(row.firstResponseP50S) : "",
          row.hasFirstResponseP90S ? String(row.firstResponseP90S) : "",
          row.hasShareWithin15M ? String(row.shareWithin15M) : "",
          row.hasShareWithin1H ? String(row.shareWithin1H) : "",
          row.hasShareWithin24H ? String(row.shareWithin24H) : "", String(row.resolved),
          row.hasResolutionP50S ? String(row.resolutionP50S) : "",
          row.hasResolutionP90S ? String(row.resolutionP90S) : "",
        ]
      },
      csvText: [0, 1, 2, 3])
  }
}
