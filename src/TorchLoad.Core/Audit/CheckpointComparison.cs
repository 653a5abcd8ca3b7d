namespace TorchLoad.Core.Audit;

/// <summary>How one tensor name differs between two checkpoints.</summary>
public sealed class TensorDifference
{
    public required string Name { get; init; }

    /// <summary><c>Added</c>, <c>Removed</c>, <c>Changed</c> or <c>Equal</c>.</summary>
    public required string Change { get; init; }

    /// <summary>What changed for a <c>Changed</c> row: <c>DType</c>, <c>Shape</c> and/or <c>Values</c>.</summary>
    public string[] Changes { get; init; } = [];

    public string? ReferenceDType { get; init; }
    public string? DifferenceDType { get; init; }
    public long[]? ReferenceShape { get; init; }
    public long[]? DifferenceShape { get; init; }
    public string? ReferenceSha256 { get; init; }
    public string? DifferenceSha256 { get; init; }

    /// <summary>For tensors of one shape whose values differ: the largest |a − b|, in double.</summary>
    public double? MaxAbsDiff { get; init; }

    /// <summary>The largest |a − b| / |b| (b the difference side, as torch.allclose).</summary>
    public double? MaxRelDiff { get; init; }

    /// <summary>Flat (row-major) index of the element with <see cref="MaxAbsDiff"/>.</summary>
    public long? MaxDiffIndex { get; init; }

    /// <summary>Elements outside the tolerance (all that differ, without one).</summary>
    public long? MismatchCount { get; init; }

    public override string ToString() => $"{Change} {Name}";
}

/// <summary>
/// Compare-TorchCheckpoint's engine: tensors matched by name, compared by dtype, shape and value digest;
/// values that differ are compared element by element (how far apart), and with a <see cref="Tolerance"/>
/// values within it (torch.allclose) are not a change. A dtype or shape difference is always a change.
/// </summary>
public static class CheckpointComparison
{
    public static IEnumerable<TensorDifference> Compare(IEnumerable<TensorInfo> reference, IEnumerable<TensorInfo> difference, bool includeEqual, Tolerance? tolerance = null)
    {
        var right = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var t in difference) right.TryAdd(t.Name, t);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var a in reference)
        {
            if (!seen.Add(a.Name)) continue;
            if (!right.TryGetValue(a.Name, out var b))
            {
                yield return new TensorDifference { Name = a.Name, Change = "Removed", ReferenceDType = a.DType, ReferenceShape = a.Shape, ReferenceSha256 = a.Sha256 };
                continue;
            }
            var changes = new List<string>();
            if (a.DType != b.DType) changes.Add("DType");
            if (!a.Shape.AsSpan().SequenceEqual(b.Shape)) changes.Add("Shape");
            // Values: by digest without a tolerance; with one, element by element (allclose), where equal bytes
            // still differ when they hold NaN and NaN is not to equal NaN. Differing values say how far apart.
            ValueDifference? diff = null;
            var mayHoldNaN = a.Tensor?.DType.Kind is Tensors.DTypeKind.Float or Tensors.DTypeKind.Complex;
            if ((a.Sha256 != b.Sha256 || tolerance is { EqualNaN: false } && mayHoldNaN) && !changes.Contains("Shape") && Dense(a) && Dense(b))
                diff = ValueComparison.Compare(a.Tensor!, b.Tensor!, tolerance ?? Tolerance.Exact(equalNaN: true));
            if (tolerance is null || diff is null ? a.Sha256 != b.Sha256 : diff.Value.MismatchCount > 0) changes.Add("Values");
            if (changes.Count == 0 && !includeEqual) continue;
            yield return new TensorDifference
            {
                Name = a.Name, Change = changes.Count == 0 ? "Equal" : "Changed", Changes = changes.ToArray(),
                ReferenceDType = a.DType, DifferenceDType = b.DType, ReferenceShape = a.Shape, DifferenceShape = b.Shape,
                ReferenceSha256 = a.Sha256, DifferenceSha256 = b.Sha256,
                MaxAbsDiff = diff?.MaxAbsDiff, MaxRelDiff = diff?.MaxRelDiff, MaxDiffIndex = diff is { MaxDiffIndex: >= 0 } x ? x.MaxDiffIndex : null,
                MismatchCount = diff?.MismatchCount,
            };
        }
        foreach (var b in right.Values)
            if (!seen.Contains(b.Name))
                yield return new TensorDifference { Name = b.Name, Change = "Added", DifferenceDType = b.DType, DifferenceShape = b.Shape, DifferenceSha256 = b.Sha256 };
    }

    /// <summary>A strided tensor with data in host memory or on a device (meta and sparse tensors compare by digest only).</summary>
    private static bool Dense(TensorInfo t) => t.Tensor is { Storage: not null, IsNested: false } x && x.Layout == Tensors.TorchLayout.Strided;
}
