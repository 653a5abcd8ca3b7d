using TorchLoad.Core.Tensors;

namespace TorchLoad.Tests;

/// <summary>HostBuffer.Prefault is only a hint to the kernel: it must never change bytes or reach outside the buffer.</summary>
public class HostBufferTests
{
    [Fact]
    public unsafe void PrefaultKeepsEveryByteAndIgnoresRangesOutsideTheBuffer()
    {
        const int Length = (8 << 20) + 123;
        using var buffer = new HostBuffer(Length);
        var span = new Span<byte>(buffer.Pointer, Length);
        for (var i = 0; i < Length; i += 4096) span[i] = (byte)(i >> 12 | 1); // first touch of some pages, not all
        buffer.Prefault(17, Length - 17);   // unaligned start: whole pages inside the range only
        buffer.Prefault(0, Length);
        buffer.Prefault(-1, 10);            // out of range: nothing
        buffer.Prefault(Length - 5, 10);
        buffer.Prefault(0, 0);
        for (var i = 0; i < Length; i += 4096) Assert.Equal((byte)(i >> 12 | 1), span[i]);
        span.Fill(0xA5);                    // every page writable
        Assert.Equal(0xA5, span[Length - 1]);
    }

    [Fact]
    public unsafe void ArenaBuffersNeverOverlapAcrossGrowingChunks()
    {
        // chunks start small and double: buffers of every size up to the arena's limit, each filled with its own
        // byte, all read back intact (a chunk too small for the next buffer must start a new one)
        var arena = new StorageArena();
        var sizes = new[] { 1, 63, 64, 65, 4000, 16 << 10, (16 << 10) - 1, StorageArena.MaxLength, 10_000, 3, StorageArena.MaxLength - 7 };
        var buffers = new List<(StorageBuffer Buffer, byte Fill)>();
        for (var i = 0; i < 400; i++)
        {
            var b = arena.Allocate(sizes[i % sizes.Length]);
            var fill = (byte)(i * 7 + 1);
            new Span<byte>(b.Pointer, (int)b.Length).Fill(fill);
            Assert.Equal(0, (long)b.Pointer % 64); // aligned as torch aligns records
            buffers.Add((b, fill));
        }
        foreach (var (b, fill) in buffers)
            Assert.True(new ReadOnlySpan<byte>(b.Pointer, (int)b.Length).IndexOfAnyExcept(fill) < 0);
    }
}
