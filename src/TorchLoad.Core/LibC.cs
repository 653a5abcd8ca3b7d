using System.Runtime.InteropServices;

namespace TorchLoad.Core;

/// <summary>
/// The libc calls TorchLoad makes on Linux, looked up once. Each is a shortcut: where libc or a call is missing
/// (other systems, old glibc) its pointer is null and the caller takes the portable .NET path instead.
/// </summary>
internal static unsafe class LibC
{
    /// <summary>madvise(addr, length, advice): MADV_POPULATE_WRITE backs fresh memory with pages in one call.</summary>
    public static readonly delegate* unmanaged<IntPtr, nuint, int, int> Madvise = (delegate* unmanaged<IntPtr, nuint, int, int>)Find("madvise");

    public const int MadvPopulateWrite = 23;

    // The file calls (NativeFile). .NET's File.OpenHandle makes seven system calls to open a file (open, fstat,
    // flock, fadvise, two fstats for the length and the time, and flock again to close it); a 5 KB checkpoint is
    // then mostly system calls. Only where the open flags below are the kernel's (x64 and arm64 Linux).
    public static readonly delegate* unmanaged<byte*, int, int, int> Open = (delegate* unmanaged<byte*, int, int, int>)FindFileCall("open");
    public static readonly delegate* unmanaged<int, byte*, int, uint, void*, int> Statx = (delegate* unmanaged<int, byte*, int, uint, void*, int>)FindFileCall("statx");
    public static readonly delegate* unmanaged<int, void*, nuint, long, nint> Pread = (delegate* unmanaged<int, void*, nuint, long, nint>)FindFileCall("pread");
    public static readonly delegate* unmanaged<int, long, long, int, int> Fadvise = (delegate* unmanaged<int, long, long, int, int>)FindFileCall("posix_fadvise");
    public static readonly delegate* unmanaged<int, int> Close = (delegate* unmanaged<int, int>)FindFileCall("close");

    /// <summary>True when every file call was found.</summary>
    public static bool HasFileCalls => Open is not null && Statx is not null && Pread is not null && Fadvise is not null && Close is not null;

    public const int ORdOnly = 0, ONoCtty = 0x100, ONonBlock = 0x800, OCloExec = 0x80000;
    public const int AtEmptyPath = 0x1000;
    public const uint StatxBasicStats = 0x7FF;
    public const int FadvSequential = 2;
    public const int SIfMt = 0xF000, SIfReg = 0x8000, SIfDir = 0x4000;
    public const int EIntr = 4;

    /// <summary>struct statx: the same layout on every Linux architecture.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatxBuffer
    {
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(112)] public long MtimeSeconds;
        [FieldOffset(120)] public uint MtimeNanoseconds;
    }

    private static IntPtr FindFileCall(string export) =>
        RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64 ? Find(export) : IntPtr.Zero;

    private static IntPtr Find(string export)
    {
        if (!OperatingSystem.IsLinux()) return IntPtr.Zero;
        foreach (var name in new[] { "libc.so.6", "libc" })
        {
            if (NativeLibrary.TryLoad(name, out var lib) && NativeLibrary.TryGetExport(lib, export, out var fn)) return fn;
        }
        return IntPtr.Zero;
    }
}
