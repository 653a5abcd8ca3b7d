using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Tensors;

/// <summary>
/// One storage of a checkpoint: the bytes one record (<c>data/&lt;key&gt;</c>) or legacy blob holds.
/// Every tensor that the file says views this key shares this one object.
/// </summary>
public sealed class TorchStorage : IDisposable
{
    internal TorchStorage(string key, TorchDType dtype, long elementCount, string location)
    {
        Key = key;
        DType = dtype;
        ElementCount = elementCount;
        ByteLength = checked(elementCount * dtype.ElementSize);
        Location = location;
    }

    /// <summary>The record key (<c>"0"</c>) or legacy storage key.</summary>
    public string Key { get; }

    /// <summary>The storage's dtype (<c>uint8</c> for an UntypedStorage).</summary>
    public TorchDType DType { get; }

    public long ElementCount { get; }
    public long ByteLength { get; }

    /// <summary>The device tag saved in the file (<c>cpu</c>, <c>cuda:0</c>, <c>mps</c>).</summary>
    public string Location { get; }

    /// <summary>Where the bytes live now (<c>cpu</c>, <c>cuda:0</c>, <c>ilgpu-cpu</c>); null while not loaded (listed from metadata only).</summary>
    public string? Device => Buffer?.Device;

    /// <summary>False for a storage listed from metadata only (its bytes were not read).</summary>
    public bool IsLoaded => Buffer is not null;

    /// <summary>The zip record or legacy part the bytes come from.</summary>
    public string? RecordName
    {
        get => _recordName ?? (Source as Archive.ZipRecord)?.Name; // a zip record is named when asked (ZipRecord.Name)
        internal set => _recordName = value;
    }
    private string? _recordName;

    /// <summary>Byte offset of the bytes in the file, or -1 (deflated records, unknown).</summary>
    public long FileOffset { get; internal set; } = -1;

    /// <summary>For a legacy storage view: the root storage it slices.</summary>
    public TorchStorage? ViewOf { get; internal set; }

    /// <summary>For a legacy storage view: its first element in <see cref="ViewOf"/>.</summary>
    public long ViewOffset { get; internal set; }

    /// <summary>What the container reader needs to read the bytes later (its zip record).</summary>
    internal object? Source { get; set; }

    /// <summary>True when the storage's bytes stay in the file and are read from it when used (<c>-Mmap</c>).</summary>
    public bool IsMapped { get; internal set; }

    /// <summary>Dotted paths of the tensors that view this storage (filled by storage listings).</summary>
    public List<string> TensorPaths => _tensorPaths ??= [];
    private List<string>? _tensorPaths;

    /// <summary>The bytes; null while only metadata was read.</summary>
    public StorageBuffer? Buffer { get; internal set; }

    /// <summary>Replaces the bytes (device moves); the old buffer is returned to the caller to dispose.</summary>
    public StorageBuffer? ReplaceBuffer(StorageBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (buffer.Length != ByteLength) throw new ArgumentException($"The buffer holds {buffer.Length} bytes, the storage {ByteLength}.", nameof(buffer));
        var old = Buffer;
        Buffer = buffer;
        return old;
    }

    /// <summary>All bytes of the storage, little-endian, as saved (after byte-order correction).</summary>
    public byte[] ToByteArray()
    {
        if (ByteLength > Array.MaxLength)
            throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"Storage {Key} holds {ByteLength} bytes, more than one .NET array can.") { LimitName = "Array.MaxLength" };
        var bytes = new byte[ByteLength];
        if (ByteLength > 0) RequireBuffer().CopyTo(0, bytes);
        return bytes;
    }

    internal StorageBuffer RequireBuffer() => Buffer is { IsDisposed: false } b ? b
        : throw new InvalidOperationException(Buffer is null
            ? $"Storage {Key} was listed without its data (metadata only); load the checkpoint with Import-TorchCheckpoint to read it."
            : $"Storage {Key} was disposed.");

    /// <summary>Frees the bytes now (host or device memory) instead of at collection (an -Mmap storage releases its file); the storage is then unusable.</summary>
    public void Dispose()
    {
        if (ViewOf is null) Buffer?.Dispose();
    }

    public override string ToString() => $"{DType}[{ElementCount}] key={Key} location={Location} device={Device ?? "(not loaded)"}";
}
