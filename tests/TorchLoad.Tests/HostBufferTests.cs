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
}
