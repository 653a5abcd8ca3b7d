using System.Reflection;
using System.Runtime.CompilerServices;

namespace TorchLoad.Core;

/// <summary>
/// The engine's hottest loops (the pickle machine, the zip directory reader, the unpickler's rebuilds) are marked
/// AggressiveOptimization: compiled fully optimized on their first call instead of running precompiled code, which
/// a load of 20,000 tensors or an audit of 1,000 files needs, but which made a process's first load wait ~30 ms for
/// the compiler. <see cref="Start"/> compiles them on a thread-pool thread while PowerShell is still importing the
/// module and parsing the command; a load that comes first simply waits for the method it needs (the runtime
/// compiles each method once).
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

    private static void Compile()
    {
        try
        {
            foreach (var type in new[] { typeof(Pickle.PickleMachine), typeof(Pickle.TorchUnpickler), typeof(Archive.ZipDirectory) })
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
