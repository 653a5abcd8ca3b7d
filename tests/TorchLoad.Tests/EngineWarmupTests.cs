using System.Reflection;
using TorchLoad.Core;

namespace TorchLoad.Tests;

/// <summary>
/// Methods marked AggressiveOptimization are not precompiled: the first call waits for the compiler unless
/// EngineWarmup compiled them at import. Every such method on the load and audit path must be one it compiles.
/// </summary>
public class EngineWarmupTests
{
    // compiled on first use on purpose: statistics kernels and value conversions, never part of a plain load or audit
    private static readonly string[] CompiledOnFirstUse = ["TorchLoad.Core.Audit.HostReduction", "TorchLoad.Core.Tensors.TensorBytes"];

    [Fact]
    public void EveryAggressivelyOptimizedMethodIsWarmedOrKnownToCompileOnFirstUse()
    {
        var warmed = EngineWarmup.Methods().ToHashSet();
        var notWarmed = typeof(EngineWarmup).Assembly.GetTypes()
            .Where(t => !CompiledOnFirstUse.Any(n => t.FullName!.StartsWith(n, StringComparison.Ordinal)))
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => (m.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0 && !m.ContainsGenericParameters && !warmed.Contains(m))
            .Select(m => $"{m.DeclaringType!.FullName}.{m.Name}")
            .ToList();
        Assert.Empty(notWarmed);
    }

    [Fact]
    public void ALocalFunctionIsWarmedWithItsType()
    {
        // ZipCheckpoint.Load's persistent_load is a local function: a method of a compiler-made closure class
        Assert.Contains(EngineWarmup.Methods(), m => m.DeclaringType!.DeclaringType == typeof(TorchLoad.Core.Archive.ZipCheckpoint) && m.Name.Contains("PersistentLoad"));
    }

    [Fact]
    public void EveryWarmedTypeHasAnAggressivelyOptimizedMethod()
    {
        foreach (var type in EngineWarmup.Types)
            Assert.Contains(type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly),
                m => (m.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0);
    }
}
