using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests.Support;

/// <summary>
/// Writes DCP checkpoint folders the way torch.distributed.checkpoint does (a <c>.metadata</c> pickle of DCP
/// dataclasses, data files of concatenated torch.save archives), with every part open to tampering, so tests
/// can build real-shaped and hostile folders alike.
/// </summary>
internal sealed class DcpFolderBuilder
{
    private const string Meta = "torch.distributed.checkpoint.metadata";

    internal sealed class Chunk(long[] offsets, long[] sizes)
    {
        public long[] Offsets { get; set; } = offsets;
        public long[] Sizes { get; set; } = sizes;
        public string File { get; set; } = "__0_0.distcp";
        /// <summary>Replaces the item bytes (otherwise a torch.save of the chunk's float32 values).</summary>
        public byte[]? Item { get; set; }
        /// <summary>What .metadata says instead of the truth.</summary>
        public string? RelativePath { get; set; }
        public long? Offset { get; set; }
        public long? Length { get; set; }
        public string[]? Transforms { get; set; }
        /// <summary>Save the chunk transposed (stride [1, rows]): DCP keeps a view's strides.</summary>
        public bool Transposed { get; set; }
    }

    internal sealed class Entry
    {
        public required string Fqn { get; init; }
        public object?[]? Path { get; init; }
        public long[] Shape { get; init; } = [];
        public List<Chunk> Chunks { get; } = [];
        /// <summary>A bytes entry: the torch.save archive of its value.</summary>
        public byte[]? BytesItem { get; init; }
        public string BytesFile { get; init; } = "__0_0.distcp";
    }

    public List<Entry> Entries { get; } = [];

    /// <summary>Extra fields put into Metadata's dict (e.g. a call of a gadget global).</summary>
    public List<(string Field, object? Value)> ExtraMetadataFields { get; } = [];

    /// <summary>Element i of every tensor is i (float32), so any assembly is checkable.</summary>
    public static float ValueAt(long i) => i;

    public Entry Tensor(string fqn, long[] shape, params (long[] Offsets, long[] Sizes)[] chunks)
    {
        var e = new Entry { Fqn = fqn, Shape = shape };
        foreach (var (o, s) in chunks) e.Chunks.Add(new Chunk(o, s));
        Entries.Add(e);
        return e;
    }

    public Entry Bytes(string fqn, byte[] pickle, object?[]? path = null)
    {
        var e = new Entry { Fqn = fqn, Path = path, BytesItem = CheckpointBuilder.ZipOf(pickle) };
        Entries.Add(e);
        return e;
    }

    /// <summary>A torch.save archive of the float32 values of box [offsets, offsets + sizes) of a tensor of <paramref name="shape"/>.</summary>
    public static byte[] ChunkItem(long[] shape, long[] offsets, long[] sizes, bool transposed = false)
    {
        var n = sizes.Aggregate(1L, (a, b) => a * b);
        var strides = ContiguousStrides(shape);
        var values = new float[n];
        var index = new long[sizes.Length];
        for (long k = 0; k < n; k++)
        {
            long linear = 0;
            for (var d = 0; d < sizes.Length; d++) linear += (offsets[d] + index[d]) * strides[d];
            // transposed: element (i, j) of the chunk is stored at j * rows + i
            var at = transposed ? index[1] * sizes[0] + index[0] : k;
            values[at] = ValueAt(linear);
            for (var d = sizes.Length - 1; d >= 0 && ++index[d] == sizes[d]; d--) index[d] = 0;
        }
        var stride = transposed ? new[] { 1L, sizes[0] } : ContiguousStrides(sizes);
        var pickle = new PickleBuilder().Proto(2).Value(TensorV2(Storage("FloatStorage", "0", n), 0, sizes, stride)).Stop().ToArray();
        return CheckpointBuilder.ZipOf(pickle, ("0", CheckpointBuilder.Floats(values)));
    }

