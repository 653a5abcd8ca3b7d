using System.Buffers.Binary;
using System.Text;
using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Tests.Support;

namespace TorchLoad.Tests.Hostile;

/// <summary>
/// Zips that make an eager load read or inflate far more than the file holds, spread over many
/// records so that no single record looks large: overlapping stored records (each record's data runs
/// over the headers of the next ones to a shared tail) and deflated records that are each under the
/// inflate ratio but not together.
/// </summary>
public class ZipAmplificationTests
{
    /// <summary>
    /// Fifield's overlapping zip: K local headers one after the other, then a 1 MiB tail; record i's data
    /// starts after its own header and runs to the end of the tail. The pickle names every record, so an
    /// eager load would allocate K MiB from a file of about 1 MiB.
    /// </summary>
    [Fact]
    public void OverlappingStoredRecordsAreRefusedBeforeAnyIsRead()
    {
        const int K = 64, Tail = 1 << 20;
        string Name(int i) => $"archive/data/{i}";
        var headers = Enumerable.Range(0, K).Select(i => 30 + Encoding.ASCII.GetByteCount(Name(i))).ToArray();

        // data.pkl: {'t0': uint8 tensor over storage '0', ...}; sizes follow from the layout below
        var overlapStart = 0L; // set after data.pkl's record is laid out
        byte[] Pickle(long start)
        {
            var p = new HostilePickle().Proto(2).EmptyDict().Mark();
            var offset = start;
            for (var i = 0; i < K; i++)
            {
                offset += headers[i];
                var numel = start + headers.Sum() + Tail - offset;
                p.Str($"t{i}").Tensor(q => q.ZipStoragePid(i.ToString(System.Globalization.CultureInfo.InvariantCulture), numel, "ByteStorage"), 0, [numel], [1]);
            }
            return p.SetItems().Stop().ToArray();
        }
        var pklName = "archive/data.pkl";
        var pkl = Pickle(0);
        for (var pass = 0; pass < 3; pass++) { overlapStart = 30 + pklName.Length + pkl.Length; pkl = Pickle(overlapStart); }

        using var file = new MemoryStream();
        var central = new MemoryStream();
        void Local(string name, long size)
        {
            var w = new BinaryWriter(file);
            w.Write(0x04034B50u); w.Write((ushort)20); w.Write((ushort)0x800); w.Write((ushort)0);
            w.Write((ushort)0); w.Write((ushort)0x21); w.Write(0u); w.Write((uint)size); w.Write((uint)size);
            w.Write((ushort)Encoding.ASCII.GetByteCount(name)); w.Write((ushort)0); w.Write(Encoding.ASCII.GetBytes(name));
            w.Flush();
        }
        void Central(string name, long size, long headerOffset)
        {
            var c = new BinaryWriter(central);
            c.Write(0x02014B50u); c.Write((ushort)45); c.Write((ushort)20); c.Write((ushort)0x800); c.Write((ushort)0);
            c.Write((ushort)0); c.Write((ushort)0x21); c.Write(0u); c.Write((uint)size); c.Write((uint)size);
            c.Write((ushort)Encoding.ASCII.GetByteCount(name)); c.Write((ushort)0); c.Write((ushort)0); c.Write((ushort)0);
            c.Write((ushort)0); c.Write(0u); c.Write((uint)headerOffset); c.Write(Encoding.ASCII.GetBytes(name));
            c.Flush();
        }
        Local(pklName, pkl.Length); file.Write(pkl); Central(pklName, pkl.Length, 0);
        Assert.Equal(overlapStart, file.Position);
        var end = overlapStart + headers.Sum() + Tail;
        for (var i = 0; i < K; i++)
        {
            var at = file.Position;
            Local(Name(i), end - (at + headers[i]));
            Central(Name(i), end - (at + headers[i]), at);
        }
        file.Write(new byte[Tail]);
        var versionAt = file.Position;
        Local("archive/version", 2); file.Write("3\n"u8); Central("archive/version", 2, versionAt);
        var cdAt = file.Position;
        file.Write(central.ToArray());
        var eocd = new byte[22];
        BinaryPrimitives.WriteUInt32LittleEndian(eocd, 0x06054B50);
        BinaryPrimitives.WriteUInt16LittleEndian(eocd.AsSpan(8), K + 2);
        BinaryPrimitives.WriteUInt16LittleEndian(eocd.AsSpan(10), K + 2);
        BinaryPrimitives.WriteUInt32LittleEndian(eocd.AsSpan(12), (uint)central.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(eocd.AsSpan(16), (uint)cdAt);
        file.Write(eocd);

        var bytes = file.ToArray();
        foreach (var options in new[] { new TorchLoadOptions(), new TorchLoadOptions { WeightsOnly = false }, new TorchLoadOptions { Mmap = true } })
        {
            var e = CheckpointBuilder.Fails(bytes, TorchLoadErrorReason.InvalidArchive, options);
            Assert.Contains("starts inside record", e.Message);
        }
    }

    /// <summary>Two deflated records, each under -MaxInflateRatio times the file, together over it.</summary>
    [Fact]
    public void DeflatedRecordsCountTogetherAgainstTheInflateRatio()
    {
        const int Size = 1 << 20; // zeros: ~1 KiB deflated each
        var pkl = new HostilePickle().Proto(2).EmptyDict().Mark()
            .Str("a").Tensor(p => p.ZipStoragePid("0", Size / 4), 0, [Size / 4], [1])
            .Str("b").Tensor(p => p.ZipStoragePid("1", Size / 4), 0, [Size / 4], [1])
            .SetItems().Stop().ToArray();
        var z = new HostileZip();
        z.Add("archive/data.pkl", pkl);
        z.Add("archive/data/0", new byte[Size], method: 8);
        z.Add("archive/data/1", new byte[Size], method: 8);
        z.Add("archive/version", "3\n");
        var bytes = z.ToArray();
        var ratio = Size / bytes.Length + 1; // one record fits: Size <= ratio * file; two do not: 2 * Size > ratio * file
        Assert.True(2L * Size > (long)ratio * bytes.Length);

        var e = CheckpointBuilder.Fails(bytes, TorchLoadErrorReason.LimitExceeded, new TorchLoadOptions { Limits = LoadLimits.Default with { MaxInflateRatio = ratio } });
        Assert.Equal(nameof(LoadLimits.MaxInflateRatio), e.LimitName);

        // raised to cover both, it loads
        var c = CheckpointBuilder.Load(bytes, new TorchLoadOptions { Limits = LoadLimits.Default with { MaxInflateRatio = 2 * ratio } });
        Assert.Equal(2, c.Storages.Count);
    }
}
