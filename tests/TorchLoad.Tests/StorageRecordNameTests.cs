using TorchLoad.Core;
using TorchLoad.Core.Archive;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.CheckpointBuilder;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// The zip reader keeps storage records (<c>&lt;folder&gt;/data/&lt;key&gt;</c>, keys as torch writes them) by key and names
/// them only when asked (ZipRecord.Name). Whatever a caller sees must be what decoding every name gave: the names,
/// the lookups, the duplicates refused.
/// </summary>
public class StorageRecordNameTests
{
    private static byte[] ThreeTensors(string k0 = "0", string k1 = "1", string k2 = "2") =>
        Pickle(new object?[] { Float32Tensor(k0, 1, [1]), Float32Tensor(k1, 1, [1]), Float32Tensor(k2, 1, [1]) });

    private static ZipRecords Directory(byte[] zip)
    {
        using var source = FileSource.FromStream(new MemoryStream(zip), zip.Length, "test.pt");
        return ZipDirectory.Read(source);
    }

    [Fact]
    public void StorageRecords_AreNamedAsTheirDirectoryEntries()
    {
        var z = new TorchZipBuilder(ThreeTensors()).Storage("0", Floats(1f)).Storage("1", Floats(2f)).Storage("2", Floats(3f));
        var cp = Load(z.Build());
        Assert.Equal(z.ToZip().Entries.Select(e => e.Name), cp.Records);
        var tensors = Assert.IsType<object?[]>(cp.Root).Cast<TorchTensor>().ToArray();
        Assert.Equal(new[] { "archive/data/0", "archive/data/1", "archive/data/2" }, tensors.Select(t => t.Storage!.RecordName));
        Assert.Equal(new[] { 1f, 2f, 3f }, tensors.Select(t => ((float[])t.ToArray())[0]));
    }

    [Theory]
    [InlineData("01")]   // a leading zero: torch never writes it, but the record is still the one named so
    [InlineData("7")]    // a key past the number of records
    [InlineData("x")]
    public void KeysTorchWouldNotWrite_AreFoundByName(string key)
    {
        var z = new TorchZipBuilder(ThreeTensors(k1: key)).Storage("0", Floats(1f)).Storage(key, Floats(2f)).Storage("2", Floats(3f));
        var tensors = Assert.IsType<object?[]>(Load(z.Build()).Root).Cast<TorchTensor>().ToArray();
        Assert.Equal($"archive/data/{key}", tensors[1].Storage!.RecordName);
        Assert.Equal(2f, ((float[])tensors[1].ToArray())[0]);
    }

    [Fact]
    public void AKeyWithALeadingZero_IsNotTheKeyWithout()
    {
        var z = new TorchZipBuilder(ThreeTensors()).Storage("0", Floats(1f)).Storage("01", Floats(2f)).Storage("2", Floats(3f));
        var e = Fails(z.Build(), TorchLoadErrorReason.MissingRecord);
        Assert.Contains("archive/data/1", e.Message);
    }

    [Fact]
    public void LookupsFindAStorageRecordHoweverItsNameIsSplit()
    {
        var records = Directory(new TorchZipBuilder(ThreeTensors()).Storage("0", Floats(1f)).Storage("1", Floats(2f)).Storage("2", Floats(3f)).Build());
        Assert.True(records.TryGet("archive/data/", "1", out var a));
        Assert.True(records.TryGet("archive/", "data/1", out var b));
        Assert.True(records.TryGet("archive/data/1", "", out var c));
        Assert.True(records.TryGet("", "archive/data/1", out var d));
        Assert.Same(a, b);
        Assert.Same(a, c);
        Assert.Same(a, d);
        Assert.Equal("archive/data/1", a.Name);
        Assert.False(records.TryGet("archive/data/", "01", out _));
        Assert.False(records.TryGet("archive/data/", "3", out _));
        Assert.False(records.TryGet("other/data/", "1", out _));
        Assert.True(records.TryGet("archive/", "data.pkl", out var pkl));
        Assert.Equal("archive/data.pkl", pkl.Name);
        Assert.True(a.IsIn("archive/"));
        Assert.True(a.IsIn("archive/data/1"));
        Assert.False(a.IsIn("archive/data/10"));
        Assert.False(a.IsIn("other/"));
    }

    [Fact]
    public void ATwiceNamedStorageRecord_IsDuplicateRecord()
    {
        var z = new TorchZipBuilder(ThreeTensors()).Storage("0", Floats(1f)).Storage("1", Floats(2f)).Storage("1", Floats(9f)).Storage("2", Floats(3f));
        var e = Fails(z.Build(), TorchLoadErrorReason.DuplicateRecord);
        Assert.Equal("archive/data/1", e.RecordName);
    }

