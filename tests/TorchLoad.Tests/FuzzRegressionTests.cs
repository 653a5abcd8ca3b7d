using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Tests;

/// <summary>
/// Replays every input in tests/TorchLoad.Tests/FuzzRegressions (crashes and hangs the fuzzer found, plus queue
/// inputs that reached new paths; see fuzz/README.md): TorchLoader.Load must return or throw TorchLoadException,
/// within 10 s, with weights_only true and false, and gathering every tensor's bytes must not throw either.
/// The folder is found from the source tree (walk up from the test output to the folder holding TorchLoad.sln),
/// so new inputs need no project change.
/// </summary>
public sealed class FuzzRegressionTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    public static string RegressionDir
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "TorchLoad.sln")))
                    return Path.Combine(dir.FullName, "tests", "TorchLoad.Tests", "FuzzRegressions");
            throw new DirectoryNotFoundException($"No TorchLoad.sln above {AppContext.BaseDirectory}.");
        }
    }

    public static TheoryData<string, bool> Inputs()
    {
        var data = new TheoryData<string, bool>();
        foreach (var file in Directory.EnumerateFiles(RegressionDir).Where(f => !f.EndsWith(".md", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(file), true);
            data.Add(Path.GetFileName(file), false);
        }
        return data;
    }

    [Fact]
    public void RegressionFolderHasInputs()
    {
        Assert.True(Directory.Exists(RegressionDir), $"missing {RegressionDir}");
        Assert.Contains(Directory.EnumerateFiles(RegressionDir), f => !f.EndsWith(".md", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void LoadEndsWithResultOrTorchLoadException(string name, bool weightsOnly)
    {
        var path = Path.Combine(RegressionDir, name);
        // A dedicated thread so a hang fails the test after the deadline instead of stalling the run.
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try { LoadAndGather(path, weightsOnly); }
            catch (TorchLoadException) { }
            catch (Exception e) { failure = e; }
        }, 16 * 1024 * 1024) { IsBackground = true, Name = $"fuzz-regression {name}" };
        thread.Start();
        Assert.True(thread.Join(Deadline), $"{name} (weights_only={weightsOnly}) did not finish within {Deadline.TotalSeconds} s");
        if (failure is not null)
            Assert.Fail($"{name} (weights_only={weightsOnly}) threw {failure.GetType().FullName}, not TorchLoadException:\n{failure}");
    }

    private static void LoadAndGather(string path, bool weightsOnly)
    {
        var checkpoint = TorchLoader.Load(path, new TorchLoadOptions { WeightsOnly = weightsOnly });
        try
        {
            foreach (var found in TensorWalker.Walk(checkpoint.Root))
            {
                if (found.Tensor is { IsNested: false, Storage.Buffer: not null } t && t.Layout == TorchLayout.Strided) _ = t.ToByteArray();
                else if (found.Tensor is null && found.Storage is { Buffer: not null } s) _ = s.ToByteArray();
            }
        }
        finally
        {
            foreach (var s in checkpoint.Storages) s.Buffer?.Dispose();
        }
    }
}
