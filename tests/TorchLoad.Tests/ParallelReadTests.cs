using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.CheckpointBuilder;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>Large storages are read by parallel workers; what they share (the file's small-read window, the buffers) must stay consistent.</summary>
public class ParallelReadTests
{
    private const long Numel = (4L << 20) / 4 + 256; // just over the parallel-read threshold

    /// <summary>A zip with data.pkl = {'t0': float32[Numel] over storage '&lt;prefix&gt;0', ...}; the caller adds the records.</summary>
    private static ZipBuilder StateDictOf(int count, string keyPrefix)
    {
        var items = Enumerable.Range(0, count).Select(i => ((object?)$"t{i}", (object?)Float32Tensor($"{keyPrefix}{i}", Numel, [Numel]))).ToArray();
        var z = new ZipBuilder();
        z.Add("archive/data.pkl", Pickle(new PDict(items)));
        return z;
    }

    /// <summary>
    /// Small reads from several threads at once (parallel workers inflating, or reading a chunk's tail, share the
    /// file's small-read window) return the file's own bytes. Before the window had a lock, one thread's refill
    /// moved it under another's copy: wrong bytes, or a copy from outside the native window (found by review).
    /// </summary>
    [Fact]
    public void SmallReadsFromManyThreadsSeeTheFileBytes()
    {
        const int Size = 8 << 20;
        var content = new byte[Size];
        for (var i = 0; i < Size; i++) content[i] = (byte)(i * 31 % 251);
        var path = Path.Combine(Path.GetTempPath(), $"torchload-window-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, content);
        try
        {
            using var file = new TorchLoad.Core.Archive.FileSource(path);
            var failures = 0;
            Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, worker =>
            {
                var random = new Random(worker);
                var buffer = new byte[4096];
                for (var n = 0; n < 20_000; n++)
                {
                    var length = random.Next(1, buffer.Length + 1);
                    var offset = random.NextInt64(0, Size - length);
                    file.ReadExactly(offset, buffer.AsSpan(0, length));
                    if (!buffer.AsSpan(0, length).SequenceEqual(content.AsSpan((int)offset, length))) Interlocked.Increment(ref failures);
                }
            });
            Assert.Equal(0, failures);
        }
        finally { File.Delete(path); }
    }

    /// <summary>Deflated storages inflated on parallel workers, with stored records between them (each input read misses the window), keep their own bytes.</summary>
    [Fact]
    public void DeflatedStoragesInflatedInParallelKeepTheirOwnBytes()
    {
        const int K = 16;
        var z = StateDictOf(K, "d");
        z.Add("archive/byteorder", "little"u8.ToArray());
        var pad = new byte[(1 << 20) + (128 << 10)];
        Array.Fill(pad, (byte)0xAB);
        for (var i = 0; i < K; i++)
        {
            var data = new byte[Numel * 4];
            Array.Fill(data, (byte)(i + 1));
            z.Add($"archive/data/d{i}", data).Method = 8;
            z.Add($"archive/pad{i}", pad);
        }
        z.Add("archive/version", "3\n"u8.ToArray());
        var bytes = z.Build();
        for (var round = 0; round < 2; round++)
        {
            var root = Assert.IsType<PyDict>(Load(bytes).Root);
            for (var i = 0; i < K; i++)
            {
                var storage = Assert.IsType<TorchTensor>(root[$"t{i}"]).Storage!;
                var bad = storage.ToByteArray().AsSpan().IndexOfAnyExcept((byte)(i + 1));
                Assert.True(bad < 0, $"round {round}: t{i} has a foreign byte at {bad}");
            }
        }
    }

    /// <summary>
    /// Progress that throws (PowerShell's WriteProgress after Ctrl+C throws PipelineStoppedException) ends the
    /// load with that exception, after the workers have stopped: the buffers not yet handed to a storage are
    /// freed then, never while a worker reads into them.
    /// </summary>
    [Fact]
    public void ThrowingProgressStopsTheWorkersAndSurfacesAsIs()
    {
        const int K = 12;
        var z = StateDictOf(K, "s");
        for (var i = 0; i < K; i++) z.Add($"archive/data/s{i}", new byte[Numel * 4]);
        z.Add("archive/version", "3\n"u8.ToArray());
        var bytes = z.Build();
        var calls = 0;
        var options = new TorchLoadOptions { Progress = (_, _) => { if (Interlocked.Increment(ref calls) == 1) throw new OperationCanceledException("stopped by the host"); } };
        var e = Assert.Throws<TorchLoadException>(() => Load(bytes, options));
        Assert.Equal(TorchLoadErrorReason.Cancelled, e.Reason);
        Assert.Contains("stopped by the host", e.InnerException?.Message);
        // the same file loads afterwards, every byte in place
        var root = Assert.IsType<PyDict>(Load(bytes).Root);
        Assert.Equal(K, root.Count);
    }

    /// <summary>
    /// The audit hashes large stored records on parallel workers (64 MiB and more in all): every record's CRC is
    /// still compared with its own directory entry, and a flipped byte is reported for that record only.
    /// </summary>
    [Fact]
    public void AuditChecksTheCrcOfEveryLargeRecordOnParallelWorkers()
    {
        const int Count = 5, Size = 16 << 20;
        var z = new ZipBuilder();
        var items = Enumerable.Range(0, Count).Select(i => ((object?)$"t{i}", (object?)Float32Tensor($"{i}", Size / 4, [Size / 4]))).ToArray();
        z.Add("archive/data.pkl", Pickle(new PDict(items)));
        for (var i = 0; i < Count; i++)
        {
            var data = new byte[Size];
            new Random(i).NextBytes(data);
            z.Add($"archive/data/{i}", data);
        }
        z.Add("archive/version", "3\n"u8.ToArray());
        var file = z.Build();
        var path = Path.Combine(Path.GetTempPath(), $"torchload-crc-{Guid.NewGuid():N}.pt");
        try
        {
            File.WriteAllBytes(path, file);
            var clean = Core.Audit.CheckpointAudit.Audit(path);
            Assert.Equal(Core.Audit.AuditVerdict.Safe, clean.Verdict);
            Assert.Equal(Count, clean.TensorCount);
            var record3 = z["archive/data/3"];
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
            {
                var offset = FindRecordData(file, record3.Data);
                fs.Position = offset + Size / 2;
                var b = fs.ReadByte();
                fs.Position = offset + Size / 2;
                fs.WriteByte((byte)(b ^ 0xFF));
            }
            var corrupt = Core.Audit.CheckpointAudit.Audit(path);
            Assert.Equal(Core.Audit.AuditVerdict.Corrupt, corrupt.Verdict);
            var mismatch = Assert.Single(corrupt.Findings, f => f.StartsWith("CRC mismatch", StringComparison.Ordinal));
            Assert.Contains("archive/data/3", mismatch);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Where a record's bytes start in the built file (its first 64 bytes are unique random data).</summary>
    private static int FindRecordData(byte[] file, byte[] data) => file.AsSpan().IndexOf(data.AsSpan(0, 64));
}
