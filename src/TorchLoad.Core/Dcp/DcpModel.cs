using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Dcp;

/// <summary>One byte range of a data file that holds one item (a whole torch.save archive), as <c>_StorageInfo</c> names it.</summary>
internal sealed record DcpItem(string File, long Offset, long Length, IReadOnlyList<string> Transforms);

/// <summary>
/// One chunk of a tensor entry: its box and its item. A class, not a value tuple: collections of a value type
/// cannot be precompiled into the engine's image and would run unoptimized through a 10,000-key listing.
/// </summary>
internal sealed record DcpChunkRef(long[] Offsets, long[] Sizes, long? Index, DcpItem Item);

/// <summary>
/// One chunk of a DCP tensor: the box [<see cref="Offsets"/>, <see cref="Offsets"/> + <see cref="Sizes"/>) of the
/// whole tensor that the item at <see cref="File"/> bytes [<see cref="FileOffset"/>, + <see cref="Length"/>) fills.
/// What <c>Get-TorchStorage -Path &lt;folder&gt;</c> lists; plain values only.
/// </summary>
public sealed class DcpChunk
{
    /// <summary>The tensor's dotted name (its path in the state dict).</summary>
    public required string Name { get; init; }
    /// <summary>The flattened key in <c>.metadata</c> (may differ from <see cref="Name"/> when a key holds dots).</summary>
    public required string Fqn { get; init; }
    public required string DType { get; init; }
    /// <summary>The whole tensor's shape.</summary>
    public required long[] TensorShape { get; init; }
    public required long[] Offsets { get; init; }
    public required long[] Sizes { get; init; }
    public long ElementCount { get; init; }
    public long ByteLength { get; init; }
    /// <summary>The data file, relative to the checkpoint folder.</summary>
    public required string File { get; init; }
    public long FileOffset { get; init; }
    /// <summary>Bytes of the item (a torch.save archive) in <see cref="File"/>.</summary>
    public long Length { get; init; }
    /// <summary>The chunk's position among the tensor's chunks, as the saver recorded it (a hint).</summary>
    public long? Index { get; init; }
    /// <summary>The checkpoint folder.</summary>
    public string? Path { get; init; }

    public override string ToString() => $"{Name}[{string.Join(", ", Offsets)} +{string.Join(", ", Sizes)}] {File}@{FileOffset}";
}

/// <summary>One key of <c>state_dict_metadata</c>: a tensor with its chunks, or a bytes entry with its item.</summary>
internal sealed class DcpEntry
{
    public required string Fqn { get; init; }

    /// <summary>The nested path (strings and longs) from <c>planner_data</c>, or (fqn).</summary>
    public required object[] Path { get; init; }

    /// <summary>
    /// The path as the DCP manifests' path_str writes it: str components joined with dots, list indices as
    /// <c>[i]</c> (<c>mixed[0]</c>, <c>optim.param_groups[0].lr</c>). The name of this entry's rows and chunks.
    /// </summary>
    public string Name => _name ??= Join(Path);
    private string? _name;

    private static string Join(object[] path)
    {
        var b = new System.Text.StringBuilder();
        foreach (var p in path)
        {
            if (p is long l) b.Append('[').Append(l.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append(']');
            else b.Append(b.Length == 0 ? "" : ".").Append((string)p);
        }
        return b.ToString();
    }

    public bool IsTensor => DType is not null;
    public TorchDType? DType { get; init; }
    public long[] Shape { get; init; } = [];
    public List<DcpChunkRef> Chunks { get; } = [];

    /// <summary>The data files holding the chunks, each once, in chunk order.</summary>
    public string[] Files => _files ??= Chunks.Select(c => c.Item.File).Distinct().ToArray();
    private string[]? _files;

    /// <summary>A bytes entry's item.</summary>
    public DcpItem? Item { get; set; }
}

/// <summary>What <c>.metadata</c> says, validated against the folder: entries in order, and the facts audits show.</summary>
internal sealed class DcpIndex
{
    public required string Folder { get; init; }
    public required List<DcpEntry> Entries { get; init; }
    public int PickleProtocol { get; init; }
    public required IReadOnlyList<string> Globals { get; init; }
    public string? Version { get; init; }
    public DcpSavedPath? CheckpointId { get; init; }
    public string? SaveId { get; init; }

    /// <summary>Data file name to its size, for every file an item names.</summary>
    public Dictionary<string, long> FileSizes { get; } = new(StringComparer.Ordinal);

    public IEnumerable<DcpChunk> ChunkRows() =>
        from e in Entries
        where e.IsTensor
        from c in e.Chunks
        select new DcpChunk
        {
            Name = e.Name, Fqn = e.Fqn, DType = e.DType!.Name, TensorShape = e.Shape, Offsets = c.Offsets, Sizes = c.Sizes,
            ElementCount = DcpGeometry.Volume(c.Sizes), ByteLength = DcpGeometry.Volume(c.Sizes) * e.DType.ElementSize,
            File = c.Item.File, FileOffset = c.Item.Offset, Length = c.Item.Length, Index = c.Index, Path = Folder,
        };
}
