using System.Runtime.InteropServices;

namespace TorchLoad.Core;

/// <summary>
/// The two libc calls TorchLoad makes on Linux, looked up once; both are hints, so where libc or the call is
/// missing (other systems, old kernels) they are null and nothing changes but speed.
/// </summary>
internal static unsafe class LibC
{
    /// <summary>madvise(addr, length, advice): MADV_POPULATE_WRITE backs fresh memory with pages in one call.</summary>
    public static readonly delegate* unmanaged<IntPtr, nuint, int, int> Madvise = Find("madvise");

    /// <summary>posix_fadvise(fd, offset, length, advice): POSIX_FADV_WILLNEED starts reading a range into the page cache.</summary>
    public static readonly delegate* unmanaged<int, long, long, int, int> Fadvise = (delegate* unmanaged<int, long, long, int, int>)Find("posix_fadvise");

    public const int MadvPopulateWrite = 23, FadvWillNeed = 3;

    private static delegate* unmanaged<IntPtr, nuint, int, int> Find(string export)
    {
        if (!OperatingSystem.IsLinux()) return null;
        foreach (var name in new[] { "libc.so.6", "libc" })
        {
            if (NativeLibrary.TryLoad(name, out var lib) && NativeLibrary.TryGetExport(lib, export, out var fn))
                return (delegate* unmanaged<IntPtr, nuint, int, int>)fn;
        }
        return null;
    }
}
