namespace TorchLoad.Core.Tensors;

/// <summary>What kind of number an element is; decides conversion, negation and byte swapping.</summary>
public enum DTypeKind { Float, Int, UInt, Bool, Complex, Quantized, Bits }

/// <summary>
/// A torch dtype: its name (what <c>ToString()</c> returns, e.g. <c>float32</c>), its element size
/// and the legacy storage class that carries it. One instance per dtype; compare by reference.
/// </summary>
public sealed class TorchDType
{
    private TorchDType(string name, int elementSize, DTypeKind kind, string? storageClass = null, int swapUnit = 0)
    {
        Name = name;
        ElementSize = elementSize;
        Kind = kind;
        StorageClass = storageClass;
        SwapUnit = swapUnit == 0 ? (kind == DTypeKind.Complex ? elementSize / 2 : elementSize) : swapUnit;
    }

    /// <summary>torch's name without <c>torch.</c>.</summary>
    public string Name { get; }

    /// <summary>Bytes per element as torch counts them (1 for packed sub-byte dtypes, whose element is a byte).</summary>
    public int ElementSize { get; }

    public DTypeKind Kind { get; }

    /// <summary>The legacy typed storage class (<c>FloatStorage</c>), or null for v3 dtypes saved as UntypedStorage.</summary>
    public string? StorageClass { get; }

    /// <summary>Bytes swapped as one unit when the file's byte order differs (complex: each half).</summary>
    internal int SwapUnit { get; }

    public bool IsFloatingPoint => Kind == DTypeKind.Float;
    public bool IsComplex => Kind == DTypeKind.Complex;
    public bool IsQuantized => Kind == DTypeKind.Quantized;

    /// <summary>quint4x2 / quint2x4: several codes per stored byte.</summary>
    public int ValuesPerByte => Name switch { "quint4x2" => 2, "quint2x4" => 4, _ => 1 };

    public override string ToString() => Name;

    public static readonly TorchDType Float32 = new("float32", 4, DTypeKind.Float, "FloatStorage");
    public static readonly TorchDType Float64 = new("float64", 8, DTypeKind.Float, "DoubleStorage");
    public static readonly TorchDType Float16 = new("float16", 2, DTypeKind.Float, "HalfStorage");
    public static readonly TorchDType BFloat16 = new("bfloat16", 2, DTypeKind.Float, "BFloat16Storage");
    public static readonly TorchDType Int64 = new("int64", 8, DTypeKind.Int, "LongStorage");
    public static readonly TorchDType Int32 = new("int32", 4, DTypeKind.Int, "IntStorage");
    public static readonly TorchDType Int16 = new("int16", 2, DTypeKind.Int, "ShortStorage");
    public static readonly TorchDType Int8 = new("int8", 1, DTypeKind.Int, "CharStorage");
    public static readonly TorchDType UInt8 = new("uint8", 1, DTypeKind.UInt, "ByteStorage");
    public static readonly TorchDType Bool = new("bool", 1, DTypeKind.Bool, "BoolStorage");
    public static readonly TorchDType Complex64 = new("complex64", 8, DTypeKind.Complex, "ComplexFloatStorage");
    public static readonly TorchDType Complex128 = new("complex128", 16, DTypeKind.Complex, "ComplexDoubleStorage");
    public static readonly TorchDType QInt8 = new("qint8", 1, DTypeKind.Quantized, "QInt8Storage");
    public static readonly TorchDType QUInt8 = new("quint8", 1, DTypeKind.Quantized, "QUInt8Storage");
    public static readonly TorchDType QInt32 = new("qint32", 4, DTypeKind.Quantized, "QInt32Storage");
    public static readonly TorchDType QUInt4x2 = new("quint4x2", 1, DTypeKind.Quantized, "QUInt4x2Storage");
    public static readonly TorchDType QUInt2x4 = new("quint2x4", 1, DTypeKind.Quantized, "QUInt2x4Storage");
    // v3 dtypes: saved as torch.storage.UntypedStorage + _rebuild_tensor_v3(..., dtype).
    public static readonly TorchDType Complex32 = new("complex32", 4, DTypeKind.Complex);
    public static readonly TorchDType UInt16 = new("uint16", 2, DTypeKind.UInt);
    public static readonly TorchDType UInt32 = new("uint32", 4, DTypeKind.UInt);
    public static readonly TorchDType UInt64 = new("uint64", 8, DTypeKind.UInt);
    public static readonly TorchDType Float8E5M2 = new("float8_e5m2", 1, DTypeKind.Float);
    public static readonly TorchDType Float8E4M3FN = new("float8_e4m3fn", 1, DTypeKind.Float);
    public static readonly TorchDType Float8E5M2FNUZ = new("float8_e5m2fnuz", 1, DTypeKind.Float);
    public static readonly TorchDType Float8E4M3FNUZ = new("float8_e4m3fnuz", 1, DTypeKind.Float);
    public static readonly TorchDType Float8E8M0FNU = new("float8_e8m0fnu", 1, DTypeKind.Float);
    public static readonly TorchDType Float4E2M1FNx2 = new("float4_e2m1fn_x2", 1, DTypeKind.Float);
    public static readonly TorchDType Bits8 = new("bits8", 1, DTypeKind.Bits);
    public static readonly TorchDType Bits16 = new("bits16", 2, DTypeKind.Bits);
    public static readonly TorchDType Bits1x8 = new("bits1x8", 1, DTypeKind.Bits);
    public static readonly TorchDType Bits2x4 = new("bits2x4", 1, DTypeKind.Bits);
    public static readonly TorchDType Bits4x2 = new("bits4x2", 1, DTypeKind.Bits);

