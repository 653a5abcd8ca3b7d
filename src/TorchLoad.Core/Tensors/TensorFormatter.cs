using System.Globalization;
using System.Numerics;
using System.Text;

namespace TorchLoad.Core.Tensors;

/// <summary>
/// A tensor as text the way torch prints it (torch/_tensor_str.py with the default printoptions: threshold
/// 1000 elements, 3 edge items, precision 4, line width 80): values right-aligned to one width, fixed or
/// scientific notation chosen as torch chooses, large tensors summarised with <c>...</c>. Only the
/// displayed elements are read, so a preview of a huge (or device-resident) tensor stays cheap.
/// Quantized tensors show dequantized values, as torch does; bits and float4 dtypes their codes.
/// </summary>
public static class TensorFormatter
{
    private const int Threshold = 1000, EdgeItems = 3, Precision = 4, LineWidth = 80;
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>A header line (kind, dtype, shape, device, layout or qscheme) and torch's repr of the values.</summary>
    public static string Format(TorchTensor t)
    {
        var header = new StringBuilder(t.IsParameter ? "Parameter" : "Tensor");
        header.Append(' ').Append(t.DType.Name).Append(" (").Append(string.Join(", ", t.Shape)).Append(") on ").Append(t.Device ?? $"{t.Location} (not loaded)");
        if (t.Layout != TorchLayout.Strided) header.Append(", ").Append(t.Layout.Name);
        if (t.IsNested) header.Append(", nested");
        if (t.QScheme is { } q)
        {
            header.Append(", ").Append(q.Name);
            if (!q.IsPerChannel) header.Append(" scale=").Append(Num(t.QScale ?? 1)).Append(" zero_point=").Append(t.QZeroPoint ?? 0);
            else header.Append(" axis=").Append(t.QAxis);
        }
        if (t.RequiresGrad) header.Append(", requires_grad");
        return header + "\n" + Repr(t);
    }

    /// <summary>torch's repr: <c>tensor([...], dtype=torch.float16)</c>; sparse and nested tensors show their component tensors.</summary>
    public static string Repr(TorchTensor t)
    {
        if (t.Layout != TorchLayout.Strided || t.IsNested)
        {
            var parts = t.Parts().Where(p => p.Name is not ("nested_strides" or "nested_offsets"))
                .Select(p => $"{p.Name}={Indent(Repr(p.Part), p.Name.Length + 1)}");
            return string.Join(",\n", parts);
        }
        var suffixes = new List<string>();
        if (t.Storage is null)
            return $"tensor(..., device='{t.Device}', size={Size(t.Shape)}{DTypeSuffix(t)})";
        if (t.Storage.Buffer is null) return "tensor(...)  (values not loaded: listed from metadata only)";
        var count = t.ElementCount;
        var summarize = count > Threshold;
        var cells = new List<Cell>();
        Collect(t, new long[t.Rank], 0, summarize, cells);
        var formatter = new CellFormatter(t.DType, cells);
        const string prefix = "tensor(";
        var body = t.Rank == 0 ? formatter.Format(cells[0]) : Render(t.Shape, 0, prefix.Length, summarize, formatter, cells, new Cursor());
        if (count == 0 && t.Rank != 1) suffixes.Add($"size={Size(t.Shape)}");
        if (t.Device != "cpu") suffixes.Add($"device='{t.Device}'");
        if (t.QScheme is { } q)
        {
            suffixes.Add($"size={Size(t.Shape)}");
            suffixes.Add($"dtype=torch.{t.DType.Name}");
            suffixes.Add($"quantization_scheme=torch.{q.Name}");
            if (!q.IsPerChannel) { suffixes.Add($"scale={Num(t.QScale ?? 1)}"); suffixes.Add($"zero_point={t.QZeroPoint ?? 0}"); }
            else suffixes.Add($"axis={t.QAxis}");
        }
        else if (!IsDefaultDType(t.DType)) suffixes.Add($"dtype=torch.{t.DType.Name}");
        if (t.RequiresGrad) suffixes.Add("requires_grad=True");
        return AddSuffixes(prefix + body, suffixes, prefix.Length);
    }

    /// <summary>torch's _add_suffixes: a suffix that would pass the line width goes on its own line.</summary>
    private static string AddSuffixes(string text, List<string> suffixes, int indent)
    {
        var result = new StringBuilder(text);
        var lastLine = text.Length - text.LastIndexOf('\n') + 1;
        foreach (var suffix in suffixes)
        {
            if (lastLine + suffix.Length + 2 > LineWidth)
            {
                result.Append(",\n").Append(' ', indent).Append(suffix);
                lastLine = indent + suffix.Length;
            }
            else
            {
                result.Append(", ").Append(suffix);
                lastLine += suffix.Length + 2;
            }
        }
        return result.Append(')').ToString();
    }

