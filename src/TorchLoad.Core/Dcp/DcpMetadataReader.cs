using TorchLoad.Core.Archive;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Dcp;

/// <summary>
/// Reads <c>.metadata</c> into <see cref="DcpEntry"/>s: runs the pickle with <see cref="DcpMetadataUnpickler"/>
/// over the file read into native memory once (<see cref="PickleReader"/>: no mapping, so a .metadata truncated
/// while it is read is an error, not a signal), then checks every field's type while turning the records into the model.
/// </summary>
internal static class DcpMetadataReader
{
    public static DcpIndex Read(string folder, string metadataPath, TorchLoadOptions options)
    {
        var host = new DcpMetadataUnpickler(options.Observer);
        object? root;
        int protocol;
        using (var file = new FileSource(metadataPath))
        {
            if (file.Length == 0) throw new TorchLoadException(TorchLoadErrorReason.NotACheckpoint, "The DCP .metadata file is empty (a save that did not finish?)", ".metadata");
            if (file.Length > options.Limits.MaxPickleBytes || file.Length > int.MaxValue)
                throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"The DCP .metadata is {file.Length} bytes, over the limit of {options.Limits.MaxPickleBytes}", ".metadata")
                { LimitName = nameof(LoadLimits.MaxPickleBytes) };
            using var pickle = PickleReader.Read(file, 0, file.Length, options.Limits, ".metadata");
            var machine = new PickleMachine(host, options.Limits, PickleStringEncoding.Utf8, ".metadata", options.Cancellation);
            root = machine.Run(pickle.Span, out _);
            protocol = machine.Protocol;
        }
        return Convert(folder, root, protocol, host.GlobalsSeen.Distinct().ToList(), options.Limits);
    }

    private static DcpIndex Convert(string folder, object? root, int protocol, List<string> globals, LoadLimits limits)
    {
        var meta = Record(root, DcpClass.Metadata, "the .metadata root");
        var fields = meta.Fields ?? throw Malformed("Metadata has no fields");
        var sdm = Field<PyDict>(fields, "state_dict_metadata", required: true)!;
        var planner = Field<PyDict>(fields, "planner_data", required: false);
        var storage = Field<PyDict>(fields, "storage_data", required: false) ?? new PyDict();

        // (fqn, chunk offsets or none) -> item: MetadataIndex's hash and equality (index is only a hint)
        var items = new Dictionary<string, DcpChunkRef>(StringComparer.Ordinal);
        foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)storage)
        {
            var index = Record(kv.Key, DcpClass.MetadataIndex, "a storage_data key").Fields ?? throw Malformed("MetadataIndex has no fields");
            var fqn = Field<string>(index, "fqn", required: true)!;
            var offset = OptionalLongs(index, "offset");
            var hint = index.TryGetValue("index", out var h) && h is long hl ? hl : (long?)null;
            var info = Record(kv.Value, DcpClass.StorageInfo, $"the storage_data value of '{fqn}'").Fields ?? throw Malformed("_StorageInfo has no fields");
            var transforms = new List<string>();
            if (info.TryGetValue("transform_descriptors", out var td) && td is not null)
            {
                if (td is not (List<object?> or object?[])) throw Malformed($"transform_descriptors of '{fqn}' is {TorchUnpickler.Describe(td)}");
                foreach (var t in td is List<object?> l ? l : ((object?[])td).ToList()) transforms.Add(t as string ?? throw Malformed("a transform descriptor is not a string"));
            }
            var item = new DcpItem(Field<string>(info, "relative_path", required: true)!, Long(info, "offset"), Long(info, "length"), transforms);
            if (!items.TryAdd(Key(fqn, offset), new DcpChunkRef(offset ?? [], [], hint, item)))
                throw new TorchLoadException(TorchLoadErrorReason.DuplicateRecord, $"storage_data names chunk {Describe(fqn, offset)} twice", ".metadata");
        }

        var entries = new List<DcpEntry>(sdm.Count);
        foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)sdm)
        {
            var fqn = kv.Key as string ?? throw Malformed($"a state_dict_metadata key is {TorchUnpickler.Describe(kv.Key)}, not a string");
            var path = PathOf(fqn, planner);
            var value = kv.Value as DcpRecord ?? throw Malformed($"state_dict_metadata['{fqn}'] is {TorchUnpickler.Describe(kv.Value)}");
            if (value.Kind == DcpClass.BytesStorageMetadata)
            {
                var e = new DcpEntry { Fqn = fqn, Path = path };
                e.Item = items.TryGetValue(Key(fqn, null), out var found) ? found.Item
                    : throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"storage_data has no item for bytes entry '{fqn}'", ".metadata");
                entries.Add(e);
                continue;
            }
            if (value.Kind != DcpClass.TensorStorageMetadata || value.Fields is not { } tf)
                throw Malformed($"state_dict_metadata['{fqn}'] is {value.Kind}, not a tensor or bytes entry");
            var (dtype, layout) = Properties(Record(tf.TryGetValue("properties", out var p) ? p : null, DcpClass.TensorProperties, $"the properties of '{fqn}'"), fqn);
            if (layout != TorchLayout.Strided)
                throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat, $"DCP tensor '{fqn}' has layout {layout}; only strided tensors are saved by DCP", ".metadata");
            var shape = Longs(tf, "size");
            if (shape.Length > limits.MaxTensorRank)
                throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"DCP tensor '{fqn}' has {shape.Length} dimensions, over the limit of {limits.MaxTensorRank}", ".metadata") { LimitName = nameof(LoadLimits.MaxTensorRank) };
            var entry = new DcpEntry { Fqn = fqn, Path = path, DType = dtype, Shape = shape };
            var chunks = Field<List<object?>>(tf, "chunks", required: true)!;
            foreach (var c in chunks)
            {
                var cf = Record(c, DcpClass.ChunkStorageMetadata, $"a chunk of '{fqn}'").Fields ?? throw Malformed("ChunkStorageMetadata has no fields");
                var offsets = Longs(cf, "offsets");
                var sizes = Longs(cf, "sizes");
                if (!items.TryGetValue(Key(fqn, offsets), out var found))
                    throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"storage_data has no item for chunk {Describe(fqn, offsets)}", ".metadata");
                entry.Chunks.Add(new DcpChunkRef(offsets, sizes, found.Index, found.Item));
            }
            entries.Add(entry);
        }

        DcpSavedPath? checkpointId = null;
        string? saveId = null;
        if (fields.TryGetValue("storage_meta", out var sm) && sm is not null)
        {
            var smf = Record(sm, DcpClass.StorageMeta, "storage_meta").Fields;
            checkpointId = smf?.TryGetValue("checkpoint_id", out var id) == true ? id switch { DcpSavedPath sp => sp, string s => new DcpSavedPath("str", s), _ => null } : null;
            saveId = smf?.TryGetValue("save_id", out var sid) == true ? sid as string : null;
        }
        return new DcpIndex
        {
            Folder = folder, Entries = entries, PickleProtocol = protocol, Globals = globals,
            Version = fields.TryGetValue("version", out var v) ? v as string : null, CheckpointId = checkpointId, SaveId = saveId,
        };
    }

    /// <summary>planner_data[fqn]: a tuple of str and int components; (fqn) when the saver did not flatten or left it out.</summary>
    private static object[] PathOf(string fqn, PyDict? planner)
    {
        if (planner is null || !planner.TryGetValue(fqn, out var p) || p is null) return [fqn];
        var parts = p switch { object?[] t => t, List<object?> l => l.ToArray(), _ => throw Malformed($"planner_data['{fqn}'] is {TorchUnpickler.Describe(p)}, not a tuple") };
        if (parts.Length == 0) throw Malformed($"planner_data['{fqn}'] is an empty path");
        var path = new object[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            path[i] = parts[i] switch
            {
                string s => s,
                long l when l >= 0 => l,
                _ => throw Malformed($"planner_data['{fqn}'] has component {TorchUnpickler.Describe(parts[i])}; only strings and non-negative ints are paths"),
            };
        return path;
    }

    private static (TorchDType DType, TorchLayout Layout) Properties(DcpRecord r, string fqn)
    {
        object? dtype, layout;
        if (r.Tuple is { } t)
        {
            if (t.Length < 2) throw Malformed($"TensorProperties of '{fqn}' has {t.Length} fields");
            (dtype, layout) = (t[0], t[1]);
        }
        else if (r.Fields is { } f)
        {
            dtype = f.TryGetValue("dtype", out var d) ? d : null;
            layout = f.TryGetValue("layout", out var l) ? l : TorchLayout.Strided;
        }
        else throw Malformed($"TensorProperties of '{fqn}' was never filled");
        return (dtype as TorchDType ?? throw Malformed($"the dtype of '{fqn}' is {TorchUnpickler.Describe(dtype)}"),
                layout as TorchLayout ?? throw Malformed($"the layout of '{fqn}' is {TorchUnpickler.Describe(layout)}"));
    }

    private static string Key(string fqn, long[]? offsets) => offsets is null ? fqn + "\u0001" : fqn + "\u0001" + string.Join(',', offsets);

    private static string Describe(string fqn, long[]? offsets) => offsets is null ? $"'{fqn}'" : $"'{fqn}' at offsets ({string.Join(", ", offsets)})";

    private static DcpRecord Record(object? v, DcpClass kind, string what) =>
        v is DcpRecord r && r.Kind == kind ? r : throw Malformed($"{what} is {TorchUnpickler.Describe(v)}, expected {kind}");

    private static T? Field<T>(PyDict fields, string name, bool required) where T : class =>
        fields.TryGetValue(name, out var v) && v is not null
            ? v as T ?? throw Malformed($"field '{name}' is {TorchUnpickler.Describe(v)}")
            : required ? throw Malformed($"field '{name}' is missing") : null;

    private static long Long(PyDict fields, string name) =>
        fields.TryGetValue(name, out var v) ? TorchUnpickler.ToLong(v, name) : throw Malformed($"field '{name}' is missing");

    private static long[] Longs(PyDict fields, string name) =>
        fields.TryGetValue(name, out var v) ? TorchUnpickler.ToLongs(v, name) : throw Malformed($"field '{name}' is missing");

    private static long[]? OptionalLongs(PyDict fields, string name) =>
        fields.TryGetValue(name, out var v) && v is not null ? TorchUnpickler.ToLongs(v, name) : null;

    private static TorchLoadException Malformed(string message) => DcpMetadataUnpickler.Malformed(message);
}
