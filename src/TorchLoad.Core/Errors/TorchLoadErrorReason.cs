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
    /// <summary>
    /// The file changed after it was opened (another process truncated or rewrote it: another size or
    /// last-write time): an eager load that saw it change, or a later read of an -Mmap storage.
    /// </summary>
    CheckpointChanged,
}
