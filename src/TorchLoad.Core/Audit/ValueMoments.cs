namespace TorchLoad.Core.Audit;

/// <summary>
/// Partial statistics of some values: counts of NaN, ±Inf and zeros, and over the finite values their
/// count, min, max, mean and sum of squared deviations (M2). Partials of disjoint parts merge exactly
/// (Chan et al.), so any split of the work, on the host or on a device, gives the same statistics up
/// to rounding, without the cancellation of sum-of-squares formulas.
/// </summary>
internal struct ValueMoments
{
    public long Count;
    public double Mean;
    public double M2;
    public double Min;
    public double Max;
    public long NaN;
    public long Inf;
    public long Zero;

    public static ValueMoments Empty => new() { Min = double.PositiveInfinity, Max = double.NegativeInfinity };

    /// <summary>Folds <paramref name="b"/> (values disjoint from this one's) into this.</summary>
    public void Merge(in ValueMoments b)
    {
        NaN += b.NaN;
        Inf += b.Inf;
        Zero += b.Zero;
        if (b.Count == 0) return;
        if (Count == 0)
        {
            Count = b.Count; Mean = b.Mean; M2 = b.M2; Min = b.Min; Max = b.Max;
            return;
        }
        var n = Count + b.Count;
        var delta = b.Mean - Mean;
        Mean += delta * ((double)b.Count / n);
        M2 += b.M2 + delta * delta * ((double)Count * b.Count / n);
        Count = n;
        if (b.Min < Min) Min = b.Min;
        if (b.Max > Max) Max = b.Max;
    }

    /// <summary>Adds one value (Welford's update); the slow path for blocks holding NaN or Inf.</summary>
    public void Add(double v)
    {
        if (double.IsNaN(v)) { NaN++; return; }
        if (double.IsInfinity(v)) { Inf++; return; }
        if (v == 0) Zero++;
        Count++;
        var delta = v - Mean;
        Mean += delta / Count;
        M2 += delta * (v - Mean);
        if (v < Min) Min = v;
        if (v > Max) Max = v;
    }

    /// <summary>Sample standard deviation (torch's default correction of 1); NaN below two finite values.</summary>
    public readonly double Std => Count < 2 ? double.NaN : Math.Sqrt(Math.Max(M2, 0) / (Count - 1));

    /// <summary>Euclidean norm of the finite values: sqrt(Σx²) = sqrt(M2 + n·mean²), both terms non-negative.</summary>
    public readonly double L2Norm => Count == 0 ? 0 : Math.Sqrt(Math.Max(M2, 0) + Count * Mean * Mean);
}
