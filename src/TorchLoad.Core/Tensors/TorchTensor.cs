using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;

namespace TorchLoad.Core.Tensors;

/// <summary>
/// A tensor as torch.load returns it: a view (shape, stride, offset in elements) of a shared
/// <see cref="TorchStorage"/>, or a sparse/quantized/meta tensor with its parts.
/// </summary>
public sealed class TorchTensor
{
    internal TorchTensor(TorchDType dtype, long[] shape, long[] stride, long storageOffset, TorchStorage? storage)
    {
        DType = dtype;
        Shape = shape;
        Stride = stride;
        StorageOffset = storageOffset;
        Storage = storage;
    }

    public TorchDType DType { get; internal set; }
    public long[] Shape { get; }
    public long[] Stride { get; }
    public long StorageOffset { get; }
    public TorchStorage? Storage { get; }
    public TorchLayout Layout { get; internal set; } = TorchLayout.Strided;
    public bool RequiresGrad { get; internal set; }
    public bool IsParameter { get; internal set; }

    /// <summary>The Python class torch rebuilt (<c>torch.Tensor</c>, <c>torch.nn.parameter.Parameter</c>, a subclass).</summary>
    public string ClassName { get; internal set; } = "torch.Tensor";

    /// <summary>Lazily conjugated (torch's <c>conj</c> metadata): stored values are unconjugated.</summary>
    public bool IsConj { get; internal set; }

    /// <summary>Lazily negated (torch's <c>neg</c> metadata).</summary>
    public bool IsNeg { get; internal set; }

    /// <summary>Python attributes the file set on the tensor or parameter (a dictionary, or a (dict, slots) tuple).</summary>
    public object? PythonState { get => _extra?.PythonState; internal set => Extra.PythonState = value; }

    /// <summary>A device the tensor itself was rebuilt on (meta, or XLA-style devices), overriding the storage's.</summary>
    internal string? DeviceOverride { get; set; }

    /// <summary>The device tag saved for the tensor: its storage's location, or the rebuilt device.</summary>
    public string Location => DeviceOverride ?? Storage?.Location ?? "meta";

    /// <summary>Where the data lives now: <c>meta</c> for a meta tensor, null while its storage is not loaded (metadata-only listings).</summary>
    public string? Device => DeviceOverride ?? (Storage is { } s ? s.Device : Values is { } v ? v.Device : "meta");

    /// <summary>Number of elements (long.MaxValue when the shape's product does not fit, e.g. a hostile sparse size).</summary>
    public long ElementCount => IsNested ? NestedElementCount() : ShapeMath.CountSaturating(Shape);

    /// <summary>torch's numel of a nested tensor: the elements of all its components (the rows of its sizes).</summary>
    private long NestedElementCount()
    {
        if (NestedSizes is { Rank: 2, DType.Name: "int64", Storage.Buffer: not null } sizes && sizes.ToArray() is long[] dims)
        {
            var width = (int)sizes.Shape[1];
            long total = 0;
            for (var row = 0; row + width <= dims.Length; row += width)
            {
                var count = ShapeMath.CountSaturating(dims[row..(row + width)]);
                if (count > 0) total = total > long.MaxValue - count ? long.MaxValue : total + count;
            }
            return total;
        }
        return Values?.ElementCount ?? 0; // sizes not read (metadata only): the buffer holds exactly the components
    }
    public int Rank => Shape.Length;

    // ---- quantized
    public TorchQScheme? QScheme { get => _extra?.QScheme; internal set => Extra.QScheme = value; }
    public double? QScale { get => _extra?.QScale; internal set => Extra.QScale = value; }
    public long? QZeroPoint { get => _extra?.QZeroPoint; internal set => Extra.QZeroPoint = value; }
    public TorchTensor? QScales { get => _extra?.QScales; internal set => Extra.QScales = value; }
    public TorchTensor? QZeroPoints { get => _extra?.QZeroPoints; internal set => Extra.QZeroPoints = value; }
    public long? QAxis { get => _extra?.QAxis; internal set => Extra.QAxis = value; }

