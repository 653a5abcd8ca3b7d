using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Tests;

/// <summary>The object-graph walker behind Get-TorchTensor, Get-TorchStorage and the audits.</summary>
public class TensorWalkerTests
{
    private static TorchTensor Scalar() => new(TorchDType.Float32, [], [], 0, new TorchStorage("0", TorchDType.Float32, 1, "cpu"));

    [Fact]
    public void Paths_AreDottedKeysAndIndices()
    {
        var inner = new PyDict("dict");
        inner.Set("weight", Scalar());
        var root = new PyDict("collections.OrderedDict");
        root.Set("layer", new List<object?> { null, inner });
        root.Set(3L, Scalar());
        var found = TensorWalker.Walk(root).Select(f => f.Path).ToArray();
        Assert.Equal(new[] { "layer.1.weight", "3" }, found);
    }

    [Fact]
    public void DeepNesting_CostsLinearNotQuadraticMemory()
    {
        // bad/deep_nesting_100k_lists.pt: building every level's dotted path made 100,000 levels cost ~10^10
        // bytes of strings (about 20 s); paths are now text only for what is reported
        object? root = Scalar();
        for (var i = 0; i < 100_000; i++) root = new List<object?> { root };
        var before = GC.GetAllocatedBytesForCurrentThread();
        var found = Assert.Single(TensorWalker.Walk(root));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(199_999, found.Path.Length); // "0.0. ... .0": the one path reported is whole
        Assert.True(allocated < 64L << 20, $"walking 100,000 nested lists allocated {allocated:N0} bytes");
    }
}
