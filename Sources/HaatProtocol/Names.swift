// Short names for the generated protocol types used throughout Haat.
public typealias Envelope = Haat_V1_Envelope
public typealias WireError = Haat_V1_Error
public typealias JobSpec = Haat_V1_JobSpec
public typealias Source = Haat_V1_Source
public typealias TaskSpec = Haat_V1_TaskSpec
public typealias Partial = Haat_V1_Partial
public typealias Report = Haat_V1_Report
public typealias TaskStats = Haat_V1_TaskStats
public typealias RowError = Haat_V1_RowError
public typealias ErrorInfo = Haat_V1_ErrorInfo
public typealias WorkerHealth = Haat_V1_WorkerHealth
public typealias ByteRange = Haat_V1_ByteRange
public typealias Split = Haat_V1_Split
public typealias RangeQuotes = Haat_V1_RangeQuotes
public typealias DateWindow = Haat_V1_DateWindow
