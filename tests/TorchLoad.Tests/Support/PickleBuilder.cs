using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace TorchLoad.Tests.Support;

/// <summary>A piece of pickle written by a callback: lets a value tree embed globals, calls and persistent ids.</summary>
internal delegate void Fragment(PickleBuilder b);

/// <summary>A dict value for <see cref="PickleBuilder.Value"/>: written as EMPTY_DICT, MARK, k, v, ..., SETITEMS.</summary>
internal sealed record PDict(params (object? Key, object? Value)[] Items);

/// <summary>A list value for <see cref="PickleBuilder.Value"/>: written as EMPTY_LIST, MARK, items, APPENDS.</summary>
internal sealed record PList(params object?[] Items);

/// <summary>
/// Hand-assembles pickles byte by byte. Opcode methods write exactly one opcode; <see cref="Value"/>
/// writes a C# value tree the way protocol 2 would (no memo). Nothing here depends on TorchLoad.Core.
/// </summary>
internal sealed class PickleBuilder
{
    private readonly List<byte> _bytes = [];

    public byte[] ToArray() => _bytes.ToArray();
    public int Length => _bytes.Count;

    /// <summary>Latin-1 bytes of a string of chars 0..255 (how the tests spell raw pickles: "K\u0001.").</summary>
    public static byte[] L(string latin1)
    {
        foreach (var c in latin1)
            if (c > 0xFF) throw new ArgumentException($"char U+{(int)c:X4} is not a byte", nameof(latin1));
        return Encoding.Latin1.GetBytes(latin1);
    }

    /// <summary>PROTO 2, the value, STOP.</summary>
    public static byte[] Pickle(object? value, int protocol = 2) => new PickleBuilder().Proto(protocol).Value(value).Stop().ToArray();

    // ---------------------------------------------------------------- raw

    public PickleBuilder Raw(params byte[] bytes) { _bytes.AddRange(bytes); return this; }
    public PickleBuilder Raw(string latin1) => Raw(L(latin1));
    public PickleBuilder Op(char op) => Raw((byte)op);
    public PickleBuilder Op(byte op) => Raw(op);

