using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// The bytes of something a load reads whole, uses and drops (the zip directory, the pickle, a file's read window): up to
/// <see cref="MaxPooled"/> in an array rented from the shared pool, larger ones in native memory. A native buffer
/// per read is a finalizable object and a malloc (a thousand 5 KB audits made five of each per file); a large
/// array would be on the large-object heap, fresh in each process (the pool starts empty), whose budget
/// triggers full collections.
/// </summary>
internal readonly struct RecordBytes : IDisposable
{
    public const int MaxPooled = PooledArrays.MaxKept;

    private readonly byte[]? _array;
    private readonly HostBuffer? _native;

    private RecordBytes(byte[]? array, HostBuffer? native, int length) => (_array, _native, Length) = (array, native, length);

    public int Length { get; }

    public ReadOnlySpan<byte> Span => Writable;

    /// <summary>The bytes, to read into (<see cref="Allocate"/>).</summary>
    public unsafe Span<byte> Writable => _array is not null ? _array.AsSpan(0, Length) : Length == 0 ? default : new Span<byte>(_native!.Pointer, Length);

    /// <summary>Room for <paramref name="length"/> bytes, pooled or native by the same rule as <see cref="Read"/>.</summary>
    public static RecordBytes Allocate(int length) =>
        length <= MaxPooled ? new(PooledArrays.Rent<byte>(length), null, length) : new(null, new HostBuffer(length, deferPressure: true), length);

    /// <summary>[<paramref name="offset"/>, + <paramref name="length"/>) of <paramref name="file"/>; the caller checked length against its limit and int.MaxValue.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static RecordBytes Read(FileSource file, long offset, long length, string? record, CancellationToken cancel)
    {
        if (length > MaxPooled) return Of((HostBuffer)file.ReadToHost(offset, length, record, cancel, null));
        var array = PooledArrays.Rent<byte>((int)length);
        try
        {
            file.ReadExactly(offset, array.AsSpan(0, (int)length), record);
            return new RecordBytes(array, null, (int)length);
        }
        catch
        {
            PooledArrays.Return(array, clear: false);
            throw;
        }
    }

    /// <summary>Bytes already in native memory (an inflated record); disposing this disposes it.</summary>
    public static RecordBytes Of(HostBuffer native) => new(null, native, (int)native.Length);

    public void Dispose()
    {
        if (_array is not null) PooledArrays.Return(_array, clear: false);
        else _native?.Dispose();
    }
}
