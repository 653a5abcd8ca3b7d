using System.Text.Json;
using TorchLoad.Core;
using TorchLoad.Core.Audit;

namespace TorchLoad.Tests;

/// <summary>
/// Compare-TorchCheckpoint's tolerances against torch.allclose: Data/allclose-reference.pt and
/// allclose-difference.pt hold tensor pairs, Data/allclose.json torch's answers (allclose, the elements
/// isclose rejects, the largest |a − b| and |a − b|/|b| and where), all from Data/make_expected.py.
/// </summary>
public sealed class ToleranceComparisonTests
{
    private static string Data => Path.Combine(TensorStatisticsTests.RepoRoot, "tests", "TorchLoad.Tests", "Data");

    private static List<TensorInfo> Rows(string file) =>
        TensorInfo.From(TorchLoader.Load(Path.Combine(Data, file), new TorchLoadOptions()).Root, hash: true).ToList();

    [Fact]
    public void Tolerances_agree_with_torch_allclose()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Data, "allclose.json")));
        var reference = Rows("allclose-reference.pt");
        var difference = Rows("allclose-difference.pt");
        var checkedCases = 0;
        foreach (var pair in json.RootElement.GetProperty("pairs").EnumerateArray())
        {
            var name = pair.GetProperty("name").GetString()!;
            var structural = pair.GetProperty("dtype_or_shape_differs").GetBoolean();
            var ra = reference.Where(r => r.Name == name).ToList();
            var rb = difference.Where(r => r.Name == name).ToList();
            foreach (var c in pair.GetProperty("cases").EnumerateArray())
            {
                var tolerance = new Tolerance(c.GetProperty("atol").GetDouble(), c.GetProperty("rtol").GetDouble(), c.GetProperty("equal_nan").GetBoolean());
                var row = Assert.Single(CheckpointComparison.Compare(ra, rb, includeEqual: true, tolerance));
                var what = $"{name} atol={tolerance.Absolute} rtol={tolerance.Relative} equal_nan={tolerance.EqualNaN}";
                var allclose = c.GetProperty("allclose").GetBoolean();
                Assert.True((allclose && !structural ? "Equal" : "Changed") == row.Change, $"{what}: {row.Change} [{string.Join(",", row.Changes)}]");
                Assert.True(row.Changes.Contains("Values") == !allclose, $"{what}: changes {string.Join(",", row.Changes)}");
                if (row.MismatchCount is { } m) Assert.True(c.GetProperty("mismatches").GetInt64() == m, $"{what}: {m} mismatches");
                if (pair.TryGetProperty("max_abs_diff", out var abs))
                {
                    Assert.True(row.MaxAbsDiff is not null, $"{what}: no MaxAbsDiff");
                    Assert.Equal(Number(abs), row.MaxAbsDiff!.Value, 12);
                    Assert.Equal(pair.GetProperty("max_diff_index").GetInt64(), row.MaxDiffIndex);
                    var rel = Number(pair.GetProperty("max_rel_diff"));
                    Assert.True(double.IsInfinity(rel) ? double.IsInfinity(row.MaxRelDiff!.Value) : Math.Abs(row.MaxRelDiff!.Value - rel) <= 1e-12 * rel, $"{what}: rel {row.MaxRelDiff} vs {rel}");
                }
                else Assert.True(row.MaxAbsDiff is null or 0, $"{what}: MaxAbsDiff {row.MaxAbsDiff}");
                checkedCases++;
            }
        }
        Assert.True(checkedCases >= 90, $"only {checkedCases} cases");
    }

    /// <summary>+Inf is stored as "inf" (JSON has no infinity).</summary>
    private static double Number(JsonElement e) => e.ValueKind == JsonValueKind.String ? double.PositiveInfinity : e.GetDouble();

    [Fact]
    public void Without_a_tolerance_any_byte_change_is_a_change_and_says_by_how_much()
    {
        var rows = CheckpointComparison.Compare(Rows("allclose-reference.pt"), Rows("allclose-difference.pt"), includeEqual: false).ToDictionary(r => r.Name);
        var tiny = rows["f32_tiny"];
        Assert.Equal(["Values"], tiny.Changes);
        Assert.InRange(tiny.MaxAbsDiff!.Value, 1e-8, 1e-6);
        Assert.Equal(["Shape"], rows["shape_differs"].Changes);
        Assert.Null(rows["shape_differs"].MaxAbsDiff);
        Assert.Contains("DType", rows["dtype_differs"].Changes);
        Assert.False(rows.ContainsKey("f32_equal"));
        Assert.False(rows.ContainsKey("f32_nan_both")); // identical bytes
    }
}
