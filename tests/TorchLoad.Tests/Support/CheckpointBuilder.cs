using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;
using TorchLoad.Core;
using TorchLoad.Core.Errors;

namespace TorchLoad.Tests.Support;

/// <summary>One zip entry as the test wants it written, byte for byte.</summary>
internal sealed class ZipEntry
{
    public ZipEntry(string name, byte[] data)
    {
        Name = name;
        Data = data;
    }

    public string Name { get; set; }
    public byte[] Data { get; set; }

    /// <summary>0 stored, 8 deflated; any other number is written as is over the raw data.</summary>
    public ushort Method { get; set; }

    /// <summary>Extra general-purpose flag bits (bit 0 = encrypted); bit 11 (UTF-8) is always set, bit 3 when a data descriptor follows.</summary>
    public ushort ExtraFlags { get; set; }

    /// <summary>torch's writer: sizes in a trailing data descriptor (not for empty records).</summary>
    public bool DataDescriptor { get; set; } = true;

    /// <summary>Payload alignment reached through the 'FB' extra field of the local header; null writes no FB field.</summary>
    public int? Alignment { get; set; } = 64;

    /// <summary>Exact FB padding length (overrides <see cref="Alignment"/>).</summary>
    public int? Padding { get; set; }

    /// <summary>CRC-32 to write; null computes it.</summary>
    public uint? Crc { get; set; }

    /// <summary>Write 0xFFFFFFFF for sizes and offset in the central directory and the real values in a ZIP64 extra (ID 1).</summary>
    public bool Zip64Central { get; set; }

    // filled by ZipBuilder.Build
    public long HeaderOffset { get; internal set; }
    public long DataOffset { get; internal set; }
}

/// <summary>Writes zip archives the way PyTorch's miniz writer does (or deliberately otherwise).</summary>
internal sealed class ZipBuilder
{
    public List<ZipEntry> Entries { get; } = [];

    /// <summary>ZIP64 end-of-central-directory record and locator before the classic EOCD (torch always writes them).</summary>
    public bool Zip64End { get; set; } = true;

    public ZipEntry Add(string name, byte[] data)
    {
        var e = new ZipEntry(name, data);
        Entries.Add(e);
        return e;
    }

    public ZipEntry this[string name] => Entries.Single(e => e.Name == name);

    public byte[] Build()
    {
        var o = new MemoryStream();
        var central = new MemoryStream();
        foreach (var e in Entries)
        {
            var name = Encoding.UTF8.GetBytes(e.Name);
            var payload = e.Method == 8 ? Deflate(e.Data) : e.Data;
            var crc = e.Crc ?? Crc32.Compute(e.Data);
            var descriptor = e.DataDescriptor && e.Data.Length > 0;
            var flags = (ushort)(0x0800 | e.ExtraFlags | (descriptor ? 0x0008 : 0));
            e.HeaderOffset = o.Position;

            byte[] extra = [];
            if (e.Padding is not null || e.Alignment is not null)
            {
                var start = e.HeaderOffset + 30 + name.Length + 4;
                var pad = e.Padding ?? (int)((start + e.Alignment!.Value - 1) / e.Alignment.Value * e.Alignment.Value - start);
                extra = new byte[4 + pad];
                extra[0] = (byte)'F';
                extra[1] = (byte)'B';
                BinaryPrimitives.WriteUInt16LittleEndian(extra.AsSpan(2), (ushort)pad);
                extra.AsSpan(4).Fill((byte)'Z');
            }

            W32(o, 0x04034B50);
            W16(o, 20);
            W16(o, flags);
            W16(o, e.Method);
            W16(o, 0); W16(o, 0); // DOS time, date
            W32(o, descriptor ? 0 : crc);
            W32(o, descriptor ? 0 : (uint)payload.Length);
            W32(o, descriptor ? 0 : (uint)e.Data.Length);
            W16(o, (ushort)name.Length);
            W16(o, (ushort)extra.Length);
            o.Write(name);
            o.Write(extra);
            e.DataOffset = o.Position;
            o.Write(payload);
            if (descriptor)
            {
                W32(o, 0x08074B50);
                W32(o, crc);
                W32(o, (uint)payload.Length);
                W32(o, (uint)e.Data.Length);
            }

            byte[] cextra = [];
            if (e.Zip64Central)
            {
                cextra = new byte[4 + 24];
                BinaryPrimitives.WriteUInt16LittleEndian(cextra, 1);
                BinaryPrimitives.WriteUInt16LittleEndian(cextra.AsSpan(2), 24);
                BinaryPrimitives.WriteInt64LittleEndian(cextra.AsSpan(4), e.Data.Length);
                BinaryPrimitives.WriteInt64LittleEndian(cextra.AsSpan(12), payload.Length);
                BinaryPrimitives.WriteInt64LittleEndian(cextra.AsSpan(20), e.HeaderOffset);
            }
            W32(central, 0x02014B50);
            W16(central, 0x031E); // made by
            W16(central, e.Zip64Central ? (ushort)45 : (ushort)20);
            W16(central, flags);
            W16(central, e.Method);
            W16(central, 0); W16(central, 0);
            W32(central, crc);
            W32(central, e.Zip64Central ? 0xFFFFFFFF : (uint)payload.Length);
            W32(central, e.Zip64Central ? 0xFFFFFFFF : (uint)e.Data.Length);
            W16(central, (ushort)name.Length);
            W16(central, (ushort)cextra.Length);
            W16(central, 0); // comment
            W16(central, 0); // disk
            W16(central, 0); // internal attributes
            W32(central, 0); // external attributes
            W32(central, e.Zip64Central ? 0xFFFFFFFF : (uint)e.HeaderOffset);
            central.Write(name);
            central.Write(cextra);
        }

        var cdOffset = o.Position;
        o.Write(central.ToArray());
        var cdSize = o.Position - cdOffset;
        if (Zip64End)
        {
            var z64 = o.Position;
            W32(o, 0x06064B50);
            W64(o, 44);
            W16(o, 45); W16(o, 45);
            W32(o, 0); W32(o, 0);
            W64(o, Entries.Count); W64(o, Entries.Count);
            W64(o, cdSize); W64(o, cdOffset);
            W32(o, 0x07064B50);
            W32(o, 0);
            W64(o, z64);
            W32(o, 1);
        }
        W32(o, 0x06054B50);
        W16(o, 0); W16(o, 0);
        W16(o, (ushort)Entries.Count); W16(o, (ushort)Entries.Count);
        W32(o, (uint)cdSize);
        W32(o, (uint)cdOffset);
        W16(o, 0);
        return o.ToArray();
    }