    /// <summary>A shape as Python prints a tuple: <c>(4,)</c>, <c>(0, 3)</c>, <c>()</c>.</summary>
    private static string Size(long[] shape) => shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";

    private static string DTypeSuffix(TorchTensor t) => IsDefaultDType(t.DType) ? "" : $", dtype=torch.{t.DType.Name}";

    // torch omits the dtype for its defaults: float32, complex64 (the default float's complex), int64 and bool
    private static bool IsDefaultDType(TorchDType d) => d == TorchDType.Float32 || d == TorchDType.Complex64 || d == TorchDType.Int64 || d == TorchDType.Bool;

    private static string Indent(string text, int by) => text.Replace("\n", "\n" + new string(' ', by), StringComparison.Ordinal);

    private static string Num(double v) => v.ToString("R", Invariant);

    /// <summary>One displayed element: a real (or a complex's parts), or an exact integer.</summary>
    private readonly record struct Cell(double Re, double Im, long Int, ulong UInt);

    private sealed class Cursor { public int Next; }

    private static void Collect(TorchTensor t, long[] index, int dim, bool summarize, List<Cell> cells)
    {
        if (dim == t.Rank) { cells.Add(Read(t, index)); return; }
        foreach (var i in Displayed(t.Shape[dim], summarize))
        {
            index[dim] = i;
            Collect(t, index, dim + 1, summarize, cells);
        }
    }

    private static IEnumerable<long> Displayed(long size, bool summarize)
    {
        if (summarize && size > 2 * EdgeItems)
        {
            for (long i = 0; i < EdgeItems; i++) yield return i;
            for (var i = size - EdgeItems; i < size; i++) yield return i;
        }
        else
        {
            for (long i = 0; i < size; i++) yield return i;
        }
    }

    private static string Render(long[] shape, int dim, int indent, bool summarize, CellFormatter f, List<Cell> cells, Cursor cursor)
    {
        var size = shape[dim];
        var cut = summarize && size > 2 * EdgeItems;
        if (dim == shape.Length - 1)
        {
            var perLine = Math.Max(1, (LineWidth - indent) / (f.Width + 2));
            var items = new List<string>();
            foreach (var i in Displayed(size, summarize))
            {
                if (cut && i == size - EdgeItems) items.Add(" ...");
                items.Add(f.Format(cells[cursor.Next++]));
            }
            var lines = items.Chunk(perLine).Select(l => string.Join(", ", l));
            return "[" + string.Join(",\n" + new string(' ', indent + 1), lines) + "]";
        }
        var slices = new List<string>();
        foreach (var i in Displayed(size, summarize))
        {
            if (cut && i == size - EdgeItems) slices.Add("...");
            slices.Add(Render(shape, dim + 1, indent + 1, summarize, f, cells, cursor));
        }
        return "[" + string.Join("," + new string('\n', shape.Length - dim - 1) + new string(' ', indent + 1), slices) + "]";
    }

    /// <summary>The element at <paramref name="index"/>: conj/neg applied, quantized dequantized, packed codes unpacked.</summary>
    private static Cell Read(TorchTensor t, long[] index)
    {
        var dtype = t.DType;
        var e = t.StorageOffset;
        for (var d = 0; d < index.Length; d++) e += index[d] * t.Stride[d];
        var buffer = t.Storage!.RequireBuffer();
        var vpb = dtype.ValuesPerByte;
        Span<byte> bytes = stackalloc byte[dtype.ElementSize];
        buffer.CopyTo(e / vpb * dtype.ElementSize, bytes);
        if (vpb > 1) bytes[0] = (byte)((bytes[0] >> (int)(e % vpb * (8 / vpb))) & ((1 << (8 / vpb)) - 1));
        var sign = t.IsNeg ? -1 : 1;
        // bits and float4 pairs print as their codes (torch has no numbers for them)
        var asType = dtype == TorchDType.Bits16 ? TorchDType.UInt16 : dtype.Kind == DTypeKind.Bits || dtype == TorchDType.Float4E2M1FNx2 ? TorchDType.UInt8 : dtype;
        var value = ElementConverter.ToArray(asType, bytes.ToArray()).GetValue(0);
        Cell cell = value switch
        {
            Complex c => new Cell(sign * c.Real, sign * (t.IsConj ? -c.Imaginary : c.Imaginary), 0, 0),
            bool b => new Cell(b ? 1 : 0, 0, b ? 1 : 0, 0),
            ulong u => new Cell(u, 0, 0, u),
            long l => new Cell(sign * l, 0, sign * l, 0),
            int i => new Cell(sign * i, 0, sign * i, 0),
            short s => new Cell(sign * s, 0, sign * s, 0),
            sbyte s => new Cell(sign * s, 0, sign * s, 0),
            byte b => new Cell(b, 0, b, b),
            ushort u => new Cell(u, 0, u, u),
            uint u => new Cell(u, 0, u, u),
            Half h => new Cell(sign * (double)h, 0, 0, 0),
            float f => new Cell(sign * f, 0, 0, 0),
            double d => new Cell(sign * d, 0, 0, 0),
            _ => new Cell(Convert.ToDouble(value, Invariant), 0, 0, 0),
        };
        if (t.QScheme is not { } q) return cell;
        float scale, zero;
        if (!q.IsPerChannel) { scale = (float)(t.QScale ?? 1); zero = (float)(t.QZeroPoint ?? 0); }
        else
        {
            var channel = index.Length == 0 ? 0 : index[(int)(t.QAxis ?? 0)];
            scale = (float)Param(t.QScales, channel, 1);
            zero = (float)Param(t.QZeroPoints, channel, 0);
            if (q == TorchQScheme.PerChannelAffineFloatQParams) return new Cell((float)cell.Re * scale + zero, 0, 0, 0);
        }
        return new Cell(((float)cell.Re - zero) * scale, 0, 0, 0);
    }

