using System.Runtime.InteropServices;

namespace TorchLoad.Core.Tensors;

/// <summary>
/// Where a storage's bytes live. Host buffers expose a pointer; device buffers and -Mmap file buffers
/// only copy in and out. Disposing frees native or device memory. Only the buffers that own
/// memory themselves (host, device) have a finalizer as the safety net when a user never disposes:
/// arena slices, views and mapped windows are plain objects, since allocating a finalizable object
/// is several times slower and a checkpoint may hold 100,000 small storages.
/// </summary>
public abstract class StorageBuffer : IDisposable
{
    protected StorageBuffer(long length) => Length = length;

    public long Length { get; }

    /// <summary><c>cpu</c> for host memory and -Mmap file buffers, or the device it lives on.</summary>
    public abstract string Device { get; }

    /// <summary>True when <see cref="Pointer"/> may be used.</summary>
    public abstract bool IsHostAccessible { get; }

    /// <summary>Start of the bytes in host memory; only when <see cref="IsHostAccessible"/>.</summary>
    public abstract unsafe byte* Pointer { get; }

    /// <summary>Copies <paramref name="destination"/>.Length bytes starting at <paramref name="offset"/>.</summary>
    public virtual unsafe void CopyTo(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length - destination.Length) throw new ArgumentOutOfRangeException(nameof(offset));
        new ReadOnlySpan<byte>(Pointer + offset, destination.Length).CopyTo(destination);
    }

    /// <summary>Copies <paramref name="length"/> bytes from <paramref name="offset"/> to native memory, in spans of at most 256 MiB.</summary>
    internal unsafe void CopyTo(long offset, byte* destination, long length)
    {
        const int Chunk = 256 << 20;
        for (long done = 0; done < length;)
        {
            var n = (int)Math.Min(Chunk, length - done);
            CopyTo(offset + done, new Span<byte>(destination + done, n));
            done += n;
        }
    }

    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    /// <summary>For the finalizers of buffers that own memory: frees it unless Dispose already did.</summary>
    protected void ReleaseIfNotDisposed()
    {
        if (!IsDisposed) Release();
    }

    protected abstract void Release();
}

/// <summary>Native host memory, allocated once at its final size (no managed 2 GiB limit, no GC copies).</summary>
public sealed unsafe class HostBuffer : StorageBuffer
{
    private byte* _ptr;
    private bool _pressure;

    /// <param name="deferPressure">
    /// The caller reports the memory to the GC itself, once for many buffers (<see cref="CountPressure"/>):
    /// one AddMemoryPressure per 16 MiB storage made a 1 GiB load run ~20 full collections.
    /// </param>
    public HostBuffer(long length, bool deferPressure = false) : base(length)
    {
        _ptr = (byte*)NativeMemory.Alloc((nuint)Math.Max(length, 1));
        if (length > 0 && !deferPressure) { GC.AddMemoryPressure(length); _pressure = true; }
    }

    ~HostBuffer() => ReleaseIfNotDisposed();

    /// <summary>Marks the buffer's bytes as reported to the GC by the caller's single AddMemoryPressure; Release removes them.</summary>
    internal void CountPressure() => _pressure = Length > 0;

    public override string Device => "cpu";
    public override bool IsHostAccessible => true;
    public override byte* Pointer => _ptr != null ? _ptr : throw new ObjectDisposedException(nameof(HostBuffer));

    public Span<byte> AsSpan(long offset, int length) => new(Pointer + offset, length);

    /// <summary>
    /// Makes the kernel back [offset, offset + length) with pages now, in one call, before the range is
    /// written (Linux 5.14+ MADV_POPULATE_WRITE; elsewhere, or on older kernels, nothing happens).
    /// Filling fresh memory is bound by page faults, and one populate call costs less than a fault per
    /// 4 KiB page taken inside read(): a 1 GiB load measured here went from ~250 ms to ~205 ms.
    /// </summary>
    public void Prefault(long offset, long length)
    {
        if (LibC.Madvise is null || offset < 0 || length <= 0 || offset > Length - length) return;
        const long Page = 4096;
        var start = ((long)Pointer + offset + Page - 1) & ~(Page - 1);
        var end = ((long)Pointer + offset + length) & ~(Page - 1);
        if (end > start) _ = LibC.Madvise((IntPtr)start, (nuint)(end - start), LibC.MadvPopulateWrite);
    }

