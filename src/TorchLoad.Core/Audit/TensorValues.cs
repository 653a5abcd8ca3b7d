using System.Buffers.Binary;
using System.Numerics;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Audit;

/// <summary>How the reducers read one element: as a float32/float64/integer, or through a table of all 256 or 65,536 codes.</summary>
internal enum ValueMode { Float32, Float64, Int32, UInt32, Int64, UInt64, Table8, Table16 }

/// <summary>
/// The numbers a tensor's statistics are taken over, as a contiguous run of elements and a way to read
/// each one as a double. A plain contiguous tensor is read in place from its storage (host or device);
/// anything else (strided views, conj/neg, complex magnitudes, per-channel or qint32 dequantization, packed
/// codes, float4 pairs) is gathered once on the host into doubles. Complex tensors give their magnitudes,
/// quantized tensors their dequantized values, bool and integer tensors their numbers; sparse and nested
/// tensors give their stored values.
/// </summary>
internal sealed class TensorValues
{
    private TensorValues(ValueMode mode, long count, StorageBuffer? buffer, long byteOffset, double[]? gathered, double[]? table)
    {
        Mode = mode;
        Count = count;
        Buffer = buffer;
        ByteOffset = byteOffset;
        Gathered = gathered;
        Table = table;
    }

    public ValueMode Mode { get; }
    public long Count { get; }

    /// <summary>The storage bytes read in place (null when <see cref="Gathered"/> holds the values).</summary>
    public StorageBuffer? Buffer { get; }
    public long ByteOffset { get; }
    public double[]? Gathered { get; }

    /// <summary>Every code's value for <see cref="ValueMode.Table8"/>/<see cref="ValueMode.Table16"/>.</summary>
    public double[]? Table { get; }

    public int ElementSize => Mode switch
    {
        ValueMode.Table8 => 1,
        ValueMode.Table16 => 2,
        ValueMode.Float32 or ValueMode.Int32 or ValueMode.UInt32 => 4,
        _ => 8,
    };

    /// <summary>The values of <paramref name="t"/>; throws InvalidOperationException for a tensor without data (meta).</summary>
    public static TensorValues Of(TorchTensor t)
    {
        if (t.Layout != TorchLayout.Strided || t.IsNested)
            return t.Values is { } v ? Of(v) : throw new InvalidOperationException($"The {t.Layout} tensor has no stored values to measure.");
        if (t.Storage is null) throw new InvalidOperationException("A meta tensor has no data to measure.");
        var dtype = t.DType;
        var count = ShapeMath.Count(t.Shape);
        var inPlace = !t.IsNeg && dtype.ValuesPerByte == 1 && !dtype.IsComplex && dtype != TorchDType.Float4E2M1FNx2
            && (!dtype.IsQuantized || dtype != TorchDType.QInt32 && t.QScheme is { IsPerChannel: false })
            && (count == 0 || ShapeMath.IsContiguous(t.Shape, t.Stride));
        if (inPlace && ModeOf(t) is { } mode)
            return new TensorValues(mode.Mode, count, count == 0 ? null : t.Storage.RequireBuffer(), checked(t.StorageOffset * dtype.ElementSize), null, mode.Table);
        var values = Gather(t);
        return new TensorValues(ValueMode.Float64, values.LongLength, null, 0, values, null);
    }

    /// <summary>
    /// Every value of a strided tensor as a double, row-major (the numbers comparisons use): complex tensors
    /// as (real, imaginary) pairs when <paramref name="complexParts"/>, else their magnitudes.
    /// </summary>
    public static double[] ToDoubles(TorchTensor t, bool complexParts)
    {
        if (t.Storage is null) throw new InvalidOperationException("A meta tensor has no data.");
        return Gather(t, complexParts);
    }

    /// <summary>Every value as a double, from the tensor's logical bytes (strides, conj/neg and packing already applied).</summary>
    private static double[] Gather(TorchTensor t, bool complexParts = false)
    {
        var bytes = t.ToByteArray();
        var dtype = t.DType;
        var span = bytes.AsSpan();
        if (complexParts && dtype.IsComplex)
        {
            var half = dtype.ElementSize / 2;
            return Map(span, half, half switch
            {
                2 => s => (double)BinaryPrimitives.ReadHalfLittleEndian(s),
                4 => s => BinaryPrimitives.ReadSingleLittleEndian(s),
                _ => s => BinaryPrimitives.ReadDoubleLittleEndian(s),
            });
        }
        switch (dtype.Name)
        {
            case "complex64": return Map(span, 8, s => Magnitude(BinaryPrimitives.ReadSingleLittleEndian(s), BinaryPrimitives.ReadSingleLittleEndian(s[4..])));
            case "complex128": return Map(span, 16, s => Magnitude(BinaryPrimitives.ReadDoubleLittleEndian(s), BinaryPrimitives.ReadDoubleLittleEndian(s[8..])));
            case "complex32": return Map(span, 4, s => Magnitude((float)BinaryPrimitives.ReadHalfLittleEndian(s), (float)BinaryPrimitives.ReadHalfLittleEndian(s[2..])));
            case "float4_e2m1fn_x2":
                {
                    var pairs = new double[bytes.LongLength * 2];
                    for (long i = 0; i < bytes.LongLength; i++) { pairs[2 * i] = ElementConverter.Float4E2M1(bytes[i] & 15); pairs[2 * i + 1] = ElementConverter.Float4E2M1(bytes[i] >> 4); }
                    return pairs;
                }
        }
        var codes = new double[bytes.LongLength / dtype.ElementSize];
        var es = dtype.ElementSize;
        var decode = Decoder(dtype);
        for (long i = 0; i < codes.LongLength; i++) codes[i] = decode(span.Slice((int)(i * es), es));
        if (dtype.IsQuantized) Dequantize(t, codes);
        return codes;
    }

