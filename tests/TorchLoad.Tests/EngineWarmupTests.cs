using System.Reflection;
using TorchLoad.Core;

namespace TorchLoad.Tests;

/// <summary>
/// Methods marked AggressiveOptimization are not precompiled: the first call waits for the compiler unless
/// EngineWarmup compiled them at import. Every such method on the load and audit path must be in a type it warms.
/// </summary>
public class EngineWarmupTests
{
    // compiled on first use on purpose: statistics kernels and value conversions, never part of a plain load or audit
    private static readonly string[] CompiledOnFirstUse = ["TorchLoad.Core.Audit.HostReduction", "TorchLoad.Core.Tensors.TensorBytes"];

    [Fact]
    public void EveryAggressivelyOptimizedMethodIsWarmedOrKnownToCompileOnFirstUse()
    {
        var warmed = EngineWarmup.Types.ToHashSet();
        var notWarmed = typeof(EngineWarmup).Assembly.GetTypes()
            .Where(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Any(m => (m.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0))
            .Where(t => !IsWarmed(t, warmed) && !CompiledOnFirstUse.Any(n => t.FullName!.StartsWith(n, StringComparison.Ordinal)))
            .Select(t => t.FullName)
            .ToList();
        Assert.Empty(notWarmed);
    }

    // a closure (a local function's) is warmed with the type it is declared in; a named nested type is listed itself
    private static bool IsWarmed(Type t, HashSet<Type> warmed) =>
        warmed.Contains(t) || t.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute), false) && t.DeclaringType is { } d && IsWarmed(d, warmed);

    [Fact]
    public void EveryWarmedTypeHasAnAggressivelyOptimizedMethod()
    {
        foreach (var type in EngineWarmup.Types)
            Assert.Contains(type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly),
                m => (m.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0);
    }
}
