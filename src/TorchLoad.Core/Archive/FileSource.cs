using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// The bytes of one checkpoint, read at absolute offsets straight into caller buffers: a file opened
/// read-only, a seekable stream read in place from its position, or memory (a byte array, or a
/// non-seekable stream buffered up to a limit). Nothing is ever memory-mapped: a mapped page of a file
/// that another process truncates kills the process with SIGBUS, and no handler can turn that into an error.
/// </summary>
internal sealed class FileSource : IDisposable
{
    private readonly SourceReader _reader;

    private FileSource(SourceReader reader, string path)
    {
        _reader = reader;
        Path = path;
        Length = reader.Length;
    }

    /// <summary>Opens a file read-only (FileShare.Read: on Windows nobody may write it while it is open).</summary>
    public FileSource(string path) : this(CheckedFile.Open(path), path) { }

    /// <summary>A regular file that libc opens at once (Linux), or null (a folder, a missing file: the caller finds out what it is).</summary>
    public static FileSource? TryOpenRegular(string path) => CheckedFile.TryOpenRegular(path) is { } file ? new FileSource(file, path) : null;

    /// <summary>
    /// A stream, from its current position to its end. Seekable streams are read in place (reads are
    /// serialized); a non-seekable one is first buffered in native memory, at most <paramref name="maxBuffered"/> bytes.
    /// </summary>
    public static FileSource FromStream(Stream stream, long maxBuffered, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead) throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"The stream {name} cannot be read.");
        if (stream is MemoryStream ms && ms.TryGetBuffer(out var segment))
        {
            var start = (int)Math.Min(ms.Position, segment.Count);
            return new FileSource(new MemoryReader(segment.Array!, segment.Offset + start, segment.Count - start), name);
        }
        return new FileSource(stream.CanSeek ? new SeekableStreamReader(stream) : BufferedStreamReader.ReadAll(stream, maxBuffered, name), name);
    }

    /// <summary>
    /// The bytes [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>) of
    /// <paramref name="parent"/> as a file of their own (a DCP item is a whole torch.save archive inside a
    /// larger file). The range must lie inside the parent; the parent must outlive this source.
    /// </summary>
    public FileSource(FileSource parent, long offset, long length)
        : this(new WindowReader(parent._reader, CheckedWindow(parent, offset, length), length), parent.Path)
    {
        BaseOffset = offset;
        _isWindow = true;
    }

    private static long CheckedWindow(FileSource parent, long offset, long length) =>
        offset < 0 || length < 0 || offset > parent.Length - length
            ? throw new TorchLoadException(TorchLoadErrorReason.TruncatedCheckpoint,
                $"The range of {length} bytes at byte {offset} runs past the end of '{parent.Path}' ({parent.Length} bytes)", null, offset)
            : offset;

    // A window reads straight through its parent: the 1 MiB read window would copy a megabyte around each
    // DCP item's small records (items lie megabytes apart) and serialize parallel readers on its lock.
    private readonly bool _isWindow;

    /// <summary>Where this source's byte 0 lies in the file behind it (0 unless it is a window of another source).</summary>
    public long BaseOffset { get; }

    /// <summary>A file path, or a description of a stream (<c>(stream)</c>).</summary>
    public string Path { get; }
    public long Length { get; }

    /// <summary>The open file behind this source, for storages that read it later (-Mmap); null for streams and memory.</summary>
    public CheckedFile? OpenFile => _reader switch { CheckedFile f => f, WindowReader { Parent: CheckedFile f } => f, _ => null };

    /// <summary>True when the file is no longer what was opened: another size, or another last-write time.</summary>
    public bool HasChanged => _reader.HasChanged();

    /// <summary>The error for a file that changed while (or after) it was read.</summary>
    public TorchLoadException Changed(Exception? inner = null) => CheckedFile.ChangedError(Path, inner);

    // Small reads (local headers, small records) are served from one window of the file: a checkpoint
    // with 20,000 records is then a few large reads instead of 40,000 system calls. The window grows while
    // the reads walk forward through it (4 KiB, doubling up to 1 MiB on each miss that continues where it
    // ended) and shrinks back on a jump: a file of 64 records 16 MiB apart costs 64 page-sized reads, not
    // 64 MiB of copying. The window is a RecordBytes: up to 64 KiB (a small file read whole) a pooled array, as a native buffer is
    // a finalizable object and a malloc per file (a thousand 5 KB audits made five of each per file). Larger
    // windows are native memory: an array past 85 KB is on the large-object heap, fresh in each process (the pool
    // starts empty), and a 20,000-tensor load measured ~12 ms slower with them. Parallel storage readers
    // (inflating, reading a chunk's tail) use the window too, under its lock.
    internal const int SmallRead = 64 << 10;
    private const int FirstWindow = 4 << 10, WindowSize = 1 << 20;
    private readonly object _windowGate = new();
    private RecordBytes _window; // pooled up to RecordBytes.MaxPooled (= SmallRead), native above
    private long _windowStart = -1;
    private int _windowLength, _nextWindow = FirstWindow;

    /// <summary>Reads exactly destination.Length bytes at <paramref name="offset"/>, or throws TruncatedCheckpoint.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    public void ReadExactly(long offset, Span<byte> destination, string? record = null)
    {
        if (offset < 0 || offset > Length || destination.Length > Length - offset)
            throw new TorchLoadException(TorchLoadErrorReason.TruncatedCheckpoint,
                $"The file ends early: {destination.Length} bytes are needed at byte {offset} but the file has {Length}", record, offset);
        if (destination.Length <= SmallRead && !_isWindow)
        {
            lock (_windowGate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_windowStart < 0 || offset < _windowStart || offset + destination.Length > _windowStart + _windowLength)
                {
                    var end = _windowStart + _windowLength;
                    _nextWindow = _windowStart >= 0 && offset >= _windowStart && offset <= end + FirstWindow
                        ? Math.Min(_nextWindow * 2, WindowSize) // reading on forward: read further ahead
                        : FirstWindow;
                    (_windowStart, _windowLength) = (-1, 0); // empty until the read below succeeds
                    // a small file is read whole, once: its header, end record, directory, local headers and
                    // pickle were six reads back and forth (a thousand 5 KB checkpoints: 6,000 system calls)
                    var (start, want) = Length <= SmallRead ? (0L, (int)Length) : (offset, _nextWindow);
                    var length = (int)Math.Min(Math.Max(want, destination.Length), Length - start);
                    if (_window.Length < length)
                    {
                        _window.Dispose(); // allocated as it grows: a 5 KB checkpoint never touches a megabyte
                        _window = default; // not given back twice if the next allocation fails
                        _window = RecordBytes.Allocate(Math.Max(length, want));
                    }
                    ReadDirect(start, _window.Writable[..length], record);
                    (_windowStart, _windowLength) = (start, length);
                }
                _window.Span.Slice((int)(offset - _windowStart), destination.Length).CopyTo(destination);
            }
            return;
        }
        ReadDirect(offset, destination, record);
    }

    private void ReadDirect(long offset, Span<byte> destination, string? record)
    {
        while (destination.Length > 0)
        {
            var n = _reader.Read(offset, destination);
            if (n <= 0)
            {
                if (_reader.HasChanged()) throw Changed();
                throw new TorchLoadException(TorchLoadErrorReason.TruncatedCheckpoint, "The file ended while it was being read", record, offset);
            }
            destination = destination[n..];
            offset += n;
        }
    }

    public byte[] ReadBytes(long offset, int count, string? record = null)
    {
        var b = new byte[count];
        ReadExactly(offset, b, record);
        return b;
    }

    /// <summary>Reads <paramref name="length"/> bytes into a new native buffer (small ones into the arena), in large chunks.</summary>
    public unsafe StorageBuffer ReadToHost(long offset, long length, string? record, CancellationToken cancel, Action<long>? progress, StorageArena? arena = null)
    {
        CheckRange(offset, length, record);
        if (arena is not null && length <= StorageArena.MaxLength)
        {
            var small = (ArenaBuffer)arena.Allocate(length);
            ReadExactly(offset, small.Span, record);
            progress?.Invoke(length);
            return small;
        }
        var buffer = new HostBuffer(length, deferPressure: true);
        try
        {
            ReadInto(buffer, offset, record, cancel, progress);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Fills <paramref name="buffer"/> with its length of bytes from <paramref name="offset"/>, 2 MiB at a time,
    /// each chunk's pages populated just before it is read (the zeroed pages are still in cache when the copy
    /// writes them: 1 GiB measured ~5% faster than populating 16 MiB at a time).
    /// </summary>
    public void ReadInto(HostBuffer buffer, long offset, string? record, CancellationToken cancel, Action<long>? progress) =>
        ReadInto(buffer, 0, buffer.Length, offset, record, cancel, progress);

    /// <summary>As above, for <paramref name="length"/> bytes into <paramref name="buffer"/> at <paramref name="bufferOffset"/> (a DCP chunk read into its place in the whole tensor).</summary>
    public unsafe void ReadInto(HostBuffer buffer, long bufferOffset, long length, long offset, string? record, CancellationToken cancel, Action<long>? progress)
    {
        CheckRange(offset, length, record);
        if (bufferOffset < 0 || bufferOffset > buffer.Length - length) throw new ArgumentOutOfRangeException(nameof(bufferOffset));
        const int Chunk = 2 << 20;
        for (long done = 0; done < length;)
        {
            cancel.ThrowIfCancellationRequested();
            var n = (int)Math.Min(Chunk, length - done);
            buffer.Prefault(bufferOffset + done, n);
            ReadExactly(offset + done, new Span<byte>(buffer.Pointer + bufferOffset + done, n), record);
            done += n;
            progress?.Invoke(n);
        }
    }

    private void CheckRange(long offset, long length, string? record)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new TorchLoadException(TorchLoadErrorReason.TruncatedCheckpoint,
                $"The file ends early: {length} bytes are needed at byte {offset} but the file has {Length}", record, offset);
    }

    private bool _disposed;

    public void Dispose()
    {
        lock (_windowGate)
        {
            if (_disposed) return;
            _disposed = true;
            _window.Dispose();
            _window = default;
            (_windowStart, _windowLength) = (-1, 0);
        }
        _reader.Release();
    }
}

