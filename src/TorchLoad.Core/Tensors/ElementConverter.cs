using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace TorchLoad.Core.Tensors;

/// <summary>
/// Little-endian element bytes to natural .NET arrays. bfloat16, float8 and float4 widen to float
/// (exactly: every value of those formats is a float); float16 stays System.Half.
/// </summary>
public static class ElementConverter
{
    public static Array ToArray(TorchDType dtype, byte[] bytes)
    {
        var span = bytes.AsSpan();
        switch (dtype.Name)
        {
            case "float32": return MemoryMarshal.Cast<byte, float>(span).ToArray();
            case "float64": return MemoryMarshal.Cast<byte, double>(span).ToArray();
            case "float16": return MemoryMarshal.Cast<byte, Half>(span).ToArray();
            case "bfloat16": return Map(span, 2, s => BFloat16ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(s)));
            case "int64": return MemoryMarshal.Cast<byte, long>(span).ToArray();
            case "int32" or "qint32": return MemoryMarshal.Cast<byte, int>(span).ToArray();
            case "int16": return MemoryMarshal.Cast<byte, short>(span).ToArray();
            case "int8" or "qint8": return MemoryMarshal.Cast<byte, sbyte>(span).ToArray();
            case "uint8" or "quint8" or "quint4x2" or "quint2x4" or "bits8" or "bits1x8" or "bits2x4" or "bits4x2": return span.ToArray();
            case "uint16" or "bits16": return MemoryMarshal.Cast<byte, ushort>(span).ToArray();
            case "uint32": return MemoryMarshal.Cast<byte, uint>(span).ToArray();
            case "uint64": return MemoryMarshal.Cast<byte, ulong>(span).ToArray();
            case "bool": return Map(span, 1, s => s[0] != 0);
            case "complex64": return Map(span, 8, s => new Complex(BinaryPrimitives.ReadSingleLittleEndian(s), BinaryPrimitives.ReadSingleLittleEndian(s[4..])));
            case "complex128": return Map(span, 16, s => new Complex(BinaryPrimitives.ReadDoubleLittleEndian(s), BinaryPrimitives.ReadDoubleLittleEndian(s[8..])));
            case "complex32": return Map(span, 4, s => new Complex((double)BinaryPrimitives.ReadHalfLittleEndian(s), (double)BinaryPrimitives.ReadHalfLittleEndian(s[2..])));
            case "float8_e4m3fn": return Map(span, 1, s => Float8E4M3FN(s[0]));
            case "float8_e5m2": return Map(span, 1, s => Float8E5M2(s[0]));
            case "float8_e4m3fnuz": return Map(span, 1, s => Float8E4M3FNUZ(s[0]));
            case "float8_e5m2fnuz": return Map(span, 1, s => Float8E5M2FNUZ(s[0]));
            case "float8_e8m0fnu": return Map(span, 1, s => s[0] == 0xFF ? float.NaN : MathF.Pow(2, s[0] - 127));
            case "float4_e2m1fn_x2":
                {
                    var result = new float[bytes.Length * 2];
                    for (var i = 0; i < bytes.Length; i++) { result[2 * i] = Float4E2M1(bytes[i] & 15); result[2 * i + 1] = Float4E2M1(bytes[i] >> 4); }
                    return result;
                }
            default: return span.ToArray();
        }
    }

    private delegate T Decode<T>(ReadOnlySpan<byte> s);

    private static T[] Map<T>(ReadOnlySpan<byte> bytes, int size, Decode<T> decode)
    {
        var result = new T[bytes.Length / size];
        for (var i = 0; i < result.Length; i++) result[i] = decode(bytes.Slice(i * size, size));
        return result;
    }

    public static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    public static float Float8E4M3FN(byte b)
    {
        int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
        if (e == 15 && m == 7) return float.NaN;
        var v = e == 0 ? m * MathF.Pow(2, -9) : (1 + m / 8f) * MathF.Pow(2, e - 7);
        return s == 1 ? -v : v;
    }

    public static float Float8E5M2(byte b)
    {
        int s = b >> 7, e = (b >> 2) & 31, m = b & 3;
        float v;
        if (e == 31) v = m == 0 ? float.PositiveInfinity : float.NaN;
        else v = e == 0 ? m * MathF.Pow(2, -16) : (1 + m / 4f) * MathF.Pow(2, e - 15);
        return s == 1 ? -v : v;
    }

    public static float Float8E4M3FNUZ(byte b)
    {
        if (b == 0x80) return float.NaN;
        int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
        var v = e == 0 ? m * MathF.Pow(2, -10) : (1 + m / 8f) * MathF.Pow(2, e - 8);
        return s == 1 ? -v : v;
    }

    public static float Float8E5M2FNUZ(byte b)
    {
        if (b == 0x80) return float.NaN;
        int s = b >> 7, e = (b >> 2) & 31, m = b & 3;
        var v = e == 0 ? m * MathF.Pow(2, -17) : (1 + m / 4f) * MathF.Pow(2, e - 16);
        return s == 1 ? -v : v;
    }

    public static float Float4E2M1(int n)
    {
        int s = n >> 3, e = (n >> 1) & 3, m = n & 1;
        var v = e == 0 ? m * 0.5f : (1 + m / 2f) * MathF.Pow(2, e - 1);
        return s == 1 ? -v : v;
    }
}
