using System.Numerics;
using TorchLoad.Core;
using TorchLoad.Core.Devices;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.CheckpointBuilder;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// Container and rebuild rules of docs/torch-load-format.md that no fixture exercises: each test
/// hand-assembles a zip, legacy stream or tar checkpoint byte by byte.
/// </summary>
public class FormatRuleTests
{
    private static readonly TorchLoadOptions Permissive = new() { WeightsOnly = false };

    /// <summary>A float32 tensor [1.5, -2] over storage "0".</summary>
    private static TorchZipBuilder OneTensorZip(string prefix = "archive")
    {
        var z = new TorchZipBuilder(Pickle(Float32Tensor("0", 2, [2]))) { Prefix = prefix };
        z.Storage("0", Floats(1.5f, -2f));
        return z;
    }

    private static TorchTensor Tensor(object? v) => Assert.IsType<TorchTensor>(v);
    private static float[] F32(object? v) => Assert.IsType<float[]>(Tensor(v).ToArray());
    private static object?[] Tuple(object? v) => Assert.IsType<object?[]>(v);

    private static TorchLoadException FailPickle(byte[] pickle, TorchLoadErrorReason reason, TorchLoadOptions? options = null, params (string, byte[])[] storages) =>
        Fails(ZipOf(pickle, storages), reason, options);

    // ------------------------------------------------------------------ zip: prefix and names

    [Theory]
    [InlineData("archive")]
    [InlineData("pytorch_model")]
    [InlineData("my model.v2")]
    public void Zip_PrefixIsTheFirstEntrysFolder(string prefix)
    {
        var cp = Load(OneTensorZip(prefix).Build());
        Assert.Equal("zip", cp.Format);
        Assert.Equal(prefix, cp.ArchivePrefix);
        Assert.Equal(new[] { 1.5f, -2f }, F32(cp.Root));
    }

    [Fact]
    public void Zip_PrefixComesFromTheFirstEntryEvenWhenItIsNotDataPkl()
    {
        var z = OneTensorZip("sd").ToZip();
        var version = z["sd/version"];
        z.Entries.Remove(version);
        z.Entries.Insert(0, version);
        Assert.Equal("sd", Load(z.Build()).ArchivePrefix);
    }

    [Fact]
    public void Zip_FirstEntryWithoutFolder_IsInvalidArchive()
    {
        var z = OneTensorZip().ToZip();
        z.Entries.Insert(0, new ZipEntry("data.pkl", Pickle(null)));
        Fails(z.Build(), TorchLoadErrorReason.InvalidArchive);
    }

    [Fact]
    public void Zip_RecordOutsideThePrefixFolder_IsInvalidRecordName()
    {
        var z = OneTensorZip().ToZip();
        z.Add("other/data/1", Floats(1f));
        Fails(z.Build(), TorchLoadErrorReason.InvalidRecordName);
    }

    [Theory]
    [InlineData("archive/../evil")]
    [InlineData("/archive/data/1")]
    [InlineData("archive\\data\\1")]
    [InlineData("archive/data/../../x")]
    public void Zip_UnsafeRecordNames_AreInvalidRecordName(string name)
    {
        var z = OneTensorZip().ToZip();
        z.Add(name, Floats(1f));
        Fails(z.Build(), TorchLoadErrorReason.InvalidRecordName);
    }

    [Fact]
    public void Zip_DuplicateNames_AreDuplicateRecord()
    {
        var z = OneTensorZip().ToZip();
        z.Add("archive/data/0", Floats(9f, 9f));
        Fails(z.Build(), TorchLoadErrorReason.DuplicateRecord);
    }

    // ------------------------------------------------------------------ zip: version and byteorder

    [Fact]
    public void Zip_NoVersionRecord_IsMissingRecord()
    {
        var z = OneTensorZip();
        z.Version = null;
        Fails(z.Build(), TorchLoadErrorReason.MissingRecord);
    }

    [Theory]
    [InlineData("11\n")]
    [InlineData("0\n")]
    [InlineData("abc\n")]
    public void Zip_VersionOutOfRange_IsUnsupportedVersion(string version)
    {
        var z = OneTensorZip();
        z.Version = version;
        Fails(z.Build(), TorchLoadErrorReason.UnsupportedVersion);
    }

    [Theory]
    [InlineData("1\n", 1L)]
    [InlineData("3\n", 3L)]
    [InlineData("10", 10L)]
    public void Zip_VersionInRange_IsReported(string version, long expected)
    {
        var z = OneTensorZip();
        z.Version = version;
        Assert.Equal(expected, Load(z.Build()).Version);
    }

    [Fact]
    public void Zip_DataVersionIsPreferredOverVersion()
    {
        var z = OneTensorZip();
        z.Version = "99\n";
        z.DataVersion = "6\n";
        Assert.Equal(6L, Load(z.Build()).Version);

        z.Version = "3\n";
        z.DataVersion = "11\n";
        Fails(z.Build(), TorchLoadErrorReason.UnsupportedVersion);

        z.Version = null;
        z.DataVersion = "7";
        Assert.Equal(7L, Load(z.Build()).Version);
    }

    [Fact]
    public void Zip_UnknownByteOrder_IsInvalidArchive()
    {
        var z = OneTensorZip();
        z.ByteOrder = "middle";
        Fails(z.Build(), TorchLoadErrorReason.InvalidArchive);
    }

    [Fact]
    public void Zip_NoByteOrderRecord_IsLittleEndian()
    {
        var z = OneTensorZip();
        z.ByteOrder = null;
        var cp = Load(z.Build());
        Assert.Equal("little", cp.ByteOrder);
        Assert.Equal(new[] { 1.5f, -2f }, F32(cp.Root));
    }