    /// <summary>Writes the folder (created if needed) and returns it.</summary>
    public string Write(string folder)
    {
        Directory.CreateDirectory(folder);
        var files = new Dictionary<string, MemoryStream>(StringComparer.Ordinal);
        (long, long) Put(string file, byte[] item)
        {
            if (!files.TryGetValue(file, out var s)) files[file] = s = new MemoryStream();
            var at = s.Position;
            s.Write(item);
            return (at, item.Length);
        }

        var sdm = new List<(object?, object?)>();
        var planner = new List<(object?, object?)>();
        var storage = new List<(object?, object?)>();
        foreach (var e in Entries)
        {
            planner.Add((e.Fqn, e.Path ?? [e.Fqn]));
            if (e.BytesItem is { } bytes)
            {
                var (at, length) = Put(e.BytesFile, bytes);
                sdm.Add((e.Fqn, Dataclass(Meta, "BytesStorageMetadata", null)));
                storage.Add((Index(e.Fqn, null, 0), StorageInfo(e.BytesFile, at, length, null)));
                continue;
            }
            var chunkList = new List<object?>();
            for (var i = 0; i < e.Chunks.Count; i++)
            {
                var c = e.Chunks[i];
                var (at, length) = Put(c.File, c.Item ?? ChunkItem(e.Shape, c.Offsets, c.Sizes, c.Transposed));
                chunkList.Add(Dataclass(Meta, "ChunkStorageMetadata", new PDict(("offsets", Size(c.Offsets)), ("sizes", Size(c.Sizes)))));
                storage.Add((Index(e.Fqn, c.Offsets, i), StorageInfo(c.RelativePath ?? c.File, c.Offset ?? at, c.Length ?? length, c.Transforms)));
            }
            Fragment properties = b => b.Global(Meta, "TensorProperties").EmptyTuple().NewObj()
                .Value(new object?[] { G("torch", "float32"), Call("torch.serialization", "_get_layout", "torch.strided"), false, Call(Meta, "_MEM_FORMAT_ENCODING", 0L), false })
                .Build();
            sdm.Add((e.Fqn, Dataclass(Meta, "TensorStorageMetadata", new PDict(("properties", properties), ("size", Size(e.Shape)), ("chunks", new PList(chunkList.ToArray()))))));
        }
        var fields = new List<(object?, object?)>
        {
            ("state_dict_metadata", new PDict(sdm.ToArray())), ("planner_data", new PDict(planner.ToArray())), ("storage_data", new PDict(storage.ToArray())),
            ("storage_meta", Dataclass(Meta, "StorageMeta", new PDict(("checkpoint_id", Call("pathlib", "PosixPath", "ckpt")), ("save_id", "test"), ("load_id", null)))),
        };
        fields.AddRange(ExtraMetadataFields.Select(f => ((object?)f.Field, f.Value)));
        var metadata = new PickleBuilder().Proto(2).Value(Dataclass(Meta, "Metadata", new PDict(fields.ToArray()))).Stop().ToArray();
        File.WriteAllBytes(System.IO.Path.Combine(folder, ".metadata"), metadata);
        foreach (var (name, s) in files) File.WriteAllBytes(System.IO.Path.Combine(folder, name), s.ToArray());
        return folder;
    }

    /// <summary>A dataclass as pickle writes it: GLOBAL, EMPTY_TUPLE, NEWOBJ, then BUILD with its fields (none for BytesStorageMetadata).</summary>
    public static Fragment Dataclass(string module, string name, PDict? fields) => b =>
    {
        b.Global(module, name).EmptyTuple().NewObj();
        if (fields is not null) b.Value(fields).Build();
    };

    public static Fragment Size(long[] dims) => Call("torch", "Size", (object)dims);

    private static Fragment Index(string fqn, long[]? offsets, int index) =>
        Dataclass(Meta, "MetadataIndex", new PDict(("fqn", fqn), ("offset", offsets is null ? null : Size(offsets)), ("index", (long)index)));

    private static Fragment StorageInfo(string path, long offset, long length, string[]? transforms)
    {
        var fields = new List<(object?, object?)> { ("relative_path", path), ("offset", offset), ("length", length) };
        if (transforms is not null) fields.Add(("transform_descriptors", new PList(transforms.Cast<object?>().ToArray())));
        return Dataclass("torch.distributed.checkpoint.filesystem", "_StorageInfo", new PDict(fields.ToArray()));
    }
}
