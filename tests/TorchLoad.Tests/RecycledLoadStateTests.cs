using System.Text;
using TorchLoad.Core;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// What one load hands on to the next, so that a thousand small checkpoints allocate little: the pickle machine's
/// pooled stack, marks and memo, the per-thread table of short strings, the allowlist's shared globals, and the
/// scans that replace small dictionaries. None of it may carry a value, a limit or a name from one load into another.
/// </summary>
public class RecycledLoadStateTests
{
    private static readonly TorchLoadOptions Permissive = new() { WeightsOnly = false };

    private static TorchCheckpoint Load(byte[] pickle, TorchLoadOptions? options = null) => CheckpointBuilder.Load(CheckpointBuilder.ZipOf(pickle), options);

    private static TorchLoadException Fails(byte[] pickle, TorchLoadErrorReason reason, TorchLoadOptions? options = null) =>
        CheckpointBuilder.Fails(CheckpointBuilder.ZipOf(pickle), reason, options);

    // index, filler: memo entries kept before it (a chunk past the first is made only once the memo holds enough)
    [Theory]
    [InlineData(7u, 0)]      // the first chunk
    [InlineData(100u, 1)]    // the first chunk, grown
    [InlineData(5000u, 2100)] // the second chunk
    public void AFailedRun_LeavesNoMemoEntryForTheNext(uint index, int filler)
    {
        PickleBuilder Filled()
        {
            var p = new PickleBuilder().Proto(2);
            for (var i = 0; i < filler; i++) p.Int(i).Op('r').U32((uint)i + 10_000).Op('j').U32((uint)i + 10_000).Op('0').Op('0');
            return p;
        }
        // the first pickle keeps a value at index (it reads it back) and fails on a byte that is no opcode
        Fails(Filled().Int(41).Op('r').U32(index).Op('j').U32(index).Raw(0xFF).ToArray(), TorchLoadErrorReason.UnsupportedOpcode);
        // the next writes the slot beside it (the same chunk, rented again) and reads index before writing it
        var e = Fails(Filled().Int(1).Op('r').U32(index + 1).Op('j').U32(index + 1).Op('j').U32(index).Stop().ToArray(), TorchLoadErrorReason.MalformedPickle);
        Assert.Contains("read before it is written", e.Message);
        Assert.Equal(42L, Load(Filled().Int(42).Op('r').U32(index).Op('j').U32(index).Stop().ToArray()).Root);
    }

    [Fact]
    public void AFailedRun_LeavesNoStackOrMarksForTheNext()
    {
        var deep = new PickleBuilder().Proto(2);
        for (var i = 0; i < 100; i++) deep.Mark().Int(i); // past the first rented stack and marks
        Fails(deep.Raw(0xFF).ToArray(), TorchLoadErrorReason.UnsupportedOpcode);
        Assert.Equal(new object?[] { 1L, 2L }, Assert.IsType<object?[]>(Load(new PickleBuilder().Proto(2).Mark().Int(1).Int(2).Tuple().Stop().ToArray()).Root));
        Fails(new PickleBuilder().Proto(2).Tuple().Stop().ToArray(), TorchLoadErrorReason.MalformedPickle); // no MARK left over
    }

    // The stack is a pooled array, possibly longer than asked: the limit is the limit, not the array's length
    // (before the pool, a limit under the first 16 slots let 16 values through).
    [Theory]
    [InlineData(5)]
    [InlineData(40)]
    [InlineData(100)]
    public void MaxStackItems_IsExact(int limit)
    {
        var options = new TorchLoadOptions { Limits = LoadLimits.Default with { MaxStackItems = limit } };
        byte[] Nones(int n)
        {
            var p = new PickleBuilder().Proto(2);
            for (var i = 0; i < n; i++) p.None();
            return p.Stop().ToArray();
        }
        Assert.Null(Load(Nones(limit), options).Root);
        Assert.Equal(nameof(LoadLimits.MaxStackItems), Fails(Nones(limit + 1), TorchLoadErrorReason.LimitExceeded, options).LimitName);
    }