    [Fact]
    public void Zip_BigEndian_SwapsFloat32AndComplex64PerHalf()
    {
        var pickle = Pickle(new object?[]
        {
            Float32Tensor("0", 2, [2]),
            TensorV2(Storage("ComplexFloatStorage", "1", 2), 0, [2], [1]),
            TensorV2(Storage("LongStorage", "2", 1), 0, [1], [1]),
        });
        var z = new TorchZipBuilder(pickle) { ByteOrder = "big" };
        z.Storage("0", FloatsBigEndian(1.5f, -2f));
        z.Storage("1", FloatsBigEndian(1f, 2f, -3.5f, 0.25f));
        z.Storage("2", [0, 0, 0, 0, 0, 0, 0x01, 0x02]);
        var cp = Load(z.Build());
        Assert.Equal("big", cp.ByteOrder);
        var t = Tuple(cp.Root);
        Assert.Equal(new[] { 1.5f, -2f }, F32(t[0]));
        Assert.Equal(Floats(1.5f, -2f), Tensor(t[0]).Storage!.ToByteArray());
        Assert.Equal(new[] { new Complex(1, 2), new Complex(-3.5, 0.25) }, Assert.IsType<Complex[]>(Tensor(t[1]).ToArray()));
        Assert.Equal(new[] { 0x0102L }, Assert.IsType<long[]>(Tensor(t[2]).ToArray()));
    }

    // ------------------------------------------------------------------ zip: records and storages

    [Fact]
    public void Zip_RecordSizeDiffersFromNumelTimesElementSize_IsStorageSizeMismatch()
    {
        var z = new TorchZipBuilder(Pickle(Float32Tensor("0", 3, [3])));
        z.Storage("0", Floats(1f, 2f));
        Fails(z.Build(), TorchLoadErrorReason.StorageSizeMismatch);
    }

    [Fact]
    public void Zip_MissingStorageRecord_IsMissingRecord()
    {
        var z = new TorchZipBuilder(Pickle(Float32Tensor("0", 2, [2])));
        z.Storage("1", Floats(1f, 2f));
        var e = Fails(z.Build(), TorchLoadErrorReason.MissingRecord);
        Assert.Contains("data/0", e.Message);
    }

    [Fact]
    public void Zip_NoDataPkl_IsMissingRecord()
    {
        var z = OneTensorZip().ToZip();
        z.Entries.Remove(z["archive/data.pkl"]);
        Fails(z.Build(), TorchLoadErrorReason.MissingRecord);
    }

    [Fact]
    public void Zip_SharedStorageIsOneObject()
    {
        var pickle = Pickle(new object?[]
        {
            TensorV2(Storage("FloatStorage", "0", 4), 0, [2, 2], [2, 1]),
            TensorV2(Storage("FloatStorage", "0", 4), 1, [2], [2]),
        });
        var cp = Load(ZipOf(pickle, ("0", Floats(1, 2, 3, 4))));
        var t = Tuple(cp.Root);
        Assert.Same(Tensor(t[0]).Storage, Tensor(t[1]).Storage);
        Assert.Single(cp.Storages);
        Assert.Equal(new[] { 2f, 4f }, F32(t[1]));
    }

    [Fact]
    public void Zip_EncryptedFlag_IsUnsupportedCompression()
    {
        var z = OneTensorZip().ToZip();
        z["archive/data/0"].ExtraFlags = 1;
        Fails(z.Build(), TorchLoadErrorReason.UnsupportedCompression);
    }

    [Fact]
    public void Zip_Bzip2Method_IsUnsupportedCompression()
    {
        var z = OneTensorZip().ToZip();
        z["archive/data.pkl"].Method = 12;
        Fails(z.Build(), TorchLoadErrorReason.UnsupportedCompression);
    }

    [Fact]
    public void Zip_DeflatedPickleAndStorage_Load()
    {
        var values = Enumerable.Range(0, 64).Select(i => (float)i).ToArray();
        var z = new TorchZipBuilder(Pickle(Float32Tensor("0", 64, [8, 8])));
        z.Storage("0", Floats(values));
        var zip = z.ToZip();
        zip["archive/data.pkl"].Method = 8;
        zip["archive/data/0"].Method = 8;
        zip["archive/version"].Method = 8;
        var cp = Load(zip.Build());
        Assert.Equal(values, F32(cp.Root));
        Assert.Equal(-1, Tensor(cp.Root).Storage!.FileOffset);
    }

    [Fact]
    public void Zip_DeflatedStorageWithMmap_IsUnsupportedCompression()
    {
        var zip = OneTensorZip().ToZip();
        zip["archive/data/0"].Method = 8;
        Fails(zip.Build(), TorchLoadErrorReason.UnsupportedCompression, new TorchLoadOptions { Mmap = true });
    }

    [Fact]
    public void Zip_StoredStorageWithMmap_IsMapped()
    {
        var zip = OneTensorZip().ToZip();
        zip["archive/data.pkl"].Method = 8; // the pickle itself may be deflated: it is read, not mapped
        var bytes = zip.Build();
        var cp = Load(bytes, new TorchLoadOptions { Mmap = true });
        var t = Tensor(cp.Root);
        Assert.True(t.Storage!.IsMapped);
        Assert.Equal(zip["archive/data/0"].DataOffset, t.Storage.FileOffset);
        Assert.Equal(new[] { 1.5f, -2f }, F32(t));
    }

