using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace TorchLoad.Commands;

/// <summary>
/// Loads TorchLoad.Core and its dependencies (ILGPU, SharpZipLib) from <c>deps/</c> into a private
/// AssemblyLoadContext, so another module's version of those libraries cannot break TorchLoad
/// (and ours cannot break it). Only the name TorchLoad.Core is resolved from the default context;
/// everything else is found by the private context itself.
/// </summary>
public sealed class ModuleInit : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly string DepsDir = Path.Combine(Path.GetDirectoryName(typeof(ModuleInit).Assembly.Location)!, "deps");

    public void OnImport()
    {
        if (Directory.Exists(DepsDir)) AssemblyLoadContext.Default.Resolving += ResolveCore; // else flat layout (tests from bin/): nothing to isolate
        // the engine's hot loops compile on a pool thread while PowerShell finishes the import and parses the command
        ThreadPool.UnsafeQueueUserWorkItem(static _ => StartEngineWarmup(), null);
    }

    // its own method, so that loading TorchLoad.Core (named in its body) happens on the pool thread too
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void StartEngineWarmup()
    {
        try { Core.EngineWarmup.Start(); }
        catch (Exception) { } // a head start only: the first load compiles what it needs as before
    }

    public void OnRemove(PSModuleInfo psModuleInfo) => AssemblyLoadContext.Default.Resolving -= ResolveCore;

    private static Assembly? ResolveCore(AssemblyLoadContext context, AssemblyName name) =>
        name.Name == "TorchLoad.Core" ? DependencyLoadContext.Instance.LoadFromAssemblyName(name) : null;
}

/// <summary>
/// The private load context over <c>deps/</c>; framework assemblies fall through to the default context.
/// On .NET 10 and later it loads <c>deps/net10.0/</c> when the build staged it: the same engine compiled
/// ReadyToRun for .NET 10. A runtime only uses precompiled code of its own major version, so without it
/// PowerShell 7.6 would JIT every method of the engine from scratch on each first call.
/// </summary>
internal sealed class DependencyLoadContext : AssemblyLoadContext
{
    private static readonly string DepsDir = PickDeps(Path.Combine(Path.GetDirectoryName(typeof(DependencyLoadContext).Assembly.Location)!, "deps"));

    private static string PickDeps(string deps)
    {
        var net10 = Path.Combine(deps, "net10.0");
        return Environment.Version.Major >= 10 && File.Exists(Path.Combine(net10, "TorchLoad.Core.dll")) ? net10 : deps;
    }

    public static readonly DependencyLoadContext Instance = new();

    private DependencyLoadContext() : base("TorchLoad") { }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        var path = Path.Combine(DepsDir, assemblyName.Name + ".dll");
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }
}
