extension SourceKind {
  /// A conversation export: one message per row (Messenger, WhatsApp, Instagram DMs).
  public static let messages = SourceKind("messages", TableExportConnector<MessagesExport>.self)
}

/// Conversation exports, NDJSON or CSV, one message per row, into `Message` records
/// (docs/formats.md "Messages"): the conversation, who wrote (inbound from the customer,
/// outbound from the business) and when, in RFC 3339, Meta's `+0000` form, or the Unix
/// seconds WhatsApp writes. The text is not read.
public enum MessagesExport: TableExportKind {
  public static let kind = SourceKind.messages
  public static let summary = "a conversation export, one message per row (NDJSON or CSV) at a URL"
  public static let record = RecordType.message

  public static let columns: [(field: String, names: [String])] = [
    ("platform", ["platform"]),
    ("account", ["account", "page"]),
    ("conversation", ["conversation", "conversation_id", "thread", "thread_id"]),
    ("id", ["id", "message_id"]),
    ("direction", ["direction"]),
    ("at", ["at", "created_time", "created_at", "timestamp", "sent_at"]),
  ]
  public static let required = ["conversation", "direction", "at"]

  public static func record(_ row: TableRow, platform: String, account: String) -> Result<CanonicalRecord?, RowProblem>
  {
    guard let conversation = row["conversation"] else { return row.problem("conversation", .missing) }
    guard let written = row["direction"] else { return row.problem("direction", .missing) }
    let direction: MessageRecord.Direction
    switch written.lowercased() {
    case "inbound", "in", "received": direction = .inbound
    case "outbound", "out", "sent": direction = .outbound
    default: return row.problem("direction", .notADirection)
    }
    guard let text = row["at"] else { return row.problem("at", .missing) }
    guard let at = Values.looseTimestamp(text) else { return row.problem("at", .invalidTimestamp) }
    return .success(
      .message(
        MessageRecord(
          platform: row["platform"] ?? platform, account: row["account"] ?? account, conversation: conversation,
          id: row["id"] ?? "", direction: direction, at: at)))
  }
}
