using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// The oldest format (torch &lt;= 0.1.9): a tar with members <c>sys_info</c>, <c>pickle</c>,
/// <c>tensors</c>, <c>storages</c> (spec 5). Tensors and storages share one integer key space;
/// the object pickle's persistent ids are those keys as decimal strings.
/// </summary>
internal static class TarCheckpoint
{
    /// <summary>A ustar header with a valid checksum: how a tar checkpoint is recognised by content.</summary>
    public static bool LooksLikeTar(ReadOnlySpan<byte> header)
    {
        if (header.Length < 512 || !header.Slice(257, 5).SequenceEqual("ustar"u8)) return false;
        if (!TryOctal(header.Slice(148, 8), out var stored)) return false;
        long sum = 0;
        for (var i = 0; i < 512; i++) sum += i is >= 148 and < 156 ? (byte)' ' : header[i];
        return sum == stored;
    }

    public static TorchCheckpoint Load(LoadSession session)
    {
        var file = session.File;
        if (session.Options.Mmap)
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat, "-Mmap can only be used with zip-format checkpoints; this is a tar-format (torch <= 0.1.9) file.");
        var members = ReadMembers(file);
        foreach (var required in new[] { "storages", "tensors", "pickle" })
            if (!members.ContainsKey(required))
                throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"The tar checkpoint has no '{required}' member", required);
        object? NoIds(object? pid) => throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, "A persistent id appears outside the object pickle");
        var helper = session.NewUnpickler(NoIds);
        // Each pickle is read into memory up to its STOP (PickleReader: no mapping), the binary fields between them from the file.
        object? Pickle(TorchUnpickler unpickler, string member, long at, long end, out int n, out int protocol)
        {
            using var pickle = PickleReader.Read(file, at, end, session.Limits, member);
            return session.RunPickle(unpickler, pickle.Span, member, out n, out protocol);
        }
        Span<byte> field = stackalloc byte[8];

        // storages: pickle(count); per storage pickle((key, location, type)) + int64 count + data; then pickle(views)
        var (sOff, sLen) = members["storages"];
        var sEnd = sOff + sLen;
        var p = sOff;
        var count = Count(Pickle(helper, "storages", p, sEnd, out var n, out _), "storages");
        p += n;
        var reads = new List<TorchStorage>();
        for (long i = 0; i < count; i++)
        {
            if (Pickle(helper, "storages", p, sEnd, out n, out _) is not object?[] { Length: 3 } entry)
                throw Bad("storages", "a storage entry is not (key, location, storage_type)");
            p += n;
            var key = LoadSession.PidString(entry[0], "key");
            var location = LoadSession.PidString(entry[1], "location");
            var dtype = LoadSession.StorageDType(entry[2]);
            if (p + 8 > sEnd) throw Truncated("storages", p);
            file.ReadExactly(p, field, "storages");
            var numel = BinaryPrimitives.ReadInt64LittleEndian(field);
            p += 8;
            if (numel < 0) throw new TorchLoadException(TorchLoadErrorReason.StorageSizeMismatch, $"Storage '{key}' declares {numel} elements", "storages", p);
            var nbytes = LoadSession.NBytes(numel, dtype, key);
            if (nbytes > sEnd - p) throw Truncated("storages", p);
            var storage = new TorchStorage(key, dtype, numel, location) { RecordName = "storages", FileOffset = p };
            if (session.Storages.ContainsKey(key)) throw new TorchLoadException(TorchLoadErrorReason.DuplicateRecord, $"Storage key '{key}' appears twice", "storages");
            session.AddStorage(storage);
            reads.Add(storage);
            p += nbytes;
        }
        if (Pickle(helper, "storages", p, sEnd, out n, out _) is not List<object?> views) throw Bad("storages", "the storage view list is not a list");
        foreach (var v in views)
        {
            if (v is not object?[] { Length: 4 } view) throw Bad("storages", "a storage view is not (view_key, root_key, offset, numel)");
            var viewKey = LoadSession.PidString(view[0], "view key");
            var rootKey = LoadSession.PidString(view[1], "root key");
            if (!session.Storages.TryGetValue(rootKey, out var rootStorage)) throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"Storage view '{viewKey}' names unknown root '{rootKey}'", "storages");
            var offset = TorchUnpickler.ToLong(view[2], "offset");
            var size = TorchUnpickler.ToLong(view[3], "numel");
            if (offset < 0 || size < 0 || offset > rootStorage.ElementCount - size)
                throw new TorchLoadException(TorchLoadErrorReason.InvalidTensorGeometry, $"Storage view '{viewKey}' lies outside storage '{rootKey}'", "storages");
            session.AddStorage(new TorchStorage(viewKey, rootStorage.DType, size, rootStorage.Location) { ViewOf = rootStorage, ViewOffset = offset, RecordName = "storages" });
        }

        // tensors: pickle(count); per tensor pickle((key, storage_key, type)) + int32 ndim + 4 bytes + sizes + strides + offset
        var (tOff, tLen) = members["tensors"];
        var tEnd = tOff + tLen;
        p = tOff;
        var tensors = new Dictionary<string, TorchTensor>(StringComparer.Ordinal);
        var tensorCount = Count(Pickle(helper, "tensors", p, tEnd, out n, out _), "tensors");
        p += n;
        for (long i = 0; i < tensorCount; i++)
        {
            if (Pickle(helper, "tensors", p, tEnd, out n, out _) is not object?[] { Length: 3 } entry)
                throw Bad("tensors", "a tensor entry is not (key, storage_key, tensor_type)");
            p += n;
            var key = LoadSession.PidString(entry[0], "key");
            var storageKey = LoadSession.PidString(entry[1], "storage key");
            if (p + 8 > tEnd) throw Truncated("tensors", p);
            file.ReadExactly(p, field, "tensors");
            var ndim = BinaryPrimitives.ReadInt32LittleEndian(field);
            p += 8;
            if (ndim < 0 || ndim > session.Limits.MaxTensorRank) throw new TorchLoadException(TorchLoadErrorReason.InvalidTensorGeometry, $"Tensor '{key}' has {ndim} dimensions", "tensors", p);
            if (p + 16L * ndim + 8 > tEnd) throw Truncated("tensors", p);
            var geometry = file.ReadBytes(p, 16 * ndim + 8, "tensors");
            p += geometry.Length;
            var shape = new long[ndim];
            var stride = new long[ndim];
            for (var d = 0; d < ndim; d++) shape[d] = BinaryPrimitives.ReadInt64LittleEndian(geometry.AsSpan(8 * d));
            for (var d = 0; d < ndim; d++) stride[d] = BinaryPrimitives.ReadInt64LittleEndian(geometry.AsSpan(8 * (ndim + d)));
            var storageOffset = BinaryPrimitives.ReadInt64LittleEndian(geometry.AsSpan(16 * ndim));
            if (!session.Storages.TryGetValue(storageKey, out var storage))
                throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"Tensor '{key}' uses storage '{storageKey}', which the file does not have", "tensors");
            var dtype = entry[2] is PyGlobal { Kind: GlobalKind.LegacyTensorClass, Payload: TorchDType td } ? td : storage.DType;
            ShapeMath.ValidateView(shape, stride, storageOffset, storage.ByteLength / dtype.ElementSize, $"tensor '{key}'");
            tensors[key] = new TorchTensor(dtype, shape, stride, storageOffset, storage);
        }

        // the object: persistent ids are decimal keys of tensors or storages
        object? PersistentLoad(object? pid)
        {
            var key = LoadSession.PidString(pid is object?[] { Length: 1 } one ? one[0] : pid, "key");
            if (tensors.TryGetValue(key, out var t)) return t;
            if (session.Storages.TryGetValue(key, out var s)) return s;
            throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"The object pickle refers to '{key}', which is neither a tensor nor a storage of this file");
        }
        var host = session.NewUnpickler(PersistentLoad);
        var (oOff, oLen) = members["pickle"];
        var root = Pickle(host, "pickle", oOff, oOff + oLen, out _, out var protocol);
        var checkpoint = new TorchCheckpoint(file.Path, "tar", root, session.StorageOrder)
        {
            Version = 1000, PickleProtocol = protocol, Globals = host.GlobalsSeen, Records = members.Keys.ToList(),
        };
        if (session.Options.MetadataOnly) return checkpoint;
        session.ReadStorages(reads, (s, report) => file.ReadToHost(s.FileOffset, s.ByteLength, "storages", session.Cancel, report, session.SmallStorages));
        session.ConnectViews();
        session.Place(host.DeviceTensors);
        session.ConnectViews();
        return checkpoint;
    }

    private static Dictionary<string, (long Offset, long Length)> ReadMembers(FileSource file)
    {
        var members = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        var header = new byte[512];
        string? paxName = null;
        for (long pos = 0; pos + 512 <= file.Length;)
        {
            file.ReadExactly(pos, header, "tar header");
            if (header.All(b => b == 0)) break;
            if (!LooksLikeTar(header)) throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, "A tar header is damaged (bad checksum)", "tar header", pos);
            var name = Encoding.UTF8.GetString(header.AsSpan(0, 100)).TrimEnd('\0');
            if (!TryOctal(header.AsSpan(124, 12), out var size) || size < 0 || size > file.Length - pos - 512)
                throw new TorchLoadException(TorchLoadErrorReason.TruncatedCheckpoint, $"Tar member '{name}' runs past the end of the file", name, pos);
            var type = (char)header[156];
            var dataOffset = pos + 512;
            if (type is 'x' or 'g')
            {
                if (type == 'x' && size < 1 << 20) paxName = PaxPath(file.ReadBytes(dataOffset, (int)size, name));
            }
            else if (type is '0' or '\0')
            {
                var member = paxName ?? name;
                paxName = null;
                if (!members.TryAdd(member, (dataOffset, size)))
                    throw new TorchLoadException(TorchLoadErrorReason.DuplicateRecord, $"The tar checkpoint has two members named '{member}'", member);
            }
            pos = dataOffset + (size + 511) / 512 * 512;
        }
        return members;
    }

    private static string? PaxPath(byte[] records)
    {
        foreach (var line in Encoding.UTF8.GetString(records).Split('\n'))
        {
            var eq = line.IndexOf(" path=", StringComparison.Ordinal);
            if (eq >= 0) return line[(eq + 6)..];
        }
        return null;
    }

    private static bool TryOctal(ReadOnlySpan<byte> field, out long value)
    {
        var text = Encoding.ASCII.GetString(field).Trim('\0', ' ');
        value = 0;
        if (text.Length == 0) return true;
        try { value = Convert.ToInt64(text, 8); return true; }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException) { return false; }
    }

    private static long Count(object? v, string member) =>
        v is long c && c >= 0 ? c : throw Bad(member, $"the member starts with {TorchUnpickler.Describe(v)}, not a count");

    private static TorchLoadException Bad(string member, string message) => new(TorchLoadErrorReason.MalformedPickle, $"Malformed tar checkpoint: {message}", member);
    private static TorchLoadException Truncated(string member, long at) => new(TorchLoadErrorReason.TruncatedCheckpoint, $"Tar member '{member}' ends early", member, at);
}