/// <summary>A range of another source (a DCP item inside its data file); the parent's owner releases it.</summary>
internal sealed class WindowReader(SourceReader parent, long start, long length) : SourceReader
{
    public SourceReader Parent => parent;
    public override long Length => length;

    public override int Read(long offset, Span<byte> destination)
    {
        if (offset >= length) return 0;
        if (destination.Length > length - offset) destination = destination[..(int)(length - offset)];
        return parent.Read(start + offset, destination);
    }

    public override bool HasChanged() => parent.HasChanged();
    public override void Release() { }
}

/// <summary>Where a <see cref="FileSource"/>'s bytes come from.</summary>
internal abstract class SourceReader
{
    public abstract long Length { get; }

    /// <summary>Reads up to destination.Length bytes at <paramref name="offset"/>; 0 at the end.</summary>
    public abstract int Read(long offset, Span<byte> destination);

    /// <summary>True when the bytes are no longer those that were opened (files only).</summary>
    public virtual bool HasChanged() => false;

    /// <summary>The source's holder is done with it.</summary>
    public abstract void Release();
}

/// <summary>
/// An open checkpoint file with the size and last-write time it had when opened, so that a later read can
/// tell whether another process rewrote it. Reference-counted: the load holds one reference and each
/// <see cref="FileBuffer"/> (-Mmap) another, so the handle stays open exactly as long as a storage may read it
/// (and the handle's own finalizer closes it once nothing can reach it). On Linux the file is read through
/// libc (<see cref="NativeFile"/>), elsewhere, or where that cannot open it, through a .NET file handle.
/// </summary>
internal sealed class CheckedFile : SourceReader
{
    private readonly NativeFile? _native;
    private readonly SafeFileHandle? _handle;
    private readonly NativeFile.Stamp _opened;
    private int _refs = 1;

