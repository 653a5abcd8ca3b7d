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

    public override string ToString() => $"{Change} {Name}";
}

/// <summary>Compare-TorchCheckpoint's engine: tensors matched by name, compared by dtype, shape and value digest.</summary>
public static class CheckpointComparison
{
    public static IEnumerable<TensorDifference> Compare(IEnumerable<TensorInfo> reference, IEnumerable<TensorInfo> difference, bool includeEqual)
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
            if (a.Sha256 != b.Sha256) changes.Add("Values");
            if (changes.Count == 0 && !includeEqual) continue;
            yield return new TensorDifference
            {
                Name = a.Name, Change = changes.Count == 0 ? "Equal" : "Changed", Changes = changes.ToArray(),
                ReferenceDType = a.DType, DifferenceDType = b.DType, ReferenceShape = a.Shape, DifferenceShape = b.Shape,
                ReferenceSha256 = a.Sha256, DifferenceSha256 = b.Sha256,
            };
        }
        foreach (var b in right.Values)
            if (!seen.Contains(b.Name))
                yield return new TensorDifference { Name = b.Name, Change = "Added", DifferenceDType = b.DType, DifferenceShape = b.Shape, DifferenceSha256 = b.Sha256 };
    }
}