    private static double Param(TorchTensor? p, long channel, double fallback)
    {
        if (p?.Storage?.Buffer is null || channel >= p.ElementCount) return fallback;
        return Read(p, [channel]).Re;
    }

    /// <summary>What a value prints as: complex values through one formatter per part, as torch does.</summary>
    private sealed class CellFormatter
    {
        private readonly bool _complex, _bool, _unsigned;
        private readonly PartFormatter? _real, _imag;
        private readonly int _plainWidth;

        public CellFormatter(TorchDType dtype, List<Cell> cells)
        {
            _complex = dtype.IsComplex;
            _bool = dtype == TorchDType.Bool;
            _unsigned = dtype == TorchDType.UInt64;
            if ((dtype.IsFloatingPoint && dtype != TorchDType.Float4E2M1FNx2) || dtype.IsQuantized || _complex)
            {
                _real = new PartFormatter(cells.Select(c => c.Re));
                if (_complex) _imag = new PartFormatter(cells.Select(c => c.Im));
            }
            else _plainWidth = cells.Count == 0 ? 1 : cells.Max(c => Plain(c).Length);
        }

        /// <summary>torch's element width, which decides how many elements share a line.</summary>
        public int Width => _imag is not null ? _real!.Width + _imag.Width + 1 : _real?.Width ?? _plainWidth;

        public string Format(Cell c)
        {
            if (_imag is not null)
            {
                var imag = (_imag.Format(c.Im) + "j").TrimStart();
                return _real!.Format(c.Re) + (imag[0] is '+' or '-' ? imag : "+" + imag);
            }
            return _real?.Format(c.Re) ?? Plain(c).PadLeft(_plainWidth);
        }

        private string Plain(Cell c) => _bool ? (c.Int != 0 ? "True" : "False") : _unsigned ? c.UInt.ToString(Invariant) : c.Int.ToString(Invariant);
    }

    /// <summary>
    /// torch's _Formatter for floating values: integer mode when every nonzero finite value is whole,
    /// scientific notation when they span more than 1000x, exceed 1e8 or (not whole) go below 1e-4; the width
    /// is the longest nonzero finite value's.
    /// </summary>
    private sealed class PartFormatter
    {
        private readonly bool _intMode = true, _sci;

        public PartFormatter(IEnumerable<double> values)
        {
            var nonzero = values.Where(v => double.IsFinite(v) && v != 0).ToList();
            if (nonzero.Count == 0) return;
            var abs = nonzero.Select(Math.Abs).ToList();
            _intMode = abs.All(v => Math.Ceiling(v) == v);
            double max = abs.Max(), min = abs.Min();
            _sci = _intMode ? max / min > 1000 || max > 1e8 : max / min > 1000 || max > 1e8 || min < 1e-4;
            Width = nonzero.Max(v => Text(v).Length);
        }

        public int Width { get; } = 1;

        public string Format(double v) => Text(v).PadLeft(Width);

        private string Text(double v)
        {
            if (double.IsNaN(v)) return "nan";
            if (double.IsInfinity(v)) return v > 0 ? "inf" : "-inf";
            if (_sci) return v.ToString("0.0000e+00", Invariant); // Python's '{:.4e}'
            return _intMode ? v.ToString("F0", Invariant) + "." : v.ToString("F" + Precision, Invariant);
        }
    }
}
