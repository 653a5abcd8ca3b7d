using TorchLoad.Core.Audit;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.CheckpointBuilder;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// What auditing or loading one small checkpoint costs, in allocations (deterministic, unlike time): scheduled
/// audits go through thousands of 5 KB files, and a fixed cost per file is the whole cost. The CRC check once
/// allocated two fresh 1 MiB buffers per file (1,000 files: 1.1 s, against 0.15 s without CRCs).
/// </summary>
public sealed class PerFileCostTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"torchload-small-{Guid.NewGuid():N}.pt");

    public PerFileCostTests()
    {
        var z = new ZipBuilder();
        z.Add("archive/data.pkl", Pickle(new PDict(
            ("weight", Float32Tensor("0", 256, [16, 16])),
            ("bias", Float32Tensor("1", 16, [16])),
            ("meta", new PDict(("epoch", 3L), ("lr", 0.1), ("name", "layer"))))));
        z.Add("archive/data/0", Floats(Enumerable.Range(0, 256).Select(i => (float)i).ToArray()));
        z.Add("archive/data/1", Floats(Enumerable.Range(0, 16).Select(i => (float)-i).ToArray())).Method = 8; // deflated: the inflate path too
        z.Add("archive/version", "3\n"u8.ToArray());
        File.WriteAllBytes(_path, z.Build());
    }

    public void Dispose() => File.Delete(_path);

    private static long Allocated(Action action)
    {
        action(); // first call: statics, JIT
        var before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void AuditWithCrcs_AllocatesKilobytesNotMegabytes()
    {
        var result = CheckpointAudit.Audit(_path);
        Assert.Equal(AuditVerdict.Safe, result.Verdict);
        Assert.Empty(result.Findings);
        Assert.Equal(2, result.TensorCount);
        Assert.InRange(Allocated(() => CheckpointAudit.Audit(_path)), 1, 160 << 10);
    }

    // 5.4 KB measured (2026-12-05; 9.4 KB before the pickle machine's arrays were pooled, short strings and allowlisted
    // globals reused, small name tables scanned, the tensor count walked without an enumerator and whole-record reads
    // pooled; 10.7 KB before that).
    // 1,000 files at ~10 KB crossed a fresh pwsh's first gen0 budget inside the audit: a 14 ms collection of
    // everything pwsh made at startup. The bound catches a return to that.
    [Fact]
    public void AuditWithoutCrcs_AllocatesLittle() =>
        Assert.InRange(Allocated(() => CheckpointAudit.Audit(_path, verifyCrc: false)), 1, 8 << 10);

    [Fact]
    public void EagerLoad_AllocatesLittle() =>
        Assert.InRange(Allocated(() => Core.TorchLoader.Load(_path)), 1, 48 << 10);

    [Fact]
    public void AFlippedByteInASmallStoredRecord_IsStillACrcFinding()
    {
        var bytes = File.ReadAllBytes(_path);
        using var source = Core.Archive.FileSource.FromStream(new MemoryStream(bytes), long.MaxValue, "(test)");
        var stored = Core.Archive.ZipDirectory.Read(source).Single(r => r.Name == "archive/data/0");
        bytes[stored.DataOffset + 5] ^= 0x40;
        File.WriteAllBytes(_path, bytes);
        var result = CheckpointAudit.Audit(_path);
        Assert.Equal(AuditVerdict.Corrupt, result.Verdict);
        Assert.Contains(result.Findings, f => f.StartsWith("CRC mismatch for archive/data/0", StringComparison.Ordinal));
    }
}
