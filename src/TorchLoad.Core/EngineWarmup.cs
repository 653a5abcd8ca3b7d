using System.Reflection;
using System.Runtime.CompilerServices;

namespace TorchLoad.Core;

/// <summary>
/// The engine's hottest loops (the pickle machine, the zip directory reader, the unpickler's rebuilds) and the
/// methods every file goes through (opening, the zip reader, the load, the audit) are marked AggressiveOptimization:
/// compiled fully optimized on their first call instead of running precompiled code, which a load of 20,000 tensors
/// or an audit of 1,000 files needs, but which made a process's first load wait ~30 ms for the compiler. Precompiled
/// code calls through indirection cells and looks generic types up at run time, and inside PowerShell it is never
/// recompiled: 1000 audits took 55 -> 43 ms (medians of 8 pairs) with the per-file methods compiled.
/// <see cref="Start"/> compiles them on a thread-pool thread while PowerShell is still importing the module and
/// parsing the command; a load that comes first simply waits for the method it needs (the runtime compiles each
/// method once).
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
        typeof(Pickle.PickleMachine), typeof(Pickle.MemoReads), typeof(Pickle.TorchUnpickler), typeof(Archive.ZipDirectory),
        typeof(TorchLoader), typeof(Archive.FileSource), typeof(Archive.ZipCheckpoint), typeof(Audit.CheckpointAudit),
    ];

    private static void Compile()
    {
        try
        {
            foreach (var type in Types)
            {
                foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
                {
                    if ((method.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) == 0 || method.ContainsGenericParameters) continue;
                    RuntimeHelpers.PrepareMethod(method.MethodHandle);
                }
            }
        }
        catch (Exception)
        {
            // only ever a head start: anything that fails here compiles on first call as it always did
        }
    }
}