    // torch's |z| of complex64/complex32 is a float32 (hypot, rounded once)
    private static double Magnitude(float re, float im) => (float)Complex.Abs(new Complex(re, im));
    private static double Magnitude(double re, double im) => Complex.Abs(new Complex(re, im));

    private delegate double Decode(ReadOnlySpan<byte> s);

    private static double[] Map(ReadOnlySpan<byte> bytes, int size, Decode decode)
    {
        var result = new double[bytes.Length / size];
        for (var i = 0; i < result.Length; i++) result[i] = decode(bytes.Slice(i * size, size));
        return result;
    }

    /// <summary>One element's number: integers and codes as themselves (quantized: the code), floats exactly.</summary>
    private static Decode Decoder(TorchDType dtype) => dtype.Name switch
    {
        "float32" => s => BinaryPrimitives.ReadSingleLittleEndian(s),
        "float64" => s => BinaryPrimitives.ReadDoubleLittleEndian(s),
        "float16" => s => (double)BinaryPrimitives.ReadHalfLittleEndian(s),
        "bfloat16" => s => ElementConverter.BFloat16ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(s)),
        "int64" => s => BinaryPrimitives.ReadInt64LittleEndian(s),
        "int32" or "qint32" => s => BinaryPrimitives.ReadInt32LittleEndian(s),
        "int16" => s => BinaryPrimitives.ReadInt16LittleEndian(s),
        "int8" or "qint8" => s => (sbyte)s[0],
        "uint16" or "bits16" => s => BinaryPrimitives.ReadUInt16LittleEndian(s),
        "uint32" => s => BinaryPrimitives.ReadUInt32LittleEndian(s),
        "uint64" => s => BinaryPrimitives.ReadUInt64LittleEndian(s),
        "bool" => s => s[0] != 0 ? 1 : 0,
        "float8_e4m3fn" => s => ElementConverter.Float8E4M3FN(s[0]),
        "float8_e5m2" => s => ElementConverter.Float8E5M2(s[0]),
        "float8_e4m3fnuz" => s => ElementConverter.Float8E4M3FNUZ(s[0]),
        "float8_e5m2fnuz" => s => ElementConverter.Float8E5M2FNUZ(s[0]),
        "float8_e8m0fnu" => s => s[0] == 0xFF ? double.NaN : Math.Pow(2, s[0] - 127),
        _ => s => s[0], // uint8, quint8, quint4x2/2x4 codes, bits8/1x8/2x4/4x2: unsigned bytes
    };

    /// <summary>A contiguous tensor read in place: its mode, and the code table for 1- and 2-byte dtypes (dequantization folded in).</summary>
    private static (ValueMode Mode, double[]? Table)? ModeOf(TorchTensor t)
    {
        var dtype = t.DType;
        switch (dtype.Name)
        {
            case "float32": return (ValueMode.Float32, null);
            case "float64": return (ValueMode.Float64, null);
            case "int32": return (ValueMode.Int32, null);
            case "uint32": return (ValueMode.UInt32, null);
            case "int64": return (ValueMode.Int64, null);
            case "uint64": return (ValueMode.UInt64, null);
        }
        if (dtype.ElementSize is not (1 or 2)) return null;
        var decode = Decoder(dtype);
        var table = new double[dtype.ElementSize == 1 ? 256 : 65536];
        Span<byte> code = stackalloc byte[2];
        for (var i = 0; i < table.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(code, (ushort)i);
            table[i] = decode(code[..dtype.ElementSize]);
        }
        if (dtype.IsQuantized) Dequantize(t, table);
        return (dtype.ElementSize == 1 ? ValueMode.Table8 : ValueMode.Table16, table);
    }

    /// <summary>
    /// torch's dequantize, in float as torch computes it: (q - zero_point) * scale; per channel with the
    /// channel's parameters; float-qparams schemes q * scale + zero_point. <paramref name="codes"/> are
    /// the tensor's codes in row-major order (or, per tensor, a table of every code).
    /// </summary>
    private static void Dequantize(TorchTensor t, double[] codes)
    {
        if (t.QScheme is not { } scheme) return;
        if (!scheme.IsPerChannel)
        {
            var scale = (float)(t.QScale ?? 1);
            var zero = (float)(t.QZeroPoint ?? 0);
            for (long i = 0; i < codes.LongLength; i++) codes[i] = ((float)codes[i] - zero) * scale;
            return;
        }
        var scales = ToDoubles(t.QScales);
        var zeros = ToDoubles(t.QZeroPoints);
        var axis = (int)(t.QAxis ?? 0);
        long inner = 1;
        for (var d = axis + 1; d < t.Rank; d++) inner *= t.Shape[d];
        var channels = t.Rank == 0 ? 1 : t.Shape[axis];
        var floatParams = scheme == TorchQScheme.PerChannelAffineFloatQParams;
        for (long i = 0; i < codes.LongLength; i++)
        {
            var c = (int)(i / Math.Max(inner, 1) % Math.Max(channels, 1));
            var s = (float)(c < scales.Length ? scales[c] : 1);
            var z = (float)(c < zeros.Length ? zeros[c] : 0);
            codes[i] = floatParams ? (float)codes[i] * s + z : ((float)codes[i] - z) * s;
        }
    }

    private static double[] ToDoubles(TorchTensor? t) => t?.Storage is null ? [] : Gather(t);
}