    // ---- sparse (COO: Indices + Values; compressed: CrowIndices/ColIndices or CcolIndices/RowIndices + Values)
    public TorchTensor? Indices { get => _extra?.Indices; internal set => Extra.Indices = value; }
    public TorchTensor? Values { get => _extra?.Values; internal set => Extra.Values = value; }
    public TorchTensor? CrowIndices { get => _extra?.CrowIndices; internal set => Extra.CrowIndices = value; }
    public TorchTensor? ColIndices { get => _extra?.ColIndices; internal set => Extra.ColIndices = value; }
    public TorchTensor? CcolIndices { get => _extra?.CcolIndices; internal set => Extra.CcolIndices = value; }
    public TorchTensor? RowIndices { get => _extra?.RowIndices; internal set => Extra.RowIndices = value; }
    public bool? IsCoalesced { get => _extra?.IsCoalesced; internal set => Extra.IsCoalesced = value; }

    // ---- nested
    public bool IsNested { get; internal set; }
    public TorchTensor? NestedSizes { get => _extra?.NestedSizes; internal set => Extra.NestedSizes = value; }
    public TorchTensor? NestedStrides { get => _extra?.NestedStrides; internal set => Extra.NestedStrides = value; }
    public TorchTensor? NestedOffsets { get => _extra?.NestedOffsets; internal set => Extra.NestedOffsets = value; }

    public bool IsMeta => Storage is null && Layout == TorchLayout.Strided && !IsNested;
    public bool IsContiguous => ShapeMath.IsContiguous(Shape, Stride);

    /// <summary>
    /// The logical values, contiguous, row-major, little-endian, in the tensor's own dtype encoding:
    /// strides and offset honoured, conj/neg applied; quantized tensors give their integer codes
    /// (packed 4-/2-bit codes one per byte).
    /// </summary>
    public byte[] ToByteArray()
    {
        if (Layout != TorchLayout.Strided || IsNested)
            throw new InvalidOperationException($"A {Layout}{(IsNested ? " nested" : "")} tensor has no single byte array; read its component tensors (Values, Indices, ...).");
        if (Storage is null) throw new InvalidOperationException("A meta tensor has no data.");
        return TensorBytes.Gather(this);
    }

    /// <summary>The logical values as a .NET array of the natural element type (bfloat16/float8/float4 widened to float, float16 as Half, complex as Complex).</summary>
    public Array ToArray() => ElementConverter.ToArray(DType, ToByteArray());


    // Quantized, sparse, nested and Python-state parts: rare, so they live in a side object that
    // plain tensors (nearly all of them) never allocate.
    private Extras? _extra;
    private Extras Extra => _extra ??= new Extras();

    private sealed class Extras
    {
        public object MemberwiseCloneExtras() => MemberwiseClone();
        public TorchQScheme? QScheme;
        public double? QScale;
        public long? QZeroPoint;
        public long? QAxis;
        public TorchTensor? QScales;
        public TorchTensor? QZeroPoints;
        public TorchTensor? Indices;
        public TorchTensor? Values;
        public TorchTensor? CrowIndices;
        public TorchTensor? ColIndices;
        public TorchTensor? CcolIndices;
        public TorchTensor? RowIndices;
        public TorchTensor? NestedSizes;
        public TorchTensor? NestedStrides;
        public TorchTensor? NestedOffsets;
        public bool? IsCoalesced;
        public object? PythonState;
    }

    /// <summary>
    /// The component tensors (sparse indices and values, per-channel quantization parameters, nested
    /// buffers), named as torch names them. The one list of them: walkers, audits and byte-order fixing use it.
    /// </summary>
    /// <summary>False for plain tensors (nearly all): <see cref="Parts"/> would yield nothing.</summary>
    internal bool HasParts => _extra is not null;

    internal IEnumerable<(string Name, TorchTensor Part)> Parts()
    {
        if (_extra is not { } x) yield break;
        if (x.Indices is { } a) yield return ("indices", a);
        if (x.CrowIndices is { } b) yield return ("crow_indices", b);
        if (x.CcolIndices is { } c) yield return ("ccol_indices", c);
        if (x.ColIndices is { } d) yield return ("col_indices", d);
        if (x.RowIndices is { } e) yield return ("row_indices", e);
        if (x.Values is { } f) yield return ("values", f);
        if (x.QScales is { } g) yield return ("q_per_channel_scales", g);
        if (x.QZeroPoints is { } h) yield return ("q_per_channel_zero_points", h);
        if (x.NestedSizes is { } i) yield return ("nested_sizes", i);
        if (x.NestedStrides is { } j) yield return ("nested_strides", j);
        if (x.NestedOffsets is { } k) yield return ("nested_offsets", k);
    }

