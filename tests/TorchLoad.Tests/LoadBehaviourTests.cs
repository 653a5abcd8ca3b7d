using TorchLoad.Core;
using TorchLoad.Core.Errors;

namespace TorchLoad.Tests;

/// <summary>Cancellation (Ctrl+C) and progress reporting of a load, on real torch 1.13 files.</summary>
public sealed class LoadBehaviourTests
{
    private static string Fixture(string name) =>
        Path.Combine(Path.GetDirectoryName(FuzzRegressionTests.RegressionDir)!, "..", "fixtures", "torch-1.13", name);

    [Fact]
    public void CancelledLoad_IsTypedCancelled()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var e = Assert.Throws<TorchLoadException>(() => TorchLoader.Load(Fixture("large_1m_f32.pt"), new TorchLoadOptions { Cancellation = cts.Token }));
        Assert.Equal(TorchLoadErrorReason.Cancelled, e.Reason);
    }

    [Fact]
    public void Progress_EndsAtTheTotalOfStorageBytes()
    {
        var calls = new List<(long Done, long Total)>();
        var checkpoint = TorchLoader.Load(Fixture("large_1m_f32.pt"), new TorchLoadOptions { Progress = (d, t) => calls.Add((d, t)) });
        var total = checkpoint.Storages.Sum(s => s.ByteLength);
        Assert.NotEmpty(calls);
        Assert.Equal((total, total), calls[^1]);
        Assert.All(calls, c => Assert.InRange(c.Done, 0, c.Total));
    }
}
