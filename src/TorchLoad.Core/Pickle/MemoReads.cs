using System.Buffers.Binary;
using System.Globalization;
using static TorchLoad.Core.Pickle.Opcodes;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// The memo indices a pickle reads back (GET, BINGET, LONG_BINGET), found by walking its opcodes once before it
/// runs, building nothing. torch.save memoizes every string, tuple and tensor it writes (160,000 entries for a
/// 20,000-tensor state dict) and reads back a handful (the rebuild function, 'storage', 'cpu'); the machine keeps
/// only the entries that are read, so every argument tuple is garbage as soon as its call returns.
/// </summary>
/// <remarks>
/// The walk reads arguments exactly as <see cref="PickleMachine"/> does. Where it cannot go on (an unknown opcode,
/// a length past the end, no end of line) the machine fails at the same opcode, so no read after it ever happens.
/// It may find more reads than the machine makes (after a limit the machine stops at), never fewer.
/// </remarks>
internal sealed class MemoReads
{
    private readonly MemoIndexSet _indices = new();
    private long _highest = -1; // torch.save reads back early entries (the rebuild function, 'storage'): most puts are past every read

    public bool Contains(uint index) => index <= _highest && _indices.Contains(index);

    private void Add(uint index)
    {
        _indices.Add(index);
        if (index > _highest) _highest = index;
    }

    // Runs before every pickle: JIT-compiled fully optimized (EngineWarmup) rather than run from the precompiled image
    // (20,000 tensors: ~420,000 opcodes, 3.2 ms precompiled)
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static MemoReads Find(ReadOnlySpan<byte> data)
    {
        var reads = new MemoReads();
        var arguments = ArgumentTable;
        var lastRead = -1L; // torch.save reads the same few entries over and over
        var pos = 0;
        while (pos < data.Length)
        {
            var op = data[pos++];
            long skip;
            var argument = arguments[op];
            switch (argument)
            {
                case Argument.Unknown:
                    return reads;
                case Argument.None:
                    if (op == STOP) return reads;
                    continue;
                case Argument.Fixed1:
                    if (op == BINGET && pos < data.Length && data[pos] != lastRead) reads.Add((uint)(lastRead = data[pos]));
                    skip = 1;
                    break;
                case Argument.Fixed2: skip = 2; break;
                case Argument.Fixed4:
                    if (op == LONG_BINGET && pos + 4 <= data.Length) reads.Add(BinaryPrimitives.ReadUInt32LittleEndian(data[pos..]));
                    skip = 4;
                    break;
                case Argument.Fixed8: skip = 8; break; // a FRAME's length: the frame's opcodes follow it
                case Argument.Counted1:
                    if (pos >= data.Length) return reads;
                    skip = 1 + data[pos];
                    break;
                case Argument.Counted4S:
                case Argument.Counted4:
                    if (pos + 4 > data.Length) return reads;
                    skip = 4 + (argument == Argument.Counted4S ? BinaryPrimitives.ReadInt32LittleEndian(data[pos..]) : BinaryPrimitives.ReadUInt32LittleEndian(data[pos..]));
                    if (skip < 4) return reads; // a negative count: the machine refuses it
                    break;
                case Argument.Counted8:
                    {
                        if (pos + 8 > data.Length) return reads;
                        var n = BinaryPrimitives.ReadUInt64LittleEndian(data[pos..]);
                        if (n > (ulong)(data.Length - pos - 8)) return reads;
                        skip = 8 + (long)n;
                        break;
                    }
                case Argument.Line:
                case Argument.TwoLines:
                    {
                        var nl = data[pos..].IndexOf((byte)'\n');
                        if (nl < 0) return reads;
                        if (op == GET && uint.TryParse(data.Slice(pos, nl), NumberStyles.None, CultureInfo.InvariantCulture, out var index)) reads.Add(index);
                        pos += nl + 1;
                        if (argument == Argument.TwoLines)
                        {
                            nl = data[pos..].IndexOf((byte)'\n');
                            if (nl < 0) return reads;
                            pos += nl + 1;
                        }
                        continue;
                    }
                default:
                    return reads;
            }
            if (skip > data.Length - pos) return reads;
            pos += (int)skip;
        }
        return reads;
    }
}