    // The per-thread table of short ASCII strings has 512 slots: 700 strings collide, and every one must still read as itself.
    [Fact]
    public void ShortStrings_ReadAsThemselves_ThroughTheirTable()
    {
        var expected = Enumerable.Range(0, 700).Select(i => i % 3 == 0 ? i.ToString() : new string((char)('a' + i % 26), 1 + i % 40) + i).ToList();
        expected.AddRange(["", "x", new string('y', 32), new string('z', 33), "modèle", "naïve ☃"]);
        byte[] ListOf(IEnumerable<string> items)
        {
            var p = new PickleBuilder().Proto(2).Raw((byte)']').Mark();
            foreach (var s in items) p.Str(s);
            return p.Raw((byte)'e').Stop().ToArray();
        }
        for (var round = 0; round < 2; round++) // the second round reads them from the table
        {
            var list = Assert.IsType<List<object?>>(Load(ListOf(expected)).Root);
            Assert.Equal(expected, list.Cast<string>());
        }
        var reversed = Assert.IsType<List<object?>>(Load(ListOf(Enumerable.Reverse(expected))).Root);
        Assert.Equal(Enumerable.Reverse(expected), reversed.Cast<string>());
    }

    [Fact]
    public void AnAllowlistedGlobal_IsOneObject_AndFoundHoweverItsNameIsSplit()
    {
        var a = Assert.IsType<PyGlobal>(Load(new PickleBuilder().Proto(2).Global("collections", "OrderedDict").Stop().ToArray()).Root);
        var b = Assert.IsType<PyGlobal>(Load(new PickleBuilder().Proto(2).Global("collections", "OrderedDict").Stop().ToArray(), Permissive).Root);
        Assert.Same(a, b); // immutable: one per allowlist entry
        Assert.Equal("collections.OrderedDict", a.ClassName);
        // torch keys its allowlist by "module.name": a split elsewhere names the same entry (safe mode allows it, as torch does)
        var split = Assert.IsType<PyGlobal>(Load(new PickleBuilder().Proto(2).Global("torch", "_utils._rebuild_tensor_v2").Stop().ToArray()).Root);
        Assert.Equal("torch._utils._rebuild_tensor_v2", split.ClassName);
        var unknown = Assert.IsType<PyGlobal>(Load(new PickleBuilder().Proto(2).Global("collections", "OrderedDicts").Stop().ToArray(), Permissive).Root);
        Assert.Equal("collections.OrderedDicts", unknown.ClassName);
        Fails(new PickleBuilder().Proto(2).Global("collections", "OrderedDicts").Stop().ToArray(), TorchLoadErrorReason.UnsafeGlobal);
    }

    // Globals are kept distinct by a scan up to a dozen, by a set past it; the audit counts them the same two ways.
    [Theory]
    [InlineData(3)]
    [InlineData(30)]
    public void Globals_AreListedOnceInOrder_AndCounted(int distinct)
    {
        var p = new PickleBuilder().Proto(2).Raw((byte)']').Mark();
        for (var round = 0; round < 2; round++)
            for (var i = 0; i < distinct; i++) p.Global("mod", $"f{i}");
        p.Global("collections", "OrderedDict").Raw((byte)'e').Stop();
        var expected = Enumerable.Range(0, distinct).Select(i => $"mod.f{i}").Append("collections.OrderedDict").ToList();
        Assert.Equal(expected, Load(p.ToArray(), Permissive).Globals);

        var path = Path.Combine(Path.GetTempPath(), $"torchload-globals-{Guid.NewGuid():N}.pt");
        File.WriteAllBytes(path, CheckpointBuilder.ZipOf(p.ToArray()));
        try
        {
            var audit = CheckpointAudit.Audit(path, verifyCrc: false);
            Assert.Equal(AuditVerdict.Unsafe, audit.Verdict);
            Assert.Equal(expected, audit.Globals.Select(g => g.Name));
            Assert.Equal(Enumerable.Repeat(2, distinct).Append(1), audit.Globals.Select(g => g.Count));
            Assert.Equal(Enumerable.Repeat("Unknown", distinct).Append("Allowed"), audit.Globals.Select(g => g.Verdict));
            Assert.Equal(distinct, audit.Findings.Count(f => f.StartsWith("Global mod.f", StringComparison.Ordinal)));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
