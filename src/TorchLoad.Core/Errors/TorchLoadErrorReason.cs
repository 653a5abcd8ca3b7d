namespace TorchLoad.Core.Errors;

/// <summary>
/// Why a load failed. The names are the stable ErrorIds of docs/object-model.md: the cmdlets use
/// <c>reason.ToString()</c> as the ErrorRecord id, so renaming a member is a breaking change.
/// </summary>
public enum TorchLoadErrorReason
{
    UnsafeGlobal,
    UnsupportedOpcode,
    MalformedPickle,
    TruncatedCheckpoint,
    InvalidArchive,
    NotACheckpoint,
    MissingRecord,
    DuplicateRecord,
    InvalidRecordName,
    UnsupportedVersion,
    UnsupportedCompression,
    StorageSizeMismatch,
    InvalidTensorGeometry,
    InvalidPersistentId,
    LimitExceeded,
    DeviceUnavailable,
    UnsupportedFormat,
    /// <summary>The caller asked for something the reader cannot do with this value (not a file problem).</summary>
    InvalidArgument,
    /// <summary>The load was cancelled (Ctrl+C).</summary>
    Cancelled,
}
