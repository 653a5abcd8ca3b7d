using System.Runtime.InteropServices;

namespace TorchLoad.Core.Tensors;

/// <summary>
/// Where a storage's bytes live. Host buffers and file mappings expose a pointer; device buffers
/// (Devices/) only copy in and out. Disposing frees native or device memory; the finalizer is the
/// safety net when a user never disposes.
/// </summary>
public abstract class StorageBuffer : IDisposable
{
    protected StorageBuffer(long length) => Length = length;

    public long Length { get; }

    /// <summary><c>cpu</c> for host memory and mappings, or the device it lives on.</summary>
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

    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    ~StorageBuffer()
    {
        if (!IsDisposed) Release();
    }

    protected abstract void Release();
}

/// <summary>Native host memory, allocated once at its final size (no managed 2 GiB limit, no GC copies).</summary>
public sealed unsafe class HostBuffer : StorageBuffer
{
    private byte* _ptr;

    public HostBuffer(long length) : base(length)
    {
        _ptr = (byte*)NativeMemory.Alloc((nuint)Math.Max(length, 1));
        if (length > 0) GC.AddMemoryPressure(length);
    }

    public override string Device => "cpu";
    public override bool IsHostAccessible => true;
    public override byte* Pointer => _ptr != null ? _ptr : throw new ObjectDisposedException(nameof(HostBuffer));

    public Span<byte> AsSpan(long offset, int length) => new(Pointer + offset, length);

    protected override void Release()
    {
        if (_ptr == null) return;
        NativeMemory.Free(_ptr);
        _ptr = null;
        if (Length > 0) GC.RemoveMemoryPressure(Length);
    }
}

/// <summary>
/// A small storage in a pinned managed array (pinned object heap): no native allocation, no
/// finalizer, no memory-pressure bookkeeping. Checkpoints with tens of thousands of small tensors
/// (biases, norms, optimizer scalars) would otherwise spend their time there.
/// </summary>
public sealed unsafe class PinnedBuffer : StorageBuffer
{
    public const int MaxLength = 64 << 10;
    private readonly byte[] _bytes;

    public PinnedBuffer(int length) : base(length)
    {
        _bytes = GC.AllocateUninitializedArray<byte>(Math.Max(length, 1), pinned: true);
        GC.SuppressFinalize(this);
    }

    public override string Device => "cpu";
    public override bool IsHostAccessible => true;
    public override byte* Pointer => (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _bytes[0]);
    public Span<byte> Span => _bytes.AsSpan(0, (int)Length);
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
