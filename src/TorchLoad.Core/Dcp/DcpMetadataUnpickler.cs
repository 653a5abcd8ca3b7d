using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Dcp;

/// <summary>The DCP classes <c>.metadata</c> may name, each bound to a <see cref="DcpRecord"/> kind or a value maker.</summary>
internal enum DcpClass
{
    Metadata, TensorStorageMetadata, BytesStorageMetadata, ChunkStorageMetadata, TensorProperties, MetadataIndex, StorageInfo, StorageMeta,
    MemoryFormat, Size, GetLayout, Path,
}

/// <summary>A global of <c>.metadata</c> after lookup: what it is, and its <c>module.name</c>.</summary>
internal sealed record DcpGlobal(DcpClass Kind, string Name);

/// <summary>
/// An instance of a DCP dataclass as the pickle built it: NEWOBJ with no arguments, then BUILD with its
/// fields (a dict) or, for TensorProperties, a tuple. <see cref="DcpMetadataReader"/> turns these into the model.
/// </summary>
internal sealed class DcpRecord(DcpClass kind)
{
    public DcpClass Kind { get; } = kind;
    public PyDict? Fields { get; set; }
    public object?[]? Tuple { get; set; }
    public override string ToString() => Kind.ToString();
}

/// <summary>A pathlib path (StorageMeta.checkpoint_id): the saver's path, shown, never opened.</summary>
public sealed record DcpSavedPath(string ClassName, string Text)
{
    public override string ToString() => Text;
}

/// <summary>
/// The pickle host for <c>.metadata</c>: DCP's own class list (dcp-format.md section 2) and nothing else, in
/// every mode. Each class is bound to a record type; NEWOBJ only with no arguments, REDUCE only on
/// torch.Size, _get_layout, the memory-format enum and the pathlib classes, with checked argument types;
/// no persistent ids. Any other global is UnsafeGlobal, even with -WeightsOnly:$false.
/// </summary>
internal sealed class DcpMetadataUnpickler(Action<string, string>? observer) : IPickleHost
{
    private const string Meta = "torch.distributed.checkpoint.metadata.";
    private const string OldMeta = "torch.distributed._shard.sharded_tensor.metadata.";

    private static readonly Dictionary<string, DcpClass> Classes = BuildClasses(); // read-only after this

    private static Dictionary<string, DcpClass> BuildClasses()
    {
        var t = new Dictionary<string, DcpClass>(StringComparer.Ordinal)
        {
            [Meta + "Metadata"] = DcpClass.Metadata,
            [Meta + "TensorStorageMetadata"] = DcpClass.TensorStorageMetadata,
            [Meta + "BytesStorageMetadata"] = DcpClass.BytesStorageMetadata,
            [Meta + "ChunkStorageMetadata"] = DcpClass.ChunkStorageMetadata,
            [Meta + "TensorProperties"] = DcpClass.TensorProperties,
            [Meta + "_MEM_FORMAT_ENCODING"] = DcpClass.MemoryFormat,
            [Meta + "MEM_FORMAT_ENCODING"] = DcpClass.MemoryFormat,
            [Meta + "MetadataIndex"] = DcpClass.MetadataIndex,
            [Meta + "StorageMeta"] = DcpClass.StorageMeta,
            ["torch.distributed.checkpoint.filesystem._StorageInfo"] = DcpClass.StorageInfo,
            [OldMeta + "TensorProperties"] = DcpClass.TensorProperties, // torch <= 2.2
            [OldMeta + "MEM_FORMAT_ENCODING"] = DcpClass.MemoryFormat,
            ["torch.Size"] = DcpClass.Size,
            ["torch.serialization._get_layout"] = DcpClass.GetLayout,
        };
        foreach (var module in new[] { "pathlib", "pathlib._local" })
            foreach (var name in new[] { "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath", "Path" })
                t[$"{module}.{name}"] = DcpClass.Path;
        return t;
    }

    /// <summary>Whether <c>.metadata</c> may name <paramref name="full"/> (<c>module.name</c>).</summary>
    public static bool IsAllowed(string full)
    {
        if (Classes.ContainsKey(full)) return true;
        var dot = full.LastIndexOf('.');
        return dot > 0 && full[..dot] == "torch" && TorchDType.TryFromName(full[(dot + 1)..], out _);
    }

    /// <summary>Every global the pickle named, in order (audits list them).</summary>
    public List<string> GlobalsSeen { get; } = [];

