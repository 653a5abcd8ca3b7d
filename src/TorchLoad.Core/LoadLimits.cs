namespace TorchLoad.Core;

/// <summary>
/// Resource limits with safe defaults that real checkpoints never reach. A limit that is hit fails
/// the load with <c>LimitExceeded</c>, naming the property (and the cmdlet parameter) that raises it.
/// </summary>
public sealed record LoadLimits
{
    /// <summary>Open MARKs at once (nested tuples/lists/dicts being built).</summary>
    public int MaxNestingDepth { get; init; } = 1_000;

    /// <summary>Values on the pickle stack at once.</summary>
    public int MaxStackItems { get; init; } = 1_000_000;

    /// <summary>Memo entries (BINPUT/MEMOIZE).</summary>
    public int MaxMemoEntries { get; init; } = 10_000_000;

    /// <summary>Items in one list, tuple, dict or set.</summary>
    public int MaxContainerItems { get; init; } = 100_000_000;

    /// <summary>Bytes of one string or bytes value, and digits of one integer.</summary>
    public long MaxStringBytes { get; init; } = 1L << 30;

    /// <summary>Decimal digits of a protocol-0 integer (INT/LONG); Python itself refuses more than 4300.</summary>
    public int MaxIntegerDigits { get; init; } = 4300;

    /// <summary>Bytes a pickle (data.pkl) may have once inflated.</summary>
    public long MaxPickleBytes { get; init; } = 2L << 30;

    /// <summary>Bytes the deflated records of one load may inflate to together, as a multiple of the file size (zip bombs).</summary>
    public long MaxInflateRatio { get; init; } = 64;

    /// <summary>Bytes of a non-seekable stream (GZipStream, an HTTP response) buffered in memory to load it.</summary>
    public long MaxStreamBytes { get; init; } = 2L << 30;

    /// <summary>Dimensions of one tensor.</summary>
    public int MaxTensorRank { get; init; } = 64;

    public static LoadLimits Default { get; } = new();
}