    protected override void Release()
    {
        if (_ptr == null) return;
        NativeMemory.Free(_ptr);
        _ptr = null;
        if (_pressure) GC.RemoveMemoryPressure(Length);
    }
}

/// <summary>
/// Small storages of one load share native chunks (a bump allocator): no allocation, finalizer or
/// GC bookkeeping per storage. Checkpoints with tens of thousands of small tensors (biases, norms,
/// optimizer scalars) otherwise spend their time there. Used from one thread (the loading one).
/// </summary>
public sealed class StorageArena
{
    public const int MaxLength = 64 << 10;
    // Chunks start at 16 KiB and double up to 1 MiB: a 5 KB checkpoint took a whole megabyte (and reported it to
    // the GC as memory pressure, so a thousand small loads ran full collections).
    private const int FirstChunk = 16 << 10, ChunkSize = 1 << 20;
    private ArenaChunk? _chunk;
    private int _used, _nextChunk = FirstChunk;

    public StorageBuffer Allocate(long length)
    {
        if (length > MaxLength) return new HostBuffer(length);
        var aligned = (int)((length + 63) & ~63L); // 64-byte aligned, as torch aligns records
        if (_chunk is null || _used + aligned > _chunk.Size)
        {
            _chunk = new ArenaChunk(Math.Max(_nextChunk, aligned));
            _nextChunk = Math.Min(_nextChunk * 2, ChunkSize);
            _used = 0;
        }
        var buffer = new ArenaBuffer(_chunk, _used, length);
        _used += aligned;
        return buffer;
    }
}

/// <summary>One native chunk of an arena; freed by its finalizer once no <see cref="ArenaBuffer"/> holds it.</summary>
internal sealed unsafe class ArenaChunk
{
    public ArenaChunk(int size)
    {
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)size, 64);
        Size = size;
        GC.AddMemoryPressure(size);
    }

    public byte* Pointer { get; }
    public int Size { get; }

    ~ArenaChunk()
    {
        NativeMemory.AlignedFree(Pointer);
        GC.RemoveMemoryPressure(Size);
    }
}

/// <summary>A storage's bytes inside an arena chunk: keeps the chunk alive, frees nothing itself.</summary>
public sealed unsafe class ArenaBuffer : StorageBuffer
{
    private readonly ArenaChunk _chunk;
    private readonly int _offset;

    internal ArenaBuffer(ArenaChunk chunk, int offset, long length) : base(length)
    {
        _chunk = chunk;
        _offset = offset;
    }

    public override string Device => "cpu";
    public override bool IsHostAccessible => true;
    public override byte* Pointer => _chunk.Pointer + _offset;
    public Span<byte> Span => new(Pointer, (int)Length);
    protected override void Release() { }
}

/// <summary>No bytes at all: meta storages and storages of size 0.</summary>
public sealed unsafe class EmptyBuffer : StorageBuffer
{
    public EmptyBuffer(long length = 0, string device = "cpu") : base(length) => Device = device;
    public override string Device { get; }
    public override bool IsHostAccessible => Length == 0;
    public override byte* Pointer => Length == 0 ? null : throw new InvalidOperationException("A meta storage has no data.");
    protected override void Release() { }
}

/// <summary>
/// A window of another storage's bytes (legacy storage views). It follows the root storage's
/// current buffer, so moving the root moves every view; it frees nothing itself.
/// </summary>
public sealed unsafe class SliceBuffer : StorageBuffer
{
    public SliceBuffer(TorchStorage root, long offset, long length) : base(length)
    {
        if (offset < 0 || length < 0 || offset > root.ByteLength - length) throw new ArgumentOutOfRangeException(nameof(offset));
        Root = root;
        Offset = offset;
    }

    public TorchStorage Root { get; }
    public long Offset { get; }
    private StorageBuffer Parent => Root.RequireBuffer();
    public override string Device => Parent.Device;
    public override bool IsHostAccessible => Parent.IsHostAccessible;
    public override byte* Pointer => Parent.Pointer + Offset;
    public override void CopyTo(long offset, Span<byte> destination) => Parent.CopyTo(Offset + offset, destination);
    protected override void Release() { }
}