    private CheckedFile(string path, NativeFile? native, SafeFileHandle? handle, NativeFile.Stamp opened)
    {
        Path = path;
        _native = native;
        _handle = handle;
        _opened = opened;
        Length = opened.Length;
    }

    /// <summary>The file when it is a regular file that libc opens (Linux), else null (see <see cref="NativeFile.TryOpen"/>).</summary>
    public static CheckedFile? TryOpenRegular(string path) => TryOpenNative(path, out _);

    private static CheckedFile? TryOpenNative(string path, out bool special) =>
        NativeFile.TryOpen(path, FileSource.SmallRead, out var stamp, out special) is { } native ? new CheckedFile(path, native, null, stamp) : null;

    public static CheckedFile Open(string path)
    {
        if (TryOpenNative(path, out var special) is { } file) return file;
        if (special)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument,
                $"Cannot open '{path}': it is not a regular file (a pipe, socket or device); give a checkpoint file or a DCP checkpoint folder, or its bytes with -InputStream");
        SafeFileHandle? handle = null;
        try
        {
            // SequentialScan: the kernel reads further ahead (a 1 GiB eager load from a cold disk, 5 alternating runs:
            // ~555 ms against ~620 ms with no hint, ~630 ms asking WILLNEED for the whole span first, and 1.15 s with
            // RandomAccess, which turned readahead off); storages and records are read front to back
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            return new CheckedFile(path, null, handle, Stamp(handle));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            handle?.Dispose();
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"Cannot open '{path}': {e.Message}", inner: e);
        }
    }

    private static NativeFile.Stamp Stamp(SafeFileHandle handle) => new(RandomAccess.GetLength(handle), File.GetLastWriteTimeUtc(handle).Ticks);

    public string Path { get; }
    public override long Length { get; }

    public override int Read(long offset, Span<byte> destination) =>
        _native is not null ? _native.Read(offset, destination) : RandomAccess.Read(_handle!, destination, offset);

    /// <summary>One statx (Linux) or two fstats: microseconds, once per read of a storage.</summary>
    public override bool HasChanged()
    {
        try { return _native is not null ? !_native.TryStat(out var now) || now != _opened : Stamp(_handle!) != _opened; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException) { return true; } // closed meanwhile: not the file that was read
    }

    /// <summary>
    /// Reads exactly destination.Length bytes at <paramref name="offset"/> for a storage that was loaded earlier;
    /// a file that is shorter now or was rewritten since it was opened gives CheckpointChanged, never mixed bytes.
    /// </summary>
    public void ReadChecked(long offset, Span<byte> destination, string? record)
    {
        var at = offset;
        try
        {
            for (var rest = destination; rest.Length > 0;)
            {
                var n = Read(at, rest);
                if (n <= 0) throw ChangedError(Path, null, record);
                rest = rest[n..];
                at += n;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ChangedError(Path, e, record);
        }
        catch (ObjectDisposedException e)
        {
            throw new InvalidOperationException("The storage's file was closed (the storage was disposed).", e);
        }
        if (HasChanged()) throw ChangedError(Path, null, record); // after the read: bytes read while it changed are not handed out
    }

    public static TorchLoadException ChangedError(string path, Exception? inner, string? record = null) =>
        new(TorchLoadErrorReason.CheckpointChanged,
            $"'{path}' changed after it was opened (another size or last-write time, e.g. torch.save rewrote it): its bytes are no longer those that were loaded. Load it again.",
            record, inner: inner);

    public void AddRef() => Interlocked.Increment(ref _refs);

    public override void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            _native?.Dispose();
            _handle?.Dispose();
        }
    }
}

