using TorchLoad.Core;
using TorchLoad.Core.Archive;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Errors;
using TorchLoad.Tests.Hostile;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.CheckpointBuilder;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// A load and an audit inflate deflated records through one reader: a record that does not inflate (to its declared
/// size, or at all) is InvalidArchive to a load and a CRC finding to an audit, whatever SharpZipLib throws.
/// </summary>
public class DeflatedRecordTests
{
    /// <summary>The deflate stream the fuzzer found (a corrupt Huffman table: SharpZipLib throws IndexOutOfRangeException).</summary>
    private static byte[] CorruptStream()
    {
        var file = File.ReadAllBytes(Path.Combine(FuzzRegressionTests.RegressionDir, "smoke-masked-89d00900a1dc4690.bin"));
        using var source = FileSource.FromStream(new MemoryStream(file), file.Length, "fuzz");
        var records = ZipDirectory.Read(source);
        Assert.True(records.TryGet("rezipped_deflate/", "data.pkl", out var pkl));
        return file.AsSpan((int)pkl.DataOffset, (int)pkl.CompressedSize).ToArray();
    }

    private static byte[] WithDeflatedStorage(byte[] compressed, long declaredSize)
    {
        var z = HostileZip.Checkpoint(Pickle(Float32Tensor("0", declaredSize / 4, [declaredSize / 4])));
        var e = z.Add("archive/data/0", new byte[declaredSize], method: 8);
        e.RawData = compressed;
        e.DeclaredSize = declaredSize;
        e.Crc = 0x1234_5678;
        return z.ToArray();
    }

    private static AuditResult Audit(byte[] file)
    {
        using var stream = new MemoryStream(file);
        return CheckpointAudit.Audit(stream, "t.pt");
    }

    [Fact]
    public void ACorruptHuffmanTable_IsInvalidArchiveToALoad_AndACrcFindingToAnAudit()
    {
        var file = WithDeflatedStorage(CorruptStream(), 32);
        Assert.Equal(TorchLoadErrorReason.InvalidArchive, Fails(file).Reason);
        var audit = Audit(file);
        Assert.Null(audit.ErrorId); // the structure reads; the bytes do not
        Assert.Equal(AuditVerdict.Corrupt, audit.Verdict);
        Assert.Contains(audit.Findings, f => f.StartsWith("CRC mismatch for archive/data/0: the deflated data is corrupt", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(16)] // inflates to more than declared
    [InlineData(64)] // to less
    public void ARecordThatInflatesToAnotherSize_IsInvalidArchiveToALoad_AndACrcFindingToAnAudit(long declared)
    {
        var file = WithDeflatedStorage(ZipBuilder.Deflate(Floats(1, 2, 3, 4, 5, 6, 7, 8)), declared);
        Assert.Equal(TorchLoadErrorReason.InvalidArchive, Fails(file).Reason);
        var audit = Audit(file);
        Assert.Null(audit.ErrorId);
        Assert.Equal(AuditVerdict.Corrupt, audit.Verdict);
        Assert.Contains(audit.Findings, f => f.StartsWith("CRC mismatch for archive/data/0", StringComparison.Ordinal));
    }

    [Fact]
    public void AGoodDeflatedRecord_LoadsAndAuditsSafe()
    {
        var bytes = Floats(1, 2, 3, 4, 5, 6, 7, 8);
        var z = HostileZip.Checkpoint(Pickle(Float32Tensor("0", 8, [8])));
        z.Add("archive/data/0", bytes, method: 8);
        var file = z.ToArray();
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6, 7, 8 }, Assert.IsType<Core.Tensors.TorchTensor>(Load(file).Root).ToArray());
        var audit = Audit(file);
        Assert.Equal(AuditVerdict.Safe, audit.Verdict);
        Assert.Empty(audit.Findings);
    }
}
