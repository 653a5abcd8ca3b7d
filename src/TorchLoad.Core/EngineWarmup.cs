using System.Reflection;

namespace TorchLoad.Core;

/// <summary>
/// The engine's hottest loops (the pickle machine, the zip directory reader, the unpickler's rebuilds), the pickle
/// machine's per-opcode helpers and the methods every file goes through (opening, reading, the zip reader, the load,
/// the audit) are marked AggressiveOptimization: compiled fully optimized on their first call instead of running
/// precompiled code, which a load of 20,000 tensors or an audit of 1,000 files needs, but which made a process's
/// first load wait ~30 ms for the compiler. Precompiled code calls through indirection cells, goes through a stub
/// for each native call (pread, statx) and looks generic types up at run time, and inside PowerShell it is never
/// recompiled: 1000 audits took 55 -> 43 ms (medians of 8 pairs) with the per-file methods compiled, and
/// 67 -> 55 ms of CPU (process, 8 pairs) with the helpers and the open/stat/read path too.
/// <see cref="Start"/> compiles them on a thread-pool thread while PowerShell is still importing the module and
/// parsing the command; a load that comes first simply waits for the method it needs (the runtime compiles each
/// method once). Marked or not is measured, not guessed: a method the audit calls once per file and that takes
/// long to compile (TensorWalker's cursor, the shape check) stays precompiled.
/// </summary>
public static class EngineWarmup
{
    private static int _started;

    /// <summary>Starts compiling, once per process; never throws, never blocks.</summary>
    public static void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) return;
        ThreadPool.UnsafeQueueUserWorkItem(static _ => Compile(), null);
    }

    /// <summary>The types whose AggressiveOptimization methods are compiled ahead (the others compile on first use: statistics, conversions).</summary>
    internal static IReadOnlyList<Type> Types { get; } =
    [
        typeof(Pickle.PickleMachine), typeof(Pickle.MemoReads), typeof(Pickle.MemoIndexSet), typeof(Pickle.RecentStrings),
        typeof(Pickle.PyDict), typeof(Pickle.TorchUnpickler), typeof(Archive.ZipDirectory), typeof(Archive.ZipRecords),
        typeof(Archive.DataRecords), typeof(Archive.NamedRecords), typeof(Archive.RecordBytes), typeof(Archive.NativeFile),
        typeof(Archive.LoadSession), typeof(TorchLoader), typeof(Archive.FileSource), typeof(Archive.ZipCheckpoint),
        typeof(Audit.TensorInfo), typeof(Audit.CheckpointAudit),
    ];

    /// <summary>What <see cref="Start"/> compiles: the AggressiveOptimization methods of <see cref="Types"/> and of the closures nested in them (a local function's).</summary>
    internal static IEnumerable<MethodInfo> Methods() => Types.SelectMany(Marked);

    private static IEnumerable<MethodInfo> Marked(Type type)
    {
        foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            if ((method.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0 && !method.ContainsGenericParameters) yield return method;
        foreach (var nested in type.GetNestedTypes(BindingFlags.NonPublic)) // a named nested type is listed itself
            if (nested.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) && !nested.ContainsGenericParameters)
                foreach (var method in Marked(nested)) yield return method;
    }

    private static void Compile()
    {
        try
        {
            foreach (var method in Methods()) RuntimeHelpers.PrepareMethod(method.MethodHandle);
        }
        catch (Exception)
        {
            // only ever a head start: anything that fails here compiles on first call as it always did
        }
    }
}
