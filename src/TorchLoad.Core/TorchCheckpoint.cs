using TorchLoad.Core.Tensors;

namespace TorchLoad.Core;

/// <summary>What one load produced: the root object torch.load would return, and facts about the file.</summary>
public sealed class TorchCheckpoint
{
    internal TorchCheckpoint(string path, string format, object? root, IReadOnlyList<TorchStorage> storages)
    {
        Path = path;
        Format = format;
        Root = root;
        Storages = storages;
    }

    public string Path { get; }

    /// <summary><c>zip</c>, <c>legacy</c>, <c>tar</c>, <c>safetensors</c>, <c>sharded</c> or <c>dcp</c> (a distributed checkpoint folder).</summary>
    public string Format { get; }

    /// <summary>The unpickled object (usually a dictionary of tensors).</summary>
    public object? Root { get; }

    /// <summary>Every storage of the file, in the order the pickle first met them.</summary>
    public IReadOnlyList<TorchStorage> Storages { get; }

    /// <summary>The zip <c>version</c> record, the legacy protocol version (1001) or 1000 for tar.</summary>
    public long? Version { get; internal set; }

    /// <summary><c>little</c> or <c>big</c>, as the file says (zip <c>byteorder</c>; others are little).</summary>
    public string ByteOrder { get; internal set; } = "little";

    /// <summary>The zip archive's top folder.</summary>
    public string? ArchivePrefix { get; internal set; }

    /// <summary>The pickle protocol of the main pickle.</summary>
    public int PickleProtocol { get; internal set; }

    /// <summary>Every global the main pickle named (<c>module.name</c>, in order, repeats removed).</summary>
    public IReadOnlyList<string> Globals { get; internal set; } = [];

    /// <summary>Every record of a zip archive.</summary>
    public IReadOnlyList<string> Records { get; internal set; } = [];

    /// <summary>A zip archive's directory as the load read it (an audit checks its CRCs without reading it again).</summary>
    internal IReadOnlyList<Archive.ZipRecord>? ZipRecords { get; init; }

    /// <summary>For a DCP folder: every chunk of every tensor, with its file, byte range and the box it fills.</summary>
    public IReadOnlyList<Dcp.DcpChunk> DcpChunks => Dcp?.ChunkRows().ToList() ?? [];

    /// <summary>A DCP folder's validated index (null for files).</summary>
    internal Dcp.DcpIndex? Dcp { get; init; }

    /// <summary>A DCP load's tensors by the entry they came from (chunk counts and files for audit rows).</summary>
    internal IReadOnlyDictionary<TorchTensor, Dcp.DcpEntry>? DcpTensors { get; init; }

    /// <summary>A DCP load's non-tensor (bytes) entries by dotted name, with their values (export policy).</summary>
    internal IReadOnlyList<(string Name, object? Value)>? DcpBytesValues { get; init; }

    /// <summary>Non-fatal findings (a pickle protocol other than 2, a CRC left zero, ...).</summary>
    public List<string> Warnings { get; } = [];
}