    [Fact]
    public void AStorageRecordFirstAndAgainLater_IsDuplicateRecord()
    {
        // the first record sets the folder; it is a storage record itself, and its twin must still collide with it
        var zip = new TorchZipBuilder(ThreeTensors()).Storage("0", Floats(1f)).Storage("1", Floats(2f)).Storage("2", Floats(3f)).ToZip();
        zip.Entries.Insert(0, new ZipEntry("archive/data/1", Floats(9f)));
        var e = Fails(zip.Build(), TorchLoadErrorReason.DuplicateRecord);
        Assert.Equal("archive/data/1", e.RecordName);
    }

    [Fact]
    public void AStorageRecordFirst_LoadsAndIsNamed()
    {
        var zip = new TorchZipBuilder(ThreeTensors()).Storage("1", Floats(2f)).Storage("2", Floats(3f)).ToZip();
        zip.Entries.Insert(0, new ZipEntry("archive/data/0", Floats(1f)));
        var cp = Load(zip.Build());
        Assert.Equal("archive/data/0", cp.Records[0]);
        var tensors = Assert.IsType<object?[]>(cp.Root).Cast<TorchTensor>().ToArray();
        Assert.Equal(new[] { 1f, 2f, 3f }, tensors.Select(t => ((float[])t.ToArray())[0]));
    }

    [Fact]
    public void ANonAsciiFolder_IsReadByName()
    {
        var z = new TorchZipBuilder(ThreeTensors()) { Prefix = "modèle" }.Storage("0", Floats(1f)).Storage("1", Floats(2f)).Storage("2", Floats(3f));
        var cp = Load(z.Build());
        Assert.Equal("modèle", cp.ArchivePrefix);
        var tensors = Assert.IsType<object?[]>(cp.Root).Cast<TorchTensor>().ToArray();
        Assert.Equal("modèle/data/2", tensors[2].Storage!.RecordName);
        Assert.Equal(3f, ((float[])tensors[2].ToArray())[0]);
    }

    [Fact]
    public void AStorageRecordOutsideTheFolder_IsStillRefused()
    {
        var zip = new TorchZipBuilder(ThreeTensors()).Storage("0", Floats(1f)).Storage("1", Floats(2f)).Storage("2", Floats(3f)).ToZip();
        zip.Add("elsewhere/data/0", Floats(1f));
        var e = Fails(zip.Build(), TorchLoadErrorReason.InvalidRecordName);
        Assert.Equal("elsewhere/data/0", e.RecordName);
    }

    // Named records (all but storage records) are found by a scan up to eight, by a dictionary past eight: both
    // ways find every name, split anywhere, and refuse a second record of a name.
    [Theory]
    [InlineData(2)]   // data.pkl, byteorder, version + 2: scanned
    [InlineData(12)]  // + 12: a dictionary
    public void NamedRecords_AreFoundAndUnique_ScannedOrHashed(int extra)
    {
        var z = new TorchZipBuilder(ThreeTensors()).Storage("0", Floats(1f)).Storage("1", Floats(2f)).Storage("2", Floats(3f));
        for (var i = 0; i < extra; i++) z.Extra.Add(($"extra/{i}.txt", [(byte)i]));
        var records = Directory(z.Build());
        Assert.True(records.TryGet("archive/", "version", out var version));
        Assert.Equal("archive/version", version.Name);
        Assert.True(records.TryGet("archive/ver", "sion", out var split));
        Assert.Same(version, split);
        Assert.True(records.TryGet("", "archive/byteorder", out var byteOrder));
        Assert.Equal("archive/byteorder", byteOrder.Name);
        for (var i = 0; i < extra; i++)
        {
            Assert.True(records.TryGet("archive/extra/", $"{i}.txt", out var r));
            Assert.Equal($"archive/extra/{i}.txt", r.Name);
        }
        Assert.False(records.TryGet("archive/", "versio", out _));
        Assert.False(records.TryGet("archive/", "version2", out _));
        Assert.False(records.TryGet("archive/extra/", $"{extra}.txt", out _));
        Assert.Equal(3f, ((float[])((object?[])Load(z.Build()).Root!).Cast<TorchTensor>().Last().ToArray())[0]);

        z.Extra.Add(($"extra/{extra - 1}.txt", [9]));
        var e = Fails(z.Build(), TorchLoadErrorReason.DuplicateRecord);
        Assert.Equal($"archive/extra/{extra - 1}.txt", e.RecordName);
        z.Extra.RemoveAt(z.Extra.Count - 1);
        z.Extra.Add(("data.pkl", [0]));
        Assert.Equal("archive/data.pkl", Fails(z.Build(), TorchLoadErrorReason.DuplicateRecord).RecordName);
    }
}