    [Fact]
    public void Legacy_WithMmap_IsUnsupportedFormat()
    {
        var legacy = Legacy(Pickle(Float32Tensor("k", 1, [1], legacy: true)), ["k"], [(1, Floats(1f))]);
        Fails(legacy, TorchLoadErrorReason.UnsupportedFormat, new TorchLoadOptions { Mmap = true });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Zip_TorchScriptArchive_IsUnsupportedFormatInBothModes(bool weightsOnly)
    {
        var z = OneTensorZip();
        z.Extra.Add(("constants.pkl", Pickle(Array.Empty<object?>())));
        var e = Fails(z.Build(), TorchLoadErrorReason.UnsupportedFormat, new TorchLoadOptions { WeightsOnly = weightsOnly });
        Assert.Contains("TorchScript", e.Message);
    }

    // ------------------------------------------------------------------ zip: low-level layout

    [Fact]
    public void Zip_ZeroFbPadding_PayloadOffsetFromTheLocalHeader()
    {
        var zip = OneTensorZip().ToZip();
        var entry = zip["archive/data/0"];
        entry.Padding = 0;
        var bytes = zip.Build();
        Assert.Equal(entry.HeaderOffset + 30 + "archive/data/0".Length + 4, entry.DataOffset);
        var cp = Load(bytes);
        Assert.Equal(new[] { 1.5f, -2f }, F32(cp.Root));
        var meta = Load(bytes, new TorchLoadOptions { MetadataOnly = true });
        Assert.Equal(entry.DataOffset, Assert.Single(meta.Storages).FileOffset);
    }

    [Theory]
    [InlineData(13)]
    [InlineData(4096)]
    public void Zip_NonDefaultAlignment_PayloadOffsetFromTheLocalHeader(int alignment)
    {
        var zip = OneTensorZip().ToZip();
        foreach (var e in zip.Entries) e.Alignment = alignment;
        var bytes = zip.Build();
        var entry = zip["archive/data/0"];
        Assert.Equal(0, entry.DataOffset % alignment);
        var cp = Load(bytes);
        Assert.Equal(new[] { 1.5f, -2f }, F32(cp.Root));
        Assert.Equal(entry.DataOffset, Tensor(cp.Root).Storage!.FileOffset);
    }

    [Fact]
    public void Zip_NoFbFieldAndNoDataDescriptors_Load()
    {
        var zip = OneTensorZip().ToZip();
        foreach (var e in zip.Entries) { e.Alignment = null; e.DataDescriptor = false; }
        Assert.Equal(new[] { 1.5f, -2f }, F32(Load(zip.Build()).Root));
    }

    [Fact]
    public void Zip_Zip64ExtraFieldSizesAndOffsets_AreUsed()
    {
        var zip = OneTensorZip().ToZip();
        foreach (var e in zip.Entries) e.Zip64Central = true;
        var cp = Load(zip.Build());
        Assert.Equal(new[] { 1.5f, -2f }, F32(cp.Root));
        Assert.Equal(3L, cp.Version);
    }

    [Fact]
    public void Zip_ClassicEndRecordOnly_Loads()
    {
        var zip = OneTensorZip().ToZip();
        zip.Zip64End = false;
        Assert.Equal(new[] { 1.5f, -2f }, F32(Load(zip.Build()).Root));
    }

    [Fact]
    public void Zip_ZeroCrc_LoadsWithAWarning()
    {
        var zip = OneTensorZip().ToZip();
        foreach (var e in zip.Entries) e.Crc = 0;
        var cp = Load(zip.Build());
        Assert.Equal(new[] { 1.5f, -2f }, F32(cp.Root));
        Assert.Contains(cp.Warnings, w => w.Contains("CRC"));
    }

    [Fact]
    public void Zip_MetadataOnly_GivesFileOffsetsAndNoBuffers()
    {
        var zip = OneTensorZip().ToZip();
        var bytes = zip.Build();
        var cp = Load(bytes, new TorchLoadOptions { MetadataOnly = true });
        var t = Tensor(cp.Root);
        Assert.Null(t.Storage!.Buffer);
        Assert.Equal(zip["archive/data/0"].DataOffset, t.Storage.FileOffset);
        Assert.Equal(0, t.Storage.FileOffset % 64);
        Assert.Equal(8, t.Storage.ByteLength);
        Assert.Equal(new long[] { 2 }, t.Shape);
        Assert.Throws<InvalidOperationException>(() => t.ToByteArray());
    }

    // ------------------------------------------------------------------ legacy stream

    [Fact]
    public void Legacy_ManyStorageKeys_LoadOnASmallStack()
    {
        // Regression: the blob-header buffer was stackalloc'd inside the per-key loop, so the stack grew by
        // 8 bytes per key until the method returned; 40,000 keys overflow a 256 KiB stack that way.
        const int n = 40_000;
        var keys = Enumerable.Range(0, n).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var pickle = Pickle(keys.Select(k => (object?)Float32Tensor(k, 1, [1], legacy: true)).ToArray());
        var file = Legacy(pickle, keys, keys.Select(k => (1L, Floats(1f))).ToList());
        TorchCheckpoint? cp = null;
        Exception? failure = null;
        var thread = new Thread(() => { try { cp = Load(file); } catch (Exception e) { failure = e; } }, maxStackSize: 256 << 10);
        thread.Start();
        thread.Join();
        Assert.Null(failure);
        Assert.Equal(n, cp!.Storages.Count);
    }

    [Fact]
    public void Legacy_KeyListOrderIsHonouredNotResorted()
    {
        // "9" before "10" is not lexicographic order: re-sorting would hand "10" the first blob
        var pickle = Pickle(new object?[] { Float32Tensor("9", 2, [2], legacy: true), Float32Tensor("10", 2, [2], legacy: true) });
        var cp = Load(Legacy(pickle, ["9", "10"], [(2, Floats(1, 2)), (2, Floats(3, 4))]));
        Assert.Equal("legacy", cp.Format);
        Assert.Equal(1001L, cp.Version);
        var t = Tuple(cp.Root);
        Assert.Equal(new[] { 1f, 2f }, F32(t[0]));
        Assert.Equal(new[] { 3f, 4f }, F32(t[1]));
        Assert.Equal("9", Tensor(t[0]).Storage!.Key);
    }

    [Fact]
    public void Legacy_BlobCountDiffersFromNumel_IsStorageSizeMismatch()
    {
        var pickle = Pickle(Float32Tensor("k", 2, [2], legacy: true));
        Fails(Legacy(pickle, ["k"], [(3, Floats(1, 2, 3))]), TorchLoadErrorReason.StorageSizeMismatch);
    }

    [Fact]
    public void Legacy_BlobTruncated_IsTruncatedCheckpoint()
    {
        var pickle = Pickle(Float32Tensor("k", 2, [2], legacy: true));
        Fails(Legacy(pickle, ["k"], [(2, Floats(1))]), TorchLoadErrorReason.TruncatedCheckpoint);
    }

    [Fact]
    public void Legacy_TwoSavesAppended_FirstLoadsAndTheRestIsAWarning()
    {
        var first = Legacy(Pickle(Float32Tensor("k", 2, [2], legacy: true)), ["k"], [(2, Floats(1, 2))]);
        var second = Legacy(Pickle(Float32Tensor("k", 1, [1], legacy: true)), ["k"], [(1, Floats(7))]);
        var cp = Load(Concat(first, second));
        Assert.Equal(new[] { 1f, 2f }, F32(cp.Root));
        Assert.Contains(cp.Warnings, w => w.Contains($"{second.Length} bytes"));
    }

    [Fact]
    public void Legacy_MetadataOnly_GivesTheBlobOffset()
    {
        var bytes = Legacy(Pickle(Float32Tensor("k", 2, [2], legacy: true)), ["k"], [(2, Floats(1, 2))]);
        var cp = Load(bytes, new TorchLoadOptions { MetadataOnly = true });
        var s = Assert.Single(cp.Storages);
        Assert.Null(s.Buffer);
        Assert.Equal(bytes.Length - 8, s.FileOffset);
    }

    private static byte[] ModulePid() =>
        new PickleBuilder().Proto().Mark().Str("module").Global("mymod", "MyModule").None().None().Tuple().BinPersId().Stop().ToArray();

    [Fact]
    public void Legacy_ModulePersistentId_IsInvalidPersistentIdInSafeMode()
    {
        // the class is allowed, so what is refused is the 'module' persistent id itself
        Fails(Legacy(ModulePid(), [], []), TorchLoadErrorReason.InvalidPersistentId, new TorchLoadOptions { SafeGlobals = ["mymod.MyModule"] });
    }

    [Fact]
    public void Legacy_ModulePersistentId_IsTheClassInPermissiveMode() =>
        Assert.Equal("mymod.MyModule", Assert.IsType<PyGlobal>(Load(Legacy(ModulePid(), [], []), Permissive).Root).ClassName);

    [Fact]
    public void Legacy_WrongMagic_IsNotACheckpoint() =>
        Fails(Legacy(Pickle(null), [], [], magic: 12345L), TorchLoadErrorReason.NotACheckpoint);

    [Fact]
    public void Legacy_PlainPickle_IsNotACheckpoint() => Fails(Pickle(new PDict(("a", 1L))), TorchLoadErrorReason.NotACheckpoint);

    [Fact]
    public void Legacy_Protocol1000_IsUnsupportedVersion() =>
        Fails(Legacy(Pickle(null), [], [], protocolVersion: 1000), TorchLoadErrorReason.UnsupportedVersion);

    [Fact]
    public void Legacy_ViewPastStorageEnd_IsInvalidTensorGeometry()
    {
        // torch silently grows resizable legacy storages here; TorchLoad must refuse
        var pickle = Pickle(TensorV2(Storage("FloatStorage", "k", 2, legacy: true), 1, [2], [1]));
        Fails(Legacy(pickle, ["k"], [(2, Floats(1, 2))]), TorchLoadErrorReason.InvalidTensorGeometry);
    }

    // ------------------------------------------------------------------ tar

    [Fact]
    public void Tar_PersIdKeysResolveToTensorsAndStorages()
    {
        var storages = Concat(Pickle(1L), Pickle(new object?[] { "0", "cpu", G("torch", "FloatStorage") }), I64(2), Floats(1.5f, -2f), Pickle(new PList()));
        var tensors = Concat(Pickle(1L), Pickle(new object?[] { "1", "0", G("torch", "FloatTensor") }), I32(1), new byte[4], I64(2), I64(1), I64(0));
        var pickle = L("\u0080\u0002(P1\nP0\nt.");
        var tar = Tar(("sys_info", Pickle(new PDict(("protocol_version", 1000L)))), ("pickle", pickle), ("tensors", tensors), ("storages", storages));
        var cp = Load(tar, Permissive);
        Assert.Equal("tar", cp.Format);
        var t = Tuple(cp.Root);
        Assert.Equal(new[] { 1.5f, -2f }, F32(t[0]));
        Assert.Same(Tensor(t[0]).Storage, Assert.IsType<TorchStorage>(t[1]));
    }

    // ------------------------------------------------------------------ tensor geometry

    [Theory]
    [InlineData(0L, new long[] { 5 }, new long[] { 1 })]          // one past the end
    [InlineData(3L, new long[] { 2 }, new long[] { 1 })]          // offset pushes it out
    [InlineData(0L, new long[] { 2, 2 }, new long[] { 3, 1 })]    // stride pushes it out
    [InlineData(0L, new long[] { 2 }, new long[] { -1 })]         // negative stride
    [InlineData(-1L, new long[] { 1 }, new long[] { 1 })]         // negative offset
    [InlineData(0L, new long[] { -1 }, new long[] { 1 })]         // negative size
    [InlineData(0L, new long[] { 2 }, new long[] { 1, 1 })]       // rank mismatch
    [InlineData(0L, new long[] { 1L << 62, 1L << 62 }, new long[] { 0, 0 })] // element count overflows
    [InlineData(0L, new long[] { 3, 2 }, new long[] { 1L << 62, 1 })] // extent overflows
    public void Tensor_BadViews_AreInvalidTensorGeometry(long offset, long[] shape, long[] stride) =>
        FailPickle(Pickle(TensorV2(Storage("FloatStorage", "0", 4), offset, shape, stride)), TorchLoadErrorReason.InvalidTensorGeometry,
            null, ("0", Floats(1, 2, 3, 4)));

    [Fact]
    public void Tensor_ZeroDim()
    {
        var cp = Load(ZipOf(Pickle(TensorV2(Storage("LongStorage", "0", 3), 2, [], [])), ("0", Longs(10, 20, 30))));
        var t = Tensor(cp.Root);
        Assert.Empty(t.Shape);
        Assert.Empty(t.Stride);
        Assert.Equal(2, t.StorageOffset);
        Assert.Equal(new[] { 30L }, Assert.IsType<long[]>(t.ToArray()));
    }

    [Fact]
    public void Tensor_Empty_WithAnEmptyRecord()
    {
        var cp = Load(ZipOf(Pickle(TensorV2(Storage("FloatStorage", "0", 0), 0, [0], [1])), ("0", [])));
        var t = Tensor(cp.Root);
        Assert.Equal(new long[] { 0 }, t.Shape);
        Assert.Equal(0, t.Storage!.ByteLength);
        Assert.Empty(t.ToByteArray());
    }

    [Fact]
    public void Tensor_EmptyWithLargeOffsetAndSizes_IsFine()
    {
        // no element is reached, so no bound is crossed
        var t = Tensor(Load(ZipOf(Pickle(TensorV2(Storage("FloatStorage", "0", 1), 0, [0, 5], [5, 1])), ("0", Floats(1)))).Root);
        Assert.Equal(new long[] { 0, 5 }, t.Shape);
        Assert.Empty(t.ToByteArray());
    }

    [Fact]
    public void Tensor_ZeroStrideExpanded()
    {
        var cp = Load(ZipOf(Pickle(new object?[]
        {
            TensorV2(Storage("FloatStorage", "0", 1), 0, [3], [0]),
            TensorV2(Storage("FloatStorage", "1", 3), 0, [2, 3], [0, 1]),
        }), ("0", Floats(7)), ("1", Floats(1, 2, 3))));
        var t = Tuple(cp.Root);
        Assert.Equal(new[] { 7f, 7f, 7f }, F32(t[0]));
        Assert.Equal(new long[] { 0 }, Tensor(t[0]).Stride);
        Assert.Equal(new[] { 1f, 2f, 3f, 1f, 2f, 3f }, F32(t[1]));
    }

    [Fact]
    public void Tensor_ChannelsLastStridesArePreserved()
    {
        var values = Enumerable.Range(0, 12).Select(i => (float)i).ToArray();
        var t = Tensor(Load(ZipOf(Pickle(TensorV2(Storage("FloatStorage", "0", 12), 0, [1, 2, 2, 3], [12, 1, 6, 2])), ("0", Floats(values)))).Root);
        Assert.Equal(new long[] { 12, 1, 6, 2 }, t.Stride);
        Assert.Equal(new[] { 0f, 2f, 4f, 6f, 8f, 10f, 1f, 3f, 5f, 7f, 9f, 11f }, F32(t));
    }

    [Fact]
    public void Tensor_V3DTypes_UntypedStorageNumelIsBytes()
    {
        var pickle = Pickle(new object?[]
        {
            TensorV3(Storage("UntypedStorage", "0", 4, module: "torch.storage"), 0, [2], [1], "uint16"),
            TensorV3(Storage("UntypedStorage", "1", 2, module: "torch.storage"), 0, [2], [1], "float8_e4m3fn"),
        });
        var cp = Load(ZipOf(pickle, ("0", [0x01, 0x00, 0xFF, 0xFF]), ("1", [0x38, 0xC0])));
        var t = Tuple(cp.Root);
        var u16 = Tensor(t[0]);
        Assert.Equal("uint16", u16.DType.Name);
        Assert.Equal("uint8", u16.Storage!.DType.Name);
        Assert.Equal(4, u16.Storage.ElementCount);
        Assert.Equal(new ushort[] { 1, 65535 }, Assert.IsType<ushort[]>(u16.ToArray()));
        Assert.Equal(new[] { 1f, -2f }, F32(t[1]));
    }

    [Fact]
    public void Tensor_V3NumelCountedInElements_IsStorageSizeMismatch()
    {
        var pickle = Pickle(TensorV3(Storage("UntypedStorage", "0", 2, module: "torch.storage"), 0, [2], [1], "uint16"));
        FailPickle(pickle, TorchLoadErrorReason.StorageSizeMismatch, null, ("0", [0x01, 0x00, 0xFF, 0xFF]));
    }

    [Fact]
    public void Tensor_ConjAndNegMetadata()
    {
        var pickle = Pickle(new object?[]
        {
            TensorV2(Storage("ComplexFloatStorage", "0", 1), 0, [1], [1], metadata: new PDict(("conj", true))),
            TensorV2(Storage("FloatStorage", "1", 2), 0, [2], [1], metadata: new PDict(("neg", true))),
        });
        var t = Tuple(Load(ZipOf(pickle, ("0", Floats(1, 2)), ("1", Floats(1.5f, -2f)))).Root);
        var c = Tensor(t[0]);
        Assert.True(c.IsConj);
        Assert.False(c.IsNeg);
        Assert.Equal(new[] { new Complex(1, -2) }, Assert.IsType<Complex[]>(c.ToArray()));
        Assert.Equal(Floats(1, 2), c.Storage!.ToByteArray()); // the storage keeps the stored values
        Assert.True(Tensor(t[1]).IsNeg);
        Assert.Equal(new[] { -1.5f, 2f }, F32(t[1]));
    }

    [Fact]
    public void Tensor_RequiresGradIsKept()
    {
        var t = Tensor(Load(ZipOf(Pickle(TensorV2(Storage("FloatStorage", "0", 1), 0, [1], [1], requiresGrad: true)), ("0", Floats(1)))).Root);
        Assert.True(t.RequiresGrad);
        Assert.False(t.IsParameter);
    }

    [Fact]
    public void Parameter_WithState_KeepsTheState()
    {
        var pickle = Pickle(Call("torch._utils", "_rebuild_parameter_with_state",
            Float32Tensor("0", 2, [2]), true, OrderedDict(), new PDict(("foo", 1L))));
        var p = Tensor(Load(ZipOf(pickle, ("0", Floats(1.5f, -2f)))).Root);
        Assert.True(p.IsParameter);
        Assert.True(p.RequiresGrad);
        Assert.Equal("torch.nn.parameter.Parameter", p.ClassName);
        Assert.Equal(1L, Assert.IsType<PyDict>(p.PythonState)["foo"]);
        Assert.Equal(new[] { 1.5f, -2f }, F32(p));
    }

    private static byte[] FromTypeV2(string module, string cls) => Pickle(Call("torch._tensor", "_rebuild_from_type_v2",
        G("torch._utils", "_rebuild_tensor_v2"), G(module, cls),
        new object?[] { Storage("FloatStorage", "0", 2), 0L, new long[] { 2 }, new long[] { 1 }, false, OrderedDict() },
        new PDict(("tag", "x"))));

    [Fact]
    public void RebuildFromTypeV2_SubclassNotAllowed_IsUnsafeGlobal()
    {
        var e = FailPickle(FromTypeV2("mymod", "MyTensor"), TorchLoadErrorReason.UnsafeGlobal, null, ("0", Floats(1, 2)));
        Assert.Equal("mymod.MyTensor", e.GlobalName);
    }

    [Fact]
    public void RebuildFromTypeV2_SubclassAllowedBySafeGlobals()
    {
        var cp = Load(ZipOf(FromTypeV2("mymod", "MyTensor"), ("0", Floats(1, 2))), new TorchLoadOptions { SafeGlobals = ["mymod.MyTensor"] });
        var t = Tensor(cp.Root);
        Assert.Equal("mymod.MyTensor", t.ClassName);
        Assert.Equal("x", Assert.IsType<PyDict>(t.PythonState)["tag"]);
        Assert.Equal(new[] { 1f, 2f }, F32(t));
    }

    [Fact]
    public void RebuildFromTypeV2_PlainTensorWithAttributes()
    {
        var t = Tensor(Load(ZipOf(FromTypeV2("torch", "Tensor"), ("0", Floats(1, 2)))).Root);
        Assert.Equal("torch.Tensor", t.ClassName);
        Assert.False(t.IsParameter);
        Assert.Equal("x", Assert.IsType<PyDict>(t.PythonState)["tag"]);
    }

    // ------------------------------------------------------------------ structural restrictions

    [Fact]
    public void SetItem_OnAList_IsMalformed() => FailPickle(L("]K\u0001K\u0002s."), TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void SetItem_OnATensor_IsMalformed()
    {
        var pickle = new PickleBuilder().Proto().Value(Float32Tensor("0", 2, [2])).Int(1).Int(2).SetItem().Stop().ToArray();
        FailPickle(pickle, TorchLoadErrorReason.MalformedPickle, null, ("0", Floats(1, 2)));
    }

    [Fact]
    public void Append_OnADict_IsMalformed() => FailPickle(L("}K\u0001a."), TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Build_OnAPlainList_IsMalformedInSafeMode() => FailPickle(L("]}b."), TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Global_OsSystem_IsRefusedEvenWhenAllowed()
    {
        var pickle = L("cos\nsystem\n.");
        var e = FailPickle(pickle, TorchLoadErrorReason.UnsafeGlobal);
        Assert.Equal("os.system", e.GlobalName);
        Assert.Contains("blocked", e.Message);
        var allowed = FailPickle(pickle, TorchLoadErrorReason.UnsafeGlobal, new TorchLoadOptions { SafeGlobals = ["os.system"] });
        Assert.Equal("os.system", allowed.GlobalName);
    }

    [Theory]
    [InlineData("posix", "system")]
    [InlineData("nt", "system")]
    [InlineData("sys", "exit")]
    [InlineData("os.path", "join")]
    [InlineData("__main__", "MyModel")]
    [InlineData("torch.nn.modules.linear", "Linear")]
    public void Global_NotAllowed_IsUnsafeGlobalNamingIt(string module, string name) =>
        Assert.Equal($"{module}.{name}", FailPickle(L($"c{module}\n{name}\n."), TorchLoadErrorReason.UnsafeGlobal).GlobalName);

    [Fact]
    public void Reduce_NotAllowedCallable_IsUnsafeGlobal() =>
        Assert.Equal("builtins.eval", FailPickle(Pickle(Call("builtins", "eval", "1")), TorchLoadErrorReason.UnsafeGlobal).GlobalName);

    // ------------------------------------------------------------------ allowed values

    [Fact]
    public void Values_TorchDeviceSizeLayout()
    {
        var root = Tuple(Load(ZipOf(Pickle(new object?[]
        {
            Call("torch", "device", "cuda", 1L),
            Call("torch", "device", "cpu"),
            Call("torch", "Size", new long[] { 2, 3 }),
            Call("torch.serialization", "_get_layout", "torch.sparse_coo"),
            G("torch", "per_channel_affine"),
        }))).Root);
        Assert.Equal("cuda:1", Assert.IsType<TorchDevice>(root[0]).ToString());
        Assert.Equal("cpu", Assert.IsType<TorchDevice>(root[1]).ToString());
        Assert.Equal(new long[] { 2, 3 }, Assert.IsType<long[]>(root[2]));
        Assert.Same(TorchLayout.SparseCoo, root[3]);
        Assert.Equal("per_channel_affine", root[4]!.ToString());
    }

    [Fact]
    public void Values_ComplexSetBytearrayCodecsCounter()
    {
        var root = Tuple(Load(ZipOf(Pickle(new object?[]
        {
            Call("builtins", "complex", 1.5, -2.0),
            Call("builtins", "set", new PList(1L, 2L, 1L)),
            Call("builtins", "bytearray", Call("_codecs", "encode", "\u00ff\u0001", "latin1")),
            Call("_codecs", "encode", "h\u00e9", "latin1"),
            Call("collections", "Counter", new PDict(("a", 2L))),
        }))).Root);
        Assert.Equal(new Complex(1.5, -2), root[0]);
        var set = Assert.IsType<PySet>(root[1]);
        Assert.Equal(new object?[] { 1L, 2L }, set.ToArray());
        Assert.False(set.IsFrozen);
        Assert.Equal(new byte[] { 0xFF, 0x01 }, root[2]);
        Assert.Equal(new byte[] { 0x68, 0xE9 }, root[3]);
        var counter = Assert.IsType<PyDict>(root[4]);
        Assert.Equal("collections.Counter", counter.PythonType);
        Assert.Equal(2L, counter["a"]);
    }

    [Fact]
    public void Values_CodecsEncodeWithAnotherCodec_IsMalformed() =>
        FailPickle(Pickle(Call("_codecs", "encode", "abc", "rot13")), TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Values_BuiltinNamesMapToBuiltins()
    {
        var cp = Load(ZipOf(Pickle(new object?[] { Call("__builtin__", "set", new PList(1L)), Call("__builtin__", "complex", 0.0, 1.0) })));
        var root = Tuple(cp.Root);
        Assert.Equal(new object?[] { 1L }, Assert.IsType<PySet>(root[0]).ToArray());
        Assert.Equal(new Complex(0, 1), root[1]);
        Assert.Contains("builtins.set", cp.Globals);
        Assert.Contains("builtins.complex", cp.Globals);
        Assert.DoesNotContain(cp.Globals, g => g.StartsWith("__builtin__", StringComparison.Ordinal));
    }

    [Fact]
    public void Values_FrozenSet_RefusedInSafeModeLoadedInPermissive()
    {
        var pickle = Pickle(Call("__builtin__", "frozenset", new PList(1L, 2L)));
        Assert.Equal("builtins.frozenset", FailPickle(pickle, TorchLoadErrorReason.UnsafeGlobal).GlobalName);
        var s = Assert.IsType<PySet>(Load(ZipOf(pickle), Permissive).Root);
        Assert.True(s.IsFrozen);
        Assert.Equal(new object?[] { 1L, 2L }, s.ToArray());
    }

    [Fact]
    public void Values_EmptyBytes_RefusedInSafeModeLoadedInPermissive()
    {
        var pickle = Pickle(Call("__builtin__", "bytes"));
        Assert.Equal("builtins.bytes", FailPickle(pickle, TorchLoadErrorReason.UnsafeGlobal).GlobalName);
        Assert.Empty(Assert.IsType<byte[]>(Load(ZipOf(pickle), Permissive).Root));
    }

    // ------------------------------------------------------------------ sparse and quantized

    private static byte[] Coo() => Pickle(Call("torch._utils", "_rebuild_sparse_tensor",
        Call("torch.serialization", "_get_layout", "torch.sparse_coo"),
        new object?[]
        {
            TensorV2(Storage("LongStorage", "0", 2), 0, [1, 2], [2, 1]),
            TensorV2(Storage("FloatStorage", "1", 2), 0, [2], [1]),
            Call("torch", "Size", new long[] { 3 }),
            false,
        }));

    [Fact]
    public void Sparse_CooInRange_Loads()
    {
        var t = Tensor(Load(ZipOf(Coo(), ("0", Longs(0, 2)), ("1", Floats(5, 6)))).Root);
        Assert.Same(TorchLayout.SparseCoo, t.Layout);
        Assert.Equal(new long[] { 3 }, t.Shape);
        Assert.Equal(new long[] { 0, 2 }, Assert.IsType<long[]>(t.Indices!.ToArray()));
        Assert.Equal(new[] { 5f, 6f }, F32(t.Values));
    }

    [Fact]
    public void Sparse_CooIndexOutOfRange_IsInvalidTensorGeometry() =>
        FailPickle(Coo(), TorchLoadErrorReason.InvalidTensorGeometry, null, ("0", Longs(0, 3)), ("1", Floats(5, 6)));

    [Fact]
    public void Sparse_CooNegativeIndex_IsInvalidTensorGeometry() =>
        FailPickle(Coo(), TorchLoadErrorReason.InvalidTensorGeometry, null, ("0", Longs(-1, 0)), ("1", Floats(5, 6)));

    [Fact]
    public void Sparse_NegativeSize_IsInvalidTensorGeometry()
    {
        var pickle = Pickle(Call("torch._utils", "_rebuild_sparse_tensor",
            Call("torch.serialization", "_get_layout", "torch.sparse_coo"),
            new object?[]
            {
                TensorV2(Storage("LongStorage", "0", 2), 0, [1, 2], [2, 1]),
                TensorV2(Storage("FloatStorage", "1", 2), 0, [2], [1]),
                Call("torch", "Size", new long[] { -3 }),
                false,
            }));
        FailPickle(pickle, TorchLoadErrorReason.InvalidTensorGeometry, null, ("0", Longs(0, 2)), ("1", Floats(5, 6)));
    }

    [Fact]
    public void Sparse_SizeWhoseProductOverflows_ReportsSaturatedCountWithoutThrowing()
    {
        // a hostile size (2^40 x 2^40): ElementCount must not throw a raw OverflowException (audit rows read it)
        var pickle = Pickle(Call("torch._utils", "_rebuild_sparse_tensor",
            Call("torch.serialization", "_get_layout", "torch.sparse_coo"),
            new object?[]
            {
                TensorV2(Storage("LongStorage", "0", 2), 0, [2, 1], [1, 1]),
                TensorV2(Storage("FloatStorage", "1", 1), 0, [1], [1]),
                Call("torch", "Size", new long[] { 1L << 40, 1L << 40 }),
                false,
            }));
        var t = Tensor(Load(ZipOf(pickle, ("0", Longs(0, 0)), ("1", Floats(5)))).Root);
        Assert.Equal(long.MaxValue, t.ElementCount);
        var row = TorchLoad.Core.Audit.TensorInfo.From(t, hash: true).Single();
        Assert.Equal(long.MaxValue, row.ElementCount);
    }

    private static byte[] Csr(long rows = 2) => Pickle(Call("torch._utils", "_rebuild_sparse_tensor",
        Call("torch.serialization", "_get_layout", "torch.sparse_csr"),
        new object?[]
        {
            TensorV2(Storage("LongStorage", "0", rows + 1), 0, [rows + 1], [1]),
            TensorV2(Storage("LongStorage", "1", 2), 0, [2], [1]),
            TensorV2(Storage("FloatStorage", "2", 2), 0, [2], [1]),
            Call("torch", "Size", new long[] { rows, 2 }),
        }));

    [Fact]
    public void Sparse_CsrValid_Loads()
    {
        var t = Tensor(Load(ZipOf(Csr(), ("0", Longs(0, 1, 2)), ("1", Longs(1, 0)), ("2", Floats(3, 4)))).Root);
        Assert.Same(TorchLayout.SparseCsr, t.Layout);
        Assert.Equal(new long[] { 0, 1, 2 }, Assert.IsType<long[]>(t.CrowIndices!.ToArray()));
        Assert.Equal(new long[] { 1, 0 }, Assert.IsType<long[]>(t.ColIndices!.ToArray()));
    }

    [Fact]
    public void Sparse_CsrDecreasingCrow_IsInvalidTensorGeometry()
    {
        // 3 rows, crow starts at 0 and ends at nnz = 2, but decreases in the middle
        var e = FailPickle(Csr(3), TorchLoadErrorReason.InvalidTensorGeometry, null, ("0", Longs(0, 2, 1, 2)), ("1", Longs(0, 1)), ("2", Floats(3, 4)));
        Assert.Contains("decrease", e.Message);
    }

    [Fact]
    public void Sparse_CsrColumnOutOfRange_IsInvalidTensorGeometry() =>
        FailPickle(Csr(), TorchLoadErrorReason.InvalidTensorGeometry, null, ("0", Longs(0, 1, 2)), ("1", Longs(0, 2)), ("2", Floats(3, 4)));

    [Fact]
    public void Quantized_PerTensorScaleAndZeroPoint()
    {
        var pickle = Pickle(Call("torch._utils", "_rebuild_qtensor",
            Storage("QInt8Storage", "0", 3), 0L, new long[] { 3 }, new long[] { 1 },
            new object?[] { G("torch", "per_tensor_affine"), 0.5, 2L }, false, OrderedDict()));
        var t = Tensor(Load(ZipOf(pickle, ("0", [0x01, 0xFF, 0x05]))).Root);
        Assert.Equal("qint8", t.DType.Name);
        Assert.Equal("per_tensor_affine", t.QScheme!.Name);
        Assert.Equal(0.5, t.QScale);
        Assert.Equal(2L, t.QZeroPoint);
        Assert.Equal(new sbyte[] { 1, -1, 5 }, Assert.IsType<sbyte[]>(t.ToArray()));
    }

    // ------------------------------------------------------------------ map_location

    /// <summary>A device tag no machine running these tests has (cuda:0 unless it exists here).</summary>
    private static readonly string MissingDevice = DeviceRegistry.IsAvailable("cuda:0") ? "cuda:63" : "cuda:0";

    private static byte[] DeviceZip() => ZipOf(Pickle(Float32Tensor("0", 2, [2], location: MissingDevice)), ("0", Floats(1.5f, -2f)));

    [Fact]
    public void MapLocation_None_UnavailableDevice_IsDeviceUnavailable() =>
        Fails(DeviceZip(), TorchLoadErrorReason.DeviceUnavailable);

    [Fact]
    public void MapLocation_ToCpu_Loads()
    {
        var t = Tensor(Load(DeviceZip(), new TorchLoadOptions { MapLocation = MapLocation.ToDevice("cpu") }).Root);
        Assert.Equal(MissingDevice, t.Storage!.Location);
        Assert.Equal("cpu", t.Device);
        Assert.Equal(new[] { 1.5f, -2f }, F32(t));
    }

    [Fact]
    public void MapLocation_RemapDictionary_Loads()
    {
        var map = MapLocation.Remap(new Dictionary<string, string> { [MissingDevice] = "cpu" });
        var t = Tensor(Load(DeviceZip(), new TorchLoadOptions { MapLocation = map }).Root);
        Assert.Equal("cpu", t.Device);
        Assert.Equal(new[] { 1.5f, -2f }, F32(t));
    }

    [Fact]
    public void MapLocation_RemapOfAnotherTag_LeavesTheDeviceUnavailable()
    {
        var map = MapLocation.Remap(new Dictionary<string, string> { ["cuda:5"] = "cpu" });
        Fails(DeviceZip(), TorchLoadErrorReason.DeviceUnavailable, new TorchLoadOptions { MapLocation = map });
    }

    [Fact]
    public void MapLocation_CallbackReturningNull_FallsBackToDefaultAndFails()
    {
        var seen = new List<string>();
        var map = MapLocation.Callback((storage, tag) => { seen.Add(tag); return null; });
        Fails(DeviceZip(), TorchLoadErrorReason.DeviceUnavailable, new TorchLoadOptions { MapLocation = map });
        Assert.Equal(new[] { MissingDevice }, seen);
    }

    [Fact]
    public void MapLocation_MetadataOnly_NeedsNoDevice()
    {
        var cp = Load(DeviceZip(), new TorchLoadOptions { MetadataOnly = true });
        var s = Assert.Single(cp.Storages);
        Assert.Equal(MissingDevice, s.Location);
        Assert.Null(s.Buffer);
        Assert.True(s.FileOffset > 0);
    }
}
