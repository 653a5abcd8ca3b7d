using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Audit;

/// <summary>torch.allclose's tolerances: |a − b| ≤ atol + rtol·|b|, b the difference side; NaN equals NaN only with EqualNaN.</summary>
public sealed record Tolerance(double Absolute, double Relative, bool EqualNaN)
{
    /// <summary>Exact equality (no tolerance), NaN equal to NaN only when asked.</summary>
    public static Tolerance Exact(bool equalNaN) => new(0, 0, equalNaN);
}

/// <summary>How far two tensors' values are apart, element by element.</summary>
/// <param name="MaxAbsDiff">The largest |a − b| (+Inf where one side is NaN or ±Inf and the other is not the same; NaN against NaN is 0, and a mismatch only without EqualNaN).</param>
/// <param name="MaxRelDiff">The largest |a − b| / |b| (+Inf where b is 0 and a is not).</param>
/// <param name="MaxDiffIndex">Flat (row-major) index of the element with <see cref="MaxAbsDiff"/>, the first one on ties; -1 when all are equal.</param>
/// <param name="MismatchCount">Elements outside the tolerance.</param>
public readonly record struct ValueDifference(double MaxAbsDiff, double MaxRelDiff, long MaxDiffIndex, long MismatchCount);

/// <summary>Element-wise comparison of two tensors of one shape in double (complex: |a − b| and |b| of the complex numbers; quantized: dequantized values).</summary>
public static class ValueComparison
{
    public static ValueDifference Compare(TorchTensor reference, TorchTensor difference, Tolerance tolerance)
    {
        var complex = reference.DType.IsComplex || difference.DType.IsComplex;
        var a = TensorValues.ToDoubles(reference, complexParts: true);
        var b = TensorValues.ToDoubles(difference, complexParts: true);
        var stepA = reference.DType.IsComplex ? 2 : 1;
        var stepB = difference.DType.IsComplex ? 2 : 1;
        var count = Math.Min(a.LongLength / stepA, b.LongLength / stepB);
        double maxAbs = 0, maxRel = 0;
        long at = -1, mismatches = 0;
        for (long i = 0; i < count; i++)
        {
            double ar = a[i * stepA], ai = stepA == 2 ? a[i * stepA + 1] : 0;
            double br = b[i * stepB], bi = stepB == 2 ? b[i * stepB + 1] : 0;
            var (abs, rel, close) = complex ? Complex(ar, ai, br, bi, tolerance) : Real(ar, br, tolerance);
            if (!close) mismatches++;
            if (abs > maxAbs || double.IsNaN(abs) && !double.IsPositiveInfinity(maxAbs)) { maxAbs = double.IsNaN(abs) ? double.PositiveInfinity : abs; at = i; }
            if (rel > maxRel || double.IsNaN(rel)) maxRel = double.IsNaN(rel) ? double.PositiveInfinity : rel;
        }
        return new ValueDifference(maxAbs, maxRel, at, mismatches);
    }

    /// <summary>torch.isclose for real numbers: equal values (infinities too) are close; NaN only to NaN with EqualNaN.</summary>
    private static (double Abs, double Rel, bool Close) Real(double a, double b, Tolerance t)
    {
        if (a == b) return (0, 0, true);
        if (double.IsNaN(a) || double.IsNaN(b))
            return double.IsNaN(a) && double.IsNaN(b) ? (0, 0, t.EqualNaN) : (double.PositiveInfinity, double.PositiveInfinity, false);
        var abs = Math.Abs(a - b);
        var rel = b == 0 ? double.PositiveInfinity : abs / Math.Abs(b);
        var close = double.IsFinite(a) && double.IsFinite(b) && abs <= t.Absolute + t.Relative * Math.Abs(b);
        return (double.IsFinite(abs) ? abs : double.PositiveInfinity, rel, close);
    }

    private static (double Abs, double Rel, bool Close) Complex(double ar, double ai, double br, double bi, Tolerance t)
    {
        if (ar == br && ai == bi) return (0, 0, true);
        bool nanA = double.IsNaN(ar) || double.IsNaN(ai), nanB = double.IsNaN(br) || double.IsNaN(bi);
        if (nanA || nanB) return nanA && nanB ? (0, 0, t.EqualNaN) : (double.PositiveInfinity, double.PositiveInfinity, false);
        var abs = System.Numerics.Complex.Abs(new System.Numerics.Complex(ar - br, ai - bi));
        var magB = System.Numerics.Complex.Abs(new System.Numerics.Complex(br, bi));
        var rel = magB == 0 ? double.PositiveInfinity : abs / magB;
        var finite = double.IsFinite(ar) && double.IsFinite(ai) && double.IsFinite(br) && double.IsFinite(bi);
        return (double.IsFinite(abs) ? abs : double.PositiveInfinity, rel, finite && abs <= t.Absolute + t.Relative * magB);
    }
}
