using System.IO.Compression;
using TorchLoad.Core;
using TorchLoad.Core.Devices;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Safetensors;
using TorchLoad.Core.Tensors;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.CheckpointBuilder;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// Files that change while they are used (a training job rewriting last.ckpt, an audit reading the same folder),
/// checkpoints read from streams, and an export that never destroys the file it replaces.
/// </summary>
public sealed class LiveFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "torchload-live", Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private string Write(byte[] bytes, string name = "ckpt.pt")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>{'w': float32[n] 0..n-1, 't': a transposed [4, n/4] view of the same storage}.</summary>
    private static byte[] StateDict(int n = 1 << 16)
    {
        var values = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        var pickle = Pickle(OrderedDict(
            ("w", Float32Tensor("0", n, [n])),
            ("t", TensorV2(Storage("FloatStorage", "0", n), 0, [n / 4, 4], [1, n / 4]))));
        return new TorchZipBuilder(pickle).Storage("0", Floats(values)).Build();
    }

    private static TorchTensor Get(TorchCheckpoint cp, string key) => Assert.IsType<TorchTensor>(((PyDict)cp.Root!)[key]);

    /// <summary>Another process truncating the file (torch.save opens with 'wb'); our handle stays open.</summary>
    private static void Truncate(string path, long length)
    {
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        RandomAccess.SetLength(h, length);
    }

    private static void AssertChanged(Action read, string path)
    {
        var e = Assert.Throws<TorchLoadException>(read);
        Assert.Equal(TorchLoadErrorReason.CheckpointChanged, e.Reason);
        Assert.Contains(path, e.Message);
    }

    // ------------------------------------------------------------------ -Mmap: reads through the handle, never a mapping

    [Fact]
    public void Mmap_ReadsValuesFromTheFile_WithoutHoldingThem()
    {
        var path = Write(StateDict());
        var cp = TorchLoader.Load(path, new TorchLoadOptions { Mmap = true });
        var w = Get(cp, "w");
        Assert.True(w.Storage!.IsMapped);
        Assert.False(w.Storage.Buffer!.IsHostAccessible); // nothing of the file is in memory: bytes are read when asked for
        Assert.Equal(Enumerable.Range(0, 1 << 16).Select(i => (float)i).ToArray(), (float[])w.ToArray());
        var eager = TorchLoader.Load(path);
        Assert.Equal(Get(eager, "t").ToByteArray(), Get(cp, "t").ToByteArray());
        DeviceRegistry.MoveTo(w.Storage, "cpu"); // already on the CPU: stays read from the file
        Assert.True(w.Storage.IsMapped);
    }

    [Fact]
    public void Mmap_FileTruncatedAfterTheLoad_EveryReadIsCheckpointChanged()
    {
        var path = Write(StateDict());
        var cp = TorchLoader.Load(path, new TorchLoadOptions { Mmap = true });
        Truncate(path, 0);
        AssertChanged(() => Get(cp, "w").ToByteArray(), path);
        AssertChanged(() => Get(cp, "w").ToArray(), path);
        AssertChanged(() => Get(cp, "t").ToByteArray(), path); // a strided view
        AssertChanged(() => Get(cp, "w").Storage!.ToByteArray(), path);
        var tmp = Path.Combine(_dir, "out.safetensors");
        AssertChanged(() => SafetensorsFile.Write(tmp, [("w", Get(cp, "w"))], null, overwrite: false), path);
        Assert.False(File.Exists(tmp));
    }

    [Fact]
    public void Mmap_FileShrunkBelowAStorage_IsCheckpointChanged()
    {
        var bytes = StateDict();
        var path = Write(bytes);
        var cp = TorchLoader.Load(path, new TorchLoadOptions { Mmap = true });
        Truncate(path, bytes.Length / 2);
        AssertChanged(() => Get(cp, "w").ToByteArray(), path);
    }

    [Fact]
    public void Mmap_FileRewrittenWithTheSameSize_IsCheckpointChanged()
    {
        var bytes = StateDict();
        var path = Write(bytes);
        var before = File.GetLastWriteTimeUtc(path);
        var cp = TorchLoader.Load(path, new TorchLoadOptions { Mmap = true });
        using (var h = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            RandomAccess.Write(h, new byte[bytes.Length], 0); // same size, other bytes
        File.SetLastWriteTimeUtc(path, before.AddSeconds(2)); // the clock tick of the rewrite, made certain
        AssertChanged(() => Get(cp, "w").ToArray(), path);
    }

    [Fact]
    public void Mmap_DisposedStorage_IsAnInvalidOperationNotACrash()
    {
        var path = Write(StateDict());
        var cp = TorchLoader.Load(path, new TorchLoadOptions { Mmap = true });
        var w = Get(cp, "w");
        w.Storage!.Dispose();
        Assert.Throws<InvalidOperationException>(() => w.ToByteArray());
    }

    // ------------------------------------------------------------------ eager loads of a file that changes

    [Fact]
    public void Eager_ZipRewrittenDuringTheLoad_IsCheckpointChangedNamingTheFile()
    {
        var path = Write(StateDict());
        var touched = false;
        var options = new TorchLoadOptions
        {
            Progress = (_, _) =>
            {
                if (touched) return;
                touched = true;
                File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(5));
            },
        };
        AssertChanged(() => TorchLoader.Load(path, options), path);
    }

    [Fact]
    public void Eager_LegacyTruncatedDuringTheLoad_IsCheckpointChanged()
    {
        var n = 1 << 20; // a large storage: read by ReadStorages' large path
        var pickle = Pickle(Float32Tensor("k", n, [n], legacy: true));
        var path = Write(Legacy(pickle, ["k"], [(n, new byte[4 * n])]));
        var options = new TorchLoadOptions { Progress = (_, _) => Truncate(path, 100) };
        AssertChanged(() => TorchLoader.Load(path, options), path);
    }

    // ------------------------------------------------------------------ streams (torch.load's file objects)

    public static IEnumerable<object[]> Formats()
    {
        var n = 3;
        yield return ["zip", new TorchZipBuilder(Pickle(Float32Tensor("0", n, [n]))).Storage("0", Floats(1, 2, 3)).Build()];
        yield return ["legacy", Legacy(Pickle(Float32Tensor("k", n, [n], legacy: true)), ["k"], [(n, Floats(1, 2, 3))])];
        var storages = Concat(Pickle(1L), Pickle(new object?[] { "0", "cpu", G("torch", "FloatStorage") }), I64(3), Floats(1, 2, 3), Pickle(new PList()));
        var tensors = Concat(Pickle(1L), Pickle(new object?[] { "1", "0", G("torch", "FloatTensor") }), I32(1), new byte[4], I64(3), I64(1), I64(0));
        yield return ["tar", Tar(("sys_info", Pickle(new PDict(("protocol_version", 1000L)))), ("pickle", L("\u0080\u0002P1\n.")), ("tensors", tensors), ("storages", storages))];
    }

    private static float[] Values(TorchCheckpoint cp) => (float[])Assert.IsType<TorchTensor>(cp.Root).ToArray();

    private static readonly TorchLoadOptions Permissive = new() { WeightsOnly = false };

    [Theory]
    [MemberData(nameof(Formats))]
    public void Stream_Seekable_IsReadInPlaceFromItsPosition(string format, byte[] file)
    {
        var path = Write(Concat(new byte[1000], file));
        using var fs = File.OpenRead(path);
        fs.Position = 1000; // a file object positioned after a header of its own
        var cp = TorchLoader.Load(fs, Permissive, fs.Name);
        Assert.Equal(format, cp.Format);
        Assert.Equal(new[] { 1f, 2f, 3f }, Values(cp));
        Assert.Equal(fs.Name, cp.Path);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Stream_NonSeekable_IsBuffered(string format, byte[] file)
    {
        var zipped = new MemoryStream();
        using (var gz = new GZipStream(zipped, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(file);
        zipped.Position = 0;
        using var unzip = new GZipStream(zipped, CompressionMode.Decompress);
        Assert.False(unzip.CanSeek);
        var cp = TorchLoader.Load(unzip, Permissive);
        Assert.Equal(format, cp.Format);
        Assert.Equal(new[] { 1f, 2f, 3f }, Values(cp));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Stream_ByteArray_IsReadWithoutACopy(string format, byte[] file)
    {
        var cp = TorchLoader.Load(new MemoryStream(Concat(new byte[7], file), 7, file.Length, writable: false, publiclyVisible: true), Permissive);
        Assert.Equal(format, cp.Format);
        Assert.Equal(new[] { 1f, 2f, 3f }, Values(cp));
    }

    [Fact]
    public void Stream_NonSeekableOverTheLimit_IsLimitExceeded()
    {
        var file = StateDict();
        var e = Assert.Throws<TorchLoadException>(() => TorchLoader.Load(new NonSeekable(file), new TorchLoadOptions { Limits = LoadLimits.Default with { MaxStreamBytes = file.Length - 1 } }));
        Assert.Equal(TorchLoadErrorReason.LimitExceeded, e.Reason);
        Assert.Equal(nameof(LoadLimits.MaxStreamBytes), e.LimitName);
        // exactly at the limit loads
        Assert.Equal("zip", TorchLoader.Load(new NonSeekable(file), new TorchLoadOptions { Limits = LoadLimits.Default with { MaxStreamBytes = file.Length } }).Format);
    }

    [Fact]
    public void Stream_NonSeekableWithTheLargestLimit_Loads()
    {
        // MaxStreamBytes = long.MaxValue (allowed by the cmdlets) overflowed the buffer's growth past 1 MiB (review finding)
        var file = StateDict(1 << 19);
        var cp = TorchLoader.Load(new NonSeekable(file), new TorchLoadOptions { Limits = LoadLimits.Default with { MaxStreamBytes = long.MaxValue } });
        Assert.Equal(1 << 19, Get(cp, "w").ElementCount);
    }

    [Fact]
    public void Stream_CorruptGZip_IsATypedErrorForLoadAndAudit()
    {
        // InvalidDataException from a decoding stream escaped as a raw .NET exception (review finding)
        var packed = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(packed, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true)) gz.Write(StateDict());
        var bytes = packed.ToArray();
        bytes[bytes.Length / 2] ^= 0xFF;
        System.IO.Compression.GZipStream Open() => new(new MemoryStream(bytes), System.IO.Compression.CompressionMode.Decompress);
        Assert.Equal(TorchLoadErrorReason.InvalidArgument, Assert.Throws<TorchLoadException>(() => TorchLoader.Load(Open())).Reason);
        var audit = Core.Audit.CheckpointAudit.Audit(Open(), "corrupt.gz");
        Assert.Equal(nameof(TorchLoadErrorReason.InvalidArgument), audit.ErrorId);
        Assert.Equal(Core.Audit.AuditVerdict.Corrupt, audit.Verdict);
    }

    [Fact]
    public void Stream_WithMmap_IsInvalidArgument()
    {
        var e = Assert.Throws<TorchLoadException>(() => TorchLoader.Load(new MemoryStream(StateDict()), new TorchLoadOptions { Mmap = true }));
        Assert.Equal(TorchLoadErrorReason.InvalidArgument, e.Reason);
    }

    [Fact]
    public void Stream_Audit_ChecksCrcsLikeAFile()
    {
        var bytes = StateDict();
        var fromFile = Core.Audit.CheckpointAudit.Audit(Write(bytes));
        var fromStream = Core.Audit.CheckpointAudit.Audit(new NonSeekable(bytes), "piped");
        Assert.Equal(fromFile.Verdict, fromStream.Verdict);
        Assert.Equal(fromFile.TensorCount, fromStream.TensorCount);
        Assert.Equal("piped", fromStream.Path);
        var corrupt = (byte[])bytes.Clone();
        corrupt[bytes.Length / 2] ^= 0xFF; // inside the storage record
        Assert.Equal(Core.Audit.AuditVerdict.Corrupt, Core.Audit.CheckpointAudit.Audit(new MemoryStream(corrupt), "x").Verdict);
    }

    [Fact]
    public void Legacy_ObjectPickleLargerThanOneReadChunk_Loads()
    {
        // 40,000 keys: the object pickle is several hundred KiB, read in chunks that grow (PickleReader)
        var items = Enumerable.Range(0, 40_000).Select(i => ((object?)$"key{i}", (object?)(long)i)).ToArray();
        var cp = Load(Legacy(Pickle(new PDict(items)), [], []));
        Assert.Equal(39_999L, ((PyDict)cp.Root!)["key39999"]);
    }

    // ------------------------------------------------------------------ the export never destroys before it succeeds

    private (string Path, byte[] Old) ExistingDestination()
    {
        var old = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
        return (Write(old, "model.safetensors"), old);
    }

    private void AssertUntouched(string path, byte[] old)
    {
        Assert.Equal(old, File.ReadAllBytes(path));
        Assert.Equal(new[] { "model.safetensors" }, Directory.GetFiles(_dir).Select(Path.GetFileName).ToArray());
    }

    private static List<(string, TorchTensor)> Tensors() =>
        [("w", Get(Load(StateDict()), "w"))];

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(100)]
    [InlineData(100_000)]
    public void Export_OutputFailsAfterNBytes_LeavesTheOldFileAndNoTemporary(int failAfter)
    {
        var (path, old) = ExistingDestination();
        var e = Assert.Throws<IOException>(() => SafetensorsFile.Write(path, Tensors(), null, overwrite: true, default, s => new FailingStream(s, failAfter)));
        Assert.Contains("No space left", e.Message);
        AssertUntouched(path, old);
    }

    [Fact]
    public void Export_Cancelled_LeavesTheOldFileAndNoTemporary()
    {
        var (path, old) = ExistingDestination();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var e = Assert.Throws<TorchLoadException>(() => SafetensorsFile.Write(path, Tensors(), null, overwrite: true, cts.Token));
        Assert.Equal(TorchLoadErrorReason.Cancelled, e.Reason);
        AssertUntouched(path, old);
    }

    [Fact]
    public void Export_Succeeds_ReplacesTheFileWhole()
    {
        var (path, _) = ExistingDestination();
        SafetensorsFile.Write(path, Tensors(), null, overwrite: true);
        var (tensors, _) = SafetensorsFile.Read(path);
        Assert.Equal("w", Assert.Single(tensors).Name);
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Export_WithoutOverwrite_RefusesAndLeavesTheFile()
    {
        var (path, old) = ExistingDestination();
        var e = Assert.Throws<TorchLoadException>(() => SafetensorsFile.Write(path, Tensors(), null, overwrite: false));
        Assert.Equal(TorchLoadErrorReason.InvalidArgument, e.Reason);
        AssertUntouched(path, old);
    }

    /// <summary>A write stream that fails like a full disk after <c>failAfter</c> bytes.</summary>
    private sealed class FailingStream(Stream inner, long failAfter) : Stream
    {
        private long _written;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var room = (int)Math.Max(0, Math.Min(buffer.Length, failAfter - _written));
            inner.Write(buffer[..room]);
            _written += room;
            if (room < buffer.Length) throw new IOException("No space left on device");
        }
    }

    /// <summary>A stream that cannot seek (an HTTP response).</summary>
    private sealed class NonSeekable(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 1000));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
