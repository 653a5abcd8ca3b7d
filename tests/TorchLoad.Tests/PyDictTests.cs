using System.Collections;
using System.Numerics;
using TorchLoad.Core.Pickle;

namespace TorchLoad.Tests;

/// <summary>PyDict's own ordered hash table: Python's key equality, insertion order, growth and removal.</summary>
public class PyDictTests
{
    [Fact]
    public void KeepsInsertionOrderThroughGrowthAndOverwrites()
    {
        var d = new PyDict("collections.OrderedDict");
        for (var i = 0; i < 50_000; i++) d.Set($"layer.{i}.weight", (long)i);
        d.Set("layer.7.weight", "replaced"); // keeps its position
        Assert.Equal(50_000, d.Count);
        var keys = d.KeyList.ToList();
        Assert.Equal("layer.0.weight", keys[0]);
        Assert.Equal("layer.7.weight", keys[7]);
        Assert.Equal("layer.49999.weight", keys[^1]);
        Assert.Equal("replaced", d["layer.7.weight"]);
        Assert.Equal(12345L, d["layer.12345.weight"]);
        Assert.False(d.ContainsKey("layer.50000.weight"));
    }

    [Fact]
    public void UsesPythonKeyEquality()
    {
        var d = new PyDict();
        d.Set(1L, "int");
        d.Set(1.0, "float");     // 1 == 1.0: same key, first key object kept
        d.Set(true, "bool");     // True == 1
        d.Set(null, "none");
        d.Set(new object?[] { 1L, "a" }, "tuple");
        d.Set(new BigInteger(1) << 70, "big");
        Assert.Equal(4, d.Count);
        Assert.Equal("bool", d[1L]);
        Assert.IsType<long>(d.KeyList.First());
        Assert.Equal("none", d[null]);
        Assert.Equal("tuple", d[new object?[] { 1.0, "a" }]);
        Assert.Equal("big", d[new BigInteger(1) << 70]);
        Assert.False(d.ContainsKey(2L));
    }

    [Fact]
    public void RemoveKeepsTheOrderOfTheRest()
    {
        IDictionary d = new PyDict();
        foreach (var k in new[] { "a", "b", "c", "d" }) d.Add(k, k.ToUpperInvariant());
        d.Remove("b");
        d.Remove("missing");
        Assert.Equal(new object?[] { "a", "c", "d" }, ((PyDict)d).KeyList);
        Assert.Equal("C", d["c"]);
        Assert.Throws<ArgumentException>(() => d.Add("a", 1));
        d.Clear();
        Assert.Empty(d);
        d.Add("e", 5);
        Assert.Equal(new object?[] { "e" }, ((PyDict)d).KeyList);
    }

    [Fact]
    public void EnumeratesAsADictionaryForPowerShell()
    {
        var d = new PyDict();
        d.Set("x", 1L);
        d.Set("y", 2L);
        var entries = new List<DictionaryEntry>();
        var e = d.GetEnumerator();
        while (e.MoveNext()) entries.Add(e.Entry);
        Assert.Equal(["x", "y"], entries.Select(x => x.Key));
        Assert.Equal([1L, 2L], entries.Select(x => x.Value));
        var copy = new DictionaryEntry[2];
        ((ICollection)d).CopyTo(copy, 0);
        Assert.Equal("y", copy[1].Key);
    }
}