/// <summary>A seekable stream, read in place from the position it had when the load began (one read at a time).</summary>
internal sealed class SeekableStreamReader : SourceReader
{
    private readonly Stream _stream;
    private readonly long _start;

    public SeekableStreamReader(Stream stream)
    {
        _stream = stream;
        _start = stream.Position;
        Length = Math.Max(stream.Length - _start, 0);
    }

    public override long Length { get; }

    public override int Read(long offset, Span<byte> destination)
    {
        lock (_stream)
        {
            _stream.Position = _start + offset;
            return _stream.Read(destination);
        }
    }

    public override void Release() { } // the caller's stream: the caller closes it
}

/// <summary>Bytes already in managed memory (a byte array, a MemoryStream's buffer): read without copying them first.</summary>
internal sealed class MemoryReader(byte[] array, int start, int length) : SourceReader
{
    public override long Length => length;

    public override int Read(long offset, Span<byte> destination)
    {
        if (offset >= length) return 0;
        var n = (int)Math.Min(destination.Length, length - offset);
        array.AsSpan(start + (int)offset, n).CopyTo(destination);
        return n;
    }

    public override void Release() { }
}

/// <summary>A non-seekable stream (GZipStream, an HTTP response) read to its end into native memory, within a limit.</summary>
internal sealed unsafe class BufferedStreamReader : SourceReader
{
    private byte* _data;
    private readonly long _length;

