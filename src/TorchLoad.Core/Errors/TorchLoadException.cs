namespace TorchLoad.Core.Errors;

/// <summary>
/// The one exception type TorchLoad.Core throws for anything wrong with an input or a request.
/// It says why (<see cref="Reason"/>), in which record (zip entry, legacy part or tar member) and
/// at which byte offset of that record (or of the file, when <see cref="RecordName"/> is null).
/// </summary>
public sealed class TorchLoadException : Exception
{
    public TorchLoadException(TorchLoadErrorReason reason, string message, string? recordName = null, long byteOffset = -1, Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
        RecordName = recordName;
        ByteOffset = byteOffset;
    }

    public TorchLoadErrorReason Reason { get; }

    /// <summary>The record the problem was found in, or null for the container itself.</summary>
    public string? RecordName { get; private set; }

    /// <summary>Byte offset inside <see cref="RecordName"/> (or the file), or -1 when unknown.</summary>
    public long ByteOffset { get; private set; }

    /// <summary>The global a safety refusal is about, as <c>module.name</c>.</summary>
    public string? GlobalName { get; init; }

    /// <summary>For <see cref="TorchLoadErrorReason.LimitExceeded"/>: the option that raises the limit.</summary>
    public string? LimitName { get; init; }

    /// <summary>The message with the place appended, as users see it.</summary>
    public override string Message
    {
        get
        {
            var place = (RecordName, ByteOffset) switch
            {
                (null, < 0) => "",
                (null, var o) => $" (at byte {o})",
                (var r, < 0) => $" (in record '{r}')",
                (var r, var o) => $" (in record '{r}' at byte {o})",
            };
            return base.Message + place;
        }
    }

    /// <summary>Fills in the record/offset when an inner layer did not know them.</summary>
    internal TorchLoadException WithPlace(string? recordName, long byteOffset)
    {
        if (RecordName is null && recordName is not null) RecordName = recordName;
        if (ByteOffset < 0 && byteOffset >= 0) ByteOffset = byteOffset;
        return this;
    }
}
