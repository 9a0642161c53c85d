import Foundation
import HaatAnalytics
import HaatCore
import HaatProtocol
import HaatStore
import Logging
import NIOCore
import NIOPosix

/// Store records as wire messages.
enum WireMessages {
  static func message(_ counts: TaskCounts) -> Haat_V1_TaskCounts {
    var message = Haat_V1_TaskCounts()
    message.total = UInt32(clamping: counts.total)
    message.scheduled = UInt32(clamping: counts.scheduled)
    message.ready = UInt32(clamping: counts.ready)
    message.leased = UInt32(clamping: counts.leased)
    message.done = UInt32(clamping: counts.done)
    message.dead = UInt32(clamping: counts.dead)
    message.cancelled = UInt32(clamping: counts.cancelled)
    return message
  }

  static func message(_ record: JobRecord) -> Haat_V1_Job {
    var job = Haat_V1_Job()
    job.id = record.id.description
    job.name = record.name
    job.state = record.state.rawValue
    job.priority = record.priority
    job.createdMs = record.createdMs
    job.startedMs = record.startedMs
    job.finishedMs = record.finishedMs
    job.notBeforeMs = record.notBeforeMs
    job.counts = message(record.counts)
    job.reports = record.reports
    job.error = record.error
    job.submittedBy = record.submittedBy
    if let spec = try? JobSpec(jsonUTF8Data: record.spec, options: WireCodec.decodingOptions) { job.spec = spec }
    job.tasks = record.tasks.map(message)
    return job
  }

  static func message(_ task: TaskRecord) -> Haat_V1_TaskInfo {
    var info = Haat_V1_TaskInfo()
    info.id = task.id.description
    info.index = UInt32(clamping: task.index)
    info.source = task.source
    info.state = task.state.rawValue
    info.attempt = task.attempt
    info.maxAttempts = task.maxAttempts
    info.worker = task.worker
    if let error = task.lastError { info.lastError = ErrorInfo(error) }
    info.notBeforeMs = task.notBeforeMs
    info.updatedMs = task.updatedMs
    info.pool = task.pool.rawValue
    if let stats = task.stats, let decoded = try? TaskStats(jsonUTF8Data: stats, options: WireCodec.decodingOptions) {
      info.stats = decoded
    }
    return info
  }

  /// The `ack` line, written directly: one goes out per result, and through protobuf's JSON
  /// encoder it took about 5 % of the coordinator's CPU under no-op load (perf). Fields at
  /// their defaults are left out, as protobuf's JSON mapping does; the strings are escaped.
  static func ackLine(replyTo id: String, _ ack: Haat_V1_Ack, allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 64 + id.utf8.count + ack.task.utf8.count + ack.reason.utf8.count)
    buffer.writeString("{")
    if !id.isEmpty {
      buffer.writeString(#""reply_to":"#)
      WireCodec.writeJSONString(id, into: &buffer)
      buffer.writeString(",")
    }
    buffer.writeString(#""ack":{"#)
    var first = true
    func name(_ key: StaticString) {
      if !first { buffer.writeInteger(UInt8(ascii: ",")) }
      first = false
      buffer.writeStaticString(key)
    }
    if !ack.task.isEmpty {
      name(#""task":"#)
      WireCodec.writeJSONString(ack.task, into: &buffer)
    }
    if ack.attempt != 0 {
      name(#""attempt":"#)
      buffer.writeString(String(ack.attempt))
    }
    if ack.accepted {
      name(#""accepted":true"#)
    }
    if !ack.reason.isEmpty {
      name(#""reason":"#)
      WireCodec.writeJSONString(ack.reason, into: &buffer)
    }
    buffer.writeString("}}\n")
    return buffer
  }

  /// The `assign` line, with the task spec spliced in as the store holds it: the planner
  /// wrote it as the TaskSpec's wire JSON, so decoding and re-encoding it for every assign
  /// would only cost time. Every other field is a number or a known word.
  static func assignLine(_ task: ClaimedTask, expires: Int64, allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 160 + task.spec.count)
    buffer.writeString(#"{"assign":{"task":""#)
    buffer.writeString(task.task.description)
    buffer.writeString(#"","attempt":"#)
    buffer.writeString(String(task.attempt))
    buffer.writeString(#","lease_expires_ms":""#)
    buffer.writeString(String(expires))
    buffer.writeString(#"","spec":"#)
    if let bookmark = task.bookmark, task.spec.first == UInt8(ascii: "{") {
      // The source's last bookmark goes first in the spec's object (protobuf's JSON takes
      // fields in any order; the planner never writes one, so it is not there twice).
      buffer.writeString(#"{"bookmark":"#)
      WireCodec.writeJSONString(bookmark, into: &buffer)
      let rest = task.spec.dropFirst()
      if rest.first != UInt8(ascii: "}") { buffer.writeString(",") }
      buffer.writeBytes(rest)
    } else if task.spec.isEmpty {
      buffer.writeString("{}")
    } else {
      buffer.writeBytes(task.spec)
    }
    buffer.writeString(#","pool":""#)
    buffer.writeString(task.pool.rawValue)
    buffer.writeString(#"","job":""#)
    buffer.writeString(task.job.description)
    buffer.writeString("\"}}\n")
    return buffer
  }
}
