using TorchLoad.Core;
using TorchLoad.Core.Errors;

namespace TorchLoad.Tests;

/// <summary>
/// The fuzzer's findings, each with the exact reason it must be refused with (the regression theory
/// only checks that a TorchLoadException comes out; these pin the reason, so a raw exception that a
/// catch-all turned into MalformedPickle would fail here).
/// </summary>
public sealed class FuzzFindingTests
{
    private static string Input(string name) => Path.Combine(FuzzRegressionTests.RegressionDir, name);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void CorruptDeflateHuffmanTable_IsInvalidArchive(bool weightsOnly)
    {
        var e = Assert.Throws<TorchLoadException>(() => TorchLoader.Load(Input("zip-corrupt-deflate-inflater-indexoutofrange.bin"), new TorchLoadOptions { WeightsOnly = weightsOnly }));
        Assert.Equal(TorchLoadErrorReason.InvalidArchive, e.Reason);
        Assert.Contains("corrupt", e.Message);
    }

    [Fact]
    public void TarStorageKeyDeclaredTwice_IsDuplicateRecord()
    {
        var e = Assert.Throws<TorchLoadException>(() => TorchLoader.Load(Input("tar-duplicate-storage-key-masked-argumentexception.bin"), new TorchLoadOptions { WeightsOnly = false }));
        Assert.Equal(TorchLoadErrorReason.DuplicateRecord, e.Reason);
    }

    [Fact]
    public void ExpandedViewLargerThanAnArray_ToByteArrayIsLimitExceeded()
    {
        var checkpoint = TorchLoader.Load(Input("tar-stride0-huge-numel-tobytearray-overflow.min.bin"), new TorchLoadOptions { WeightsOnly = false });
        var huge = Core.Tensors.TensorWalker.Walk(checkpoint.Root).Select(f => f.Tensor).Single(t => t is { Stride: [0] });
        var e = Assert.Throws<TorchLoadException>(() => huge!.ToByteArray());
        Assert.Equal(TorchLoadErrorReason.LimitExceeded, e.Reason);
    }
}
