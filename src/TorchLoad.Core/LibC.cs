using System.Runtime.InteropServices;

namespace TorchLoad.Core;

/// <summary>
/// The libc call TorchLoad makes on Linux, looked up once; a hint, so where libc or the call is missing (other
/// systems, old kernels) it is null and nothing changes but speed.
/// </summary>
internal static unsafe class LibC
{
    /// <summary>madvise(addr, length, advice): MADV_POPULATE_WRITE backs fresh memory with pages in one call.</summary>
    public static readonly delegate* unmanaged<IntPtr, nuint, int, int> Madvise = Find("madvise");

    public const int MadvPopulateWrite = 23;

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
