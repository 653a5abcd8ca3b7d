using TorchLoad.Core.Archive;

namespace TorchLoad.Tests;

/// <summary>
/// The small-read window of <see cref="FileSource"/>: reads that walk forward are served by a few large reads,
/// reads far apart cost a page each. It once read 1 MiB for every small read, so opening a 1 GiB checkpoint of
/// 64 records (a local header every 16 MiB) copied 64 MiB: -Mmap took 7 ms where 1 ms was enough.
/// </summary>
public sealed class FileSourceWindowTests
{
    private const int MiB = 1 << 20;

    [Fact]
    public void ReadsFarApart_EachReadAPage()
    {
        var data = Pattern(64L * MiB);
        using var counting = new CountingStream(data);
        using var source = FileSource.FromStream(counting, long.MaxValue, "(test)");
        var buffer = new byte[30];
        for (var k = 0; k < 64; k++)
        {
            source.ReadExactly(k * (long)MiB + 7, buffer);
            Assert.Equal(data.AsSpan((int)(k * (long)MiB + 7), 30).ToArray(), buffer);
        }
        Assert.InRange(counting.BytesRead, 64 * 30, 64 * 8 << 10); // a page or two each, not a megabyte
    }

    [Fact]
    public void ReadsWalkingForward_FewLargeReads()
    {
        var data = Pattern(8L * MiB);
        using var counting = new CountingStream(data);
        using var source = FileSource.FromStream(counting, long.MaxValue, "(test)");
        var buffer = new byte[100];
        for (long at = 0; at + buffer.Length <= data.Length; at += buffer.Length)
        {
            source.ReadExactly(at, buffer);
            if (at % 99_900 == 0) Assert.Equal(data.AsSpan((int)at, buffer.Length).ToArray(), buffer);
        }
        // 4 KiB, 8 KiB, ... 1 MiB, then 1 MiB reads: about 16 reads for 8 MiB, never one per small read
        Assert.InRange(counting.Reads, 8, 40);
        Assert.InRange(counting.BytesRead, data.Length, data.Length + 2 * MiB);
    }

    [Fact]
    public void AJumpBack_StartsSmallAgain()
    {
        var data = Pattern(16L * MiB);
        using var counting = new CountingStream(data);
        using var source = FileSource.FromStream(counting, long.MaxValue, "(test)");
        var buffer = new byte[64];
        for (long at = 0; at < 4 * MiB; at += buffer.Length) source.ReadExactly(at, buffer); // grown to 1 MiB
        var before = counting.BytesRead;
        source.ReadExactly(12L * MiB, buffer);
        Assert.Equal(data.AsSpan(12 * MiB, 64).ToArray(), buffer);
        Assert.InRange(counting.BytesRead - before, 64, 8 << 10);
    }

    [Fact]
    public void ASmallFile_IsReadOnce()
    {
        // a 6 KB checkpoint: header, end record, directory, local headers and pickle, front to back and back again
        var data = Pattern(6432);
        using var counting = new CountingStream(data);
        using var source = FileSource.FromStream(counting, long.MaxValue, "(test)");
        var buffer = new byte[22];
        foreach (var at in new[] { 0, 5408, 6410, 4816, 0, 576, 64, 3000, 6432 - 22 })
        {
            source.ReadExactly(at, buffer);
            Assert.Equal(data.AsSpan(at, buffer.Length).ToArray(), buffer);
        }
        Assert.Equal(1, counting.Reads);
        Assert.Equal(data.Length, counting.BytesRead);
    }

    private static byte[] Pattern(long length)
    {
        var data = new byte[length];
        for (var i = 0; i < data.Length; i++) data[i] = (byte)(i * 31 + (i >> 12));
        return data;
    }

    /// <summary>A seekable stream over bytes that counts what is read from it.</summary>
    private sealed class CountingStream(byte[] data) : MemoryStream(data, writable: false)
    {
        public long BytesRead { get; private set; }
        public int Reads { get; private set; }

        // MemoryStream's Read(Span) of a derived class comes here too
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = base.Read(buffer, offset, count);
            BytesRead += n;
            Reads++;
            return n;
        }
    }
}
