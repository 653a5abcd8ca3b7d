using System.Text.Json;
using TorchLoad.Core;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Tests;

/// <summary>
/// The default tensor view against torch's own repr: Data/repr-cases.pt holds tensors, Data/repr.json what
/// torch 2.6 printed for each (Data/make_expected.py): summarisation, widths, fixed/scientific/integer modes,
/// NaN/Inf, dtypes, complex, quantized, views.
/// </summary>
public sealed class TensorFormatterTests
{
    private static string Data => Path.Combine(TensorStatisticsTests.RepoRoot, "tests", "TorchLoad.Tests", "Data");

    public static TheoryData<string> Cases()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Data, "repr.json")));
        var data = new TheoryData<string>();
        foreach (var p in json.RootElement.GetProperty("reprs").EnumerateObject()) data.Add(p.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Repr_matches_torch(string name)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Data, "repr.json")));
        var expected = json.RootElement.GetProperty("reprs").GetProperty(name).GetString();
        var root = (PyDict)TorchLoader.Load(Path.Combine(Data, "repr-cases.pt"), new TorchLoadOptions()).Root!;
        var tensor = (TorchTensor)root[name]!;
        Assert.Equal(expected, TensorFormatter.Repr(tensor));
    }

    [Fact]
    public void The_view_is_a_header_and_a_few_lines_for_a_large_tensor()
    {
        var root = (PyDict)TorchLoader.Load(Path.Combine(Data, "repr-cases.pt"), new TorchLoadOptions()).Root!;
        var text = ((TorchTensor)root["f32_summarized_2d"]!).ToTorchString();
        var lines = text.Split('\n');
        Assert.Equal("Tensor float32 (40, 50) on cpu", lines[0]);
        Assert.InRange(lines.Length, 3, 9);
        Assert.Contains("...", text);
        Assert.All(lines, l => Assert.True(l.Length <= 80, l));
    }

    [Fact]
    public void Bits_dtypes_print_their_codes()
    {
        var path = Path.Combine(TensorStatisticsTests.RepoRoot, "tests", "fixtures", "torch-2.6", "v3_bits.pt");
        var root = TorchLoader.Load(path, new TorchLoadOptions()).Root;
        var bits16 = TensorInfo.From(root, hash: false).Select(r => r.Tensor!).First(t => t.DType == TorchDType.Bits16);
        var codes = ((ushort[])ElementConverter.ToArray(TorchDType.UInt16, bits16.ToByteArray())).Take(3).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var shown = System.Text.RegularExpressions.Regex.Matches(TensorFormatter.Repr(bits16), @"\d+").Select(m => m.Value).Take(3);
        Assert.Equal(codes, shown);
    }
}