    private BufferedStreamReader(byte* data, long length)
    {
        _data = data;
        _length = length;
    }

    public static BufferedStreamReader ReadAll(Stream stream, long max, string name)
    {
        long capacity = 1 << 20, length = 0;
        var data = (byte*)NativeMemory.Alloc((nuint)capacity);
        try
        {
            while (true)
            {
                if (length == capacity)
                {
                    if (capacity > max) throw TooLong(name, max);
                    capacity = Math.Min(capacity * 2, max == long.MaxValue ? long.MaxValue : max + 1); // one byte past the limit tells "over it" from "exactly it"
                    data = (byte*)NativeMemory.Realloc(data, (nuint)capacity);
                }
                var n = stream.Read(new Span<byte>(data + length, (int)Math.Min(capacity - length, 1 << 30)));
                if (n <= 0) break;
                length += n;
                if (length > max) throw TooLong(name, max);
            }
            return new BufferedStreamReader(data, length);
        }
        catch
        {
            NativeMemory.Free(data);
            throw;
        }
    }

    private static TorchLoadException TooLong(string name, long max) =>
        new(TorchLoadErrorReason.LimitExceeded,
            $"The non-seekable stream {name} holds more than {max} bytes, the most that is buffered in memory to read it; raise -MaxStreamBytes, or pass a seekable stream (a FileStream) that is read in place")
        { LimitName = nameof(LoadLimits.MaxStreamBytes) };

    public override long Length => _length;

    public override int Read(long offset, Span<byte> destination)
    {
        if (offset >= _length) return 0;
        var n = (int)Math.Min(destination.Length, _length - offset);
        new ReadOnlySpan<byte>(_data + offset, n).CopyTo(destination);
        return n;
    }

    public override void Release()
    {
        NativeMemory.Free(_data);
        _data = null;
    }
}

/// <summary>
/// A storage whose bytes stay in the file (<c>-Mmap</c>): the load reads nothing and allocates nothing per byte,
/// and every read goes through the open file handle at the storage's offset (from the page cache, like touching
/// a mapping), checked against a rewrite of the file. A file truncated under it gives CheckpointChanged, where a
/// memory mapping would have killed the process with SIGBUS.
/// </summary>
internal sealed class FileBuffer : StorageBuffer
{
    private readonly CheckedFile _file;
    private readonly long _offset;
    private readonly string? _record;

    public FileBuffer(CheckedFile file, long offset, long length, string? record) : base(length)
    {
        if (offset < 0 || length < 0 || offset > file.Length - length) throw new ArgumentOutOfRangeException(nameof(offset));
        _file = file;
        _offset = offset;
        _record = record;
        file.AddRef();
    }

    public override string Device => "cpu";
    public override bool IsHostAccessible => false;
    public override unsafe byte* Pointer => throw new InvalidOperationException("An -Mmap storage's bytes are read from its file, not held in memory.");

    public override void CopyTo(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length - destination.Length) throw new ArgumentOutOfRangeException(nameof(offset));
        if (IsDisposed) throw new ObjectDisposedException(nameof(FileBuffer));
        _file.ReadChecked(_offset + offset, destination, _record);
    }

    protected override void Release() => _file.Release();
}