    public PickleBuilder U16(int v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); return Raw(b.ToArray()); }
    public PickleBuilder U32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return Raw(b.ToArray()); }
    public PickleBuilder I32(int v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, v); return Raw(b.ToArray()); }
    public PickleBuilder U64(ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return Raw(b.ToArray()); }

    // ---------------------------------------------------------------- opcodes

    public PickleBuilder Proto(int v = 2) => Raw(0x80, (byte)v);
    public PickleBuilder Stop() => Op('.');
    public PickleBuilder Mark() => Op('(');
    public PickleBuilder None() => Op('N');
    public PickleBuilder Bool(bool v) => Raw(v ? (byte)0x88 : (byte)0x89);
    public PickleBuilder Tuple() => Op('t');
    public PickleBuilder EmptyTuple() => Op(')');
    public PickleBuilder Reduce() => Op('R');
    public PickleBuilder Build() => Op('b');
    public PickleBuilder BinPersId() => Op('Q');
    public PickleBuilder NewObj() => Raw(0x81);
    public PickleBuilder Append() => Op('a');
    public PickleBuilder SetItem() => Op('s');
    public PickleBuilder BinPut(byte i) => Raw((byte)'q', i);
    public PickleBuilder BinGet(byte i) => Raw((byte)'h', i);

    /// <summary>The shortest of BININT1 / BININT2 / BININT / LONG1, as pickle protocol 2 picks.</summary>
    public PickleBuilder Int(long v)
    {
        if (v is >= 0 and <= 0xFF) return Raw((byte)'K', (byte)v);
        if (v is >= 0 and <= 0xFFFF) return Op('M').U16((int)v);
        if (v is >= int.MinValue and <= int.MaxValue) return Op('J').I32((int)v);
        return Long1(v);
    }

    public PickleBuilder Long1(BigInteger v)
    {
        var bytes = v.IsZero ? [] : v.ToByteArray(isUnsigned: false, isBigEndian: false);
        return Raw(0x8A, (byte)bytes.Length).Raw(bytes);
    }

    public PickleBuilder BinFloat(double v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleBigEndian(b, v);
        return Op('G').Raw(b.ToArray());
    }

    /// <summary>BINUNICODE (u32 length + UTF-8).</summary>
    public PickleBuilder Str(string s)
    {
        var utf8 = Encoding.UTF8.GetBytes(s);
        return Op('X').U32((uint)utf8.Length).Raw(utf8);
    }

    /// <summary>SHORT_BINSTRING (Python 2 str, length byte + raw bytes).</summary>
    public PickleBuilder ShortBinString(byte[] raw) => Raw((byte)'U', (byte)raw.Length).Raw(raw);

    public PickleBuilder Bytes(byte[] b) =>
        b.Length <= 0xFF ? Raw((byte)'C', (byte)b.Length).Raw(b) : Op('B').U32((uint)b.Length).Raw(b);

    /// <summary>GLOBAL 'module\nname\n'.</summary>
    public PickleBuilder Global(string module, string name) => Op('c').Raw(Encoding.UTF8.GetBytes($"{module}\n{name}\n"));

    /// <summary>Any C# value tree: null, bool, integers, BigInteger, double, string, byte[], object?[] (tuple),
    /// long[] (tuple of ints), PList, PDict, Fragment, PickleBuilder (its bytes).</summary>
    public PickleBuilder Value(object? v)
    {
        switch (v)
        {
            case null: return None();
            case bool b: return Bool(b);
            case int i: return Int(i);
            case long l: return Int(l);
            case BigInteger bi: return Long1(bi);
            case double d: return BinFloat(d);
            case string s: return Str(s);
            case byte[] bytes: return Bytes(bytes);
            case long[] longs: return Value(longs.Cast<object?>().ToArray());
            case object?[] t:
                switch (t.Length)
                {
                    case 0: return EmptyTuple();
                    case 1: Value(t[0]); return Raw(0x85);
                    case 2: Value(t[0]); Value(t[1]); return Raw(0x86);
                    case 3: Value(t[0]); Value(t[1]); Value(t[2]); return Raw(0x87);
                    default:
                        Mark();
                        foreach (var x in t) Value(x);
                        return Tuple();
                }
            case PList list:
                Op(']');
                if (list.Items.Length == 0) return this;
                Mark();
                foreach (var x in list.Items) Value(x);
                return Op('e');
            case PDict dict:
                Op('}');
                if (dict.Items.Length == 0) return this;
                Mark();
                foreach (var (k, val) in dict.Items) { Value(k); Value(val); }
                return Op('u');
            case Fragment f: f(this); return this;
            case PickleBuilder other: return Raw(other.ToArray());
            default: throw new ArgumentException($"cannot pickle {v.GetType().Name}");
        }
    }

    // ---------------------------------------------------------------- torch fragments

    /// <summary>GLOBAL module name: a bare class or function reference.</summary>
    public static Fragment G(string module, string name) => b => b.Global(module, name);

    /// <summary>GLOBAL + argument tuple + REDUCE.</summary>
    public static Fragment Call(string module, string name, params object?[] args) => b => b.Global(module, name).Value(args).Reduce();

    /// <summary>collections.OrderedDict() (optionally with items via SETITEMS).</summary>
    public static Fragment OrderedDict(params (object? Key, object? Value)[] items) => b =>
    {
        b.Global("collections", "OrderedDict").EmptyTuple().Reduce();
        if (items.Length == 0) return;
        b.Mark();
        foreach (var (k, v) in items) { b.Value(k); b.Value(v); }
        b.Op('u');
    };

    /// <summary>A storage persistent id: ('storage', torch.&lt;cls&gt;, key, location, numel[, None]) BINPERSID.
    /// <paramref name="legacy"/> adds the sixth view_metadata element of the legacy stream.</summary>
    public static Fragment Storage(string storageClass, string key, long numel, string location = "cpu", bool legacy = false, string module = "torch") => b =>
    {
        b.Mark().Str("storage").Global(module, storageClass).Str(key).Str(location).Int(numel);
        if (legacy) b.None();
        b.Tuple().BinPersId();
    };

    /// <summary>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict()[, metadata]).</summary>
    public static Fragment TensorV2(Fragment storage, long offset, long[] shape, long[] stride, bool requiresGrad = false, PDict? metadata = null)
    {
        var args = new List<object?> { storage, offset, shape, stride, requiresGrad, OrderedDict() };
        if (metadata is not null) args.Add(metadata);
        return Call("torch._utils", "_rebuild_tensor_v2", args.ToArray());
    }

    /// <summary>torch._utils._rebuild_tensor_v3(UntypedStorage, offset, size, stride, requires_grad, OrderedDict(), torch.&lt;dtype&gt;).</summary>
    public static Fragment TensorV3(Fragment storage, long offset, long[] shape, long[] stride, string dtype, bool requiresGrad = false) =>
        Call("torch._utils", "_rebuild_tensor_v3", storage, offset, shape, stride, requiresGrad, OrderedDict(), G("torch", dtype));

    /// <summary>A contiguous float32 tensor over FloatStorage key with numel elements.</summary>
    public static Fragment Float32Tensor(string key, long numel, long[] shape, string location = "cpu", bool legacy = false) =>
        TensorV2(Storage("FloatStorage", key, numel, location, legacy), 0, shape, ContiguousStrides(shape));

    public static long[] ContiguousStrides(long[] shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (var i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= Math.Max(shape[i], 1); }
        return s;
    }
}
