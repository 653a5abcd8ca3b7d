using System.Security.Cryptography;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Audit;

/// <summary>
/// One tensor of a checkpoint as an audit row. Every property is a plain value (strings, numbers,
/// arrays of numbers), so the row survives remoting and jobs unchanged; <see cref="Tensor"/> is the
/// live object for local use.
/// </summary>
public sealed class TensorInfo
{
    public required string Name { get; init; }
    public required string DType { get; init; }
    public required long[] Shape { get; init; }
    public long ElementCount { get; init; }
    public long ByteLength { get; init; }
    public required string Layout { get; init; }
    public required string Device { get; init; }
    public string? StorageKey { get; init; }
    public bool IsParameter { get; init; }
    public bool RequiresGrad { get; init; }

    /// <summary>SHA-256 (lower-case hex) of the logical values (<see cref="TorchTensor.ToByteArray"/>); null unless asked for, and for tensors without dense data.</summary>
    public string? Sha256 { get; init; }

    /// <summary>The file the tensor came from, when known.</summary>
    public string? Path { get; init; }

    /// <summary>DCP folders: how many chunks the tensor is saved in, and the data files holding them; null otherwise.</summary>
    public int? ChunkCount { get; init; }
    public string[]? Files { get; init; }

    public TorchTensor? Tensor { get; init; }

    public override string ToString() => $"{Name} {DType}[{string.Join(", ", Shape)}]";

    private TensorInfo WithSha256(string? sha) => With(Name, sha, ChunkCount, Files);

    private TensorInfo With(string name, string? sha, int? chunkCount, string[]? files) => new()
    {
        Name = name, DType = DType, Shape = Shape, ElementCount = ElementCount, ByteLength = ByteLength, Layout = Layout,
        Device = Device, StorageKey = StorageKey, IsParameter = IsParameter, RequiresGrad = RequiresGrad, Sha256 = sha, Path = Path, Tensor = Tensor,
        ChunkCount = chunkCount, Files = files,
    };

    /// <summary>
    /// The rows of a loaded checkpoint. A DCP folder's tensors are named by their DCP path (list indices as <c>[i]</c>,
    /// as in the DCP manifests) and also say how many chunks each has and in which files.
    /// </summary>
    public static IEnumerable<TensorInfo> From(TorchCheckpoint checkpoint, bool hash, string? path = null)
    {
        var rows = From(checkpoint.Root, hash, path);
        if (checkpoint.DcpTensors is not { } dcp) return rows;
        return rows.Select(r => r.Tensor is { } t && dcp.TryGetValue(t, out var e) ? r.With(e.Name, r.Sha256, e.Chunks.Count, e.Files) : r);
    }



    /// <summary>Every tensor reachable from <paramref name="root"/> (nested parts of sparse/quantized tensors excluded), in walk order.</summary>
    public static IEnumerable<TensorInfo> From(object? root, bool hash, string? path = null)
    {
        // a digest is computed once per tensor
        var digests = new Dictionary<TorchTensor, string?>(ReferenceEqualityComparer.Instance);
        foreach (var (name, t) in Rows(root))
        {
            var info = Describe(name, t, hash: false, path);
            if (hash)
            {
                if (!digests.TryGetValue(t, out var d)) digests[t] = d = Digest(t);
                info = info.WithSha256(d);
            }
            yield return info;
        }
    }

    /// <summary>How many rows <see cref="From(object?, bool, string?)"/> gives, without making them (an audit's TensorCount).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Count(object? root)
    {
        var cursor = new TensorWalker.Cursor(root, withPaths: false); // no enumerators: this runs once per audited file
        try
        {
            HashSet<TorchTensor>? parts = null;
            var count = 0;
            while (cursor.Next(out var found))
                if (found.Tensor is { } t && IsRow(t, ref parts)) count++;
            return count;
        }
        finally
        {
            cursor.Dispose();
        }
    }

    /// <summary>
    /// The tensors that are rows, with their names: every name of every tensor (a tied weight is listed under each
    /// name); parts of sparse and quantized tensors are not rows of their own.
    /// </summary>
    private static IEnumerable<(string Name, TorchTensor Tensor)> Rows(object? root)
    {
        HashSet<TorchTensor>? parts = null;
        foreach (var found in TensorWalker.Walk(root))
            if (found.Tensor is { } t && IsRow(t, ref parts)) yield return (found.Path, t);
    }

    /// <summary>False for a part of a tensor met before it; a tensor with parts adds them to <paramref name="parts"/>.</summary>
    private static bool IsRow(TorchTensor t, ref HashSet<TorchTensor>? parts)
    {
        if (parts is not null && parts.Contains(t)) return false;
        if (t.HasParts)
            foreach (var (_, p) in t.Parts()) (parts ??= new(ReferenceEqualityComparer.Instance)).Add(p);
        return true;
    }

    public static TensorInfo Describe(string name, TorchTensor t, bool hash, string? path = null) => new()
    {
        Name = name,
        DType = t.DType.Name,
        Shape = (long[])t.Shape.Clone(),
        ElementCount = t.ElementCount,
        ByteLength = ShapeMath.TryBytes(t.Layout == TorchLayout.Strided ? t.ElementCount : t.Values?.ElementCount ?? 0, t.DType.ElementSize, out var bytes) ? bytes : long.MaxValue,
        Layout = t.Layout.Name,
        Device = t.Device ?? t.Location, // metadata-only listing: where it was saved
        StorageKey = t.Storage?.Key,
        IsParameter = t.IsParameter,
        RequiresGrad = t.RequiresGrad,
        Sha256 = hash ? Digest(t) : null,
        Path = path,
        Tensor = t,
    };

    /// <summary>The manifests' definition: SHA-256 of the logical values; sparse tensors hash their parts in order; meta tensors have none.</summary>
    public static string? Digest(TorchTensor t)
    {
        if (t.Layout == TorchLayout.Strided && !t.IsNested)
            return t.Storage is null ? null : Convert.ToHexString(SHA256.HashData(t.ToByteArray())).ToLowerInvariant(); // too large: LimitExceeded
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (_, part) in t.Parts())
            if (part.Storage is not null) h.AppendData(part.ToByteArray());
        return Convert.ToHexString(h.GetHashAndReset()).ToLowerInvariant();
    }
}