    public static byte[] Deflate(byte[] data)
    {
        var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.Optimal, leaveOpen: true)) d.Write(data);
        return ms.ToArray();
    }

    private static void W16(Stream s, ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); s.Write(b); }
    private static void W32(Stream s, uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); s.Write(b); }
    private static void W64(Stream s, long v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64LittleEndian(b, v); s.Write(b); }
}

internal static class Crc32
{
    private static readonly uint[] Table = Enumerable.Range(0, 256).Select(n =>
    {
        var c = (uint)n;
        for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var c = 0xFFFFFFFF;
        foreach (var b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFF;
    }
}

/// <summary>A torch.save zip checkpoint: &lt;prefix&gt;/data.pkl, byteorder, data/&lt;key&gt;, version, in torch's order.</summary>
internal sealed class TorchZipBuilder
{
    public TorchZipBuilder(byte[] pickle) => Pickle = pickle;

    public string Prefix { get; set; } = "archive";
    public byte[] Pickle { get; set; }
    public List<(string Key, byte[] Data)> Storages { get; } = [];
    public string? Version { get; set; } = "3\n";
    public string? DataVersion { get; set; }
    public string? ByteOrder { get; set; } = "little";

    /// <summary>More records, named relative to the prefix.</summary>
    public List<(string Name, byte[] Data)> Extra { get; } = [];

    public TorchZipBuilder Storage(string key, byte[] data) { Storages.Add((key, data)); return this; }

    public ZipBuilder ToZip()
    {
        var z = new ZipBuilder();
        z.Add($"{Prefix}/data.pkl", Pickle);
        if (ByteOrder is not null) z.Add($"{Prefix}/byteorder", Encoding.ASCII.GetBytes(ByteOrder));
        foreach (var (key, data) in Storages) z.Add($"{Prefix}/data/{key}", data);
        foreach (var (name, data) in Extra) z.Add($"{Prefix}/{name}", data);
        if (Version is not null) z.Add($"{Prefix}/version", Encoding.ASCII.GetBytes(Version));
        if (DataVersion is not null) z.Add($"{Prefix}/.data/version", Encoding.ASCII.GetBytes(DataVersion));
        return z;
    }

    public byte[] Build() => ToZip().Build();
}

/// <summary>Legacy streams, tar checkpoints, little-endian blobs, and loading them from temp files.</summary>
internal static class CheckpointBuilder
{
    public static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");

    /// <summary>sys_info as torch writes it (ignored by the loader).</summary>
    public static PDict SysInfo => new(("protocol_version", 1001L), ("little_endian", true),
        ("type_sizes", new PDict(("short", 2L), ("int", 4L), ("long", 4L))));

    /// <summary>
    /// magic, 1001, sys_info, the object pickle, the key list, then per blob: int64 LE count + bytes.
    /// <paramref name="blobs"/> give the count written to the file (may lie) and the raw bytes.
    /// </summary>
    public static byte[] Legacy(byte[] objectPickle, IReadOnlyList<string> keys, IReadOnlyList<(long Count, byte[] Data)> blobs,
        object? magic = null, long protocolVersion = 1001)
    {
        var o = new MemoryStream();
        o.Write(PickleBuilder.Pickle(magic ?? LegacyMagic));
        o.Write(PickleBuilder.Pickle(protocolVersion));
        o.Write(PickleBuilder.Pickle(SysInfo));
        o.Write(objectPickle);
        o.Write(PickleBuilder.Pickle(new PList(keys.Cast<object?>().ToArray())));
        foreach (var (count, data) in blobs)
        {
            o.Write(I64(count));
            o.Write(data);
        }
        return o.ToArray();
    }

    /// <summary>A ustar archive of regular-file members (512-byte headers with valid checksums).</summary>
    public static byte[] Tar(params (string Name, byte[] Data)[] members)
    {
        var o = new MemoryStream();
        foreach (var (name, data) in members)
        {
            var h = new byte[512];
            Encoding.ASCII.GetBytes(name).CopyTo(h, 0);
            Encoding.ASCII.GetBytes("0000644\0").CopyTo(h, 100);
            Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 108);
            Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 116);
            Encoding.ASCII.GetBytes(Convert.ToString(data.Length, 8).PadLeft(11, '0') + "\0").CopyTo(h, 124);
            Encoding.ASCII.GetBytes("00000000000\0").CopyTo(h, 136);
            h[156] = (byte)'0';
            Encoding.ASCII.GetBytes("ustar\0").CopyTo(h, 257);
            Encoding.ASCII.GetBytes("00").CopyTo(h, 263);
            for (var i = 148; i < 156; i++) h[i] = (byte)' ';
            var sum = h.Sum(b => (long)b);
            Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(h, 148);
            o.Write(h);
            o.Write(data);
            var pad = (512 - data.Length % 512) % 512;
            o.Write(new byte[pad]);
        }
        o.Write(new byte[1024]);
        return o.ToArray();
    }