    internal TorchTensor ShallowCopy()
    {
        var copy = (TorchTensor)MemberwiseClone();
        if (_extra is not null) copy._extra = (Extras)_extra.MemberwiseCloneExtras();
        return copy;
    }

    /// <summary>The tensor as torch prints it (a header line, then torch's repr with a summarised values preview); the default view.</summary>
    public string ToTorchString() => TensorFormatter.Format(this);

    public override string ToString()
    {
        var kind = Layout == TorchLayout.Strided ? "" : $" {Layout}";
        return $"{(IsParameter ? "Parameter" : "Tensor")}{kind} {DType}[{string.Join(", ", Shape)}] on {Device ?? "(not loaded)"}";
    }
}

/// <summary>Overflow-checked shape arithmetic shared by rebuilders and the byte gatherer.</summary>
internal static class ShapeMath
{
    public static long Count(long[] shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }

    public static long CountSaturating(long[] shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d <= 0) return d == 0 ? 0 : -1;
            if (n > long.MaxValue / d) n = long.MaxValue;
            else n *= d;
        }
        return n;
    }

    /// <summary>count * elementSize, or false (and -1) when that overflows 64 bits.</summary>
    public static bool TryBytes(long count, int elementSize, out long bytes)
    {
        if (count > long.MaxValue / Math.Max(elementSize, 1)) { bytes = -1; return false; }
        bytes = count * elementSize;
        return true;
    }

    public static bool IsContiguous(long[] shape, long[] stride)
    {
        if (Array.IndexOf(shape, 0L) >= 0) return true; // torch: a tensor without elements is contiguous
        long expected = 1;
        for (var i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 1) continue;
            if (stride[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    public static long[] ContiguousStrides(long[] shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (var i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc = checked(acc * Math.Max(shape[i], 1)); }
        return s;
    }

    /// <summary>
    /// torch's rule for a view of a storage of <paramref name="storageElements"/> elements: no negative
    /// size/stride/offset, and the last element reached (offset + sum((size-1)*stride)) inside the storage.
    /// </summary>
    public static void ValidateView(long[] shape, long[] stride, long offset, long storageElements, string what)
    {
        try
        {
            Check(shape, stride, offset, storageElements);
        }
        catch (TorchLoadException e)
        {
            throw new TorchLoadException(e.Reason, $"Invalid tensor geometry for {what}: {e.Message}");
        }
    }

    /// <summary>As above, for a tensor of <paramref name="dtype"/> over <paramref name="storageKey"/>; the message is built only on refusal (hot path).</summary>
    public static void ValidateView(long[] shape, long[] stride, long offset, long storageElements, TorchDType dtype, string storageKey)
    {
        try
        {
            Check(shape, stride, offset, storageElements);
        }
        catch (TorchLoadException e)
        {
            throw new TorchLoadException(e.Reason, $"Invalid tensor geometry for a {dtype} tensor of shape ({string.Join(", ", shape)}) over storage {storageKey}: {e.Message}");
        }
    }

    private static void Check(long[] shape, long[] stride, long offset, long storageElements)
    {
        if (shape.Length != stride.Length)
            throw Geometry($"{shape.Length} sizes but {stride.Length} strides");
        if (offset < 0) throw Geometry($"negative storage offset {offset}");
        var empty = false;
        for (var i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0) throw Geometry($"negative size {shape[i]} in dimension {i}");
            if (stride[i] < 0) throw Geometry($"negative stride {stride[i]} in dimension {i}");
            if (shape[i] == 0) empty = true;
        }
        try
        {
            Count(shape);
            if (empty) return;
            var last = offset;
            for (var i = 0; i < shape.Length; i++) last = checked(last + (shape[i] - 1) * stride[i]);
            if (last >= storageElements)
                throw Geometry($"the view reaches element {last} but its storage holds {storageElements}");
        }
        catch (OverflowException)
        {
            throw Geometry($"sizes and strides overflow 64-bit arithmetic");
        }
    }

    private static TorchLoadException Geometry(string message) => new(TorchLoadErrorReason.InvalidTensorGeometry, message);
}