    /// <summary>The byte view of an UntypedStorage (its element is one byte, never swapped).</summary>
    internal static readonly TorchDType Untyped = UInt8;

    private static readonly TorchDType[] All =
    [
        Float32, Float64, Float16, BFloat16, Int64, Int32, Int16, Int8, UInt8, Bool, Complex64, Complex128,
        QInt8, QUInt8, QInt32, QUInt4x2, QUInt2x4, Complex32, UInt16, UInt32, UInt64,
        Float8E5M2, Float8E4M3FN, Float8E5M2FNUZ, Float8E4M3FNUZ, Float8E8M0FNU, Float4E2M1FNx2,
        Bits8, Bits16, Bits1x8, Bits2x4, Bits4x2,
    ];

    private static readonly Dictionary<string, TorchDType> ByName = BuildNameTable();
    private static readonly Dictionary<string, TorchDType> ByStorageClass =
        All.Where(d => d.StorageClass is not null).ToDictionary(d => d.StorageClass!, StringComparer.Ordinal);

    private static Dictionary<string, TorchDType> BuildNameTable()
    {
        var t = All.ToDictionary(d => d.Name, StringComparer.Ordinal);
        // Aliases torch never writes but resolves (spec 6.5).
        t["float"] = Float32; t["double"] = Float64; t["half"] = Float16; t["long"] = Int64; t["int"] = Int32;
        t["short"] = Int16; t["cfloat"] = Complex64; t["cdouble"] = Complex128; t["chalf"] = Complex32;
        return t;
    }

    /// <summary>Shell dtypes (uint1..7, int1..7): valid torch.* globals, but no tensor can hold them.</summary>
    internal static bool IsShellDTypeName(string name) =>
        name.Length == 5 && name.StartsWith("uint", StringComparison.Ordinal) && name[4] is >= '1' and <= '7'
        || name.Length == 4 && name.StartsWith("int", StringComparison.Ordinal) && name[3] is >= '1' and <= '7';

    public static bool TryFromName(string name, out TorchDType dtype) => ByName.TryGetValue(name, out dtype!);

    public static TorchDType FromName(string name) =>
        ByName.TryGetValue(name, out var d) ? d : throw new ArgumentException($"Unknown dtype '{name}'.", nameof(name));

    /// <summary>Maps a legacy storage class name (<c>FloatStorage</c>) to its dtype.</summary>
    internal static bool TryFromStorageClass(string className, out TorchDType dtype) => ByStorageClass.TryGetValue(className, out dtype!);

    /// <summary>Maps a legacy tensor type name (<c>FloatTensor</c>) to its dtype.</summary>
    internal static bool TryFromTensorClass(string className, out TorchDType dtype)
    {
        dtype = null!;
        return className.EndsWith("Tensor", StringComparison.Ordinal)
            && TryFromStorageClass(string.Concat(className.AsSpan(0, className.Length - "Tensor".Length), "Storage"), out dtype);
    }

    public static IReadOnlyList<TorchDType> Values => All;
}
