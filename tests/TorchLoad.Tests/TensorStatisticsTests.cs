using System.Text.Json;
using TorchLoad.Core;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Devices;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Tests;

/// <summary>
/// Measure-TorchTensor's engine against real torch: Data/tensor-statistics.json holds, for every tensor of
/// the fixture sets (tests/fixtures) that torch 2.6 loads, the statistics torch computed in float64 (Data/make_expected.py).
/// Every one is measured on the host and with the ILGPU kernels on ilgpu-cpu; counts must be equal, the
/// rest within 1e-5 relative (of the value, or of the values' RMS for a mean or min/max near zero).
/// </summary>
public sealed class TensorStatisticsTests
{
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "TorchLoad.sln"))) return dir.FullName;
            throw new DirectoryNotFoundException($"No TorchLoad.sln above {AppContext.BaseDirectory}.");
        }
    }

    private static string DataDir => Path.Combine(RepoRoot, "tests", "TorchLoad.Tests", "Data");
    private static string Fixtures => Path.GetFullPath(Path.Combine(RepoRoot, "tests", "fixtures"));

    public static TheoryData<string, string> Files()
    {
        var data = new TheoryData<string, string>();
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDir, "tensor-statistics.json")));
        foreach (var f in json.RootElement.GetProperty("files").EnumerateArray())
        {
            data.Add(f.GetProperty("file").GetString()!, "cpu");
            data.Add(f.GetProperty("file").GetString()!, "ilgpu-cpu");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Statistics_match_torch(string file, string device)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDir, "tensor-statistics.json")));
        var entry = json.RootElement.GetProperty("files").EnumerateArray().Single(f => f.GetProperty("file").GetString() == file);
        var checkpoint = TorchLoader.Load(Path.Combine(Fixtures, file), new TorchLoadOptions
        {
            WeightsOnly = entry.GetProperty("weights_only").GetBoolean(), MapLocation = MapLocation.ToDevice("cpu"),
        });
        var tensors = TensorInfo.From(checkpoint.Root, hash: false).GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.First().Tensor!);
        foreach (var expected in entry.GetProperty("tensors").EnumerateArray())
        {
            var name = expected.GetProperty("name").GetString()!;
            Assert.True(tensors.TryGetValue(name, out var tensor), $"{file}: no tensor named '{name}' (have {string.Join(", ", tensors.Keys)})");
            var s = TensorStatistics.Measure(name, tensor!, device);
            var what = $"{file} {name} ({s.DType}) on {device}";
            Assert.Equal(expected.GetProperty("dtype").GetString(), s.DType);
            Assert.True(expected.GetProperty("count").GetInt64() == s.ElementCount, $"{what}: count {s.ElementCount}");
            Assert.True(expected.GetProperty("nan").GetInt64() == s.NaNCount, $"{what}: NaN {s.NaNCount}");
            Assert.True(expected.GetProperty("inf").GetInt64() == s.InfCount, $"{what}: Inf {s.InfCount}");
            Assert.True(expected.GetProperty("zero").GetInt64() == s.ZeroCount, $"{what}: zeros {s.ZeroCount}");
            Assert.True(expected.GetProperty("finite").GetInt64() == s.FiniteCount, $"{what}: finite {s.FiniteCount}");
            var finite = s.FiniteCount;
            var l2 = expected.GetProperty("l2").GetDouble();
            var rms = finite > 0 ? l2 / Math.Sqrt(finite) : 0;
            Close(what, "l2", l2, s.L2Norm, 0);
            Close(what, "min", Number(expected, "min"), s.Min, rms);
            Close(what, "max", Number(expected, "max"), s.Max, rms);
            Close(what, "mean", Number(expected, "mean"), s.Mean, rms);
            Close(what, "std", Number(expected, "std"), s.Std, 0);
        }
    }

    private static double? Number(JsonElement e, string name) => e.GetProperty(name).ValueKind == JsonValueKind.Null ? null : e.GetProperty(name).GetDouble();

    private static void Close(string what, string stat, double? expected, double? actual, double scale)
    {
        if (expected is null) { Assert.True(actual is null, $"{what}: {stat} {actual}, torch has none"); return; }
        Assert.True(actual is not null, $"{what}: {stat} missing, torch {expected}");
        var bound = 1e-5 * Math.Max(Math.Abs(expected.Value), scale);
        Assert.True(Math.Abs(actual!.Value - expected.Value) <= bound, $"{what}: {stat} {actual:R}, torch {expected:R}");
    }
}