    public object ResolveGlobal(string module, string name)
    {
        var full = $"{module}.{name}";
        GlobalsSeen.Add(full);
        observer?.Invoke("global", full);
        if (Classes.TryGetValue(full, out var kind)) return new DcpGlobal(kind, full);
        if (module == "torch" && TorchDType.TryFromName(name, out var dtype)) return dtype; // IsAllowed's rule
        throw new TorchLoadException(TorchLoadErrorReason.UnsafeGlobal,
            $"The DCP .metadata names GLOBAL {full}, which is not one of DCP's own classes. .metadata is read with DCP's class list in every mode " +
            "(-WeightsOnly:$false and -SafeGlobal do not widen it): a torch-written .metadata never names anything else.") { GlobalName = full };
    }

    public object? PersistentLoadTuple(ReadOnlySpan<object?> pid) => PersistentLoad(pid.ToArray());

    public object? PersistentLoad(object? pid) =>
        throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"The DCP .metadata has a persistent id ({TorchUnpickler.Describe(pid)}); DCP never writes one");

    public object? Reduce(object? callable, ReadOnlySpan<object?> args)
    {
        if (callable is not DcpGlobal g) throw Malformed($"REDUCE can only call a DCP class, not {TorchUnpickler.Describe(callable)}");
        switch (g.Kind)
        {
            case DcpClass.Size:
                if (args.Length != 1) throw Malformed($"torch.Size takes one tuple, got {args.Length} arguments");
                return TorchUnpickler.ToLongs(args[0], "torch.Size");
            case DcpClass.GetLayout:
                return args is [string s] && TorchLayout.TryParse(s, out var layout) ? layout : throw Malformed("_get_layout takes one layout name");
            case DcpClass.MemoryFormat:
                return args is [long v] ? v : throw Malformed("the memory-format enum takes one integer");
            case DcpClass.Path:
                var parts = new string[args.Length];
                for (var i = 0; i < args.Length; i++) parts[i] = args[i] as string ?? throw Malformed($"{g.Name} takes path segments (strings), got {TorchUnpickler.Describe(args[i])}");
                return new DcpSavedPath(g.Name, string.Join('/', parts));
            default:
                throw Malformed($"{g.Name} is a dataclass: it is built with NEWOBJ and BUILD, never called");
        }
    }

    public object? NewObject(object? cls, object?[] args, PyDict? kwargs, string opcode)
    {
        if (cls is not DcpGlobal g || g.Kind > DcpClass.StorageMeta) throw Malformed($"{opcode} can only create a DCP dataclass, not {TorchUnpickler.Describe(cls)}");
        if (args.Length != 0 || kwargs is { Count: > 0 }) throw Malformed($"{opcode} of {g.Name} with arguments; DCP dataclasses are created with ()");
        return new DcpRecord(g.Kind);
    }

    public object? Build(object? target, object? state)
    {
        if (target is not DcpRecord r || r.Fields is not null || r.Tuple is not null)
            throw Malformed($"BUILD can only fill a new DCP record, not {TorchUnpickler.Describe(target)}");
        switch (state)
        {
            case object?[] t when r.Kind == DcpClass.TensorProperties: r.Tuple = t; break;
            case PyDict d: r.Fields = d; break;
            case object?[] { Length: 2 } t when t[1] is PyDict slots && t[0] is null or PyDict: // (dict, slots) of a slotted dataclass
                var merged = new PyDict();
                foreach (var part in new[] { t[0] as PyDict, slots })
                    if (part is not null)
                        foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)part) merged.Set(kv.Key, kv.Value);
                r.Fields = merged;
                break;
            default: throw Malformed($"BUILD of {r.Kind} needs its fields as a dict, got {TorchUnpickler.Describe(state)}");
        }
        return r;
    }

    public void SetItems(object? target, ReadOnlySpan<object?> keysAndValues) =>
        throw Malformed($"SETITEMS on {TorchUnpickler.Describe(target)}; only dicts take items in .metadata");

    public void Append(object? target, ReadOnlySpan<object?> items) =>
        throw Malformed($"APPEND on {TorchUnpickler.Describe(target)}; only lists take items in .metadata");

    internal static TorchLoadException Malformed(string message) => new(TorchLoadErrorReason.MalformedPickle, $"Malformed DCP .metadata: {message}", ".metadata");
}