    // ---------------------------------------------------------------- little-endian blobs

    public static byte[] I64(long v) { var b = new byte[8]; BinaryPrimitives.WriteInt64LittleEndian(b, v); return b; }
    public static byte[] I32(int v) { var b = new byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, v); return b; }
    public static byte[] Floats(params float[] v) { var b = new byte[v.Length * 4]; for (var i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(i * 4), v[i]); return b; }
    public static byte[] FloatsBigEndian(params float[] v) { var b = new byte[v.Length * 4]; for (var i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleBigEndian(b.AsSpan(i * 4), v[i]); return b; }
    public static byte[] Longs(params long[] v) { var b = new byte[v.Length * 8]; for (var i = 0; i < v.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(i * 8), v[i]); return b; }
    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    // ---------------------------------------------------------------- loading

    private static readonly string TempDir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "torchload-tests")).FullName;

    /// <summary>Writes the bytes to a fresh temp file, loads it, deletes the file.</summary>
    public static TorchCheckpoint Load(byte[] file, TorchLoadOptions? options = null)
    {
        var path = Path.Combine(TempDir, $"{Guid.NewGuid():N}.pt");
        File.WriteAllBytes(path, file);
        try { return TorchLoader.Load(path, options); }
        finally
        {
            try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    public static TorchLoadException Fails(byte[] file, TorchLoadOptions? options = null) =>
        Assert.Throws<TorchLoadException>(() => Load(file, options));

    public static TorchLoadException Fails(byte[] file, TorchLoadErrorReason reason, TorchLoadOptions? options = null)
    {
        var e = Fails(file, options);
        Assert.True(e.Reason == reason, $"expected {reason}, got {e.Reason}: {e.Message}");
        return e;
    }

    /// <summary>A zip checkpoint whose data.pkl is exactly <paramref name="pickle"/>.</summary>
    public static byte[] ZipOf(byte[] pickle, params (string Key, byte[] Data)[] storages)
    {
        var t = new TorchZipBuilder(pickle);
        t.Storages.AddRange(storages);
        return t.Build();
    }

    /// <summary>A legacy stream whose object pickle is <paramref name="pickle"/> and which has no storages.</summary>
    public static byte[] LegacyOf(byte[] pickle) => Legacy(pickle, [], []);
}
