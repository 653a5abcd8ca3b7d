using System.Buffers.Binary;
using TorchLoad.Core.Tensors;
using static TorchLoad.Core.Pickle.Opcodes;

namespace TorchLoad.Core.Archive;

/// <summary>
/// Reads one pickle whose length no header gives (the five pickles of a legacy stream, the entries of a tar
/// member) into native memory: its extent is found by walking the opcodes, building nothing, reading the
/// file in growing chunks. This replaces parsing them from a memory mapping of the file, which a concurrent
/// truncation turned into SIGBUS.
/// </summary>
/// <remarks>
/// The walk never fails by itself: where it cannot go on (an unknown opcode, a length past the end, no end of
/// line, more than MaxPickleBytes), the bytes read so far are handed to the pickle machine, which sees the
/// same prefix of the file it saw through the mapping and fails at the same opcode, for the same reason.
/// </remarks>
internal sealed class PickleReader : IDisposable
{
    private readonly FileSource _file;
    private readonly long _offset;
    private readonly long _cap;
    private HostBuffer? _buffer;
    private int _have;

    private PickleReader(FileSource file, long offset, long end, LoadLimits limits)
    {
        _file = file;
        _offset = offset;
        _cap = Math.Max(0, Math.Min(Math.Min(end - offset, limits.MaxPickleBytes), Array.MaxLength));
    }

    /// <summary>The pickle that starts at <paramref name="offset"/> and ends at or before <paramref name="end"/>.</summary>
    public static PickleReader Read(FileSource file, long offset, long end, LoadLimits limits, string record)
    {
        var reader = new PickleReader(file, offset, end, limits);
        try
        {
            reader.Length = reader.Walk(limits.MaxStringBytes, record);
            return reader;
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    /// <summary>Bytes of the pickle (up to and including STOP), or all that was read when the walk stopped early.</summary>
    public int Length { get; private set; }

    public unsafe ReadOnlySpan<byte> Span => Length == 0 ? default : new ReadOnlySpan<byte>(_buffer!.Pointer, Length);

    private unsafe int Walk(long maxString, string record)
    {
        long pos = 0, mustHave = 0;
        var arguments = ArgumentTable;
        while (true)
        {
            if (!Ensure(pos + 1, record)) return _have;
            var op = At(pos++);
            if (op == STOP)
            {
                if (mustHave > pos) Ensure(mustHave, record);
                return (int)Math.Min(Math.Max(pos, mustHave), _have);
            }
            long skip;
            switch (arguments[op])
            {
                case Argument.None: continue;
                case Argument.Fixed1: skip = 1; break;
                case Argument.Fixed2: skip = 2; break;
                case Argument.Fixed4: skip = 4; break;
                case Argument.Fixed8 when op == FRAME:
                    {
                        if (!Ensure(pos + 8, record)) return _have;
                        var frame = BinaryPrimitives.ReadUInt64LittleEndian(Bytes(pos, 8));
                        pos += 8;
                        if (frame <= (ulong)_cap) mustHave = Math.Max(mustHave, pos + (long)frame); // the machine checks a frame against what follows it
                        continue;
                    }
                case Argument.Fixed8: skip = 8; break;
                case Argument.Counted1:
                    if (!Ensure(pos + 1, record)) return _have;
                    skip = At(pos++);
                    break;
                case Argument.Counted4S:
                    if (!Ensure(pos + 4, record)) return _have;
                    skip = BinaryPrimitives.ReadInt32LittleEndian(Bytes(pos, 4));
                    pos += 4;
                    if (skip < 0) return _have;
                    break;
                case Argument.Counted4:
                    if (!Ensure(pos + 4, record)) return _have;
                    skip = BinaryPrimitives.ReadUInt32LittleEndian(Bytes(pos, 4));
                    pos += 4;
                    break;
                case Argument.Counted8:
                    {
                        if (!Ensure(pos + 8, record)) return _have;
                        var n = BinaryPrimitives.ReadUInt64LittleEndian(Bytes(pos, 8));
                        pos += 8;
                        if (n > (ulong)_cap) return _have;
                        skip = (long)n;
                        break;
                    }
                case Argument.Line:
                    if ((pos = LineEnd(pos, record)) < 0) return _have;
                    continue;
                case Argument.TwoLines:
                    if ((pos = LineEnd(pos, record)) < 0 || (pos = LineEnd(pos, record)) < 0) return _have;
                    continue;
                default:
                    return _have; // no opcode: the machine says which byte
            }
            if (skip > maxString) return _have; // the machine refuses the length (LimitExceeded) before reading it
            pos += skip;
        }
    }

    /// <summary>Just past the next end of line at or after <paramref name="pos"/>, or -1 when there is none within reach.</summary>
    private long LineEnd(long pos, string record)
    {
        var from = pos;
        while (true)
        {
            var nl = Bytes(from, _have - from).IndexOf((byte)'\n');
            if (nl >= 0) return from + nl + 1;
            from = _have;
            if (!Ensure(_have + 1, record)) return -1;
        }
    }

    private unsafe byte At(long pos) => _buffer!.Pointer[pos];

    private unsafe ReadOnlySpan<byte> Bytes(long pos, long count) => count == 0 ? default : new ReadOnlySpan<byte>(_buffer!.Pointer + pos, (int)count);

    /// <summary>Makes the first <paramref name="need"/> bytes available, reading in chunks that double; false past the cap.</summary>
    private unsafe bool Ensure(long need, string record)
    {
        if (need <= _have) return true;
        if (need > _cap) return false;
        var size = Math.Min(_cap, Math.Max(need, Math.Max(2L * _have, 64 << 10)));
        var grown = new HostBuffer(size);
        try
        {
            if (_have > 0) new ReadOnlySpan<byte>(_buffer!.Pointer, _have).CopyTo(new Span<byte>(grown.Pointer, _have));
            _file.ReadExactly(_offset + _have, new Span<byte>(grown.Pointer + _have, (int)(size - _have)), record);
        }
        catch
        {
            grown.Dispose();
            throw;
        }
        _buffer?.Dispose();
        _buffer = grown;
        _have = (int)size;
        return true;
    }

    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
