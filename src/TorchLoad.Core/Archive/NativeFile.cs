using System.Runtime.InteropServices;
using System.Text;

namespace TorchLoad.Core.Archive;

/// <summary>
/// A regular file opened read-only through libc on Linux: open, statx, pread, statx, close; five system calls
/// to read a small checkpoint where .NET's file handle makes eleven (it also takes and drops an advisory flock,
/// which only other .NET programs look at, and asks fstat three times). Anything unusual (no libc calls, a path
/// that does not open, a folder) gives null, and the caller opens the path through .NET, which says why; a pipe,
/// socket or device is reported as such (.NET's open would wait for a FIFO's writer forever).
/// </summary>
internal sealed unsafe class NativeFile : SafeHandle
{
    private NativeFile() : base(-1, ownsHandle: true) { }

    public override bool IsInvalid => handle == -1;

    protected override bool ReleaseHandle() => LibC.Close((int)handle) == 0;

    /// <summary>The file's size and last-write time (nanoseconds since 1970), as one identity.</summary>
    public readonly record struct Stamp(long Length, long LastWrite);

    /// <summary>
    /// Opens <paramref name="path"/> when it is a regular file, or null (<paramref name="special"/>: it is a pipe, socket or device). Files larger than
    /// <paramref name="sequentialAbove"/> get the kernel's sequential read-ahead hint (storages are read front to
    /// back; a small file is read whole in one call anyway).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static NativeFile? TryOpen(string path, long sequentialAbove, out Stamp stamp, out bool special)
    {
        stamp = default;
        special = false;
        if (!LibC.HasFileCalls || path.Length == 0 || path.Contains('\0')) return null;
        var max = Encoding.UTF8.GetMaxByteCount(path.Length) + 1;
        Span<byte> name = max <= 1024 ? stackalloc byte[max] : new byte[max];
        name[Encoding.UTF8.GetBytes(path, name)] = 0;
        int fd;
        // O_NONBLOCK: opening a FIFO must not wait for a writer (a regular file's reads ignore the flag)
        fixed (byte* p = name) fd = LibC.Open(p, LibC.ORdOnly | LibC.OCloExec | LibC.ONoCtty | LibC.ONonBlock, 0);
        if (fd < 0) return null;
        var file = new NativeFile();
        file.SetHandle(fd);
        if (!file.TryStat(out stamp, out var mode) || (mode & LibC.SIfMt) != LibC.SIfReg)
        {
            file.Dispose();
            special = (mode & LibC.SIfMt) is not (0 or LibC.SIfDir);
            return null;
        }
        if (stamp.Length > sequentialAbove) _ = LibC.Fadvise(fd, 0, 0, LibC.FadvSequential);
        return file;
    }

    /// <summary>One statx of the open file; false when it fails (the file is then not the one that was opened).</summary>
    public bool TryStat(out Stamp stamp) => TryStat(out stamp, out _);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool TryStat(out Stamp stamp, out int mode)
    {
        var added = false;
        try
        {
            DangerousAddRef(ref added);
            LibC.StatxBuffer st;
            byte empty = 0;
            if (LibC.Statx((int)handle, &empty, LibC.AtEmptyPath, LibC.StatxBasicStats, &st) != 0 || st.Size > long.MaxValue)
            {
                (stamp, mode) = (default, 0);
                return false;
            }
            stamp = new Stamp((long)st.Size, st.MtimeSeconds * 1_000_000_000 + st.MtimeNanoseconds);
            mode = st.Mode;
            return true;
        }
        finally
        {
            if (added) DangerousRelease();
        }
    }

    /// <summary>pread: up to destination.Length bytes at <paramref name="offset"/>, 0 at the end of the file.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int Read(long offset, Span<byte> destination)
    {
        var added = false;
        try
        {
            DangerousAddRef(ref added); // throws ObjectDisposedException once closed, as RandomAccess.Read does
            fixed (byte* p = destination)
            {
                while (true)
                {
                    var n = LibC.Pread((int)handle, p, (nuint)destination.Length, offset);
                    if (n >= 0) return (int)n;
                    var errno = Marshal.GetLastSystemError();
                    if (errno != LibC.EIntr) throw new IOException(Marshal.GetPInvokeErrorMessage(errno), errno);
                }
            }
        }
        finally
        {
            if (added) DangerousRelease();
        }
    }
}
