using System.Buffers.Binary;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Tensors;

/// <summary>Gathers a strided view into contiguous row-major bytes and applies conj/neg.</summary>
internal static class TensorBytes
{
    // Hot loop: JIT-compiled fully optimized on first use rather than run from the precompiled image (measured:
    // ~3 ms faster on a 20,000-tensor load, for ~20 ms of JIT once per process; audits load many files).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe byte[] Gather(TorchTensor t)
    {
        var storage = t.Storage!;
        var dtype = t.DType;
        var es = dtype.ElementSize;
        var count = ShapeMath.Count(t.Shape);
        if (dtype.ValuesPerByte > 1) return UnpackCodes(t, count);
        if (!ShapeMath.TryBytes(count, es, out var total) || total > Array.MaxLength)
            throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded,
                $"The tensor's values take {(total < 0 ? "more than 2^63" : total.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes, more than one .NET array can hold (an expanded view with stride 0 can be that large over a small storage); read its Storage instead.")
            { LimitName = "Array.MaxLength" };
        var result = new byte[total];
        if (count == 0) return result;

        var buffer = storage.RequireBuffer();
        var baseOffset = checked(t.StorageOffset * es);
        var contiguous = ShapeMath.IsContiguous(t.Shape, t.Stride);
        if (!buffer.IsHostAccessible && contiguous)
        {
            buffer.CopyTo(baseOffset, result); // on a device or in a file (-Mmap): straight into the result
        }
        else
        {
            HostBuffer? hostCopy = null;
            try
            {
                if (!buffer.IsHostAccessible)
                {
                    // a strided view of bytes on a device or in a file: copy only the range it spans, not the whole storage
                    var span = (long)es;
                    for (var d = 0; d < t.Shape.Length; d++) span = checked(span + (t.Shape[d] - 1) * t.Stride[d] * es);
                    hostCopy = new HostBuffer(span);
                    buffer.CopyTo(baseOffset, hostCopy.Pointer, span);
                }
                var src = hostCopy is null ? buffer.Pointer : hostCopy.Pointer - baseOffset;
                if (contiguous)
                {
                    new ReadOnlySpan<byte>(src + baseOffset, (int)total).CopyTo(result);
                }
                else
                {
                    var rank = t.Shape.Length;
                    var index = new long[rank];
                    var inner = rank - 1;
                    var innerStride = t.Stride[inner] * es;
                    var innerCount = t.Shape[inner];
                    long outPos = 0;
                    while (true)
                    {
                        long off = baseOffset;
                        for (var d = 0; d < inner; d++) off += index[d] * t.Stride[d] * es;
                        for (long k = 0; k < innerCount; k++, off += innerStride, outPos += es)
                            new ReadOnlySpan<byte>(src + off, es).CopyTo(result.AsSpan((int)outPos, es));
                        var dim = inner - 1;
                        while (dim >= 0 && ++index[dim] == t.Shape[dim]) index[dim--] = 0;
                        if (dim < 0) break;
                    }
                }
            }
            finally
            {
                hostCopy?.Dispose();
            }
        }
        if (t.IsConj) Conjugate(dtype, result);
        if (t.IsNeg) Negate(dtype, result);
        return result;
    }

    /// <summary>quint4x2 / quint2x4: one code per output byte, low bits first (torch's int_repr).</summary>
    private static byte[] UnpackCodes(TorchTensor t, long count)
    {
        var vpb = t.DType.ValuesPerByte;
        var bits = 8 / vpb;
        var mask = (1 << bits) - 1;
        var packed = t.Storage!.ToByteArray();
        var result = new byte[count];
        var rank = t.Shape.Length;
        var index = new long[rank];
        for (long i = 0; i < count; i++)
        {
            var e = t.StorageOffset;
            for (var d = 0; d < rank; d++) e += index[d] * t.Stride[d];
            result[i] = (byte)((packed[e / vpb] >> (int)(e % vpb * bits)) & mask);
            for (var d = rank - 1; d >= 0 && ++index[d] == t.Shape[d]; d--) index[d] = 0;
        }
        return result;
    }

    private static void Conjugate(TorchDType dtype, byte[] bytes)
    {
        if (!dtype.IsComplex) return; // torch: conj of a real tensor is a no-op
        var half = dtype.ElementSize / 2;
        for (var i = half; i < bytes.Length; i += dtype.ElementSize) bytes[i + half - 1] ^= 0x80; // flip the imaginary part's sign bit
    }

    private static void Negate(TorchDType dtype, byte[] bytes)
    {
        var es = dtype.ElementSize;
        switch (dtype.Kind)
        {
            case DTypeKind.Float or DTypeKind.Complex:
                // IEEE negation = sign bit flip (0.0 -> -0.0), per part for complex
                var unit = dtype.Kind == DTypeKind.Complex ? es / 2 : es;
                for (var i = unit - 1; i < bytes.Length; i += unit) bytes[i] ^= 0x80;
                break;
            case DTypeKind.Int:
                for (var i = 0; i < bytes.Length; i += es)
                {
                    var s = bytes.AsSpan(i, es);
                    switch (es)
                    {
                        case 1: s[0] = (byte)(-(sbyte)s[0]); break;
                        case 2: BinaryPrimitives.WriteInt16LittleEndian(s, (short)-BinaryPrimitives.ReadInt16LittleEndian(s)); break;
                        case 4: BinaryPrimitives.WriteInt32LittleEndian(s, -BinaryPrimitives.ReadInt32LittleEndian(s)); break;
                        case 8: BinaryPrimitives.WriteInt64LittleEndian(s, -BinaryPrimitives.ReadInt64LittleEndian(s)); break;
                    }
                }
                break;
        }
    }
}
